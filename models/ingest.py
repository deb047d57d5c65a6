"""Storing verified events: one multi-row INSERT per batch makes redelivery harmless.

This is the receiver's hot path. Each receiver process has one
:class:`EventStore`: request threads hand it their event and wait; its
group-commit writer (:mod:`models.group_commit`) stores everything queued with
**one** ``INSERT … ON CONFLICT DO NOTHING`` over arrays (``unnest``, so no
parameter limit) on an autocommit connection: one statement, one commit, one
WAL flush for the whole batch. Only then is each request woken, so a 2xx
always follows the commit.

The key is written to ``event_keys`` by the same statement, so a redelivery
after retention removed the event is still a ``duplicate`` naming its id.

Exactly one delivery of an event is ``accepted``: the row the INSERT created
goes to the first request of the batch with that key; every other request
with the key (in this batch, or later) is a ``duplicate`` naming the same id.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool

from models import wakeup
from models.db import DatabaseNotConfigured, connect_args, libpq_url
from models.group_commit import GroupCommitWriter, QueueFull, WriterClosed
from models.settings import Settings

# The dedup statement: a batch of events as parallel arrays, one row per event. The dedup key lives
# in ``event_keys``, which outlives the event row (retention removes events after RETENTION_DAYS,
# keys stay DEDUP_DAYS): the key takes the event's id from the sequence, and an event row is
# inserted only for keys that were new. ``v`` keeps the first row of a key that comes twice in one
# batch (a second row would join ``k`` twice). RETURNING names the rows it created. Columns the
# arrays cannot carry typed (jsonb) travel as text. Every array goes in binary: psycopg's text
# format escapes each element with a regex (28 % of the receiver's CPU at saturation). ``woken``
# wakes the dispatchers (models/wakeup.py) once per batch that created an event, at its commit:
# a CTE calling a volatile function runs once, and the always-true filter makes it run at all.
INSERT_EVENTS = """
    WITH v AS (
        SELECT DISTINCT ON (provider, event_key) *
        FROM unnest(%(provider)b::text[], %(event_key)b::text[], %(event_type)b::text[], %(livemode)b::bool[],
                    %(raw_body)b::bytea[], %(headers)b::text[], %(payload)b::text[], %(secret_index)b::int[],
                    %(verify_method)b::text[])
             WITH ORDINALITY AS batch(provider, event_key, event_type, livemode, raw_body, headers, payload,
                                      secret_index, verify_method, n)
        ORDER BY provider, event_key, n),
    k AS (
        INSERT INTO event_keys (provider, event_key, event_id)
        SELECT provider, event_key, nextval('webhook_events_id_seq') FROM v ORDER BY n
        ON CONFLICT (provider, event_key) DO NOTHING
        RETURNING provider, event_key, event_id),
    e AS (
        INSERT INTO webhook_events (id, provider, event_key, event_type, livemode, raw_body, headers, payload,
                                    secret_index, verify_method)
        SELECT k.event_id, k.provider, k.event_key, v.event_type, v.livemode, v.raw_body, v.headers::jsonb,
               v.payload::jsonb, v.secret_index, v.verify_method
          FROM k JOIN v ON v.provider = k.provider AND v.event_key = k.event_key
        RETURNING id, provider, event_key),
    woken AS (SELECT pg_notify('""" + wakeup.CHANNEL + """', '') FROM (SELECT FROM e LIMIT 1) AS created)
    SELECT id, provider, event_key FROM e WHERE (SELECT count(*) FROM woken) >= 0"""
# Keys that were known already: committed (ON CONFLICT waited for them), so a new statement under
# READ COMMITTED sees them. A known key answers with the id it was first given, even when
# retention has removed that event since.
EXISTING_EVENTS = """
    SELECT k.event_id, k.provider, k.event_key
    FROM event_keys k
    JOIN unnest(%(provider)b::text[], %(event_key)b::text[]) AS u(provider, event_key)
      ON k.provider = u.provider AND k.event_key = u.event_key"""


class IngestBusy(Exception):
    """This receiver process cannot take the event now (its write queue is full, or it is stopping)."""


@dataclass(frozen=True)
class Stored:
    id: int
    created: bool


@dataclass(frozen=True)
class EventRow:
    """One verified event as the receiver stores it."""

    provider: str
    event_key: str
    event_type: str
    livemode: bool | None
    raw_body: bytes
    headers: dict[str, str]
    payload: Any
    secret_index: int | None
    verify_method: str | None
    payload_is_body: bool = False

    def payload_text(self) -> str:
        """The payload as JSON text; the body itself when it is the payload in UTF-8 without a BOM.

        Then Postgres parses the body into the jsonb column and Python does not encode it again.
        JSON in UTF-16 or -32 (Python read it; Postgres takes UTF-8 text) and bodies with a BOM
        (Python skips it; Postgres would not) are encoded from the parsed payload.
        """
        if self.payload_is_body:
            try:
                document = self.raw_body.decode("utf-8")
            except UnicodeDecodeError:
                document = None
            if document is not None and not document.startswith("\ufeff"):
                return document
        return json.dumps(self.payload)


def store_batch(conn: Connection, rows: Sequence[EventRow]) -> list[Stored]:
    """Insert every row whose (provider, event_key) is not stored yet; one result per row, in order.

    ``conn`` is a psycopg connection. In autocommit the batch is committed on
    return; otherwise the caller commits. A row Postgres refuses
    (``psycopg.DataError``) fails the whole statement.
    """
    columns = {
        "provider": [r.provider for r in rows], "event_key": [r.event_key for r in rows],
        "event_type": [r.event_type for r in rows], "livemode": [r.livemode for r in rows],
        "raw_body": [r.raw_body for r in rows], "headers": [json.dumps(r.headers) for r in rows],
        "payload": [r.payload_text() for r in rows], "secret_index": [r.secret_index for r in rows],
        "verify_method": [r.verify_method for r in rows],
    }
    created = {(provider, key): id_ for id_, provider, key in conn.execute(INSERT_EVENTS, columns).fetchall()}
    found = dict(created)
    if len(created) < len(rows):
        keys = {"provider": columns["provider"], "event_key": columns["event_key"]}
        found.update({(provider, key): id_ for id_, provider, key in conn.execute(EXISTING_EVENTS, keys)})
    results = []
    for row in rows:
        key = (row.provider, row.event_key)
        results.append(Stored(id=found[key], created=created.pop(key, None) is not None))
    return results


def store_event(conn: Connection, **event: Any) -> Stored:
    """One event through the same statement (tests and tools; the receiver batches)."""
    return store_batch(conn, [EventRow(**event)])[0]


class EventStore:
    """The receiver's writer: one autocommit connection, opened on the first webhook, closed with the app.

    :meth:`store` raises ``psycopg.DataError`` for a payload Postgres will not
    store, :class:`IngestBusy` when the queue is full or the process stops,
    and another ``psycopg.Error`` (``PoolTimeout`` included) when the database
    is unreachable or slower than ``PAYHOOKS_DB_TIMEOUT_SECONDS``.
    """

    def __init__(self, settings: Settings, *, application_name: str = "payhooks-receiver") -> None:
        if not settings.database_url:
            raise DatabaseNotConfigured(DatabaseNotConfigured.__doc__)
        self._conninfo = libpq_url(settings.database_url)
        self._kwargs = {**connect_args(settings, application_name=application_name), "autocommit": True}
        self._timeout = settings.db_timeout_seconds
        # a batch waits at most for the connection, its INSERT and its SELECT, behind one batch ahead
        self._wait_seconds = 6 * settings.db_timeout_seconds
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._writer: GroupCommitWriter[EventRow, Stored] = GroupCommitWriter(
            write_batch=self._write, max_batch=settings.ingest_batch_max, queue_size=settings.ingest_queue_size,
            retry_alone_on=(psycopg.DataError,), name="payhooks-ingest-writer",
        )

    def _opened(self) -> ConnectionPool:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ConnectionPool(
                        self._conninfo, kwargs=self._kwargs, min_size=1, max_size=1,
                        timeout=self._timeout, max_lifetime=1800, name="payhooks-ingest", open=True,
                    )
                pool = self._pool
        return pool

    def _write(self, rows: Sequence[EventRow]) -> list[Stored]:
        with self._opened().connection() as conn:
            return store_batch(conn, rows)

    def store(self, **event: Any) -> Stored:
        """Store one event; returns once its batch is committed."""
        try:
            future = self._writer.submit(EventRow(**event))
        except (QueueFull, WriterClosed) as exc:
            raise IngestBusy(str(exc)) from None
        try:
            return future.result(timeout=self._wait_seconds)
        except TimeoutError:
            raise psycopg.OperationalError(f"not committed within {self._wait_seconds:g} s") from None

    def close(self) -> None:
        """Store what is queued, then close the connection."""
        self._writer.close(timeout_seconds=self._wait_seconds)
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
