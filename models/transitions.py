"""Every state transition of ``webhook_events``, each one guarded statement.

A transition names the status it expects (``WHERE id = :id AND status =
:expected``); when the row is in another state nothing changes and
:class:`TransitionError` is raised. The attempt number taken at the claim is a
fencing token: a worker whose lease ran out (and whose event was re-armed and
claimed again) can no longer finish it, so its transaction, handler writes
included, rolls back. The lease mechanics are shared with deliveries
(:mod:`models.leasing`).

    pending|retrying ──dispatch──▶ queued ──claim──▶ processing ──▶ succeeded | ignored
          ▲                          │                  │ fail ──▶ retrying | dead
          └──── publish failed / lease expired ─────────┘ (lost worker = failed attempt)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text, update

from models import leasing, wakeup
from models.leasing import NotClaimable, TransitionError
from models.tables import EventAttempt, WebhookEvent

__all__ = ["Claim", "NotClaimable", "TransitionError", "claim", "claim_many", "claim_batch", "claim_due", "unqueue",
           "finish", "finish_batch", "Outcome", "fail", "link_order", "store_fetched", "expired_leases", "replay"]

TABLE = "webhook_events"
_events = WebhookEvent.__table__


@dataclass(frozen=True)
class Claim:
    event_id: int
    attempt: int
    started_at: datetime
    provider: str
    worker: str
    tries: int
    """Attempts since the last replay: what the provider's retry schedule counts."""

    @property
    def lease(self) -> leasing.Claim:
        return leasing.Claim(id=self.event_id, attempt=self.attempt, started_at=self.started_at,
                             worker=self.worker, tries=self.tries)


def claim_due(conn: Connection, *, batch_size: int, lease_seconds: int) -> list[int]:
    """pending|retrying and due → queued with a lease."""
    return leasing.claim_due(conn, TABLE, batch_size=batch_size, lease_seconds=lease_seconds)


def unqueue(conn: Connection, event_ids: list[int]) -> int:
    """queued → pending, due now: the publish failed."""
    return leasing.unqueue(conn, TABLE, event_ids)


def claim(conn: Connection, event_id: int, *, lease_seconds: int, worker: str) -> Claim:
    """queued → processing, counting the attempt. Raises :class:`NotClaimable` otherwise."""
    claims = claim_many(conn, [event_id], lease_seconds=lease_seconds, worker=worker)
    if not claims:
        raise NotClaimable(f"event {event_id} is not queued")
    return claims[0]


def claim_many(conn: Connection, event_ids: list[int], *, lease_seconds: int, worker: str) -> list[Claim]:
    """queued → processing for every event of a batch still queued (others: a duplicate message)."""
    held = leasing.claim_many(conn, TABLE, event_ids, lease_seconds=lease_seconds, worker=worker)
    if not held:
        return []
    providers = {row.id: row.provider for row in conn.execute(
        text("SELECT id, provider FROM webhook_events WHERE id = ANY(:ids)"), {"ids": [c.id for c in held]})}
    return [Claim(event_id=c.id, attempt=c.attempt, started_at=c.started_at, provider=providers[c.id],
                  worker=worker, tries=c.tries) for c in held]


def claim_batch(conn: Connection, event_ids: list[int], *, lease_seconds: int,
                worker: str) -> list[tuple[Claim, Any]]:
    """:func:`claim_many` and the claimed rows' provider, type, payload and key, in ONE statement."""
    rows = conn.execute(text(leasing.claim_sql(TABLE, returning=", provider, event_type, payload, event_key")),
                        {"ids": sorted(set(event_ids)), "lease": lease_seconds})
    return sorted(((Claim(event_id=r.id, attempt=r.attempts, started_at=r.started_at, provider=r.provider,
                          worker=worker, tries=r.tries), r) for r in rows), key=lambda pair: pair[0].event_id)


@dataclass(frozen=True)
class Outcome:
    """How one claimed attempt ends, for :func:`finish_batch`."""

    claim: Claim
    status: str
    """succeeded, ignored, retrying or dead."""
    note: str | None = None
    """The handlers' note, or the error of a failed attempt."""
    order_id: int | None = None
    retry_in: timedelta | None = None
    traceback: str | None = None
    fetched: tuple[str, Any] | None = None
    """(event type, payload) fetched from the provider, kept even when the attempt failed."""


_OUTCOMES = {"succeeded": "succeeded", "ignored": "ignored", "retrying": "failed", "dead": "dead"}

# A batch's final statuses and attempt rows: one statement over arrays, guarded
# per row by status and attempt number like every other transition.
_FINISH_BATCH = """
    WITH v AS (
        SELECT * FROM unnest(%(id)b::bigint[], %(attempt)b::int[], %(status)b::text[], %(note)b::text[],
                             %(order_id)b::bigint[], %(delay)b::float8[], %(fetched)b::text[],
                             %(event_type)b::text[], %(started_at)b::timestamptz[], %(traceback)b::text[])
                 WITH ORDINALITY
                 AS v(id, attempt, status, note, order_id, delay, fetched, event_type, started_at, traceback, n)),
    t AS (SELECT clock_timestamp() AS at),
    done AS (
        UPDATE webhook_events e
           SET status = v.status, last_error = v.note, lease_expires_at = NULL,
               processed_at = CASE WHEN v.status = 'retrying' THEN e.processed_at
                                   ELSE t.at + make_interval(secs => v.n / 1e6) END,
               next_attempt_at = CASE WHEN v.status = 'retrying'
                                      THEN t.at + make_interval(secs => v.delay) END,
               order_id = COALESCE(v.order_id, e.order_id),
               fetched_payload = COALESCE(v.fetched::jsonb, e.fetched_payload),
               event_type = COALESCE(v.event_type, e.event_type)
          FROM v, t
         WHERE e.id = v.id AND e.status = 'processing' AND e.attempts = v.attempt
        RETURNING e.id)
    INSERT INTO event_attempts (event_id, number, started_at, finished_at, outcome, error, traceback, worker)
    SELECT v.id, v.attempt, v.started_at, t.at + make_interval(secs => v.n / 1e6),
           CASE v.status WHEN 'retrying' THEN 'failed' ELSE v.status END, v.note, v.traceback, %(worker)s
      FROM v JOIN done ON done.id = v.id CROSS JOIN t
     ORDER BY v.n
    RETURNING event_id"""
"""Every row gets its own ``processed_at`` (one microsecond apart, in the order the batch
handled them), so ordering by ``processed_at`` still tells which event's effect came first."""


def finish_batch(conn: Connection, outcomes: list[Outcome], *, worker: str) -> set[int]:
    """Every attempt of a batch → its final status (or retrying), with its attempt row: one statement.

    Returns the ids it changed; an id missing from them lost its lease, and
    the caller must roll back (nothing of that event may commit).
    """
    if not outcomes:
        return set()
    unknown = {o.status for o in outcomes} - set(_OUTCOMES)
    if unknown:
        raise ValueError(f"finish_batch() takes {', '.join(_OUTCOMES)}, not {', '.join(sorted(unknown))}")
    rows = conn.connection.driver_connection.execute(_FINISH_BATCH, {  # psycopg itself: the hot path
        "id": [o.claim.event_id for o in outcomes], "attempt": [o.claim.attempt for o in outcomes],
        "status": [o.status for o in outcomes], "note": [o.note for o in outcomes],
        "order_id": [o.order_id for o in outcomes],
        "delay": [o.retry_in.total_seconds() if o.retry_in is not None else None for o in outcomes],
        "fetched": [json.dumps(o.fetched[1]) if o.fetched else None for o in outcomes],
        "event_type": [o.fetched[0][:255] if o.fetched else None for o in outcomes],
        "started_at": [o.claim.started_at for o in outcomes], "traceback": [o.traceback for o in outcomes],
        "worker": worker,
    }, binary=True).fetchall()  # binary: no per-element escaping of the arrays
    return {row[0] for row in rows}


def _record_attempt(conn: Connection, claim: Claim, *, outcome: str, error: str | None = None,
                    traceback: str | None = None) -> None:
    conn.execute(
        EventAttempt.__table__.insert().values(
            event_id=claim.event_id, number=claim.attempt, started_at=claim.started_at,
            finished_at=text("clock_timestamp()"), outcome=outcome, error=error,
            traceback=traceback, worker=claim.worker,
        )
    )


# Every handled event runs this, so it is one fixed statement: the guarded
# status change and its attempt row (no row changed: no attempt, lease lost).
_FINISH = """
    WITH done AS (
        UPDATE webhook_events
           SET status = %(status)s, processed_at = clock_timestamp(), lease_expires_at = NULL,
               next_attempt_at = NULL, last_error = %(note)s,
               order_id = COALESCE(%(order_id)s::bigint, order_id)
         WHERE id = %(id)s AND status = 'processing' AND attempts = %(attempt)s
        RETURNING id)
    INSERT INTO event_attempts (event_id, number, started_at, finished_at, outcome, error, worker)
    SELECT id, %(attempt)s, %(started_at)s, clock_timestamp(), %(status)s, %(note)s, %(worker)s FROM done"""


def finish(conn: Connection, claim: Claim, *, status: str, note: str | None = None,
           order_id: int | None = None) -> None:
    """processing → succeeded | ignored, with the attempt row, in the handler's transaction."""
    if status not in ("succeeded", "ignored"):
        raise ValueError(f"finish() takes succeeded or ignored, not {status}")
    result = conn.connection.driver_connection.execute(_FINISH, {  # psycopg itself: the hot path
        "status": status, "note": note, "order_id": order_id, "id": claim.event_id, "attempt": claim.attempt,
        "started_at": claim.started_at, "worker": claim.worker,
    })
    if result.rowcount != 1:
        raise TransitionError(f"{TABLE} row {claim.event_id} attempt {claim.attempt} is no longer "
                              "processing (lease lost)")


def fail(conn: Connection, claim: Claim, *, error: str, traceback: str | None,
         retry_in: timedelta | None, lost: bool = False) -> str:
    """processing → retrying (due after ``retry_in``) or dead (``retry_in`` None). Returns the status.

    ``lost``: the worker vanished (the sweeper fails the attempt on its behalf);
    the attempt row says ``lost`` rather than ``failed``.
    """
    status = leasing.fail(conn, TABLE, claim.lease, error=error, retry_in=retry_in)
    outcome = "lost" if lost else ("failed" if status == "retrying" else "dead")
    _record_attempt(conn, claim, outcome=outcome, error=error, traceback=traceback)
    if status == "retrying":
        wakeup.notify(conn)  # the dispatcher's sleep may be longer than this delay
    return status


def link_order(conn: Connection, claim: Claim, *, order_id: int | None) -> None:
    """Name the order a failed event touched, so `events list --order` finds it whatever the outcome."""
    if order_id is not None:
        conn.execute(update(_events).where(_events.c.id == claim.event_id).values(order_id=order_id))


def store_fetched(conn: Connection, claim: Claim, *, payload: object, event_type: str) -> None:
    """Keep what the worker fetched from the provider (ProcessOut) next to the raw body."""
    result = conn.execute(
        update(_events)
        .where(_events.c.id == claim.event_id, _events.c.status == "processing",
               _events.c.attempts == claim.attempt)
        .values(fetched_payload=payload, event_type=event_type[:255])
    )
    if result.rowcount != 1:
        raise TransitionError(f"event {claim.event_id} attempt {claim.attempt} is no longer processing")


def expired_leases(conn: Connection, *, batch_size: int, lease_seconds: int,
                   worker: str) -> tuple[int, list[Claim]]:
    """Re-arm lost messages; return the attempts of lost workers as claims to :func:`fail`."""
    requeued, lost = leasing.expired_leases(conn, TABLE, batch_size=batch_size, lease_seconds=lease_seconds)
    if not lost:
        return requeued, []
    providers = {row.id: row.provider for row in conn.execute(
        text("SELECT id, provider FROM webhook_events WHERE id = ANY(:ids)"), {"ids": [e.id for e in lost]})}
    return requeued, [Claim(event_id=e.id, attempt=e.attempt, started_at=e.started_at,
                            provider=providers[e.id], worker=worker, tries=e.tries) for e in lost]


def replay(conn: Connection, event_ids: list[int], *, include_succeeded: bool = False) -> list[int]:
    """dead, ignored or retrying (succeeded only when forced) → pending, due now, schedule restarted.

    Rows being worked on (queued, processing) are left alone. Returns the re-armed ids.
    """
    statuses = ["dead", "ignored", "retrying"] + (["succeeded"] if include_succeeded else [])
    return leasing.replay(conn, TABLE, event_ids, statuses=statuses)
