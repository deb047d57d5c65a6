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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, text

from models import metrics, transitions
from models.redaction import redact
from models.retry import RetrySchedule, schedules_from
from models.settings import Settings
from providers.base import Adapter
from providers.registry import build_adapters
from workers.deliveries.senders import unsendable
from workers.errors import BadEventData, Ignored, OrderNotFound, PermanentError, format_traceback
from workers.batch import Batch, Redo
from workers.handlers import HandlerContext, handlers_for, only_builtins
from workers.handlers.loading import load_handlers
from workers.normalise import Payment, extract
from workers.processout_api import ProcessOutClient

log = logging.getLogger("payhooks.worker")
MAX_CONCURRENT_FETCHES = 8


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
    fetchers: ThreadPoolExecutor = field(init=False)
    """Threads that fetch a batch's ProcessOut events concurrently (kept, not started per batch)."""
    worker_name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    pid: int = field(default_factory=os.getpid)

    def __post_init__(self) -> None:
        load_handlers()  # the built-in ones; make_celery loaded PAYHOOKS_HANDLER_MODULES already
        self.adapters = build_adapters(self.settings)
        self.schedules = schedules_from(self.settings)
        self.delivery_schedule = RetrySchedule.parse(self.settings.delivery_retry_schedule)
        self.processout = ProcessOutClient(self.settings)
        self.http = httpx.Client(follow_redirects=False)
        self.fetchers = ThreadPoolExecutor(max_workers=MAX_CONCURRENT_FETCHES, thread_name_prefix="fetch")


def process_event(runtime: Runtime, event_id: int) -> str:
    """Handle one event; returns the status it ended in (or why nothing was done)."""
    return process_events(runtime, [event_id])[event_id]


def process_events(runtime: Runtime, event_ids: list[int]) -> dict[int, str]:
    """Handle a batch of events: one claim, then one transaction for all of them.

    A failing event still costs only itself (see :func:`_handle_batch`).

    Returns each id's outcome: the status it ended in, ``not-claimable`` (a
    duplicate message, or not due any more) or ``lease-lost``.
    """
    with runtime.engine.begin() as conn:  # commits on its own: a second message finds nothing to do
        claimed = transitions.claim_batch(conn, event_ids, lease_seconds=runtime.settings.lease_seconds,
                                          worker=runtime.worker_name)
    claims = [claim for claim, _ in claimed]
    events = {claim.event_id: row for claim, row in claimed}
    outcomes = {event_id: "not-claimable" for event_id in event_ids}
    for event_id in set(event_ids) - {c.event_id for c in claims}:
        log.info("event %s not queued: skipped", event_id,
                 extra={"action": "event.not_claimable", "event_id": event_id})
    if not claims:
        return outcomes
    # Resolve before the transaction (a slow provider API holds no database lock), and
    # concurrently: a batch waits about one fetch, not the sum, within its time limit.
    fetching = [claim.event_id for claim in claims if events[claim.event_id].provider == "processout"]
    fetched = dict(zip(fetching, runtime.fetchers.map(lambda event_id: _resolve(runtime, events[event_id]),
                                                      fetching), strict=True)) if len(fetching) > 1 else {}
    resolved = {claim.event_id: fetched[claim.event_id] if claim.event_id in fetched
                else _resolve(runtime, events[claim.event_id]) for claim in claims}
    done = _handle_batch(runtime, claims, events, resolved)
    for claim, status, _, _ in done:
        outcomes[claim.event_id] = status
    for claim, status, error, seconds in done:  # reported once committed
        _report(claim, status, error, seconds)
    return outcomes


Handled = tuple[transitions.Claim, str, str | None, float]
"""(claim, status, error, seconds spent handling it)."""


def _handle_batch(runtime: Runtime, claims: list[transitions.Claim], events: dict[int, Any],
                  resolved: dict[int, Resolved]) -> list[Handled]:
    """Every event of the batch in one transaction.

    Set-based first (:mod:`workers.batch`): a fixed number of statements for
    the whole batch, a failing event recorded without touching the others.
    When that path cannot vouch for the batch (custom handlers, a lease lost,
    a refund already recorded), its transaction is rolled back, nothing of it
    remains, and the batch runs event by event with a savepoint each.
    """
    kinds = {claim.event_id: _kind(runtime, events[claim.event_id].provider, resolved[claim.event_id])
             for claim in claims}
    if all(only_builtins(kind) for kind in kinds.values() if kind):
        try:
            with runtime.engine.begin() as conn:
                batch = Batch(conn=conn, orders=_lock_orders(runtime, conn, claims, events, resolved),
                              lock_order=_lock_order, unsendable=partial(unsendable, runtime.settings),
                              retry_in=lambda claim, _: runtime.schedules[claim.provider].delay_for(claim.tries))
                for claim in claims:
                    batch.decide(claim, events[claim.event_id].provider, kinds[claim.event_id],
                                 resolved[claim.event_id])
                batch.write(worker=runtime.worker_name)
            return [(d.outcome.claim, d.outcome.status,
                     d.outcome.note if d.outcome.status in ("retrying", "dead") else None, d.seconds)
                    for d in batch.decided]
        except Exception as exc:  # Redo, or a statement that failed: nothing of it remains
            log.log(logging.INFO if isinstance(exc, Redo) else logging.WARNING, "batch redone event by event: %s",
                    exc, exc_info=not isinstance(exc, Redo),
                    extra={"action": "batch.redone", "reason": str(exc) or type(exc).__name__})
    with runtime.engine.begin() as conn:
        orders = _lock_orders(runtime, conn, claims, events, resolved)
        return [_timed(claim, lambda c=claim: _handle(runtime, conn, c, events[c.event_id], resolved[c.event_id],
                                                      orders))
                for claim in claims]


def _kind(runtime: Runtime, provider: str, resolved: Resolved) -> str | None:
    if isinstance(resolved, Exception):
        return None
    return runtime.adapters[provider].kinds.get(resolved[0])


def _timed(claim: transitions.Claim, handle) -> Handled:
    started = time.perf_counter()
    status, error = handle()
    return claim, status, error, time.perf_counter() - started


Resolved = tuple[str, Any, bool] | Exception
"""(event type, payload, whether it was fetched from the provider), or why resolving failed."""


def _resolve(runtime: Runtime, event: Any) -> Resolved:
    if event.provider != "processout":
        return event.event_type, event.payload, False
    try:
        fetched = runtime.processout.fetch_event(event.event_key)
    except Exception as exc:  # sorted later: 404 is permanent, the rest retried
        return exc
    return fetched["name"], fetched, True


def _handle(runtime: Runtime, conn: Connection, claim: transitions.Claim, event: Any,
            resolved: Resolved, orders: Orders) -> tuple[str, str | None]:
    """One event inside the batch's transaction: its writes commit together or not at all."""
    try:
        if isinstance(resolved, Exception):
            raise resolved
        event_type, payload, fetched = resolved
        if fetched:  # kept even when the handler then fails
            transitions.store_fetched(conn, claim, payload=payload, event_type=event_type)
        with conn.begin_nested():
            status, note, order_id = _run_handlers(runtime, conn, claim, event.provider, event_type, payload,
                                                   orders)
            transitions.finish(conn, claim, status=status, note=note, order_id=order_id)
        return status, None
    except transitions.TransitionError as exc:
        return "lease-lost", str(exc)
    except Exception as exc:  # every failure is recorded; permanent ones are not retried
        return _record_failure(runtime, conn, claim, exc)


def _report(claim: transitions.Claim, status: str, error: str | None, seconds: float) -> None:
    metrics.HANDLER_SECONDS.labels(claim.provider).observe(seconds)
    extra = {"action": f"event.{status.replace('-', '_')}", "event_id": claim.event_id,
             "provider": claim.provider, "attempt": claim.attempt}
    if status == "lease-lost":
        log.warning("%s", error, extra=extra)
        return
    metrics.EVENT_ATTEMPTS.labels(claim.provider, status).inc()
    if error:
        log.warning("event %s attempt %s failed (%s): %s", claim.event_id, claim.attempt, status, error,
                    extra=extra)
    else:
        log.info("event %s %s", claim.event_id, status, extra=extra)


def _run_handlers(runtime: Runtime, conn, claim: transitions.Claim, provider: str, event_type: str,
                  payload: Any, orders: Orders) -> tuple[str, str | None, int | None]:
    kind = runtime.adapters[provider].kinds.get(event_type)
    handlers = handlers_for(kind) if kind else []
    if not handlers:
        return "ignored", f"no handler for {event_type}", None
    payment = extract(provider, event_type, payload)
    try:
        order = orders.pop((provider, payment.payment_ref), None) or _lock_order(conn, provider, payment)
    except Ignored as exc:
        return "ignored", exc.reason, None
    ctx = HandlerContext(conn=conn, event_id=claim.event_id, provider=provider, event_type=event_type,
                         kind=kind, payment=payment, order=order,
                         unsendable=lambda delivery_kind: unsendable(
                             runtime.settings, kind=delivery_kind, email=order.customer_email,
                             phone=order.customer_phone))
    try:
        notes = [note for _, handler in handlers if (note := handler(ctx))]
    except Exception as exc:
        exc.payhooks_order_id = order.id  # type: ignore[attr-defined]  (the failure is linked to it too)
        raise
    return "succeeded", "; ".join(notes) or None, order.id


Orders = dict[tuple[str, str | None], Any]
"""Order rows locked for a batch, by (provider, payment reference); each is handed out once."""


def _lock_orders(runtime: Runtime, conn: Connection, claims: list[transitions.Claim], events: dict[int, Any],
                 resolved: dict[int, Resolved]) -> Orders:
    """Lock the orders a batch names in one statement, in id order (one round trip, not one per event).

    A row serves the first event that asks for it; a later event of the same
    batch for the same order reads it again, so it sees what the first changed.
    """
    keys: list[tuple[str, str]] = []
    for claim in claims:
        result, provider = resolved[claim.event_id], events[claim.event_id].provider
        if isinstance(result, Exception):
            continue
        event_type, payload, _ = result
        kind = runtime.adapters[provider].kinds.get(event_type)
        if not kind or not handlers_for(kind):
            continue
        try:
            payment = extract(provider, event_type, payload)
        except Exception:  # the handler will meet the same error and record it
            continue
        if payment.payment_ref:
            keys.append((provider, payment.payment_ref))
    if not keys:
        return {}
    rows = conn.exec_driver_sql(
        """SELECT * FROM orders
            WHERE (provider, provider_payment_ref) IN (SELECT * FROM unnest(%(p)s::text[], %(r)s::text[]))
            ORDER BY id FOR UPDATE""",
        {"p": [p for p, _ in keys], "r": [r for _, r in keys]},
    )
    return {(row.provider, row.provider_payment_ref): row for row in rows}


def _lock_order(conn, provider: str, payment: Payment):
    if payment.payment_ref:
        order = conn.exec_driver_sql(
            "SELECT * FROM orders WHERE provider = %(p)s AND provider_payment_ref = %(ref)s FOR UPDATE",
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


def _record_failure(runtime: Runtime, conn: Connection, claim: transitions.Claim,
                    exc: Exception) -> tuple[str, str]:
    permanent = isinstance(exc, PermanentError)
    retry_in = None if permanent else runtime.schedules[claim.provider].delay_for(claim.tries)
    error = redact(str(exc) or type(exc).__name__)
    try:
        with conn.begin_nested():
            status = transitions.fail(conn, claim, error=error, retry_in=retry_in,
                                      traceback=None if permanent else redact(format_traceback(exc)))
            transitions.link_order(conn, claim, order_id=getattr(exc, "payhooks_order_id", None))
    except transitions.TransitionError as lost:
        return "lease-lost", str(lost)
    return status, error
