"""Realistic sample events (fixtures, not production code): for ``payhooks send``, the tests and benchmarks.

Each body follows the provider's envelope in PROVIDERS.md and puts ``order_ref``
where the provider carries the order's ``provider_payment_ref``, with the amount
in the units that provider uses. Sign a body with the adapter's ``sign``.
"""
from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from providers.money import minor_to_major

DEFAULT_CURRENCY: dict[str, str] = {
    "smartpay": "JPY",
    "processout": "USD",
    "senfenico": "XOF",
    "yoco": "ZAR",
    "shadhinpay": "BDT",
}


def _token() -> str:
    return secrets.token_hex(8)


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _smartpay(
    event_type: str, *, order_ref: str, amount_minor: int, currency: str, event_id: str
) -> bytes:
    family, _, action = event_type.partition(".")
    payment_id = f"payment_test_{_token()}"
    if family in ("refund", "payment"):
        data: dict[str, Any] = {
            "id": payment_id if family == "payment" else f"refund_test_{_token()}",
            "object": family,
            "order": order_ref,
            "amount": amount_minor,
            "currency": currency,
        }
        if family == "refund":
            data |= {"payment": payment_id, "reason": "requested_by_customer", "status": "succeeded"}
    else:
        status = {"authorized": "succeeded"}.get(action, action)
        data = {"id": order_ref, "object": family, "status": status, "amount": amount_minor,
                "currency": currency, "payments": [payment_id]}
    now_ms = int(time.time() * 1000)
    return _compact({
        "id": event_id or f"evt_test_{_token()}", "object": "event", "createdAt": now_ms, "test": True,
        "eventData": {"type": event_type, "version": "2022-02-18", "data": data},
    })


def _processout(
    event_type: str, *, order_ref: str, amount_minor: int, currency: str, event_id: str
) -> bytes:
    # The thin POST: the order and amount only come with the fetched event
    # (see sample_processout_event).
    return _compact({"event_id": event_id or f"ev_{_token()}", "event_type": event_type})


def _senfenico(
    event_type: str, *, order_ref: str, amount_minor: int, currency: str, event_id: str
) -> bytes:
    # Senfenico events carry no id: the key is "{event}:{reference}", so event_id is unused.
    now = time.time()
    data = {
        "email": "customer@example.com", "reference": order_ref, "charge_reference": f"ch_{_token()}",
        "amount": amount_minor, "success_url": "https://merchant.example/ok",
        "cancel_url": "https://merchant.example/ko", "phone": "70000000", "provider": "orange_bf",
        "live_mode": False, "created_at": _iso(now - 60), "updated_at": _iso(now),
        "status": event_type.partition(".")[2] or "pending",
    }
    # Double-encoded ``data``, default separators: what both SDKs send and expect.
    return json.dumps({"event": event_type, "data": json.dumps(data)}).encode("utf-8")


def _yoco(
    event_type: str, *, order_ref: str, amount_minor: int, currency: str, event_id: str
) -> bytes:
    kind, _, status = event_type.partition(".")
    created = _iso(time.time())
    payload: dict[str, Any] = {
        "id": f"{'rf' if kind == 'refund' else 'p'}_{_token()}", "type": kind, "createdDate": created,
        "amount": amount_minor, "currency": currency, "status": status, "mode": "test",
        "metadata": {"checkoutId": order_ref},
    }
    if kind == "refund":
        payload["paymentId"] = f"p_{_token()}"
    return _compact({"id": event_id or f"evt_{_token()}", "type": event_type,
                     "createdDate": created, "payload": payload})


def _shadhinpay(
    event_type: str, *, order_ref: str, amount_minor: int, currency: str, event_id: str
) -> bytes:
    # The documented envelope plus an ``eventId`` (the newer envelope's field), so two
    # partial refunds of one payment do not share the "{event}_{payment_id}" key.
    return _compact({
        "eventId": event_id or f"evt_{_token()}", "event": event_type, "timestamp": _iso(time.time()),
        "data": {
            "payment_id": order_ref, "status": event_type.partition(".")[2].upper(),
            "amount": minor_to_major(amount_minor, currency), "currency": currency,
            "transaction_id": f"TXN{_token().upper()}", "payment_method": "bkash",
            "customer_phone": "+8801700000000", "metadata": {"order_id": f"order_{_token()}"},
        },
    })


_BUILDERS: dict[str, Callable[..., bytes]] = {
    "smartpay": _smartpay,
    "processout": _processout,
    "senfenico": _senfenico,
    "yoco": _yoco,
    "shadhinpay": _shadhinpay,
}


def sample_body(
    provider: str,
    event_type: str,
    *,
    order_ref: str,
    amount_minor: int,
    currency: str | None = None,
    event_id: str | None = None,
) -> bytes:
    """A realistic body of ``event_type`` for ``provider``; a fresh event id unless given."""
    builder = _BUILDERS.get(provider)
    if builder is None:
        raise ValueError(f"unknown provider {provider!r}")
    return builder(
        event_type,
        order_ref=order_ref,
        amount_minor=amount_minor,
        currency=currency or DEFAULT_CURRENCY[provider],
        event_id=event_id or "",
    )


_PROCESSOUT_STATUS = {
    "transaction.captured": "completed",
    "transaction.chargeback.created": "chargeback-initiated",
}


def sample_processout_event(
    *,
    event_id: str,
    event_type: str,
    order_ref: str,
    amount_minor: int,
    currency: str | None = None,
    sandbox: bool = True,
    refund_id: str | None = None,
) -> dict[str, Any]:
    """What ``GET /events/{event_id}`` answers for a thin event (for a fake ProcessOut API).

    A ``transaction.refunded`` event names its refund (``data.refund``: id, amount).
    """
    currency = currency or DEFAULT_CURRENCY["processout"]
    amount = minor_to_major(amount_minor, currency)
    status = _PROCESSOUT_STATUS.get(event_type, event_type.rpartition(".")[2])
    transaction = {"id": order_ref, "amount": amount, "currency": currency, "status": status}
    data: dict[str, Any] = {"transaction": transaction}
    if event_type == "transaction.refunded":
        transaction["refunded_amount"] = amount
        data["refund"] = {"id": refund_id or f"re_{_token()}", "amount": amount}
    return {"event": {
        "id": event_id, "project_id": "proj_test", "name": event_type,
        "data": data, "sandbox": sandbox, "fired_at": _iso(time.time()),
    }}
