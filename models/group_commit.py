"""Group commit: one writer thread stores what concurrent requests hand it, a batch per statement.

A request thread calls :meth:`GroupCommitWriter.submit` and waits on the
:class:`~concurrent.futures.Future` it gets back. The writer thread takes
whatever is queued (up to ``max_batch`` items), hands the batch to
``write_batch`` (one statement, one commit) and then resolves every future, so
a caller's answer never goes out before its item is committed. The writer
knows nothing about SQL: ``write_batch`` maps a list of items to a list of
results in the same order.

* **Full queue**: :meth:`submit` raises :class:`QueueFull` at once (the
  caller answers 503 and asks for a retry); it never blocks a request.
* **One bad item**: when a batch of several fails with one of
  ``retry_alone_on`` (a row Postgres refuses), each item is written again on
  its own, so only the bad one gets the error.
* **Any other failure** (the database is down) fails every future of the batch.
* **Stopping**: :meth:`close` refuses new items, writes everything already
  queued, then ends the thread.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

log = logging.getLogger("payhooks.group_commit")

_STOP = object()


class QueueFull(Exception):
    """The writer's queue is full: try again later."""


class WriterClosed(Exception):
    """The writer is stopping and takes nothing new."""


class GroupCommitWriter(Generic[Item, Result]):
    def __init__(
        self,
        *,
        write_batch: Callable[[Sequence[Item]], Sequence[Result]],
        max_batch: int,
        queue_size: int,
        retry_alone_on: tuple[type[BaseException], ...] = (),
        name: str = "group-commit",
    ) -> None:
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._retry_alone_on = retry_alone_on
        self._name = name
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.batches_written = 0
        """Batches handed to ``write_batch`` (retries of single items included)."""

    def queued(self) -> int:
        """Items waiting for the writer (approximate, like ``Queue.qsize``)."""
        return self._queue.qsize()

    def submit(self, item: Item) -> Future[Result]:
        """Queue ``item``; the future resolves once its batch is committed (or failed)."""
        if self._thread is None:
            self._start()
        future: Future[Result] = Future()
        with self._lock:  # nothing is queued behind the stop marker that close() puts
            if self._closed:
                raise WriterClosed(WriterClosed.__doc__)
            try:
                self._queue.put_nowait((item, future))
            except queue.Full:
                raise QueueFull(QueueFull.__doc__) from None
        return future

    def close(self, *, timeout_seconds: float | None = None) -> None:
        """Write what is queued, then stop the thread. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)  # blocks only while the queue is full, i.e. until the writer takes a batch
        thread.join(timeout_seconds)

    def _start(self) -> None:
        with self._lock:  # started on first use: in the process (after any fork) that serves requests
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    queued = self._queue.get_nowait()
                except queue.Empty:
                    break
                if queued is _STOP:
                    stopping = True
                    break
                batch.append(queued)
            self._flush(batch)

    def _flush(self, batch: list[tuple[Item, Future[Result]]]) -> None:
        self.batches_written += 1
        try:
            results = self._write_batch([item for item, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - the waiting requests get the error; the thread lives on
            if len(batch) > 1 and isinstance(exc, self._retry_alone_on):
                for single in batch:  # one bad item must not fail its batch-mates
                    self._flush([single])
                return
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
