"""Sending an operator alert: a JSON POST to PAYHOOKS_ALERT_URL, or an email to PAYHOOKS_ALERT_EMAIL.

The POST body is the alert document as stored (``type``, a human ``text`` a
Slack incoming webhook shows as it is, and the structured facts). With
PAYHOOKS_ALERT_SECRET it is signed the Standard Webhooks way, like fulfilment
calls; every try carries the same ``webhook-id``/``Idempotency-Key``
(``alert:<id>:<kind>``), so a receiver can drop a repeat.
"""
from __future__ import annotations

import json
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx

from models.alerts import EMAIL, WEBHOOK, unsendable
from models.deliveries import Result
from models.settings import Settings
from workers.deliveries.senders import (
    NotConfigured,
    Rejected,
    TemporaryFailure,
    message_id,
    post_signed,
    send_message,
)


def send_alert(settings: Settings, http: httpx.Client, *, key: str, kind: str, document: dict[str, Any]) -> Result:
    reason = unsendable(settings, kind)
    if reason:
        raise NotConfigured(reason)
    if kind == WEBHOOK:
        secret = settings.alert_secret.get_secret_value() if settings.alert_secret else None
        url = settings.alert_url.get_secret_value()
        try:
            return post_signed(http, url=url, secret=secret, key=key, document=document,
                               timeout_seconds=settings.delivery_timeout_seconds)
        except (Rejected, TemporaryFailure) as exc:  # the URL is a secret (Slack's is): keep it out of the row
            raise type(exc)(str(exc).replace(url, "the alert URL"), result=exc.result) from None
    assert kind == EMAIL
    return _send_email(settings, key=key, document=document)


def build_alert_email(settings: Settings, *, key: str, document: dict[str, Any]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = settings.alert_email
    msg["Subject"] = f"[payhooks] {document['type']}: {document['text']}"[:200]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(key, settings.smtp_from)
    msg["X-Payhooks-Delivery"] = key
    facts = {k: v for k, v in document.items() if k not in ("type", "text")}
    msg.set_content(f"{document['text']}\n\n{json.dumps(facts, indent=2, sort_keys=True)}\n")
    return msg


def _send_email(settings: Settings, *, key: str, document: dict[str, Any]) -> Result:
    return send_message(settings, build_alert_email(settings, key=key, document=document), to=settings.alert_email)
