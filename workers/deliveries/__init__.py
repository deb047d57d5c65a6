"""What a worker does with one delivery id: claim, send, record the try.

Sending cannot share a transaction with the database, so a delivery is sent
at least once: a worker that dies after the send and before the commit leaves
a lease that runs out, and the retry carries the same key (the email's
Message-ID, the call's Idempotency-Key and webhook-id), so the other side can
tell it is the same message. No second delivery row can exist for one effect.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text

from models import deliveries, metrics
from models.deliveries import Result
from models.redaction import redact
from workers.deliveries.alerts import send_alert
from workers.deliveries.senders import (
    NotConfigured,
    Rejected,
    TemporaryFailure,
    send_email,
    send_fulfilment,
    send_sms,
    unsendable,
)

log = logging.getLogger("payhooks.deliveries")


def send_delivery(runtime: Any, delivery_id: int) -> str:
    """Send one delivery; returns the status it ended in (or why nothing was done)."""
    engine, settings = runtime.engine, runtime.settings
    try:
        with engine.begin() as conn:
            claim = deliveries.claim(conn, delivery_id, lease_seconds=settings.lease_seconds,
                                     worker=runtime.worker_name)
            row = conn.execute(text(
                """SELECT d.event_id, d.alert_id, d.handler, d.kind, d.payload, o.customer_email, o.customer_phone
                     FROM deliveries d LEFT JOIN orders o ON o.id = d.order_id WHERE d.id = :id"""),
                {"id": delivery_id}).one()
    except deliveries.NotClaimable:
        log.info("delivery %s not queued: skipped", delivery_id,
                 extra={"action": "delivery.not_claimable", "delivery_id": delivery_id})
        return "not-claimable"
    key = (f"alert:{row.alert_id}:{row.kind}" if row.alert_id is not None
           else f"{row.event_id}:{row.handler}:{row.kind}")
    try:
        status, result, error = _send(runtime, key=key, row=row)
    except Exception as exc:  # connection refused, timeout, template bug: retried
        status, result, error = "failed", Result(), f"{type(exc).__name__}: {exc}"
    error = redact(error) if error else error  # a URL or secret inside an exception never reaches the row
    try:
        with engine.begin() as conn:
            if status in ("succeeded", "skipped"):
                deliveries.finish(conn, claim, status=status, result=result, note=error)
            else:
                retry_in = None if status == "rejected" else runtime.delivery_schedule.delay_for(claim.tries)
                status = deliveries.fail(conn, claim, error=error or "failed", retry_in=retry_in, result=result)
    except deliveries.TransitionError as exc:
        log.warning("%s", exc, extra={"action": "delivery.lease_lost", "delivery_id": delivery_id})
        return "lease-lost"
    metrics.DELIVERIES.labels(row.kind, status).inc()
    log.info("delivery %s (%s) %s", delivery_id, row.kind, status,
             extra={"action": f"delivery.{status}", "delivery_id": delivery_id, "event_id": row.event_id,
                    "kind": row.kind, "attempt": claim.attempt})
    return status


def _send(runtime: Any, *, key: str, row: Any) -> tuple[str, Result, str | None]:
    settings = runtime.settings
    try:
        if row.kind.startswith("alert."):
            result = send_alert(settings, runtime.http, key=key, kind=row.kind, document=row.payload)
        elif row.kind.startswith("email."):
            result = send_email(settings, key=key, kind=row.kind, payload=row.payload, to=row.customer_email)
        elif row.kind.startswith("sms."):
            result = send_sms(settings, runtime.http, key=key, kind=row.kind, payload=row.payload,
                              to=row.customer_phone)
        elif row.kind == "fulfilment":
            result = send_fulfilment(settings, runtime.http, key=key, payload=row.payload, event_id=row.event_id)
        else:
            raise NotConfigured(unsendable(settings, kind=row.kind, email=None, phone=None))
    except NotConfigured as exc:
        return "skipped", Result(), str(exc)
    except Rejected as exc:
        return "rejected", exc.result, str(exc)
    except TemporaryFailure as exc:
        return "failed", exc.result, str(exc)
    return "succeeded", result, None
