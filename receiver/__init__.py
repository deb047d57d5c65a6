"""The Flask receiver: verify, store, answer. ``create_app`` is the only way in.

The app factory builds the state the views need (:mod:`receiver.state`) and
registers the blueprints (:mod:`receiver.webhooks`, :mod:`receiver.orders`,
:mod:`receiver.health`); the views read that state through
:func:`receiver.state.state` and never import this package back.
The adapters come from :mod:`providers`, which imports no Flask.
"""
from __future__ import annotations

from flask import Flask, jsonify
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from models.db import make_engine
from models.ingest import EventStore
from models.redaction import Redactor
from models.settings import Settings
from providers.registry import PROVIDERS, build_adapters
from receiver.bodies import StreamedBodyLimit
from receiver.state import EXTENSION, ReceiverState

__all__ = ["ReceiverState", "create_app"]


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes  # each webhook endpoint sets its own
    # A chunked body is read here up to the largest limit any endpoint has; the endpoint applies its own.
    largest = max(settings.body_limit_for(name) for name in PROVIDERS)
    app.wsgi_app = StreamedBodyLimit(app.wsgi_app, max_bytes=largest)  # type: ignore[method-assign]
    app.extensions[EXTENSION] = ReceiverState(
        settings=settings,
        engine=engine or make_engine(settings, application_name="payhooks-receiver"),
        store=EventStore(settings),
        adapters=build_adapters(settings),
        redactor=Redactor.from_settings(settings),
    )

    # Imported here, as the Flask tutorial's factory imports its blueprints: `python -m receiver`
    # imports this package before its __main__ sets up multiprocess metrics, and the views load
    # prometheus_client. The views import receiver.state, never this package: no cycle.
    from receiver import health, orders, webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(health.bp)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # JSON bodies, never an HTML page or a trace
        return jsonify(error=exc.name.lower()), exc.code or 500

    return app
