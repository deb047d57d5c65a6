"""Integration fixtures: a real Postgres database per test run, schema by Alembic.

``PAYHOOKS_TEST_DATABASE_URL`` names a server (CI sets it to the machine's
Postgres); without it the embedded Postgres starts in a temporary directory,
so the suite runs on a laptop with no services. Each run gets its own fresh
database on that server, dropped at the end.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from cli.main import main
from models.db import make_engine, normalise_url
from models.migrate import upgrade
from models.settings import Settings
from testkit.fakes import FakeProcessOut, MerchantServer, SmtpServer
from testkit.postgres import EmbeddedServer, create_database, drop_database
from testkit.processes import REPO_ROOT, env_without_payhooks
from testkit.services import Services, delete_queue, new_queue_name, rabbitmq_url
from tests.conftest import PROCESSOUT_PROJECT_SECRET, SECRET_ENV, make_settings
from tests.integration.console_support import CONSOLE_TOKEN, sign_in
from tests.integration.stack import Sender, start_processes

pytestmark = pytest.mark.integration

TABLES = ("incident_members", "alerts", "incidents", "provider_activity", "watch_cursors", "operator_actions",
          "delivery_attempts", "deliveries", "refunds", "order_transitions", "orders", "event_attempts",
          "webhook_events", "event_keys", "status_tallies", "tally_marks", "archive_files")


def base_env(*, database_url: str, broker_url: str, queue: str, processout_url: str) -> dict[str, str]:
    return env_without_payhooks(**{
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
def make_app(database_url: str, engine: Engine) -> Iterator[Callable[..., Any]]:
    """``make_app(**overrides)``: a receiver with the test settings and those overrides, on the run's
    database (or, given a ``database_url``, on an engine of its own there); each closed at the test's end."""
    from receiver import create_app

    apps = []

    def build(**overrides: Any):
        own_url = overrides.pop("database_url", None)
        app = create_app(make_settings(database_url=own_url or database_url, **overrides),
                         engine=None if own_url else engine)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["payhooks"].close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def broker_url(database_url: str) -> str:
    """RabbitMQ when it answers (always under CI), else kombu's SQLAlchemy transport on Postgres."""
    return rabbitmq_url() or "payhookssqla+" + database_url


@pytest.fixture
def processout() -> Iterator[FakeProcessOut]:
    """The fake ProcessOut API, expecting the test settings' project credentials on ``GET /events``."""
    fake = FakeProcessOut(api_auth=f"proj_test:{PROCESSOUT_PROJECT_SECRET}")
    yield fake
    fake.close()


@pytest.fixture
def stack(tmp_path, database_url: str, broker_url: str, processout: FakeProcessOut,
          engine: Engine) -> Iterator[Services]:
    """Worker and dispatcher processes (``python -m cli``) to start as a test needs them, stopped at
    its end; their logs in the test's tmp_path."""
    queue = new_queue_name()
    running = Services(env=base_env(database_url=database_url, broker_url=broker_url, queue=queue,
                                    processout_url=processout.url), workdir=tmp_path,
                       command=[sys.executable, "-m", "cli"])
    try:
        yield running
    finally:
        running.stop()
        delete_queue(broker_url, queue)


@pytest.fixture
def running(stack: Services) -> Services:
    """The stack with a worker and a dispatcher already started (with ``stack.env`` as it is then: a test
    whose fixtures change that env starts the processes itself)."""
    return start_processes(stack)


@pytest.fixture
def console_settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url, console_token=CONSOLE_TOKEN)


@pytest.fixture
def console_app(console_settings: Settings, engine: Engine):
    from console.app import create_app

    return create_app(console_settings, engine=engine)


@pytest.fixture
def signed_in(console_app) -> FlaskClient:
    """A console client signed in as OPERATOR."""
    client = console_app.test_client()
    response = sign_in(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


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


FULFILMENT_SECRET = "whsec_" + "ZnVsZmlsbWVudC1zZWNyZXQtZm9yLXRlc3Rz"  # base64 of a test key
SHOP = "shop@merchant.example"


@pytest.fixture
def delivering(stack: Services, smtp: SmtpServer, merchant: MerchantServer) -> Services:
    """The stack sending its emails to ``smtp`` and its fulfilment calls and SMS to ``merchant``, retried
    at once (1 s) and timed out after 1 s."""
    stack.env.update({
        "PAYHOOKS_SMTP_HOST": "127.0.0.1",
        "PAYHOOKS_SMTP_PORT": str(smtp.port),
        "PAYHOOKS_SMTP_FROM": SHOP,
        "PAYHOOKS_FULFILMENT_URL": f"{merchant.url}/fulfil",
        "PAYHOOKS_FULFILMENT_SECRET": FULFILMENT_SECRET,
        "PAYHOOKS_NOTIFY_URL": f"{merchant.url}/sms",
        "PAYHOOKS_DELIVERY_RETRY_SCHEDULE": "1s,1s,1s",
        "PAYHOOKS_DELIVERY_TIMEOUT_SECONDS": "1",
    })
    return stack


@pytest.fixture
def run(database_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``run(*args, input=None, env=None)``: `payhooks ARGS` in-process, from tmp_path, with only the test
    database and secrets (no developer .env or environment read); ``env`` adds to that, None removes."""
    monkeypatch.chdir(tmp_path)
    base: dict[str, str | None] = {name: None for name in os.environ if name.startswith("PAYHOOKS_")}
    base.update({"PAYHOOKS_DATABASE_URL": database_url, "PAYHOOKS_DATA_DIR": str(tmp_path / "data"),
                 "PAYHOOKS_LOG_LEVEL": "WARNING", **SECRET_ENV})

    def invoke(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=input, env={**base, **(env or {})}, catch_exceptions=False)

    return invoke
