"""Smartpay: HMAC-SHA256 over ``"{timestamp_ms}.{raw body}"``, key base62-decoded."""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from providers.base import (
    Clock,
    Envelope,
    Verified,
    VerificationError,
    as_sha256_hex,
    check_timestamp,
    load_json,
    require_object,
    require_str,
    system_clock,
)

KINDS: dict[str, str] = {
    "order.authorized": "payment.succeeded",
    "order.rejected": "payment.failed",
    "refund.created": "payment.refunded",
}

BASE62_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_DIGIT_OF = {char: digit for digit, char in enumerate(BASE62_ALPHABET)}

SIGNATURE_HEADER = "smartpay-signature"
TIMESTAMP_HEADER = "smartpay-signature-timestamp"


def base62_decode(secret: str) -> bytes:
    """Decode with base-x semantics: big-endian base 62, each leading ``A`` -> one ``0x00``.

    Raises ``ValueError`` on a character outside the alphabet.
    """
    number = 0
    for char in secret:
        digit = _DIGIT_OF.get(char)
        if digit is None:
            raise ValueError("secret has a character outside the base62 alphabet")
        number = number * 62 + digit
    leading_zeros = len(secret) - len(secret.lstrip(BASE62_ALPHABET[0]))
    return b"\x00" * leading_zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def _key_or_none(secret: str) -> bytes | None:
    """The HMAC key of one secret; None when the secret is empty or not base62."""
    try:
        return base62_decode(secret) if secret else None
    except ValueError:
        return None


class SmartpayAdapter:
    """Verify, parse and sign Smartpay webhooks."""

    name = "smartpay"
    kinds = KINDS
    secret_headers = frozenset({SIGNATURE_HEADER, "authorization"})

    def __init__(
        self, *, secrets: Sequence[str], tolerance_seconds: int = 300, clock: Clock = system_clock
    ) -> None:
        self._keys = [_key_or_none(secret) for secret in secrets]
        self._tolerance_seconds = tolerance_seconds
        self._clock = clock
        self.configured = any(key is not None for key in self._keys)
        self.max_body_bytes: int | None = None

    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> Verified:
        """Check the signature over the raw bytes with every secret; raise on failure."""
        if not any(key is not None for key in self._keys):
            raise VerificationError("no secret configured")  # or none is valid base62
        signature = as_sha256_hex(headers.get(SIGNATURE_HEADER) or "")
        if signature is None:
            raise VerificationError("missing or malformed signature header")
        timestamp = headers.get(TIMESTAMP_HEADER)
        check_timestamp(
            timestamp,
            now_seconds=self._clock(),
            tolerance_seconds=self._tolerance_seconds,
            units_per_second=1000,
        )
        message = f"{timestamp}.".encode("ascii") + body  # validated: digits only
        for index, key in enumerate(self._keys):
            if key is None:
                continue
            expected = hmac.new(key, message, hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, signature):
                return Verified(secret_index=index)
        raise VerificationError("signature does not match")

    def parse(self, *, body: bytes, headers: Mapping[str, str]) -> Envelope:
        """Event key ``$.id``, type ``$.eventData.type``, live mode ``not $.test``."""
        event = require_object(load_json(body), "body")
        event_key = require_str(event.get("id"), "id")
        event_data = require_object(event.get("eventData"), "eventData")
        event_type = require_str(event_data.get("type"), "eventData.type")
        test = event.get("test")
        livemode = (not test) if isinstance(test, bool) else None
        return Envelope(event_key=event_key, event_type=event_type, livemode=livemode, payload=event)

    def sign(self, *, body: bytes, secret: str, now: float | None = None) -> dict[str, str]:
        """The headers Smartpay would send; ``secret`` must be valid base62."""
        timestamp = str(round((self._clock() if now is None else now) * 1000))
        message = f"{timestamp}.".encode("ascii") + body
        signature = hmac.new(base62_decode(secret), message, hashlib.sha256).hexdigest()
        return {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: timestamp}

