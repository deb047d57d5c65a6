"""A chosen subset of the payhooks services on a fresh database, with settings of the benchmark's own.

:func:`bench.targets.stack_target` always starts the receiver, the dispatcher
and a worker with the defaults; the ingest and duplicate benchmarks want the
receiver alone (so nothing else competes for the CPU), and the retry benchmark
wants a short retry schedule. :func:`service_target` is the same recipe
(``payhooks_bench_<random>`` database, ``payhooks db upgrade``, a queue of its
own, everything stopped and dropped on exit) with ``services`` and ``env``
chosen by the caller. The metrics ports are off unless ``env`` sets them, so
nothing listens beyond the receiver's loopback port.
"""
from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


from bench.common import ProcessSet, free_port, log, payhooks_command, wait_http_ok
from bench.fake_processout import FakeProcessOut
from bench.targets import (
    StackOptions,
    Target,
    _delete_queue,
    _drop_database,
    _run_upgrade,
    _stack_env,
    find_postmaster,
    fresh_database,
    worker_command,
)

ALL_SERVICES = ("serve", "dispatcher", "worker")
QUIET_METRICS = {"PAYHOOKS_DISPATCHER_METRICS_PORT": "0", "PAYHOOKS_WORKER_METRICS_PORT": "0"}


@dataclass(frozen=True)
class ServiceOptions:
    server_url: str
    broker_url: str
    services: tuple[str, ...] = ("serve",)
    env: Mapping[str, str] = field(default_factory=dict)
    """PAYHOOKS_* settings on top of the fresh database, broker, queue and generated secrets."""
    processout: FakeProcessOut | None = None
    serve_args: tuple[str, ...] = ()
    """Extra `payhooks serve` options (``--workers``, ``--threads``) instead of its production defaults."""
    serve_source: Path | None = None
    """Run `payhooks serve` from this source tree (another commit's ``git archive``) instead of ours."""


@contextmanager
def service_target(options: ServiceOptions, *, processes: ProcessSet, workdir: Path) -> Iterator[Target]:
    unknown = set(options.services) - set(ALL_SERVICES)
    if unknown:
        raise ValueError(f"unknown services {sorted(unknown)}; choose from {ALL_SERVICES}")
    admin, database, database_url = fresh_database(options.server_url)
    queue = f"payhooks-bench-{secrets.token_hex(4)}"
    target = Target(mode="services", base_url=f"http://127.0.0.1:{free_port()}", database_url=database_url,
                    secrets={}, processes=processes, workdir=workdir)
    try:
        stack = StackOptions(server_url=options.server_url, broker_url=options.broker_url,
                             processout=options.processout)
        env = {**_stack_env(target, stack, queue), **QUIET_METRICS, **options.env}
        _run_upgrade(env, workdir)
        _start(target, options.services, env, serve_args=options.serve_args, serve_source=options.serve_source)
        target.postmaster_pid = find_postmaster(target)
        yield target
    finally:
        target.teardown["exit_codes"] = processes.stop([n for n in ALL_SERVICES if n in processes.processes])
        _drop_database(admin, database)
        if {"dispatcher", "worker"} & set(options.services):
            _delete_queue(options.broker_url, queue)


def _start(target: Target, services: tuple[str, ...], env: dict[str, str], *, serve_args: tuple[str, ...],
           serve_source: Path | None = None) -> None:
    command = payhooks_command()
    serve = [sys.executable, "-m", "cli"] if serve_source else command
    argv = {"serve": [*serve, "serve", "--bind", target.base_url.removeprefix("http://"), *serve_args],
            "dispatcher": [*command, "dispatcher"], "worker": worker_command()}
    for name in ALL_SERVICES:
        if name in services:
            service_env = _metrics_dir(env, target.workdir / f"metrics-{name}")
            if name == "serve" and serve_source:  # its packages first on the path, ahead of our editable install
                service_env["PYTHONPATH"] = str(serve_source)
            target.processes.start(name, argv[name], env=service_env, cwd=target.workdir)
    if "serve" in services:
        took = wait_http_ok(f"{target.base_url}/readyz", timeout=90, alive=target.died)
        log(f"receiver ready on {target.base_url} after {took:.1f} s")


def _metrics_dir(env: dict[str, str], path: Path) -> dict[str, str]:
    """The service's Prometheus multiprocess files in the run's workdir (removed with it), not /tmp."""
    path.mkdir(parents=True, exist_ok=True)
    return {**env, "PROMETHEUS_MULTIPROC_DIR": str(path)}
