"""The payhooks under test and the world around it: receiver, dispatcher and workers as processes, the fakes.

The processes are the kit's :class:`~testkit.services.Services` (each in a
process group of its own, so a SIGKILL takes a worker's pool children with
it; output appended to ``<run dir>/<name>.log``, restarts too). The database
is a fresh one on the harness's embedded Postgres, the broker RabbitMQ with a
queue of the run's own (or kombu's SQLAlchemy transport when no RabbitMQ
answers). SMTP, the merchant and ProcessOut are the kit's fakes, run in the
harness process; the SMTP server demands a login, so the SMTP password is
really used and can be looked for in the logs.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from bench.faults.leaks import SMTP_USER, RunSecrets
from bench.faults.plan import PROVIDERS
from models.db import make_engine
from models.settings import Settings
from testkit.fakes import FakeProcessOut, MerchantServer, SmtpServer
from testkit.processes import REPO_ROOT, env_without_payhooks, free_port, log, payhooks_command
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
class Outside:
    """Everything payhooks talks to besides Postgres and the broker."""

    mail: SmtpServer
    merchant: MerchantServer = field(default_factory=MerchantServer)
    processout: FakeProcessOut = field(default_factory=FakeProcessOut)

    def close(self) -> None:
        for closer in (self.mail.close, self.merchant.close, self.processout.close):
            try:
                closer()
            except (OSError, RuntimeError):  # best effort: the others still close
                continue


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
            **{f"PAYHOOKS_RETRY_SCHEDULE_{p.upper()}": SCHEDULE for p in PROVIDERS},
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

    def start_worker(self, name: str) -> None:
        self.services.start_worker(name, "--loglevel", "INFO", concurrency=self.tuning.worker_concurrency)

    def start_all(self) -> None:
        ready = self.services.start_serve(self.receiver_url, "--workers", str(self.tuning.receiver_workers),
                                          "--threads", str(self.tuning.receiver_threads), name="receiver")
        self.services.start_dispatcher()
        for name in self.tuning.worker_groups:
            self.start_worker(name)
        log(f"receiver ready in {ready:.1f} s; dispatcher and {len(self.tuning.worker_groups)} worker group(s) started")

    def stop(self) -> None:
        """SIGTERM one by one (the receiver last), SIGKILL what is left of each after 20 s."""
        for name in sorted(self.services.processes.processes, key=lambda name: name == "receiver"):
            self.services.stop([name])

    def cli(self, *args: str, timeout: float = 60, check: bool = False) -> tuple[int, str]:
        """Run a ``payhooks`` command; its output is kept in cli.log (searched for secrets).
        ``check``: raise when it fails."""
        try:
            done = subprocess.run([*payhooks_command(), *args], env=self.env(), cwd=self.run_dir,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                                  check=False)
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            code, output = -1, f"timed out after {timeout} s: {exc.stdout or ''}{exc.stderr or ''}"
        with open(self.run_dir / "cli.log", "a") as cli_log:
            cli_log.write(f"$ payhooks {' '.join(args)}\n{output}\n[exit {code}]\n")
        if check and code != 0:
            raise RuntimeError(f"payhooks {' '.join(args[:2])} failed: {output[-500:]}")
        return code, output
