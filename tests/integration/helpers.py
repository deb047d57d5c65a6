"""What providers send, for the integration tests: signed requests, refund events; posting them, and
what the receiver stored (counted, or held at a table lock)."""
from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from werkzeug.serving import make_server

from models.db import libpq_url
from models.settings import Settings
from models.tables import WebhookEvent
from providers.money import minor_to_major
from providers.registry import build_adapters
from sandbox.samples import sample_body, sample_processout_event
from testkit.processes import wait_for
from tests.conftest import PROCESSOUT_BASIC_AUTH, TEST_SECRETS, make_settings

EVENT_TYPES = {"smartpay": "order.authorized", "processout": "transaction.captured", "senfenico": "checkout.success",
               "yoco": "payment.succeeded", "shadhinpay": "payment.completed"}
"""Each provider's canonical payment success."""
CURRENCY = {"smartpay": "JPY", "processout": "USD", "senfenico": "XOF", "yoco": "ZAR", "shadhinpay": "BDT"}
SIGNATURE_HEADERS = {"smartpay": "smartpay-signature", "processout": "authorization", "senfenico": "x-webhook-hash",
                     "yoco": "webhook-signature", "shadhinpay": "x-shadhinpay-signature"}
"""The header that carries each provider's signature (or credentials)."""
CLOSED_PORT_URL = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
"""A database nobody answers for: a receiver whose database is down."""


def signing_secret(provider: str) -> str:
    return PROCESSOUT_BASIC_AUTH if provider == "processout" else TEST_SECRETS[provider][0]


def signed_request(
    settings: Settings, provider: str, *, body: bytes | None = None, event_type: str | None = None,
    order_ref: str = "ord_1", amount_minor: int = 1000, event_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A body (a realistic sample unless given) and the headers the provider would send."""
    if body is None:
        body = sample_body(provider, event_type or EVENT_TYPES[provider], order_ref=order_ref,
                           amount_minor=amount_minor, event_id=event_id)
    headers = build_adapters(settings)[provider].sign(body=body, secret=signing_secret(provider))
    return body, {"Content-Type": "application/json", **headers}


def post_signed(client, settings: Settings, provider: str, **request: Any) -> Any:
    """``signed_request(settings, provider, **request)`` posted to the provider's endpoint: the response."""
    body, headers = signed_request(settings, provider, **request)
    return client.post(f"/webhooks/{provider}", data=body, headers=headers)


def secret_forms() -> list[str]:
    """Each test secret as it travels: plain, the whsec_ key part, the Basic value, its password alone."""
    return [*make_settings().secret_values(), TEST_SECRETS["yoco"][0].removeprefix("whsec_"),
            PROCESSOUT_BASIC_AUTH.partition(":")[2], base64.b64encode(PROCESSOUT_BASIC_AUTH.encode()).decode()]


def count_events(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(WebhookEvent)).scalar_one()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


@contextmanager
def live_server(app) -> Iterator[str]:
    """The app on a real threaded HTTP server on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP answer read from a raw socket: (status, body); status 0 when the server closed without one."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
        data += chunk
    if not data.startswith(b"HTTP/"):
        return 0, b""
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), b"0"))
    while len(rest) < length and (chunk := sock.recv(65536)):
        rest += chunk
    return int(head.split(b" ", 2)[1]), rest


REFUND_TYPES = {"smartpay": "refund.created", "processout": "transaction.refunded", "yoco": "refund.succeeded",
                "shadhinpay": "payment.refunded"}


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def refund_body(provider: str, *, event_id: str, refund_id: str | None, order_ref: str, amount_minor: int,
                processout: Any = None, at: str = "2026-11-27T10:00:00Z") -> bytes:
    """A refund event of ``provider`` for ``refund_id``; ProcessOut's full event goes to the fake API."""
    currency = CURRENCY[provider]
    if provider == "smartpay":
        return _compact({"id": event_id, "object": "event", "createdAt": 1795770000000, "test": True,
                         "eventData": {"type": "refund.created", "version": "2022-02-18", "data": {
                             "id": refund_id, "object": "refund", "order": order_ref, "amount": amount_minor,
                             "currency": currency, "payment": "payment_test_1", "status": "succeeded"}}})
    if provider == "yoco":
        return _compact({"id": event_id, "type": "refund.succeeded", "createdDate": at, "payload": {
            "id": refund_id, "type": "refund", "createdDate": at, "amount": amount_minor, "currency": currency,
            "status": "succeeded", "mode": "test", "metadata": {"checkoutId": order_ref}, "paymentId": "p_1"}})
    if provider == "shadhinpay":  # the documented envelope, no eventId: keyed by its signed fields
        data = {"payment_id": order_ref, "status": "REFUNDED", "amount": minor_to_major(amount_minor, currency),
                "currency": currency, "transaction_id": f"TXN-{event_id}"}
        if refund_id is not None:
            data["refund_id"] = refund_id
        return _compact({"event": "payment.refunded", "timestamp": at, "data": data})
    if provider == "processout":
        event = sample_processout_event(event_id=event_id, event_type="transaction.refunded", order_ref=order_ref,
                                        amount_minor=amount_minor, refund_id=refund_id)["event"]
        processout.events[event_id] = event
        return _compact({"event_id": event_id, "event_type": "transaction.refunded"})
    raise ValueError(f"{provider} has no refunds")


WAITING = """SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE c.relname = 'webhook_events' AND NOT l.granted"""
"""How many lock requests on webhook_events wait (for :func:`inserts_held`)."""


@contextmanager
def inserts_held(database_url: str) -> Iterator[Callable[[], None]]:
    """SHARE-lock ``webhook_events`` (reads pass, INSERTs wait) until the block ends.

    Yields ``wait_blocked()``: returns once an INSERT is waiting on the lock.
    Keep the block shorter than ``db_timeout_seconds`` (the INSERT's lock_timeout).
    """
    holder = psycopg.connect(libpq_url(database_url))
    watcher = psycopg.connect(libpq_url(database_url), autocommit=True)
    try:
        holder.execute("LOCK TABLE webhook_events IN SHARE MODE")

        def wait_blocked() -> None:
            wait_for(lambda: watcher.execute(WAITING).fetchone()[0] >= 1, timeout=10,
                     message="an INSERT waiting on the table lock")

        yield wait_blocked
    finally:
        holder.rollback()
        holder.close()
        watcher.close()
