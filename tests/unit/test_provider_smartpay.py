"""Smartpay's own rules: sign() on the clock, base-x key decoding, the test flag.
What every adapter shares (known answer, tolerance, malformed headers, parse) is in test_provider_common."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from providers.base import VerificationError
from providers.smartpay import base62_decode
from tests.unit.provider_cases import BODY, NOW, SECRETS, SMARTPAY_TIMESTAMP, make, smartpay_headers

SECRET = SECRETS["smartpay"]
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def test_sign_defaults_to_the_clock() -> None:
    signed = make("smartpay", now=1700000001.5).sign(body=BODY["smartpay"], secret=SECRET)
    assert signed["smartpay-signature-timestamp"] == "1700000001500"


def by_hand(secret: str) -> bytes:
    """Independent base-x reading: sum of digit * 62**position, then one 0x00 per leading A."""
    number = sum(ALPHABET.index(char) * 62**power for power, char in enumerate(reversed(secret)))
    zeros = len(secret) - len(secret.lstrip("A"))
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
    secret, body = prefix + SECRET[len(prefix) :], BODY["smartpay"]
    key = by_hand(secret)
    assert key[: len(prefix)] == b"\x00" * len(prefix)
    assert key[len(prefix)] != 0
    assert base62_decode(secret) == key
    # Given a signature computed independently with the hand-decoded key
    signature = hmac.new(key, SMARTPAY_TIMESTAMP.encode() + b"." + body, hashlib.sha256).hexdigest()
    # Then the adapter accepts it, and its own sign() agrees
    assert make("smartpay", [secret]).verify(body=body, headers=smartpay_headers(signature)).secret_index == 0
    assert make("smartpay").sign(body=body, secret=secret, now=NOW["smartpay"])["smartpay-signature"] == signature
    # And a key that dropped the leading zero (pybase62's behaviour) would not verify
    dropped = hmac.new(key.lstrip(b"\x00"), SMARTPAY_TIMESTAMP.encode() + b"." + body, hashlib.sha256)
    with pytest.raises(VerificationError):
        make("smartpay", [secret]).verify(body=body, headers=smartpay_headers(dropped.hexdigest()))


def test_base62_decode_rejects_foreign_characters() -> None:
    with pytest.raises(ValueError):
        base62_decode("abc+def")


@pytest.mark.parametrize(("test_flag", "livemode"), [("false", True), ("true", False), ('"yes"', None), (None, None)])
def test_parse_livemode(test_flag: str | None, livemode: bool | None) -> None:
    # No test flag at all: live mode unknown
    flag = b"" if test_flag is None else b'"test":%s,' % test_flag.encode()
    body = b'{"id":"evt_1",%s"eventData":{"type":"order.rejected"}}' % flag
    assert make("smartpay").parse(body=body, headers={}).livemode is livemode
