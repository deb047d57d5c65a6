"""Retention: archive final events older than a cutoff, then remove them with their attempts and deliveries.

One batch is one transaction (:func:`prune_batch`): lock up to ``batch_size``
candidates (``FOR UPDATE SKIP LOCKED``: workers and a replay never wait on
retention for long, and a row reopened by a replay is no longer a candidate),
write their archive lines, fsync, then delete. Orders, refunds, order
transitions, operator actions and the dedup keys (``event_keys``) stay.

Never a non-final event: the candidates are read through the final-status
index with ``FOR UPDATE``, which re-checks the status on the row's newest
version; an event with a delivery still in flight waits for it.

Whoever prunes (the dispatcher's housekeeper, or `payhooks prune`) holds
:data:`LOCK_KEY` for the batch, so batches never interleave their archive
appends.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, text

from models import archive
from models.retry import schedules_from
from models.settings import Settings

log = logging.getLogger("payhooks.retention")

LOCK_KEY = 0x70726E65  # "prne": pg advisory lock of whoever prunes
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class PolicyError(ValueError):
    """A retention setting or option that would remove events too early, or could not be read."""


def parse_age(value: str, *, name: str) -> timedelta:
    """``30d``, ``12h``, ``2w`` → timedelta; anything else (``0``, ``-5d``, ``soon``) is a PolicyError."""
    match = _DURATION.match(value)
    if match and float(match.group(1)) == 0:
        raise PolicyError(f"{name}: {value!r} must be longer than zero")
    if not match or not match.group(2):
        raise PolicyError(f"{name}: {value!r} is not a duration like 30d, 12h or 2w")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    return timedelta(seconds=seconds)


def retry_horizon(settings: Settings) -> tuple[str, timedelta]:
    """The provider whose retries last longest, and how long (the whole schedule plus its jitter)."""
    longest = max(((provider, sum(schedule.delays, timedelta()) * (1 + schedule.jitter))
                   for provider, schedule in schedules_from(settings).items()), key=lambda item: item[1])
    return longest


def _hours(value: timedelta) -> str:
    return f"{value.total_seconds() / 3600:.1f} h"


def check_age(age: timedelta, settings: Settings, *, name: str) -> None:
    """Refuse an age that would remove events a provider may still be retrying."""
    provider, horizon = retry_horizon(settings)
    if age < horizon:
        raise PolicyError(f"{name} ({_hours(age)}) is shorter than the {provider} retry horizon "
                          f"({_hours(horizon)}): its events could be removed while still being retried")


def check_policy(settings: Settings) -> None:
    """RETENTION_DAYS against the retry horizon, DEDUP_DAYS against RETENTION_DAYS."""
    if settings.retention_days:
        check_age(timedelta(days=settings.retention_days), settings, name="PAYHOOKS_RETENTION_DAYS")
        if settings.dedup_days and settings.dedup_days < settings.retention_days:
            raise PolicyError(
                f"PAYHOOKS_DEDUP_DAYS ({settings.dedup_days:g}) is shorter than PAYHOOKS_RETENTION_DAYS "
                f"({settings.retention_days:g}): a redelivery of a kept event would be stored twice")


# ``after``: where the previous batch of this run stopped. Starting there, not at the oldest
# row, keeps a long prune linear: the index entries of rows deleted a moment ago are still
# in the index until vacuum, and every batch would walk past all of them again.
_CANDIDATES = """
    SELECT e.id, e.processed_at FROM webhook_events e
     WHERE e.final_status IN ('succeeded', 'dead', 'ignored') AND e.processed_at < :cutoff
       AND e.processed_at >= :after_at AND (e.processed_at > :after_at OR e.id > :after_id)
     ORDER BY e.processed_at, e.id
     LIMIT :limit
     FOR UPDATE OF e SKIP LOCKED"""
# An event whose deliveries are still in work waits. Checked on the candidates (an index probe
# each) rather than in the query above, where the planner reads the whole deliveries table;
# the candidates' deliveries are locked, so a delivery replay cannot reopen one meanwhile.
_DELIVERIES_BUSY = """
    SELECT event_id, bool_or(status NOT IN ('succeeded', 'dead', 'skipped')) AS busy
      FROM (SELECT event_id, status FROM deliveries WHERE event_id = ANY(CAST(:ids AS bigint[])) FOR UPDATE) d
     GROUP BY event_id"""
# One archive line per event, built by Postgres (timestamps in UTC, ISO 8601).
_LINES = """
    SELECT to_char(e.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, json_build_object(
        'format', 'payhooks-archive/1', 'id', e.id, 'provider', e.provider, 'event_key', e.event_key,
        'event_type', e.event_type, 'status', e.status, 'livemode', e.livemode,
        'received_at', e.received_at, 'processed_at', e.processed_at, 'attempt_count', e.attempts,
        'replay_count', e.replay_count, 'last_error', e.last_error, 'order_id', e.order_id,
        'verification', json_build_object('secret_index', e.secret_index, 'method', e.verify_method),
        'headers', e.headers,
        'raw_body_base64', translate(encode(e.raw_body, 'base64'), E'\\n', ''),
        'payload', e.payload, 'fetched_payload', e.fetched_payload,
        'attempts', COALESCE((
            SELECT json_agg(json_build_object(
                'number', a.number, 'outcome', a.outcome, 'started_at', a.started_at,
                'finished_at', a.finished_at, 'worker', a.worker, 'error', a.error,
                'traceback', a.traceback) ORDER BY a.number)
              FROM event_attempts a WHERE a.event_id = e.id), '[]'),
        'deliveries', COALESCE((
            SELECT json_agg(json_build_object(
                'id', d.id, 'handler', d.handler, 'kind', d.kind, 'status', d.status, 'payload', d.payload,
                'attempt_count', d.attempts, 'replay_count', d.replay_count, 'last_error', d.last_error,
                'created_at', d.created_at, 'processed_at', d.processed_at,
                'tries', COALESCE((
                    SELECT json_agg(json_build_object(
                        'number', t.number, 'outcome', t.outcome, 'started_at', t.started_at,
                        'finished_at', t.finished_at, 'response_code', t.response_code,
                        'response', t.response, 'error', t.error, 'duration_ms', t.duration_ms,
                        'worker', t.worker) ORDER BY t.number)
                      FROM delivery_attempts t WHERE t.delivery_id = d.id), '[]')) ORDER BY d.id)
              FROM deliveries d WHERE d.event_id = e.id), '[]')
        )::text AS line
      FROM webhook_events e WHERE e.id = ANY(CAST(:ids AS bigint[])) ORDER BY e.id"""
# Children first, so each parent's cascading foreign keys find nothing left to do. The tries go
# through their delivery_id index: ``IN (SELECT …)`` was planned as a hash join over the whole table.
_DELETES = (
    "DELETE FROM delivery_attempts WHERE delivery_id = ANY(ARRAY("
    "SELECT id FROM deliveries WHERE event_id = ANY(CAST(:ids AS bigint[]))))",
    "DELETE FROM deliveries WHERE event_id = ANY(CAST(:ids AS bigint[]))",
    "DELETE FROM event_attempts WHERE event_id = ANY(CAST(:ids AS bigint[]))",
    "DELETE FROM webhook_events WHERE id = ANY(CAST(:ids AS bigint[]))",
)


@dataclass(frozen=True)
class Batch:
    removed: int
    files: tuple[str, ...]
    after: tuple[datetime, int] | None = None
    """(processed_at, id) of the last candidate looked at: pass it to the next batch of the run.
    None: no candidate was left."""


START = (datetime(1970, 1, 1, tzinfo=UTC), 0)


def id_array(ids: list[int]) -> str:
    """``ids`` as one Postgres array literal: a batch's ids go to six statements, and psycopg's list
    adaptation of 1,000 ints costs more CPU than the statement that reads them."""
    return "{" + ",".join(map(str, ids)) + "}"


def cutoff_for(conn: Connection, age: timedelta) -> datetime:
    return conn.execute(text("SELECT now() - make_interval(secs => :s)"),
                        {"s": age.total_seconds()}).scalar_one()


def count_candidates(conn: Connection, *, cutoff: datetime) -> int:
    return conn.execute(text(
        "SELECT count(*) FROM webhook_events WHERE final_status IN ('succeeded', 'dead', 'ignored') "
        "AND processed_at < :cutoff"), {"cutoff": cutoff}).scalar_one()


def lock(conn: Connection, *, wait: bool) -> bool:
    """The pruning lock, for this transaction. ``wait=False``: True only if it was free."""
    if wait:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        return True
    return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}).scalar_one())


def prune_batch(conn: Connection, *, cutoff: datetime, batch_size: int, directory: Path,
                after: tuple[datetime, int] = START) -> Batch:
    """Archive and remove up to ``batch_size`` final events processed before ``cutoff``.

    Call it in a transaction that holds :func:`lock`; commit when it returns
    (the archive is durable by then). Returns what it removed and where the
    next batch of the same run starts (``after`` None: nothing left).
    """
    archive.repair(conn, directory)
    rows = conn.execute(text(_CANDIDATES), {"cutoff": cutoff, "limit": batch_size, "after_at": after[0],
                                            "after_id": after[1]}).all()
    if not rows:
        return Batch(removed=0, files=())
    last = (rows[-1].processed_at, rows[-1].id)
    ids = [row.id for row in rows]
    busy = {row.event_id for row in conn.execute(text(_DELIVERIES_BUSY), {"ids": id_array(ids)}) if row.busy}
    ids = [i for i in ids if i not in busy]
    if not ids:
        return Batch(removed=0, files=(), after=last)
    chosen = {"ids": id_array(ids)}
    conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    by_day: dict[str, list[str]] = defaultdict(list)
    for row in conn.execute(text(_LINES), chosen):
        by_day[row.day].append(row.line)
    paths = {day: str(directory / archive.file_name(day)) for day in by_day}
    committed = archive.committed_lengths(conn, list(paths.values()))
    written = [archive.append_day(directory, day=day, lines=lines, committed=committed.get(paths[day]))
               for day, lines in sorted(by_day.items())]
    for statement in _DELETES:
        conn.execute(text(statement), chosen)
    archive.record(conn, written)
    return Batch(removed=len(ids), files=tuple(w.path for w in written), after=last)


class Pace:
    """Holds a prune to ``rate`` events/s on average by sleeping between batches (0: no pace).

    A prune of a large backlog at full speed takes a core of Postgres and the
    WAL's disk from live traffic; paced, each batch runs at full speed and the
    time between batches is left to the receiver and the workers.
    """

    def __init__(self, rate: float, *, stop: threading.Event | None = None) -> None:
        self.rate, self.stop, self.done = rate, stop or threading.Event(), 0
        self.started = time.monotonic()

    def after(self, removed: int) -> None:
        self.done += removed
        if self.rate:
            self.stop.wait(self.started + self.done / self.rate - time.monotonic())


def prune_keys(conn: Connection, *, dedup_days: float, batch_size: int) -> int:
    """Forget dedup keys older than ``dedup_days`` whose event is gone. Returns how many."""
    return conn.execute(text("""
        DELETE FROM event_keys k
         USING (SELECT provider, event_key FROM event_keys
                 WHERE received_at < now() - make_interval(secs => :seconds)
                 ORDER BY received_at LIMIT :limit) old
         WHERE k.provider = old.provider AND k.event_key = old.event_key
           AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.id = k.event_id)"""),
                        {"seconds": dedup_days * 86400, "limit": batch_size}).rowcount
