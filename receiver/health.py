"""Liveness (the process answers) and readiness (the database answers)."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from receiver import state

bp = Blueprint("health", __name__)
log = logging.getLogger("payhooks.receiver")


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/metrics")
def metrics():
    from models.metrics import render

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
