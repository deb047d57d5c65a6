"""Retry benchmark: events that fail every attempt on a schedule of seconds; how late is each retry?

    python -m bench.retry [--events 200] [--schedule 1s,2s,3s] [--poll 0.5] [--rate 100] [--json]

A fresh database, `payhooks serve`, `payhooks dispatcher` and `payhooks worker`
(defaults, RabbitMQ), with ``PAYHOOKS_RETRY_SCHEDULE_<PROVIDER>`` = the
schedule for all five providers and ``PAYHOOKS_DISPATCH_POLL_SECONDS`` = the
poll interval. N orders are registered and their paid events posted (all five
providers; ProcessOut's fetched from a local fake API); the custom handler
bench/failing_handler.py (``PAYHOOKS_HANDLER_MODULES``) fails every attempt,
so each event makes 1 + len(schedule) attempts and goes ``dead``.

Lateness of attempt k+1 = its ``started_at`` (the worker's claim) − the due
time the failure of attempt k set. ``next_attempt_at`` is overwritten by each
attempt, so a poller reads every ``retrying`` row's ``next_attempt_at`` every
100 ms into a dict keyed (event, attempts) while the run goes on; a row stays
``retrying`` for at least 90 % of the shortest delay, so every due time is
seen. Both times are the database's ``clock_timestamp()``: no clock skew. As
a cross-check that needs no poller: ``started_at(k+1) − finished_at(k) −
nominal delay``, which also carries the ±10 % jitter. Exit 1 when an event
does not end ``dead`` after exactly 1 + len(schedule) attempts, an attempt
started before it was due, or a due time was missed by the poller; 2 when the
run could not be set up. The lateness target (p99 ≤ poll + 1 s) is printed
as met or MISSED and never changes the exit status.
"""
from __future__ import annotations

import argparse
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.cpu import CpuSampler, Ticker
from bench.retry_report import analyse, render
from bench.summary import REPO, machine, parser, run_bench
from bench.targets import ServiceOptions, Target, service_target, wait_final
from bench.workload import ALL_PROVIDERS, build_workload, insert_orders
from models.retry import RetrySchedule
from testkit.fakes import start_simulator
from testkit.load import Signer, send_all
from testkit.processes import ProcessSet, log, wait_for

POLL_DUE_SECONDS = 0.1
HANDLER_MODULE = "bench.failing_handler"
_RETRYING = text("SELECT id, attempts, EXTRACT(EPOCH FROM next_attempt_at)::float8 FROM webhook_events "
                 "WHERE status = 'retrying'")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parsed = parser("retry", __doc__)
    parsed.add_argument("--events", type=int, default=200, help="events, each failing every attempt [200]")
    parsed.add_argument("--schedule", default="1s,2s,3s", help="retry delays of every provider [1s,2s,3s]")
    parsed.add_argument("--poll", type=float, default=0.5, help="PAYHOOKS_DISPATCH_POLL_SECONDS [0.5]")
    parsed.add_argument("--rate", type=float, default=100.0, help="events posted per second [100]")
    parsed.add_argument("--timeout", type=float, default=None,
                        help="seconds after the first POST until every event must be dead "
                             "[events/rate + 1.1 × the schedule's sum + 60]")
    args = parsed.parse_args(argv)
    try:
        args.delays = [d.total_seconds() for d in RetrySchedule.parse(args.schedule).delays]
    except ValueError as exc:
        parsed.error(f"--schedule: {exc}")
    if args.events < 1 or args.rate <= 0 or not 0 < args.poll <= 1:
        parsed.error("--events and --rate must be positive, --poll in (0, 1]")
    if min(args.delays) * 0.9 <= 3 * POLL_DUE_SECONDS:
        parsed.error(f"--schedule: every delay must exceed {3 * POLL_DUE_SECONDS / 0.9:.2f} s so the poller "
                     "sees each due time")
    if args.timeout is None:
        args.timeout = args.events / args.rate + 1.1 * sum(args.delays) + 60
    return args


def main(argv: list[str] | None = None) -> int:
    return run_bench("retry", parse_args(argv), _run, render, needs="lateness_s")


def _run(args: argparse.Namespace, processes: ProcessSet, workdir: Path) -> dict[str, Any]:
    run_id = secrets.token_hex(3)
    workload = build_workload(args.events, ALL_PROVIDERS, run_id=run_id)
    fake = start_simulator(processes, workload.processout_events, workdir=workdir)
    env = {f"PAYHOOKS_RETRY_SCHEDULE_{p.upper()}": args.schedule for p in ALL_PROVIDERS}
    env.update(PAYHOOKS_DISPATCH_POLL_SECONDS=f"{args.poll:g}", PAYHOOKS_HANDLER_MODULES=HANDLER_MODULE,
               PYTHONPATH=str(REPO))
    options = ServiceOptions(server_url=args.server_url, broker_url=args.broker_url,
                             services=("serve", "dispatcher", "worker"), env=env, processout=fake)
    with service_target(options, processes=processes, workdir=workdir) as target:
        return _measure(args, target, workload)


def _measure(args: argparse.Namespace, target: Target, workload: Any) -> dict[str, Any]:
    engine = target.engine()
    sampler = CpuSampler(roots=target.cpu_roots).start()
    poller = DuePoller(engine)
    try:
        insert_orders(engine, workload.orders)
        _wait_worker_ready(target)
        signer = Signer(target.secrets)
        signer.sign_all(workload.requests)
        poller.start()
        log(f"posting {len(workload.requests)} events at {args.rate:g}/s")
        result = send_all(target.base_url, workload.requests, concurrency=16, rate=args.rate, max_seconds=120)
        waited = wait_final(engine, target, started=result.started, timeout=args.timeout, expect=1, interval=0.5,
                            digits=2)
        waited = {"all_dead": waited.pop("all_final"), **waited}
        poller.stop()
        sampler.stop()
        rows = _read(engine)
    finally:
        poller.stop()
        engine.dispose()
    figures = analyse(rows, due=poller.due, delays=args.delays, attempts_expected=1 + len(args.delays))
    figures.update(machine=machine(), sent=result.figures(), wait=waited, poll_s=args.poll,
                   schedule=args.schedule, events=args.events, poller_errors=poller.errors,
                   cpu=sampler.summary(result.started, result.started + waited["seconds_after_first_post"]))
    if result.accepted != args.events:
        figures["problems"].insert(0, f"{args.events - result.accepted} events not accepted: {dict(result.outcomes)}")
    if not waited["all_dead"]:
        figures["problems"].append(f"not every event dead within {args.timeout:.0f} s: {waited}")
    return figures


@dataclass
class DuePoller(Ticker):
    """Every ``retrying`` row's ``next_attempt_at``, read every 100 ms, keyed (event id, attempts); a missed
    poll (``errors``) shows as an uncaptured due time, reported."""

    engine: Engine
    due: dict[tuple[int, int], float] = field(default_factory=dict)
    interval: float = field(default=POLL_DUE_SECONDS, kw_only=True)

    def tick(self) -> None:
        with self.engine.connect() as conn:
            for event_id, attempts, due in conn.execute(_RETRYING):
                self.due.setdefault((event_id, attempts), due)


def _wait_worker_ready(target: Target, timeout: float = 90.0) -> None:
    """Until the Celery worker logs "ready", so the first attempts do not wait for its start-up."""
    path = target.processes.log_dir / "worker.log"

    def ready() -> bool:
        if died := target.processes.exited():
            raise RuntimeError(f"{', '.join(died)} exited before the worker was ready")
        return path.exists() and " ready." in path.read_text(errors="replace")

    wait_for(ready, timeout=timeout, interval=0.2, message="the worker to log 'ready'")


def _read(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        events = conn.execute(text(
            "SELECT id, provider, status, attempts, EXTRACT(EPOCH FROM received_at)::float8 FROM webhook_events"
        )).all()
        attempts = conn.execute(text(
            """SELECT event_id, number, EXTRACT(EPOCH FROM started_at)::float8,
                      EXTRACT(EPOCH FROM finished_at)::float8, outcome
                 FROM event_attempts ORDER BY event_id, number""")).all()
    return {"events": [tuple(r) for r in events], "attempts": [tuple(r) for r in attempts]}


if __name__ == "__main__":
    sys.exit(main())
