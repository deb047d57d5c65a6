"""ShadhinPay adapter: three signature header forms, two envelopes, identity from the signed body."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from providers.base import EnvelopeError, VerificationError, Verified
from providers.shadhinpay import KINDS, ShadhinPayAdapter, body_digest

SECRET = "sp_whsec_test"
BODY = (
    b'{"event":"payment.completed","timestamp":"2024-01-01T12:05:00Z","data":{"payment_id":'
    b'"SP_1234567890","status":"COMPLETED","amount":1500,"currency":"BDT"}}'
)
HEX = "b9e5669fc7fa4eb22be55836a21c5213adea8a6d431ea346beb152048f8991aa"
NOW = 1704110700.0
T = "1704110700"


def adapter(secrets: list[str] | None = None, *, now: float = NOW, tolerance: int = 300) -> ShadhinPayAdapter:
    return ShadhinPayAdapter(
        secrets=[SECRET] if secrets is None else secrets, tolerance_seconds=tolerance, clock=lambda: now
    )


def sig(value: str) -> dict[str, str]:
    return {"x-shadhinpay-signature": value}


def timestamped_hex(t: str = T, body: bytes = BODY, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def test_known_answer_documented_form() -> None:
    assert adapter().verify(body=BODY, headers=sig("sha256=" + HEX)) == Verified(0, "sha256=")


def test_known_answer_bare_form() -> None:
    assert adapter().verify(body=BODY, headers=sig(HEX)) == Verified(0, "bare")


def test_timestamped_form() -> None:
    value = f"t={T},v1={timestamped_hex()}"
    assert adapter().verify(body=BODY, headers=sig(value)) == Verified(0, "t,v1")


def test_timestamped_form_tolerates_spaces_unknown_keys_and_several_v1() -> None:
    value = f"t={T}, v0=ignored, v1={'0' * 64}, v1={timestamped_hex()}"
    assert adapter().verify(body=BODY, headers=sig(value)).method == "t,v1"


def test_timestamped_form_does_not_accept_the_untimestamped_mac() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        adapter().verify(body=BODY, headers=sig(f"t={T},v1={HEX}"))


def test_sign_produces_the_documented_form() -> None:
    assert adapter().sign(body=BODY, secret=SECRET) == sig("sha256=" + HEX)


@pytest.mark.parametrize("value", ["sha256=" + HEX, HEX, f"t={T},v1={timestamped_hex()}"])
def test_tampered_body_fails_in_every_form(value: str) -> None:
    with pytest.raises(VerificationError, match="does not match"):
        adapter().verify(body=BODY.replace(b"1500", b"9500"), headers=sig(value))


def test_wrong_secret_fails_without_leaking() -> None:
    with pytest.raises(VerificationError) as caught:
        adapter(["sp_whsec_other"]).verify(body=BODY, headers=sig("sha256=" + HEX))
    assert HEX not in caught.value.reason
    assert "sp_whsec" not in caught.value.reason


def test_second_secret_of_rotation_matches() -> None:
    result = adapter(["sp_whsec_new", SECRET]).verify(body=BODY, headers=sig("sha256=" + HEX))
    assert result == Verified(secret_index=1, method="sha256=")


def test_no_secret_configured_fails() -> None:
    with pytest.raises(VerificationError, match="no secret configured"):
        adapter([]).verify(body=BODY, headers=sig(HEX))


@pytest.mark.parametrize("offset_seconds", [-300, 0, 300])
def test_timestamp_within_tolerance_on_both_sides(offset_seconds: int) -> None:
    value = f"t={T},v1={timestamped_hex()}"
    assert adapter(now=NOW + offset_seconds).verify(body=BODY, headers=sig(value)).secret_index == 0


def test_stale_timestamp_fails() -> None:
    with pytest.raises(VerificationError, match="too old"):
        adapter(now=NOW + 301).verify(body=BODY, headers=sig(f"t={T},v1={timestamped_hex()}"))


def test_future_timestamp_fails() -> None:
    with pytest.raises(VerificationError, match="too new"):
        adapter(now=NOW - 301).verify(body=BODY, headers=sig(f"t={T},v1={timestamped_hex()}"))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        sig(""),
        sig("   "),
        sig("sha256="),
        sig("sha256=" + HEX[:-1]),
        sig("sha256=" + "x" * 64),
        sig("md5=" + HEX),
        sig(HEX + "0"),
        sig("é" * 64),
        sig("\udcff"),
        sig(f"t={T}"),  # no v1
        sig(f"v1={HEX}"),  # no t
        sig(f"t={T}v1={HEX}"),  # no comma
        sig(f"t={T};v1={HEX}"),
        sig(f"t=abc,v1={HEX}"),  # non-numeric timestamp
        sig(f"t=,v1={HEX}"),
        sig(f"t=1704110700.5,v1={HEX}"),
        sig(f"t={'9' * 5000},v1={HEX}"),
        sig(f"t={T},t={T},v1={HEX}"),
        sig(f"t={T},v1=zz"),
        sig(f"t={T},v1={HEX},junk"),
        {"x-shadhinpay-sig": HEX},
    ],
)
def test_malformed_headers_raise_verification_error_only(headers: dict[str, str]) -> None:
    with pytest.raises(VerificationError):
        adapter().verify(body=BODY, headers=headers)


# -- parse --------------------------------------------------------------------

NEWER = (
    b'{"eventId":"evt_77","eventType":"payment.failed","occurredAt":"2024-01-01T12:05:00Z",'
    b'"payload":{"paymentId":"SP_9","merchantTxnId":"order_9","amount":"10.50","currency":"BDT",'
    b'"status":"FAILED"}}'
)


def test_parse_documented_envelope_keys_by_payment_and_signed_fields() -> None:
    envelope = adapter().parse(body=BODY, headers={})
    assert envelope.event_key == f"payment.completed_SP_1234567890_{body_digest(json.loads(BODY))}"
    assert envelope.event_type == "payment.completed"
    assert envelope.livemode is None
    assert envelope.payload["data"]["amount"] == 1500


def test_parse_newer_envelope() -> None:
    envelope = adapter().parse(body=NEWER, headers={})
    assert (envelope.event_key, envelope.event_type) == ("evt_77", "payment.failed")
    assert envelope.payload["payload"]["paymentId"] == "SP_9"


def test_parse_newer_envelope_without_event_id_falls_back_to_payment_id_and_fields() -> None:
    body = b'{"eventType":"payment.refunded","payload":{"paymentId":"SP_9"}}'
    assert adapter().parse(body=body, headers={}).event_key.startswith("payment.refunded_SP_9_")


def test_the_unsigned_event_id_header_never_decides_identity() -> None:
    # The HMAC covers the body only: a captured body resent with a fresh header is the same event
    for body in (NEWER, BODY):
        keys = {adapter().parse(body=body, headers=headers).event_key
                for headers in ({}, {"x-shadhinpay-event-id": "hdr_1"}, {"x-shadhinpay-event-id": "hdr_2"})}
        assert len(keys) == 1 and "hdr_" not in keys.pop()


def test_two_partial_refunds_of_one_payment_get_two_keys_and_a_resent_body_one() -> None:
    first = (b'{"event":"payment.refunded","timestamp":"2024-01-01T12:05:00Z","data":{"payment_id":"SP_1",'
             b'"amount":"5.00","currency":"BDT","transaction_id":"TXN1"}}')
    second = first.replace(b"12:05", b"13:40").replace(b"TXN1", b"TXN2")
    respaced = first.replace(b",", b", ")
    key = adapter().parse(body=first, headers={}).event_key
    assert adapter().parse(body=second, headers={}).event_key != key
    assert adapter().parse(body=first, headers={}).event_key == key
    assert adapter().parse(body=respaced, headers={}).event_key == key


def test_body_event_id_beats_the_payment_id_fallback() -> None:
    body = b'{"eventId":"evt_5","event":"payment.completed","data":{"payment_id":"SP_1"}}'
    assert adapter().parse(body=body, headers={"x-shadhinpay-event-id": ""}).event_key == "evt_5"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff",
        b"[]",
        b"null",
        b'{"data":{"payment_id":"SP_1"}}',  # no type
        b'{"event":"payment.completed"}',  # no key at all
        b'{"event":"payment.completed","data":{"payment_id":""}}',
        b'{"event":"payment.completed","data":{"payment_id":true}}',
        b'{"event":"payment.completed","data":"SP_1"}',
    ],
)
def test_parse_rejects_unusable_bodies(body: bytes) -> None:
    with pytest.raises(EnvelopeError):
        adapter().parse(body=body, headers={})


def test_kinds_table() -> None:
    assert KINDS == {
        "payment.completed": "payment.succeeded",
        "payment.failed": "payment.failed",
        "payment.refunded": "payment.refunded",
    }
    assert ShadhinPayAdapter.name == "shadhinpay"
    assert "x-shadhinpay-signature" in ShadhinPayAdapter.secret_headers
