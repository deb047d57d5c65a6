"""Size benchmark: does payhooks cost the same with millions of events stored as with none?

    python -m bench.size [--rows 5000000] [--days 30] [--rounds 3] [--duration 10] [--plans] [--json]

Two fresh databases on the machine's Postgres, each with its own receiver
(`payhooks serve`): one filled by SQL with ``--rows`` final events over
``--days`` of history (bench/size_data.py), one empty. In one run:

1. ingest with wrk (closed loop, 64 connections) against each, alternated
   for ``--rounds`` rounds: accepted/s and p99, median per database;
2. `payhooks stats --json`, `payhooks events list --status dead --since 1h
   --json` and `payhooks events show ID --json` against each (wall time of the
   command, median of 3);
3. an idle `payhooks dispatcher` (housekeeper included, nothing due) on each
   for ``--idle-seconds``: its CPU plus its Postgres backends' CPU;
4. `payhooks prune --older-than <2/3 of --days>d` (a third of the rows,
   archive included) on the filled database while rounds at ``--steady-rate``
   keep ingesting into it: events/s pruned, and the p99 of every request sent
   while pruning against the p99 of every request of ``--steady-rounds``
   rounds at the same rate just before (each side pooled over thousands of
   requests, so one stall of the disk weighs the same on both; every
   round's own p99 is printed too);
5. with ``--plans``: EXPLAIN ANALYZE of every operator query on the filled table.

Checks (exit 1 when one fails): every ingest answer is 200 accepted; the
prune removed exactly the rows older than its cutoff; the archive holds each
removed event once. Speed targets are printed (met/MISSED), never the exit status.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from bench import ingest_phases as phases
from bench import size_data
from bench.size_report import render, targets
from bench.summary import machine, parser, run_bench, scalar
from bench.targets import ServiceOptions, Target, service_target
from testkit.load import Signer, summarize_ms
from testkit.processes import ProcessSet, env_without_payhooks, log, payhooks_command
from testkit.services import delete_queue


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parsed = parser("size", __doc__)
    parsed.add_argument("--rows", type=int, default=5_000_000, help="final events in the filled database [5M]")
    parsed.add_argument("--days", type=float, default=30.0, help="days of history they span [30]")
    parsed.add_argument("--rounds", type=int, default=3, help="alternated ingest rounds per database [3]")
    parsed.add_argument("--duration", type=float, default=10.0, help="seconds per ingest round [10]")
    parsed.add_argument("--connections", type=int, default=64, help="wrk connections [64]")
    parsed.add_argument("--threads", type=int, default=2, help="wrk threads [2]")
    parsed.add_argument("--steady-rate", type=float, default=300.0,
                        help="events/s offered while pruning, and without, for the p99 comparison [300]")
    parsed.add_argument("--idle-seconds", type=float, default=30.0, help="idle dispatcher window [30]")
    parsed.add_argument("--serve-args", default="", help="extra `payhooks serve` options for both receivers")
    parsed.add_argument("--steady-rounds", type=int, default=6,
                        help="rounds at --steady-rate without pruning, before the prune: the p99 it is held to [6]")
    parsed.add_argument("--prune-args", default="",
                        help="extra `payhooks prune` options, e.g. \"--rate 0 --batch-size 250\" [its defaults]")
    parsed.add_argument("--idle-baseline-tree", type=Path, default=None,
                        help="also measure the idle dispatcher of another source tree (e.g. `git archive` of "
                             "an older commit), run as `python -m cli` (before the cli package: `workers.cli`) with it first on PYTHONPATH")
    parsed.add_argument("--plans", action="store_true", help="EXPLAIN ANALYZE the operator queries")
    parsed.add_argument("--prune", action=argparse.BooleanOptionalAction, default=True,
                        help="run the prune-while-ingesting phase [on]")
    return parsed.parse_args(argv)


def _ingest_round(target: Target, *, label: str, args: argparse.Namespace, workdir: Path | None = None,
                  latencies: list[float] | None = None) -> dict[str, Any]:
    """wrk, closed loop (``workdir``), or a fixed rate (open loop, no ``workdir``): the p99 a provider sees
    while something else runs; a fixed rate's every latency is added to ``latencies``."""
    send = phases.Sender(target.base_url, Signer(target.secrets), wrk=workdir is not None, duration_s=args.duration,
                         connections=16 if workdir is None else args.connections, threads=args.threads, workdir=workdir)
    if workdir is None:
        phase = send.fixed_rate(phases.events(int(args.steady_rate * args.duration), run_id=label), args.steady_rate)
    else:
        phase = send.saturation(phases.events(int(phases.SATURATION_POOL_PER_S * args.duration / 4), run_id=label))
    if latencies is not None:
        latencies += phase.latencies_s
    return {"accepted_per_s": round(phase.accepted_per_s, 1), "p99_ms": phase.latency_ms.get("p99"),
            "errors": phase.errors}


def _cli(target: Target, *args: str, env: dict[str, str] | None = None, timeout: float = 3600) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([*payhooks_command(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=target.workdir, env=env or _env(target))
    took = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"payhooks {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return took, done.stdout


def _env(target: Target, **extra: str) -> dict[str, str]:
    return env_without_payhooks(PAYHOOKS_DATABASE_URL=target.database_url,
                                PAYHOOKS_DATA_DIR=str(target.workdir / ".payhooks"), **extra)


def _operator(target: Target, *, event_id: int) -> dict[str, float]:
    commands = {"stats": ("stats", "--json"),
                "events list": ("events", "list", "--status", "dead", "--since", "1h", "--json"),
                "events show": ("events", "show", str(event_id), "--json")}
    return {name: round(statistics.median(_cli(target, *argv)[0] for _ in range(3)), 3)
            for name, argv in commands.items()}


def _idle_dispatcher(target: Target, *, args: argparse.Namespace, processes: ProcessSet,
                     tree: Path | None = None) -> dict[str, Any]:
    """CPU of an idle dispatcher and its Postgres backends; ``tree``: the code of another source tree."""
    queue = f"payhooks-size-{target.database_url.rsplit('/', 1)[-1]}"
    env = _env(target, PAYHOOKS_BROKER_URL=args.broker_url, PAYHOOKS_QUEUE_NAME=queue,
               PAYHOOKS_DISPATCHER_METRICS_PORT="0", PAYHOOKS_RETENTION_DAYS="0")
    command = [*payhooks_command(), "dispatcher"]
    if tree is not None:
        env["PYTHONPATH"] = str(tree.resolve())
        command = [sys.executable, "-m", "cli" if (tree / "cli" / "__main__.py").exists() else "workers.cli",
                   "dispatcher"]
    name = f"dispatcher-{queue}{'-baseline' if tree else ''}"
    process = processes.start(name, command, env=env, cwd=target.workdir)
    try:
        time.sleep(5)  # started, first gauges and first housekeeping tick done
        engine = target.engine()
        with engine.connect() as conn:
            backends = list(conn.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'payhooks-dispatcher' "
                "AND datname = current_database()")).scalars())
        engine.dispose()
        watched = [psutil.Process(process.pid), *(psutil.Process(p) for p in backends if psutil.pid_exists(p))]
        before = [sum(p.cpu_times()[:2]) for p in watched]
        time.sleep(args.idle_seconds)
        after = [sum(p.cpu_times()[:2]) if p.is_running() else b for p, b in zip(watched, before, strict=True)]
        used = [a - b for a, b in zip(after, before, strict=True)]
        return {"dispatcher_pct": round(100 * used[0] / args.idle_seconds, 2),
                "postgres_pct": round(100 * sum(used[1:]) / args.idle_seconds, 2),
                "total_pct": round(100 * sum(used) / args.idle_seconds, 2), "backends": len(backends)}
    finally:
        processes.stop([name])
        delete_queue(args.broker_url, queue, report=log)


def _prune_while_ingesting(big: Target, *, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    older_days = args.days * 2 / 3
    archive_dir = workdir / "archive"
    engine = big.engine()
    with engine.connect() as conn:
        expected = conn.execute(text(
            "SELECT count(*) FROM webhook_events WHERE final_status IN ('succeeded', 'dead', 'ignored') "
            "AND processed_at < now() - make_interval(secs => :s)"), {"s": older_days * 86400}).scalar_one()
    before = size_data.table_bytes(engine)
    without: list[float] = []
    during: list[float] = []
    baseline = [_ingest_round(big, label=f"steady{n}", args=args, latencies=without)
                for n in range(args.steady_rounds)]
    log(f"steady ingest without pruning: {baseline}")
    command = [*payhooks_command(), "prune", "--older-than", f"{older_days:g}d", "--yes", "--by", "bench.size",
               *args.prune_args.split()]
    log(f"pruning {expected:,} events older than {older_days:g} days while ingesting")
    started = time.monotonic()
    prune = subprocess.Popen(command, cwd=big.workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=_env(big, PAYHOOKS_ARCHIVE_DIR=str(archive_dir)))
    rounds = []
    while prune.poll() is None or not rounds:
        rounds.append(_ingest_round(big, label=f"prune{len(rounds)}", args=args, latencies=during))
    output = prune.communicate()[0]
    took = time.monotonic() - started if prune.returncode == 0 else None
    with engine.connect() as conn:
        action = conn.execute(text("SELECT count, filter ->> 'cutoff' AS cutoff FROM operator_actions "
                                   "WHERE action = 'prune' ORDER BY id DESC LIMIT 1")).one_or_none()
        removed = action.count if action else 0
        # the prune's own cutoff is a moment later than the count above: check against it
        left_behind = conn.execute(text(
            "SELECT count(*) FROM webhook_events WHERE final_status IN ('succeeded', 'dead', 'ignored') "
            "AND processed_at < CAST(:cutoff AS timestamptz)"), {"cutoff": action.cutoff}).scalar_one() \
            if action else None
    lines, ids = size_data.archived(archive_dir)
    after = size_data.table_bytes(engine)
    engine.dispose()
    # the prune's own wall time includes counting the candidates; the rate is over all of it
    return {"expected": expected, "removed": removed, "left_behind": left_behind, "seconds": None if took is None else round(took, 1),
            "events_per_s": None if not took else round(removed / took), "exit": prune.returncode,
            "archive_lines": lines, "archive_distinct_ids": ids, "output": output.strip()[-300:],
            "ingest_rounds": rounds, "steady_without": baseline, "bytes_before": before, "bytes_after": after,
            "pooled_p99_ms": {"without": summarize_ms(without)["p99"], "during": summarize_ms(during)["p99"],
                              "requests_without": len(without), "requests_during": len(during)},
            "archive_bytes": sum(p.stat().st_size for p in archive_dir.glob("*"))}


def measure(args: argparse.Namespace, processes: ProcessSet, workdir: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {"machine": machine(), "rows": args.rows, "days": args.days, "problems": []}
    options = {"server_url": args.server_url, "broker_url": args.broker_url,
               "serve_args": tuple(args.serve_args.split())}
    with ExitStack() as stack:
        targets_by_name: dict[str, Target] = {}
        for name in ("filled", "empty"):
            (workdir / name).mkdir()
            (processes.log_dir / name).mkdir()
            targets_by_name[name] = stack.enter_context(service_target(
                ServiceOptions(**options), processes=ProcessSet(processes.log_dir / name), workdir=workdir / name))
        big, empty = targets_by_name["filled"], targets_by_name["empty"]
        engine = big.engine()
        figures["fill"] = size_data.fill(engine, rows=args.rows, days=args.days)
        log(f"fill: {figures['fill']}")
        for name, target in targets_by_name.items():  # first connections, pools, caches: not measured
            _ingest_round(target, label=f"warm{name}", args=args, workdir=workdir)
        rounds: dict[str, list[dict[str, Any]]] = {"filled": [], "empty": []}
        for number in range(args.rounds):
            order = ("filled", "empty") if number % 2 == 0 else ("empty", "filled")
            for name in order:
                rounds[name].append(_ingest_round(targets_by_name[name], label=f"{name}{number}", args=args,
                                                  workdir=workdir))
                log(f"round {number} {name}: {rounds[name][-1]}")
        figures["ingest"] = {name: {"rounds": r, "median_accepted_per_s": statistics.median(
            x["accepted_per_s"] for x in r), "median_p99_ms": statistics.median(x["p99_ms"] or 0 for x in r)}
            for name, r in rounds.items()}
        ids = {"filled": args.rows // 2 or 1, "empty": scalar(empty.engine(), "SELECT max(id) FROM webhook_events")
               or 1}
        both = targets_by_name.items()
        figures["operator_s"] = {n: _operator(t, event_id=ids[n]) for n, t in both}
        figures["query_s"] = {n: size_data.query_seconds(t.engine(), event_id=ids[n]) for n, t in both}
        log(f"operator commands: {figures['operator_s']}")
        for target in (big, empty):  # nothing due: the dispatcher is idle
            with target.engine().begin() as conn:
                conn.execute(text("UPDATE webhook_events SET status = 'ignored', processed_at = now(), "
                                  "next_attempt_at = NULL WHERE status = 'pending' AND next_attempt_at IS NOT NULL"))
        idle = {"idle_dispatcher": None, **({"idle_dispatcher_baseline": args.idle_baseline_tree}
                                            if args.idle_baseline_tree else {})}
        for key, tree in idle.items():  # the baseline: the same phase, same databases, the other tree's dispatcher
            figures[key] = {n: _idle_dispatcher(t, args=args, processes=processes, tree=tree) for n, t in both}
        log(f"idle dispatcher: {figures['idle_dispatcher']}")
        if args.plans:
            figures["plans"] = size_data.plans(engine, event_id=args.rows // 2 or 1)
        log(f"queries alone: {figures['query_s']}")
        if args.prune:
            figures["prune"] = _prune_while_ingesting(big, args=args, workdir=workdir)
        engine.dispose()
    figures["targets"] = [t.as_dict() for t in targets(figures)]
    prune = figures.get("prune")
    if prune is None:
        return figures
    checks = [(prune["exit"] != 0, f"payhooks prune exited {prune['exit']}"),
              (prune["left_behind"] != 0, f"prune left {prune['left_behind']} final events older than its cutoff"),
              (prune["removed"] < prune["expected"],
               f"prune removed {prune['removed']} of {prune['expected']} old final events"),
              (prune["archive_lines"] != prune["removed"] or prune["archive_distinct_ids"] != prune["removed"],
               f"archive has {prune['archive_lines']} lines ({prune['archive_distinct_ids']} distinct ids) for "
               f"{prune['removed']} removed events")]
    figures["problems"] += [message for failed, message in checks if failed]
    figures["problems"] += [f"ingest into {name}: {r['errors']}" for name, data in figures["ingest"].items()
                            for r in data["rounds"] if r["errors"]]
    figures["problems"] += [f"ingest while pruning: {r['errors']}"
                            for r in [*prune["ingest_rounds"], *prune["steady_without"]] if r["errors"]]
    return figures


def main(argv: list[str] | None = None) -> int:
    return run_bench("size", parse_args(argv), measure, render, needs="ingest")


if __name__ == "__main__":
    raise SystemExit(main())
