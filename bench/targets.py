"""A running payhooks to benchmark, as a context manager that cleans everything up.

* :func:`stack_target`: a fresh ``payhooks_bench_<random>`` database on a
  Postgres server, ``payhooks db upgrade``, then ``payhooks serve``,
  ``payhooks dispatcher`` and ``payhooks worker`` as separate processes on
  RabbitMQ with a queue of their own. On exit: every process stopped, the
  database dropped, the queue deleted.
* :func:`up_target`: ``payhooks up`` in a temporary directory with no
  PAYHOOKS_* variable (embedded Postgres, kombu's SQLAlchemy broker). Its
  secrets and database URL are read from ``.payhooks/``. On exit: SIGINT, and
  a check that it exited 0 and left no process behind.
"""
from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from bench.common import (
    ProcessSet,
    env_without_payhooks,
    free_port,
    group_members,
    log,
    code_bin,
    payhooks_command,
    wait_http_ok,
)
from bench.cpu import pids_named, postgres_of_database, postmaster_of
from bench.fake_processout import FakeProcessOut
from cli import devsecrets
from models.db import normalise_url

SECRET_VARIABLES = {
    "smartpay": "PAYHOOKS_SMARTPAY_SECRETS",
    "senfenico": "PAYHOOKS_SENFENICO_SECRETS",
    "yoco": "PAYHOOKS_YOCO_SECRETS",
    "shadhinpay": "PAYHOOKS_SHADHINPAY_SECRETS",
    "processout": "PAYHOOKS_PROCESSOUT_BASIC_AUTH",
}


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
    """What stopping found (exit codes, leftovers), filled in on exit."""

    def engine(self) -> Engine:
        return create_engine(normalise_url(self.database_url), pool_size=2, max_overflow=2)

    def cpu_roots(self) -> dict[str, list[int]]:
        """Groups for :class:`bench.cpu.CpuSampler`: each service, Postgres, RabbitMQ, the bench."""
        roots: dict[str, list[int]] = {"bench": [os.getpid()]}
        for name, process in self.processes.processes.items():
            if name == "up":
                roots.update(_up_children(process.pid))
            else:
                roots.setdefault("receiver" if name == "serve" else name, []).append(process.pid)
        if self.postmaster_pid:  # this run's backends and the shared processes, not other databases'
            roots["postgres"] = postgres_of_database(self.postmaster_pid, make_url(self.database_url).database)
        rabbit = pids_named("beam.smp") if self.mode == "stack" else []  # `up` uses no RabbitMQ
        if rabbit:
            roots["rabbitmq"] = rabbit
        return roots

    def died(self) -> list[str]:
        return self.processes.exited()


def _up_children(up_pid: int) -> dict[str, list[int]]:
    """`payhooks up` and its three children, grouped by the command each runs."""
    groups: dict[str, list[int]] = {"up": [up_pid]}
    try:
        for child in psutil.Process(up_pid).children():
            words = child.cmdline()
            name = next((w for w in ("serve", "dispatcher", "worker") if w in words), "up")
            groups.setdefault("receiver" if name == "serve" else name, []).append(child.pid)
    except psutil.Error:
        pass
    return groups


def find_postmaster(target: Target) -> int | None:
    """The pid of the Postgres server holding the target's database (for CPU figures)."""
    engine = target.engine()
    try:
        with engine.connect() as conn:
            return postmaster_of(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    finally:
        engine.dispose()


# --- stack mode ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackOptions:
    server_url: str
    broker_url: str
    worker_args: str = ""
    serve_args: str = ""
    processout: FakeProcessOut | None = None


def fresh_database(server_url: str) -> tuple[Engine, str, str]:
    """A new database on the server: (an admin engine to drop it with, its name, its URL)."""
    database = f"payhooks_bench_{secrets.token_hex(4)}"
    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    log(f"created database {database}")
    return admin, database, make_url(server_url).set(database=database).render_as_string(hide_password=False)


@contextmanager
def stack_target(options: StackOptions, *, processes: ProcessSet, workdir: Path) -> Iterator[Target]:
    admin, database, database_url = fresh_database(options.server_url)
    queue = f"payhooks-bench-{secrets.token_hex(4)}"
    target = Target(mode="stack", base_url=f"http://127.0.0.1:{free_port()}", database_url=database_url,
                    secrets={}, processes=processes, workdir=workdir)
    try:
        env = _stack_env(target, options, queue)
        _run_upgrade(env, workdir)
        _start_stack(target, options, env)
        target.postmaster_pid = find_postmaster(target)
        yield target
    finally:
        target.teardown["exit_codes"] = processes.stop(
            [n for n in ("serve", "dispatcher", "worker") if n in processes.processes])
        _drop_database(admin, database)
        _delete_queue(options.broker_url, queue)


def _stack_env(target: Target, options: StackOptions, queue: str) -> dict[str, str]:
    generated = devsecrets.generate()  # ProcessOut's Basic auth included
    env = env_without_payhooks(
        PAYHOOKS_DATABASE_URL=target.database_url, PAYHOOKS_BROKER_URL=options.broker_url,
        PAYHOOKS_QUEUE_NAME=queue, PAYHOOKS_DATA_DIR=str(target.workdir / ".payhooks"), **generated,
    )
    if options.processout is not None:
        env.update(options.processout.env())
    target.secrets = {provider: env[variable] for provider, variable in SECRET_VARIABLES.items()}
    return env


def _run_upgrade(env: dict[str, str], workdir: Path) -> None:
    done = subprocess.run([*payhooks_command(), "db", "upgrade"], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"payhooks db upgrade failed:\n{done.stdout}{done.stderr}")


def _start_stack(target: Target, options: StackOptions, env: dict[str, str]) -> None:
    command = payhooks_command()
    bind = target.base_url.removeprefix("http://")
    target.processes.start("serve", [*command, "serve", "--bind", bind, *shlex.split(options.serve_args)],
                           env=env, cwd=target.workdir)
    target.processes.start("dispatcher", [*command, "dispatcher"], env=env, cwd=target.workdir)
    target.processes.start("worker", [*worker_command(), *shlex.split(options.worker_args)],
                           env=env, cwd=target.workdir)
    took = wait_http_ok(f"{target.base_url}/readyz", timeout=90, alive=target.died)
    log(f"receiver ready on {target.base_url} after {took:.1f} s")


def worker_command() -> list[str]:
    """`payhooks worker` with its defaults, spelled as the `celery -A workers worker` it runs,
    plus a node name of its own.

    `payhooks worker` has no ``--hostname``: every worker on a host is ``celery@<host>``,
    and a second one on the same broker dies on its exclusive pidbox queue
    (RESOURCE_LOCKED), which would break, or be broken by, anyone else's worker
    on this machine's RabbitMQ. ``--worker-args`` are appended (same option names).
    """
    celery = code_bin() / "celery"
    command = [str(celery)] if celery.exists() else [sys.executable, "-m", "celery"]
    return [*command, "-A", "workers", "worker", f"--hostname=bench-{secrets.token_hex(3)}@%h",
            "--loglevel=INFO", "--pool=prefork", "--without-gossip", "--without-mingle"]


def _drop_database(admin: Engine, database: str) -> None:
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        log(f"dropped database {database}")
    except Exception as exc:  # report, but finish the clean-up
        log(f"could not drop database {database}: {exc}")
    finally:
        admin.dispose()


def _delete_queue(broker_url: str, queue: str) -> None:
    """Delete the run's queue and its deliveries lane (``<queue>.deliveries``), if declared."""
    from kombu import Connection

    for name in (queue, f"{queue}.deliveries"):
        try:
            with Connection(broker_url, connect_timeout=5) as conn:
                conn.default_channel.queue_delete(name)
            log(f"deleted queue {name}")
        except Exception as exc:  # a queue that was never declared
            log(f"could not delete queue {name}: {type(exc).__name__}: {exc}")


# --- up mode ---------------------------------------------------------------------------------


@contextmanager
def up_target(*, processes: ProcessSet, workdir: Path) -> Iterator[Target]:
    base_url = f"http://127.0.0.1:{free_port()}"
    env = env_without_payhooks()
    processes.start("up", [*payhooks_command(), "up", "--bind", base_url.removeprefix("http://")],
                    env=env, cwd=workdir)
    target = Target(mode="up", base_url=base_url, database_url="", secrets={}, processes=processes,
                    workdir=workdir)
    try:
        took = wait_http_ok(f"{base_url}/readyz", timeout=180, alive=target.died)
        log(f"payhooks up ready on {base_url} after {took:.1f} s")
        _read_up_files(target)
        target.postmaster_pid = find_postmaster(target)
        yield target
    finally:
        target.teardown.update(_stop_up(processes, target.postmaster_pid))


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _read_up_files(target: Target) -> None:
    data_dir = target.workdir / ".payhooks"
    generated = read_env_file(data_dir / "secrets.env")
    target.database_url = read_env_file(data_dir / "runtime.env")["PAYHOOKS_DATABASE_URL"]
    target.secrets = {provider: generated[variable] for provider, variable in SECRET_VARIABLES.items()
                      if variable in generated}


def _stop_up(processes: ProcessSet, postmaster_pid: int | None) -> dict[str, object]:
    """SIGINT to `payhooks up` alone (it stops its children), then check nothing is left."""
    up = processes.processes.get("up")
    if up is None:
        return {}
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
    try:
        code: int | None = up.wait(timeout=90)
    except subprocess.TimeoutExpired:
        code = None
    deadline = time.monotonic() + 15
    while (group_members(up.pid) or _alive(postmaster_pid)) and time.monotonic() < deadline:
        time.sleep(0.3)
    leftovers = group_members(up.pid) + ([postmaster_pid] if _alive(postmaster_pid) else [])
    log(f"payhooks up exited with {code}; leftover processes: {leftovers or 'none'}")
    processes.stop(["up"], sig=signal.SIGKILL, timeout=10)  # only acts on what is still there
    if postmaster_pid and _alive(postmaster_pid):  # the embedded Postgres `up` started: fast shutdown
        os.kill(postmaster_pid, signal.SIGINT)
    return {"up_exit_code": code, "leftover_pids": leftovers}


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
