"""What a worker does with one event id: claim, resolve, handle, record. Exactly once in effect.

The claim (queued → processing) commits on its own, so a second message for
the same event finds nothing to do. The handlers, the attempt row and the new
status then commit in ONE transaction; a failure rolls the handlers back and
records the failed attempt with its next due time (or ``dead``).
"""
from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, select, text

from models import metrics, transitions
from models.settings import Settings
from models.tables import WebhookEvent
from receiver.providers.base import Adapter
from receiver.providers.registry import build_adapters
from workers.errors import BadEventData, Ignored, OrderNotFound, PermanentError
from workers.handlers import HandlerContext, handlers_for
from workers.normalise import Payment, extract
from workers.processout_api import ProcessOutClient
from workers.retry import RetrySchedule, schedules_from

log = logging.getLogger("payhooks.worker")
_events = WebhookEvent.__table__


@dataclass
class Runtime:
    """Everything one worker process needs, built once from settings after the fork."""

    settings: Settings
    engine: Engine
    adapters: dict[str, Adapter] = field(init=False)
    schedules: dict[str, RetrySchedule] = field(init=False)
    delivery_schedule: RetrySchedule = field(init=False)
    processout: ProcessOutClient = field(init=False)
    http: httpx.Client = field(init=False)
    worker_name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    pid: int = field(default_factory=os.getpid)

    def __post_init__(self) -> None:
        self.adapters = build_adapters(self.settings)
        self.schedules = schedules_from(self.settings)
        self.delivery_schedule = RetrySchedule.parse(self.settings.delivery_retry_schedule)
        self.processout = ProcessOutClient(self.settings)
        self.http = httpx.Client(follow_redirects=False)


def process_event(runtime: Runtime, event_id: int) -> str:
    """Handle one event; returns the status it ended in (or why nothing was done)."""
    engine = runtime.engine
    try:
        with engine.begin() as conn:
            claim = transitions.claim(conn, event_id, lease_seconds=runtime.settings.lease_seconds,
                                      worker=runtime.worker_name)
    except transitions.NotClaimable:
        log.info("event %s not queued: skipped", event_id, extra={"action": "event.not_claimable",
                                                                  "event_id": event_id})
        return "not-claimable"
    try:
        return _handle(runtime, claim)
    except transitions.TransitionError as exc:
        log.warning("%s", exc, extra={"action": "event.lease_lost", "event_id": event_id})
        return "lease-lost"


def _handle(runtime: Runtime, claim: transitions.Claim) -> str:
    started = time.perf_counter()
    try:
        status = _resolve_and_handle(runtime, claim)
    finally:
        metrics.HANDLER_SECONDS.labels(claim.provider).observe(time.perf_counter() - started)
    metrics.EVENT_ATTEMPTS.labels(claim.provider, status).inc()
    return status


def _resolve_and_handle(runtime: Runtime, claim: transitions.Claim) -> str:
    engine = runtime.engine
    with engine.connect() as conn:
        event = conn.execute(
            select(_events.c.provider, _events.c.event_type, _events.c.payload, _events.c.event_key)
            .where(_events.c.id == claim.event_id)
        ).one()
    try:
        event_type, payload = event.event_type, event.payload
        if event.provider == "processout":
            fetched = runtime.processout.fetch_event(event.event_key)
            with engine.begin() as conn:
                transitions.store_fetched(conn, claim, payload=fetched, event_type=fetched["name"])
            event_type, payload = fetched["name"], fetched
        with engine.begin() as conn:
            status, note, order_id = _run_handlers(runtime, conn, claim, event.provider, event_type, payload)
            transitions.finish(conn, claim, status=status, note=note, order_id=order_id)
    except transitions.TransitionError:
        raise
    except Exception as exc:  # every failure is recorded; permanent ones are not retried
        return _record_failure(runtime, claim, exc)
    log.info("event %s %s", claim.event_id, status,
             extra={"action": f"event.{status}", "event_id": claim.event_id, "provider": event.provider,
                    "attempt": claim.attempt})
    return status


def _run_handlers(runtime: Runtime, conn, claim: transitions.Claim, provider: str, event_type: str,
                  payload: Any) -> tuple[str, str | None, int | None]:
    kind = runtime.adapters[provider].kinds.get(event_type)
    handlers = handlers_for(kind) if kind else []
    if not handlers:
        return "ignored", f"no handler for {event_type}", None
    payment = extract(provider, event_type, payload)
    try:
        order = _lock_order(conn, provider, payment)
    except Ignored as exc:
        return "ignored", exc.reason, None
    ctx = HandlerContext(conn=conn, event_id=claim.event_id, provider=provider, event_type=event_type,
                         kind=kind, payment=payment, order=order)
    notes = [note for _, handler in handlers if (note := handler(ctx))]
    return "succeeded", "; ".join(notes) or None, order.id


def _lock_order(conn, provider: str, payment: Payment):
    if payment.payment_ref:
        order = conn.execute(
            text("SELECT * FROM orders WHERE provider = :p AND provider_payment_ref = :ref FOR UPDATE"),
            {"p": provider, "ref": payment.payment_ref},
        ).one_or_none()
    elif payment.alt_payment_id:  # Smartpay refund naming only the payment
        order = conn.execute(
            text("SELECT * FROM orders WHERE provider = :p AND provider_data -> 'payments' ? :pid FOR UPDATE"),
            {"p": provider, "pid": payment.alt_payment_id},
        ).one_or_none()
    else:
        raise BadEventData("the event names no payment reference")
    if order is not None:
        return order
    if provider == "yoco":  # Yoco sends every payment of the account: not ours
        raise Ignored(f"no order for Yoco checkout {payment.payment_ref}")
    raise OrderNotFound(f"{provider} payment {payment.payment_ref or payment.alt_payment_id}")


def _record_failure(runtime: Runtime, claim: transitions.Claim, exc: Exception) -> str:
    permanent = isinstance(exc, PermanentError)
    retry_in = None if permanent else runtime.schedules[claim.provider].delay_for(claim.tries)
    error = str(exc) or type(exc).__name__
    with runtime.engine.begin() as conn:
        status = transitions.fail(conn, claim, error=error, retry_in=retry_in,
                                  traceback=None if permanent else traceback.format_exc(limit=20))
    log.warning("event %s attempt %s failed (%s): %s", claim.event_id, claim.attempt, status, error,
                extra={"action": f"event.{status}", "event_id": claim.event_id,
                       "provider": claim.provider, "attempt": claim.attempt})
    return status
