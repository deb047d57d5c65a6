"""kombu's SQLAlchemy transport, polling fast enough for `payhooks up`.

The stock transport polls its table once a second and hands every transport
option (``polling_interval`` included) to ``create_engine``, which rejects
it, so the interval cannot be set the usual way. This subclass fixes the
interval instead; :data:`SCHEME` is the broker-URL prefix that selects it.
"""
from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport

SCHEME = "payhookssqla"
POLLING_INTERVAL_SECONDS = 0.05


class Transport(SQLAlchemyTransport):
    polling_interval = POLLING_INTERVAL_SECONDS


def register() -> None:
    """Make ``payhookssqla+<sqlalchemy url>`` broker URLs resolve to this transport."""
    TRANSPORT_ALIASES.setdefault(SCHEME, f"{__name__}:Transport")
