"""The console's first page: where events stand, the last day hour by hour, what is late.

Each number is bound by an index: the hourly chart is one range scan of
``(final_status, received_at)`` (every final status named, so the index's
first column is an equality) plus the rows in work from the work-queue
indexes, dispatch lag and oldest pending read the partial due index, and
each provider's last event one bounded walk of the newest
events by primary key. The counts by provider and status come from
:mod:`models.stats`, the same function `payhooks stats` uses.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from models.stats import event_counts
from models.tables import (
    DUE_STATUSES,
    EVENT_STATUSES,
    FINAL_STATUSES,
    LEASED_STATUSES,
    event_status_sql,
)
from providers.registry import PROVIDERS

CHART_HOURS = 24
HANDLED = ("succeeded", "ignored")


def hourly(conn: Connection, *, hours: int = CHART_HOURS) -> list[dict[str, Any]]:
    """One row per hour (oldest first, empty hours included): events received in that hour,
    and of those how many are handled (succeeded or ignored) and how many dead now."""
    # Final rows index-only through (final_status, received_at); rows in work through the work-queue indexes.
    in_work = event_status_sql(DUE_STATUSES + LEASED_STATUSES)
    rows = conn.execute(text(f"""
        WITH hours AS (
            SELECT generate_series(date_trunc('hour', now()) - make_interval(hours => :span),
                                   date_trunc('hour', now()), interval '1 hour') AS hour),
        counted AS (
            SELECT date_trunc('hour', received_at) AS hour, count(*) AS received,
                   count(*) FILTER (WHERE final_status = ANY(:handled)) AS handled,
                   count(*) FILTER (WHERE final_status = 'dead') AS dead
              FROM (SELECT received_at, final_status FROM webhook_events
                     WHERE final_status = ANY(:final)
                       AND received_at >= date_trunc('hour', now()) - make_interval(hours => :span)
                    UNION ALL
                    SELECT received_at, NULL FROM webhook_events
                     WHERE {in_work}
                       AND received_at >= date_trunc('hour', now()) - make_interval(hours => :span)) e
             GROUP BY 1)
        SELECT hours.hour, coalesce(received, 0) AS received, coalesce(handled, 0) AS handled,
               coalesce(dead, 0) AS dead
          FROM hours LEFT JOIN counted USING (hour)
         ORDER BY hours.hour"""),
        {"span": hours - 1, "handled": list(HANDLED), "final": list(FINAL_STATUSES)})
    return [dict(row._mapping) for row in rows]


def lateness(conn: Connection) -> dict[str, Any]:
    """How far behind dispatch is (the oldest due row), and the oldest event still pending."""
    row = conn.execute(text("""
        SELECT now() AS at,
               (SELECT extract(epoch FROM now() - min(next_attempt_at)) FROM webhook_events
                 WHERE status = ANY(:due) AND next_attempt_at <= now()) AS dispatch_lag_seconds,
               (SELECT count(*) FROM webhook_events
                 WHERE status = ANY(:due) AND next_attempt_at <= now()) AS due_now,
               (SELECT min(received_at) FROM webhook_events
                 WHERE status = 'pending' AND next_attempt_at IS NOT NULL) AS oldest_pending_at"""),
        {"due": list(DUE_STATUSES)}).one()
    lag = row.dispatch_lag_seconds
    return {"at": row.at, "dispatch_lag_seconds": None if lag is None else max(0.0, float(lag)),
            "due_now": row.due_now, "oldest_pending_at": row.oldest_pending_at}


LAST_RECEIVED_WINDOW = 100_000
"""How many of the newest events (by id, the primary key) the overview reads to find each provider's last."""


def last_received(conn: Connection, *, window: int = LAST_RECEIVED_WINDOW) -> dict[str, Any]:
    """When each provider last sent, among the newest ``window`` events (None: not among them), and
    ``horizon``: the oldest receipt in that window, so "none since <horizon>" is exact.

    One bounded walk of the primary key: no index on ``provider`` is kept for this (it would cost
    every insert of the receiver)."""
    rows = conn.execute(text("""
        SELECT provider, max(received_at) AS last_at, min(received_at) AS oldest, count(*) AS n
          FROM (SELECT provider, received_at FROM webhook_events ORDER BY id DESC LIMIT :window) AS newest
         GROUP BY provider"""), {"window": window}).all()
    last: dict[str, datetime | None] = {provider: None for provider in PROVIDERS}
    last.update({row.provider: row.last_at for row in rows})
    scanned = sum(row.n for row in rows)
    horizon = min((row.oldest for row in rows), default=None) if scanned >= window else None
    return {"last_received": last, "last_received_horizon": horizon}


def overview(conn: Connection) -> dict[str, Any]:
    """Everything the overview page shows, read in the caller's (ideally REPEATABLE READ) transaction."""
    counts = event_counts(conn)
    by_status = {status: sum(c.get(status, 0) for c in counts.values()) for status in EVENT_STATUSES}
    return {"by_provider_status": counts, "by_status": by_status, "total": sum(by_status.values()),
            "hourly": hourly(conn), **last_received(conn), **lateness(conn)}
