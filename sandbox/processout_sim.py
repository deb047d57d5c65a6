"""A local ProcessOut API for `payhooks up`, the benchmarks and the tests (as `stripe-mock` serves Stripe's).

ProcessOut's webhook carries only an event id; the worker fetches the event
back with ``GET /events/{id}`` and the project's Basic credentials. This
simulator answers that call the way the real API does (401 on wrong
credentials, 404 for an unknown id, ``{"success": true, "event": {…}}``),
from events registered with ``POST /_simulator/events`` (not part of
ProcessOut's API; same credentials; body: the event object). `payhooks send
processout` registers the full event there, then posts the thin notification.

Only `payhooks up` points workers at it (``PAYHOOKS_PROCESSOUT_API_URL`` in
its children's environment and its ``runtime.env``); the setting's default is
the real API. Registered events are kept in a JSON file when one is given,
so they survive a restart of `up`.

Standalone: ``python -m sandbox.processout_sim --port P --auth ID:SECRET [--events FILE]``.
"""
from __future__ import annotations

import argparse
import base64
import hmac
import json
import signal
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

REGISTER_PATH = "/_simulator/events"
MAX_REGISTER_BYTES = 256 * 1024


class EventStore:
    """Events by id, optionally kept in a JSON file (rewritten on each registration)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.events: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            self.events = json.loads(path.read_text() or "{}")

    def get(self, event_id: str) -> dict[str, Any] | None:
        return self.events.get(event_id)

    def put(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events[event["id"]] = event
            if self.path is not None:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self.events))
                tmp.replace(self.path)


def _valid_event(value: Any) -> dict[str, Any] | None:
    event = value.get("event", value) if isinstance(value, dict) else None
    if isinstance(event, dict) and isinstance(event.get("id"), str) and event["id"] \
            and isinstance(event.get("name"), str):
        return event
    return None


def make_handler(store: EventStore, auth: str) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(auth.encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive for the workers' httpx clients

        def setup(self) -> None:
            super().setup()
            # The headers and the body go out in two writes; with Nagle on, the body waits
            # for the client's delayed ACK (40 ms on Linux), which a real API does not add.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _authorised(self) -> bool:
            given = self.headers.get("Authorization") or ""
            if hmac.compare_digest(given.encode(), expected.encode()):
                return True
            self._answer(401, {"success": False, "message": "bad project credentials", "error_type":
                               "request.authentication.invalid"})
            return False

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/healthz":
                return self._answer(200, {"ok": True})
            if not self.path.startswith("/events/"):
                return self._answer(404, {"success": False, "message": "no such route"})
            if not self._authorised():
                return None
            event = store.get(unquote(self.path.removeprefix("/events/")))
            if event is None:
                return self._answer(404, {"success": False, "message": "not found",
                                          "error_type": "resource.event.not-found"})
            return self._answer(200, {"success": True, "event": event})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_REGISTER_BYTES + 1))
            if self.path != REGISTER_PATH:
                return self._answer(404, {"success": False, "message": "no such route"})
            if not self._authorised():
                return None
            try:
                event = _valid_event(json.loads(body)) if len(body) <= MAX_REGISTER_BYTES else None
            except ValueError:
                event = None
            if event is None:
                return self._answer(400, {"success": False,
                                          "message": 'expected an event: {"id": "ev_…", "name": "…", "data": {…}}'})
            store.put(event)
            return self._answer(201, {"success": True, "event": event})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class Simulator:
    """The simulator on a loopback port, served by a daemon thread of the calling process."""

    def __init__(self, *, auth: str, events_file: Path | None = None, port: int = 0) -> None:
        self.store = EventStore(events_file)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.store, auth))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="processout-sim", daemon=True)

    def start(self) -> Simulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def register(*, simulator_url: str, event: dict[str, Any], project_id: str, project_secret: str,
             post: Callable[..., Any] | None = None) -> None:
    """Register ``event`` with a running simulator (what `payhooks send processout` does first)."""
    import httpx

    response = (post or httpx.post)(f"{simulator_url.rstrip('/')}{REGISTER_PATH}", json=event,
                                    auth=(project_id, project_secret), timeout=10.0)
    response.raise_for_status()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", type=Path, default=None, help="JSON file of events by id (kept up to date)")
    parser.add_argument("--auth", required=True, help="project_id:project_secret")
    args = parser.parse_args(argv)
    simulator = Simulator(auth=args.auth, events_file=args.events, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        simulator.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.server.server_close()


if __name__ == "__main__":
    main()
