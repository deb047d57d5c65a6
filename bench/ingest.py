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
way in the same run (:func:`compare`). Checks: the rows each phase added equal the answers ``accepted``; every
answer was 200 accepted (or 503, reported); no 4xx, no duplicate. Exit 1 when
a check fails, 2 when the run could not be set up; a missed speed target is
printed as MISSED and does not change the exit status.
"""
from __future__ import annotations

import argparse
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import Engine

from bench import ingest_phases as phases
from bench.cpu import CpuSampler
from bench.ingest_report import evaluate, problems_in, render
from bench.summary import REPO, choose_tool, machine, parser, run_bench, scalar
from bench.targets import ServiceOptions, Target, service_target
from testkit.load import SendResult, Signer, WebhookRequest, send_all
from testkit.processes import ProcessSet, log

WARMUP_EVENTS = 250
SETTLE_SECONDS = 2.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parsed = parser("ingest", __doc__, broker="broker URL the receiver is configured with (it never uses it)")
    parsed.add_argument("--rates", default="500,1000,2000",
                        help="fixed offered rates, events/s, comma-separated; '' for none [500,1000,2000]")
    parsed.add_argument("--duration", type=float, default=10.0, help="seconds per phase [10]")
    parsed.add_argument("--saturation", action=argparse.BooleanOptionalAction, default=True,
                        help="run the /healthz baseline and the saturation phase [on]")
    parsed.add_argument("--events", type=int, default=None,
                        help="at most N events per phase [rate × duration; saturation "
                             f"{phases.SATURATION_POOL_PER_S} × duration]")
    parsed.add_argument("--tool", choices=("auto", "wrk", "sender"), default="auto",
                        help="generator of every phase: wrk (paced at the fixed rates, closed loop for /healthz "
                             "and saturation) or testkit/load.py [auto: wrk when installed]")
    parsed.add_argument("--threads", type=int, default=2, help="wrk threads [2]")
    parsed.add_argument("--connections", type=int, default=64, help="connections of every phase [64]")
    parsed.add_argument("--serve-args", default="",
                        help="extra `payhooks serve` options, e.g. '--workers 3 --threads 2' [production defaults]")
    parsed.add_argument("--compare", action="append", default=[], metavar="SERVE_ARGS",
                        help="afterwards, the /healthz and saturation phases of `payhooks serve SERVE_ARGS` on a "
                             "fresh database, in the same run (repeatable), e.g. --compare '--server gunicorn'; "
                             "NAME=VALUE words set the server's environment")
    parsed.add_argument("--compare-commit", default=None, metavar="REF",
                        help="afterwards, the same for the receiver of commit REF (git archive, its defaults)")
    args = parsed.parse_args(argv)
    try:
        args.rates = [float(r) for r in args.rates.replace(" ", "").split(",") if r and r != "none"]
    except ValueError:
        parsed.error("--rates: numbers separated by commas")
    if any(r <= 0 for r in args.rates) or args.duration <= 0 or (args.events is not None and args.events < 1):
        parsed.error("--rates, --duration and --events must be positive")
    choose_tool(parsed, args, "sender")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_bench("ingest", parse_args(argv), _run, render, needs="phases")


def _run(args: argparse.Namespace, processes: ProcessSet, workdir: Path) -> dict[str, Any]:
    options = ServiceOptions(server_url=args.server_url, broker_url=args.broker_url, services=("serve",),
                             serve_args=tuple(shlex.split(args.serve_args)))
    with service_target(options, processes=processes, workdir=workdir) as target:
        figures = _measure(args, target, workdir)
    if args.compare or args.compare_commit:
        figures["compare"] = compare(args, processes, workdir)
    figures["problems"] = problems_in(figures)
    return figures


def _measure(args: argparse.Namespace, target: Target, workdir: Path, *, compared: bool = False) -> dict[str, Any]:
    """Warm up, then each phase: the fixed rates, /healthz and saturation (``compared``: another receiver of
    :func:`compare`, /healthz and saturation only)."""
    engine = target.engine()
    pids: dict[str, int] = {}
    sampler = CpuSampler(roots=lambda: {**target.cpu_roots(), **{k: [v] for k, v in pids.items()}}).start()
    figures: dict[str, Any] = {}
    try:
        workers = wait_for_workers(target, serve_args=None if compared else args.serve_args)
        if not compared:
            time.sleep(3)
            figures["idle_cpu"] = sampler.summary(time.monotonic() - 3.5, time.monotonic())
            figures["settings"] = _settings(args, target, len(workers))
        signer = Signer(target.secrets)
        warm_up(target, signer)
        run_id = secrets.token_hex(3)
        send = phases.Sender(target.base_url, signer, wrk=args.tool == "wrk", duration_s=args.duration,
                             connections=args.connections, threads=args.threads, workdir=workdir, pids=pids)

        def fixed_rate(rate: float) -> phases.Phase:
            count = int(rate * args.duration) if args.events is None else min(args.events, int(rate * args.duration))
            return send.fixed_rate(phases.events(max(1, count), run_id=f"{run_id}r{rate:g}"), rate)

        rates = [] if compared else args.rates
        plan: list[Callable[[], phases.Phase]] = [partial(fixed_rate, rate) for rate in rates]
        if args.saturation or compared:
            count = args.events or int(phases.SATURATION_POOL_PER_S * args.duration)
            plan += [send.healthz, lambda: send.saturation(phases.events(count, run_id=f"{run_id}s"))]
        done = [_counted(engine, phase_fn, sampler) for phase_fn in plan]
    finally:
        sampler.stop()
        engine.dispose()
    figures.update(phases=[_phase_dict(p) for p in done], memory=worker_memory(target))
    if not compared:
        figures["machine"] = machine()
        figures["targets"] = [t.as_dict() for t in evaluate(figures)]
    return figures


def compare(args: argparse.Namespace, processes: ProcessSet, workdir: Path) -> list[dict[str, Any]]:
    """``--compare``/``--compare-commit``: after the main receiver stopped, each other receiver on a fresh
    database, warmed up, through the same /healthz and saturation phases with the same tool and
    connections, so "before" and "after" share the machine's load of that minute. ``--compare-commit
    REF`` runs the receiver of ``git archive REF`` with its own `payhooks serve` defaults on this venv."""
    chosen = [(f"serve {extra}", extra, None) for extra in args.compare]
    if args.compare_commit:
        chosen.append((f"commit {args.compare_commit}", "", args.compare_commit))
    found = []
    for label, serve_args, commit in chosen:
        log(f"comparison: {label}")
        source = None
        if commit:
            source = workdir / f"source-{commit.replace('/', '_')}"
            source.mkdir(parents=True, exist_ok=True)
            archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True, timeout=60)
            subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True, timeout=60)
        words = shlex.split(serve_args)
        env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))  # NAME=VALUE: environment
        options = ServiceOptions(server_url=args.server_url, broker_url=args.broker_url, services=("serve",),
                                 serve_args=tuple(w for w in words if w.split("=", 1)[0] not in env), env=env,
                                 serve_source=source)
        with service_target(options, processes=processes, workdir=workdir) as target:
            found.append({"label": label, **_measure(args, target, workdir, compared=True)})
    return found


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
    return int(scalar(engine, "SELECT count(*) FROM webhook_events"))


def wait_for_workers(target: Target, timeout: float = 60.0, serve_args: str | None = "") -> list[int]:
    """Every receiver worker process started (readyz answered from one of them only): as many as
    ``serve_args`` ask for; None (another tree's receiver, its shape unknown): once none appeared for 2 s."""
    from receiver.server import default_shape

    words = shlex.split(serve_args or "")
    given = words[words.index("--workers") + 1] if "--workers" in words[:-1] else None
    server = words[words.index("--server") + 1] if "--server" in words[:-1] else "granian"
    expected = None if serve_args is None else default_shape(server=server, workers=int(given) if given else None,
                                                             threads=None)[0]
    master = psutil.Process(target.processes.processes["serve"].pid)
    deadline, children, stable_since = time.monotonic() + timeout, [], time.monotonic()
    while time.monotonic() < deadline:
        now = [c.pid for c in master.children()]
        if expected is not None and len(now) >= expected:
            return now
        if len(now) != len(children):
            children, stable_since = now, time.monotonic()
        elif expected is None and children and time.monotonic() - stable_since > 2.0:
            return children
        time.sleep(0.2)
    if expected is None:
        return children
    raise RuntimeError(f"only {len(master.children())} of {expected} receiver workers started")


def warm_up(target: Target, signer: Signer, requests: list[WebhookRequest] | None = None) -> SendResult:
    """Every worker imports its lazy paths and opens its pool before any clock starts: ``requests`` (by
    default distinct events) signed, sent, all accepted."""
    requests = requests or phases.events(WARMUP_EVENTS, run_id=f"warm{secrets.token_hex(2)}")
    signer.sign_all(requests)
    result = send_all(target.base_url, requests, concurrency=16, max_seconds=60)
    if result.accepted != len(requests):
        raise RuntimeError(f"warm-up events were not all accepted: {dict(result.outcomes)}")
    log(f"warm-up: {result.accepted} events accepted")
    return result


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
