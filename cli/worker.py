"""`payhooks worker`: a Celery worker for process_event, and its quiet mode under `payhooks up`.

Its multiprocess metrics directory must be set before ``prometheus_client`` is
first imported (:mod:`models.multiproc`), so the modules that load it (the
metrics, the Celery app and its tasks) are imported in the command, after
that, rather than at the top of this module.
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import celery
import click
from celery import signals
from celery.exceptions import SecurityWarning

from cli.options import settings_with_database
from models.multiproc import enable_multiprocess


@click.command()
@click.option("--concurrency", type=int, default=None, help="processes or threads [CPU count]")
@click.option("--pool", type=click.Choice(["prefork", "threads", "solo"]), default="prefork", show_default=True)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--hostname", "-n", default=None,
              help="Celery node name [payhooks-<pid>@<host>]; unique per process, so several workers can "
                   "share a host and a broker")
@click.option("--quiet", is_flag=True, hidden=True,
              help="no Celery banner or root warning: one `worker.ready` log line instead (`payhooks up`)")
def worker(concurrency: int | None, pool: str, loglevel: str, hostname: str | None, quiet: bool) -> None:
    """Run a Celery worker for process_event (same as `celery -A workers worker`)."""
    settings = settings_with_database()
    enable_multiprocess("worker")  # before prometheus_client is imported; pool children inherit it
    from models import metrics
    from workers.celery_app import make_celery

    metrics.serve(settings.worker_metrics_port, role="worker")
    # Celery's default node name, celery@<host>, is the name of an exclusive remote-control queue on
    # RabbitMQ: a second worker with it on the same broker (a second process on the host, or a
    # restart before the broker dropped the killed one's connection) dies with RESOURCE_LOCKED.
    node = hostname or f"payhooks-{os.getpid()}@%h"
    argv = ["worker", f"--loglevel={loglevel}", f"--pool={pool}", f"--hostname={node}", "--without-gossip",
            "--without-mingle"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if quiet:
        argv.insert(0, "--quiet")  # celery's own option, before its `worker` sub-command
        quiet_worker(queue=settings.queue_name)
    make_celery(settings).worker_main(argv)


def quiet_worker(*, queue: str) -> None:
    """Celery without its banner (``--quiet``) or root warning; our ``worker.ready`` line says both."""
    warnings.filterwarnings("ignore", category=SecurityWarning)
    # Our lines ("event 3 succeeded") at our level, even when `--loglevel WARNING` quiets Celery's own
    logging.getLogger("payhooks").setLevel(os.environ.get("PAYHOOKS_LOG_LEVEL", "INFO").upper())
    log = logging.getLogger("payhooks.worker")

    @signals.worker_ready.connect(weak=False)
    def _ready(sender: Any = None, **_: Any) -> None:
        controller = getattr(sender, "controller", None)
        concurrency = getattr(controller, "concurrency", None)
        pool = type(getattr(controller, "pool", None)).__module__.rsplit(".", 1)[-1]
        root = " (running as root: fine in a container, not recommended elsewhere)" if os.getuid() == 0 else ""
        log.info("worker ready: %s %s processes on queue %s, Celery %s%s", concurrency, pool, queue,
                 celery.__version__, root, extra={"action": "worker.ready", "concurrency": concurrency,
                                                  "queue": queue, "root": os.getuid() == 0})
