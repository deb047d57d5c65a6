"""Every state transition of ``deliveries`` (emails, fulfilment calls, SMS), on the shared leases.

    pending|retrying ──dispatch──▶ queued ──claim──▶ sending ──▶ succeeded | skipped
                                                        │ fail ──▶ retrying | dead

A delivery is sent at least once and recognisably the same every time (its
key is the Message-ID and the Idempotency-Key); its row and the unique key
``(event, handler, kind)`` make sure no second one is ever created.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, text

from models import leasing, wakeup
from models.leasing import Claim, NotClaimable, TransitionError
from models.orders import DeliveryAttempt

__all__ = ["Claim", "NotClaimable", "TransitionError", "Result", "claim_due", "unqueue", "claim", "finish",
           "fail", "expired_leases", "replay"]

TABLE = "deliveries"


@dataclass(frozen=True)
class Result:
    """What one try got back: the SMTP reply or HTTP status, and how long it took."""

    code: int | None = None
    response: str | None = None
    duration_ms: int | None = None


def claim_due(conn: Connection, *, batch_size: int, lease_seconds: int) -> list[int]:
    return leasing.claim_due(conn, TABLE, batch_size=batch_size, lease_seconds=lease_seconds)


def unqueue(conn: Connection, ids: list[int]) -> int:
    return leasing.unqueue(conn, TABLE, ids)


def claim(conn: Connection, delivery_id: int, *, lease_seconds: int, worker: str) -> Claim:
    """queued → sending, counting the try. Raises :class:`NotClaimable` otherwise."""
    return leasing.claim(conn, TABLE, delivery_id, lease_seconds=lease_seconds, worker=worker)


def _record(conn: Connection, claim: Claim, *, outcome: str, result: Result, error: str | None) -> None:
    conn.execute(DeliveryAttempt.__table__.insert().values(
        delivery_id=claim.id, number=claim.attempt, started_at=claim.started_at,
        finished_at=text("clock_timestamp()"), outcome=outcome, response_code=result.code,
        response=result.response, error=error, duration_ms=result.duration_ms, worker=claim.worker,
    ))


def finish(conn: Connection, claim: Claim, *, status: str, result: Result, note: str | None = None) -> None:
    """sending → succeeded | skipped (``note`` says why it was skipped)."""
    if status not in ("succeeded", "skipped"):
        raise ValueError(f"finish() takes succeeded or skipped, not {status}")
    leasing.finish(conn, TABLE, claim, status=status, note=note)
    _record(conn, claim, outcome=status, result=result, error=note)


def fail(conn: Connection, claim: Claim, *, error: str, retry_in: timedelta | None, result: Result,
         lost: bool = False) -> str:
    """sending → retrying or dead. Returns the status."""
    status = leasing.fail(conn, TABLE, claim, error=error, retry_in=retry_in)
    outcome = "lost" if lost else ("failed" if status == "retrying" else "dead")
    _record(conn, claim, outcome=outcome, result=result, error=error)
    if status == "retrying":
        wakeup.notify(conn)  # the dispatcher's sleep may be longer than this delay
    return status


def expired_leases(conn: Connection, *, batch_size: int, lease_seconds: int,
                   worker: str) -> tuple[int, list[Claim]]:
    """Re-arm lost messages; return the tries of lost workers as claims to :func:`fail`."""
    requeued, lost = leasing.expired_leases(conn, TABLE, batch_size=batch_size, lease_seconds=lease_seconds)
    return requeued, [Claim(id=e.id, attempt=e.attempt, started_at=e.started_at, worker=worker, tries=e.tries)
                      for e in lost]


def replay(conn: Connection, ids: list[int], *, include_succeeded: bool = False) -> list[int]:
    """dead, skipped or retrying (succeeded only when forced) → pending, due now, schedule restarted."""
    statuses = ["dead", "skipped", "retrying"] + (["succeeded"] if include_succeeded else [])
    return leasing.replay(conn, TABLE, ids, statuses=statuses)
