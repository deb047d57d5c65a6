"""Waking the dispatcher: ``NOTIFY`` when work becomes due, ``LISTEN`` instead of a fast poll.

Whoever makes a row due now (the receiver's group-commit writer once per
batch that created events, a worker batch that created deliveries or
scheduled a retry, a failed try put on its schedule, a replay, an alert)
issues ``pg_notify`` on :data:`CHANNEL` in the same transaction: Postgres
delivers it at commit, after the rows are visible, and once per transaction
however often it was called (identical notifications fold into one).

The dispatcher holds one connection that ``LISTEN`` s (:class:`Listener`). An
idle dispatcher sleeps on it until a notification comes, until the next row
it already knows of comes due or its lease runs out (:func:`seconds_to_next`,
one ``min()`` per partial index); that one query is asked again every safety poll
(``PAYHOOKS_DISPATCH_SAFETY_POLL_SECONDS``) — so a notification that is
lost (the listening connection broke and was opened again) costs at most that.
"""
from __future__ import annotations

import logging

import psycopg
from sqlalchemy import Connection, text

from models.db import connect_args, libpq_url
from models.settings import Settings

log = logging.getLogger("payhooks.wakeup")

CHANNEL = "payhooks_due"
NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"
"""Run it in the transaction that made work due (psycopg or SQLAlchemy ``text``)."""

# The earliest moment something already stored needs the dispatcher: a due row (pending or
# retrying) or a lease running out (queued or working), in either lane. Each min() is the first
# entry of a partial index, so this costs four index probes whatever the table's size.
_NEXT = text("""
    SELECT EXTRACT(EPOCH FROM LEAST(
        (SELECT min(next_attempt_at) FROM webhook_events WHERE status IN ('pending', 'retrying')),
        (SELECT min(lease_expires_at) FROM webhook_events WHERE status IN ('queued', 'processing')),
        (SELECT min(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'retrying')),
        (SELECT min(lease_expires_at) FROM deliveries WHERE status IN ('queued', 'sending'))
    ) - clock_timestamp())""")


def notify(conn: Connection) -> None:
    """Wake the dispatchers when this (SQLAlchemy) transaction commits."""
    conn.execute(text(NOTIFY))


def seconds_to_next(conn: Connection) -> float | None:
    """Seconds until the next stored row comes due or its lease runs out (≤ 0: now); None: nothing stored."""
    value = conn.execute(_NEXT).scalar_one()
    return None if value is None else float(value)


class Listener:
    """One autocommit psycopg connection that ``LISTEN`` s on :data:`CHANNEL`.

    Open it **before** the first look for due rows: a notification sent after
    that look then waits on this connection, so none falls between the look
    and the sleep. When the connection breaks, :meth:`wait` reports it
    (returns ``False`` after sleeping nothing) and the next call opens a new one.
    """

    def __init__(self, settings: Settings, *, application_name: str, role: str = "dispatcher") -> None:
        self._conninfo = libpq_url(settings.database_url) if settings.database_url else None
        self._kwargs = {**connect_args(settings, application_name=application_name, role=role), "autocommit": True}
        self._conn: psycopg.Connection | None = None

    def open(self) -> bool:
        """Connect and ``LISTEN`` unless already done; False when the database cannot be reached."""
        if self._conn is not None and not self._conn.closed:
            return True
        if self._conninfo is None:
            return False
        try:
            self._conn = psycopg.connect(self._conninfo, **self._kwargs)
            self._conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            log.warning("cannot listen for wake-ups: %s", type(exc).__name__,
                        extra={"action": "dispatcher.listen_failed"})
            self.close()
            return False
        return True

    def wait(self, timeout: float) -> bool:
        """Sleep until a notification arrives (True) or ``timeout`` seconds pass (False)."""
        if self._conn is None:
            return False
        try:
            for _ in self._conn.notifies(timeout=max(0.0, timeout), stop_after=1):
                return True
        except psycopg.Error:
            log.warning("lost the wake-up connection", extra={"action": "dispatcher.listen_lost"})
            self.close()
        return False

    def drain(self) -> int:
        """Forget the notifications already received (the look that follows covers them)."""
        if self._conn is None:
            return 0
        try:
            return sum(1 for _ in self._conn.notifies(timeout=0))
        except psycopg.Error:
            self.close()
            return 0

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:  # pragma: no cover - closing a broken connection
                pass
