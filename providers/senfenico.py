"""Senfenico: plain SHA-256 of ``payload_bytes + key``, over the raw or the canonical body.

Its Python SDK hashes ``json.dumps(json.loads(raw))`` (default separators), its
PHP SDK the raw bytes: both candidates are accepted and the one that matched is
recorded as ``Verified.method``. The canonical candidate costs a parse and a
re-serialisation, so it is built only after the raw one failed and only for
bodies up to :data:`MAX_CANONICAL_BYTES`. There is no timestamp, so no tolerance.

Identity comes from what the hash covers. Under the canonical method the hash
covers the *canonical* form, not the bytes (whitespace, and a duplicate key
that a later one overrides, can change freely), so an event without a
reference is keyed by the SHA-256 of its canonical form, never of its raw bytes.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence

from providers.base import (
    Clock,
    Envelope,
    EnvelopeError,
    Verified,
    VerificationError,
    as_sha256_hex,
    load_json,
    require_object,
    require_str,
    system_clock,
)

KINDS: dict[str, str] = {
    "checkout.success": "payment.succeeded",
    "charge.success": "payment.succeeded",
    "checkout.failed": "payment.failed",
    "charge.failed": "payment.failed",
}

HASH_HEADER = "x-webhook-hash"


MAX_CANONICAL_BYTES = 64 * 1024
"""Larger bodies are checked against the raw candidate only."""


def canonical_form(body: bytes) -> bytes | None:
    """``json.dumps(json.loads(body))`` as the Python SDK hashes it; None when the body is not JSON."""
    try:
        return json.dumps(json.loads(body)).encode("ascii")
    except (ValueError, RecursionError):
        return None


class SenfenicoAdapter:
    """Verify, parse and sign Senfenico webhooks."""

    name = "senfenico"
    kinds = KINDS
    secret_headers = frozenset({HASH_HEADER, "authorization"})

    def __init__(self, *, secrets: Sequence[str], clock: Clock = system_clock) -> None:
        self._keys = [secret.encode("utf-8", "surrogatepass") for secret in secrets]
        self._clock = clock  # unused (no timestamp); accepted so every adapter builds alike
        self.configured = any(self._keys)
        self.max_body_bytes: int | None = None

    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> Verified:
        """Try every secret against the raw, then the canonical, payload bytes."""
        if not any(self._keys):
            raise VerificationError("no secret configured")
        given = as_sha256_hex(headers.get(HASH_HEADER) or "")
        if given is None:
            raise VerificationError("missing or malformed hash header")
        index = self._match(body, given)
        if index is not None:
            return Verified(secret_index=index, method="raw")
        if len(body) <= MAX_CANONICAL_BYTES:
            canonical = canonical_form(body)
            if canonical is not None and canonical != body:
                index = self._match(canonical, given)
                if index is not None:
                    return Verified(secret_index=index, method="canonical")
        raise VerificationError("hash does not match")

    def _match(self, payload: bytes, given: str) -> int | None:
        for index, key in enumerate(self._keys):
            if key and hmac.compare_digest(hashlib.sha256(payload + key).hexdigest(), given):
                return index
        return None

    def parse(self, *, body: bytes, headers: Mapping[str, str]) -> Envelope:
        """Key ``"{event}:{data.reference}"``, else the SHA-256 of the body's canonical form.

        ``data`` may arrive double-encoded (a JSON string); the payload holds it decoded.
        """
        event = require_object(load_json(body), "body")
        event_type = require_str(event.get("event"), "event")
        data = event.get("data")
        decoded = isinstance(data, str)
        if decoded:
            try:
                data = json.loads(data)
            except (ValueError, RecursionError):
                raise EnvelopeError("data is a string but not JSON") from None
            data = require_object(data, "data")
            event = {**event, "data": data}
        elif data is not None:
            data = require_object(data, "data")
        reference = data.get("reference") if data else None
        if isinstance(reference, int) and not isinstance(reference, bool):
            reference = str(reference)
        if isinstance(reference, str) and reference:
            event_key = require_str(f"{event_type}:{reference}", "data.reference")
        else:
            event_key = hashlib.sha256(canonical_form(body) or body).hexdigest()
        live_mode = data.get("live_mode") if data else None
        livemode = live_mode if isinstance(live_mode, bool) else None
        return Envelope(event_key=event_key, event_type=event_type, livemode=livemode, payload=event,
                        payload_is_body=not decoded)

    def sign(self, *, body: bytes, secret: str, now: float | None = None) -> dict[str, str]:
        """The hash header over the raw body (the PHP SDK's form)."""
        digest = hashlib.sha256(body + secret.encode("utf-8")).hexdigest()
        return {HASH_HEADER: digest}
