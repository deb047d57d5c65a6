"""What the console's views share, bound to the app (``app.extensions["payhooks_console"]``)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Connection, Engine

from console.jobs import ReplayJobs
from console.limits import SignInLimiter
from console.redaction import Redactor
from models.settings import Settings


@dataclass
class ConsoleState:
    settings: Settings
    engine: Engine
    redact: Redactor
    limiter: SignInLimiter
    jobs: ReplayJobs


def state() -> ConsoleState:
    return current_app.extensions["payhooks_console"]


@contextmanager
def reading() -> Iterator[Connection]:
    """One consistent snapshot for a page (REPEATABLE READ, read only)."""
    with state().engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn
