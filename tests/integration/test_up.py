"""`payhooks up` from a clean directory with no environment: it comes up,
accepts a simulated event that pays a registered order, and Ctrl-C leaves no
Postgres behind."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres" and str(data_dir) in cmdline:
            found.append(proc)
    return found


@pytest.fixture
def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PAYHOOKS_")}


def test_up_accepts_a_sent_event_and_stops_cleanly(tmp_path: Path, clean_env: dict[str, str]) -> None:
    port, console_port = _free_port(), _free_port()
    payhooks = [sys.executable, "-m", "workers.cli"]
    up = subprocess.Popen(
        [*payhooks, "up", "--bind", f"127.0.0.1:{port}", "--console-bind", f"127.0.0.1:{console_port}"],
        cwd=tmp_path, env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    # Drain the output all along, so a chatty child can never block on a full pipe.
    reader = threading.Thread(target=lambda: output.extend(iter(up.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any(line.startswith("Console: ") for line in output):
            assert up.poll() is None and time.monotonic() < deadline, "".join(output)
            time.sleep(0.1)
        assert (tmp_path / ".payhooks" / "secrets.env").exists()
        # The console runs too, and `up` printed its URL and sign-in token
        token = (tmp_path / ".payhooks" / "secrets.env").read_text().split("PAYHOOKS_CONSOLE_TOKEN=")[1].split()[0]
        assert any(f"Console: http://127.0.0.1:{console_port}" in line and token in line for line in output)
        assert httpx.get(f"http://127.0.0.1:{console_port}/signin", timeout=5).status_code == 200
        assert _postgres_processes(tmp_path / ".payhooks")

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([*payhooks, *args], cwd=tmp_path, env=clean_env, capture_output=True,
                                  text=True, timeout=60)

        created = run("orders", "create", "--reference", "UP-1", "--provider", "yoco",
                      "--provider-payment-ref", "ch_up", "--amount", "2500", "--currency", "ZAR",
                      "--customer-email", "a@example.com", "--customer-phone", "+27110000000")
        assert created.returncode == 0, created.stdout + created.stderr
        sent = run("send", "yoco", "payment.succeeded", "--url", f"http://127.0.0.1:{port}",
                   "--order-ref", "ch_up", "--amount", "2500")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.startswith("200 ") and '"accepted"' in sent.stdout
        # The dispatcher and the worker that `up` runs turn the event into the paid order
        deadline = time.monotonic() + 60
        while json.loads(run("orders", "show", "UP-1").stdout)["status"] != "paid":
            assert time.monotonic() < deadline, "".join(output)
            time.sleep(0.5)
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        reader.join(timeout=10)
    assert up.returncode == 0, "".join(output)
    assert not _postgres_processes(tmp_path / ".payhooks"), "".join(output)
    assert not (tmp_path / ".payhooks" / "runtime.env").exists()
