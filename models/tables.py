"""Typed SQLAlchemy 2 models: the event table (the audit log) and its attempts."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from models.schema import in_values as _in
from models.schema import metadata

EVENT_STATUSES = ("pending", "queued", "processing", "succeeded", "retrying", "dead", "ignored")
DUE_STATUSES = ("pending", "retrying")
LEASED_STATUSES = ("queued", "processing")
FINAL_STATUSES = ("succeeded", "dead", "ignored")


class Base(DeclarativeBase):
    metadata = metadata


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_key", name="uq_webhook_events_provider_event_key"),
        CheckConstraint(_in("status", EVENT_STATUSES), name="status"),
        Index(
            "ix_webhook_events_due",
            "next_attempt_at",
            postgresql_where=text(_in("status", DUE_STATUSES)),
        ),
        Index(
            "ix_webhook_events_lease",
            "lease_expires_at",
            postgresql_where=text(_in("status", LEASED_STATUSES)),
        ),
        Index("ix_webhook_events_status_received", "status", "received_at"),
        # Retention picks, and counting folds, final rows by processed_at (index-only with INCLUDE);
        # the dead-only index answers "dead in the last 24 h" without reading other final rows.
        Index(
            "ix_webhook_events_final_processed",
            "processed_at",
            postgresql_include=["provider", "status", "received_at"],
            postgresql_where=text(_in("status", FINAL_STATUSES)),
        ),
        Index("ix_webhook_events_dead_processed", "processed_at", postgresql_where=text("status = 'dead'")),
        # `events list` without a status filter: newest first, stopping after --limit rows.
        Index("ix_webhook_events_received_at_id", "received_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    livemode: Mapped[bool | None]
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB)
    payload: Mapped[Any] = mapped_column(JSONB)
    fetched_payload: Mapped[Any | None] = mapped_column(JSONB)
    secret_index: Mapped[int | None] = mapped_column(Integer)
    verify_method: Mapped[str | None] = mapped_column(String(32))
    replay_count: Mapped[int] = mapped_column(Integer, server_default="0")
    retry_base: Mapped[int] = mapped_column(Integer, server_default="0")
    """``attempts`` at the last replay: the retry schedule counts the tries since then."""
    order_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    """The order the handler matched (no foreign key: events outlive orders)."""


class AttemptColumns:
    """What every try of leased work records (events' attempts, deliveries' tries)."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(255))


class EventAttempt(AttemptColumns, Base):
    __tablename__ = "event_attempts"
    __table_args__ = (
        UniqueConstraint("event_id", "number", name="uq_event_attempts_event_id_number"),
        # The incident watcher reads new deaths from here: insert-only rows, a tiny partial index.
        Index("ix_event_attempts_died", "id", postgresql_where=text(_in("outcome", ("dead", "lost")))),
        CheckConstraint(
            _in("outcome", ("succeeded", "failed", "dead", "ignored", "lost")), name="outcome"
        ),
    )

    event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    traceback: Mapped[str | None] = mapped_column(Text)
