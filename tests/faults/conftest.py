"""The fault harness under pytest: the broker to use.

Under CI (``CI=true``) RabbitMQ must answer, or the session fails; elsewhere
the scenarios that need it are skipped when it does not (the harness skips
them too), and the others run on kombu's SQLAlchemy transport.
"""
from __future__ import annotations

import pytest

from testkit.services import rabbitmq_url


@pytest.fixture(scope="session")
def faults_broker() -> str | None:
    """RabbitMQ's URL, or None (raises under CI when RabbitMQ does not answer)."""
    return rabbitmq_url()
