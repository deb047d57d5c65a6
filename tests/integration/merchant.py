"""The outside world of deliveries, run locally: an SMTP server and the merchant's HTTP endpoints."""
from __future__ import annotations

import email
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps every message it accepts."""

    messages: list[Message] = field(default_factory=list)
    on_data: Callable[[Message], None] | None = None
    refuse_with: str | None = None  # e.g. "550 5.1.1 no such user"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.refuse_with:
            return self.refuse_with
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        if self.on_data is not None:
            self.on_data(message)  # e.g. kill the worker: the mail arrived, the commit never will
        self.messages.append(message)
        return "250 2.0.0 Ok: queued as FAKE123"


class SmtpServer:
    def __init__(self) -> None:
        self.sink = SmtpSink()
        with socket.socket() as probe:  # aiosmtpd checks readiness by connecting: no port 0
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class MerchantServer:
    """The merchant's fulfilment service and SMS gateway: records requests, answers as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []  # status codes to answer first, in order; then 200
        self.delays: list[float] = []  # seconds to wait before answering, per request, in order
        self.on_request: Callable[[Received], None] | None = None
        merchant = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                merchant.received.append(got)
                if merchant.on_request is not None:
                    merchant.on_request(got)
                if merchant.delays:
                    time.sleep(merchant.delays.pop(0))
                status = merchant.answers.pop(0) if merchant.answers else 200
                data = json.dumps({"ok": status < 300}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the caller timed out or died
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
