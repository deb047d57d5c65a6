"""A running payhooks to benchmark, as a context manager that cleans everything up.

:func:`service_target`: a fresh ``payhooks_bench_<random>`` database on a
Postgres server, ``payhooks db upgrade``, then the chosen services (``serve``,
``dispatcher``, ``worker``; none for bench.size_steady) as separate processes
(:class:`testkit.services.Services`) with a queue of their own and settings
of the benchmark's own: the ingest and duplicate benchmarks want the receiver
alone (so nothing else competes for the CPU), the retry benchmark a short
retry schedule. The metrics ports are off unless ``env`` sets them.
bench.e2e takes all three services with their defaults (``mode="stack"``,
not ``quiet``). On exit: every process stopped, the database dropped, the queue
deleted.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from bench.cpu import pids_named, postgres_of_database
from bench.summary import scalar
from cli import devsecrets
from models.db import normalise_url
from testkit.fakes import Simulator
from testkit.load import signing_secrets
from testkit.postgres import create_database, drop_database
from testkit.processes import ProcessSet, env_without_payhooks, free_port, log, payhooks_command, worker_command
from testkit.services import Services, delete_queue

ALL_SERVICES = ("serve", "dispatcher", "worker")
QUIET_METRICS = {"PAYHOOKS_DISPATCHER_METRICS_PORT": "0", "PAYHOOKS_WORKER_METRICS_PORT": "0"}


@dataclass
class Target:
    mode: str
    base_url: str
    database_url: str
    secrets: dict[str, str]
    """provider → the secret to sign with (processout: ``user:pass``)."""
    processes: ProcessSet
    workdir: Path
    postmaster_pid: int | None = None
    teardown: dict[str, object] = field(default_factory=dict)
    """What stopping found (exit codes), filled in on exit."""

    def engine(self) -> Engine:
        return create_engine(normalise_url(self.database_url), pool_size=2, max_overflow=2)

    def cpu_roots(self) -> dict[str, list[int]]:
        """Groups for :class:`bench.cpu.CpuSampler`: each service, Postgres, RabbitMQ, the bench."""
        roots: dict[str, list[int]] = {"bench": [os.getpid()]}
        for name, process in self.processes.processes.items():
            roots.setdefault("receiver" if name == "serve" else name, []).append(process.pid)
        if self.postmaster_pid:  # this run's backends and the shared processes, not other databases'
            roots["postgres"] = postgres_of_database(self.postmaster_pid, make_url(self.database_url).database)
        rabbit = pids_named("beam.smp") if self.mode == "stack" else []
        if rabbit:
            roots["rabbitmq"] = rabbit
        return roots

    def find_postmaster(self) -> int | None:
        """The pid of the Postgres server holding the target's database (the parent of our backend)."""
        engine = self.engine()
        try:
            return psutil.Process(scalar(engine, "SELECT pg_backend_pid()")).ppid()
        except psutil.Error:
            return None
        finally:
            engine.dispose()


def wait_final(engine: Engine, target: Target, *, started: float, timeout: float, expect: int, min_id: int = 0,
               interval: float = 0.2, digits: int = 3) -> dict[str, Any]:
    """Poll until at least ``expect`` events of the run (``id > min_id``) are stored and every one is final
    (succeeded, ignored or dead), a process died, or ``timeout`` s after ``started`` (the first POST)."""
    query = text("SELECT count(*), count(*) FILTER (WHERE status IN ('succeeded', 'ignored', 'dead')) "
                 "FROM webhook_events WHERE id > :min_id")
    deadline, last_log = started + timeout, 0.0
    while True:
        with engine.connect() as conn:
            total, final = (int(n) for n in conn.execute(query, {"min_id": min_id}).one())
        now = time.monotonic()
        all_final = total >= expect and final == total
        if all_final or now > deadline or target.processes.exited():
            break
        if now - last_log >= 5:
            log(f"{final}/{total} events final ({now - started:.0f} s after the first POST)")
            last_log = now
        time.sleep(interval)
    return {"all_final": all_final, "stored": total, "final": final, "died": target.processes.exited(),
            "seconds_after_first_post": round(time.monotonic() - started, digits)}


@dataclass(frozen=True)
class ServiceOptions:
    server_url: str
    broker_url: str
    services: tuple[str, ...] = ("serve",)
    env: Mapping[str, str] = field(default_factory=dict)
    """PAYHOOKS_* settings on top of the fresh database, broker, queue and generated secrets."""
    processout: Simulator | None = None
    serve_args: tuple[str, ...] = ()
    """Extra `payhooks serve` options (``--workers``, ``--threads``) instead of its production defaults."""
    worker_args: tuple[str, ...] = ()
    """Appended to :func:`testkit.processes.worker_command` (`payhooks worker`'s option names)."""
    serve_source: Path | None = None
    """Run `payhooks serve` from this source tree (another commit's ``git archive``) instead of ours."""
    mode: str = "services"
    quiet: bool = True
    """Metrics ports off and each service's Prometheus files in the workdir; False: the services' defaults."""


@contextmanager
def service_target(options: ServiceOptions, *, processes: ProcessSet, workdir: Path) -> Iterator[Target]:
    unknown = set(options.services) - set(ALL_SERVICES)
    if unknown:
        raise ValueError(f"unknown services {sorted(unknown)}; choose from {ALL_SERVICES}")
    database, database_url = create_database(options.server_url, prefix="payhooks_bench")
    log(f"created database {database}")
    queue = f"payhooks-bench-{secrets.token_hex(4)}"
    target = Target(mode=options.mode, base_url=f"http://127.0.0.1:{free_port()}", database_url=database_url,
                    secrets={}, processes=processes, workdir=workdir)
    try:
        env = {**_env(target, options, queue), **(QUIET_METRICS if options.quiet else {}), **options.env}
        done = subprocess.run([*payhooks_command(), "db", "upgrade"], env=env, cwd=workdir, capture_output=True,
                              text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"payhooks db upgrade failed:\n{done.stdout}{done.stderr}")
        _start(target, options, env)
        target.postmaster_pid = target.find_postmaster()
        yield target
    finally:
        target.teardown["exit_codes"] = processes.stop([n for n in ALL_SERVICES if n in processes.processes])
        error = drop_database(options.server_url, database)
        log(f"could not drop database {database}: {error}" if error else f"dropped database {database}")
        if {"dispatcher", "worker"} & set(options.services):
            delete_queue(options.broker_url, queue, report=log)


def _env(target: Target, options: ServiceOptions, queue: str) -> dict[str, str]:
    generated = devsecrets.generate()  # ProcessOut's Basic auth included
    env = env_without_payhooks(
        PAYHOOKS_DATABASE_URL=target.database_url, PAYHOOKS_BROKER_URL=options.broker_url,
        PAYHOOKS_QUEUE_NAME=queue, PAYHOOKS_DATA_DIR=str(target.workdir / ".payhooks"), **generated,
    )
    if options.processout is not None:
        env.update(options.processout.env())
    target.secrets = signing_secrets(env)
    return env


def _start(target: Target, options: ServiceOptions, env: dict[str, str]) -> None:
    """The chosen services, the receiver ready first; quiet: each one's Prometheus files in the run's
    workdir (removed with it), not /tmp."""
    services = Services(env=env, workdir=target.workdir, processes=target.processes, metrics=options.quiet)
    source = options.serve_source  # another tree: its packages first on the path, ahead of our install
    if "serve" in options.services:  # another tree's command line: ``cli`` since issue 12, ``workers.cli`` before
        cli = "cli" if source and (source / "cli" / "main.py").exists() else "workers.cli"
        serve = replace(services, command=[sys.executable, "-m", cli],
                        env={**env, "PYTHONPATH": str(source)}) if source else services
        took = serve.start_serve(target.base_url, *options.serve_args, timeout=90)
        log(f"receiver ready on {target.base_url} after {took:.1f} s")
    if "dispatcher" in options.services:
        services.start_dispatcher()
    if "worker" in options.services:
        services.start("worker", argv=[*worker_command(), *options.worker_args])

