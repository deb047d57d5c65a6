"""From a provider's event to what the handlers need: kind, order reference, amount.

One extractor per provider, following the table "Which order an event is for,
and in what units" of docs/PROVIDERS.md. Amounts come out in minor units.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from providers.money import currency_exponent
from workers.errors import BadEventData


@dataclass(frozen=True)
class Payment:
    """The order-relevant facts of one event."""

    payment_ref: str | None
    amount_minor: int | None
    currency: str | None
    alt_payment_id: str | None = None
    """Smartpay refunds without ``data.order``: a payment id the order listed when authorised."""
    extra: dict[str, Any] = field(default_factory=dict)
    refund_ref: str | None = None
    """The provider's own id of the refund an event is about (see :func:`refund_identity`)."""


def refund_identity(payment: Payment, *, event_id: int) -> str:
    """What makes a refund one refund: the provider's refund id, else the event.

    Two events about one refund (a provider resending it under a new event id)
    share the provider's id and book it once; two partial refunds of one
    payment have two ids and book twice. Without an id, one refund per event.
    """
    if payment.refund_ref:
        return f"ref:{payment.refund_ref}"[:255]
    return f"event:{event_id}"


def _ref(value: Any) -> str | None:
    """A usable id: a non-empty string, or an integer (not a bool) as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def to_minor(amount: Any, currency: str | None) -> int | None:
    """Major units (``"10.50"``, ``1500``) → minor units with the currency's exponent."""
    if amount is None or isinstance(amount, bool):
        return None
    try:
        value = Decimal(str(amount)) * (10 ** currency_exponent(currency or ""))
    except InvalidOperation:
        raise BadEventData(f"amount {amount!r} is not a number") from None
    if value != value.to_integral_value():
        raise BadEventData(f"amount {amount!r} has more decimals than {currency} allows")
    return int(value)


def _integer(amount: Any) -> int | None:
    if amount is None:
        return None
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise BadEventData(f"amount {amount!r} is not an integer of minor units")
    return amount


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and value else None


def _smartpay(event_type: str, payload: Any) -> Payment:
    data = _as_dict(_get(payload, "eventData", "data"))
    currency = _upper(data.get("currency"))
    if event_type.startswith("refund."):
        order = data.get("order")
        return Payment(payment_ref=order if isinstance(order, str) else None,
                       amount_minor=_integer(data.get("amount")), currency=currency,
                       alt_payment_id=data.get("payment") if isinstance(data.get("payment"), str) else None,
                       refund_ref=_ref(data.get("id")))
    payments = data.get("payments")
    return Payment(payment_ref=data.get("id"), amount_minor=_integer(data.get("amount")), currency=currency,
                   extra={"payments": [p for p in payments if isinstance(p, str)]}
                   if isinstance(payments, list) else {})


def _processout(event_type: str, payload: Any) -> Payment:
    data = _as_dict(_get(payload, "data"))
    transaction = _as_dict(data.get("transaction"))
    currency = _upper(transaction.get("currency"))
    amount, refund_ref = transaction.get("amount"), None
    if event_type == "transaction.refunded":
        amount = _get(data, "refund", "amount") or transaction.get("refunded_amount") or amount
        refund_ref = _ref(_get(data, "refund", "id"))  # the refund transaction, from the fetched event
    return Payment(payment_ref=transaction.get("id"), amount_minor=to_minor(amount, currency),
                   currency=currency, refund_ref=refund_ref)


def _senfenico(event_type: str, payload: Any) -> Payment:
    data = _as_dict(_get(payload, "data"))
    return Payment(payment_ref=data.get("reference"), amount_minor=_integer(data.get("amount")),
                   currency="XOF")


def _yoco(event_type: str, payload: Any) -> Payment:
    inner = _as_dict(_get(payload, "payload"))
    refund_ref = _ref(inner.get("id")) if event_type.startswith("refund.") else None
    return Payment(payment_ref=_get(inner, "metadata", "checkoutId"),
                   amount_minor=_integer(inner.get("amount")), currency=_upper(inner.get("currency")),
                   refund_ref=refund_ref)


def _shadhinpay(event_type: str, payload: Any) -> Payment:
    if isinstance(_get(payload, "payload"), dict):  # the newer envelope
        inner = payload["payload"]
        ref, currency = inner.get("paymentId"), _upper(inner.get("currency"))
        refund_ref = _ref(inner.get("refundId")) or _ref(inner.get("refundReference"))
    else:
        inner = _as_dict(_get(payload, "data"))
        ref, currency = inner.get("payment_id"), _upper(inner.get("currency"))
        refund_ref = _ref(inner.get("refund_id")) or _ref(inner.get("refund_reference"))
    if not event_type.startswith("payment.refund"):
        refund_ref = None
    return Payment(payment_ref=ref, amount_minor=to_minor(inner.get("amount"), currency or "BDT"),
                   currency=currency, refund_ref=refund_ref)


EXTRACTORS: dict[str, Callable[[str, Any], Payment]] = {
    "smartpay": _smartpay,
    "processout": _processout,
    "senfenico": _senfenico,
    "yoco": _yoco,
    "shadhinpay": _shadhinpay,
}


def extract(provider: str, event_type: str, payload: Any) -> Payment:
    payment = EXTRACTORS[provider](event_type, payload)
    if payment.payment_ref is not None and not isinstance(payment.payment_ref, str):
        raise BadEventData("the payment reference is not a string")
    return payment
