"""`payhooks stats`: where events and deliveries stand, as the database clock sees it.

Every number is one SQL aggregate over the live tables; "now" is the
database's ``now()``, so the answer does not depend on the operator's clock.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

RECENT_DEAD_HOURS = 24
LATENCY_WINDOW_MINUTES = 60


def _float(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def event_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """``{provider: {status: n}}`` over every stored event (the console's overview reads this too)."""
    by_provider: dict[str, dict[str, int]] = {}
    for row in conn.execute(text(
            "SELECT provider, status, count(*) AS n FROM webhook_events GROUP BY provider, status "
            "ORDER BY provider, status")):
        by_provider.setdefault(row.provider, {})[row.status] = row.n
    return by_provider


def event_stats(conn: Connection) -> dict[str, Any]:
    by_provider = event_counts(conn)
    totals: dict[str, int] = {}
    for counts in by_provider.values():
        for status, n in counts.items():
            totals[status] = totals.get(status, 0) + n
    summary = conn.execute(text(f"""
        SELECT extract(epoch FROM now() - min(next_attempt_at) FILTER (WHERE status = 'pending'))
                   AS oldest_pending_age_seconds,
               count(*) FILTER (WHERE status = 'retrying' AND next_attempt_at <= now()) AS due_retries,
               count(*) FILTER (WHERE status = 'dead'
                                  AND processed_at >= now() - interval '{RECENT_DEAD_HOURS} hours')
                   AS dead_last_24h
          FROM webhook_events""")).one()
    latency = conn.execute(text(f"""
        SELECT count(*) AS n,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at))
                   AS p50,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at))
                   AS p99
          FROM webhook_events
         WHERE status IN ('succeeded', 'ignored')
           AND processed_at >= now() - interval '{LATENCY_WINDOW_MINUTES} minutes'""")).one()
    oldest = summary.oldest_pending_age_seconds
    return {
        "by_provider_status": by_provider,
        "by_status": totals,
        "total": sum(totals.values()),
        "oldest_pending_age_seconds": None if oldest is None else max(0.0, _float(oldest) or 0.0),
        "due_retries": summary.due_retries,
        "dead_last_24h": summary.dead_last_24h,
        "receive_to_done_last_hour": {"count": latency.n, "p50_seconds": _float(latency.p50),
                                      "p99_seconds": _float(latency.p99)},
    }


def delivery_stats(conn: Connection) -> dict[str, Any]:
    by_status = {row.status: row.n for row in conn.execute(text(
        "SELECT status, count(*) AS n FROM deliveries GROUP BY status ORDER BY status"))}
    by_kind: dict[str, dict[str, int]] = {}
    for row in conn.execute(text(
            "SELECT kind, status, count(*) AS n FROM deliveries GROUP BY kind, status ORDER BY kind, status")):
        by_kind.setdefault(row.kind, {})[row.status] = row.n
    summary = conn.execute(text(f"""
        SELECT count(*) FILTER (WHERE status = 'retrying' AND next_attempt_at <= now()) AS due_retries,
               count(*) FILTER (WHERE status = 'dead'
                                  AND processed_at >= now() - interval '{RECENT_DEAD_HOURS} hours')
                   AS dead_last_24h
          FROM deliveries""")).one()
    return {"by_status": by_status, "by_kind_status": by_kind, "total": sum(by_status.values()),
            "due_retries": summary.due_retries, "dead_last_24h": summary.dead_last_24h}


def collect(conn: Connection) -> dict[str, Any]:
    """Events and deliveries, read in one snapshot (run it in a REPEATABLE READ transaction)."""
    at: datetime = conn.execute(text("SELECT now()")).scalar_one()
    return {"at": at, "events": event_stats(conn), "deliveries": delivery_stats(conn)}
