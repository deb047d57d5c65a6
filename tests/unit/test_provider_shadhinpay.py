"""ShadhinPay's own rule: the event's identity comes from the signed body, never the unsigned header.
What every adapter shares (three signature forms, tolerance, malformed headers, parse) is in
test_provider_common."""
from __future__ import annotations

from tests.unit.provider_cases import BODY, SHADHINPAY_NEWER, make


def key_of(body: bytes, headers: dict[str, str] | None = None) -> str:
    return make("shadhinpay").parse(body=body, headers=headers or {}).event_key


def test_parse_newer_envelope_without_event_id_falls_back_to_payment_id_and_fields() -> None:
    key = key_of(b'{"eventType":"payment.refunded","payload":{"paymentId":"SP_9"}}')
    assert key.startswith("payment.refunded_SP_9_")


def test_the_unsigned_event_id_header_never_decides_identity() -> None:
    # The HMAC covers the body only: a captured body resent with a fresh header is the same event
    for body in (SHADHINPAY_NEWER, BODY["shadhinpay"]):
        keys = {key_of(body, headers)
                for headers in ({}, {"x-shadhinpay-event-id": "hdr_1"}, {"x-shadhinpay-event-id": "hdr_2"})}
        assert len(keys) == 1 and "hdr_" not in keys.pop()


def test_two_partial_refunds_of_one_payment_get_two_keys_and_a_resent_body_one() -> None:
    first = (b'{"event":"payment.refunded","timestamp":"2024-01-01T12:05:00Z","data":{"payment_id":"SP_1",'
             b'"amount":"5.00","currency":"BDT","transaction_id":"TXN1"}}')
    second = first.replace(b"12:05", b"13:40").replace(b"TXN1", b"TXN2")
    respaced = first.replace(b",", b", ")
    key = key_of(first)
    assert key_of(second) != key
    assert key_of(first) == key
    assert key_of(respaced) == key


def test_body_event_id_beats_the_payment_id_fallback() -> None:
    body = b'{"eventId":"evt_5","event":"payment.completed","data":{"payment_id":"SP_1"}}'
    assert key_of(body, {"x-shadhinpay-event-id": ""}) == "evt_5"
