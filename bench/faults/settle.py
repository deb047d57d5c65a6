"""Recovery: how long after the fault until its backlog is handled, and until everything is.

The recovery time is measured from the end of the fault until every event
received up to that moment, and every delivery those events wrote, is in a
final status (events arriving later do not count against it). Polling starts
at the fault's end, in a thread, while the traffic goes on.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from bench.faults.ledger import DELIVERY_FINAL, FINAL, unsettled

POLL_SECONDS = 0.25
BACKLOG_SQL = text("""
    SELECT (SELECT count(*) FROM webhook_events
             WHERE received_at <= to_timestamp(:since) AND status <> ALL(:final))
         + (SELECT count(*) FROM deliveries d JOIN webhook_events e ON e.id = d.event_id
             WHERE e.received_at <= to_timestamp(:since) AND d.status <> ALL(:delivery_final))""")


@dataclass
class RecoveryWatch:
    """Polls, from ``since`` on, until the backlog of events received by then is handled."""

    engine: Engine
    since: float
    """time.monotonic() of the fault's end."""
    timeout_s: float
    recovery_s: float | None = None
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> RecoveryWatch:
        self._thread = threading.Thread(target=self._watch, daemon=True, name="recovery-watch")
        self._thread.start()
        return self

    def _watch(self) -> None:
        since_wall = time.time() - (time.monotonic() - self.since)
        params = {"since": since_wall, "final": list(FINAL), "delivery_final": list(DELIVERY_FINAL)}
        while time.monotonic() - self.since < self.timeout_s:
            try:
                with self.engine.connect() as conn:
                    left = conn.execute(BACKLOG_SQL, params).scalar_one()
            except SQLAlchemyError:
                left = -1
            if left == 0:
                self.recovery_s = time.monotonic() - self.since
                return
            time.sleep(POLL_SECONDS)

    def join(self) -> float | None:
        if self._thread is not None:
            self._thread.join(self.timeout_s + 5)
        return self.recovery_s


LAST_SQL = text("""
    (SELECT 'event ' || id || ' (' || provider || ' ' || event_type || ', ' || attempts || ' attempts)' AS what,
            processed_at FROM webhook_events WHERE received_at <= to_timestamp(:since) AND processed_at IS NOT NULL)
    UNION ALL
    (SELECT 'delivery ' || d.id || ' (' || d.kind || ', ' || d.attempts || ' tries)', d.processed_at
       FROM deliveries d JOIN webhook_events e ON e.id = d.event_id
      WHERE e.received_at <= to_timestamp(:since) AND d.processed_at IS NOT NULL)
    ORDER BY processed_at DESC LIMIT 1""")


def last_to_finish(engine: Engine, *, since: float) -> str | None:
    """What finished last of the fault's backlog: the row the recovery time waited for."""
    since_wall = time.time() - (time.monotonic() - since)
    try:
        with engine.connect() as conn:
            row = conn.execute(LAST_SQL, {"since": since_wall}).first()
    except SQLAlchemyError:
        return None
    return None if row is None else row.what


@dataclass(frozen=True)
class Drained:
    recovery_s: float | None
    """Fault end → its backlog handled; None when it was not within the timeout."""
    settled_s: float | None
    """Fault end → every event and delivery final."""
    left: tuple[int, int]
    """(events, deliveries) not final at the end of the wait."""


def wait_settled(engine: Engine, *, since: float, timeout_s: float) -> tuple[float | None, tuple[int, int]]:
    """Wait until every event and delivery is final; returns (seconds since ``since``, what is left)."""
    deadline = time.monotonic() + timeout_s
    left = (-1, -1)
    while time.monotonic() < deadline:
        try:
            left = unsettled(engine)
        except SQLAlchemyError:
            left = (-1, -1)
        if left == (0, 0):
            return time.monotonic() - since, left
        time.sleep(POLL_SECONDS)
    return None, left
