"""Send requests once each and keep every answer: status, the ``id`` it named, the latency.

bench/sender.py counts outcomes; a duplicate benchmark must also know which
id each answer named and how long *that* request took, so it can tell first
deliveries from duplicates and check the ids. Same shape as
:func:`bench.sender.send_all` in closed loop (``concurrency`` threads, one
keep-alive http.client connection each, a shared index), reusing its client.
"""
from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from dataclasses import dataclass

from bench.common import Signer, WebhookRequest
from bench.sender import _Client


@dataclass(frozen=True)
class Answer:
    outcome: str
    """``200 accepted``, ``200 duplicate``, ``503``, ``error TimeoutError``, …"""
    event_row_id: int | None
    latency_s: float


class _AnsweringClient(_Client):
    def answer(self, request: WebhookRequest) -> tuple[str, int | None]:
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


@dataclass
class Answers:
    answers: list[Answer | None]
    duration_s: float
    cpu_seconds: float
    started: float
    """time.monotonic() just before the first request."""

    @property
    def sent(self) -> int:
        return sum(a is not None for a in self.answers)


def send_recording(base_url: str, requests: list[WebhookRequest], *, concurrency: int,
                   signer: Signer | None = None, max_seconds: float = 600.0) -> Answers:
    """POST each request once (signing unsigned ones just before), as fast as the receiver answers."""
    answers: list[Answer | None] = [None] * len(requests)
    counter = itertools.count()
    deadline = time.monotonic() + max_seconds

    def run() -> None:
        client = _AnsweringClient(base_url.rstrip("/"))
        try:
            while (index := next(counter)) < len(requests) and time.monotonic() < deadline:
                request = requests[index]
                if request.headers is None and signer is not None:
                    signer.sign(request)
                began = time.perf_counter()
                outcome, row_id = client.answer(request)
                answers[index] = Answer(outcome, row_id, time.perf_counter() - began)
        finally:
            client.close()

    threads = [threading.Thread(target=run, name=f"answers-{n}", daemon=True)
               for n in range(max(1, min(concurrency, len(requests))))]
    cpu_before, started = time.process_time(), time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline + 30 - time.monotonic()))
    return Answers(answers=answers, duration_s=time.monotonic() - started,
                   cpu_seconds=time.process_time() - cpu_before, started=started)
