"""Typed SQLAlchemy 2 models: the event table (the audit log) and its attempts."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
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

from models.schema import (  # the statuses are defined with the Core schema; other modules read them here too
    DUE_MARK,
    DUE_STATUSES,
    EVENT_STATUSES,
    FINAL_STATUSES,
    LEASE_MARK,
    LEASED_STATUSES,
    in_values,
    metadata,
)

FINAL_STATUS_SQL = f"CASE WHEN {in_values('status', FINAL_STATUSES)} THEN status END"
"""``final_status``: the status once it is final, else NULL (a stored generated column)."""


def event_status_sql(statuses: tuple[str, ...] | list[str], *, alias: str = "") -> str:
    """A condition for events in ``statuses`` that the partial indexes answer.

    No index of ``webhook_events`` names ``status`` (so that queued and
    processing, which change nothing else an index names, are HOT updates):
    final statuses are found through ``final_status``, due ones through
    ``next_attempt_at``, leased ones through ``lease_expires_at``, each with
    ``status`` checked on the row.
    """
    a = f"{alias}." if alias else ""
    parts = []
    final = tuple(s for s in statuses if s in FINAL_STATUSES)
    due = tuple(s for s in statuses if s in DUE_STATUSES)
    leased = tuple(s for s in statuses if s in LEASED_STATUSES)
    unknown = set(statuses) - set(final + due + leased)
    if unknown:
        raise ValueError(f"not an event status: {', '.join(sorted(unknown))}")
    if final:
        parts.append(in_values(f"{a}final_status", final))
    if due:
        parts.append(f"({in_values(f'{a}status', due)} AND {a}{DUE_MARK})")
    if leased:
        parts.append(f"({in_values(f'{a}status', leased)} AND {a}{LEASE_MARK})")
    return f"({' OR '.join(parts)})" if parts else "false"


class Base(DeclarativeBase):
    metadata = metadata


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        # no unique key on (provider, event_key): event_keys holds it (migration 0008)
        CheckConstraint(in_values("status", EVENT_STATUSES), name="status"),
        # The two columns that mirror the status, kept so by every transition (models.leasing) and
        # enforced here: counting rows in work through their indexes is exact by construction.
        CheckConstraint(f"({DUE_MARK}) = ({in_values('status', DUE_STATUSES)})", name="due_mark"),
        CheckConstraint(f"({LEASE_MARK}) = ({in_values('status', LEASED_STATUSES)})", name="lease_mark"),
        # No index names `status` (nor `attempts`): a claim (queued → processing) changes no indexed
        # column and is a HOT update. The work-queue indexes are keyed on the columns that mirror the
        # status (set only while due; only while leased), the final ones on `final_status`, which
        # Postgres derives from `status` and which changes only when an event becomes final (or is
        # replayed), an update that sets `processed_at` and so is never HOT anyway.
        Index("ix_webhook_events_due", "next_attempt_at", postgresql_where=text(DUE_MARK)),
        Index("ix_webhook_events_lease", "lease_expires_at", postgresql_where=text(LEASE_MARK)),
        # `events list --status <final>` and the console's per-status pages: newest first.
        # (id too: the listing's order exactly, so the planner never prefers walking every status.)
        Index("ix_webhook_events_final_received", "final_status", "received_at", "id",
              postgresql_where=text("final_status IS NOT NULL")),
        # Retention picks, and counting folds, final rows by processed_at (index-only with INCLUDE);
        # the dead-only index answers "dead in the last 24 h" without reading other final rows.
        Index(
            "ix_webhook_events_final_processed",
            "processed_at",
            postgresql_include=["provider", "final_status", "received_at"],
            postgresql_where=text("final_status IS NOT NULL"),
        ),
        Index("ix_webhook_events_dead_processed", "processed_at", postgresql_where=text("final_status = 'dead'")),
        # `events list` without a status filter: newest first, stopping after --limit rows.
        Index("ix_webhook_events_received_at_id", "received_at", "id"),
        # `events list --order`: most events name an order only once handled; no entry before.
        Index("ix_webhook_events_order_id", "order_id", postgresql_where=text("order_id IS NOT NULL")),
        {"postgresql_with": {"fillfactor": 85}},  # room on each page for a claimed row's HOT version
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
    final_status: Mapped[str | None] = mapped_column(String(16), Computed(FINAL_STATUS_SQL, persisted=True))
    """``status`` once final (succeeded, ignored, dead), else NULL: what the final-row indexes name."""


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
        Index("ix_event_attempts_died", "id", postgresql_where=text(in_values("outcome", ("dead", "lost")))),
        CheckConstraint(
            in_values("outcome", ("succeeded", "failed", "dead", "ignored", "lost")), name="outcome"
        ),
    )

    event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    traceback: Mapped[str | None] = mapped_column(Text)
