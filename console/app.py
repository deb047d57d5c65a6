"""The console's app factory: settings in, a Flask app with its blueprints, session and CSRF guard out."""
from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import timedelta
from typing import Any

from flask import Flask, render_template
from markupsafe import Markup
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from console.jobs import ReplayJobs
from console.limits import SignInLimiter
from console.redaction import redactor_for
from console.state import ConsoleState
from models.db import make_engine
from models.settings import Settings

log = logging.getLogger("payhooks.console")


class ConsoleNotConfigured(RuntimeError):
    """PAYHOOKS_CONSOLE_TOKEN is not set: the console does not start without a sign-in token."""


SECURITY_HEADERS = {
    # Every asset is the console's own; nothing leaves the page, nothing frames it.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Flask:
    settings = settings or Settings()
    if settings.console_token is None or not settings.console_token.get_secret_value().strip():
        raise ConsoleNotConfigured(ConsoleNotConfigured.__doc__)
    token = settings.console_token.get_secret_value()
    app = Flask("console")
    app.config.update(
        # Derived from the token: changing the token signs every session out.
        SECRET_KEY=hmac.new(token.encode(), b"payhooks-console-session", hashlib.sha256).hexdigest(),
        SESSION_COOKIE_NAME="payhooks_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.console_secure_cookie,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.console_session_hours),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    redact = redactor_for(settings)
    app.extensions["payhooks_console"] = ConsoleState(
        settings=settings,
        engine=engine or make_engine(settings, pool_size=4, application_name="payhooks-console"),
        redact=redact,
        limiter=SignInLimiter(attempts=settings.console_signin_attempts,
                              window_seconds=settings.console_signin_window_seconds),
        jobs=ReplayJobs(),
    )
    app.jinja_env.finalize = lambda value: _scrubbed(redact, value)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    from console import audit, auth, deliveries, events, orders, overview, pages, replay

    app.register_blueprint(auth.bp)
    app.register_blueprint(overview.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(replay.bp)
    app.register_blueprint(deliveries.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(audit.bp)
    app.before_request(auth.guard)
    app.context_processor(auth.template_globals)
    app.jinja_env.filters.update(pages.FILTERS)

    @app.after_request
    def _headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def _database_error(exc: Exception) -> Any:  # unreachable, or a query past the statement timeout
        log.warning("database unavailable", extra={"action": "console.database_unavailable",
                                                   "error": type(getattr(exc, "orig", None) or exc).__name__})
        return render_template("error.html", code=503, name="Database unavailable",
                               description="The database did not answer in time. Try again in a moment."), 503

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:  # a small page, never a trace
        return render_template("error.html", code=exc.code, name=exc.name,
                               description=exc.description), exc.code or 500

    return app


def _scrubbed(redact, value: Any) -> Any:
    """Every printed value through the redactor; markup a macro built stays markup (its pieces were escaped)."""
    if isinstance(value, Markup):
        return Markup(redact.text(str(value)))
    return redact.text(value) if isinstance(value, str) else value
