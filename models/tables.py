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
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EVENT_STATUSES = ("pending", "queued", "processing", "succeeded", "retrying", "dead", "ignored")
DUE_STATUSES = ("pending", "retrying")
LEASED_STATUSES = ("queued", "processing")
FINAL_STATUSES = ("succeeded", "dead", "ignored")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_key", name="uq_webhook_events_provider_event_key"),
        CheckConstraint(_in("status", EVENT_STATUSES), name="status"),
        # No index names ``status`` (not even in a predicate), so a change of status
        # alone can be a HOT update: the worker's claim (queued → processing) writes
        # no index entry. "Due" and "leased" are the rows whose next_attempt_at /
        # lease_expires_at is set (models/leasing.py keeps both NULL otherwise), and
        # "unfinished" the rows without processed_at. See migration 0004_hot_updates.
        Index(
            "ix_webhook_events_due",
            "next_attempt_at",
            postgresql_where=text("next_attempt_at IS NOT NULL"),
        ),
        Index(
            "ix_webhook_events_lease",
            "lease_expires_at",
            postgresql_where=text("lease_expires_at IS NOT NULL"),
        ),
        Index("ix_webhook_events_received_at", "received_at"),
        Index(
            "ix_webhook_events_unfinished",
            "received_at",
            postgresql_where=text("processed_at IS NULL"),
        ),
        Index("ix_webhook_events_order_id", "order_id", postgresql_where=text("order_id IS NOT NULL")),
        {"postgresql_with": {"fillfactor": "70"}},
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
    order_id: Mapped[int | None] = mapped_column(BigInteger)
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
        CheckConstraint(
            _in("outcome", ("succeeded", "failed", "dead", "ignored", "lost")), name="outcome"
        ),
    )

    event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    traceback: Mapped[str | None] = mapped_column(Text)
