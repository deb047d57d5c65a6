"""Real processes for the integration tests: worker and dispatcher, plus a fake ProcessOut.

The worker and dispatcher run as the `payhooks` commands in their own process
groups (so a test can SIGKILL a worker with its pool children), against the
run's real Postgres database and a real broker: RabbitMQ when reachable
(always under CI), else kombu's SQLAlchemy transport on the same Postgres.
Each test run uses its own queue.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import Engine, text

from sandbox.samples import sample_processout_event
from tests.conftest import PROCESSOUT_PROJECT_SECRET, SECRET_ENV, make_settings
from tests.integration.helpers import signed_request

DEFAULT_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
REPO_ROOT = Path(__file__).resolve().parents[2]


def rabbitmq_url() -> str | None:
    """The RabbitMQ to use, or None when none answers (a laptop); under CI it must answer."""
    url = os.environ.get("PAYHOOKS_TEST_BROKER_URL", DEFAULT_RABBITMQ)
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return url
    except OSError:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"RabbitMQ is not reachable at {url} under CI") from None
        return None


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1,
             message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def base_env(*, database_url: str, broker_url: str, queue: str, processout_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYHOOKS_")}
    env.update({
        "PYTHONPATH": str(REPO_ROOT),  # the custom handler module lives in tests/
        "PAYHOOKS_DATABASE_URL": database_url,
        "PAYHOOKS_BROKER_URL": broker_url,
        "PAYHOOKS_QUEUE_NAME": queue,
        **SECRET_ENV,
        "PAYHOOKS_PROCESSOUT_API_URL": processout_url,
        "PAYHOOKS_LEASE_SECONDS": "8",
        "PAYHOOKS_DISPATCH_POLL_SECONDS": "0.2",
        "PAYHOOKS_HANDLER_MODULES": "tests.integration.custom_handlers",
        "PAYHOOKS_LOG_LEVEL": "INFO",
        "PAYHOOKS_DISPATCHER_METRICS_PORT": "0",  # tests that scrape pick their own free ports
        "PAYHOOKS_WORKER_METRICS_PORT": "0",
        **{f"PAYHOOKS_RETRY_SCHEDULE_{p.upper()}": "1s,1s,1s"
           for p in ("smartpay", "processout", "senfenico", "yoco", "shadhinpay")},
    })
    return env


@dataclass
class Stack:
    env: dict[str, str]
    workdir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", *args], env=self.env, cwd=self.workdir,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_worker(self, name: str = "worker", *, concurrency: int = 2) -> subprocess.Popen:
        return self.start(name, "worker", "--concurrency", str(concurrency))

    def start_dispatcher(self) -> subprocess.Popen:
        return self.start("dispatcher", "dispatcher")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes[name]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name in list(self.processes):
            try:
                self.processes[name].wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.processes[name].pid, signal.SIGKILL)
            self.processes.pop(name)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.workdir.glob("*.log")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def new_queue_name() -> str:
    return f"payhooks-test-{os.getpid()}-{secrets.token_hex(3)}"


def delete_queue(broker_url: str, queue: str) -> None:
    """Remove the run's queues (events and deliveries) from the shared RabbitMQ."""
    if not broker_url.startswith("amqp"):
        return
    from kombu import Connection

    for name in (queue, f"{queue}.deliveries"):
        try:
            with Connection(broker_url, connect_timeout=3) as conn:
                conn.default_channel.queue_delete(name)
        except Exception:  # the queue may never have been declared
            pass


class FakeProcessOut:
    """A local HTTP server playing ProcessOut's `GET /events/{id}` and `GET /events` (paged, newest first)."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, list[int]] = {}  # status codes to answer first, per event id
        self.delays: dict[str, float] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.list_requests: list[dict[str, str]] = []  # query of each `GET /events`
        self.list_failures: list[int] = []  # per `GET /events`, in order: a status code to fail with, 0 to answer
        fake = self

        class Handler(BaseHTTPRequestHandler):
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
                if self.headers.get("Authorization") != fake.api_authorization:
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

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        token = base64.b64encode(f"proj_test:{PROCESSOUT_PROJECT_SECRET}".encode()).decode()
        self.api_authorization = f"Basic {token}"  # the project's API credentials of the test settings
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def fake_processout() -> Iterator[FakeProcessOut]:
    fake = FakeProcessOut()
    try:
        yield fake
    finally:
        fake.close()


def create_order(engine: Engine, *, reference: str, provider: str, payment_ref: str, amount: int,
                 currency: str, email: str | None = "buyer@example.com", phone: str | None = None,
                 name: str | None = None) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text("""INSERT INTO orders (reference, provider, provider_payment_ref, amount, currency,
                                        customer_email, customer_phone, customer_name)
                    VALUES (:r, :p, :ref, :a, :c, :e, :ph, :n) RETURNING id"""),
            {"r": reference, "p": provider, "ref": payment_ref, "a": amount, "c": currency,
             "e": email, "ph": phone, "n": name},
        ).scalar_one()


def event_row(engine: Engine, event_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM webhook_events WHERE id = :id"), {"id": event_id}).one()


def order_row(engine: Engine, reference: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM orders WHERE reference = :r"), {"r": reference}).one()


def attempts(engine: Engine, event_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(
            text("SELECT * FROM event_attempts WHERE event_id = :id ORDER BY number"), {"id": event_id}
        ))


def deliveries(engine: Engine, order_id: int) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            text("SELECT event_id, kind FROM deliveries WHERE order_id = :o ORDER BY id"), {"o": order_id}
        )]


def status_of(engine: Engine, event_id: int) -> str:
    return event_row(engine, event_id).status


FINAL = ("succeeded", "dead", "ignored")


class Sender:
    """Posts signed events through the receiver (in-process, real Postgres)."""

    def __init__(self, client, processout: FakeProcessOut) -> None:
        self.client = client
        self.processout = processout
        self.settings = make_settings()

    def send(self, provider: str, event_type: str, *, order_ref: str, amount: int = 1000,
             event_id: str | None = None, times: int = 1) -> int:
        event_id = event_id or f"evt_{secrets.token_hex(6)}"
        if provider == "processout":
            self.processout.events[event_id] = sample_processout_event(
                event_id=event_id, event_type=event_type, order_ref=order_ref, amount_minor=amount)["event"]
        body, _ = signed_request(self.settings, provider, event_type=event_type, order_ref=order_ref,
                                 amount_minor=amount, event_id=event_id)
        ids = set()
        for _ in range(times):  # a provider retrying: each delivery signed anew
            _, headers = signed_request(self.settings, provider, body=body)
            response = self.client.post(f"/webhooks/{provider}", data=body, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)
            ids.add(response.json["id"])
        assert len(ids) == 1
        return ids.pop()


def wait_final(engine: Engine, *event_ids: int, timeout: float = 45.0, stack: Stack | None = None) -> None:
    def done() -> bool:
        return all(status_of(engine, i) in FINAL for i in event_ids)

    try:
        wait_for(done, timeout=timeout, message=f"events {event_ids} to finish")
    except AssertionError:
        states = {i: (status_of(engine, i), event_row(engine, i).last_error) for i in event_ids}
        raise AssertionError(f"not final: {states}\n{stack.logs() if stack else ''}") from None


@contextmanager
def running_serve(*, database_url: str, workdir: Path, workers: int, threads: int,
                  env: dict[str, str] | None = None) -> Iterator[str]:
    """The real `payhooks serve` (granian) on a free port, ready; yields its base URL."""
    with serve_process(database_url=database_url, workdir=workdir, workers=workers, threads=threads,
                       env=env) as (base, _):
        yield base


@contextmanager
def serve_process(*, database_url: str, workdir: Path, workers: int, threads: int,
                  env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                  log_path: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`payhooks serve` on a free port, ready; yields its base URL and its process (stderr to ``log_path``)."""
    import httpx

    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PAYHOOKS_", "PROMETHEUS_"))}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", str(threads), *args],
        cwd=workdir, env={**clean, "PAYHOOKS_DATABASE_URL": database_url, **(env or {})},
        stdout=log, stderr=log, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=30, message="payhooks serve")
        yield base, server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if log_path:
            log.close()
