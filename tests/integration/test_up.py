"""`payhooks up` from a clean directory with no environment, as a newcomer runs it.

All five providers' canonical ``payment.succeeded`` pay their orders (ProcessOut's
through `up`'s API simulator), every command works from a subdirectory, the
output is one stream of JSON lines off a terminal, and Ctrl-C leaves no
Postgres behind. The README's quickstart runs as written.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from testkit.processes import REPO_ROOT, env_without_payhooks, free_port

PAYHOOKS = [sys.executable, "-m", "cli"]
ORDERS = {  # provider: (order reference, provider payment reference, currency)
    "smartpay": ("ORD-S", "order_e2e", "JPY"),
    "processout": ("ORD-P", "tr_e2e", "USD"),
    "senfenico": ("ORD-F", "chk_e2e", "XOF"),
    "yoco": ("ORD-Y", "ch_e2e", "ZAR"),
    "shadhinpay": ("ORD-H", "SP_e2e", "BDT"),
}


def _postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if proc.info["name"] == "postgres" and str(data_dir) in cmdline:
            found.append(proc)
    return found


@pytest.fixture
def clean_env() -> dict[str, str]:
    return env_without_payhooks()


class Up:
    """`payhooks up` in ``directory`` with its output drained all along (a full pipe never blocks it)."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory, self.env, self.port, self.console_port = directory, env, free_port(), free_port()
        self.output: list[str] = []
        self.process = subprocess.Popen([*PAYHOOKS, "up", "--bind", f"127.0.0.1:{self.port}",
                                         "--console-bind", f"127.0.0.1:{self.console_port}"], cwd=directory,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=lambda: self.output.extend(iter(self.process.stdout.readline, "")),
                                       daemon=True)
        self.reader.start()

    def text(self) -> str:
        return "".join(self.output)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        while not any('"up.ready"' in line for line in self.output):
            assert self.process.poll() is None and time.monotonic() < deadline, self.text()
            time.sleep(0.1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=10)
        return self.process.returncode


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*PAYHOOKS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_every_provider_pays_its_order_under_up_and_the_cli_works_from_a_subdirectory(
        tmp_path: Path, clean_env: dict[str, str]) -> None:
    up = Up(tmp_path, clean_env)
    subdirectory = tmp_path / "src" / "shop"
    subdirectory.mkdir(parents=True)

    def run(*args: str) -> subprocess.CompletedProcess:
        return _cli(*args, cwd=subdirectory, env=clean_env)

    try:
        up.wait_ready()
        # The console runs too; the ready record says where, and where its token is kept
        ready = next(json.loads(line) for line in up.output if '"up.ready"' in line)
        assert ready["console"] == f"http://127.0.0.1:{up.console_port}", ready
        assert ready["console_token_file"] == str(tmp_path / ".payhooks" / "secrets.env")
        assert httpx.get(f"{ready['console']}/signin", timeout=5).status_code == 200
        ids = {}
        for provider, (reference, payment_ref, currency) in ORDERS.items():
            created = run("orders", "create", "--reference", reference, "--provider", provider,
                          "--provider-payment-ref", payment_ref, "--amount", "1000", "--currency", currency,
                          "--customer-email", "buyer@example.com")
            assert created.returncode == 0, created.stdout + created.stderr
            # The canonical kind, the provider's name in any case, no --url: `send` finds `up`'s receiver
            sent = run("send", provider.capitalize(), "payment.succeeded", "--order-ref", payment_ref,
                       "--amount", "1000")
            assert sent.returncode == 0, sent.stdout + sent.stderr
            answered = re.match(r"200 accepted: .* is event (\d+)$", sent.stdout.splitlines()[0])
            assert answered, sent.stdout
            ids[provider] = int(answered.group(1))

        def statuses() -> dict[int, str]:
            listed = run("events", "list", "--json")
            assert listed.returncode == 0, listed.stdout + listed.stderr
            return {row["id"]: row["status"] for row in json.loads(listed.stdout)}

        deadline = time.monotonic() + 120
        while len(now := statuses()) < len(ORDERS) or set(now.values()) != {"succeeded"}:
            assert time.monotonic() < deadline and not {"dead", "ignored"} & set(now.values()), (
                f"{now}\n{up.text()}")
            time.sleep(0.5)
        # A second `up` in the same tree finds this one instead of starting another
        second = run("up", "--bind", f"127.0.0.1:{free_port()}")
        assert second.returncode == 1 and "already running" in second.stderr, second.stderr
        for provider, (reference, _, _) in ORDERS.items():
            order = json.loads(run("orders", "show", reference, "--json").stdout)
            assert order["status"] == "paid", (provider, order)
        # ProcessOut's event was fetched back from the simulator (the thin POST carries no order)
        processout = json.loads(run("events", "show", str(ids["processout"]), "--json").stdout)
        assert processout["fetched_payload"]["data"]["transaction"]["id"] == "tr_e2e"
        # The human table, from the subdirectory, with a correct plural
        table = run("events", "list")
        assert table.returncode == 0 and "5 events, newest first" in table.stdout, table.stdout + table.stderr
        assert table.stderr == ""  # no log lines by default
    finally:
        code = up.stop()
    assert code == 0, up.text()
    assert not _postgres_processes(tmp_path / ".payhooks"), up.text()
    assert not (tmp_path / ".payhooks" / "runtime.env").exists()
    # Off a terminal the output is one stream of JSON lines: ours, the children's, and theirs folded in
    records = [json.loads(line) for line in up.output if line.strip()]
    assert {"receiver", "dispatcher", "worker", "up"} <= {r["process"] for r in records}
    assert any(r["action"] == "worker.ready" for r in records), up.text()
    assert not any("SecurityWarning" in r["message"] or "[config]" in r["message"] for r in records)
    assert sum("Warm shutdown" in r["message"] for r in records) <= 1
    assert not any(value in up.text() for value in _dev_secret_values(tmp_path))
    # With `up` stopped, the error says where to start it
    after = run("events", "list")
    assert after.returncode == 1 and f"`payhooks up` is not running in {tmp_path}" in after.stderr


def _dev_secret_values(directory: Path) -> list[str]:
    lines = (directory / ".payhooks" / "secrets.env").read_text().splitlines()
    return [line.partition("=")[2] for line in lines if "=" in line and not line.startswith("#")]


def _quickstart_blocks() -> list[list[str]]:
    """The ```sh blocks of README's "Two commands" section, as commands (continuations joined)."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [[command.strip() for command in block.replace("\\\n", " ").splitlines() if command.strip()]
            for block in blocks]


def test_the_readme_quickstart_runs_as_written(tmp_path: Path, clean_env: dict[str, str]) -> None:
    first, *others = _quickstart_blocks()
    # The first block installs and starts `up`: the install is this test's own, and `up` gets a free
    # port (the only change: `send` finds the running `up`'s receiver wherever it listens).
    assert first == ["pip install -e . && payhooks up"]
    env = {**clean_env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{clean_env.get('PATH', '')}"}
    up = Up(tmp_path, env)
    try:
        up.wait_ready()
        commands = [command for block in others for command in block
                    if not command.startswith("pip install")]  # the test suite's own install line
        assert len(commands) >= 6, commands
        for command in commands:
            expected = re.search(r"#\s*status:\s*(\w+)", command)
            deadline = time.monotonic() + 60
            while True:
                done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                                      text=True, timeout=60)
                assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
                if not expected or f"status: {expected.group(1)}" in done.stdout:
                    break
                assert time.monotonic() < deadline, f"{command}\n{done.stdout}\n{up.text()}"
                time.sleep(0.5)
    finally:
        assert up.stop() == 0, up.text()
