"""Storing a verified event: one INSERT that makes redelivery harmless."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert

from models.tables import WebhookEvent

_events = WebhookEvent.__table__


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
    inserted = conn.execute(
        insert(_events)
        .values(
            provider=provider,
            event_key=event_key,
            event_type=event_type,
            livemode=livemode,
            raw_body=raw_body,
            headers=headers,
            payload=payload,
            secret_index=secret_index,
            verify_method=verify_method,
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_key"])
        .returning(_events.c.id)
    ).scalar_one_or_none()
    if inserted is not None:
        return Stored(id=inserted, created=True)
    # A conflicting row exists and is committed (ON CONFLICT waited for it), so a
    # new statement under READ COMMITTED sees it.
    existing = conn.execute(
        select(_events.c.id).where(
            _events.c.provider == provider, _events.c.event_key == event_key
        )
    ).scalar_one()
    return Stored(id=existing, created=False)
