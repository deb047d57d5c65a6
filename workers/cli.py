"""The `payhooks` command: every entry point builds its settings here and passes them down."""
from __future__ import annotations

import os
import signal
import sys

import click

from models.db import make_engine
from models.settings import Settings, load_settings


SERVICES = frozenset({"up", "serve", "dispatcher", "worker"})
"""Long-running commands: they log at INFO. The others print for a person and log only warnings,
unless --verbose."""


def _configure_logging(*, level: str | None) -> None:
    """JSON lines (readable on a terminal), with every configured secret redacted."""
    from pydantic import ValidationError

    from models import logs
    from models.redaction import Redactor

    try:
        redactor = Redactor.from_settings(load_settings())
    except ValidationError:  # the command itself reports bad settings
        redactor = Redactor()
    logs.configure(redactor=redactor, level=level)  # also the redactor of every CLI output and error string


def _settings_with_database() -> Settings:
    from models.datadir import find_data_dir, no_database_hint

    settings = load_settings()  # bad settings: _Group ends the command with exit 2, naming each
    if not settings.database_url:
        raise click.ClickException(no_database_hint(find_data_dir()))
    return settings


class _Group(click.Group):
    """Bad settings (exit 2) or an unreachable database end any command with one readable line, never a
    traceback."""

    def invoke(self, ctx: click.Context):
        from pydantic import ValidationError
        from sqlalchemy.exc import InterfaceError, OperationalError

        from workers.cli_text import SettingsError

        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            raise SettingsError.of(exc) from None
        except (OperationalError, InterfaceError) as exc:
            raise click.ClickException(
                f"database unavailable ({type(getattr(exc, 'orig', None) or exc).__name__}): check that Postgres "
                "answers at PAYHOOKS_DATABASE_URL, or, under `payhooks up`, that `up` still runs") from None


@click.group(cls=_Group)
@click.version_option(package_name="payhooks", prog_name="payhooks", message="%(prog)s %(version)s")
@click.option("--verbose", "-v", is_flag=True, help="also print the log lines of commands (they go to stderr)")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """payhooks: verified, durable, exactly-once payment webhooks."""
    quiet = ctx.invoked_subcommand not in SERVICES and not verbose and "PAYHOOKS_LOG_LEVEL" not in os.environ
    _configure_logging(level="WARNING" if quiet else None)


@main.group()
def db() -> None:
    """Schema management (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    from models.migrate import upgrade

    engine = make_engine(_settings_with_database(), application_name="payhooks-migrate", role="migration")
    try:
        upgrade(engine, revision)
    finally:
        engine.dispose()
    click.echo(f"schema at {revision}")


@main.command()
@click.option("--bind", default="0.0.0.0:8000", show_default=True, help="host:port to listen on")
@click.option("--workers", type=int, default=None, help="processes [granian: CPUs; gunicorn: 2 × CPUs + 1]")
@click.option("--threads", type=int, default=None, help="request threads per process [granian: 32; gunicorn: 4]")
@click.option("--server", type=click.Choice(["granian", "gunicorn"]), default="granian", show_default=True,
              help="HTTP server: granian (Rust) or gunicorn gthread (the former default, for comparison)")
def serve(bind: str, workers: int | None, threads: int | None, server: str) -> None:
    """Run the receiver (granian, WSGI)."""
    _settings_with_database()  # bad settings or no database: one line and an exit status, here
    # The server runs in an interpreter that imports only the receiver (`python -m receiver`): its
    # worker processes are forked from it and would otherwise carry every module of the command line.
    argv = [sys.executable, "-m", "receiver", "--bind", bind, "--server", server]
    if workers:
        argv += ["--workers", str(workers)]
    if threads:
        argv += ["--threads", str(threads)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


@main.command()
def dispatcher() -> None:
    """Claim due events, publish them, re-arm expired leases (runs until SIGTERM/Ctrl-C)."""
    from workers.celery_app import make_celery, publisher
    from workers.dispatcher import Dispatcher
    from workers.housekeeping import Housekeeper
    from workers.watch import start_watcher

    from models import metrics, retention

    settings = _settings_with_database()
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


@main.command()
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
    from models.multiproc import enable_multiprocess

    settings = _settings_with_database()
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
        from workers.up_output import quiet_worker

        argv.insert(0, "--quiet")  # celery's own option, before its `worker` sub-command
        quiet_worker(queue=settings.queue_name)
    make_celery(settings).worker_main(argv)


def _add_subcommands() -> None:
    from console.cli import console
    from workers.events_cli import events
    from workers.incidents_cli import incidents
    from workers.orders_cli import orders
    from workers.reconcile_cli import reconcile
    from workers.replay_cli import replay
    from workers.send_cli import providers, send
    from workers.stats_cli import stats
    from workers.up_cli import up

    main.add_command(orders)
    main.add_command(events)
    main.add_command(replay)
    main.add_command(stats)
    main.add_command(up)
    main.add_command(send)
    main.add_command(providers)

    from workers.archive_cli import archive_group
    from workers.prune_cli import prune

    main.add_command(prune)
    main.add_command(archive_group)
    main.add_command(incidents)
    main.add_command(reconcile)
    main.add_command(console)


_add_subcommands()

if __name__ == "__main__":
    main()
