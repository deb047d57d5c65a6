"""Refund events naming their refund, in each provider's envelope, for the refund-identity and replay tests."""
from __future__ import annotations

import json
from typing import Any

from providers.money import minor_to_major
from sandbox.samples import sample_processout_event

REFUND_TYPES = {"smartpay": "refund.created", "processout": "transaction.refunded", "yoco": "refund.succeeded",
                "shadhinpay": "payment.refunded"}
CURRENCY = {"smartpay": "JPY", "processout": "USD", "senfenico": "XOF", "yoco": "ZAR", "shadhinpay": "BDT"}


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def refund_body(provider: str, *, event_id: str, refund_id: str | None, order_ref: str, amount_minor: int,
                processout: Any = None, at: str = "2026-11-27T10:00:00Z") -> bytes:
    """A refund event of ``provider`` for ``refund_id``; ProcessOut's full event goes to the fake API."""
    currency = CURRENCY[provider]
    if provider == "smartpay":
        return _compact({"id": event_id, "object": "event", "createdAt": 1795770000000, "test": True,
                         "eventData": {"type": "refund.created", "version": "2022-02-18", "data": {
                             "id": refund_id, "object": "refund", "order": order_ref, "amount": amount_minor,
                             "currency": currency, "payment": "payment_test_1", "status": "succeeded"}}})
    if provider == "yoco":
        return _compact({"id": event_id, "type": "refund.succeeded", "createdDate": at, "payload": {
            "id": refund_id, "type": "refund", "createdDate": at, "amount": amount_minor, "currency": currency,
            "status": "succeeded", "mode": "test", "metadata": {"checkoutId": order_ref}, "paymentId": "p_1"}})
    if provider == "shadhinpay":  # the documented envelope, no eventId: keyed by its signed fields
        data = {"payment_id": order_ref, "status": "REFUNDED", "amount": minor_to_major(amount_minor, currency),
                "currency": currency, "transaction_id": f"TXN-{event_id}"}
        if refund_id is not None:
            data["refund_id"] = refund_id
        return _compact({"event": "payment.refunded", "timestamp": at, "data": data})
    if provider == "processout":
        event = sample_processout_event(event_id=event_id, event_type="transaction.refunded", order_ref=order_ref,
                                        amount_minor=amount_minor, refund_id=refund_id)["event"]
        processout.events[event_id] = event
        return _compact({"event_id": event_id, "event_type": "transaction.refunded"})
    raise ValueError(f"{provider} has no refunds")
