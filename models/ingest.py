"""Storing a verified event: one INSERT that makes redelivery harmless.

This is the receiver's hot path, so it runs fixed SQL through the driver
(``exec_driver_sql``): building, keying and compiling a SQLAlchemy INSERT for
every request cost more CPU than the database spent storing the row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection

_INSERT = """
    INSERT INTO webhook_events (provider, event_key, event_type, livemode, raw_body, headers, payload,
                                secret_index, verify_method)
    VALUES (%(provider)s, %(event_key)s, %(event_type)s, %(livemode)s, %(raw_body)s, %(headers)s,
            %(payload)s, %(secret_index)s, %(verify_method)s)
    ON CONFLICT (provider, event_key) DO NOTHING
    RETURNING id"""
_EXISTING = "SELECT id FROM webhook_events WHERE provider = %(provider)s AND event_key = %(event_key)s"


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
) -> Stored:
    """Insert the event unless (provider, event_key) is already stored.

    Returns the id of the row that holds the event, and whether this call
    created it. The caller commits.
    """
    keys = {"provider": provider, "event_key": event_key}
    inserted = conn.exec_driver_sql(_INSERT, {
        **keys, "event_type": event_type, "livemode": livemode, "raw_body": raw_body,
        "headers": Jsonb(headers), "payload": Jsonb(payload), "secret_index": secret_index,
        "verify_method": verify_method,
    }).scalar_one_or_none()
    if inserted is not None:
        return Stored(id=inserted, created=True)
    # A conflicting row exists and is committed (ON CONFLICT waited for it), so a
    # new statement under READ COMMITTED sees it.
    return Stored(id=conn.exec_driver_sql(_EXISTING, keys).scalar_one(), created=False)
