"""The housekeeper: retention, dedup-key expiry and count folding, in the dispatcher process.

One place decides what is old (a small periodic job under a lock, like procrastinate's remove_old_jobs): a thread of the dispatcher
that wakes every ``PAYHOOKS_HOUSEKEEPING_EVERY_SECONDS``, and per tick

1. folds final rows into the status tallies (:func:`models.counts.fold_all`);
2. archives and removes final events older than ``PAYHOOKS_RETENTION_DAYS``
   in batches of ``PAYHOOKS_PRUNE_BATCH_SIZE``, one transaction each, paced
   to ``PAYHOOKS_PRUNE_RATE`` events/s, until none is left or the tick's time
   budget is spent (then the next tick follows at once, where this one stopped);
3. forgets dedup keys older than ``PAYHOOKS_DEDUP_DAYS`` whose event is gone.

Every batch takes the pruning lock with ``pg_try_advisory_xact_lock``: with
several dispatchers, or a `payhooks prune` running, the others skip the
batch instead of waiting. A batch holds row locks only on its own rows, for
the few milliseconds it takes to archive and delete them.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from models import archive, counts, retention
from models.settings import Settings

log = logging.getLogger("payhooks.housekeeping")

TICK_BUDGET_SECONDS = 5.0
"""Pruning stops for this tick after this long, so a backlog is worked off in steady slices."""


@dataclass
class Housekeeper:
    settings: Settings
    engine: Engine
    stop_event: threading.Event = field(default_factory=threading.Event)
    resume_after: tuple[datetime, int] | None = None
    """Set when the last prune stopped at the tick's budget with events still to go: the next tick starts
    at once, from there, instead of walking again past the rows it removed. None: no backlog."""

    def run(self) -> None:
        every = self.settings.housekeeping_every_seconds
        log.info("housekeeper started", extra={
            "action": "housekeeping.started", "retention_days": self.settings.retention_days,
            "dedup_days": self.settings.dedup_days, "archive_dir": str(archive.archive_dir(self.settings))})
        while not self.stop_event.is_set():
            try:
                self.tick()
            except Exception:  # the database is away, or the archive broke: log, retry next tick
                log.exception("housekeeping failed", extra={"action": "housekeeping.failed"})
                self.resume_after = None
            self.stop_event.wait(every if self.resume_after is None else 0)  # a backlog goes on at the pace

    def tick(self) -> dict[str, int]:
        lag = counts.fold_lag_seconds(lease_seconds=self.settings.lease_seconds)
        folded = counts.fold_all(self.engine, lag_seconds=lag, budget_seconds=TICK_BUDGET_SECONDS)
        removed = self.prune() if self.settings.retention_days else 0
        keys = self.expire_keys() if self.settings.retention_days and self.settings.dedup_days else 0
        return {"folded": folded, "removed": removed, "keys": keys}

    def prune(self, *, at: datetime | None = None) -> int:
        """Archive and remove final events older than the retention, for one tick's budget; how many.

        ``at``: the moment the retention counts back from (default: the database's ``now()``);
        `bench.size_steady` replays simulated days through this same code.
        """
        directory = archive.archive_dir(self.settings)
        age = timedelta(days=self.settings.retention_days)
        deadline = time.monotonic() + TICK_BUDGET_SECONDS
        removed, after = 0, self.resume_after or retention.START
        self.resume_after = None
        pace = retention.Pace(self.settings.prune_rate, stop=self.stop_event)
        while not self.stop_event.is_set():
            if time.monotonic() >= deadline:
                self.resume_after = after
                break
            with self.engine.begin() as conn:
                if not retention.lock(conn, wait=False):
                    break
                cutoff = retention.cutoff_for(conn, age) if at is None else at - age
                batch = retention.prune_batch(conn, cutoff=cutoff,
                                              batch_size=self.settings.prune_batch_size, directory=directory,
                                              after=after)
            removed += batch.removed
            if batch.after is None:
                break
            after = batch.after
            pace.after(batch.removed)
        if removed:
            log.info("archived and removed %d events", removed,
                     extra={"action": "housekeeping.pruned", "count": removed})
        return removed

    def expire_keys(self) -> int:
        forgotten = 0
        deadline = time.monotonic() + TICK_BUDGET_SECONDS
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            with self.engine.begin() as conn:
                done = retention.prune_keys(conn, dedup_days=self.settings.dedup_days,
                                            batch_size=self.settings.prune_batch_size)
            forgotten += done
            if done < self.settings.prune_batch_size:
                break
        if forgotten:
            log.info("forgot %d dedup keys", forgotten, extra={"action": "housekeeping.keys_expired",
                                                                "count": forgotten})
        return forgotten

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="payhooks-housekeeper", daemon=True)
        thread.start()
        return thread
