"""Raising an alert: one ``alerts`` row and one delivery per configured channel, in the caller's transaction.

The caller makes the state change (an incident opens, a provider goes quiet)
with a guarded statement and raises the alert in the same transaction, so a
change produces exactly one alert, and the alert exactly one delivery per
channel (``uq_deliveries_alert_id_kind``). Sending is the deliveries lane's
work: its own retries, its tries recorded, never in the way of events.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, text

from models import wakeup
from models.settings import Settings

WEBHOOK = "alert.webhook"
EMAIL = "alert.email"


def channels(settings: Settings) -> list[str]:
    """The delivery kinds an alert goes out as: the URL and/or the email address, when set."""
    return [kind for kind, setting in ((WEBHOOK, settings.alert_url), (EMAIL, settings.alert_email)) if setting]


def unsendable(settings: Settings, kind: str) -> str | None:
    """Why an alert delivery of ``kind`` cannot be sent with these settings, or None."""
    if kind == WEBHOOK:
        return None if settings.alert_url else "PAYHOOKS_ALERT_URL is not set"
    if kind == EMAIL:
        if not settings.alert_email:
            return "PAYHOOKS_ALERT_EMAIL is not set"
        return None if settings.smtp_host else "PAYHOOKS_SMTP_HOST is not set"
    return f"no sender for alert kind {kind!r}"


def raise_alert(conn: Connection, settings: Settings, *, type: str, message: str, facts: dict[str, Any],
                incident_id: int | None = None, provider: str | None = None) -> int:
    """Store the alert and its deliveries; returns the alert id. Nothing is sent here."""
    document = {"type": type, "text": message, **facts,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    alert_id = conn.execute(
        text("""INSERT INTO alerts (type, incident_id, provider, document)
                VALUES (:type, :incident, :provider, :doc) RETURNING id"""),
        {"type": type, "incident": incident_id, "provider": provider, "doc": Jsonb({})},
    ).scalar_one()
    document["alert_id"] = alert_id
    conn.execute(text("UPDATE alerts SET document = :doc WHERE id = :id"), {"doc": Jsonb(document), "id": alert_id})
    for kind in channels(settings):
        reason = unsendable(settings, kind)
        conn.execute(
            text("""INSERT INTO deliveries (alert_id, handler, kind, payload, status, last_error, next_attempt_at,
                                            processed_at)
                    VALUES (:alert, 'alerts', :kind, :doc, :status, :reason,
                            CASE WHEN :skipped THEN NULL ELSE clock_timestamp() END,
                            CASE WHEN :skipped THEN clock_timestamp() END)
                    ON CONFLICT ON CONSTRAINT uq_deliveries_alert_id_kind DO NOTHING"""),
            {"alert": alert_id, "kind": kind, "doc": Jsonb(document), "status": "skipped" if reason else "pending",
             "reason": reason, "skipped": reason is not None},
        )
        if reason is None:
            wakeup.notify(conn)
    return alert_id
