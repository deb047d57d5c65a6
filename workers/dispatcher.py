"""The dispatcher: Postgres decides what is due; the broker only carries "work on N now".

It serves two lanes, events and deliveries, the same way. Each cycle it claims
due rows (``FOR UPDATE SKIP LOCKED``, so several dispatchers can run), commits
them as ``queued`` with a lease, then publishes one message per id with
publisher confirms. A publish that fails puts its rows straight back to
``pending``; a dispatcher killed between commit and publish leaves rows whose
lease runs out, and the sweeper re-arms them. The sweeper also turns a row
whose worker died mid-work (its lease ran out) into a failed try, "worker
lost", on the lane's retry schedule.

Between cycles an idle dispatcher sleeps on a ``LISTEN`` connection
(:mod:`models.wakeup`): whoever makes work due sends ``NOTIFY``, and the
dispatcher also wakes when a row it knows of comes due or its lease runs out;
every ``PAYHOOKS_DISPATCH_SAFETY_POLL_SECONDS`` it asks Postgres (one query)
whether something is due that nobody announced. Woken, it waits out what is
left of ``PAYHOOKS_DISPATCH_POLL_SECONDS`` since its last look, so under
load it still looks once per poll (or back to back while batches come full)
and an idle one costs one query every few seconds and the gauges.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from models import counts, deliveries, metrics, transitions, wakeup
from models.retry import RetrySchedule, schedules_from
from models.settings import Settings
from workers.celery_app import PROCESS_EVENTS, SEND_DELIVERIES

log = logging.getLogger("payhooks.dispatcher")

Publish = Callable[[str, list[int]], None]
"""Publishes one message of a task per id; raises when the broker did not confirm."""

WORKER_LOST = "worker lost"
OBSERVE_EVERY_SECONDS = 5.0
"""How often the gauges are refreshed, busy or idle."""
SWEEP_EVERY_SECONDS = 1.0
"""Leases run for minutes: looking for expired ones once a second (not every poll) loses nothing
and keeps a busy dispatcher's cost per cycle to one claim per lane."""
FINAL_RECOUNT_SECONDS = 60.0
"""The gauges recount the final rows when :func:`models.counts.final_changes` moves, and at least this
often: a change it is slow to show (Postgres flushes a writer's statistics within 10 s) is healed."""
STOP_CHECK_SECONDS = 0.5
"""An idle dispatcher looks at its stop flag this often while it waits for a wake-up."""


@dataclass(frozen=True)
class Lane:
    name: str
    task: str
    claim_due: Callable[..., list[int]]
    unqueue: Callable[[Connection, list[int]], int]
    expired_leases: Callable[..., tuple[int, list[Any]]]
    fail_lost: Callable[[Connection, Any], str]


def _lanes(settings: Settings) -> list[Lane]:
    event_schedules = schedules_from(settings)
    delivery_schedule = RetrySchedule.parse(settings.delivery_retry_schedule)

    def fail_lost_event(conn: Connection, claim: transitions.Claim) -> str:
        retry_in = event_schedules[claim.provider].delay_for(claim.tries)
        return transitions.fail(conn, claim, error=WORKER_LOST, traceback=None, retry_in=retry_in, lost=True)

    def fail_lost_delivery(conn: Connection, claim: deliveries.Claim) -> str:
        retry_in: timedelta | None = delivery_schedule.delay_for(claim.tries)
        return deliveries.fail(conn, claim, error=WORKER_LOST, retry_in=retry_in, lost=True,
                               result=deliveries.Result())

    return [
        Lane("events", PROCESS_EVENTS, transitions.claim_due, transitions.unqueue, transitions.expired_leases,
             fail_lost_event),
        Lane("deliveries", SEND_DELIVERIES, deliveries.claim_due, deliveries.unqueue, deliveries.expired_leases,
             fail_lost_delivery),
    ]


@dataclass(frozen=True)
class _FinalCount:
    """The final rows of a table by group, as last counted, and the signs of change they were counted at."""
    changes: tuple[int | None, Any]
    at: float
    by_group: dict[str, dict[str, int]]


@dataclass
class Dispatcher:
    settings: Settings
    engine: Engine
    publish: Publish
    stop_event: threading.Event = field(default_factory=threading.Event)
    lanes: list[Lane] = field(init=False)
    name: str = field(default_factory=lambda: f"dispatcher@{socket.gethostname()}:{os.getpid()}")

    listener: wakeup.Listener = field(init=False)
    _observed_at: float = field(init=False, default=float("-inf"))
    _final: dict[str, _FinalCount] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.lanes = _lanes(self.settings)
        self.listener = wakeup.Listener(self.settings, application_name="payhooks-dispatcher")

    def run(self) -> None:
        poll = self.settings.dispatch_poll_seconds
        safety = self.settings.dispatch_safety_poll_seconds
        log.info("dispatcher started", extra={"action": "dispatcher.started", "poll_seconds": poll,
                                              "safety_poll_seconds": safety})
        swept_at = listen_at = 0.0
        try:
            while not self.stop_event.is_set():
                if not self.listener.listening and time.monotonic() >= listen_at:
                    listen_at = time.monotonic() + safety  # the database is away: try again after that
                    self.listener.open()  # before the look below, so no wake-up falls in between
                self.listener.drain()  # the look below covers everything notified so far
                self._observe_when_due()
                # A lease is at least 5 s: sweeping at most once a second (idle: when it wakes, and it
                # wakes when the first lease runs out) finds expired ones soon enough.
                sweep_now = time.monotonic() - swept_at >= SWEEP_EVERY_SECONDS
                if sweep_now:
                    swept_at = time.monotonic()
                busy = False
                for lane in self.lanes:
                    try:
                        if sweep_now:
                            self.sweep(lane)
                        busy |= self.dispatch_once(lane) >= self.settings.dispatch_batch_size
                    except Exception:  # the database or broker is away: keep polling, lose nothing
                        log.exception("dispatch cycle failed", extra={"action": "dispatcher.cycle_failed",
                                                                      "lane": lane.name})
                if busy:
                    continue
                looked_at = time.monotonic()
                self.idle(safety)
                # under load wake-ups come faster than the poll: take them in one look per poll
                self.stop_event.wait(max(0.0, looked_at + poll - time.monotonic()))
        finally:
            self.listener.close()
        log.info("dispatcher stopped", extra={"action": "dispatcher.stopped"})

    def _observe_when_due(self) -> None:
        if time.monotonic() - self._observed_at >= OBSERVE_EVERY_SECONDS:
            self._observed_at = time.monotonic()
            self.observe()

    def _next_in(self) -> float | None:
        try:
            with self.engine.connect() as conn:
                return wakeup.seconds_to_next(conn)
        except Exception:  # the database is away: look now (the look logs the error)
            return 0.0

    def idle(self, safety: float) -> bool:
        """Sleep until a wake-up or until a stored row is due or its lease runs out.

        What is stored is read once now, then again every ``safety`` seconds
        (one query of four index probes; the look itself, two claims and the
        sweeps, runs only when something is due or was notified). The gauges
        are refreshed meanwhile every :data:`OBSERVE_EVERY_SECONDS`. Returns
        True when a notification ended the sleep. Without a listening
        connection it sleeps one poll, as a dispatcher without wake-ups would.
        """
        while not self.stop_event.is_set():
            next_in = self._next_in()
            if next_in is not None and next_in <= 0:
                return False
            seconds = safety if next_in is None else min(safety, next_in)
            log.debug("asleep for up to %.1f s", seconds, extra={"action": "dispatcher.asleep", "seconds": seconds})
            deadline = time.monotonic() + seconds
            while not self.stop_event.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                if not self.listener.listening:
                    self.stop_event.wait(min(deadline - now, self.settings.dispatch_poll_seconds))
                    return False
                observe_at = self._observed_at + OBSERVE_EVERY_SECONDS
                if now >= observe_at:
                    self._observe_when_due()
                    continue
                if self.listener.wait(min(deadline, observe_at, now + STOP_CHECK_SECONDS) - now):
                    return True
        return False

    def dispatch_once(self, lane: Lane) -> int:
        """Claim one batch of due rows of a lane and publish it. Returns how many were published."""
        with self.engine.begin() as conn:
            ids = lane.claim_due(conn, batch_size=self.settings.dispatch_batch_size,
                                 lease_seconds=self.settings.lease_seconds)
        if not ids:
            return 0
        try:
            self.publish(lane.task, ids)
        except Exception as exc:
            metrics.PUBLISH_FAILURES.labels(lane.name).inc()
            with self.engine.begin() as conn:
                lane.unqueue(conn, ids)
            log.warning("publish failed, %d %s back to pending: %s", len(ids), lane.name, type(exc).__name__,
                        extra={"action": "dispatcher.publish_failed", "lane": lane.name, "count": len(ids)})
            time.sleep(min(1.0, self.settings.dispatch_poll_seconds))
            return 0
        metrics.DISPATCHED.labels(lane.name).inc(len(ids))
        log.debug("published %d %s", len(ids), lane.name,
                  extra={"action": "dispatcher.published", "lane": lane.name, "count": len(ids)})
        return len(ids)

    def observe(self) -> None:
        """Refresh the gauges: rows by status, dispatch lag, the oldest unhandled event.

        Rows by status come from :mod:`models.counts` (tallies plus index
        ranges), so this costs the same at 5 thousand rows or 50 million. The
        non-final rows are counted every time; the final rows only when
        :func:`models.counts.final_changes` moved or :data:`FINAL_RECOUNT_SECONDS`
        passed: counting them reads every row stamped since the housekeeper's
        last fold (minutes of traffic, not yet all-visible after a burst), which
        an idle dispatcher would otherwise repeat every 5 s for nothing.
        """
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin(), counts.index_bound(conn):  # stale statistics must not turn these into scans
                    for counted in counts.COUNTED.values():
                        found = counts.totals(counts.merged(self._final_counts(conn, counted),
                                                            counts.open_by_group(conn, counted)))
                        for status in counted.statuses:
                            metrics.ROWS_BY_STATUS.labels(counted.table, status).set(found.get(status, 0))
                        lag = conn.execute(text(
                            f"""SELECT COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(next_attempt_at)), 0)
                                  FROM {counted.table} WHERE status IN ('pending', 'retrying')
                                   AND next_attempt_at <= clock_timestamp()""")).scalar_one()
                        lane = "events" if counted.table == "webhook_events" else counted.table
                        metrics.DISPATCH_LAG.labels(lane).set(float(lag))
                    # one min() per partial index (due; leased): each reads only the rows in work. MATERIALIZED:
                    # else, with statistics that expect a backlog, the planner walks the received_at index
                    # from the oldest row looking for one in work (100-200 ms over 100,000 handled rows)
                    oldest = conn.execute(text(
                        f"""WITH due AS MATERIALIZED (
                                 SELECT received_at FROM webhook_events WHERE {counts.EVENTS.open_where(0)}),
                             leased AS MATERIALIZED (
                                 SELECT received_at FROM webhook_events WHERE {counts.EVENTS.open_where(1)})
                            SELECT COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - LEAST(
                                (SELECT min(received_at) FROM due), (SELECT min(received_at) FROM leased))), 0)"""
                    )).scalar_one()
                    metrics.OLDEST_PENDING.set(float(oldest))
        except Exception:  # gauges are best effort; dispatching goes on
            log.warning("could not refresh gauges", exc_info=True, extra={"action": "dispatcher.observe_failed"})

    def _final_counts(self, conn: Connection, counted: counts.Counted) -> dict[str, dict[str, int]]:
        changes = counts.final_changes(conn, counted)
        last = self._final.get(counted.table)
        if last is None or last.changes != changes or time.monotonic() - last.at >= FINAL_RECOUNT_SECONDS:
            last = _FinalCount(changes, time.monotonic(), counts.final_by_group(conn, counted))
            self._final[counted.table] = last
        return last.by_group

    def sweep(self, lane: Lane) -> tuple[int, int]:
        """Re-arm a lane's expired leases. Returns (queued rows re-armed, lost tries recorded)."""
        with self.engine.begin() as conn:
            requeued, lost = lane.expired_leases(conn, batch_size=self.settings.dispatch_batch_size,
                                                 lease_seconds=self.settings.lease_seconds, worker=self.name)
            for claim in lost:
                lane.fail_lost(conn, claim)
        if requeued or lost:
            log.warning("re-armed %d queued %s, %d lost tries", requeued, lane.name, len(lost),
                        extra={"action": "dispatcher.swept", "lane": lane.name, "requeued": requeued,
                               "lost": len(lost)})
        return requeued, len(lost)
