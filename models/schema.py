"""The schema's metadata, and the ``orders`` table in SQLAlchemy Core.

Every table lives in one ``MetaData`` with a naming convention, so Alembic
sees stable constraint names. The typed ORM classes (``models/tables.py``,
``models/orders.py``) declare their tables into it. ``orders`` is declared
here in Core instead, and ``models.orders.Order`` maps onto it: the
receiver registers and reads orders (``POST /api/orders``) through this
module alone, so its processes never load the ORM (about 9 MB of RSS in each
receiver process). The statuses live here too, so that `payhooks stats` and
the counts read them without the ORM either.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

EVENT_STATUSES = ("pending", "queued", "processing", "succeeded", "retrying", "dead", "ignored")
DUE_STATUSES = ("pending", "retrying")
LEASED_STATUSES = ("queued", "processing")
FINAL_STATUSES = ("succeeded", "dead", "ignored")
DUE_MARK = "next_attempt_at IS NOT NULL"
"""Set exactly while an event is pending or retrying (see :mod:`models.leasing`)."""
LEASE_MARK = "lease_expires_at IS NOT NULL"
"""Set exactly while an event is queued or processing."""
DELIVERY_STATUSES = ("pending", "queued", "sending", "succeeded", "retrying", "dead", "skipped")
DELIVERY_FINAL_STATUSES = ("succeeded", "dead", "skipped")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ORDER_STATUSES = (
    "pending", "paid", "payment_failed", "refunded", "partially_refunded", "charged_back",
)


def in_values(column: str, values: tuple[str, ...]) -> str:
    """SQL text ``column IN ('a', 'b')`` for a check constraint or a partial index."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


orders = Table(
    "orders", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("reference", String(255), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("provider_payment_ref", String(255), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("customer_email", String(320)),
    Column("customer_phone", String(32)),
    Column("customer_name", String(255)),
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("refunded_amount", BigInteger, nullable=False, server_default="0"),
    Column("provider_data", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("paid_at", DateTime(timezone=True)),
    UniqueConstraint("reference", name="uq_orders_reference"),
    UniqueConstraint("provider", "provider_payment_ref", name="uq_orders_provider_payment_ref"),
    CheckConstraint(in_values("status", ORDER_STATUSES), name="status"),
    CheckConstraint("amount > 0", name="amount_positive"),
)
"""Orders the merchant registered before the customer paid (``models.orders.Order`` maps it)."""
