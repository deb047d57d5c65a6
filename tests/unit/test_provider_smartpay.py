"""Smartpay adapter: known answer, base-x key decoding, tolerance, malformed headers, parse."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from providers.base import EnvelopeError, VerificationError, Verified
from providers.smartpay import KINDS, SmartpayAdapter, base62_decode

SECRET = "Zq3kT9vWm2LpXr8YcN4bH6sJd1FgQe7UiOa5Kt0E"
TIMESTAMP = "1700000000123"
NOW = 1700000000.123
BODY = (
    b'{"id":"evt_test_oracle1","object":"event","createdAt":1700000000000,"test":true,'
    b'"eventData":{"type":"order.authorized","version":"2022-02-18",'
    b'"data":{"id":"order_test_abc","object":"order","status":"succeeded"}}}'
)
SIGNATURE = "24ed79931d295fc2d99022981049ce9315f203538646b7d59f4db48d241c2dab"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def adapter(secrets: list[str] | None = None, *, now: float = NOW, tolerance: int = 300) -> SmartpayAdapter:
    return SmartpayAdapter(
        secrets=[SECRET] if secrets is None else secrets, tolerance_seconds=tolerance, clock=lambda: now
    )


def headers(signature: str = SIGNATURE, timestamp: str = TIMESTAMP) -> dict[str, str]:
    return {"smartpay-signature": signature, "smartpay-signature-timestamp": timestamp}


def test_known_answer_verifies() -> None:
    assert adapter().verify(body=BODY, headers=headers()) == Verified(secret_index=0, method=None)


def test_sign_reproduces_known_answer() -> None:
    signed = adapter().sign(body=BODY, secret=SECRET, now=NOW)
    assert signed == {"smartpay-signature": SIGNATURE, "smartpay-signature-timestamp": TIMESTAMP}


def test_sign_defaults_to_the_clock() -> None:
    signed = adapter(now=1700000001.5).sign(body=BODY, secret=SECRET)
    assert signed["smartpay-signature-timestamp"] == "1700000001500"


def test_uppercase_hex_signature_is_accepted() -> None:
    assert adapter().verify(body=BODY, headers=headers(SIGNATURE.upper())).secret_index == 0


def test_tampered_body_fails() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        adapter().verify(body=BODY.replace(b"order_test_abc", b"order_test_abd"), headers=headers())


def test_wrong_secret_fails_and_reason_leaks_nothing() -> None:
    with pytest.raises(VerificationError) as caught:
        adapter(["Zq3kT9vWm2LpXr8YcN4bH6sJd1FgQe7UiOa5Kt0F"]).verify(body=BODY, headers=headers())
    assert SIGNATURE not in caught.value.reason
    assert SECRET[:10] not in caught.value.reason


def test_second_secret_of_rotation_matches() -> None:
    result = adapter(["BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", SECRET]).verify(body=BODY, headers=headers())
    assert result.secret_index == 1


def test_secret_outside_alphabet_is_non_matching_not_a_crash() -> None:
    result = adapter(["not-base62!", SECRET]).verify(body=BODY, headers=headers())
    assert result.secret_index == 1
    with pytest.raises(VerificationError):
        adapter(["not-base62!"]).verify(body=BODY, headers=headers())


def test_no_secret_configured_fails() -> None:
    with pytest.raises(VerificationError, match="no secret configured"):
        adapter([]).verify(body=BODY, headers=headers())


@pytest.mark.parametrize("offset_seconds", [-300, 0, 300])
def test_timestamp_within_tolerance_on_both_sides(offset_seconds: int) -> None:
    assert adapter(now=NOW + offset_seconds).verify(body=BODY, headers=headers()).secret_index == 0


def test_stale_timestamp_fails() -> None:
    # Given a clock 300.001 s after the signature: 1 ms past the tolerance.
    with pytest.raises(VerificationError, match="too old"):
        adapter(now=NOW + 300.001).verify(body=BODY, headers=headers())


def test_future_timestamp_fails() -> None:
    with pytest.raises(VerificationError, match="too new"):
        adapter(now=NOW - 300.001).verify(body=BODY, headers=headers())


def test_tolerance_is_a_setting() -> None:
    with pytest.raises(VerificationError, match="too old"):
        adapter(now=NOW + 61, tolerance=60).verify(body=BODY, headers=headers())


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"smartpay-signature-timestamp": TIMESTAMP},
        {"smartpay-signature": SIGNATURE},
        headers(signature=""),
        headers(timestamp=""),
        headers(signature=SIGNATURE[:-1]),
        headers(signature=SIGNATURE + "0"),
        headers(signature="g" * 64),
        headers(signature="sha256=" + SIGNATURE),
        headers(signature=" " + SIGNATURE),
        headers(signature="é" * 64),
        headers(timestamp="abc"),
        headers(timestamp="1700000000123.0"),
        headers(timestamp=" 1700000000123"),
        headers(timestamp="-1700000000123"),
        headers(timestamp="١٧٠٠٠٠٠٠٠٠١٢٣"),  # Arabic-Indic digits: isdigit() but not ASCII
        headers(timestamp="9" * 5000),
        headers(timestamp="\udcff"),
    ],
)
def test_malformed_headers_raise_verification_error_only(bad: dict[str, str]) -> None:
    with pytest.raises(VerificationError):
        adapter().verify(body=BODY, headers=bad)


def test_non_utf8_body_is_a_plain_mismatch() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        adapter().verify(body=b"\xff\xfe\x00", headers=headers())


# -- base-x key decoding ------------------------------------------------------


def by_hand(secret: str) -> bytes:
    """Independent base-x reading: sum of digit * 62**position, then one 0x00 per leading A."""
    number = sum(ALPHABET.index(char) * 62**power for power, char in enumerate(reversed(secret)))
    zeros = 0
    while zeros < len(secret) and secret[zeros] == "A":
        zeros += 1
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("A", b"\x00"),
        ("AA", b"\x00\x00"),
        ("B", b"\x01"),
        ("AB", b"\x00\x01"),
        ("Ba", b"\x58"),  # 1*62 + 26 = 88
        ("BAA", b"\x0f\x04"),  # 62**2 = 3844
        ("AAB9", b"\x00\x00\x7b"),  # 1*62 + 61 = 123, two leading zeros
        ("9", b"\x3d"),  # 61
    ],
)
def test_base62_decode_small_values(secret: str, expected: bytes) -> None:
    assert base62_decode(secret) == expected


def test_known_secret_decodes_to_30_bytes() -> None:
    assert base62_decode(SECRET) == by_hand(SECRET)
    assert len(base62_decode(SECRET)) == 30


@pytest.mark.parametrize("prefix", ["A", "AA"])
def test_secret_with_leading_a_keeps_zero_bytes_and_verifies(prefix: str) -> None:
    secret = prefix + SECRET[len(prefix) :]
    key = by_hand(secret)
    assert key[: len(prefix)] == b"\x00" * len(prefix)
    assert key[len(prefix)] != 0
    assert base62_decode(secret) == key
    # Given a signature computed independently with the hand-decoded key
    signature = hmac.new(key, TIMESTAMP.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    # Then the adapter accepts it, and its own sign() agrees
    assert adapter([secret]).verify(body=BODY, headers=headers(signature)).secret_index == 0
    assert adapter().sign(body=BODY, secret=secret, now=NOW)["smartpay-signature"] == signature
    # And a key that dropped the leading zero (pybase62's behaviour) would not verify
    dropped = hmac.new(key.lstrip(b"\x00"), TIMESTAMP.encode() + b"." + BODY, hashlib.sha256)
    with pytest.raises(VerificationError):
        adapter([secret]).verify(body=BODY, headers=headers(dropped.hexdigest()))


def test_base62_decode_rejects_foreign_characters() -> None:
    with pytest.raises(ValueError):
        base62_decode("abc+def")


# -- parse --------------------------------------------------------------------


def test_parse_known_body() -> None:
    envelope = adapter().parse(body=BODY, headers={})
    assert envelope.event_key == "evt_test_oracle1"
    assert envelope.event_type == "order.authorized"
    assert envelope.livemode is False
    assert envelope.payload["eventData"]["data"]["id"] == "order_test_abc"


@pytest.mark.parametrize(("test_flag", "livemode"), [("false", True), ("true", False), ('"yes"', None)])
def test_parse_livemode(test_flag: str, livemode: bool | None) -> None:
    body = b'{"id":"evt_1","test":%s,"eventData":{"type":"order.rejected"}}' % test_flag.encode()
    assert adapter().parse(body=body, headers={}).livemode is livemode


def test_parse_without_test_flag_has_unknown_livemode() -> None:
    body = b'{"id":"evt_1","eventData":{"type":"order.rejected"}}'
    assert adapter().parse(body=body, headers={}).livemode is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b"42",
        b'"evt_1"',
        b"null",
        b'{"eventData":{"type":"order.authorized"}}',
        b'{"id":"","eventData":{"type":"order.authorized"}}',
        b'{"id":7,"eventData":{"type":"order.authorized"}}',
        b'{"id":"evt_1"}',
        b'{"id":"evt_1","eventData":[]}',
        b'{"id":"evt_1","eventData":{"version":"2022-02-18"}}',
    ],
)
def test_parse_rejects_unusable_bodies(body: bytes) -> None:
    with pytest.raises(EnvelopeError):
        adapter().parse(body=body, headers={})


def test_kinds_table() -> None:
    assert KINDS == {
        "order.authorized": "payment.succeeded",
        "order.rejected": "payment.failed",
        "refund.created": "payment.refunded",
    }
    assert SmartpayAdapter.name == "smartpay"
    assert "smartpay-signature" in SmartpayAdapter.secret_headers
