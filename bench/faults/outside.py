"""The world around payhooks, run in the harness process: SMTP (with a login), the merchant, ProcessOut.

The SMTP sink and the merchant's HTTP endpoints are the integration tests'
(:mod:`tests.integration.merchant`); the SMTP server here also demands a login,
so the SMTP password is really used and can be looked for in the logs. The
fake ProcessOut API is :class:`tests.integration.stack.FakeProcessOut`.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.integration.merchant import MerchantServer, SmtpSink
from tests.integration.stack import FakeProcessOut


@dataclass
class HoldingSink(SmtpSink):
    """The tests' sink, able to hold one message's final reply: the sender is caught mid-send."""

    hold_s: float = 1.0
    armed: threading.Event = field(default_factory=threading.Event)
    held: queue.Queue[int] = field(default_factory=queue.Queue)
    """Client ports of the held senders."""

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's name
        reply = await super().handle_DATA(server, session, envelope)  # kept: the mail is delivered
        if self.armed.is_set():
            self.armed.clear()
            self.held.put(session.peer[1])
            await asyncio.sleep(self.hold_s)  # the sender waits for our 250, which may never reach it
        return reply


class MailServer:
    """A real SMTP server that requires ``username``/``password`` and keeps every message."""

    def __init__(self, *, username: str, password: str) -> None:
        self.sink = HoldingSink()
        self.logins: Counter[str] = Counter()
        with socket.socket() as probe:  # aiosmtpd checks readiness by connecting: no port 0
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        expected = LoginPassword(username.encode(), password.encode())
        # aiosmtpd's own AUTH code touches its deprecated Session.login_data, warning on every login
        logging.getLogger("mail.log").setLevel(logging.ERROR)

        def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = auth_data == expected
            self.logins["ok" if ok else "refused"] += 1
            return AuthResult(success=ok, handled=False)

        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port,
                                     authenticator=authenticate, auth_require_tls=False)
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


@dataclass
class Outside:
    """Everything payhooks talks to besides Postgres and the broker."""

    mail: MailServer
    merchant: MerchantServer = field(default_factory=MerchantServer)
    processout: FakeProcessOut = field(default_factory=FakeProcessOut)

    def http_keys(self) -> Counter[str]:
        """How many calls arrived per ``Idempotency-Key`` (fulfilment and SMS)."""
        return Counter(r.headers.get("idempotency-key", "") for r in list(self.merchant.received))

    def close(self) -> None:
        for closer in (self.mail.close, self.merchant.close, self.processout.close):
            try:
                closer()
            except (OSError, RuntimeError):  # best effort: the others still close
                continue
