"""ProcessOut: no signature; a thin ``{event_id, event_type}`` POST behind HTTP Basic.

Trust comes from the worker fetching the event back from ProcessOut's API (its
type, order and amount come only from there); the receiver checks the Basic
credentials embedded in the registered URL. Without them the endpoint is not
live, unless ``allow_unauthenticated`` says so explicitly: then any caller can
make the workers fetch ids of its choosing, and the thin body is capped at
:data:`UNAUTHENTICATED_MAX_BODY_BYTES`.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from providers.base import (
    Clock,
    Envelope,
    EnvelopeError,
    Verified,
    VerificationError,
    require_str,
    system_clock,
)

KINDS: dict[str, str] = {
    "transaction.captured": "payment.succeeded",
    "transaction.failed": "payment.failed",
    "transaction.refunded": "payment.refunded",
    "transaction.chargeback.created": "payment.charged_back",
}

MAX_FORM_FIELDS = 16
"""A thin event has two fields; a form with more than this is refused before it is parsed."""
UNAUTHENTICATED_MAX_BODY_BYTES = 8 * 1024

PENDING_FETCH = "pending_fetch"
"""Event type of a thin event whose sender left ``event_type`` out; the worker fetches it."""


def _thin_event(body: bytes) -> tuple[dict[str, Any], bool]:
    """The POSTed fields, from a JSON object or a form-encoded body; and whether it was JSON."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    else:
        if not isinstance(parsed, dict):
            raise EnvelopeError("body is not a JSON object")
        return parsed, True
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # not UTF-8, or more fields than a thin event has
        raise EnvelopeError("body is neither JSON nor a UTF-8 form of a few fields") from None
    return {name: values[0] for name, values in form.items()}, False


class ProcessOutAdapter:
    """Check the optional Basic credentials and parse the thin event."""

    name = "processout"
    kinds = KINDS
    secret_headers = frozenset({"authorization"})

    def __init__(self, *, basic_auth: str | None = None, allow_unauthenticated: bool = False,
                 clock: Clock = system_clock) -> None:
        self._credentials = basic_auth.encode("utf-8") if basic_auth else None
        self._clock = clock  # unused (no timestamp); accepted so every adapter builds alike
        unauthenticated = self._credentials is None and allow_unauthenticated
        self.configured = self._credentials is not None or unauthenticated
        self.max_body_bytes = UNAUTHENTICATED_MAX_BODY_BYTES if unauthenticated else None

    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> Verified:
        """Require a matching Basic header; pass without one only when explicitly allowed."""
        if self._credentials is None:
            if not self.configured:
                raise VerificationError("no credentials configured")
            return Verified(secret_index=None, method="unauthenticated")
        value = headers.get("authorization")
        if not value:
            raise VerificationError("missing authorization header")
        scheme, _, encoded = value.strip().partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise VerificationError("authorization is not Basic")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (ValueError, binascii.Error):
            raise VerificationError("malformed Basic credentials") from None
        if not hmac.compare_digest(given, self._credentials):
            raise VerificationError("Basic credentials do not match")
        return Verified(secret_index=0, method="basic")

    def parse(self, *, body: bytes, headers: Mapping[str, str]) -> Envelope:
        """Event key ``event_id``; type ``event_type``, or ``pending_fetch`` when absent."""
        event, from_json = _thin_event(body)
        event_key = require_str(event.get("event_id"), "event_id")
        event_type = event.get("event_type")
        if isinstance(event_type, str) and event_type:
            event_type = require_str(event_type, "event_type")
        else:
            event_type = PENDING_FETCH
        return Envelope(event_key=event_key, event_type=event_type, livemode=None, payload=event,
                        payload_is_body=from_json)

    def sign(self, *, body: bytes, secret: str, now: float | None = None) -> dict[str, str]:
        """The Authorization header for ``secret`` ("user:pass"); {} when it is empty."""
        if not secret:
            return {}
        token = base64.b64encode(secret.encode("utf-8")).decode("ascii")
        return {"authorization": f"Basic {token}"}
