"""Provider silence: when each provider last sent an accepted event, and telling someone when it stops.

The receiver's hot path is not touched: the watcher reads the events stored
since its cursor (a primary-key range, so the cost follows the new rows, not
the table) and keeps ``provider_activity`` up to date. Events stored by
reconciliation do not count: they are proof that webhooks did *not* arrive.

A provider with ``PAYHOOKS_SILENCE_MINUTES_<PROVIDER>`` set that sends nothing
accepted for that long raises ``provider.silent`` once; the next accepted
event raises ``provider.recovered`` once (each a guarded statement).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from models.alerts import raise_alert
from models.settings import Settings

PROVIDERS = ("smartpay", "processout", "senfenico", "yoco", "shadhinpay")
CURSOR = "received"
SETTLE_SECONDS = 15
"""An id is passed only once its row is this old: an INSERT that took an id earlier has committed by then."""
FIRST_LOOK_ROWS = 10_000
"""With no cursor yet, look this far back rather than read a large table from the start."""
RECONCILED = "reconciled"
"""``verify_method`` of events stored by reconciliation."""


def configured(settings: Settings, provider: str) -> bool:
    if provider == "processout":
        return bool(settings.processout_basic_auth or settings.processout_project_id)
    return bool(settings.secrets_for(provider))


def watched(settings: Settings) -> dict[str, float]:
    """Providers watched for silence → minutes (configured providers with the setting)."""
    return {p: minutes for p in PROVIDERS
            if (minutes := settings.silence_minutes(p)) is not None and configured(settings, p)}


def refresh_activity(conn: Connection) -> None:
    """Fold the events stored since the cursor into ``provider_activity``."""
    cursor = conn.execute(text("SELECT position FROM watch_cursors WHERE name = :n"), {"n": CURSOR}).scalar()
    if cursor is None:
        top = conn.execute(text("SELECT COALESCE(max(id), 0) FROM webhook_events")).scalar_one()
        cursor = max(0, top - FIRST_LOOK_ROWS)
    rows = conn.execute(text("""
        SELECT provider,
               max(received_at) FILTER (WHERE verify_method IS DISTINCT FROM :reconciled) AS last,
               max(id) FILTER (WHERE received_at < statement_timestamp() - make_interval(secs => :settle)) AS settled
          FROM webhook_events WHERE id > :cursor GROUP BY provider"""),
        {"cursor": cursor, "settle": SETTLE_SECONDS, "reconciled": RECONCILED}).all()
    for row in rows:
        if row.last is not None:
            conn.execute(text("""
                INSERT INTO provider_activity (provider, last_received_at) VALUES (:p, :last)
                ON CONFLICT (provider) DO UPDATE
                SET last_received_at = GREATEST(provider_activity.last_received_at, EXCLUDED.last_received_at)"""),
                {"p": row.provider, "last": row.last})
    settled = [row.settled for row in rows if row.settled is not None]
    conn.execute(text("""
        INSERT INTO watch_cursors (name, position, at) VALUES (:n, :pos, clock_timestamp())
        ON CONFLICT (name) DO UPDATE SET position = GREATEST(watch_cursors.position, EXCLUDED.position),
                                         at = EXCLUDED.at"""),
        {"n": CURSOR, "pos": max(settled, default=cursor)})


def check(conn: Connection, settings: Settings, *, now: datetime) -> list[int]:
    """Raise provider.silent / provider.recovered where the state changed. Returns the alert ids."""
    alerts: list[int] = []
    for provider, minutes in watched(settings).items():
        conn.execute(text("""INSERT INTO provider_activity (provider, watching_since) VALUES (:p, :now)
                             ON CONFLICT (provider) DO NOTHING"""), {"p": provider, "now": now})
        silent = conn.execute(text("""
            UPDATE provider_activity SET silent_since = :now
             WHERE provider = :p AND silent_since IS NULL
               AND COALESCE(last_received_at, watching_since) < :now - make_interval(secs => :secs)
            RETURNING last_received_at, watching_since"""),
            {"p": provider, "now": now, "secs": minutes * 60}).first()
        if silent is not None:
            alerts.append(_alert(conn, settings, "provider.silent", provider=provider, minutes=minutes, row=silent,
                                 now=now))
            continue
        recovered = conn.execute(text("""
            UPDATE provider_activity p SET silent_since = NULL
              FROM provider_activity old
             WHERE p.provider = :p AND old.provider = p.provider
               AND p.silent_since IS NOT NULL AND p.last_received_at > p.silent_since
            RETURNING p.last_received_at, p.watching_since, old.silent_since"""), {"p": provider}).first()
        if recovered is not None:
            alerts.append(_alert(conn, settings, "provider.recovered", provider=provider, minutes=minutes,
                                 row=recovered, now=now))
    return alerts


def activity(conn: Connection) -> list[Any]:
    return list(conn.execute(text("SELECT * FROM provider_activity ORDER BY provider")))


def _alert(conn: Connection, settings: Settings, kind: str, *, provider: str, minutes: float, row: Any,
           now: datetime) -> int:
    last = row.last_received_at
    quiet = now - (last or row.watching_since)
    if kind == "provider.silent":
        since = f"since {last.isoformat(timespec='seconds')}" if last else "since payhooks started watching"
        line = (f"payhooks: {provider} has sent no accepted webhook for {_minutes(quiet)} ({since}); "
                f"the threshold is {minutes:g} min")
    else:
        gap = last - row.silent_since if last else timedelta(0)
        line = f"payhooks: {provider} is sending webhooks again (last at {last.isoformat(timespec='seconds')})"
        if gap:
            line += f", {_minutes(gap)} after it was reported silent"
    facts = {"provider": provider, "silence_minutes": minutes,
             "last_received_at": last.isoformat() if last else None}
    return raise_alert(conn, settings, type=kind, message=line, facts=facts, provider=provider)


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} min"
