"""The merchant's side: orders, refunds, and the outbound work handlers write.

Order states move forward only: ``pending → paid → refunded | partially_refunded
| charged_back`` and ``pending → payment_failed → paid``. Every change an event
makes to an order (or declines to make) is kept in ``order_transitions``.
"""
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
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models import incident_tables  # noqa: F401  (alerts, which deliveries reference)
from models.schema import DELIVERY_FINAL_STATUSES, DELIVERY_STATUSES, in_values, orders
from models.tables import AttemptColumns, Base

DELIVERY_SCHEDULE = "10s,1m,5m,30m,2h,6h"


class Order(Base):
    """An ``orders`` row; the table is declared in Core (``models.schema.orders``) for the receiver."""

    __table__ = orders


class OrderTransition(Base):
    """What an event did to an order, including what it was not allowed to do."""

    __tablename__ = "order_transitions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    """The event (no foreign key: the transition keeps the id of a pruned, archived event)."""
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("event_id", name="uq_refunds_event_id"),
        UniqueConstraint("order_id", "refund_key", name="uq_refunds_order_id_refund_key"),
        CheckConstraint(in_values("kind", ("refund", "chargeback")), name="kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int] = mapped_column(BigInteger)
    """The event that booked it (no foreign key: a refund outlives its pruned event)."""
    kind: Mapped[str] = mapped_column(String(16))
    refund_key: Mapped[str] = mapped_column(String(255))
    """The provider's refund id, else ``event:<event id>`` (see ``workers.normalise.refund_identity``)."""
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Delivery(Base):
    """Outbound work (an email, a fulfilment call), written in the handler's transaction.

    The unique key ``(event_id, handler, kind)`` is what makes a redelivered or
    replayed event unable to produce a second email or a second fulfilment.
    An operator alert is a delivery too, of an ``alerts`` row instead of an
    event (no order), unique per ``(alert_id, kind)``.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "handler", "kind", name="uq_deliveries_event_id_handler_kind"),
        UniqueConstraint("alert_id", "kind", name="uq_deliveries_alert_id_kind"),
        CheckConstraint(in_values("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint("event_id IS NOT NULL OR alert_id IS NOT NULL", name="source"),
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=text(in_values("status", ("pending", "retrying"))),
        ),
        # The sweeper's expired leases, and the count of rows in work: bounded by the work in flight.
        Index(
            "ix_deliveries_lease",
            "lease_expires_at",
            postgresql_where=text(in_values("status", ("queued", "sending"))),
        ),
        Index(
            "ix_deliveries_final_processed",
            "processed_at",
            postgresql_include=["kind", "status"],
            postgresql_where=text(in_values("status", DELIVERY_FINAL_STATUSES)),
        ),
        Index("ix_deliveries_dead_processed", "processed_at", postgresql_where=text("status = 'dead'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("webhook_events.id", ondelete="CASCADE"))
    order_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    alert_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"))
    handler: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    replay_count: Mapped[int] = mapped_column(Integer, server_default="0")
    retry_base: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def key(self) -> str:
        if self.alert_id is not None:
            return f"alert:{self.alert_id}:{self.kind}"
        return f"{self.event_id}:{self.handler}:{self.kind}"


class DeliveryAttempt(AttemptColumns, Base):
    """One try of a delivery: what the SMTP server or the merchant's endpoint answered."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        UniqueConstraint("delivery_id", "number", name="uq_delivery_attempts_delivery_id_number"),
        Index("ix_delivery_attempts_died", "id", postgresql_where=text(in_values("outcome", ("dead", "lost")))),
        CheckConstraint(
            in_values("outcome", ("succeeded", "failed", "dead", "skipped", "lost")), name="outcome"
        ),
    )

    delivery_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    response_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[str | None] = mapped_column(Text)
    """The SMTP reply or the first bytes of the HTTP response body."""
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class OperatorAction(Base):
    """Who did what by hand (replays), for the audit trail."""

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(32))
    filter: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    count: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
