"""Sending one delivery: email over SMTP, or a signed JSON POST (fulfilment, SMS gateway).

A sender returns a :class:`~models.deliveries.Result` when the other side
accepted, raises :class:`NotConfigured` when the setting is missing (the
delivery is skipped), :class:`Rejected` when retrying can never help (SMTP 5xx,
HTTP 4xx other than 408/429) and anything else to be retried.
"""
from __future__ import annotations

import hashlib
import json
import smtplib
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from models.deliveries import Result
from models.redaction import safe_url
from models.settings import Settings
from workers.deliveries.content import render_email, render_sms

RESPONSE_EXCERPT = 500
RETRYABLE_HTTP = (408, 429)


class NotConfigured(Exception):
    """The setting this delivery needs is missing: it is skipped, not failed."""


class Rejected(Exception):
    """The other side refused for good; retrying cannot help."""

    def __init__(self, message: str, *, result: Result) -> None:
        super().__init__(message)
        self.result = result


class TemporaryFailure(Exception):
    """The other side answered, but not yet: retried on the delivery schedule."""

    def __init__(self, message: str, *, result: Result) -> None:
        super().__init__(message)
        self.result = result


def unsendable(settings: Settings, *, kind: str, email: str | None, phone: str | None) -> str | None:
    """Why a delivery of ``kind`` cannot be sent with these settings, or None when it can.

    Handlers ask this when they write the row (an unsendable delivery is
    ``skipped`` at once, with no task), and senders ask it again before sending
    (settings may differ by the time a replay runs).
    """
    if kind.startswith("email."):
        if not settings.smtp_host:
            return "PAYHOOKS_SMTP_HOST is not set"
        return None if email else "the order has no customer email"
    if kind.startswith("sms."):
        if not settings.notify_url:
            return "PAYHOOKS_NOTIFY_URL is not set"
        if not (settings.notify_secret or settings.fulfilment_secret):
            return "PAYHOOKS_NOTIFY_SECRET (or PAYHOOKS_FULFILMENT_SECRET) is not set (our calls are always signed)"
        return None if phone else "the order has no customer phone"
    if kind == "fulfilment":
        if not settings.fulfilment_url:
            return "PAYHOOKS_FULFILMENT_URL is not set"
        if not settings.fulfilment_secret:
            return "PAYHOOKS_FULFILMENT_SECRET is not set (our calls are always signed)"
        return None
    if kind.startswith("alert."):
        from models.alerts import unsendable as alert_unsendable

        return alert_unsendable(settings, kind)
    return f"no sender for delivery kind {kind!r}"


def _require_sendable(settings: Settings, *, kind: str, email: str | None = None, phone: str | None = None) -> None:
    reason = unsendable(settings, kind=kind, email=email, phone=phone)
    if reason:
        raise NotConfigured(reason)


def message_id(key: str, sender: str) -> str:
    """The same Message-ID for every try of one delivery key, so a resend is recognisable."""
    domain = sender.rpartition("@")[2] or "payhooks.local"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"<payhooks.{digest}@{domain}>"


def build_email(settings: Settings, *, key: str, kind: str, payload: dict[str, Any], to: str) -> EmailMessage:
    rendered = render_email(kind.removeprefix("email."), payload)
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(key, settings.smtp_from)
    msg["X-Payhooks-Delivery"] = key
    msg.set_content(rendered.text)
    if rendered.html:
        msg.add_alternative(rendered.html, subtype="html")
    return msg


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _smtp_reply(code: int, reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return f"{code} {text}"[:RESPONSE_EXCERPT]


def send_email(settings: Settings, *, key: str, kind: str, payload: dict[str, Any], to: str | None) -> Result:
    _require_sendable(settings, kind=kind, email=to)
    return send_message(settings, build_email(settings, key=key, kind=kind, payload=payload, to=to), to=to)


def send_message(settings: Settings, msg: EmailMessage, *, to: str) -> Result:
    """One message through the configured SMTP server; the server's final reply is the result."""
    started = time.monotonic()
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                          timeout=settings.delivery_timeout_seconds) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_username, password)
            code, reply = _transmit(smtp, msg, sender=settings.smtp_from, to=to)
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        _raise_smtp(code, reply, started)
    except smtplib.SMTPResponseException as exc:
        _raise_smtp(exc.smtp_code, exc.smtp_error, started)
    return Result(code=code, response=_smtp_reply(code, reply), duration_ms=_elapsed_ms(started))


def _transmit(smtp: smtplib.SMTP, msg: EmailMessage, *, sender: str, to: str) -> tuple[int, bytes]:
    """MAIL, RCPT, DATA by hand, to keep the server's final reply (its queue id) for the audit."""
    smtp.ehlo_or_helo_if_needed()
    code, reply = smtp.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.rcpt(to)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
    code, reply = smtp.data(msg.as_bytes(policy=SMTP_POLICY))
    if code != 250:  # data() returns the final reply as it is; only sendmail() checks it
        raise smtplib.SMTPDataError(code, reply)
    return code, reply


def _raise_smtp(code: int, reply: bytes | str, started: float) -> None:
    result = Result(code=code, response=_smtp_reply(code, reply), duration_ms=_elapsed_ms(started))
    if 500 <= code < 600:
        raise Rejected(f"SMTP refused: {result.response}", result=result)
    raise TemporaryFailure(f"SMTP deferred: {result.response}", result=result)


def signed_headers(*, secret: str, key: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers (as Yoco signs to us), plus the Idempotency-Key."""
    now = datetime.now(tz=timezone.utc)
    signature = Webhook(secret).sign(msg_id=key, timestamp=now, data=body.decode())
    return {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "webhook-id": key,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def post_signed(http: httpx.Client, *, url: str, secret: str | None, key: str, document: dict[str, Any],
                timeout_seconds: float) -> Result:
    """POST the document as JSON; signed when there is a secret (operator alerts may go unsigned, to Slack)."""
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    started = time.monotonic()
    headers = (signed_headers(secret=secret, key=key, body=body) if secret else
               {"Content-Type": "application/json", "Idempotency-Key": key, "webhook-id": key})
    response = http.post(url, content=body, headers=headers, timeout=timeout_seconds)
    result = Result(code=response.status_code, response=response.text[:RESPONSE_EXCERPT],
                    duration_ms=_elapsed_ms(started))
    if response.is_success:
        return result
    if 400 <= response.status_code < 500 and response.status_code not in RETRYABLE_HTTP:
        raise Rejected(f"HTTP {response.status_code} from {safe_url(url)}", result=result)
    raise TemporaryFailure(f"HTTP {response.status_code} from {safe_url(url)}", result=result)


def send_fulfilment(settings: Settings, http: httpx.Client, *, key: str, payload: dict[str, Any],
                    event_id: int) -> Result:
    _require_sendable(settings, kind="fulfilment")
    document = {"type": "order.paid", "delivery_key": key, "event_id": event_id, "order": payload["order"]}
    return post_signed(http, url=settings.fulfilment_url, key=key, document=document,
                       secret=settings.fulfilment_secret.get_secret_value(),
                       timeout_seconds=settings.delivery_timeout_seconds)


def send_sms(settings: Settings, http: httpx.Client, *, key: str, kind: str, payload: dict[str, Any],
             to: str | None) -> Result:
    _require_sendable(settings, kind=kind, phone=to)
    secret = settings.notify_secret or settings.fulfilment_secret
    document = {"type": kind.removeprefix("sms."), "delivery_key": key, "to": to,
                "message": render_sms(kind.removeprefix("sms."), payload), "order": payload["order"]}
    return post_signed(http, url=settings.notify_url, key=key, document=document,
                       secret=secret.get_secret_value(), timeout_seconds=settings.delivery_timeout_seconds)
