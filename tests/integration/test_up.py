"""`payhooks up` from a clean directory with no environment: it comes up,
accepts a simulated event, and Ctrl-C leaves no Postgres behind."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
    port = _free_port()
    payhooks = [sys.executable, "-m", "workers.cli"]
    up = subprocess.Popen(
        [*payhooks, "up", "--bind", f"127.0.0.1:{port}"],
        cwd=tmp_path, env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            if not line and up.poll() is not None:
                break
            output.append(line)
            if "payhooks is up on" in line:
                break
        assert any("payhooks is up on" in line for line in output), "".join(output)
        assert (tmp_path / ".payhooks" / "secrets.env").exists()
        assert _postgres_processes(tmp_path / ".payhooks")

        sent = subprocess.run(
            [*payhooks, "send", "yoco", "payment.succeeded", "--url", f"http://127.0.0.1:{port}"],
            cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.startswith("200 ") and '"accepted"' in sent.stdout
    finally:
        up.send_signal(signal.SIGINT)
        try:
            rest, _ = up.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            rest, _ = up.communicate()
        output.append(rest or "")
    assert up.returncode == 0, "".join(output)
    assert not _postgres_processes(tmp_path / ".payhooks"), "".join(output)
    assert not (tmp_path / ".payhooks" / "runtime.env").exists()
