"""End-to-end benchmark: N paid events for N registered orders, receiver → dispatcher → workers.

    python -m bench.e2e [--mode stack] [--events 10000] [--concurrency 32] [--rate R] [--json]

Before the clock: the target runs (separate processes on the machine's
Postgres and RabbitMQ, a fake ProcessOut API), the orders (all five providers)
are inserted, one warm-up event per provider has gone all the way through, and
every request is built and signed. The clock starts at the first POST. Figures:
the send rate, the time until every event is final (succeeded/ignored/dead),
receive→done percentiles from the event rows, per-order delivery checks and
which processes used the CPU. Exit status 1 when an event is lost, not
succeeded, or had an effect twice; 2 when the run could not be set up.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.cpu import CpuSampler
from bench.e2e_report import collect, problems_in, render
from bench.ingest import warm_up
from bench.summary import parser, run_bench, scalar
from bench.table_stats import TableStats
from bench.targets import ALL_SERVICES, ServiceOptions, Target, service_target, wait_final
from bench.workload import ALL_PROVIDERS, Workload, build_workload, insert_orders
from testkit.fakes import start_simulator
from testkit.load import Signer, send_all
from testkit.processes import CODE_BIN_VARIABLE, ProcessSet, log

PRESIGN_LIMIT_SECONDS = 120.0
"""Pre-signed Yoco/Smartpay/ShadhinPay timestamps stay valid (≥ 180 s tolerance) for a run this long."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parsed = parser("e2e", __doc__, broker="stack: RabbitMQ")
    parsed.add_argument("--mode", choices=("stack",), default="stack")
    parsed.add_argument("--events", type=int, default=10_000, help="events (and orders) [10000]")
    parsed.add_argument("--concurrency", type=int, default=32, help="requests in flight [32]")
    parsed.add_argument("--rate", type=float, default=None, help="offer R events/s instead of max speed")
    parsed.add_argument("--timeout", type=float, default=300.0,
                        help="seconds from the first POST until every event must be final [300]")
    parsed.add_argument("--worker-args", default="",
                        help='extra `payhooks worker` args, e.g. "--pool threads --concurrency 8"')
    parsed.add_argument("--serve-args", default="", help='extra `payhooks serve` args, e.g. "--workers 3"')
    parsed.add_argument("--code", default=None, metavar="BIN_DIR",
                        help="run payhooks from this virtualenv bin directory (another checkout, e.g. "
                             "the baseline), measured by this bench")
    args = parsed.parse_args(argv)
    if args.events < 1 or args.concurrency < 1 or (args.rate is not None and args.rate <= 0):
        parsed.error("--events, --concurrency and --rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.code:
        if not (Path(args.code) / "payhooks").exists():
            print(f"--code: no payhooks script in {args.code}", file=sys.stderr)
            return 2
        os.environ[CODE_BIN_VARIABLE] = str(Path(args.code).resolve())
    return run_bench("e2e", args, _run, render)


def _run(args: argparse.Namespace, processes: ProcessSet, workdir: Path) -> dict[str, Any]:
    run_id = secrets.token_hex(3)
    workload = build_workload(args.events, ALL_PROVIDERS, run_id=run_id)
    warmup = build_workload(len(ALL_PROVIDERS), ALL_PROVIDERS, run_id=f"{run_id}w", seed=2)
    events = {**warmup.processout_events, **workload.processout_events}
    fake = start_simulator(processes, events, workdir=workdir)
    log(f"fake ProcessOut API on {fake.url} with {len(events)} events")
    options = ServiceOptions(server_url=args.server_url, broker_url=args.broker_url, services=ALL_SERVICES,
                             mode="stack", quiet=False, worker_args=tuple(shlex.split(args.worker_args)),
                             serve_args=tuple(shlex.split(args.serve_args)), processout=fake)
    with service_target(options, processes=processes, workdir=workdir) as target:
        figures = _measure(args, target, workload, warmup)
    figures["teardown"] = target.teardown
    figures["problems"] = problems_in(figures)
    figures["ok"] = not figures["problems"]
    return figures


def _measure(args: argparse.Namespace, target: Target, workload: Workload, warmup: Workload) -> dict[str, Any]:
    engine = target.engine()
    try:
        signer = Signer(target.secrets)
        insert_orders(engine, warmup.orders + workload.orders)
        log(f"inserted {len(warmup.orders) + len(workload.orders)} orders")
        min_id = _warm_up(target, engine, warmup, signer)
        presign = args.rate is None or args.events / args.rate <= PRESIGN_LIMIT_SECONDS
        if presign:
            signer.sign_all(workload.requests)
        table_stats = TableStats(engine).start()
        sampler = CpuSampler(roots=target.cpu_roots).start()
        log(f"sending {len(workload.requests)} events {f'at {args.rate:g}/s' if args.rate else 'as fast as possible'}, "
            f"concurrency {args.concurrency}")
        result = send_all(target.base_url, workload.requests, concurrency=args.concurrency, rate=args.rate,
                          signer=signer, max_seconds=args.timeout)
        log(f"sent {result.sent} in {result.duration:.2f} s ({result.sent / result.duration:.0f}/s): "
            f"{dict(result.outcomes)}")
        done = wait_final(engine, target, started=result.started, timeout=args.timeout, expect=result.accepted,
                          min_id=min_id)
        sampler.stop()
        writes = table_stats.stop(events=result.accepted)
        figures = collect(engine, min_id=min_id, prefix=workload.prefix, result=result,
                          all_final=done["all_final"])
    finally:
        engine.dispose()
    figures.update({
        "mode": args.mode, "events": args.events, "providers": workload.by_provider(),
        "concurrency": args.concurrency, "offered_rate": args.rate, "presigned": presign,
        "worker_args": args.worker_args or "(defaults)", "serve_args": args.serve_args or "(defaults)",
        "base_url": target.base_url, "code": os.environ.get(CODE_BIN_VARIABLE) or "(this checkout)",
        "wait": done, "writes": writes,
        "cpu": sampler.summary(result.started, result.started + done["seconds_after_first_post"])})
    return figures


def _warm_up(target: Target, engine, warmup: Workload, signer: Signer) -> int:
    """One event per provider all the way through; returns the highest event id (the run's floor)."""
    result = warm_up(target, signer, warmup.requests)
    done = wait_final(engine, target, started=result.started, timeout=90, expect=result.accepted)
    if not done["all_final"]:
        raise RuntimeError(f"warm-up events did not finish: {done}")
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT status, count(*) FROM webhook_events GROUP BY status")).all())
    floor = scalar(engine, "SELECT coalesce(max(id), 0) FROM webhook_events")
    if statuses != {"succeeded": len(warmup.requests)}:
        raise RuntimeError(f"warm-up events ended {statuses}; see the worker log")
    log(f"warm-up: {len(warmup.requests)} events succeeded in {done['seconds_after_first_post']:.1f} s")
    return floor


if __name__ == "__main__":
    sys.exit(main())
