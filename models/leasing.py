"""The leased-work pattern shared by events and deliveries, as guarded SQL.

A row of a leased table is due (``pending``, or ``retrying`` with
``next_attempt_at`` reached), gets ``queued`` with a lease when dispatched,
moves to its *working* status (events: ``processing``, deliveries:
``sending``) when a worker claims it, and the attempt number taken then is the
fencing token every later change is guarded by. Table and working status are
fixed identifiers from :data:`LEASED`, never user input.

Two columns mirror the status, and every transition here keeps them so:
``next_attempt_at`` is set only while a row is due-able (pending, retrying)
and ``lease_expires_at`` only while it is leased (queued, working). The
claim keeps the dispatcher's lease when most of it is left, so claiming
changes no lease column. ``webhook_events`` holds its rows to that with
CHECK constraints and builds its due and lease indexes on these columns
alone, naming no ``status`` (its final-row indexes name the generated
``final_status``), so an event's claim changes no indexed column and is a
HOT update when its page has room (migration ``0007_hot_status``).
``deliveries`` still index by ``status``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from models import wakeup

LEASED = {"webhook_events": "processing", "deliveries": "sending"}


class TransitionError(RuntimeError):
    """The row is not in the state this transition expects."""


class NotClaimable(TransitionError):
    """The row is not queued (a duplicate message, or already re-armed): nothing to do."""


@dataclass(frozen=True)
class Claim:
    id: int
    attempt: int
    """The attempt number: the fencing token, and the attempt row's number."""
    started_at: datetime
    worker: str
    tries: int
    """Attempts since the last replay: what the retry schedule counts."""


@dataclass(frozen=True)
class Expired:
    id: int
    attempt: int
    started_at: datetime
    tries: int


def _working(table: str) -> str:
    return LEASED[table]


def claim_due(conn: Connection, table: str, *, batch_size: int, lease_seconds: int) -> list[int]:
    """Due rows → queued with a lease; concurrent dispatchers skip each other's rows."""
    _working(table)
    rows = conn.execute(
        text(f"""
            UPDATE {table} SET status = 'queued', next_attempt_at = NULL,
                   lease_expires_at = clock_timestamp() + make_interval(secs => :lease)
             WHERE id IN (SELECT id FROM {table}
                           WHERE status IN ('pending', 'retrying') AND next_attempt_at <= clock_timestamp()
                           ORDER BY next_attempt_at
                           LIMIT :batch
                           FOR UPDATE SKIP LOCKED)
               AND status IN ('pending', 'retrying')
            RETURNING id"""),
        {"lease": lease_seconds, "batch": batch_size},
    )
    return sorted(row.id for row in rows)


def unqueue(conn: Connection, table: str, ids: list[int]) -> int:
    """queued → pending, due now: the publish failed, so no message carries these rows."""
    _working(table)
    if not ids:
        return 0
    return conn.execute(
        text(f"""UPDATE {table} SET status = 'pending', lease_expires_at = NULL,
                        next_attempt_at = clock_timestamp()
                  WHERE id = ANY(:ids) AND status = 'queued'"""),
        {"ids": ids},
    ).rowcount


def claim(conn: Connection, table: str, row_id: int, *, lease_seconds: int, worker: str) -> Claim:
    """queued → working, counting the attempt. Raises :class:`NotClaimable` otherwise."""
    claims = claim_many(conn, table, [row_id], lease_seconds=lease_seconds, worker=worker)
    if not claims:
        raise NotClaimable(f"{table} row {row_id} is not queued")
    return claims[0]


def claim_many(conn: Connection, table: str, ids: list[int], *, lease_seconds: int, worker: str) -> list[Claim]:
    """queued → working for every id of a batch that is still queued, in one statement."""
    rows = conn.execute(text(claim_sql(table, returning="")), {"ids": sorted(set(ids)), "lease": lease_seconds})
    return sorted((Claim(id=r.id, attempt=r.attempts, started_at=r.started_at, worker=worker, tries=r.tries)
                   for r in rows), key=lambda c: c.id)


KEEP_LEASE_FRACTION = 0.9
"""A claim keeps the dispatcher's lease while at least this share of it is left (no lease column changes);
a message that waited longer in the broker gets a fresh lease."""


def claim_sql(table: str, *, returning: str) -> str:
    """The claim statement (``:ids``, ``:lease``); ``returning`` adds columns (``, provider, …``)."""
    return f"""
        UPDATE {table} SET status = '{_working(table)}', attempts = attempts + 1,
               lease_expires_at = CASE
                   WHEN lease_expires_at >= clock_timestamp() + make_interval(secs => :lease * {KEEP_LEASE_FRACTION})
                   THEN lease_expires_at
                   ELSE clock_timestamp() + make_interval(secs => :lease) END
         WHERE id = ANY(:ids) AND status = 'queued'
        RETURNING id, attempts, attempts - retry_base AS tries, clock_timestamp() AS started_at{returning}"""


def guarded_update(conn: Connection, table: str, claim: Claim, assignments: str, **params: object) -> None:
    """``UPDATE table SET <assignments>`` only while this claim still holds the row."""
    result = conn.execute(
        text(f"UPDATE {table} SET {assignments} WHERE id = :id AND status = '{_working(table)}' "
             "AND attempts = :attempt"),
        {"id": claim.id, "attempt": claim.attempt, **params},
    )
    if result.rowcount != 1:
        raise TransitionError(f"{table} row {claim.id} attempt {claim.attempt} is no longer "
                              f"{_working(table)} (lease lost)")


def finish(conn: Connection, table: str, claim: Claim, *, status: str, note: str | None,
           extra: str = "", **params: object) -> None:
    """working → a final status (succeeded, ignored, skipped, …); ``extra`` sets more columns."""
    guarded_update(conn, table, claim,
                   """status = :status, processed_at = clock_timestamp(), lease_expires_at = NULL,
                      next_attempt_at = NULL, last_error = :note""" + (f", {extra}" if extra else ""),
                   status=status, note=note, **params)


def fail(conn: Connection, table: str, claim: Claim, *, error: str, retry_in: timedelta | None) -> str:
    """working → retrying (due after ``retry_in``) or dead (``retry_in`` None). Returns the status."""
    if retry_in is None:
        guarded_update(conn, table, claim,
                       """status = 'dead', last_error = :error, lease_expires_at = NULL,
                          processed_at = clock_timestamp(), next_attempt_at = NULL""",
                       error=error)
        return "dead"
    guarded_update(conn, table, claim,
                   """status = 'retrying', last_error = :error, lease_expires_at = NULL,
                      next_attempt_at = clock_timestamp() + make_interval(secs => :delay)""",
                   error=error, delay=retry_in.total_seconds())
    return "retrying"


def expired_leases(conn: Connection, table: str, *, batch_size: int,
                   lease_seconds: int) -> tuple[int, list[Expired]]:
    """Re-arm queued rows whose message was lost; return working rows whose worker was lost.

    Queued rows go back to pending (no attempt was made). Working rows are
    returned locked, for the caller to fail with "worker lost" on its
    schedule, in the same transaction.
    """
    requeued = conn.execute(
        text(f"""
            UPDATE {table} SET status = 'pending', lease_expires_at = NULL, next_attempt_at = clock_timestamp()
             WHERE id IN (SELECT id FROM {table}
                           WHERE status = 'queued' AND lease_expires_at < clock_timestamp()
                           LIMIT :batch FOR UPDATE SKIP LOCKED)
               AND status = 'queued'"""),
        {"batch": batch_size},
    ).rowcount
    lost = conn.execute(
        text(f"""
            SELECT id, attempts, attempts - retry_base AS tries,
                   lease_expires_at - make_interval(secs => :lease) AS claimed_at
              FROM {table}
             WHERE status = '{_working(table)}' AND lease_expires_at < clock_timestamp()
             LIMIT :batch FOR UPDATE SKIP LOCKED"""),
        {"batch": batch_size, "lease": lease_seconds},
    )
    return requeued, [Expired(id=r.id, attempt=r.attempts, started_at=r.claimed_at, tries=r.tries)
                      for r in lost]


def replay(conn: Connection, table: str, ids: list[int], *, statuses: list[str]) -> list[int]:
    """Rows in ``statuses`` → pending, due now, ``replay_count`` + 1, the retry schedule restarted.

    Rows being worked on (queued or working) are never touched. Returns the re-armed ids.
    """
    _working(table)
    rows = conn.execute(
        text(f"""UPDATE {table} SET status = 'pending', next_attempt_at = clock_timestamp(),
                        processed_at = NULL, lease_expires_at = NULL, retry_base = attempts,
                        replay_count = replay_count + 1
                  WHERE id = ANY(:ids) AND status = ANY(:statuses)
                 RETURNING id"""),
        {"ids": ids, "statuses": [s for s in statuses if s not in ("queued", _working(table))]},
    )
    replayed = sorted(r.id for r in rows)
    if replayed:
        wakeup.notify(conn)
    return replayed
