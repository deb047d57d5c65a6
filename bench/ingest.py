"""Ingest benchmark: distinct signed events from all five providers into `payhooks serve`, nothing else.

    python -m bench.ingest [--rates 500,1000,2000] [--duration 10] [--saturation|--no-saturation]
                           [--events N] [--tool auto|wrk|sender] [--json]

The receiver runs alone (no dispatcher, no worker) with its production
defaults (``payhooks serve``: granian, one worker process per CPU) on a fresh database of the machine's Postgres. After a warm-up, each
phase sends events nobody sent before (distinct ids, signed just before the
phase): one phase per fixed offered rate (wrk paced at that rate; testkit/load.py, open loop,
without wrk), then
the bare ``GET /healthz`` rate and the saturation phase, both with wrk
(closed loop, same threads and connections), whose ratio is the receiver's
overhead over its bare HTTP stack. Every phase prints accepted/s,
p50/p90/p99 latency, errors, which tool measured it and who used the CPU
("other" is load this run did not start); at the end, each worker process's
RSS. ``--compare``/``--compare-commit`` then measure other receivers the same
way in the same run (bench/ingest_compare.py). Checks: the rows each phase added equal the answers ``accepted``; every
answer was 200 accepted (or 503, reported); no 4xx, no duplicate. Exit 1 when
a check fails, 2 when the run could not be set up; a missed speed target is
printed as MISSED and does not change the exit status.
"""
from __future__ import annotations

import argparse
import secrets
import shlex
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import Engine, text

from bench import ingest_phases as phases
from bench import wrk
from bench.cpu import CpuSampler
from bench.ingest_report import evaluate, problems_in, render
from bench.summary import machine, run_bench
from bench.targets import ServiceOptions, Target, service_target
from testkit.load import Signer, send_all
from testkit.processes import ProcessSet, log

WARMUP_EVENTS = 250
SETTLE_SECONDS = 2.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="500,1000,2000",
                        help="fixed offered rates, events/s, comma-separated; '' for none [500,1000,2000]")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase [10]")
    parser.add_argument("--saturation", action=argparse.BooleanOptionalAction, default=True,
                        help="run the /healthz baseline and the saturation phase [on]")
    parser.add_argument("--events", type=int, default=None,
                        help="at most N events per phase [rate × duration; saturation "
                             f"{phases.SATURATION_POOL_PER_S} × duration]")
    parser.add_argument("--tool", choices=("auto", "wrk", "sender"), default="auto",
                        help="generator of every phase: wrk (paced at the fixed rates, closed loop for /healthz "
                             "and saturation) or testkit/load.py [auto: wrk when installed]")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads [2]")
    parser.add_argument("--connections", type=int, default=64, help="connections of every phase [64]")
    parser.add_argument("--serve-args", default="",
                        help="extra `payhooks serve` options, e.g. '--workers 3 --threads 2' [production defaults]")
    parser.add_argument("--compare", action="append", default=[], metavar="SERVE_ARGS",
                        help="afterwards, the /healthz and saturation phases of `payhooks serve SERVE_ARGS` on a "
                             "fresh database, in the same run (repeatable), e.g. --compare '--server gunicorn'; "
                             "NAME=VALUE words set the server's environment")
    parser.add_argument("--compare-commit", default=None, metavar="REF",
                        help="afterwards, the same for the receiver of commit REF (git archive, its defaults)")
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="Postgres server on which a fresh database is created")
    parser.add_argument("--broker-url", default="amqp://guest:guest@127.0.0.1:5672//",
                        help="broker URL the receiver is configured with (it never uses it)")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object of the figures")
    args = parser.parse_args(argv)
    try:
        args.rates = [float(r) for r in args.rates.replace(" ", "").split(",") if r and r != "none"]
    except ValueError:
        parser.error("--rates: numbers separated by commas")
    if any(r <= 0 for r in args.rates) or args.duration <= 0 or (args.events is not None and args.events < 1):
        parser.error("--rates, --duration and --events must be positive")
    if args.tool == "auto":
        args.tool = "wrk" if wrk.available() else "sender"
    elif args.tool == "wrk" and not wrk.available():
        parser.error("--tool wrk: wrk is not installed (apt-get install -y wrk)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench("ingest", args, lambda processes, workdir: _run(args, processes, workdir), render)


def _run(args: argparse.Namespace, processes: ProcessSet, workdir: Path) -> dict[str, Any]:
    options = ServiceOptions(server_url=args.server_url, broker_url=args.broker_url, services=("serve",),
                             serve_args=tuple(shlex.split(args.serve_args)))
    with service_target(options, processes=processes, workdir=workdir) as target:
        figures = _measure(args, target, workdir)
    if args.compare or args.compare_commit:
        from bench.ingest_compare import measure_all

        figures["compare"] = measure_all(args, processes, workdir)
    figures["problems"] = problems_in(figures)
    return figures


def _measure(args: argparse.Namespace, target: Target, workdir: Path) -> dict[str, Any]:
    engine = target.engine()
    pids: dict[str, int] = {}
    sampler = CpuSampler(roots=lambda: {**target.cpu_roots(), **{k: [v] for k, v in pids.items()}}).start()
    try:
        workers = wait_for_workers(target, serve_args=args.serve_args)
        time.sleep(3)
        idle_cpu = sampler.summary(time.monotonic() - 3.5, time.monotonic())
        signer = Signer(target.secrets)
        warm_up(target, signer)
        run_id = secrets.token_hex(3)
        done = [_counted(engine, phase_fn, sampler)
                for phase_fn in _plan(args, target, signer, workdir, pids, run_id)]
    finally:
        sampler.stop()
        engine.dispose()
    figures: dict[str, Any] = {
        "machine": machine(), "settings": _settings(args, target, len(workers)), "idle_cpu": idle_cpu,
        "phases": [_phase_dict(p) for p in done], "memory": worker_memory(target),
    }
    figures["targets"] = [t.as_dict() for t in evaluate(figures)]
    return figures


def _plan(args: argparse.Namespace, target: Target, signer: Signer, workdir: Path, pids: dict[str, int],
          run_id: str) -> list[Callable[[], phases.Phase]]:
    """One callable per phase, each returning a :class:`~bench.ingest_phases.Phase`."""
    plan: list[Callable[[], phases.Phase]] = [
        partial(_fixed_rate, args, target, signer, rate=rate, run_id=run_id, workdir=workdir, pids=pids)
        for rate in args.rates]
    if args.saturation:
        plan.append(lambda: _healthz(args, target, workdir, pids))
        plan.append(lambda: _saturation(args, target, signer, workdir, pids, run_id))
    return plan


def _fixed_rate(args: argparse.Namespace, target: Target, signer: Signer, *, rate: float, run_id: str,
                workdir: Path, pids: dict[str, int]) -> phases.Phase:
    count = int(rate * args.duration)
    if args.events is not None:
        count = min(args.events, count)
    requests = phases.events(max(1, count), run_id=f"{run_id}r{rate:g}")
    if args.tool == "wrk":
        return phases.wrk_fixed_rate(target.base_url, requests, rate=rate, signer=signer, duration_s=args.duration,
                                     threads=args.threads, connections=args.connections, workdir=workdir,
                                     pids=pids)
    return phases.fixed_rate(target.base_url, requests, rate=rate, signer=signer, concurrency=args.connections)


def _healthz(args: argparse.Namespace, target: Target, workdir: Path, pids: dict[str, int]) -> phases.Phase:
    if args.tool == "wrk":
        return phases.wrk_healthz(target.base_url, duration_s=args.duration, threads=args.threads,
                                  connections=args.connections, workdir=workdir, pids=pids)
    return phases.sender_healthz(target.base_url, duration_s=args.duration, concurrency=args.connections)


def _saturation(args: argparse.Namespace, target: Target, signer: Signer, workdir: Path,
                pids: dict[str, int], run_id: str) -> phases.Phase:
    count = args.events or int(phases.SATURATION_POOL_PER_S * args.duration)
    requests = phases.events(count, run_id=f"{run_id}s")
    if args.tool == "wrk":
        return phases.wrk_saturation(target.base_url, requests, signer=signer, duration_s=args.duration,
                                     threads=args.threads, connections=args.connections, workdir=workdir,
                                     pids=pids)
    return phases.sender_saturation(target.base_url, requests, signer=signer, concurrency=args.connections,
                                    duration_s=args.duration)


def _counted(engine: Engine, run_phase: Callable[[], phases.Phase], sampler: CpuSampler) -> phases.Phase:
    """Run one phase; count the rows it added and the CPU it used; let the machine settle."""
    before = _rows(engine)
    phase = run_phase()
    phase.rows_added = _rows(engine) - before
    phase.cpu = sampler.summary(phase.started, phase.ended)
    log(f"phase {phase.name}: {phase.accepted} accepted in {phase.window_s:.2f} s "
        f"({phase.accepted_per_s:.0f}/s), rows +{phase.rows_added}, answers {phase.answers}")
    time.sleep(SETTLE_SECONDS)
    return phase


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM webhook_events")).scalar_one())


def wait_for_workers(target: Target, timeout: float = 60.0, serve_args: str = "") -> list[int]:
    """Every receiver worker process started (readyz answered from one of them only)."""
    from receiver.server import default_shape

    words = shlex.split(serve_args)
    given = words[words.index("--workers") + 1] if "--workers" in words[:-1] else None
    server = words[words.index("--server") + 1] if "--server" in words[:-1] else "granian"
    expected = default_shape(server=server, workers=int(given) if given else None, threads=None)[0]
    master = psutil.Process(target.processes.processes["serve"].pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [c.pid for c in master.children()]
        if len(children) >= expected:
            return children
        time.sleep(0.2)
    raise RuntimeError(f"only {len(master.children())} of {expected} receiver workers started")


def warm_up(target: Target, signer: Signer) -> None:
    """Every worker imports its lazy paths and opens its pool before any clock starts."""
    requests = phases.events(WARMUP_EVENTS, run_id=f"warm{secrets.token_hex(2)}")
    signer.sign_all(requests)
    result = send_all(target.base_url, requests, concurrency=16, max_seconds=60)
    if result.accepted != len(requests):
        raise RuntimeError(f"warm-up events were not all accepted: {dict(result.outcomes)}")
    log(f"warm-up: {result.accepted} events accepted")


def worker_memory(target: Target) -> dict[str, Any]:
    """RSS, USS and PSS (MB) of the receiver's main process and of each worker process, now.

    RSS counts every shared page in full in every process (granian's 21 MB library maps about
    15 MB into each); PSS divides shared pages among the processes that share them."""
    serve = target.processes.processes.get("serve")
    if serve is None:
        return {}
    master = psutil.Process(serve.pid)
    workers = {}
    for child in master.children():
        try:
            info = child.memory_full_info()
            workers[child.pid] = {"rss_mb": round(info.rss / 2**20, 1), "uss_mb": round(info.uss / 2**20, 1),
                                  "pss_mb": round(getattr(info, "pss", 0) / 2**20, 1)}
        except psutil.Error:
            continue
    return {"master_rss_mb": round(master.memory_info().rss / 2**20, 1), "workers": workers}


def _settings(args: argparse.Namespace, target: Target, workers: int) -> dict[str, Any]:
    return {"rates": args.rates, "duration_s": args.duration, "saturation": args.saturation,
            "events_cap": args.events, "tool": args.tool, "threads": args.threads,
            "connections": args.connections, "receiver_workers": workers, "serve_args": args.serve_args,
            "base_url": target.base_url}


def _phase_dict(phase: phases.Phase) -> dict[str, Any]:
    return {"name": phase.name, "tool": phase.tool, "offered_rate": phase.offered_rate, "sent": phase.sent,
            "accepted": phase.accepted, "answers": phase.answers, "errors": phase.errors,
            "window_s": round(phase.window_s, 3), "accepted_per_s": round(phase.accepted_per_s, 1),
            "answered_per_s": round(phase.answered_per_s, 1), "latency_ms": phase.latency_ms,
            "generator": phase.generator, "rows_added": phase.rows_added, "cpu": phase.cpu}


if __name__ == "__main__":
    sys.exit(main())
