"""The receiver's processes load what serving needs and no more (issue 14: RSS per process).

Each granian worker process holds every module the app imports; the ORM
(``sqlalchemy.orm``, the typed table classes) would add about 9 MB to each,
and the receiver has no use for it: it stores events with psycopg and
registers orders through the Core table in ``models/schema.py``.
"""
from __future__ import annotations

import subprocess
import sys

BUILD_THE_APP = """
import sys
from receiver.server import wsgi_app
import receiver.health, receiver.orders, receiver.webhooks
app = wsgi_app()
loaded = sorted(name for name in sys.modules if name == "sqlalchemy.orm" or name in (
    "models.tables", "models.orders", "models.incident_tables", "celery", "rich"))
print(",".join(loaded))
"""


def test_a_receiver_process_never_loads_the_orm_or_the_command_line() -> None:
    # Given the environment a receiver worker process starts with
    env = {"PAYHOOKS_DATABASE_URL": "postgresql://payhooks@127.0.0.1:1/none", "PATH": "/usr/bin:/bin"}
    # When it builds the app the way granian's factory does
    done = subprocess.run([sys.executable, "-c", BUILD_THE_APP], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    # Then none of the heavy modules it has no use for is loaded
    assert done.stdout.strip().splitlines()[-1:] in ([], [""]), done.stdout
