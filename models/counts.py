"""Rows by status at a cost that does not grow with history.

``status_counts(conn)`` is what `payhooks stats`, the dispatcher's gauges and
the console read. Three parts, each bounded by something other than the
table's size:

* **non-final rows** (pending, queued, processing, retrying / sending):
  counted exactly, through the partial indexes the dispatcher already uses;
  their number is the backlog, not the history;
* **final rows before the mark**: ``status_tallies``, a few rows per
  provider (or delivery kind) and status, folded in by the housekeeper
  (:func:`fold`) and kept exact by two triggers (a replay that reopens a
  folded row, and retention's DELETE, subtract what they take away);
* **final rows since the mark**: counted through
  ``ix_…_final_processed`` (index-only), at most a few minutes of traffic.

Nothing here touches the worker's transition statements: a counter bumped by
every transition would serialise all workers on a few hot counter rows.

The fold stops :func:`fold_lag_seconds` short of now (the lease plus a
minute, 3 minutes by default): a transition stamps ``processed_at`` with the
clock *before* it commits, so a row stamped just before the new mark may
still be uncommitted; it must not fall between the tally and the live count.
Workers' transactions end within their lease.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text

from models.schema import (
    DELIVERY_FINAL_STATUSES,
    DELIVERY_STATUSES,
    DUE_MARK,
    DUE_STATUSES,
    EVENT_STATUSES,
    FINAL_STATUSES,
    LEASE_MARK,
    LEASED_STATUSES,
    in_values,
)

MIN_FOLD_LAG_SECONDS = 120.0
FOLD_WINDOW_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class Counted:
    table: str
    group: str
    """provider (events) or kind (deliveries)"""
    final: tuple[str, ...]
    statuses: tuple[str, ...]
    open_groups: tuple[tuple[str, ...], ...]
    """The non-final statuses, split as the partial indexes are (due; leased): Postgres matches a
    partial index to a query whose condition implies its predicate, never one list to two."""
    final_column: str = "status"
    """The column the final-row indexes name (events: ``final_status``, which only final rows have)."""
    open_marks: tuple[str, ...] = ()
    """Per open group, what the partial index's predicate says instead of the status, if anything
    (events: ``next_attempt_at IS NOT NULL``; ``lease_expires_at IS NOT NULL``)."""

    def open_where(self, n: int) -> str:
        mark = f" AND {self.open_marks[n]}" if self.open_marks else ""
        return f"{in_values('status', self.open_groups[n])}{mark}"

    @property
    def final_where(self) -> str:
        """The condition of a final row, on the column the final-row indexes name."""
        return in_values(self.final_column, self.final)


EVENTS = Counted("webhook_events", "provider", FINAL_STATUSES, EVENT_STATUSES,
                 (DUE_STATUSES, LEASED_STATUSES), final_column="final_status", open_marks=(DUE_MARK, LEASE_MARK))
DELIVERIES = Counted("deliveries", "kind", DELIVERY_FINAL_STATUSES, DELIVERY_STATUSES,
                     (("pending", "retrying"), ("queued", "sending")))
COUNTED = {c.table: c for c in (EVENTS, DELIVERIES)}


def fold_lag_seconds(*, lease_seconds: float) -> float:
    """How far behind now the fold stops: past the longest a stamped transition can take to commit.

    A worker's batch (which stamps ``processed_at``) is cut by Celery's time
    limit at 75 % of the lease; the sweeper's and replays' transactions are
    short. The lease plus a minute is past all of them.
    """
    return max(MIN_FOLD_LAG_SECONDS, lease_seconds + 60)


def mark_of(conn: Connection, table: str) -> datetime | None:
    return conn.execute(text("SELECT folded_to FROM tally_marks WHERE table_name = :t"),
                        {"t": table}).scalar_one_or_none()


def counts_by_group(conn: Connection, counted: Counted = EVENTS) -> dict[str, dict[str, int]]:
    """``{provider: {status: n}}`` (kinds for deliveries); zero counts left out.

    Exact when ``conn`` is in a REPEATABLE READ transaction (the mark and
    the rows read from one snapshot); otherwise a fold between the
    statements could count one fold's worth twice.
    """
    return merged(final_by_group(conn, counted), open_by_group(conn, counted))


def final_by_group(conn: Connection, counted: Counted = EVENTS) -> dict[str, dict[str, int]]:
    """The final rows: the tallies plus the rows stamped since the mark (a fold moves rows from one
    to the other, so the sum does not change when the housekeeper folds)."""
    mark = mark_of(conn, counted.table)
    out: dict[str, dict[str, int]] = {}
    rows = list(conn.execute(text("SELECT grp, status, n FROM status_tallies WHERE table_name = :t"),
                             {"t": counted.table}))
    # A final row with no processed_at (only ever written by hand) is never folded: count it live.
    since = "" if mark is None else "AND (processed_at >= :mark OR processed_at IS NULL)"
    rows += conn.execute(text(
        f"SELECT {counted.group} AS grp, {counted.final_column} AS status, count(*) AS n FROM {counted.table} "
        f"WHERE {counted.final_where} {since} GROUP BY 1, 2"), {"mark": mark})
    for row in rows:
        _add(out, row.grp, row.status, row.n)
    return out


def open_by_group(conn: Connection, counted: Counted = EVENTS) -> dict[str, dict[str, int]]:
    """The non-final rows, exactly, through the dispatcher's partial indexes (the backlog, not the history).

    Sequential scans and parallel workers are off for these statements
    (:func:`index_bound`): statistics analyzed while a backlog was in the table
    make the planner expect it still, and it would read the whole table with
    parallel workers at every look (a fresh database after a burst: 80 ms per
    count), where the partial indexes hold only the rows still in work (0.5 ms).
    """
    out: dict[str, dict[str, int]] = {}
    with index_bound(conn):
        for n in range(len(counted.open_groups)):
            for row in conn.execute(text(
                    f"SELECT {counted.group} AS grp, status, count(*) AS n FROM {counted.table} "
                    f"WHERE {counted.open_where(n)} GROUP BY 1, 2")):
                _add(out, row.grp, row.status, row.n)
    return out


_INDEX_BOUND = "payhooks.index_bound"


@contextmanager
def index_bound(conn: Connection) -> Iterator[None]:
    """No sequential scan and no parallel workers for the statements inside, in this transaction.

    For statements written to read only an index range bounded by the backlog or
    a recent window: whatever the table's statistics say, they stay that way.
    """
    if conn.info.get(_INDEX_BOUND):  # already inside one (the dispatcher's look, `stats`): nothing to do
        yield
        return
    before = conn.execute(text("SELECT current_setting('enable_seqscan') AS seqscan, "
                               "current_setting('max_parallel_workers_per_gather') AS workers")).one()
    conn.execute(text("SELECT set_config('enable_seqscan', 'off', true), "
                      "set_config('max_parallel_workers_per_gather', '0', true)"))
    conn.info[_INDEX_BOUND] = True
    try:
        yield
    finally:
        conn.info[_INDEX_BOUND] = False
    # Only after success: a failed statement aborted the transaction, which takes the settings with it,
    # and a statement now would replace the error that matters with InFailedSqlTransaction.
    conn.execute(text("SELECT set_config('enable_seqscan', :seqscan, true), "
                      "set_config('max_parallel_workers_per_gather', :workers, true)"), before._asdict())


def final_changes(conn: Connection, counted: Counted = EVENTS) -> tuple[int | None, datetime | None]:
    """Two cheap signs that the final rows changed: Postgres' count of rows inserted, updated and
    deleted in the table (None when ``track_counts`` is off), and the newest ``processed_at`` of a
    final row (one index probe). The first can lag a writer's commit by Postgres' statistics flush
    (up to 10 s); the second moves at once for the common change, a row becoming final now."""
    row = conn.execute(text(f"""
        SELECT (SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables
                 WHERE relid = CAST(:t AS regclass) AND current_setting('track_counts')::boolean) AS changes,
               (SELECT max(processed_at) FROM {counted.table}
                 WHERE {counted.final_where}) AS newest"""),
        {"t": counted.table}).one()
    return row.changes, row.newest


def merged(*parts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for part in parts:
        for group, statuses in part.items():
            for status, n in statuses.items():
                _add(out, group, status, n)
    return {group: dict(sorted(statuses.items())) for group, statuses in sorted(out.items())}


def _add(out: dict[str, dict[str, int]], group: str, status: str, n: int) -> None:
    if n:
        slot = out.setdefault(group, {})
        slot[status] = slot.get(status, 0) + n


def status_counts(conn: Connection, counted: Counted = EVENTS) -> dict[str, int]:
    """``{status: n}`` over every provider (or delivery kind)."""
    return totals(counts_by_group(conn, counted))


def totals(by_group: dict[str, dict[str, int]]) -> dict[str, int]:
    """``{status: n}`` summed over the groups."""
    out: dict[str, int] = {}
    for statuses in by_group.values():
        for status, n in statuses.items():
            out[status] = out.get(status, 0) + n
    return out


def fold(conn: Connection, counted: Counted = EVENTS, *, lag_seconds: float,
         window_seconds: float = FOLD_WINDOW_SECONDS) -> tuple[int, bool]:
    """Move final rows stamped before ``now - lag_seconds`` from the live count into the tallies.

    At most ``window_seconds`` of history per call, so a first fold over
    years of rows is many short transactions, not one long one. Run by the
    housekeeper in its own transaction; the mark row's lock orders it with
    the triggers (which take it FOR SHARE). Returns (rows folded in, caught
    up with ``now - lag``).
    """
    target = conn.execute(text("SELECT clock_timestamp() - make_interval(secs => :lag)"),
                          {"lag": lag_seconds}).scalar_one()
    # The first fold starts at the oldest final row (the index's first entry).
    conn.execute(text(f"""
        INSERT INTO tally_marks (table_name, folded_to)
        SELECT :t, LEAST(COALESCE(min(processed_at), :target), :target) FROM {counted.table}
         WHERE {counted.final_where}
        ON CONFLICT (table_name) DO NOTHING"""), {"t": counted.table, "target": target})
    old = conn.execute(text("SELECT folded_to FROM tally_marks WHERE table_name = :t FOR UPDATE"),
                       {"t": counted.table}).scalar_one()
    new = min(target, old + timedelta(seconds=window_seconds))
    if new <= old:
        return 0, True
    folded = conn.execute(text(f"""
        WITH fresh AS (
            SELECT {counted.group} AS grp, {counted.final_column} AS status, count(*) AS n FROM {counted.table}
             WHERE {counted.final_where} AND processed_at >= :old AND processed_at < :new
             GROUP BY 1, 2),
        merged AS (
            INSERT INTO status_tallies (table_name, grp, status, n)
            SELECT :t, grp, status, n FROM fresh
            ON CONFLICT (table_name, grp, status) DO UPDATE SET n = status_tallies.n + EXCLUDED.n
            RETURNING 1)
        SELECT COALESCE(sum(n), 0) FROM fresh"""), {"t": counted.table, "old": old, "new": new}).scalar_one()
    conn.execute(text("UPDATE tally_marks SET folded_to = :new WHERE table_name = :t"),
                 {"t": counted.table, "new": new})
    return int(folded), new >= target


def fold_all(engine: Engine, *, lag_seconds: float, budget_seconds: float = 5.0) -> int:
    """Fold both tables, one window per transaction, until caught up or the budget is spent."""
    deadline = time.monotonic() + budget_seconds
    folded = 0
    for counted in COUNTED.values():
        done = False
        while not done and time.monotonic() < deadline:
            with engine.begin() as conn:
                n, done = fold(conn, counted, lag_seconds=lag_seconds)
            folded += n
    return folded
