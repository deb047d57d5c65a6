"""The Celery app, built from settings by a function (``workers/celery.py`` is what ``celery -A`` finds).

RabbitMQ in production: durable queue, persistent messages, publisher
confirms, late acks, a lost worker's message requeued, prefetch 1. Without a
broker URL the broker is kombu's SQLAlchemy transport on the database itself,
so `payhooks up` needs no service. Messages carry only the event id; every
delay lives in Postgres, never in a countdown.
"""
from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals
from kombu import Queue

from models.db import make_engine, normalise_url
from models.settings import Settings
from workers import sqla_transport
from workers.handlers.loading import load_handlers

PROCESS_EVENT = "payhooks.process_event"
SEND_DELIVERY = "payhooks.send_delivery"
PROCESS_EVENTS = "payhooks.process_events"
SEND_DELIVERIES = "payhooks.send_deliveries"


def deliveries_queue(settings: Settings) -> str:
    """Deliveries wait on slow SMTP and merchant endpoints: their own queue, so events never queue behind them."""
    return f"{settings.queue_name}.deliveries"


def broker_url(settings: Settings) -> str:
    if settings.broker_url:
        return settings.broker_url
    if not settings.database_url:
        raise RuntimeError("set PAYHOOKS_BROKER_URL or PAYHOOKS_DATABASE_URL")
    sqla_transport.register()
    return f"{sqla_transport.SCHEME}+" + normalise_url(settings.database_url)


def make_celery(settings: Settings) -> Celery:
    url = broker_url(settings)
    app = Celery("payhooks", broker=url, set_as_current=False)
    time_limit = max(5, int(settings.lease_seconds * 0.75))
    # kombu's SQLAlchemy transport hands every transport option to create_engine,
    # so it gets none (workers.sqla_transport sets its polling interval instead).
    sqla = url.startswith(("sqla+", f"{sqla_transport.SCHEME}+"))
    if sqla:
        sqla_transport.register()
    transport_options: dict[str, Any] = {} if sqla else {"confirm_publish": True}
    app.conf.update(
        task_default_queue=settings.queue_name,
        task_queues=[Queue(settings.queue_name, durable=True),
                     Queue(deliveries_queue(settings), durable=True)],
        task_routes={task: {"queue": deliveries_queue(settings)} for task in (SEND_DELIVERY, SEND_DELIVERIES)},
        task_default_delivery_mode="persistent",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=time_limit,
        task_soft_time_limit=max(3, time_limit - 5),
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3},
        worker_hijack_root_logger=False,
        # No remote control: nothing uses it, and its per-node pidbox queue makes two
        # workers with the same node name on one host fail at start.
        worker_enable_remote_control=False,
        worker_concurrency=settings.worker_concurrency or os.cpu_count() or 1,
    )
    app.payhooks_settings = settings  # type: ignore[attr-defined]
    load_handlers(settings.handler_modules)  # a bad module stops the worker at boot, not per task
    _register_tasks(app)
    return app


_runtime: Any = None


def _get_runtime(app: Celery):
    """One Runtime (engine, HTTP client) per worker process, built after the fork."""
    global _runtime
    if _runtime is None or _runtime.pid != os.getpid():
        from workers.processing import Runtime

        settings: Settings = app.payhooks_settings  # type: ignore[attr-defined]
        _runtime = Runtime(settings=settings, engine=make_engine(settings, pool_size=2,
                                                                 application_name="payhooks-worker",
                                                                 role="worker"))
    return _runtime


@signals.worker_process_init.connect
def _reset_after_fork(**_: Any) -> None:
    global _runtime
    _runtime = None


def _register_tasks(app: Celery) -> None:
    @app.task(name=PROCESS_EVENT, bind=True, acks_late=True)
    def process_event(self, event_id: int) -> str:
        from workers.processing import process_event as run

        return run(_get_runtime(self.app), int(event_id))

    @app.task(name=SEND_DELIVERY, bind=True, acks_late=True)
    def send_delivery(self, delivery_id: int) -> str:
        from workers.deliveries import send_delivery as run

        return run(_get_runtime(self.app), int(delivery_id))

    @app.task(name=PROCESS_EVENTS, bind=True, acks_late=True)
    def process_events(self, event_ids: list[int]) -> dict[int, str]:
        from workers.processing import process_events as run

        return run(_get_runtime(self.app), [int(i) for i in event_ids])

    @app.task(name=SEND_DELIVERIES, bind=True, acks_late=True)
    def send_deliveries(self, delivery_ids: list[int]) -> list[str]:
        from workers.deliveries import send_delivery as run

        runtime = _get_runtime(self.app)
        return [run(runtime, int(i)) for i in delivery_ids]


def publisher(app: Celery, *, batch_size: int = 1, spread: int = 1):
    """A publish function for the dispatcher: confirmed messages of at most ``batch_size`` ids each.

    Batch sizes follow the backlog: what one dispatch claimed is cut into as
    few messages as ``batch_size`` allows, but into at least ``spread`` (the
    worker processes) when there are that many ids, so every process gets a
    share. A trickle goes out one id per message at once; a backlog in
    batches of up to ``batch_size``, each handled with a fixed number of
    statements. A batch task takes a list of ids; the single-id tasks
    (``batch_size`` 1 and a single-id task name) stay for messages already
    queued by older versions.
    """

    def publish(task: str, ids: list[int]) -> None:
        batched = task in (PROCESS_EVENTS, SEND_DELIVERIES)
        with app.producer_or_acquire() as producer:
            if not batched:
                for row_id in ids:
                    app.send_task(task, args=[row_id], producer=producer)
                return
            for chunk in split(ids, batch_size=batch_size, spread=spread):
                app.send_task(task, args=[chunk], producer=producer)

    return publish


def split(ids: list[int], *, batch_size: int, spread: int) -> list[list[int]]:
    """``ids`` in ``max(ceil(n / batch_size), min(spread, n))`` messages of near-equal size, in order."""
    if not ids:
        return []
    messages = max(-(-len(ids) // batch_size), min(spread, len(ids)))
    size = -(-len(ids) // messages)
    return [ids[start:start + size] for start in range(0, len(ids), size)]
