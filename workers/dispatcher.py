"""The dispatcher: Postgres decides what is due; the broker only carries "work on N now".

Each cycle it claims due rows (``FOR UPDATE SKIP LOCKED``, so several
dispatchers can run), commits them as ``queued`` with a lease, then publishes
one message per id with publisher confirms. A publish that fails puts its rows
straight back to ``pending``; a dispatcher killed between commit and publish
leaves rows whose lease runs out, and the sweeper re-arms them. The sweeper
also turns a ``processing`` row whose lease ran out (a dead worker) into a
failed attempt, "worker lost", on the provider's schedule.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from models import transitions
from models.settings import Settings
from workers.retry import RetrySchedule, schedules_from

log = logging.getLogger("payhooks.dispatcher")

Publish = Callable[[list[int]], None]
"""Publishes one process_event message per id; raises when the broker did not confirm."""

WORKER_LOST = "worker lost"


@dataclass
class Dispatcher:
    settings: Settings
    engine: Engine
    publish: Publish
    stop_event: threading.Event = field(default_factory=threading.Event)
    schedules: dict[str, RetrySchedule] = field(init=False)
    name: str = field(default_factory=lambda: f"dispatcher@{socket.gethostname()}:{os.getpid()}")

    def __post_init__(self) -> None:
        self.schedules = schedules_from(self.settings)

    def run(self) -> None:
        poll = self.settings.dispatch_poll_seconds
        log.info("dispatcher started", extra={"action": "dispatcher.started", "poll_seconds": poll})
        while not self.stop_event.is_set():
            try:
                self.sweep()
                dispatched = self.dispatch_once()
            except Exception:  # the database or broker is away: keep polling, lose nothing
                log.exception("dispatch cycle failed", extra={"action": "dispatcher.cycle_failed"})
                dispatched = 0
            if dispatched < self.settings.dispatch_batch_size:
                self.stop_event.wait(poll)
        log.info("dispatcher stopped", extra={"action": "dispatcher.stopped"})

    def dispatch_once(self) -> int:
        """Claim one batch of due events and publish it. Returns how many were published."""
        with self.engine.begin() as conn:
            ids = transitions.claim_due(conn, batch_size=self.settings.dispatch_batch_size,
                                        lease_seconds=self.settings.lease_seconds)
        if not ids:
            return 0
        try:
            self.publish(ids)
        except Exception as exc:
            with self.engine.begin() as conn:
                transitions.unqueue(conn, ids)
            log.warning("publish failed, %d events back to pending: %s", len(ids), type(exc).__name__,
                        extra={"action": "dispatcher.publish_failed", "count": len(ids)})
            time.sleep(min(1.0, self.settings.dispatch_poll_seconds))
            return 0
        log.debug("published %d events", len(ids), extra={"action": "dispatcher.published", "count": len(ids)})
        return len(ids)

    def sweep(self) -> tuple[int, int]:
        """Re-arm expired leases. Returns (queued rows re-armed, lost attempts recorded)."""
        with self.engine.begin() as conn:
            requeued, lost = transitions.expired_leases(
                conn, batch_size=self.settings.dispatch_batch_size, lease_seconds=self.settings.lease_seconds,
                worker=self.name,
            )
            for claim in lost:
                retry_in = self.schedules[claim.provider].delay_for(claim.tries)
                transitions.fail(conn, claim, error=WORKER_LOST, traceback=None, retry_in=retry_in, lost=True)
        if requeued or lost:
            log.warning("re-armed %d queued events, %d lost attempts", requeued, len(lost),
                        extra={"action": "dispatcher.swept", "requeued": requeued, "lost": len(lost)})
        return requeued, len(lost)
