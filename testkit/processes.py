"""Real child processes for tests, benches and the fault harness, the way Celery's
``celery.contrib.testing.worker`` runs a real worker: start, wait until ready, stop gracefully, keep the logs.

Each child runs in a process group (session) of its own, so a SIGTERM or a
SIGKILL reaches a worker's pool children too, and appends its output to ``<log_dir>/<name>.log``.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    """Progress goes to stderr, so a bench's stdout carries only the figures (or the JSON object)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1,
             message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true (returned); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def wait_http_ok(url: str, *, timeout: float, alive: Callable[[], list[str]] = list) -> float:
    """Poll ``url`` until it answers 200; returns the seconds it took. RuntimeError when a process died."""
    started = time.monotonic()

    def answered() -> bool:
        if dead := alive():
            raise RuntimeError(f"{', '.join(dead)} exited while waiting for {url}")
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answered, timeout=timeout, interval=0.2, message=f"{url} to answer 200")
    return time.monotonic() - started


# --- the commands ------------------------------------------------------------------------------

CODE_BIN_VARIABLE = "BENCH_PAYHOOKS_BIN"
"""A virtualenv's bin directory whose payhooks (and celery) the bench runs instead of its own:
another checkout measured by the same bench in the same run (``bench.e2e --code``)."""


def code_bin() -> Path:
    """Where the payhooks processes' scripts are: ``$BENCH_PAYHOOKS_BIN``, else next to this interpreter."""
    chosen = os.environ.get(CODE_BIN_VARIABLE)
    return Path(chosen) if chosen else Path(sys.executable).parent


def payhooks_command() -> list[str]:
    """The `payhooks` console script of :func:`code_bin`, else ``python -m cli``."""
    script = code_bin() / "payhooks"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


def worker_command() -> list[str]:
    """`payhooks worker` with its defaults, spelled as the `celery -A workers worker` it runs, plus a node
    name of its own: `payhooks worker` has no ``--hostname``, and two ``celery@<host>`` on one RabbitMQ clash
    on their exclusive pidbox queue (RESOURCE_LOCKED): ours, or anyone else's on this machine, would die of it."""
    celery = code_bin() / "celery"
    command = [str(celery)] if celery.exists() else [sys.executable, "-m", "celery"]
    return [*command, "-A", "workers", "worker", f"--hostname=bench-{secrets.token_hex(3)}@%h",
            "--loglevel=INFO", "--pool=prefork", "--without-gossip", "--without-mingle"]


def env_without_payhooks(**extra: str) -> dict[str, str]:
    """This process's environment minus every PAYHOOKS_* variable, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PAYHOOKS_")}
    env.update(extra)
    return env


# --- child processes -------------------------------------------------------------------------


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                found.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


@dataclass
class ProcessSet:
    """Child processes, each in its own process group (session) with its log in ``log_dir``."""

    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "ab") as log_file:
            process = subprocess.Popen(
                list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.processes[name] = process
        return process

    def exited(self) -> list[str]:
        """Names of the processes that are no longer running."""
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def stop(self, names: Iterable[str] | None = None, *, sig: int = signal.SIGTERM,
             timeout: float = 30.0) -> dict[str, int | None]:
        """Signal each group, wait up to ``timeout``, then SIGKILL what is left of it. Returns exit codes."""
        chosen = list(names or self.processes)
        for name in chosen:
            _kill_group(self.processes[name].pid, sig)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for name in chosen:
            process = self.processes.pop(name)
            try:
                codes[name] = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                codes[name] = None
            _kill_group_leftovers(process.pid, until=deadline)
            if process.poll() is None:
                process.wait(timeout=10)
        return codes

    def tail(self, name: str, lines: int = 25) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def logs(self, chars: int = 4000) -> str:
        """The end of every log, for an assertion message."""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
                         for p in sorted(self.log_dir.glob("*.log")))


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _kill_group_leftovers(pgid: int, *, until: float) -> None:
    """Wait for the group's other members until ``until``, then SIGKILL the group."""
    while group_members(pgid) and time.monotonic() < until:
        time.sleep(0.2)
    if group_members(pgid):
        _kill_group(pgid, signal.SIGKILL)
