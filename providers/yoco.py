"""Yoco: Standard Webhooks, through the ``standardwebhooks`` package with its gaps closed.

The package checks the timestamp against the wall clock with a fixed 5-minute
tolerance and raises plain ``ValueError``/``binascii.Error`` on malformed
signature entries. Here the timestamp is checked first against the injected
clock and the configured tolerance (both sides of now), the package's own
check is switched off (:class:`_ClockedWebhook`), the signature header is
validated before the package sees it, and anything it raises is wrapped.
"""
from __future__ import annotations

import base64
import binascii
import json
import secrets as secrets_module
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from providers.base import (
    Clock,
    Envelope,
    Verified,
    VerificationError,
    check_timestamp,
    header,
    load_json,
    require_object,
    require_str,
    system_clock,
)

KINDS: dict[str, str] = {
    "payment.succeeded": "payment.succeeded",
    "refund.succeeded": "payment.refunded",
}


class _ClockedWebhook(Webhook):
    """``Webhook`` without its wall-clock check: the adapter has already checked the time.

    ``Webhook.verify`` calls the name-mangled ``_Webhook__verify_timestamp``; this
    override only converts the (already validated, digits-only) header.
    """

    def _Webhook__verify_timestamp(self, timestamp_header: str) -> datetime:
        return datetime.fromtimestamp(int(timestamp_header), tz=timezone.utc)


def _webhook_or_none(secret: str) -> _ClockedWebhook | None:
    """The verifier of one ``whsec_`` secret; None when the secret is unusable."""
    try:
        return _ClockedWebhook(secret) if secret else None
    except Exception:  # binascii.Error, EmptyWebhookSecretError, ...
        return None


def _check_signature_header(value: str) -> None:
    """Every space-separated entry must be ``version,base64``; v1 values must decode."""
    for entry in value.split(" "):
        version, comma, signature = entry.partition(",")
        if not version or not comma or "," in signature:
            raise VerificationError("malformed signature header")
        if version == "v1":
            try:
                base64.b64decode(signature, validate=True)
            except (ValueError, binascii.Error):
                raise VerificationError("malformed signature header") from None


class YocoAdapter:
    """Verify, parse and sign Yoco (Standard Webhooks) requests."""

    name = "yoco"
    kinds = KINDS
    secret_headers = frozenset({"webhook-signature", "svix-signature", "authorization"})

    def __init__(
        self, *, secrets: Sequence[str], tolerance_seconds: int = 180, clock: Clock = system_clock
    ) -> None:
        self._webhooks = [_webhook_or_none(secret) for secret in secrets]
        self._tolerance_seconds = tolerance_seconds
        self._clock = clock
        self.configured = any(webhook is not None for webhook in self._webhooks)
        self.max_body_bytes: int | None = None

    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> Verified:
        """Check the timestamp with our clock, then let the package match the signature."""
        if not any(webhook is not None for webhook in self._webhooks):
            raise VerificationError("no secret configured")
        msg_id = header(headers, "webhook-id", "svix-id")
        timestamp = header(headers, "webhook-timestamp", "svix-timestamp")
        signature = header(headers, "webhook-signature", "svix-signature")
        if not msg_id or not signature:
            raise VerificationError("missing webhook-id or webhook-signature header")
        check_timestamp(
            timestamp, now_seconds=self._clock(), tolerance_seconds=self._tolerance_seconds
        )
        _check_signature_header(signature)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError("body is not UTF-8") from None
        canonical = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
        for index, webhook in enumerate(self._webhooks):
            if webhook is None:
                continue
            try:
                webhook.verify(text, canonical, json_parse=False)
            except WebhookVerificationError:
                continue
            except Exception as exc:  # the package's ValueError, binascii.Error, ...
                raise VerificationError(f"malformed headers ({type(exc).__name__})") from None
            return Verified(secret_index=index)
        raise VerificationError("signature does not match")

    def parse(self, *, body: bytes, headers: Mapping[str, str]) -> Envelope:
        """Key ``$.id`` (fallback: the webhook-id header, which the signature covers), type ``$.type``."""
        event = require_object(load_json(body), "body")
        event_type = require_str(event.get("type"), "type")
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            event_id = header(headers, "webhook-id", "svix-id")
        event_key = require_str(event_id, "id")
        payload = event.get("payload")
        mode = payload.get("mode") if isinstance(payload, dict) else None
        livemode = mode == "live" if isinstance(mode, str) else None
        return Envelope(event_key=event_key, event_type=event_type, livemode=livemode, payload=event)

    def sign(self, *, body: bytes, secret: str, now: float | None = None) -> dict[str, str]:
        """``webhook-id`` (the body's ``id``, else a random ``msg_``), timestamp and signature."""
        try:
            event_id = json.loads(body).get("id")
        except (ValueError, RecursionError, AttributeError):
            event_id = None
        usable = isinstance(event_id, str) and event_id.isascii() and event_id.isprintable() and event_id
        msg_id = event_id if usable else f"msg_{secrets_module.token_hex(12)}"
        timestamp = int(self._clock() if now is None else now)
        signed_at = datetime.fromtimestamp(timestamp, tz=timezone.utc)
        signature = Webhook(secret).sign(msg_id=msg_id, timestamp=signed_at, data=body.decode("utf-8"))
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
