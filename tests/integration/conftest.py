"""Integration fixtures: a real Postgres database per test run, schema by Alembic.

``PAYHOOKS_TEST_DATABASE_URL`` names a server (CI sets it to the machine's
Postgres); without it the embedded Postgres starts in a temporary directory,
so the suite runs on a laptop with no services. Each run gets its own fresh
database on that server, dropped at the end.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from models.db import make_engine, normalise_url
from models.migrate import upgrade
from models.settings import Settings
from testkit.fakes import FakeProcessOut, MerchantServer, SmtpServer
from testkit.postgres import EmbeddedServer, create_database, drop_database
from testkit.services import Services, delete_queue, new_queue_name, rabbitmq_url
from tests.conftest import make_settings
from tests.integration.stack import Sender, base_env, new_processout, new_stack

pytestmark = pytest.mark.integration

TABLES = ("incident_members", "alerts", "incidents", "provider_activity", "watch_cursors", "operator_actions",
          "delivery_attempts", "deliveries", "refunds", "order_transitions", "orders", "event_attempts",
          "webhook_events", "event_keys", "status_tallies", "tally_marks", "archive_files")


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("PAYHOOKS_TEST_DATABASE_URL")
    if configured:
        yield normalise_url(configured)
        return
    embedded = EmbeddedServer(tmp_path_factory.mktemp("embedded"))
    try:
        yield embedded.start()
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    name, url = create_database(server_url, prefix=f"payhooks_test_{os.getpid()}")
    try:
        yield url
    finally:
        drop_database(server_url, name)


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(make_settings(database_url=database_url))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(migrated_engine: Engine) -> Iterator[Engine]:
    """The run's database, emptied before each test."""
    with migrated_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    yield migrated_engine


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
def app(settings: Settings, engine: Engine):
    from receiver import create_app

    app = create_app(settings, engine=engine)
    yield app
    app.extensions["payhooks"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def broker_url(database_url: str) -> str:
    """RabbitMQ when it answers (always under CI), else kombu's SQLAlchemy transport on Postgres."""
    return rabbitmq_url() or "payhookssqla+" + database_url


@pytest.fixture
def processout() -> Iterator[FakeProcessOut]:
    fake = new_processout()
    yield fake
    fake.close()


@pytest.fixture
def stack(tmp_path, database_url: str, broker_url: str, processout: FakeProcessOut,
          engine: Engine) -> Iterator[Services]:
    """Worker and dispatcher processes to start as a test needs them, stopped at its end."""
    queue = new_queue_name()
    running = new_stack(env=base_env(database_url=database_url, broker_url=broker_url, queue=queue,
                                     processout_url=processout.url), workdir=tmp_path)
    try:
        yield running
    finally:
        running.stop()
        delete_queue(broker_url, queue)


@pytest.fixture
def sender(client, processout: FakeProcessOut) -> Sender:
    return Sender(client, processout)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A local SMTP server that keeps what it receives (the customer's and the team's mail)."""
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture
def merchant() -> Iterator[MerchantServer]:
    """A local HTTP endpoint that records what it receives (fulfilment, SMS, alert URLs)."""
    server = MerchantServer()
    yield server
    server.close()
