"""Prometheus metrics of every payhooks process, and how each process exposes them.

The receiver (gunicorn workers) and the Celery worker (prefork children) are
several processes, so they run prometheus-client's multiprocess mode: each
process writes its samples under ``PROMETHEUS_MULTIPROC_DIR`` and the scrape
aggregates them. That variable must be set before ``prometheus_client`` is
first imported; :func:`models.multiproc.enable_multiprocess` does it for
`payhooks serve` and `payhooks worker`. The receiver answers ``GET /metrics``; the dispatcher and
the worker listen on their own metrics port.
"""
from __future__ import annotations

import logging
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

log = logging.getLogger("payhooks.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# receiver
WEBHOOK_REQUESTS = Counter("payhooks_webhook_requests_total", "Webhook requests by provider and HTTP status",
                           ["provider", "status"])
VERIFICATION_FAILURES = Counter("payhooks_verification_failures_total",
                                "Requests that failed verification, by reason", ["provider", "reason"])
INGEST_SECONDS = Histogram("payhooks_ingest_seconds", "Time to verify, store and answer one webhook",
                           ["provider"], buckets=LATENCY_BUCKETS)
# worker
EVENT_ATTEMPTS = Counter("payhooks_event_attempts_total", "Event attempts by provider and outcome",
                         ["provider", "outcome"])
HANDLER_SECONDS = Histogram("payhooks_handler_seconds", "Time to resolve and handle one event attempt",
                            ["provider"], buckets=LATENCY_BUCKETS)
DELIVERIES = Counter("payhooks_deliveries_total", "Delivery tries by kind and outcome", ["kind", "outcome"])
# dispatcher
DISPATCHED = Counter("payhooks_dispatched_total", "Messages published by the dispatcher", ["lane"])
PUBLISH_FAILURES = Counter("payhooks_publish_failures_total", "Batches whose publish failed", ["lane"])
ROWS_BY_STATUS = Gauge("payhooks_rows", "Events and deliveries by status", ["table", "status"],
                       multiprocess_mode="livemax")
DISPATCH_LAG = Gauge("payhooks_dispatch_lag_seconds", "Now minus the due time of the oldest due row",
                     ["lane"], multiprocess_mode="livemax")
# the dispatcher's watcher (incidents, provider silence)
LAST_RECEIVED = Gauge("payhooks_last_received_timestamp_seconds",
                      "Unix time of the provider's last accepted event (reconciled ones not counted)", ["provider"],
                      multiprocess_mode="livemax")
SILENCE_THRESHOLD = Gauge("payhooks_silence_threshold_seconds",
                          "PAYHOOKS_SILENCE_MINUTES_<PROVIDER> in seconds, for providers watched for silence",
                          ["provider"], multiprocess_mode="livemax")
INCIDENTS = Gauge("payhooks_incidents", "Incidents by status", ["status"], multiprocess_mode="livemax")
RECONCILED = Counter("payhooks_reconciled_total", "Events stored by reconciliation (never received)",
                     ["provider"])
OLDEST_PENDING = Gauge("payhooks_oldest_pending_seconds", "Age of the oldest event not yet handled",
                       multiprocess_mode="livemax")


def registry() -> CollectorRegistry:
    """The registry to scrape: aggregated over processes in multiprocess mode."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    from prometheus_client import multiprocess

    aggregated = CollectorRegistry()
    multiprocess.MultiProcessCollector(aggregated)
    return aggregated


def render() -> tuple[bytes, str]:
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve(port: int | None, *, role: str) -> bool:
    """Listen for scrapes on ``port`` (0 or None: off). A busy port is logged, never fatal."""
    if not port:
        return False
    try:
        start_http_server(port, addr="0.0.0.0", registry=registry())
    except OSError as exc:
        log.warning("metrics port %s unavailable: %s", port, exc,
                    extra={"action": "metrics.port_unavailable", "role": role, "port": port})
        return False
    log.info("metrics on :%s", port, extra={"action": "metrics.listening", "role": role, "port": port})
    return True


def mark_process_dead(pid: int) -> None:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
