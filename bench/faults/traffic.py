"""A steady stream of signed events, sent the way providers send them, every answer recorded.

Event *i* of the plan is due at ``start + i / rate``. ``threads`` senders take
due events in turn; each delivery is signed anew. An event whose delivery got
no 2xx (503 while the database is away, a timeout) is sent again after a
backoff, as a provider would, until ``retry_for_s`` after its first try. With
``copies`` > 1 every delivery is ``copies`` concurrent requests (the
duplicate storm). Connections are not reused, so a connection error always
means the receiver failed to answer.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import httpx

from bench.faults.plan import Event, Plan
from testkit.load import Signer


@dataclass(frozen=True)
class Answer:
    event: int
    attempt: int
    sent_at: float
    """time.monotonic() when the request went out."""
    seconds: float
    status: int | None
    error: str | None = None
    row_id: int | None = None
    outcome: str | None = None
    """accepted | duplicate, from a 2xx body."""
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Traffic:
    base_url: str
    plan: Plan
    signer: Signer
    rate: float
    threads: int = 4
    copies: int = 1
    retry_for_s: float = 90.0
    timeout_s: float = 20.0
    skip: set[int] = field(default_factory=set)
    """Events another sender delivers (the CLI); they report through :meth:`record_external`."""
    answers: list[Answer] = field(default_factory=list)
    acknowledged: dict[int, int] = field(default_factory=dict)
    """event index → the webhook_events id its first 2xx named."""
    gave_up: set[int] = field(default_factory=set)
    started: float = 0.0
    finished: float = 0.0
    _heap: list[tuple[float, int, int, int]] = field(default_factory=list)
    _first_try: dict[int, float] = field(default_factory=dict)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)
    _done: int = 0

    def start(self) -> None:
        self.started = time.monotonic()
        for event in self.plan.events:
            if event.index in self.skip:
                continue
            heapq.heappush(self._heap, (self.started + event.index / self.rate, next(self._seq), event.index, 1))
        self._client = httpx.Client(timeout=self.timeout_s, headers={"Connection": "close"},
                                    limits=httpx.Limits(max_connections=self.threads * self.copies + 4))
        self._pool = ThreadPoolExecutor(max_workers=self.threads * self.copies) if self.copies > 1 else None
        self._workers = [threading.Thread(target=self._run, daemon=True, name=f"sender-{n}")
                         for n in range(self.threads)]
        for worker in self._workers:
            worker.start()

    def wait(self, timeout: float) -> bool:
        """Wait until every event is acknowledged or given up; False on timeout (then stopped)."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        done = not any(worker.is_alive() for worker in self._workers)
        self.stop()
        return done

    def stop(self) -> None:
        if not self._workers:
            return
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        for worker in self._workers:
            worker.join(self.timeout_s + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()
        self._workers = []
        self.finished = self.finished or time.monotonic()

    def sent_count(self) -> int:
        return len(self._first_try)

    # --- sending ---------------------------------------------------------------------------

    def _next(self) -> tuple[int, int] | None:
        with self._lock:
            while not self._stop.is_set():
                if not self._heap:
                    if self._done >= len(self.plan.events) - len(self.skip):
                        self.finished = self.finished or time.monotonic()
                        return None
                    self._lock.wait(0.2)
                    continue
                due, _, index, attempt = self._heap[0]
                wait = due - time.monotonic()
                if wait <= 0:
                    heapq.heappop(self._heap)
                    return index, attempt
                self._lock.wait(min(wait, 0.2))
        return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            index, attempt = item
            self._first_try.setdefault(index, time.monotonic())
            event = self.plan.events[index]
            if self._pool is None:
                results = [self._post(event, attempt)]
            else:
                results = list(self._pool.map(partial(self._post, event), [attempt] * self.copies))
            self._settle(event, attempt, results)

    def _settle(self, event: Event, attempt: int, results: list[Answer]) -> None:
        with self._lock:
            self.answers.extend(results)
            acked = [r for r in results if r.ok]
            if acked:
                self.acknowledged.setdefault(event.index, acked[0].row_id or -1)
                self._done += 1
            elif time.monotonic() - self._first_try[event.index] < self.retry_for_s:
                due = time.monotonic() + min(0.5 * 2 ** (attempt - 1), 4.0)
                heapq.heappush(self._heap, (due, next(self._seq), event.index, attempt + 1))
            else:
                self.gave_up.add(event.index)
                self._done += 1
            self._lock.notify_all()

    def record_external(self, answer: Answer, *, final: bool) -> None:
        """An answer to a delivery made by another sender; ``final``: it stops trying after this one."""
        with self._lock:
            self._first_try.setdefault(answer.event, answer.sent_at)
            self.answers.append(answer)
            if answer.ok:
                self.acknowledged.setdefault(answer.event, answer.row_id or -1)
            elif final:
                self.gave_up.add(answer.event)

    def _post(self, event: Event, attempt: int) -> Answer:
        headers = self.signer.headers(event.provider, event.body)
        sent_at = time.monotonic()
        try:
            response = self._client.post(f"{self.base_url}/webhooks/{event.provider}", content=event.body,
                                         headers=headers)
        except httpx.HTTPError as exc:
            return Answer(event.index, attempt, sent_at, time.monotonic() - sent_at, None, type(exc).__name__)
        seconds = time.monotonic() - sent_at
        row_id = outcome = None
        if response.is_success:
            try:
                body = response.json()
                row_id, outcome = int(body["id"]), str(body["status"])
            except (ValueError, KeyError, TypeError):
                outcome = "unreadable"
        return Answer(event.index, attempt, sent_at, seconds, response.status_code, row_id=row_id,
                      outcome=outcome, retry_after=response.headers.get("Retry-After"))
