"""POST /api/orders and GET /api/orders/<reference>: the merchant registers orders.

Both need ``Authorization: Bearer <PAYHOOKS_API_TOKEN>``; with no token
configured the API is closed. The token is never logged, not even a wrong one.
"""
from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, jsonify, request, url_for
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import RequestEntityTooLarge

from models.order_service import DuplicateOrder, OrderInput, create_order, field_errors, get_order
from receiver.state import state

bp = Blueprint("orders", __name__)
log = logging.getLogger("payhooks.receiver.orders")

RETRY_AFTER_SECONDS = "5"
DB_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)


def _reject(status: int, body: dict[str, Any], *, action: str, reason: str, **fields: Any):
    log.warning("rejected order request: %s", reason,
                extra={"action": action, "reason": reason, "status": status, **fields})
    return jsonify(body), status


def _unauthorized_reason() -> str | None:
    """Why the request is not authorised, or None when it carries the configured token."""
    configured = state().settings.api_token
    expected = configured.get_secret_value() if configured is not None else ""
    if not expected:
        return "no api token configured"
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return "missing bearer token"
    # bytes: compare_digest refuses non-ASCII str, and a header may carry anything
    if not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        return "wrong bearer token"
    return None


def _unavailable(exc: Exception):
    log.error("database unavailable for the orders api",
              extra={"action": "orders.db_unavailable",
                     "error": type(getattr(exc, "orig", None) or exc).__name__})
    response = jsonify(error="service unavailable")
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response, 503


@bp.before_request
def _authenticate():
    reason = _unauthorized_reason()
    if reason is not None:
        return _reject(401, {"error": "unauthorized"}, action="orders.unauthorized", reason=reason,
                       method=request.method, path=request.path)
    return None


@bp.post("/api/orders")
def create():
    try:
        body = request.get_json(force=True, silent=True)  # raises 413 past MAX_CONTENT_LENGTH
    except RequestEntityTooLarge:
        raise
    except Exception as exc:  # broken framing (bad chunked encoding), a client gone mid-body
        return _reject(400, {"error": "invalid order", "fields": {"body": "could not be read"}},
                       action="orders.unreadable_body", reason=f"body could not be read: {type(exc).__name__}")
    if not isinstance(body, dict):
        return _reject(400, {"error": "invalid order", "fields": {"body": "must be a JSON object"}},
                       action="orders.invalid", reason="body is not a JSON object")
    try:
        data = OrderInput.model_validate(body)
    except ValidationError as exc:
        fields = field_errors(exc)
        # field names only: the values may be a customer's email or phone
        return _reject(400, {"error": "invalid order", "fields": fields}, action="orders.invalid",
                       reason="invalid fields: " + ", ".join(sorted(fields)), fields=sorted(fields))
    try:
        with state().engine.begin() as conn:
            order = create_order(conn, data)
    except DuplicateOrder as exc:
        return _reject(409, {"error": "order already registered", "reference": exc.reference,
                             "conflict": exc.field},
                       action="orders.duplicate", reason=str(exc), reference=exc.reference,
                       conflict=exc.field)
    except DB_UNAVAILABLE as exc:
        return _unavailable(exc)
    log.info("registered order %s", order["reference"],
             extra={"action": "orders.created", "reference": order["reference"],
                    "order_id": order["id"], "provider": order["provider"]})
    response = jsonify(order)
    response.headers["Location"] = url_for("orders.show", reference=order["reference"])
    return response, 201


@bp.get("/api/orders/<path:reference>")
def show(reference: str):
    try:
        with state().engine.connect() as conn:
            order = get_order(conn, reference)
    except DB_UNAVAILABLE as exc:
        return _unavailable(exc)
    if order is None:
        log.info("no order %s", reference, extra={"action": "orders.not_found", "reference": reference})
        return jsonify(error="order not found", reference=reference), 404
    return jsonify(order), 200
