"""The load generator: signed webhook requests POSTed with bounded concurrency, every answer kept.

``concurrency`` threads, each with its own keep-alive connection (stdlib
http.client: a fraction of httpx's CPU per request), take the next request
index from a shared counter. Without ``rate`` they send as fast as the
receiver answers (closed loop); with ``rate`` request *i* is due at
``start + i / rate`` (open loop) and its lateness is recorded, so a generator
that cannot keep up shows. The CPU time spent while sending is reported too:
near 100 % of one core means the generator, not the receiver, set the pace.
:class:`Stream` sends the way providers do instead (the fault harness).
"""
from __future__ import annotations

import heapq
import http.client
import itertools
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

from models.settings import Settings
from providers.registry import build_adapters

STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
"""Errors of a reused keep-alive connection the server closed before our request: resent once."""


@dataclass
class WebhookRequest:
    """One POST to the receiver; ``headers`` stay None until it is signed."""

    provider: str
    body: bytes
    headers: dict[str, str] | None = None
    get: str | None = None
    """A GET of this path instead (bench.ingest's /healthz phase without wrk)."""

    @property
    def path(self) -> str:
        return self.get or f"/webhooks/{self.provider}"


class Signer:
    """Signs bodies as each provider does, with the secrets the receiver was given.

    ``secrets`` maps provider → secret; for processout it is the ``user:pass``
    of PAYHOOKS_PROCESSOUT_BASIC_AUTH (or empty when the receiver wants none).
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self.secrets = dict(secrets)
        self.adapters = build_adapters(Settings(_env_file=None))  # type: ignore[call-arg]

    def headers(self, provider: str, body: bytes) -> dict[str, str]:
        signed = self.adapters[provider].sign(body=body, secret=self.secrets.get(provider, ""))
        return {"content-type": "application/json", **signed}

    def sign(self, request: WebhookRequest) -> WebhookRequest:
        request.headers = self.headers(request.provider, request.body)
        return request

    def sign_all(self, requests: Iterable[WebhookRequest]) -> None:
        for request in requests:
            self.sign(request)


def signing_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """provider → what it signs with, from the receiver's PAYHOOKS_* settings (processout: ``user:pass``)."""
    signing = {p: env[f"PAYHOOKS_{p.upper()}_SECRETS"] for p in ("smartpay", "senfenico", "yoco", "shadhinpay")}
    return {**signing, "processout": env["PAYHOOKS_PROCESSOUT_BASIC_AUTH"]}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (Postgres' percentile_cont); ``q`` in [0, 1]."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/max/mean of ``values`` (None for each when there are none)."""
    return {
        "p50": percentile(values, 0.50),
        "p90": percentile(values, 0.90),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def summarize_ms(values: Sequence[float]) -> dict[str, float | None]:
    """:func:`summarize` of seconds, in milliseconds rounded to 0.1."""
    return {k: None if v is None else round(v * 1000, 1) for k, v in summarize(values).items()}


@dataclass(frozen=True)
class Answer:
    outcome: str
    """``200 accepted``, ``200 duplicate``, ``503``, ``error TimeoutError``, …"""
    event_row_id: int | None
    latency_s: float
    index: int = -1
    """Of its request; with ``attempt``, ``sent_at`` (time.monotonic()) and ``retry_after``: :class:`Stream`."""
    attempt: int = 1
    sent_at: float = 0.0
    retry_after: str | None = None

    @property
    def status(self) -> int | None:
        head = self.outcome.partition(" ")[0]
        return int(head) if head.isdigit() else None

    @property
    def ok(self) -> bool:
        return 200 <= (self.status or 0) < 300


@dataclass
class SendResult:
    started_wall: float
    """Epoch seconds just before the first POST."""
    started: float
    """time.monotonic() of the same instant."""
    duration: float
    answers: list[Answer | None]
    """One per request, in the order given; None when it was never sent (time limit)."""
    lateness: list[float]
    cpu_seconds: float

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(a.outcome for a in self.answers if a is not None)

    @property
    def latencies(self) -> list[float]:
        return [a.latency_s for a in self.answers if a is not None]

    @property
    def sent(self) -> int:
        return sum(a is not None for a in self.answers)

    @property
    def accepted(self) -> int:
        return self.outcomes.get("200 accepted", 0)

    def figures(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "outcomes": dict(self.outcomes),
            "duration_s": round(self.duration, 3),
            "rate_per_s": round(self.sent / self.duration, 1) if self.duration else None,
            "client_latency_ms": summarize_ms(self.latencies),
            "max_lateness_s": round(max(self.lateness), 3) if self.lateness else None,
            "generator_cpu_pct_of_one_core": round(100 * self.cpu_seconds / self.duration, 1)
            if self.duration else None,
            "timed_out": any(a is None for a in self.answers),
        }


def send_all(base_url: str, requests: list[WebhookRequest], *, concurrency: int, rate: float | None = None,
             signer: Signer | None = None, max_seconds: float = 300.0) -> SendResult:
    """POST every request once; unsigned ones (headers None) are signed just before sending."""
    base_url, deadline, counter = base_url.rstrip("/"), time.monotonic() + max_seconds, itertools.count()
    answers: list[Answer | None] = [None] * len(requests)
    lateness: list[float] = []

    def sender() -> None:
        client = _Client(base_url)
        try:  # next(counter) is atomic under the GIL
            while (index := next(counter)) < len(requests) and time.monotonic() <= deadline:
                if rate:
                    delay = start + index / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        lateness.append(-delay)
                request = requests[index]
                if request.headers is None and signer is not None:
                    signer.sign(request)
                began = time.perf_counter()
                outcome, row_id = client.post(request)
                answers[index] = Answer(outcome, row_id, time.perf_counter() - began)
        finally:
            client.close()

    threads = [threading.Thread(target=sender, name=f"sender-{n}", daemon=True)
               for n in range(max(1, min(concurrency, len(requests))))]
    cpu_before, started_wall = time.process_time(), time.time()
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline + 30 - time.monotonic()))
    return SendResult(started_wall=started_wall, started=start, duration=time.monotonic() - start,
                      answers=list(answers), lateness=lateness, cpu_seconds=time.process_time() - cpu_before)


class _Client:
    """One keep-alive connection."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self._host, self._port, self._timeout = parts.hostname or "127.0.0.1", parts.port or 80, timeout
        self._conn: http.client.HTTPConnection | None = None
        self.retry_after: str | None = None
        """The Retry-After of the last answer that was not a 200."""

    def post(self, request: WebhookRequest) -> tuple[str, int | None]:
        """(``"200 accepted"``, ``"200 duplicate"``, ``"503"``, ``"error TimeoutError"``; the row id named)."""
        try:
            status, body = self._exchange_resending_once(request)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return f"error {type(exc).__name__}", None
        if status != 200:
            return str(status), None
        try:
            data = json.loads(body)
        except ValueError:
            return "200 unparseable", None
        return f"200 {data.get('status')}", data.get("id")

    def _exchange_resending_once(self, request: WebhookRequest) -> tuple[int, bytes]:
        reused = self._conn is not None
        try:
            return self._exchange(request)
        except STALE_CONNECTION:
            if not reused:
                raise
            self.close()  # the server closed an idle keep-alive connection: open a new one
            return self._exchange(request)

    def _exchange(self, request: WebhookRequest) -> tuple[int, bytes]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        self._conn.request("GET" if request.get else "POST", request.path, body=None if request.get else request.body,
                           headers=request.headers or {})
        response = self._conn.getresponse()
        body = response.read()
        if response.status != 200:
            self.retry_after = response.getheader("Retry-After")
        if response.will_close:
            self.close()
        return response.status, body

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class Stream:
    """Requests sent in the background the way providers send them, every answer kept.

    Request *i* is due at ``start + i / rate``; ``threads`` senders take due
    requests in turn and sign each try anew. A try without a 2xx (503 while the
    database is away, a timeout) is repeated after a backoff until
    ``retry_for_s`` after the first; with ``copies`` > 1 each try is that many
    concurrent requests (a duplicate storm). Connections are not reused, so a
    connection error always means the receiver failed to answer. Requests in
    ``skip`` are sent by someone else, who reports through :meth:`record`.
    """

    base_url: str
    requests: list[WebhookRequest]
    signer: Signer
    rate: float
    threads: int = 4
    copies: int = 1
    retry_for_s: float = 90.0
    timeout_s: float = 20.0
    skip: set[int] = field(default_factory=set)
    answers: list[Answer] = field(default_factory=list)
    acknowledged: dict[int, int] = field(default_factory=dict)
    """Request index → the row id its first 2xx named (-1: none)."""
    gave_up: set[int] = field(default_factory=set)
    first_try: dict[int, float] = field(default_factory=dict)
    finished: float = 0.0
    """time.monotonic() when every request was acknowledged or given up (0 until then)."""
    _senders: list[threading.Thread] = field(default_factory=list, init=False, repr=False)

    def start(self) -> Stream:
        self._lock, self._stop = threading.Condition(), threading.Event()
        self._open = len(self.requests) - len(self.skip)
        started = time.monotonic()
        self._due = [(started + i / self.rate, i, 1) for i in range(len(self.requests)) if i not in self.skip]
        self._pool = ThreadPoolExecutor(self.threads * self.copies) if self.copies > 1 else None
        self._senders = [threading.Thread(target=self._send, daemon=True, name=f"sender-{n}")
                         for n in range(self.threads)]
        for sender in self._senders:
            sender.start()
        return self

    def stop(self, *, wait_s: float = 0.0) -> None:
        """Stop sending, after waiting up to ``wait_s`` for every request to be acknowledged or given up."""
        deadline = time.monotonic() + wait_s
        for sender in self._senders:
            sender.join(max(0.0, deadline - time.monotonic()))
        if not self._senders:
            return
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        for sender in self._senders:
            sender.join(self.timeout_s + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._senders = []
        self.finished = self.finished or time.monotonic()

    def record(self, answer: Answer, *, final: bool) -> None:
        """An answer to a request another sender made; ``final``: it stops trying after this one."""
        with self._lock:
            self.first_try.setdefault(answer.index, answer.sent_at)
            self.answers.append(answer)
            if answer.ok:
                self.acknowledged.setdefault(answer.index, answer.event_row_id or -1)
            elif final:
                self.gave_up.add(answer.index)

    def _next(self) -> tuple[int, int] | None:
        with self._lock:
            while not self._stop.is_set():
                if not self._open:
                    self.finished = self.finished or time.monotonic()
                    return None
                wait = self._due[0][0] - time.monotonic() if self._due else 0.2
                if wait <= 0:
                    return heapq.heappop(self._due)[1:]
                self._lock.wait(min(wait, 0.2))
        return None

    def _send(self) -> None:
        clients = [_Client(self.base_url, timeout=self.timeout_s) for _ in range(self.copies)]
        while (item := self._next()) is not None:
            index, attempt = item
            self.first_try.setdefault(index, time.monotonic())
            post = partial(self._post, index, attempt)
            answers = [post(clients[0])] if self._pool is None else list(self._pool.map(post, clients))
            with self._lock:
                self.answers.extend(answers)
                acked = [a for a in answers if a.ok]
                if not acked and time.monotonic() - self.first_try[index] < self.retry_for_s:
                    backoff = min(0.5 * 2 ** (attempt - 1), 4.0)
                    heapq.heappush(self._due, (time.monotonic() + backoff, index, attempt + 1))
                else:
                    if acked:
                        self.acknowledged.setdefault(index, acked[0].event_row_id or -1)
                    else:
                        self.gave_up.add(index)
                    self._open -= 1
                self._lock.notify_all()
        for client in clients:
            client.close()

    def _post(self, index: int, attempt: int, client: _Client) -> Answer:
        request = self.requests[index]
        signed = WebhookRequest(request.provider, request.body,
                                {**self.signer.headers(request.provider, request.body), "Connection": "close"})
        client.retry_after, sent_at = None, time.monotonic()
        outcome, row_id = client.post(signed)
        return Answer(outcome, row_id, time.monotonic() - sent_at, index=index, attempt=attempt, sent_at=sent_at,
                      retry_after=client.retry_after)
