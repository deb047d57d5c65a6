"""Steady state under retention: does the table stop growing once a retention period is stored?

    python -m bench.size_steady [--retention-days 3] [--cycles 10] [--rows-per-day 50000] [--no-vacuum]

One fresh database, simulated days. Each cycle is one day of steady traffic:

1. ``--rows-per-day`` final events (the same realistic rows as `bench.size`:
   dedup key, an attempt, an email delivery with its try for every other
   succeeded event) processed during that day, written by SQL;
2. the real retention path: the housekeeper's count fold and its
   :meth:`~workers.housekeeping.Housekeeper.prune` (archive written and
   fsynced, then DELETE, in ``PAYHOOKS_PRUNE_BATCH_SIZE`` batches) with the
   end of the simulated day as its "now", repeated as its ticks would until
   nothing is older than ``--retention-days``;
3. a plain ``VACUUM`` of the pruned tables, standing in for autovacuum
   (which, at its 1-minute naptime and 20 % scale factor, a run of a few
   minutes cannot wait for; see BENCHMARKS.md). ``--no-vacuum`` leaves it
   out, to show that without it the space is never reused;
4. ``pg_total_relation_size`` of ``webhook_events``, ``event_attempts``,
   ``deliveries`` and ``delivery_attempts`` (``event_keys`` is reported apart:
   dedup keys stay ``PAYHOOKS_DEDUP_DAYS``, longer than any run here).

Target (printed met/MISSED): the four tables together, at the larger of
the last two days, are at most :data:`LEVEL_TOLERANCE` above their size at
days retention + 1 and + 2 (see :func:`growth`). Checks (exit 1): every cycle keeps exactly the
retention's days of events, and the archive holds each removed event once.
"""
from __future__ import annotations

import argparse
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench import size_data
from bench.summary import BROKER_URL, TargetCheck, machine, mb, parser, run_bench, target_lines, verdict
from bench.targets import ServiceOptions, service_target
from models import counts
from models.settings import Settings
from testkit.processes import ProcessSet, log
from workers.housekeeping import Housekeeper

PRUNED_TABLES = ("webhook_events", "event_attempts", "deliveries", "delivery_attempts")
LEVEL_TOLERANCE = 0.05
"""The four tables may grow this much (5 %) between the first levelled cycle and the last."""
DAY = timedelta(days=1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parsed = parser("size_steady", __doc__, broker=None)
    parsed.add_argument("--retention-days", type=int, default=3, help="simulated PAYHOOKS_RETENTION_DAYS [3]")
    parsed.add_argument("--cycles", type=int, default=10, help="simulated days [10]; at least retention + 3")
    parsed.add_argument("--rows-per-day", type=int, default=50_000, help="final events per simulated day [50k]")
    parsed.add_argument("--vacuum", action=argparse.BooleanOptionalAction, default=True,
                        help="VACUUM the pruned tables after each day's prune, as autovacuum would [on]")
    args = parsed.parse_args(argv)
    if args.retention_days < 1 or args.cycles < args.retention_days + 3:
        parsed.error("--cycles must be at least --retention-days + 3 (and the retention at least 1 day)")
    return args


def _sizes(engine: Engine) -> dict[str, int]:
    sizes = size_data.table_bytes(engine)
    return {"pruned_tables": sum(sizes[t] for t in PRUNED_TABLES), **sizes}


def _cycle(engine: Engine, keeper: Housekeeper, *, number: int, start, args: argparse.Namespace) -> dict[str, Any]:
    day_end = start + DAY * (number + 1)
    size_data.fill_span(engine, first=number * args.rows_per_day, rows=args.rows_per_day, end_at=day_end,
                        span_s=DAY.total_seconds())
    counts.fold_all(engine, lag_seconds=counts.fold_lag_seconds(lease_seconds=keeper.settings.lease_seconds),
                    budget_seconds=3600)
    removed = 0
    while (batch := keeper.prune(at=day_end)) > 0:  # one tick's budget per call, as the housekeeper's ticks
        removed += batch
    if args.vacuum:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in PRUNED_TABLES:
                conn.execute(text(f"VACUUM {table}"))
    with engine.connect() as conn:
        kept_days = conn.execute(text(
            "SELECT count(DISTINCT date_trunc('day', processed_at - CAST(:start AS timestamptz))), count(*) "
            "FROM webhook_events"), {"start": start}).one()
    return {"cycle": number + 1, "removed": removed, "events": kept_days[1], "days_kept": kept_days[0],
            **_sizes(engine)}


def measure(args: argparse.Namespace, processes: ProcessSet, workdir: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {"machine": machine(), "retention_days": args.retention_days, "cycles": args.cycles,
                               "rows_per_day": args.rows_per_day, "vacuum": args.vacuum, "problems": []}
    with service_target(ServiceOptions(args.server_url, BROKER_URL, services=()), processes=processes,
                        workdir=workdir) as database:
        engine = database.engine()
        archive_dir = workdir / "archive"
        settings = Settings(database_url=database.database_url, retention_days=args.retention_days,
                            archive_dir=str(archive_dir), _env_file=None)
        keeper = Housekeeper(settings=settings, engine=engine, stop_event=threading.Event())
        with engine.connect() as conn:  # simulated days end before the real now: nothing lies in the future
            start = conn.execute(text("SELECT date_trunc('day', now()) - make_interval(days => :d)"),
                                 {"d": args.cycles + 1}).scalar_one()
        series = []
        for number in range(args.cycles):
            series.append(_cycle(engine, keeper, number=number, start=start, args=args))
            log(f"day {number + 1}: {series[-1]}")
        figures["series"] = series
        figures["archive_lines"], figures["archive_distinct_ids"] = size_data.archived(archive_dir)
        with engine.connect() as conn:
            figures["autovacuum_runs"] = dict(conn.execute(text(
                "SELECT relname, autovacuum_count FROM pg_stat_user_tables WHERE relname = ANY(:t)"),
                {"t": list(PRUNED_TABLES)}).all())
        engine.dispose()
    removed = sum(c["removed"] for c in series)
    for c in series:
        expected_days = min(c["cycle"], args.retention_days)
        if c["days_kept"] != expected_days or c["events"] != expected_days * args.rows_per_day:
            figures["problems"].append(f"day {c['cycle']}: {c['events']} events over {c['days_kept']} days kept, "
                                       f"expected {expected_days * args.rows_per_day} over {expected_days}")
    if figures["archive_lines"] != removed or figures["archive_distinct_ids"] != removed:
        figures["problems"].append(f"archive has {figures['archive_lines']} lines "
                                   f"({figures['archive_distinct_ids']} ids) for {removed} removed events")
    figures["target"] = target(figures).as_dict()
    return figures


def growth(figures: dict[str, Any]) -> tuple[float, list[float]]:
    """(growth of the level, growth of each day after the first prune), as fractions.

    The level is the larger size of days retention + 1 and + 2 (the first day
    stores retention + 1 days of rows before its prune; the next one still
    waits for index pages freed by the first vacuum to be recycled), compared
    with the larger size of the last two days. Plain VACUUM may also cut empty
    pages off a table's end, so single days dip below the level.
    """
    sizes = [c["pruned_tables"] for c in figures["series"]]
    first = figures["retention_days"]  # index of day retention + 1
    steps = [b / a - 1 for a, b in zip(sizes[first:], sizes[first + 1:], strict=False)]
    return max(sizes[-2:]) / max(sizes[first:first + 2]) - 1, steps


def target(figures: dict[str, Any]) -> TargetCheck:
    total, _ = growth(figures)
    first = figures["retention_days"] + 1
    return TargetCheck(f"table size levels off: the last two days ≤ {LEVEL_TOLERANCE:.0%} above days "
                       f"{first}–{first + 1}", f"{total:+.1%}", total <= LEVEL_TOLERANCE)


def render(figures: dict[str, Any]) -> str:
    m = figures["machine"]
    lines = [f"payhooks steady-state size benchmark — {m['at']}, {m['cpus']} CPUs, load {m['load_average_1m']}, "
             f"revision {m['revision']}",
             f"retention {figures['retention_days']} days, {figures['rows_per_day']:,} final events a day, "
             f"{figures['cycles']} days; VACUUM after each prune: {'yes' if figures['vacuum'] else 'no'}; "
             f"autovacuum runs during the bench: {figures['autovacuum_runs']}", "",
             "day  removed   events kept  4 tables (events+attempts+deliveries+tries)  event_keys"]
    for c in figures["series"]:
        lines.append(f"{c['cycle']:>3}  {c['removed']:>8,}  {c['events']:>11,}  {mb(c['pruned_tables'], 1):>14}   "
                     f"({', '.join(mb(c[t], 1) for t in PRUNED_TABLES)})  {mb(c['event_keys'], 1)}")
    total, steps = growth(figures)
    lines += ["", f"growth per day from day {figures['retention_days'] + 1}: "
              + ", ".join(f"{s:+.1%}" for s in steps) + f"; level {total:+.1%}", "",
              f"archive: {figures['archive_lines']:,} lines, {figures['archive_distinct_ids']:,} distinct ids",
              "", *target_lines([figures["target"]], "target:"), "",
              verdict(figures["problems"], figures.get("log_dir"))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_bench("size-steady", parse_args(argv), measure, render, needs="series")


if __name__ == "__main__":
    raise SystemExit(main())
