"""Gap recovery for ProcessOut: store the events its API lists that never arrived as webhooks.

ProcessOut keeps every event of a project and lists them (``GET /events``,
newest first). Whatever it lists since ``--since`` and payhooks has not stored
is stored now, as if received, with ``verify_method = 'reconciled'`` (the API
itself is the proof; it is called with the project's credentials), and then
runs through the normal path: the dispatcher picks it up, the worker fetches
it again by id and handles it. Stored events are never touched (the INSERT is
the receiver's, ``ON CONFLICT DO NOTHING``). Every page is read before anything
is stored, so an API error changes nothing.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from models import metrics
from models.queries import actions
from models.ingest import store_event
from models.settings import Settings
from models.silence import RECONCILED
from workers.processout_api import ProcessOutClient

log = logging.getLogger("payhooks.reconcile")

PAGE_SIZE = 100
MAX_PAGES = 1_000
CURSOR = "reconcile.processout"
MAX_PERIODIC_WINDOW = timedelta(days=7)
FIRST_PERIODIC_WINDOW = timedelta(hours=24)


class NotConfigured(Exception):
    """ProcessOut's API credentials are not configured."""


def require_configuration(settings: Settings) -> None:
    missing = [name for name, value in (("PAYHOOKS_PROCESSOUT_PROJECT_ID", settings.processout_project_id),
                                        ("PAYHOOKS_PROCESSOUT_PROJECT_SECRET", settings.processout_project_secret))
               if not value]
    if missing:
        raise NotConfigured(f"ProcessOut is not configured: set {' and '.join(missing)} "
                            "(reconciliation lists events with the project's API credentials)")


def fired_at(event: dict[str, Any]) -> datetime | None:
    value = event.get("fired_at") or event.get("date")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Listing:
    events: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0


def list_since(client: ProcessOutClient, *, since: datetime, page_size: int = PAGE_SIZE,
               max_pages: int = MAX_PAGES) -> Listing:
    """Every event fired at or after ``since`` (and any without a time), paging newest first.

    Stops when a page reaches events older than ``since``, when ``has_more``
    is false, or when the API repeats itself. Raises ``ProviderUnavailable``.
    """
    listing, cursor, seen = Listing(), None, set()
    while listing.pages < max_pages:
        page, has_more = client.list_events_page(limit=page_size, start_after=cursor)
        listing.pages += 1
        fresh = [e for e in page if e["id"] not in seen]
        seen.update(e["id"] for e in fresh)
        listing.events += [e for e in fresh if (fired_at(e) or since) >= since]
        reached_older = any((t := fired_at(e)) is not None and t < since for e in page)
        if not has_more or not fresh or reached_older:
            break
        cursor = page[-1]["id"]
    return listing


def stored_keys(conn: Connection, keys: list[str]) -> set[str]:
    """The ones payhooks has received (``event_keys`` keeps a key after its event is pruned)."""
    return set(conn.execute(text("""SELECT event_key FROM event_keys
                                     WHERE provider = 'processout' AND event_key = ANY(:keys)"""),
                            {"keys": keys}).scalars())


def missing_events(engine: Engine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        known = stored_keys(conn, [e["id"] for e in events])
    return sorted((e for e in events if e["id"] not in known), key=lambda e: (fired_at(e) or datetime.min.replace(
        tzinfo=UTC), e["id"]))


def store_missing(engine: Engine, events: list[dict[str, Any]], *, actor: str,
                  selection: dict[str, Any]) -> tuple[list[int], int]:
    """Store the events (those stored meanwhile are left alone), with one audit row. Returns (ids, action id)."""
    ids: list[int] = []
    with engine.begin() as conn:
        driver = conn.connection.driver_connection  # the receiver's INSERT, in this transaction
        for event in events:
            stored = store_event(
                driver, provider="processout", event_key=event["id"], event_type=event["name"][:255],
                livemode=(not event["sandbox"]) if isinstance(event.get("sandbox"), bool) else None,
                raw_body=json.dumps(event, separators=(",", ":"), sort_keys=True).encode(),
                headers={"x-payhooks-source": "reconcile: GET /events"},
                payload={"event_id": event["id"], "event_type": event["name"]},
                secret_index=None, verify_method=RECONCILED,
            )
            if stored.created:
                ids.append(stored.id)
        action_id = actions.start_action(conn, actor=actor, action="reconcile", target="events",
                                       filter={**selection, "ids": ids},
                                       detail=f"stored {len(ids)} of {len(events)} missing ProcessOut events")
        actions.add_to_action(conn, action_id, count=len(ids))
    metrics.RECONCILED.labels("processout").inc(len(ids))
    log.info("reconciled %d ProcessOut events", len(ids),
             extra={"action": "reconcile.stored", "provider": "processout", "count": len(ids), "actor": actor,
                    "operator_action_id": action_id})
    return ids, action_id


def run_periodic(settings: Settings, engine: Engine, *, every_minutes: float, lock_key: int) -> int | None:
    """Reconcile when due (PAYHOOKS_RECONCILE_PROCESSOUT_MINUTES), one watcher at a time.

    The window starts one period before the last successful run began (so a
    late event is seen twice rather than never), at most a week back; the first
    run looks back a day (or two periods, if longer). Returns how many were
    stored, or None when not due.
    """
    period = timedelta(minutes=every_minutes)
    with engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key}).scalar():
            return None
        conn.commit()
        try:
            now = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
            last = conn.execute(text("SELECT at FROM watch_cursors WHERE name = :n"), {"n": CURSOR}).scalar()
            conn.commit()
            if last is not None and now - last < period:
                return None
            start = last - period if last is not None else now - max(FIRST_PERIODIC_WINDOW, 2 * period)
            since = max(start, now - MAX_PERIODIC_WINDOW)
            require_configuration(settings)
            client = ProcessOutClient(settings)
            try:
                listing = list_since(client, since=since)
            finally:
                client.close()
            missing = missing_events(engine, listing.events)
            ids: list[int] = []
            if missing:
                ids, _ = store_missing(engine, missing, actor="payhooks-watcher",
                                       selection={"provider": "processout", "since": since.isoformat(),
                                                  "periodic": True})
            conn.execute(text("""INSERT INTO watch_cursors (name, at) VALUES (:n, :at)
                                 ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at"""), {"n": CURSOR, "at": now})
            conn.commit()
            return len(ids)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
            conn.commit()
