"""The Flask receiver: verify, store, answer. ``create_app`` is the only way in."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, jsonify
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from models.db import make_engine
from models.ingest import EventStore
from models.redaction import Redactor
from models.settings import Settings
from receiver.bodies import StreamedBodyLimit
from providers.base import Adapter
from providers.registry import PROVIDERS, build_adapters


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


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes  # each webhook endpoint sets its own
    # A chunked body is read here up to the largest limit any endpoint has; the endpoint applies its own.
    largest = max(settings.body_limit_for(name) for name in PROVIDERS)
    app.wsgi_app = StreamedBodyLimit(app.wsgi_app, max_bytes=largest)  # type: ignore[method-assign]
    app.extensions["payhooks"] = ReceiverState(
        settings=settings,
        engine=engine or make_engine(settings, application_name="payhooks-receiver"),
        store=EventStore(settings),
        adapters=build_adapters(settings),
        redactor=Redactor.from_settings(settings),
    )

    from receiver import health, orders, webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(health.bp)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # JSON bodies, never an HTML page or a trace
        return jsonify(error=exc.name.lower()), exc.code or 500

    return app


def state() -> ReceiverState:
    from flask import current_app

    return current_app.extensions["payhooks"]
