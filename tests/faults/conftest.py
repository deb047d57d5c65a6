"""The fault harness under pytest: one embedded Postgres for the session, and the broker to use.

Under CI (``CI=true``) RabbitMQ must answer, or the session fails; elsewhere
the scenarios that need it are skipped when it does not, and the others run on
kombu's SQLAlchemy transport.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.postgres import EmbeddedServer
from testkit.services import rabbitmq_url


@pytest.fixture(scope="session")
def faults_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="session")
def faults_server(faults_root: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(faults_root / "postgres")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def faults_broker() -> str | None:
    """RabbitMQ's URL, or None (raises under CI when RabbitMQ does not answer)."""
    return rabbitmq_url()
