"""The payhooks under test: receiver, dispatcher and workers as separate processes, with their logs.

Each process runs a ``payhooks`` command in its own process group (so a
SIGKILL takes a worker's pool children with it) and appends to
``<run dir>/<name>.log``; restarts append to the same file. The database is a
fresh one on the harness's embedded Postgres, the broker RabbitMQ with a queue
of the run's own (or kombu's SQLAlchemy transport when no RabbitMQ answers).
"""
from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from bench.faults.leaks import SMTP_USER, RunSecrets
from bench.faults.outside import Outside
from models.db import make_engine
from models.settings import Settings
from testkit.processes import (
    REPO_ROOT,
    ProcessSet,
    env_without_payhooks,
    free_port,
    log,
    payhooks_command,
)
from testkit.services import Services

SCHEDULE = "1s,1s,2s,2s,3s,3s,5s"
"""Every provider's retry schedule in the harness: 7 retries within about 17 s."""
SLOW_HANDLER_MODULE = "bench.faults.slow_handler"


@dataclass(frozen=True)
class Tuning:
    """How the processes are configured for a scenario."""

    lease_seconds: int = 5
    worker_groups: tuple[str, ...] = ("worker",)
    worker_concurrency: int = 2
    receiver_workers: int = 2
    receiver_threads: int = 4
    slow_handler: bool = False
    db_timeout_seconds: float = 5.0


@dataclass
class Cluster:
    run_dir: Path
    database_url: str
    broker_url: str
    queue: str
    secrets: RunSecrets
    outside: Outside
    tuning: Tuning
    services: Services = field(init=False)
    """The processes, each start with its own Prometheus directory under ``<run dir>/metrics``."""
    receiver_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.services = Services(env=self.env(), workdir=self.run_dir, metrics=True)
        self.receiver_url = f"http://127.0.0.1:{free_port()}"

    @property
    def processes(self) -> ProcessSet:
        return self.services.processes

    @property
    def started_at(self) -> dict[str, float]:
        """Wall-clock start of each process's current incarnation (epoch seconds)."""
        return self.services.started_at

    def env(self) -> dict[str, str]:
        mail = self.outside.mail
        values = {
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
            "PAYHOOKS_DATA_DIR": str(self.run_dir / ".payhooks"),
            "PAYHOOKS_DATABASE_URL": self.database_url,
            "PAYHOOKS_BROKER_URL": self.broker_url,
            "PAYHOOKS_QUEUE_NAME": self.queue,
            "PAYHOOKS_PROCESSOUT_API_URL": self.outside.processout.url,
            "PAYHOOKS_SMTP_HOST": "127.0.0.1",
            "PAYHOOKS_SMTP_PORT": str(mail.port),
            "PAYHOOKS_SMTP_USERNAME": SMTP_USER,
            "PAYHOOKS_SMTP_FROM": "shop@merchant.example",
            "PAYHOOKS_FULFILMENT_URL": f"{self.outside.merchant.url}/fulfil",
            "PAYHOOKS_NOTIFY_URL": f"{self.outside.merchant.url}/sms",
            "PAYHOOKS_DELIVERY_RETRY_SCHEDULE": "1s,2s,3s,5s",
            "PAYHOOKS_DELIVERY_TIMEOUT_SECONDS": "3",
            "PAYHOOKS_LEASE_SECONDS": str(self.tuning.lease_seconds),
            "PAYHOOKS_DISPATCH_POLL_SECONDS": "0.2",
            "PAYHOOKS_DB_TIMEOUT_SECONDS": str(self.tuning.db_timeout_seconds),
            "PAYHOOKS_DISPATCHER_METRICS_PORT": "0",
            "PAYHOOKS_WORKER_METRICS_PORT": "0",
            "PAYHOOKS_LOG_LEVEL": "INFO",
            "PAYHOOKS_LOG_FORMAT": "json",
            **{f"PAYHOOKS_RETRY_SCHEDULE_{p}": SCHEDULE
               for p in ("SMARTPAY", "PROCESSOUT", "SENFENICO", "YOCO", "SHADHINPAY")},
            **self.secrets.env,
        }
        if self.tuning.slow_handler:
            values["PAYHOOKS_HANDLER_MODULES"] = SLOW_HANDLER_MODULE
        return env_without_payhooks(**values)

    def settings(self) -> Settings:
        """The same settings the processes build (for the harness's own engine and Celery app)."""
        env = self.env()
        values = {name.removeprefix("PAYHOOKS_").lower(): value for name, value in env.items()
                  if name.startswith("PAYHOOKS_")}
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def engine(self) -> Engine:
        return make_engine(self.settings(), pool_size=3, application_name="payhooks-faults")

    # --- processes -------------------------------------------------------------------------

    def start_receiver(self) -> float:
        """Start ``payhooks serve``; returns the seconds until /readyz answered."""
        return self.services.start_serve(self.receiver_url, "--workers", str(self.tuning.receiver_workers),
                                         "--threads", str(self.tuning.receiver_threads), name="receiver")

    def start_dispatcher(self, name: str = "dispatcher") -> None:
        self.services.start_dispatcher(name)

    def start_worker(self, name: str) -> None:
        self.services.start_worker(name, "--loglevel", "INFO", concurrency=self.tuning.worker_concurrency)

    def start_all(self) -> None:
        ready = self.start_receiver()
        self.start_dispatcher()
        for name in self.tuning.worker_groups:
            self.start_worker(name)
        log(f"receiver ready in {ready:.1f} s; dispatcher and {len(self.tuning.worker_groups)} worker group(s) started")

    def pid(self, name: str) -> int:
        return self.services.pid(name)

    def kill(self, name: str) -> None:
        """SIGKILL a process and its whole group (a worker's pool children too)."""
        self.processes.stop([name], sig=signal.SIGKILL, timeout=15)

    def exited(self) -> list[str]:
        return self.processes.exited()

    def stop(self) -> dict[str, int | None]:
        """SIGTERM everything (workers and dispatcher first), SIGKILL what is left after 20 s."""
        names = list(self.processes.processes)
        order = [n for n in names if n != "receiver"] + [n for n in names if n == "receiver"]
        codes: dict[str, int | None] = {}
        for name in order:
            codes.update(self.processes.stop([name], timeout=20))
        return codes

    # --- the CLI ---------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 60) -> tuple[int, str]:
        """Run a ``payhooks`` command; its output is kept in cli.log (searched for secrets)."""
        try:
            done = subprocess.run([*payhooks_command(), *args], env=self.env(), cwd=self.run_dir,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                                  check=False)
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            code, output = -1, f"timed out after {timeout} s: {exc.stdout or ''}{exc.stderr or ''}"
        with open(self.run_dir / "cli.log", "a") as cli_log:
            cli_log.write(f"$ payhooks {' '.join(args)}\n{output}\n[exit {code}]\n")
        return code, output
