"""POST /webhooks/<provider>: verify the raw bytes, store once, answer fast."""
from __future__ import annotations

import logging
import time

import psycopg
from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from models import metrics
from models.ingest import IngestBusy
from providers.base import EnvelopeError, VerificationError
from receiver.state import state

bp = Blueprint("webhooks", __name__)
log = logging.getLogger("payhooks.receiver")

MAX_KEY_LENGTH = 255
RETRY_AFTER_SECONDS = "5"


def _reject(status: int, error: str, *, provider: str, action: str, reason: str):
    log.warning(
        "rejected %s webhook: %s",
        provider,
        reason,
        extra={"action": action, "provider": provider, "reason": reason, "status": status},
    )
    return jsonify(error=error), status


@bp.post("/webhooks/<provider>")
def receive(provider: str):
    started = time.perf_counter()
    label = provider if provider in state().adapters else "unknown"
    try:
        response, status = _receive(provider)
    except RequestEntityTooLarge:
        metrics.WEBHOOK_REQUESTS.labels(label, "413").inc()
        raise
    metrics.WEBHOOK_REQUESTS.labels(label, str(status)).inc()
    metrics.INGEST_SECONDS.labels(label).observe(time.perf_counter() - started)
    return response, status


def _receive(provider: str):
    app_state = state()
    adapter = app_state.adapters.get(provider)
    if adapter is None:
        return _reject(404, "unknown provider", provider=provider[:32], action="webhook.unknown_provider",
                       reason="no such provider")
    if not adapter.configured:  # not live: nothing read, nothing stored
        return _reject(404, "provider not configured", provider=provider,
                       action="webhook.unconfigured_provider", reason="no secret configured")
    limit = app_state.settings.body_limit_for(provider)
    if adapter.max_body_bytes is not None:
        limit = min(limit, adapter.max_body_bytes)
    request.max_content_length = limit
    try:
        body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    except RequestEntityTooLarge:
        raise
    except Exception as exc:  # broken framing (bad chunked encoding), a client gone mid-body
        return _reject(400, "bad request", provider=provider, action="webhook.unreadable_body",
                       reason=f"body could not be read: {type(exc).__name__}")
    headers = lowercase_headers(request.environ)

    try:
        verified = adapter.verify(body=body, headers=headers)
    except VerificationError as exc:
        metrics.VERIFICATION_FAILURES.labels(provider, exc.reason.split(" (")[0]).inc()
        return _reject(401, "unauthorized", provider=provider, action="webhook.unverified",
                       reason=exc.reason)
    try:
        envelope = adapter.parse(body=body, headers=headers)
        if len(envelope.event_key) > MAX_KEY_LENGTH or len(envelope.event_type) > MAX_KEY_LENGTH:
            raise EnvelopeError("event key or type longer than 255 characters")
    except EnvelopeError as exc:
        return _reject(400, "bad request", provider=provider, action="webhook.bad_envelope",
                       reason=exc.reason)

    stored_headers = app_state.redactor.headers(headers, secret_names=adapter.secret_headers)
    try:
        stored = app_state.store.store(
            provider=provider,
            event_key=envelope.event_key,
            event_type=envelope.event_type,
            livemode=envelope.livemode,
            raw_body=body,
            headers=stored_headers,
            payload=envelope.payload,
            payload_is_body=envelope.payload_is_body,
            secret_index=verified.secret_index,
            verify_method=verified.method,
        )
    except psycopg.DataError as exc:
        return _reject(400, "bad request", provider=provider, action="webhook.unstorable",
                       reason=f"payload not storable: {type(exc).__name__}")
    except (psycopg.Error, IngestBusy) as exc:  # unreachable, timed out (PoolTimeout), failed over; queue full
        busy = isinstance(exc, IngestBusy)
        log.error(
            "%s, asking %s to retry", "write queue full" if busy else "database unavailable", provider,
            extra={"action": "webhook.busy" if busy else "webhook.db_unavailable", "provider": provider,
                   "error": type(exc).__name__},
        )
        response = jsonify(error="service unavailable")
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response, 503

    outcome = "accepted" if stored.created else "duplicate"
    if log.isEnabledFor(logging.DEBUG):  # one line per webhook cost 4 % of the CPU at saturation: debug only
        log.debug(
            "%s %s event %s", outcome, provider, stored.id,
            extra={"action": f"webhook.{outcome}", "provider": provider, "event_id": stored.id,
                   "event_type": envelope.event_type},
        )
    return Response(b'{"id":%d,"status":"%s"}\n' % (stored.id, outcome.encode()), mimetype="application/json"), 200


def lowercase_headers(environ: dict) -> dict[str, str]:
    """The request's headers, names in lower case, read off the WSGI environ in one pass (as
    werkzeug's ``EnvironHeaders`` does, without its per-header title-casing)."""
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
               if key[:5] == "HTTP_" and key not in _CONTENT_IN_HTTP}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


_CONTENT_IN_HTTP = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})
