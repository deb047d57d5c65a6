"""The receiver's processes load what serving needs and no more (issue 14: RSS per process).

Each granian worker process holds every module the app imports; the ORM
(``sqlalchemy.orm``, the typed table classes) would add about 9 MB to each,
and the receiver has no use for it: it stores events with psycopg and
registers orders through the Core table in ``models/schema.py``.
"""
from __future__ import annotations

from tests.conftest import modules_after

BUILD_THE_APP = """
from receiver.server import wsgi_app
import receiver.health, receiver.orders, receiver.webhooks
app = wsgi_app()
"""
HEAVY = {"sqlalchemy.orm", "models.tables", "models.orders", "models.incident_tables", "celery", "rich"}


def test_a_receiver_process_never_loads_the_orm_or_the_command_line() -> None:
    # Given the environment a receiver worker process starts with
    env = {"PAYHOOKS_DATABASE_URL": "postgresql://payhooks@127.0.0.1:1/none", "PATH": "/usr/bin:/bin"}
    # When it builds the app the way granian's factory does
    loaded = modules_after(BUILD_THE_APP, env=env)
    # Then none of the heavy modules it has no use for is loaded
    assert "receiver.server" in loaded and not HEAVY & loaded, HEAVY & loaded
