"""What the views need, bound to the app by the factory: ``app.extensions["payhooks"]``.

The blueprints import this module (as the Flask tutorial's views import
``flaskr.db``), never the package that registers them, so the factory in
``receiver/__init__.py`` imports the views and nothing imports it back.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Engine

from models.ingest import EventStore
from models.redaction import Redactor
from models.settings import Settings
from providers.base import Adapter

EXTENSION = "payhooks"


@dataclass
class ReceiverState:
    """What the views need, bound to the app (``app.extensions["payhooks"]``)."""

    settings: Settings
    engine: Engine
    """Orders API and readiness."""
    store: EventStore
    """Webhooks: a group-commit writer on an autocommit connection of its own."""
    adapters: dict[str, Adapter]
    redactor: Redactor
    """Stored headers: secret headers replaced whole, every other value scrubbed."""

    def close(self) -> None:
        """Store what is queued and close the webhook connection (the engine belongs to whoever made it)."""
        self.store.close()


def state() -> ReceiverState:
    """The state of the app handling the current request."""
    return current_app.extensions[EXTENSION]
