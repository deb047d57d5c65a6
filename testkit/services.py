"""payhooks as real processes: serve, dispatcher and worker sharing one environment, and the broker's queues.

:class:`Services` starts them for the integration tests' ``stack``, the benches' targets and the fault
harness's cluster; :func:`serve_process` is `payhooks serve` alone, for tests of the server itself. Each
run gets a queue of its own on the shared RabbitMQ (kombu's SQLAlchemy transport when none answers).
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testkit.processes import ProcessSet, free_port, payhooks_command, wait_http_ok

DEFAULT_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


def rabbitmq_url() -> str | None:
    """The RabbitMQ to use, or None when none answers (a laptop); under CI it must answer."""
    url = os.environ.get("PAYHOOKS_TEST_BROKER_URL", DEFAULT_RABBITMQ)
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return url
    except OSError:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"RabbitMQ is not reachable at {url} under CI") from None
        return None


def new_queue_name(prefix: str = "payhooks-test") -> str:
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"


def delete_queue(broker_url: str, queue: str, *, report: Callable[[str], None] = lambda _: None) -> None:
    """Remove the run's queues (events and ``<queue>.deliveries``) from a shared RabbitMQ, if declared."""
    if not broker_url.startswith("amqp"):
        return
    from kombu import Connection

    for name in (queue, f"{queue}.deliveries"):
        try:
            with Connection(broker_url, connect_timeout=3) as conn:
                conn.default_channel.queue_delete(name)
            report(f"deleted queue {name}")
        except Exception as exc:  # the queue may never have been declared
            report(f"could not delete queue {name}: {type(exc).__name__}: {exc}")


@dataclass
class Services:
    """payhooks commands started as they are needed, stopped together; logs in ``processes.log_dir``.

    ``metrics``: each start gets a PROMETHEUS_MULTIPROC_DIR of its own under
    ``workdir/metrics`` (removed with the workdir, not left in /tmp).
    """

    env: dict[str, str]
    workdir: Path
    processes: ProcessSet | None = None
    command: list[str] = field(default_factory=payhooks_command)
    metrics: bool = False
    starts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if self.processes is None:
            self.processes = ProcessSet(self.workdir)

    def start(self, name: str, *args: str, argv: list[str] | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """``payhooks ARGS`` (or ``argv``) as ``name``."""
        self.starts[name] += 1
        env = {**self.env, **(env or {})}
        if self.metrics:
            metrics_dir = self.workdir / "metrics" / f"{name}-{self.starts[name]}"
            metrics_dir.mkdir(parents=True, exist_ok=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        return self.processes.start(name, argv or [*self.command, *args], env=env, cwd=self.workdir)

    def start_serve(self, base_url: str, *args: str, name: str = "serve", timeout: float = 90) -> float:
        """``payhooks serve --bind`` the host:port of ``base_url``; returns the seconds until /readyz answered."""
        self.start(name, "serve", "--bind", base_url.removeprefix("http://"), *args)
        return wait_http_ok(f"{base_url}/readyz", timeout=timeout, alive=self.exited)

    def start_dispatcher(self, name: str = "dispatcher") -> subprocess.Popen:
        return self.start(name, "dispatcher")

    def start_worker(self, name: str = "worker", *args: str, concurrency: int | None = 2) -> subprocess.Popen:
        shape = ("--concurrency", str(concurrency)) if concurrency is not None else ()
        return self.start(name, "worker", *shape, *args)

    def pid(self, name: str) -> int:
        return self.processes.processes[name].pid

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process and its whole group (a worker's pool children too) and reap it."""
        self.processes.stop([name], sig=sig, timeout=30)

    def exited(self) -> list[str]:
        return self.processes.exited()

    def stop(self, names: list[str] | None = None, *, timeout: float = 20) -> dict[str, int | None]:
        """SIGTERM each group, SIGKILL what is left after ``timeout``; exit codes by name."""
        chosen = list(self.processes.processes) if names is None else names
        return self.processes.stop(chosen, timeout=timeout) if chosen else {}

    def logs(self) -> str:
        return self.processes.logs()


@contextmanager
def serve_process(*, database_url: str, workdir: Path, workers: int, threads: int,
                  env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                  log_path: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`payhooks serve` on a free port, ready; yields its base URL and its process (output to ``log_path``)."""
    base = f"http://127.0.0.1:{free_port()}"
    processes = ProcessSet(log_path.parent if log_path else workdir)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PAYHOOKS_", "PROMETHEUS_"))}
    server = processes.start(
        log_path.stem if log_path else "serve",
        [sys.executable, "-m", "cli", "serve", "--bind", base.removeprefix("http://"), "--workers", str(workers),
         "--threads", str(threads), *args],
        env={**clean, "PAYHOOKS_DATABASE_URL": database_url, **(env or {})}, cwd=workdir,
    )
    try:
        wait_http_ok(f"{base}/readyz", timeout=30, alive=processes.exited)
        yield base, server
    finally:
        processes.stop(timeout=30)
