"""Duplicate benchmark: every event delivered many times, shuffled; one row per event, the right id each time.

    python -m bench.duplicates [--events 2000] [--copies 10] [--concurrency 64] [--json]
    python -m bench.duplicates --events 10000 --copies 10     # the issue's 100k deliveries

`payhooks serve` alone (production defaults) on a fresh database. N distinct
paid events (all five providers round-robin) are each delivered ``copies``
times, every delivery signed on its own just before it is sent (as a
provider's redelivery is), all deliveries shuffled and sent in closed loop by
Python threads that keep every answer (testkit/load.py: wrk cannot tell
which answer belongs to which request). Then one more copy of every event,
shuffled: a phase of nothing but duplicates, the duplicate path's own rate.

Figures: requests/s of each phase, and the latency of first deliveries (the
answer ``accepted``) against duplicates. Checks: the run added exactly N
rows; per event exactly one ``accepted`` and the rest ``duplicate``; every
answer names the id of the row holding that body. Exit 1 when a check fails,
2 when the run could not be set up.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import secrets
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.cpu import CpuSampler
from bench.duplicates_report import duplicates_only, phase_figures, render
from bench.ingest import wait_for_workers, warm_up
from bench.ingest_phases import events as distinct_events
from bench.summary import choose_tool, machine, parser, run_bench, scalar
from bench.targets import ServiceOptions, Target, service_target
from testkit.load import Signer, WebhookRequest, send_all
from testkit.processes import ProcessSet, log


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parsed = parser("duplicates", __doc__, broker="broker URL the receiver is configured with (it never uses it)")
    parsed.add_argument("--events", type=int, default=2000, help="distinct events [2000; the issue's: 10000]")
    parsed.add_argument("--copies", type=int, default=10, help="deliveries of each event, shuffled [10]")
    parsed.add_argument("--concurrency", type=int, default=64, help="connections [64]")
    parsed.add_argument("--duplicates-phase", action=argparse.BooleanOptionalAction, default=True,
                        help="then one more copy of every event: duplicates only [on]")
    parsed.add_argument("--tool", choices=("auto", "wrk", "threads"), default="auto",
                        help="duplicates-only phase: wrk (C; checks the ids as a whole) or Python threads "
                             "(checks each answer; 0.5 ms of CPU each) [auto: wrk when installed]")
    parsed.add_argument("--seed", type=int, default=1, help="shuffle seed [1]")
    parsed.add_argument("--timeout", type=float, default=900.0, help="seconds per phase at most [900]")
    args = parsed.parse_args(argv)
    if args.events < 1 or args.copies < 1 or args.concurrency < 1:
        parsed.error("--events, --copies and --concurrency must be positive")
    choose_tool(parsed, args, "threads")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_bench("duplicates", parse_args(argv), _run, render, needs="phases")


def _run(args: argparse.Namespace, processes: ProcessSet, workdir: Path) -> dict[str, Any]:
    options = ServiceOptions(server_url=args.server_url, broker_url=args.broker_url, services=("serve",))
    with service_target(options, processes=processes, workdir=workdir) as target:
        return _measure(args, target, workdir)


def deliveries(bodies: list[WebhookRequest], *, copies: int, seed: int) -> tuple[list[WebhookRequest], list[int]]:
    """``copies`` unsigned deliveries of every event, shuffled; and the event index of each delivery."""
    order = [index for index in range(len(bodies)) for _ in range(copies)]
    random.Random(seed).shuffle(order)
    return [WebhookRequest(provider=bodies[i].provider, body=bodies[i].body) for i in order], order


def _measure(args: argparse.Namespace, target: Target, workdir: Path) -> dict[str, Any]:
    engine = target.engine()
    sampler = CpuSampler(roots=target.cpu_roots).start()
    try:
        wait_for_workers(target)
        signer = Signer(target.secrets)
        warm_up(target, signer)
        floor = scalar(engine, "SELECT coalesce(max(id), 0) FROM webhook_events")
        events = distinct_events(args.events, run_id=secrets.token_hex(3))
        row_of_body = {}
        phases: list[dict[str, Any]] = []
        plan = [("mixed", args.copies, args.seed)] + ([("duplicates only", 1, args.seed + 1)]
                                                       if args.duplicates_phase else [])
        for name, copies, seed in plan:
            requests, event_of = deliveries(events, copies=copies, seed=seed)
            log(f"phase {name}: {len(requests)} deliveries of {len(events)} events, "
                f"concurrency {args.concurrency}")
            if name == "duplicates only" and args.tool == "wrk":
                expected = [row_of_body.get(_digest(events[i].body)) for i in event_of]
                phases.append(duplicates_only(target.base_url, requests, expected_ids=expected, signer=signer,
                                              connections=args.concurrency, max_seconds=args.timeout,
                                              workdir=workdir, sampler=sampler))
                continue
            answers = send_all(target.base_url, requests, concurrency=args.concurrency, signer=signer,
                               max_seconds=args.timeout)
            row_of_body = _rows_by_body(engine, floor)
            expected = [row_of_body.get(_digest(events[i].body)) for i in event_of]
            phases.append(phase_figures(name, answers, event_of, expected, sampler, first_deliveries=name == "mixed"))
        rows = scalar(engine, "SELECT count(*) FROM webhook_events WHERE id > :floor", floor=floor)
    finally:
        sampler.stop()
        engine.dispose()
    problems = [p for phase in phases for p in phase.pop("problems")]
    if rows != args.events:
        problems.insert(0, f"{rows} rows stored for {args.events} distinct events")
    missing = sum(_digest(e.body) not in row_of_body for e in events)
    if missing:
        problems.append(f"{missing} events have no row holding their body")
    return {"machine": machine(), "events": args.events, "copies": args.copies,
            "concurrency": args.concurrency, "rows": rows, "phases": phases, "problems": problems}


def _digest(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def _rows_by_body(engine: Engine, floor: int) -> dict[str, int]:
    """md5 of the stored raw body → the row's id, for the rows of this run."""
    with engine.connect() as conn:
        return {digest: row_id for digest, row_id in conn.execute(
            text("SELECT md5(raw_body), id FROM webhook_events WHERE id > :floor"), {"floor": floor})}


if __name__ == "__main__":
    sys.exit(main())
