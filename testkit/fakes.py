"""One fake per outside service: ProcessOut's API, the merchant's HTTP endpoints, SMTP servers.

ProcessOut has two: :class:`FakeProcessOut` in a thread of the caller, with failures, delays and every
request recorded; :func:`start_simulator`, `payhooks up`'s own simulator as a process, so it never
competes with a bench's load generator for the GIL.
"""
from __future__ import annotations

import asyncio
import base64
import email
import json
import logging
import queue
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from testkit.processes import (
    REPO_ROOT,
    ProcessSet,
    env_without_payhooks,
    free_port,
    wait_http_ok,
)


class _JsonHandler(BaseHTTPRequestHandler):
    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
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


class _Served:
    """A ThreadingHTTPServer on a loopback port, served by a daemon thread."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeProcessOut(_Served):
    """ProcessOut's ``GET /events/{id}`` and ``GET /events`` (paged, newest first).

    ``api_auth`` (``project_id:project_secret``) is what ``GET /events`` demands; None refuses every list.
    """

    def __init__(self, api_auth: str | None = None) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, list[int]] = {}  # status codes to answer first, per event id
        self.delays: dict[str, float] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.list_requests: list[dict[str, str]] = []  # query of each `GET /events`
        self.list_failures: list[int] = []  # per `GET /events`, in order: a status code to fail with, 0 to answer
        self.api_authorization = f"Basic {base64.b64encode(api_auth.encode()).decode()}" if api_auth else None
        fake = self

        class Handler(_JsonHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path.split("?")[0] == "/events":
                    self._list()
                    return
                event_id = self.path.rsplit("/", 1)[-1]
                fake.requests.append((event_id, self.headers.get("Authorization")))
                time.sleep(fake.delays.get(event_id, 0))
                codes = fake.failures.get(event_id)
                if codes:
                    self._answer(codes.pop(0), {"error": "injected"})
                elif event_id in fake.events:
                    self._answer(200, {"event": fake.events[event_id]})
                else:
                    self._answer(404, {"success": False, "message": "not found"})

            def _list(self) -> None:
                """ProcessOut's paging: ``limit``, and ``start_after`` the last id of the previous page."""
                query = dict(parse_qsl(urlsplit(self.path).query))
                fake.list_requests.append(query)
                if fake.api_authorization is None or self.headers.get("Authorization") != fake.api_authorization:
                    self._answer(401, {"success": False, "message": "bad credentials"})
                    return
                code = fake.list_failures.pop(0) if fake.list_failures else 0
                if code:
                    self._answer(code, {"success": False, "message": "injected"})
                    return
                ordered = sorted(fake.events.values(), key=lambda e: (e["fired_at"], e["id"]), reverse=True)
                ids = [e["id"] for e in ordered]
                start = ids.index(query["start_after"]) + 1 if query.get("start_after") in ids else 0
                limit = int(query.get("limit", 10))
                page = ordered[start:start + limit]
                self._answer(200, {"success": True, "events": page, "has_more": start + limit < len(ordered)})

        self._serve(Handler)


@dataclass(frozen=True)
class Simulator:
    """Where :func:`start_simulator`'s process listens and the credentials it expects."""

    url: str
    project_id: str
    project_secret: str

    def env(self) -> dict[str, str]:
        """The PAYHOOKS_PROCESSOUT_* values that point payhooks at it."""
        return {
            "PAYHOOKS_PROCESSOUT_API_URL": self.url,
            "PAYHOOKS_PROCESSOUT_PROJECT_ID": self.project_id,
            "PAYHOOKS_PROCESSOUT_PROJECT_SECRET": self.project_secret,
        }


def start_simulator(processes: ProcessSet, events: dict[str, dict[str, Any]], *, workdir: Path) -> Simulator:
    """Write ``events`` (id → event object) to a file and start the simulator on a free port, ready.

    ``GET /healthz`` answers 200 once it listens; unknown ids get 404, a wrong Basic auth 401.
    """
    events_file = workdir / "processout-events.json"
    events_file.write_text(json.dumps(events))
    fake = Simulator(url=f"http://127.0.0.1:{free_port()}", project_id="proj_bench",
                     project_secret=secrets.token_urlsafe(16))
    port = fake.url.rsplit(":", 1)[1]
    processes.start("fake-processout", [sys.executable, "-m", "sandbox.processout_sim", "--port", port,
                                        "--events", str(events_file),
                                        "--auth", f"{fake.project_id}:{fake.project_secret}"],
                    env=env_without_payhooks(PYTHONPATH=str(REPO_ROOT)), cwd=workdir)
    wait_http_ok(f"{fake.url}/healthz", timeout=30, alive=lambda: [n for n in processes.exited()
                                                                    if n == "fake-processout"])
    return fake


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class MerchantServer(_Served):
    """The merchant's fulfilment service and SMS gateway: records requests, answers as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []  # status codes to answer first, in order; then 200
        self.delays: list[float] = []  # seconds to wait before answering, per request, in order
        self.on_request: Callable[[Received], None] | None = None
        merchant = self

        class Handler(_JsonHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                merchant.received.append(got)
                if merchant.on_request is not None:
                    merchant.on_request(got)
                if merchant.delays:
                    time.sleep(merchant.delays.pop(0))
                status = merchant.answers.pop(0) if merchant.answers else 200
                self._answer(status, {"ok": status < 300})

        self._serve(Handler)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    def idempotency_keys(self) -> Counter[str]:
        """How many calls arrived per ``Idempotency-Key`` (fulfilment and SMS)."""
        return Counter(r.headers.get("idempotency-key", "") for r in list(self.received))


@dataclass
class SmtpSink:
    """A real SMTP server's handler (aiosmtpd) that keeps every message it accepts.

    Armed (``armed.set()``), it holds the next message's final reply for ``hold_s``
    and puts the sender's client port in ``held``: the sender is caught mid-send.
    """

    messages: list[Message] = field(default_factory=list)
    on_data: Callable[[Message], None] | None = None
    refuse_with: str | None = None  # e.g. "550 5.1.1 no such user"
    hold_s: float = 1.0
    armed: threading.Event = field(default_factory=threading.Event)
    held: queue.Queue[int] = field(default_factory=queue.Queue)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.refuse_with:
            return self.refuse_with
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        if self.on_data is not None:
            self.on_data(message)  # e.g. kill the worker: the mail arrived, the commit never will
        self.messages.append(message)
        if self.armed.is_set():  # kept: the mail is delivered
            self.armed.clear()
            self.held.put(session.peer[1])
            await asyncio.sleep(self.hold_s)  # the sender waits for our 250, which may never reach it
        return "250 2.0.0 Ok: queued as FAKE123"


class SmtpServer:
    """A real SMTP server on a free port; with ``username``/``password`` it demands that login."""

    def __init__(self, *, username: str | None = None, password: str | None = None) -> None:
        self.sink = SmtpSink()
        self.port = free_port()  # aiosmtpd checks readiness by connecting: no port 0
        options: dict[str, Any] = {}
        if username is not None and password is not None:
            expected = LoginPassword(username.encode(), password.encode())
            # aiosmtpd's own AUTH code touches its deprecated Session.login_data, warning on every login
            logging.getLogger("mail.log").setLevel(logging.ERROR)

            def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
                return AuthResult(success=auth_data == expected, handled=False)

            options = {"authenticator": authenticate, "auth_require_tls": False}
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    def catch_sender(self, *, timeout_s: float) -> int | None:
        """Hold the next message's reply; return the sender's client port (None if none came in time)."""
        while not self.sink.held.empty():  # a sender caught after an earlier call gave up waiting
            self.sink.held.get_nowait()
        self.sink.armed.set()
        try:
            return self.sink.held.get(timeout=timeout_s)
        except queue.Empty:
            self.sink.armed.clear()
            return None

    def delivery_keys(self) -> Counter[str]:
        """How many messages arrived per delivery key (``X-Payhooks-Delivery``)."""
        return Counter(str(m["X-Payhooks-Delivery"]) for m in list(self.sink.messages))

    def message_ids(self) -> dict[str, set[str]]:
        """Delivery key → the Message-IDs its messages carried (one, when resends keep it)."""
        found: dict[str, set[str]] = {}
        for message in list(self.sink.messages):
            found.setdefault(str(message["X-Payhooks-Delivery"]), set()).add(str(message["Message-ID"]))
        return found

    def close(self) -> None:
        self.controller.stop()
