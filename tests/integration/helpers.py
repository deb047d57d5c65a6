"""Building signed requests the way each provider does, for the integration tests."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, func, select
from werkzeug.serving import make_server

from models.settings import Settings
from models.tables import WebhookEvent
from providers.registry import build_adapters
from sandbox.samples import sample_body
from tests.conftest import PROCESSOUT_BASIC_AUTH, TEST_SECRETS

EVENT_TYPES = {
    "smartpay": "order.authorized",
    "processout": "transaction.captured",
    "senfenico": "checkout.success",
    "yoco": "payment.succeeded",
    "shadhinpay": "payment.completed",
}


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


def count_events(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(WebhookEvent)).scalar_one()


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
