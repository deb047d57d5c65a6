"""Every state transition of ``webhook_events``, each one guarded statement.

A transition names the status it expects (``WHERE id = :id AND status =
:expected``); when the row is in another state nothing changes and
:class:`TransitionError` is raised. The attempt number taken at the claim is a
fencing token: a worker whose lease ran out (and whose event was re-armed and
claimed again) can no longer finish it, so its transaction, handler writes
included, rolls back.

    pending|retrying ──dispatch──▶ queued ──claim──▶ processing ──▶ succeeded | ignored
          ▲                          │                  │ fail ──▶ retrying | dead
          └──── publish failed / lease expired ─────────┘ (lost worker = failed attempt)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text, update

from models.tables import EventAttempt, WebhookEvent

_events = WebhookEvent.__table__


class TransitionError(RuntimeError):
    """The event is not in the state this transition expects."""


class NotClaimable(TransitionError):
    """The event is not queued (a duplicate message, or already re-armed): nothing to do."""


@dataclass(frozen=True)
class Claim:
    event_id: int
    attempt: int
    started_at: datetime
    provider: str
    worker: str


def claim_due(conn: Connection, *, batch_size: int, lease_seconds: int) -> list[int]:
    """pending|retrying and due → queued with a lease; concurrent dispatchers skip each other's rows."""
    rows = conn.execute(
        text(
            """
            UPDATE webhook_events SET status = 'queued',
                   lease_expires_at = clock_timestamp() + make_interval(secs => :lease)
             WHERE id IN (SELECT id FROM webhook_events
                           WHERE status IN ('pending', 'retrying') AND next_attempt_at <= clock_timestamp()
                           ORDER BY next_attempt_at
                           LIMIT :batch
                           FOR UPDATE SKIP LOCKED)
               AND status IN ('pending', 'retrying')
            RETURNING id
            """
        ),
        {"lease": lease_seconds, "batch": batch_size},
    )
    return sorted(row.id for row in rows)


def unqueue(conn: Connection, event_ids: list[int]) -> int:
    """queued → pending, due now: the publish failed, so no message carries these events."""
    if not event_ids:
        return 0
    result = conn.execute(
        text(
            """
            UPDATE webhook_events SET status = 'pending', lease_expires_at = NULL,
                   next_attempt_at = clock_timestamp()
             WHERE id = ANY(:ids) AND status = 'queued'
            """
        ),
        {"ids": event_ids},
    )
    return result.rowcount


def claim(conn: Connection, event_id: int, *, lease_seconds: int, worker: str) -> Claim:
    """queued → processing, counting the attempt. Raises :class:`NotClaimable` otherwise."""
    row = conn.execute(
        text(
            """
            UPDATE webhook_events SET status = 'processing', attempts = attempts + 1,
                   lease_expires_at = clock_timestamp() + make_interval(secs => :lease)
             WHERE id = :id AND status = 'queued'
            RETURNING id, attempts, clock_timestamp() AS started_at, provider
            """
        ),
        {"id": event_id, "lease": lease_seconds},
    ).one_or_none()
    if row is None:
        raise NotClaimable(f"event {event_id} is not queued")
    return Claim(event_id=row.id, attempt=row.attempts, started_at=row.started_at,
                 provider=row.provider, worker=worker)


def _record_attempt(conn: Connection, claim: Claim, *, outcome: str, error: str | None = None,
                    traceback: str | None = None) -> None:
    conn.execute(
        EventAttempt.__table__.insert().values(
            event_id=claim.event_id, number=claim.attempt, started_at=claim.started_at,
            finished_at=text("clock_timestamp()"), outcome=outcome, error=error,
            traceback=traceback, worker=claim.worker,
        )
    )


def _guarded(conn: Connection, claim: Claim, sql: str, **params: object) -> None:
    result = conn.execute(
        text(sql + " WHERE id = :id AND status = 'processing' AND attempts = :attempt"),
        {"id": claim.event_id, "attempt": claim.attempt, **params},
    )
    if result.rowcount != 1:
        raise TransitionError(
            f"event {claim.event_id} attempt {claim.attempt} is no longer processing (lease lost)"
        )


def finish(conn: Connection, claim: Claim, *, status: str, note: str | None = None,
           order_id: int | None = None) -> None:
    """processing → succeeded | ignored, with the attempt row, in the handler's transaction."""
    if status not in ("succeeded", "ignored"):
        raise ValueError(f"finish() takes succeeded or ignored, not {status}")
    _guarded(
        conn, claim,
        """UPDATE webhook_events SET status = :status, processed_at = clock_timestamp(),
                  lease_expires_at = NULL, next_attempt_at = NULL, last_error = :note,
                  order_id = COALESCE(:order_id, order_id)""",
        status=status, note=note, order_id=order_id,
    )
    _record_attempt(conn, claim, outcome=status, error=note)


def fail(conn: Connection, claim: Claim, *, error: str, traceback: str | None,
         retry_in: timedelta | None, lost: bool = False) -> str:
    """processing → retrying (due after ``retry_in``) or dead (``retry_in`` None). Returns the status.

    ``lost``: the worker vanished (the sweeper fails the attempt on its behalf);
    the attempt row says ``lost`` rather than ``failed``.
    """
    if retry_in is None:
        status = "dead"
        _guarded(conn, claim,
                 """UPDATE webhook_events SET status = 'dead', last_error = :error, lease_expires_at = NULL,
                           processed_at = clock_timestamp(), next_attempt_at = NULL""",
                 error=error)
    else:
        status = "retrying"
        _guarded(conn, claim,
                 """UPDATE webhook_events SET status = 'retrying', last_error = :error, lease_expires_at = NULL,
                           next_attempt_at = clock_timestamp() + make_interval(secs => :delay)""",
                 error=error, delay=retry_in.total_seconds())
    outcome = "lost" if lost else ("failed" if status == "retrying" else "dead")
    _record_attempt(conn, claim, outcome=outcome, error=error, traceback=traceback)
    return status


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


@dataclass(frozen=True)
class Expired:
    event_id: int
    provider: str
    attempt: int
    started_at: datetime


def expired_leases(conn: Connection, *, batch_size: int, lease_seconds: int) -> tuple[int, list[Expired]]:
    """Re-arm queued rows whose message was lost; return processing rows whose worker was lost.

    Queued rows go back to pending (no attempt was made). Processing rows are
    returned locked, for the caller to :func:`fail` with "worker lost" on the
    provider's schedule, in the same transaction.
    """
    requeued = conn.execute(
        text(
            """
            UPDATE webhook_events SET status = 'pending', lease_expires_at = NULL,
                   next_attempt_at = clock_timestamp()
             WHERE id IN (SELECT id FROM webhook_events
                           WHERE status = 'queued' AND lease_expires_at < clock_timestamp()
                           LIMIT :batch FOR UPDATE SKIP LOCKED)
               AND status = 'queued'
            """
        ),
        {"batch": batch_size},
    ).rowcount
    lost = conn.execute(
        text(
            """
            SELECT e.id, e.provider, e.attempts,
                   e.lease_expires_at - make_interval(secs => :lease) AS claimed_at
              FROM webhook_events e
             WHERE e.status = 'processing' AND e.lease_expires_at < clock_timestamp()
             LIMIT :batch FOR UPDATE SKIP LOCKED
            """
        ),
        {"batch": batch_size, "lease": lease_seconds},
    )
    return requeued, [
        Expired(event_id=r.id, provider=r.provider, attempt=r.attempts, started_at=r.claimed_at)
        for r in lost
    ]


def as_claim(expired: Expired, *, worker: str) -> Claim:
    """The lost attempt, as a claim the sweeper can fail on the dead worker's behalf."""
    return Claim(event_id=expired.event_id, attempt=expired.attempt, started_at=expired.started_at,
                 provider=expired.provider, worker=worker)
