"""`payhooks stats`: where events and deliveries stand, as the database clock sees it.

"now" is the database's ``now()``, so the answer does not depend on the
operator's clock. Every number reads an index range bounded by the backlog
or by a recent time window, never the whole history: counts by status come
from :mod:`models.counts`; the rest are separate statements so each can use
its own partial index (one aggregate with several ``FILTER`` clauses would
read every row).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from models.counts import DELIVERIES, EVENTS, counts_by_group, index_bound, totals

RECENT_DEAD_HOURS = 24
LATENCY_WINDOW_MINUTES = 60


def _float(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _recent(conn: Connection, table: str) -> dict[str, Any]:
    """Due retries (the due index) and deaths in the last day (the dead index) of one table."""
    due = conn.execute(text(
        f"SELECT count(*) FROM {table} WHERE status = 'retrying' AND next_attempt_at <= now()")).scalar_one()
    final_column = "final_status" if table == "webhook_events" else "status"  # what its dead index names
    dead = conn.execute(text(
        f"SELECT count(*) FROM {table} WHERE {final_column} = 'dead' "
        f"AND processed_at >= now() - interval '{RECENT_DEAD_HOURS} hours'")).scalar_one()
    return {"due_retries": due, "dead_last_24h": dead}


def event_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """``{provider: {status: n}}`` over every stored event, flat in table size (the console's overview too)."""
    return counts_by_group(conn, EVENTS)


def event_stats(conn: Connection) -> dict[str, Any]:
    by_provider = event_counts(conn)
    by_status = totals(by_provider)
    oldest = conn.execute(text(
        "SELECT extract(epoch FROM now() - min(next_attempt_at)) FROM webhook_events "
        "WHERE status = 'pending' AND next_attempt_at IS NOT NULL")).scalar_one()
    latency = conn.execute(text(f"""
        SELECT count(*) AS n,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at))
                   AS p50,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at))
                   AS p99
          FROM webhook_events
         WHERE final_status IN ('succeeded', 'ignored')
           AND processed_at >= now() - interval '{LATENCY_WINDOW_MINUTES} minutes'""")).one()
    return {
        "by_provider_status": by_provider,
        "by_status": dict(sorted(by_status.items())),
        "total": sum(by_status.values()),
        "oldest_pending_age_seconds": None if oldest is None else max(0.0, _float(oldest) or 0.0),
        **_recent(conn, "webhook_events"),
        "receive_to_done_last_hour": {"count": latency.n, "p50_seconds": _float(latency.p50),
                                      "p99_seconds": _float(latency.p99)},
    }


def delivery_stats(conn: Connection) -> dict[str, Any]:
    by_kind = counts_by_group(conn, DELIVERIES)
    by_status = totals(by_kind)
    return {"by_status": dict(sorted(by_status.items())), "by_kind_status": by_kind,
            "total": sum(by_status.values()), **_recent(conn, "deliveries")}


def collect(conn: Connection) -> dict[str, Any]:
    """Events and deliveries, read in one snapshot (run it in a REPEATABLE READ transaction); every
    statement through an index whatever the statistics say (:func:`models.counts.index_bound`)."""
    at: datetime = conn.execute(text("SELECT now()")).scalar_one()
    with index_bound(conn):
        return {"at": at, "events": event_stats(conn), "deliveries": delivery_stats(conn)}
