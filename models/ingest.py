"""Storing a verified event: one INSERT that makes redelivery harmless.

This is the receiver's hot path. :class:`EventStore` keeps its own small
psycopg pool of **autocommit** connections, so storing a new event is one
statement and one round trip: the INSERT is its own transaction and is
durable when it returns. Through a SQLAlchemy connection the same insert was
three round trips (BEGIN, INSERT, COMMIT) and about twice the CPU.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from models.db import DatabaseNotConfigured, connect_args, libpq_url
from models.settings import Settings

# The dedup key lives in ``event_keys``, which outlives the event row (retention
# removes events after RETENTION_DAYS, keys stay DEDUP_DAYS). One statement
# writes both: the key takes the event's id from the sequence, and the event
# row is inserted only for keys that were new. ``v`` is the incoming row; a
# group-commit writer replaces it with
#   SELECT DISTINCT ON (provider, event_key) * FROM unnest(%(providers)s::text[], %(keys)s::text[], …)
#     AS u(provider, event_key, event_type, livemode, raw_body, headers, payload, secret_index, verify_method)
# (DISTINCT ON: a key twice in one batch must yield one row) and keeps ``k`` and the INSERT as they are.
_INSERT = """
    WITH v AS (
        SELECT %(provider)s::text AS provider, %(event_key)s::text AS event_key,
               %(event_type)s::text AS event_type, %(livemode)s::boolean AS livemode,
               %(raw_body)s::bytea AS raw_body, %(headers)s::jsonb AS headers, %(payload)s::jsonb AS payload,
               %(secret_index)s::integer AS secret_index, %(verify_method)s::text AS verify_method),
    k AS (
        INSERT INTO event_keys (provider, event_key, event_id)
        SELECT provider, event_key, nextval('webhook_events_id_seq') FROM v
        ON CONFLICT (provider, event_key) DO NOTHING
        RETURNING provider, event_key, event_id)
    INSERT INTO webhook_events (id, provider, event_key, event_type, livemode, raw_body, headers, payload,
                                secret_index, verify_method)
    SELECT k.event_id, k.provider, k.event_key, v.event_type, v.livemode, v.raw_body, v.headers, v.payload,
           v.secret_index, v.verify_method
      FROM k JOIN v ON v.provider = k.provider AND v.event_key = k.event_key
    RETURNING id"""
# A known key answers with the id it was first given, even when retention removed that event.
_EXISTING = "SELECT event_id FROM event_keys WHERE provider = %(provider)s AND event_key = %(event_key)s"


@dataclass(frozen=True)
class Stored:
    id: int
    created: bool


def store_event(
    conn: Connection,
    *,
    provider: str,
    event_key: str,
    event_type: str,
    livemode: bool | None,
    raw_body: bytes,
    headers: dict[str, str],
    payload: Any,
    secret_index: int | None,
    verify_method: str | None,
    payload_is_body: bool = False,
) -> Stored:
    """Insert the event unless (provider, event_key) was received before (within DEDUP_DAYS).

    ``conn`` is a psycopg connection. With ``payload_is_body`` (the payload
    is the body's JSON as sent) Postgres parses the UTF-8 body into the
    jsonb column instead of Python encoding the payload again. Returns the
    id the event was given (its row may since have been archived and removed), and whether this call
    created it. In autocommit the row is
    committed on return; otherwise the caller commits.
    """
    keys = {"provider": provider, "event_key": event_key}
    document: Any = None
    if payload_is_body:
        try:
            document = raw_body.decode("utf-8")
        except UnicodeDecodeError:  # JSON in UTF-16 or -32: Python read it, Postgres takes UTF-8 text
            pass
        if document is not None and document.startswith("\ufeff"):  # Python skips a BOM; Postgres would not
            document = None
    inserted = conn.execute(_INSERT, {
        **keys, "event_type": event_type, "livemode": livemode, "raw_body": raw_body,
        "headers": Jsonb(headers), "payload": Jsonb(payload) if document is None else document,
        "secret_index": secret_index, "verify_method": verify_method,
    }).fetchone()
    if inserted is not None:
        return Stored(id=inserted[0], created=True)
    # A conflicting row exists and is committed (ON CONFLICT waited for it), so a
    # new statement under READ COMMITTED sees it.
    return Stored(id=conn.execute(_EXISTING, keys).fetchone()[0], created=False)


class EventStore:
    """The receiver's autocommit pool, opened on the first webhook and closed with the app.

    Errors are psycopg's: ``psycopg.DataError`` for a payload Postgres will
    not store, ``psycopg.OperationalError`` (``PoolTimeout`` included) when
    the database is unreachable or slower than ``PAYHOOKS_DB_TIMEOUT_SECONDS``.
    """

    def __init__(self, settings: Settings, *, size: int, application_name: str = "payhooks-receiver") -> None:
        if not settings.database_url:
            raise DatabaseNotConfigured(DatabaseNotConfigured.__doc__)
        self._conninfo = libpq_url(settings.database_url)
        self._kwargs = {**connect_args(settings, application_name=application_name), "autocommit": True}
        self._size = size
        self._timeout = settings.db_timeout_seconds
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    def _opened(self) -> ConnectionPool:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ConnectionPool(
                        self._conninfo, kwargs=self._kwargs, min_size=1, max_size=self._size,
                        timeout=self._timeout, max_lifetime=1800, name="payhooks-ingest", open=True,
                    )
                pool = self._pool
        return pool

    def store(self, **event: Any) -> Stored:
        with self._opened().connection() as conn:
            return store_event(conn, **event)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
