"""The watcher: a small periodic job beside the dispatcher that turns new deaths into incidents and alerts.

Each cycle, in one transaction under an advisory lock (so of several
dispatchers one watches at a time), it reads the dead attempts written since
its cursor (a partial index on insert-only tables: the cost follows the
deaths, not the tables), records them in incidents, resolves incidents whose
members all succeeded, and checks providers for silence. The worker's own
statements are untouched. Reconciliation, when periodic, runs here too, outside
that transaction (it waits on ProcessOut's API).

The cursor only passes a death once it is older than the lease (by then any
transaction that took a smaller id has committed or died); deaths read above
the cursor are remembered in memory, and a death read twice changes nothing.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from models import incidents, metrics, silence
from models.incidents import Death
from models.settings import Settings

log = logging.getLogger("payhooks.watch")

LOCK_KEY = 0x70686B17  # pg advisory lock: one watcher cycle at a time
RECONCILE_LOCK_KEY = 0x70686B18
BATCH_SIZE = 500

_DEATHS = {
    "events": text("""
        SELECT a.id, a.event_id AS item_id, a.number, a.error, a.finished_at, e.provider, e.event_type AS item_type,
               e.status, e.attempts
          FROM event_attempts a JOIN webhook_events e ON e.id = a.event_id
         WHERE a.outcome IN ('dead', 'lost') AND a.id > :cursor AND a.id <> ALL(:seen)
         ORDER BY a.id LIMIT :batch"""),
    "deliveries": text("""
        SELECT a.id, a.delivery_id AS item_id, a.number, a.error, a.finished_at, NULL AS provider,
               d.kind AS item_type, d.status, d.attempts, d.alert_id
          FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
         WHERE a.outcome IN ('dead', 'lost') AND a.id > :cursor AND a.id <> ALL(:seen)
         ORDER BY a.id LIMIT :batch"""),
}


@dataclass
class DeathReader:
    """New deaths of one table, from a persisted cursor plus the ids read above it."""

    source: str
    seen: dict[int, datetime] = field(default_factory=dict)

    @property
    def cursor_name(self) -> str:
        return f"incidents.{self.source}"

    def read(self, conn: Connection, *, now: datetime, settle_seconds: float,
             batch_size: int = BATCH_SIZE) -> tuple[list[Death], dict[int, datetime]]:
        """Deaths to record, and what ``seen`` becomes once they are committed."""
        cursor = conn.execute(text("SELECT position FROM watch_cursors WHERE name = :n"),
                              {"n": self.cursor_name}).scalar() or 0
        seen = {i: t for i, t in self.seen.items() if i > cursor}
        rows = conn.execute(_DEATHS[self.source], {"cursor": cursor, "seen": list(seen), "batch": batch_size}).all()
        deaths = []
        for row in rows:
            seen[row.id] = row.finished_at
            if getattr(row, "alert_id", None) is not None:
                log.warning("alert delivery %s is dead: %s", row.item_id, row.error,
                            extra={"action": "alert.dead", "delivery_id": row.item_id})
            elif row.status == "dead" and row.attempts == row.number:
                deaths.append(Death(source=self.source, item_id=row.item_id, attempt=row.number, error=row.error,
                                    died_at=row.finished_at, provider=row.provider, item_type=row.item_type))
        limit = rows[-1].id if len(rows) == batch_size else None
        settled = [i for i, t in seen.items() if (now - t).total_seconds() > settle_seconds
                   and (limit is None or i <= limit)]
        if settled and max(settled) > cursor:
            conn.execute(text("""
                INSERT INTO watch_cursors (name, position, at) VALUES (:n, :pos, clock_timestamp())
                ON CONFLICT (name) DO UPDATE SET position = GREATEST(watch_cursors.position, EXCLUDED.position),
                                                 at = EXCLUDED.at"""),
                {"n": self.cursor_name, "pos": max(settled)})
            seen = {i: t for i, t in seen.items() if i > max(settled)}
        return deaths, seen


@dataclass
class Watcher:
    settings: Settings
    engine: Engine
    stop_event: threading.Event = field(default_factory=threading.Event)
    readers: list[DeathReader] = field(default_factory=lambda: [DeathReader("events"), DeathReader("deliveries")])
    redact: Any = field(init=False)
    """Replaces configured secrets in error texts before they reach an incident or an alert."""

    reconcile_after: float = 0.0
    """Monotonic time before which no periodic reconcile is tried (after a failure: one period)."""

    def __post_init__(self) -> None:
        from models.redaction import Redactor
        from workers.reconcile import NotConfigured, require_configuration

        self.redact = Redactor.from_settings(self.settings).text
        if self.settings.reconcile_processout_minutes:
            try:
                require_configuration(self.settings)
            except NotConfigured as exc:
                log.warning("PAYHOOKS_RECONCILE_PROCESSOUT_MINUTES is set but %s: periodic reconcile is off", exc,
                            extra={"action": "reconcile.unconfigured"})
                self.settings = self.settings.model_copy(update={"reconcile_processout_minutes": None})
        for provider in silence.PROVIDERS:
            if self.settings.silence_minutes(provider) and not silence.configured(self.settings, provider):
                log.warning("PAYHOOKS_SILENCE_MINUTES_%s is set but %s is not configured: not watched",
                            provider.upper(), provider, extra={"action": "watch.unconfigured", "provider": provider})

    def run(self) -> None:
        interval = self.settings.watch_interval_seconds
        log.info("watcher started", extra={"action": "watch.started", "interval_seconds": interval})
        while not self.stop_event.is_set():
            try:
                self.cycle()
            except Exception:  # the database is away: try again next cycle, lose nothing
                log.exception("watch cycle failed", extra={"action": "watch.cycle_failed"})
            if time.monotonic() >= self.reconcile_after:
                try:
                    self.reconcile_if_due()
                except Exception as exc:  # the API or the database is away: try again in one period
                    self.reconcile_after = time.monotonic() + 60 * (self.settings.reconcile_processout_minutes or 1)
                    log.warning("periodic reconcile failed: %s", exc,
                                extra={"action": "reconcile.failed", "error": type(exc).__name__})
            self.stop_event.wait(interval)

    def cycle(self, *, now: datetime | None = None) -> dict[str, Any]:
        """One pass; ``now`` (the database clock by default) is what silence is measured against."""
        settle = self.settings.lease_seconds + 30
        pending: list[tuple[DeathReader, dict[int, datetime]]] = []
        with self.engine.begin() as conn:
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}).scalar():
                return {"locked": False}
            db_now = conn.execute(text("SELECT statement_timestamp()")).scalar_one()
            opened: list[int] = []
            for reader in self.readers:
                deaths, seen = reader.read(conn, now=db_now, settle_seconds=settle)
                pending.append((reader, seen))
                opened += incidents.record_deaths(conn, self.settings, deaths, redact=self.redact)
            resolved = incidents.resolve_cleared(conn, self.settings)
            silence.refresh_activity(conn)
            quiet = silence.check(conn, self.settings, now=now or db_now)
            self._gauges(conn)
        for reader, seen in pending:  # only once committed
            reader.seen = seen
        if opened or resolved or quiet:
            log.info("watch: %d incident alerts, %d resolved, %d silence alerts", len(opened), len(resolved),
                     len(quiet), extra={"action": "watch.changed", "opened": len(opened), "resolved": resolved,
                                        "silence_alerts": len(quiet)})
        return {"locked": True, "alerts": opened + quiet, "resolved": resolved}

    def _gauges(self, conn: Connection) -> None:
        for row in silence.activity(conn):
            if row.last_received_at is not None:
                metrics.LAST_RECEIVED.labels(row.provider).set(row.last_received_at.timestamp())
        for provider, minutes in silence.watched(self.settings).items():
            metrics.SILENCE_THRESHOLD.labels(provider).set(minutes * 60)
        counts = dict(conn.execute(text("SELECT status, count(*) FROM incidents GROUP BY status")).all())
        for status in ("open", "acknowledged", "resolved"):
            metrics.INCIDENTS.labels(status).set(counts.get(status, 0))

    def reconcile_if_due(self) -> None:
        minutes = self.settings.reconcile_processout_minutes
        if not minutes:
            return
        from workers.reconcile import run_periodic

        run_periodic(self.settings, self.engine, every_minutes=minutes, lock_key=RECONCILE_LOCK_KEY)


def start_watcher(settings: Settings, engine: Engine, *, stop_event: threading.Event) -> threading.Thread:
    watcher = Watcher(settings=settings, engine=engine, stop_event=stop_event)
    thread = threading.Thread(target=watcher.run, name="payhooks-watch", daemon=True)
    thread.start()
    return thread
