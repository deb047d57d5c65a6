"""ShadhinPay: HMAC-SHA256 hex, in three header forms (``sha256=``, bare, ``t=,v1=``).

``t=<unix s>,v1=<hex>`` (newer docs, unconfirmed) signs ``"{t}.{raw body}"`` and
gets the same tolerance check as Smartpay; the two older forms sign the raw body.

Identity comes from the signed body only. ``X-ShadhinPay-Event-Id`` is not
signed (a captured body resent with a fresh one must stay the same event), so it
is stored with the headers for audit and never keys anything.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from providers.base import (
    Clock,
    Envelope,
    EnvelopeError,
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
    "payment.completed": "payment.succeeded",
    "payment.failed": "payment.failed",
    "payment.refunded": "payment.refunded",
}

SIGNATURE_HEADER = "x-shadhinpay-signature"
EVENT_ID_HEADER = "x-shadhinpay-event-id"


def _parse_timestamped(value: str) -> tuple[str | None, list[str]]:
    """``t=<digits>,v1=<hex>[,v1=<hex>…]`` -> (t, v1 values); other keys are ignored."""
    timestamp: str | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, equals, item = part.strip().partition("=")
        if not equals:
            raise VerificationError("malformed signature header")
        if key == "t":
            if timestamp is not None:
                raise VerificationError("malformed signature header")
            timestamp = item
        elif key == "v1":
            signature = as_sha256_hex(item)
            if signature is None:
                raise VerificationError("malformed signature header")
            signatures.append(signature)
    if not signatures:
        raise VerificationError("malformed signature header")
    return timestamp, signatures


def _as_id(value: Any) -> str | None:
    """A usable id: a non-empty string or an integer (not a bool)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def body_digest(event: dict[str, Any]) -> str:
    """32 hex digits of the SHA-256 of every signed field (keys sorted, compact).

    Two events of one payment differ in some field (timestamp, amount,
    transaction or refund id), so they get two keys; the identical body resent,
    even re-serialised, gets the same one.
    """
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class ShadhinPayAdapter:
    """Verify, parse and sign ShadhinPay webhooks."""

    name = "shadhinpay"
    kinds = KINDS
    secret_headers = frozenset({SIGNATURE_HEADER, "authorization"})

    def __init__(
        self, *, secrets: Sequence[str], tolerance_seconds: int = 300, clock: Clock = system_clock
    ) -> None:
        self._keys = [secret.encode("utf-8", "surrogatepass") for secret in secrets]
        self._tolerance_seconds = tolerance_seconds
        self._clock = clock
        self.configured = any(self._keys)
        self.max_body_bytes: int | None = None

    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> Verified:
        """Recognise the header form, then try every secret; method is the form."""
        if not any(self._keys):
            raise VerificationError("no secret configured")
        value = (headers.get(SIGNATURE_HEADER) or "").strip()
        if not value:
            raise VerificationError("missing signature header")
        message = body
        if value.startswith("sha256="):
            method, signature = "sha256=", as_sha256_hex(value[len("sha256=") :])
            signatures = [signature] if signature else []
        elif "=" in value:
            method = "t,v1"
            timestamp, signatures = _parse_timestamped(value)
            check_timestamp(
                timestamp, now_seconds=self._clock(), tolerance_seconds=self._tolerance_seconds
            )
            message = f"{timestamp}.".encode("ascii") + body  # validated: digits only
        else:
            method, signature = "bare", as_sha256_hex(value)
            signatures = [signature] if signature else []
        if not signatures:
            raise VerificationError("malformed signature header")
        for index, key in enumerate(self._keys):
            if not key:
                continue
            expected = hmac.new(key, message, hashlib.sha256).hexdigest()
            if any(hmac.compare_digest(expected, given) for given in signatures):
                return Verified(secret_index=index, method=method)
        raise VerificationError("signature does not match")

    def parse(self, *, body: bytes, headers: Mapping[str, str]) -> Envelope:
        """Key ``$.eventId``, else ``"{event}_{payment id}_{body digest}"`` (see :func:`body_digest`)."""
        event = require_object(load_json(body), "body")
        event_type = event.get("event")
        if not isinstance(event_type, str) or not event_type:
            event_type = event.get("eventType")
        event_type = require_str(event_type, "event or eventType")
        event_key = _as_id(event.get("eventId"))
        if not event_key:
            data, newer = event.get("data"), event.get("payload")
            payment_id = None
            if isinstance(data, dict):
                payment_id = _as_id(data.get("payment_id"))
            if payment_id is None and isinstance(newer, dict):
                payment_id = _as_id(newer.get("paymentId"))
            if payment_id is None:
                raise EnvelopeError("no event id and no payment id")
            event_key = f"{event_type}_{payment_id}_{body_digest(event)}"
        event_key = require_str(event_key, "event id")
        return Envelope(event_key=event_key, event_type=event_type, livemode=None, payload=event)

    def sign(self, *, body: bytes, secret: str, now: float | None = None) -> dict[str, str]:
        """The documented ``sha256=<hex>`` form over the raw body."""
        digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        return {SIGNATURE_HEADER: f"sha256={digest}"}
