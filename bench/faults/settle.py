"""Recovery: how long after the fault until its backlog is handled, and until everything is.

The recovery time is measured from the end of the fault until every event
received up to that moment, and every delivery those events wrote, is in a
final status (events arriving later do not count against it). Polling starts
at the fault's end, in a thread, while the traffic goes on.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from bench.faults.ledger import DELIVERY_FINAL, FINAL, unsettled

POLL_SECONDS = 0.25
BACKLOG_SQL = text("""
    SELECT (SELECT count(*) FROM webhook_events
             WHERE received_at <= to_timestamp(:since) AND status <> ALL(:final))
         + (SELECT count(*) FROM deliveries d JOIN webhook_events e ON e.id = d.event_id
             WHERE e.received_at <= to_timestamp(:since) AND d.status <> ALL(:delivery_final))""")
LAST_SQL = text("""
    (SELECT 'event ' || id || ' (' || provider || ' ' || event_type || ', ' || attempts || ' attempts)' AS what,
            processed_at FROM webhook_events WHERE received_at <= to_timestamp(:since) AND processed_at IS NOT NULL)
    UNION ALL
    (SELECT 'delivery ' || d.id || ' (' || d.kind || ', ' || d.attempts || ' tries)', d.processed_at
       FROM deliveries d JOIN webhook_events e ON e.id = d.event_id
      WHERE e.received_at <= to_timestamp(:since) AND d.processed_at IS NOT NULL)
    ORDER BY processed_at DESC LIMIT 1""")


def _wall(since: float) -> float:
    """The epoch seconds of the time.monotonic() ``since``."""
    return time.time() - (time.monotonic() - since)


def _poll(count: Callable[[], int], *, since: float, deadline: float) -> float | None:
    """Seconds from ``since`` until ``count()`` is 0 (an error counts as not yet); None at ``deadline``."""
    while time.monotonic() < deadline:
        try:
            if count() == 0:
                return time.monotonic() - since
        except SQLAlchemyError:
            pass
        time.sleep(POLL_SECONDS)
    return None


def watch_recovery(engine: Engine, *, since: float, timeout_s: float) -> Callable[[], float | None]:
    """Poll, in a thread, from ``since`` (the fault's end) until its backlog is handled; returns its join,
    which gives the recovery time (None when it did not come within ``timeout_s``)."""
    params = {"since": _wall(since), "final": list(FINAL), "delivery_final": list(DELIVERY_FINAL)}

    def backlog() -> int:
        with engine.connect() as conn:
            return conn.execute(BACKLOG_SQL, params).scalar_one()

    found: list[float | None] = []
    thread = threading.Thread(target=lambda: found.append(_poll(backlog, since=since, deadline=since + timeout_s)),
                              daemon=True, name="recovery-watch")
    thread.start()

    def join() -> float | None:
        thread.join(timeout_s + 5)
        return found[0] if found else None

    return join


def last_to_finish(engine: Engine, *, since: float) -> str | None:
    """What finished last of the fault's backlog: the row the recovery time waited for."""
    try:
        with engine.connect() as conn:
            row = conn.execute(LAST_SQL, {"since": _wall(since)}).first()
    except SQLAlchemyError:
        return None
    return None if row is None else row.what


def wait_settled(engine: Engine, *, since: float, timeout_s: float) -> tuple[float | None, tuple[int, int]]:
    """Wait until every event and delivery is final; returns (seconds since ``since``, what is left)."""
    settled = _poll(lambda: sum(unsettled(engine)), since=since, deadline=time.monotonic() + timeout_s)
    if settled is not None:
        return settled, (0, 0)
    try:
        return None, unsettled(engine)
    except SQLAlchemyError:
        return None, (-1, -1)
