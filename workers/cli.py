"""The `payhooks` command: every entry point builds its settings here and passes them down."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx

from models.db import make_engine
from models.settings import Settings, load_settings


def _configure_logging() -> None:
    """JSON lines (readable on a terminal), with every configured secret redacted."""
    from pydantic import ValidationError

    from models import logs

    try:
        secrets_to_hide = load_settings().secret_values()
    except ValidationError:  # the command itself reports bad settings
        secrets_to_hide = []
    logs.configure(secrets=secrets_to_hide)


def _settings_with_database() -> Settings:
    settings = load_settings()
    if not settings.database_url:
        raise click.ClickException(
            "PAYHOOKS_DATABASE_URL is not set; set it, or run `payhooks up` for the embedded database"
        )
    return settings


@click.group()
def main() -> None:
    """payhooks: verified, durable, exactly-once payment webhooks."""
    _configure_logging()


@main.group()
def db() -> None:
    """Schema management (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    from models.migrate import upgrade

    engine = make_engine(_settings_with_database())
    try:
        upgrade(engine, revision)
    finally:
        engine.dispose()
    click.echo(f"schema at {revision}")


@main.command()
@click.option("--bind", default="0.0.0.0:8000", show_default=True, help="host:port to listen on")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes [2 × CPUs + 1]")
@click.option("--threads", type=int, default=None, help="threads per worker [4]")
def serve(bind: str, workers: int | None, threads: int | None) -> None:
    """Run the receiver under gunicorn."""
    from models.multiproc import enable_multiprocess
    from receiver.server import ReceiverServer, default_options

    settings = _settings_with_database()
    enable_multiprocess("receiver")  # before any worker imports prometheus_client
    ReceiverServer(settings, default_options(bind=bind, workers=workers, threads=threads)).run()


@main.command()
def dispatcher() -> None:
    """Claim due events, publish them, re-arm expired leases (runs until SIGTERM/Ctrl-C)."""
    from workers.celery_app import make_celery, publisher
    from workers.dispatcher import Dispatcher

    from models import metrics

    settings = _settings_with_database()
    metrics.serve(settings.dispatcher_metrics_port, role="dispatcher")
    engine = make_engine(settings, pool_size=2, application_name="payhooks-dispatcher")
    app = make_celery(settings)
    runner = Dispatcher(settings=settings, engine=engine,
                        publish=publisher(app, batch_size=settings.worker_batch_size,
                                          spread=settings.worker_concurrency or os.cpu_count() or 1))

    def _stop(signum, frame):
        runner.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        runner.run()
    finally:
        engine.dispose()


@main.command()
@click.option("--concurrency", type=int, default=None, help="processes or threads [CPU count]")
@click.option("--pool", type=click.Choice(["prefork", "threads", "solo"]), default="prefork", show_default=True)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--hostname", "-n", default=None,
              help="Celery node name [payhooks-<pid>@<host>]; unique per process, so several workers can "
                   "share a host and a broker")
def worker(concurrency: int | None, pool: str, loglevel: str, hostname: str | None) -> None:
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
    make_celery(settings).worker_main(argv)


def _wait_ready(url: str, *, children: list[subprocess.Popen], timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def _stop_children(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=25)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="host:port for the receiver")
@click.option("--workers", type=int, default=2, show_default=True, help="receiver worker processes")
def up(bind: str, workers: int) -> None:
    """Run everything for a first try: embedded Postgres, schema, receiver, dispatcher, worker.

    With PAYHOOKS_DATABASE_URL unset, Postgres runs embedded with its data under
    ./.payhooks/. Ctrl-C stops every process this command started.
    """
    from models.migrate import upgrade
    from workers import devsecrets
    from workers.embedded import EmbeddedPostgres

    started = time.monotonic()
    settings = load_settings()
    data_dir = Path(settings.data_dir)
    dev_secrets, created = devsecrets.ensure(data_dir)
    runtime_env = data_dir / "runtime.env"
    embedded: EmbeddedPostgres | None = None
    children: list[subprocess.Popen] = []

    def _terminate(signum, frame):  # SIGTERM behaves like Ctrl-C: a clean stop
        raise KeyboardInterrupt

    # Explicit handlers: a shell that starts `up` in the background sets SIGINT
    # to "ignore", which Python would otherwise inherit.
    signal.signal(signal.SIGINT, _terminate)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        child_env = {**dev_secrets, **os.environ}
        if not settings.database_url:
            embedded = EmbeddedPostgres(data_dir / "pg")
            database_url = embedded.start()
            runtime_env.write_text(f"PAYHOOKS_DATABASE_URL={database_url}\n")
            child_env["PAYHOOKS_DATABASE_URL"] = database_url
        settings = load_settings()
        engine = make_engine(settings)
        try:
            upgrade(engine)
        finally:
            engine.dispose()

        command = [sys.executable, "-m", "workers.cli"]
        children.append(
            subprocess.Popen([*command, "serve", "--bind", bind, "--workers", str(workers)], env=child_env)
        )
        children.append(subprocess.Popen([*command, "dispatcher"], env=child_env))
        children.append(subprocess.Popen([*command, "worker", "--concurrency", "2", "--loglevel", "WARNING"],
                                         env=child_env))
        host, _, port = bind.rpartition(":")
        base_url = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}"
        if not _wait_ready(f"{base_url}/readyz", children=children, timeout_seconds=60):
            raise click.ClickException("the receiver did not become ready; see the log above")
        if created:
            click.echo(f"\nDev secrets, generated once into {data_dir / 'secrets.env'} (shown only now):")
            for name, value in dev_secrets.items():
                click.echo(f"  {name}={value}")
        click.echo(
            f"\npayhooks is up on {base_url} (ready in {time.monotonic() - started:.1f} s).\n"
            f"Webhook URLs: {base_url}/webhooks/<smartpay|processout|senfenico|yoco|shadhinpay>\n"
            "Try it:\n"
            "  payhooks orders create --reference ORD-1 --provider yoco --provider-payment-ref ch_demo \\\n"
            "      --amount 2500 --currency ZAR --customer-email you@example.com --customer-phone +27110000000\n"
            "  payhooks send yoco payment.succeeded --order-ref ch_demo --amount 2500\n"
            "  payhooks orders show ORD-1        (status: paid)\n"
            "Ctrl-C stops everything.\n"
        )
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        raise click.ClickException("a payhooks process exited; stopping the rest")
    except KeyboardInterrupt:
        click.echo("\nstopping payhooks…")
    finally:
        _stop_children(children)
        if embedded is not None:
            embedded.stop()
            runtime_env.unlink(missing_ok=True)


@main.command()
@click.argument("provider")
@click.argument("event_type")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True,
              help="receiver base URL, or a full webhook URL")
@click.option("--order-ref", default=None, help="the order's provider payment reference")
@click.option("--amount", type=int, default=1000, show_default=True, help="amount in minor units")
@click.option("--currency", default=None, help="ISO 4217 code [the provider's usual one]")
@click.option("--event-id", default=None, help="reuse an event id (to see duplicate handling)")
def send(provider: str, event_type: str, url: str, order_ref: str | None, amount: int,
         currency: str | None, event_id: str | None) -> None:
    """Build, sign and post a realistic PROVIDER event of EVENT_TYPE."""
    from receiver.providers.registry import PROVIDERS, build_adapters
    from receiver.providers.samples import sample_body

    if provider not in PROVIDERS:
        raise click.BadParameter(f"choose one of {', '.join(PROVIDERS)}", param_hint="PROVIDER")
    settings = load_settings()
    if provider == "processout":
        auth = settings.processout_basic_auth
        secret = auth.get_secret_value() if auth else ""
    else:
        configured = settings.secrets_for(provider)
        if not configured:
            raise click.ClickException(
                f"no {provider} secret configured: set PAYHOOKS_{provider.upper()}_SECRETS "
                "or run `payhooks up` once to generate dev secrets"
            )
        secret = configured[0]
    body = sample_body(
        provider, event_type,
        order_ref=order_ref or f"ord_{secrets.token_hex(6)}",
        amount_minor=amount, currency=currency, event_id=event_id,
    )
    headers = {"Content-Type": "application/json",
               **build_adapters(settings)[provider].sign(body=body, secret=secret)}
    target = url if "/webhooks/" in url else f"{url.rstrip('/')}/webhooks/{provider}"
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"could not reach {target}: {exc}") from None
    click.echo(f"{response.status_code} {response.text.strip()}")
    if not response.is_success:
        sys.exit(1)


def _add_subcommands() -> None:
    from workers.events_cli import events
    from workers.orders_cli import orders
    from workers.replay_cli import replay
    from workers.stats_cli import stats

    main.add_command(orders)
    main.add_command(events)
    main.add_command(replay)
    main.add_command(stats)


_add_subcommands()

if __name__ == "__main__":
    main()
