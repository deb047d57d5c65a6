"""Tables of what payhooks tells operators: incidents, their members, alerts, and the watcher's state.

An *incident* is one cause of failure (source, provider, event type or
delivery kind, normalised error), not one failure: every dead event or dead
delivery with that cause becomes a *member* of it. An incident moves
``open → acknowledged → resolved`` and back to ``open`` when its cause returns.
Each change that someone should hear about is an *alert* row, sent through
ordinary deliveries (``deliveries.alert_id``).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.schema import in_values
from models.tables import Base

INCIDENT_STATUSES = ("open", "acknowledged", "resolved")
INCIDENT_SOURCES = ("events", "deliveries")
ALERT_TYPES = ("incident.opened", "incident.acknowledged", "incident.resolved", "provider.silent",
               "provider.recovered")


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("fingerprint", name="uq_incidents_fingerprint"),
        CheckConstraint(in_values("status", INCIDENT_STATUSES), name="status"),
        CheckConstraint(in_values("source", INCIDENT_SOURCES), name="source"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    """sha256 of (source, provider, type, cause): one incident per cause, reopened when it returns."""
    source: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(32))
    """The provider of the dead events; None for deliveries (one endpoint fails for every provider)."""
    event_type: Mapped[str] = mapped_column(String(255))
    """The provider's event type, or the delivery kind."""
    cause: Mapped[str] = mapped_column(Text)
    """The error with ids, numbers and quoted values replaced, so one cause groups many failures."""
    example_error: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    """Who resolved it, or ``auto`` when every member succeeded."""
    reopened_count: Mapped[int] = mapped_column(Integer, server_default="0")


class IncidentMember(Base):
    """One dead event or dead delivery of an incident, with the attempt that made it dead."""

    __tablename__ = "incident_members"
    __table_args__ = (
        UniqueConstraint("event_id", "incident_id", name="uq_incident_members_event_id"),
        UniqueConstraint("delivery_id", "incident_id", name="uq_incident_members_delivery_id"),
        CheckConstraint("(event_id IS NULL) <> (delivery_id IS NULL)", name="one_item"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("webhook_events.id", ondelete="CASCADE")
    )
    delivery_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    """The number of the attempt that died: a later death of the same row is a new one."""
    died_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class Alert(Base):
    """One notification (an incident change, a provider going quiet or coming back), sent as deliveries."""

    __tablename__ = "alerts"
    __table_args__ = (CheckConstraint(in_values("type", ALERT_TYPES), name="type"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    provider: Mapped[str | None] = mapped_column(String(32))
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """What is POSTed: ``type``, a human ``text``, and the structured facts."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProviderActivity(Base):
    """When each provider last sent an accepted event, and whether it is reported silent."""

    __tablename__ = "provider_activity"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    watching_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    silent_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WatchCursor(Base):
    """How far the watcher has read a table (an id), or when a periodic job last succeeded."""

    __tablename__ = "watch_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, server_default="0")
    at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
