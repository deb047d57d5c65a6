"""Hold the receiver's INSERTs at a table lock, so a test can see what waits for a commit."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from models.db import libpq_url

WAITING = """SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE c.relname = 'webhook_events' AND NOT l.granted"""
from testkit.processes import wait_for


@contextmanager
def inserts_held(database_url: str) -> Iterator[Callable[[], None]]:
    """SHARE-lock ``webhook_events`` (reads pass, INSERTs wait) until the block ends.

    Yields ``wait_blocked()``: returns once an INSERT is waiting on the lock.
    Keep the block shorter than ``db_timeout_seconds`` (the INSERT's lock_timeout).
    """
    holder = psycopg.connect(libpq_url(database_url))
    watcher = psycopg.connect(libpq_url(database_url), autocommit=True)
    try:
        holder.execute("LOCK TABLE webhook_events IN SHARE MODE")

        def wait_blocked() -> None:
            wait_for(lambda: watcher.execute(WAITING).fetchone()[0] >= 1, timeout=10,
                     message="an INSERT waiting on the table lock")

        yield wait_blocked
    finally:
        holder.rollback()
        holder.close()
        watcher.close()
