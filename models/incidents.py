"""Incidents: dead events and dead deliveries grouped by cause, and every change of their state.

    open ──ack──▶ acknowledged ──▶ resolved   (by an operator, or by itself when every member succeeded)
      ▲                                │
      └────── the cause comes back ────┘      (a new death of the same fingerprint reopens it)

The watcher (:mod:`workers.watch`) calls :func:`record_deaths` with new deaths
and :func:`resolve_cleared` each cycle; operators call :func:`acknowledge` and
:func:`resolve`. Each change is one guarded statement, and the alert that tells
someone about it is raised in the same transaction: one alert per change,
never one per event.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from models.alerts import raise_alert
from models.settings import Settings

CAUSE_LENGTH = 300
CLEARED = ("succeeded", "ignored")
"""A member whose row is in one of these no longer fails (an event replayed to success, or now ignored)."""

_URL = re.compile(r"https?://[^\s?#]+(?:[?#]\S*)?")
_ORIGIN = re.compile(r"(https?://[^\s/?#]+)\S*")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_IDENTIFIER = re.compile(r"\b[\w-]*\d[\w-]*\b")
_SHORT_NUMBER = re.compile(r"\d{1,3}")


def normalise_error(error: str | None) -> str:
    """What one cause of many failures has in common: ids, numbers and quoted values replaced.

    ``no order for yoco payment ch_8Fz2`` and ``… ch_91Ab`` are one cause;
    status codes (up to three digits) stay, so ``HTTP 500`` and ``HTTP 400`` are two.
    A URL keeps its scheme, host and port; its query goes, ids in its path are replaced.
    """
    if not error:
        return "(no error recorded)"
    value = _URL.sub(lambda m: m.group(0).split("?")[0].split("#")[0], error.splitlines()[0])
    value = _UUID.sub("<uuid>", value)
    value = _EMAIL.sub("<email>", value)
    value = _QUOTED.sub("<value>", value)
    urls = [(m.start(), m.start() + len(m.group(1)), m.end()) for m in _ORIGIN.finditer(value)]

    def identifier(match: re.Match[str]) -> str:
        at = match.start()
        if any(start <= at < host_end for start, host_end, _ in urls):  # scheme://host:port stays
            return match.group(0)
        in_path = any(host_end <= at < end for _, host_end, end in urls)
        return match.group(0) if _SHORT_NUMBER.fullmatch(match.group(0)) and not in_path else "<id>"

    value = _IDENTIFIER.sub(identifier, value)
    return " ".join(value.split())[:CAUSE_LENGTH]


def fingerprint(*, source: str, provider: str | None, item_type: str, cause: str) -> str:
    return hashlib.sha256("\x1f".join((source, provider or "", item_type, cause)).encode()).hexdigest()


@dataclass(frozen=True)
class Death:
    """A dead event or delivery as the watcher read it: the attempt that made it dead."""

    source: str  # events | deliveries
    item_id: int
    attempt: int
    error: str | None
    died_at: Any
    provider: str | None
    item_type: str


_UPSERT_INCIDENT = text("""
    INSERT INTO incidents (fingerprint, source, provider, event_type, cause, example_error, opened_at, last_seen_at)
    VALUES (:fp, :source, :provider, :type, :cause, :example, clock_timestamp(), :died)
    ON CONFLICT ON CONSTRAINT uq_incidents_fingerprint
    DO UPDATE SET last_seen_at = GREATEST(incidents.last_seen_at, EXCLUDED.last_seen_at)
    RETURNING id, status, (xmax = 0) AS created""")
_MEMBER = """
    INSERT INTO incident_members (incident_id, {column}, attempt, died_at, error)
    VALUES (:incident, :item, :attempt, :died, :error)
    ON CONFLICT ON CONSTRAINT {constraint}
    DO UPDATE SET attempt = EXCLUDED.attempt, died_at = EXCLUDED.died_at, error = EXCLUDED.error
     WHERE incident_members.attempt < EXCLUDED.attempt
    RETURNING id"""
_MEMBERS = {
    "events": text(_MEMBER.format(column="event_id", constraint="uq_incident_members_event_id")),
    "deliveries": text(_MEMBER.format(column="delivery_id", constraint="uq_incident_members_delivery_id")),
}
_REOPEN = text("""
    UPDATE incidents SET status = 'open', opened_at = clock_timestamp(), reopened_count = reopened_count + 1,
           acknowledged_at = NULL, acknowledged_by = NULL, resolved_at = NULL, resolved_by = NULL
     WHERE id = :id AND status = 'resolved'
    RETURNING id""")


def record_deaths(conn: Connection, settings: Settings, deaths: list[Death], *,
                  redact: Callable[[str], str] = str) -> list[int]:
    """Add each death to the incident of its cause; open or reopen incidents. Returns the alert ids.

    Idempotent: a death already recorded (same row, same attempt) changes
    nothing, so the watcher may read a death twice.
    """
    opened: dict[int, bool] = {}  # incident → reopened?
    for death in deaths:
        cause = normalise_error(redact(death.error or ""))
        incident = conn.execute(_UPSERT_INCIDENT, {
            "fp": fingerprint(source=death.source, provider=death.provider, item_type=death.item_type, cause=cause),
            "source": death.source, "provider": death.provider, "type": death.item_type[:255], "cause": cause,
            "example": redact(death.error or "")[:2000] or None, "died": death.died_at,
        }).one()
        added = conn.execute(_MEMBERS[death.source], {
            "incident": incident.id, "item": death.item_id, "attempt": death.attempt, "died": death.died_at,
            "error": redact(death.error or "")[:2000] or None,
        }).first()
        if added is None:  # this death was recorded already
            continue
        if incident.created:
            opened[incident.id] = False
        elif incident.status == "resolved" and conn.execute(_REOPEN, {"id": incident.id}).first():
            opened[incident.id] = True
    return [_alert(conn, settings, incident_id, "incident.opened", reopened=reopened)
            for incident_id, reopened in opened.items()]


def resolve_cleared(conn: Connection, settings: Settings) -> list[int]:
    """Resolve every open or acknowledged incident whose members all succeeded. Returns the incident ids."""
    ids = list(conn.execute(text("""
        UPDATE incidents SET status = 'resolved', resolved_at = clock_timestamp(), resolved_by = 'auto'
         WHERE status IN ('open', 'acknowledged')
           AND NOT EXISTS (
               SELECT 1 FROM incident_members m
                 LEFT JOIN webhook_events e ON e.id = m.event_id
                 LEFT JOIN deliveries d ON d.id = m.delivery_id
                WHERE m.incident_id = incidents.id AND COALESCE(e.status, d.status) <> ALL(:cleared))
        RETURNING id"""), {"cleared": list(CLEARED)}).scalars())
    for incident_id in sorted(ids):
        _alert(conn, settings, incident_id, "incident.resolved")
    return sorted(ids)


class NotChanged(RuntimeError):
    """The incident is not in a state this change applies to."""


def acknowledge(conn: Connection, settings: Settings, incident_id: int, *, actor: str) -> None:
    """open → acknowledged (someone is on it). Raises :class:`NotChanged` otherwise."""
    row = conn.execute(text("""
        UPDATE incidents SET status = 'acknowledged', acknowledged_at = clock_timestamp(), acknowledged_by = :actor
         WHERE id = :id AND status = 'open' RETURNING id"""), {"id": incident_id, "actor": actor[:255]}).first()
    if row is None:
        raise NotChanged(f"incident {incident_id} is not open")
    _alert(conn, settings, incident_id, "incident.acknowledged")


def resolve(conn: Connection, settings: Settings, incident_id: int, *, actor: str) -> None:
    """open | acknowledged → resolved by hand. A new death of the same cause reopens it."""
    row = conn.execute(text("""
        UPDATE incidents SET status = 'resolved', resolved_at = clock_timestamp(), resolved_by = :actor
         WHERE id = :id AND status IN ('open', 'acknowledged') RETURNING id"""),
        {"id": incident_id, "actor": actor[:255]}).first()
    if row is None:
        raise NotChanged(f"incident {incident_id} is not open or acknowledged")
    _alert(conn, settings, incident_id, "incident.resolved")


def summary(conn: Connection, incident_id: int) -> dict[str, Any] | None:
    """The incident with its member counts: all, and still failing."""
    row = conn.execute(text("""
        SELECT i.id, i.status, i.source, i.provider, i.event_type, i.cause, i.example_error, i.opened_at,
               i.last_seen_at, i.acknowledged_at, i.acknowledged_by, i.resolved_at, i.resolved_by, i.reopened_count,
               count(m.id) AS members,
               count(m.id) FILTER (WHERE COALESCE(e.status, d.status) <> ALL(:cleared)) AS failing
          FROM incidents i
          LEFT JOIN incident_members m ON m.incident_id = i.id
          LEFT JOIN webhook_events e ON e.id = m.event_id
          LEFT JOIN deliveries d ON d.id = m.delivery_id
         WHERE i.id = :id
         GROUP BY i.id"""), {"id": incident_id, "cleared": list(CLEARED)}).first()
    return dict(row._mapping) if row else None


def _what(incident: dict[str, Any]) -> str:
    if incident["source"] == "deliveries":
        return f"{incident['event_type']} deliveries"
    return f"{incident['provider']} {incident['event_type']} events"


def _alert(conn: Connection, settings: Settings, incident_id: int, kind: str, *, reopened: bool = False) -> int:
    incident = summary(conn, incident_id)
    assert incident is not None
    what, cause = _what(incident), incident["cause"]
    if kind == "incident.opened":
        verb = "reopened" if reopened else "opened"
        line = f"payhooks incident #{incident_id} {verb}: {incident['failing']} dead {what}: {cause}"
    elif kind == "incident.acknowledged":
        line = f"payhooks incident #{incident_id} acknowledged by {incident['acknowledged_by']}: {what}: {cause}"
    else:
        by = incident["resolved_by"]
        how = "all of them succeeded" if by == "auto" else f"by {by}"
        line = f"payhooks incident #{incident_id} resolved ({how}): {what}: {cause}"
    facts = {"incident": {
        "id": incident_id, "status": incident["status"], "source": incident["source"],
        "provider": incident["provider"], "event_type": incident["event_type"], "cause": cause,
        "example_error": incident["example_error"], "members": incident["members"],
        "failing": incident["failing"], "reopened": reopened, "reopened_count": incident["reopened_count"],
        "opened_at": incident["opened_at"].isoformat(),
        "acknowledged_by": incident["acknowledged_by"], "resolved_by": incident["resolved_by"],
    }, "command": f"payhooks incidents show {incident_id}"}
    return raise_alert(conn, settings, type=kind, message=f"{line} (payhooks incidents show {incident_id})",
                       facts=facts, incident_id=incident_id, provider=incident["provider"])
