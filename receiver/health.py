"""Liveness (the process answers) and readiness (the database answers)."""
from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from receiver.state import state

bp = Blueprint("health", __name__)
log = logging.getLogger("payhooks.receiver")


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/metrics")
def metrics():
    """Prometheus text; behind ``Authorization: Bearer <PAYHOOKS_METRICS_TOKEN>`` when that is set."""
    from models.metrics import render

    token = state().settings.metrics_token
    if token is not None:
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        expected = token.get_secret_value().encode("utf-8")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8"), expected):
            log.warning("metrics scrape refused", extra={"action": "metrics.unauthorized"})
            response = jsonify(error="unauthorized")
            response.headers["WWW-Authenticate"] = 'Bearer realm="payhooks metrics"'
            return response, 401

    body, content_type = render()
    return Response(body, content_type=content_type)


@bp.get("/readyz")
def readyz():
    try:
        with state().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("database not ready", extra={"action": "readyz.failed", "error": type(exc).__name__})
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
