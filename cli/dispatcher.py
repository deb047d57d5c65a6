"""`payhooks dispatcher`: the dispatch loop, with the housekeeper and the watcher beside it."""
from __future__ import annotations

import os
import signal

import click

from cli.options import settings_with_database
from models import metrics, retention
from models.db import make_engine
from workers.celery_app import make_celery, publisher
from workers.dispatcher import Dispatcher
from workers.housekeeping import Housekeeper
from workers.watch import start_watcher


@click.command()
def dispatcher() -> None:
    """Claim due events, publish them, re-arm expired leases (runs until SIGTERM/Ctrl-C)."""
    settings = settings_with_database()
    try:
        retention.check_policy(settings)
    except retention.PolicyError as exc:
        raise click.UsageError(str(exc)) from None
    metrics.serve(settings.dispatcher_metrics_port, role="dispatcher")
    engine = make_engine(settings, pool_size=3, application_name="payhooks-dispatcher", role="dispatcher")
    app = make_celery(settings)
    runner = Dispatcher(settings=settings, engine=engine,
                        publish=publisher(app, batch_size=settings.worker_batch_size,
                                          spread=settings.worker_concurrency or os.cpu_count() or 1))
    keeper = Housekeeper(settings=settings, engine=engine, stop_event=runner.stop_event).start()

    def _stop(signum, frame):
        runner.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # incidents, alerts and provider silence, beside the dispatch loop
    watcher = start_watcher(settings, engine, stop_event=runner.stop_event)
    try:
        runner.run()
    finally:
        watcher.join(timeout=30)
        keeper.join(timeout=30)
        engine.dispose()
