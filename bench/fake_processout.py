"""A local ProcessOut API for benchmarks: ``GET /events/{id}`` from a JSON file.

Run it as its own process (so it never competes with the load generator for
the GIL): ``python -m bench.fake_processout --port P --events FILE --auth ID:SECRET``.
``GET /healthz`` answers 200 once it listens. Unknown ids get 404, a wrong
Basic auth 401, as the real API would.
"""
from __future__ import annotations

import argparse
import base64
import json
import secrets
import signal
import socket
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import ProcessSet, env_without_payhooks, free_port, wait_http_ok


@dataclass(frozen=True)
class FakeProcessOut:
    """Where the fake listens and the credentials it expects (PAYHOOKS_PROCESSOUT_* values)."""

    url: str
    project_id: str
    project_secret: str

    def env(self) -> dict[str, str]:
        return {
            "PAYHOOKS_PROCESSOUT_API_URL": self.url,
            "PAYHOOKS_PROCESSOUT_PROJECT_ID": self.project_id,
            "PAYHOOKS_PROCESSOUT_PROJECT_SECRET": self.project_secret,
        }


def start(processes: ProcessSet, events: dict[str, dict[str, Any]], *, workdir: Path) -> FakeProcessOut:
    """Write ``events`` (id → event object) to a file and start the fake on a free port."""
    events_file = workdir / "processout-events.json"
    events_file.write_text(json.dumps(events))
    fake = FakeProcessOut(url=f"http://127.0.0.1:{free_port()}", project_id="proj_bench",
                          project_secret=secrets.token_urlsafe(16))
    port = fake.url.rsplit(":", 1)[1]
    processes.start("fake-processout", [sys.executable, "-m", "bench.fake_processout", "--port", port,
                                        "--events", str(events_file),
                                        "--auth", f"{fake.project_id}:{fake.project_secret}"],
                    env=env_without_payhooks(PYTHONPATH=str(Path(__file__).resolve().parents[1])), cwd=workdir)
    wait_http_ok(f"{fake.url}/healthz", timeout=30, alive=lambda: [n for n in processes.exited()
                                                                    if n == "fake-processout"])
    return fake


def make_handler(events: dict[str, dict[str, Any]], auth: str) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(auth.encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive for the workers' httpx clients

        def setup(self) -> None:
            super().setup()
            # The headers and the body go out in two writes; with Nagle on, the body waits
            # for the client's delayed ACK (40 ms on Linux), which a real API does not add.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/healthz":
                return self._answer(200, {"ok": True})
            if self.headers.get("Authorization") != expected:
                return self._answer(401, {"success": False, "message": "bad credentials"})
            event = events.get(self.path.rsplit("/", 1)[-1])
            if event is None:
                return self._answer(404, {"success": False, "message": "not found"})
            return self._answer(200, {"success": True, "event": event})

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--auth", required=True, help="project_id:project_secret")
    args = parser.parse_args(argv)
    events = json.loads(args.events.read_text())
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(events, args.auth))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
