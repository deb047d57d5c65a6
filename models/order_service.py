"""Registering an order before the customer pays, and reading it back.

The merchant's application registers an order (``POST /api/orders`` or
``payhooks orders create``) with the provider's payment reference, so the
provider's events can be matched to it later. ``amount`` is in minor units
(ISO 4217 exponent: JPY and XOF 0; ZAR, USD and BDT 2): the caller converts,
nothing here guesses.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from models.schema import orders
from providers.registry import PROVIDERS

BIGINT_MAX = 2**63 - 1
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 \-]{4,18}[0-9]$")  # 6..20 digits, spaces, dashes
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Which field a unique constraint guards, for DuplicateOrder's message.
UNIQUE_FIELDS = {
    "uq_orders_reference": "reference",
    "uq_orders_provider_payment_ref": "provider_payment_ref",
}

class DuplicateOrder(Exception):
    """An order with this reference, or this provider payment reference, is already registered."""

    def __init__(self, *, reference: str, field: str, message: str) -> None:
        super().__init__(message)
        self.reference = reference
        self.field = field


class OrderInput(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid", frozen=True)

    reference: str = Field(min_length=1, max_length=255)
    provider: str
    provider_payment_ref: str = Field(min_length=1, max_length=255)
    amount: int = Field(strict=True, gt=0, le=BIGINT_MAX, description="minor units")
    currency: str
    customer_email: str | None = Field(default=None, max_length=320)
    customer_phone: str | None = None
    customer_name: str | None = Field(default=None, max_length=255)

    @field_validator("reference", "provider_payment_ref")
    @classmethod
    def _printable(cls, value: str) -> str:
        if CONTROL_RE.search(value):
            raise PydanticCustomError("control_characters", "must not contain control characters")
        return value

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise PydanticCustomError("provider", "must be one of " + ", ".join(PROVIDERS))
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().upper()
            if not CURRENCY_RE.fullmatch(value):
                raise PydanticCustomError("currency", "must be a 3-letter ISO 4217 code")
        return value

    @field_validator("customer_email", "customer_phone", "customer_name", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("customer_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_RE.fullmatch(value):
            raise PydanticCustomError("email", "must be an email address")
        return value

    @field_validator("customer_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not PHONE_RE.fullmatch(value):
            raise PydanticCustomError("phone", "must be a phone number: optional +, 6 to 20 digits")
        return value


def field_errors(exc: ValidationError) -> dict[str, str]:
    """``{"field": "message"}`` for every bad field (the first message when a field has several)."""
    found: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        name = ".".join(str(part) for part in error["loc"]) or "body"
        found.setdefault(name, error["msg"])
    return found


def order_to_dict(row: Any) -> dict[str, Any]:
    """An ``orders`` row (a Row or a mapping) as JSON-friendly values."""
    values: Mapping[str, Any] = row if isinstance(row, Mapping) else row._mapping

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": values["id"],
        "reference": values["reference"],
        "provider": values["provider"],
        "provider_payment_ref": values["provider_payment_ref"],
        "amount": values["amount"],
        "currency": values["currency"],
        "customer_email": values["customer_email"],
        "customer_phone": values["customer_phone"],
        "customer_name": values["customer_name"],
        "status": values["status"],
        "refunded_amount": values["refunded_amount"],
        "created_at": iso(values["created_at"]),
        "updated_at": iso(values["updated_at"]),
        "paid_at": iso(values["paid_at"]),
    }


def create_order(conn: Connection, data: OrderInput) -> dict[str, Any]:
    """Insert a ``pending`` order; raise DuplicateOrder when either unique key is taken.

    The insert runs in a savepoint, so the caller's transaction stays usable
    after a duplicate.
    """
    try:
        with conn.begin_nested():
            row = conn.execute(
                insert(orders).values(**data.model_dump()).returning(*orders.c)
            ).one()
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None) or ""
        if constraint not in UNIQUE_FIELDS:  # e.g. a message-only driver: look in the text
            constraint = next((name for name in UNIQUE_FIELDS if name in str(exc.orig)), "")
        if constraint not in UNIQUE_FIELDS:
            raise
        # Both keys may be taken (the same order sent twice); Postgres names whichever
        # index it checked first, so the reference, the merchant's own key, is looked up.
        taken = conn.execute(
            select(orders.c.id).where(orders.c.reference == data.reference)
        ).first()
        field = "reference" if taken is not None else UNIQUE_FIELDS[constraint]
        if field == "reference":
            message = f"an order with reference {data.reference!r} is already registered"
        else:
            message = (f"{data.provider} payment {data.provider_payment_ref!r} "
                       "already belongs to another order")
        raise DuplicateOrder(reference=data.reference, field=field, message=message) from None
    return order_to_dict(row)


def get_order(conn: Connection, reference: str) -> dict[str, Any] | None:
    row = conn.execute(select(orders).where(orders.c.reference == reference)).one_or_none()
    return order_to_dict(row) if row is not None else None
