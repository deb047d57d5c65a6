"""`payhooks up`: everything for a first try, in one terminal.

Embedded Postgres (unless ``PAYHOOKS_DATABASE_URL`` is set), the schema, a
ProcessOut API simulator (unless ``PAYHOOKS_PROCESSOUT_API_URL`` is set), and
the child processes: receiver, dispatcher, worker. Their output is merged into
one stream (:mod:`cli.up_output`). What other commands need to find this
`up` (database, receiver and simulator URLs) is written to
``<data dir>/runtime.env`` while it runs (:mod:`models.datadir`).
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
from sqlalchemy import text

from cli import devsecrets
from cli.embedded import EmbeddedPostgres
from cli.options import local_url
from cli.up_output import Sink, log_into, pump
from models.datadir import RUNTIME_FILE, SIMULATOR_URL, UP_URL, DataDir, find_data_dir
from models.db import make_engine
from models.migrate import upgrade
from models.settings import Settings, load_settings
from sandbox.processout_sim import Simulator

log = logging.getLogger("payhooks.up")
PROVIDER_PATHS = "<smartpay|processout|senfenico|yoco|shadhinpay>"


def child_commands(*, bind: str, workers: int, console_bind: str) -> list[tuple[str, list[str]]]:
    """(name, argv) of every process `up` runs; one line here adds another."""
    command = [sys.executable, "-m", "cli"]
    return [
        ("receiver", [*command, "serve", "--bind", bind, "--workers", str(workers)]),
        ("dispatcher", [*command, "dispatcher"]),
        ("worker", [*command, "worker", "--concurrency", "2", "--loglevel", "WARNING", "--quiet"]),
        ("console", [*command, "console", "--bind", console_bind, "--threads", "2"]),
    ]


def _die_with_parent() -> None:
    """In the child, before exec: a SIGTERM when `up` dies, even by SIGKILL (Linux; elsewhere a no-op)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _wait_ready(url: str, *, children: dict[str, subprocess.Popen], timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children.values()):
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def _stop_children(children: dict[str, subprocess.Popen]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=25)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _already_running(data_dir: DataDir) -> str | None:
    """The URL of an `up` still answering from this data directory; a stale runtime.env is removed."""
    runtime = data_dir.runtime()
    url = runtime.get(UP_URL)
    if url:
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
    (data_dir.path / RUNTIME_FILE).unlink(missing_ok=True)
    return None


def _write_runtime(data_dir: DataDir, values: dict[str, str]) -> None:
    path = data_dir.path / RUNTIME_FILE
    path.write_text("# Written by a running `payhooks up`; removed when it stops.\n"
                    + "".join(f"{name}={value}\n" for name, value in values.items()))


def _suggestion(settings: Settings) -> tuple[str, str]:
    """An order reference and Yoco checkout id no order has yet: ORD-1/ch_demo, else the next free pair."""
    engine = make_engine(settings, pool_size=1, application_name="payhooks-up")
    try:
        with engine.connect() as conn:
            taken = {row[0] for row in conn.execute(text(
                "SELECT reference FROM orders WHERE reference LIKE 'ORD-%' UNION ALL "
                "SELECT provider_payment_ref FROM orders "
                "WHERE provider = 'yoco' AND provider_payment_ref LIKE 'ch_demo%'"))}
    finally:
        engine.dispose()
    number = 1
    while f"ORD-{number}" in taken or (f"ch_demo_{number}" if number > 1 else "ch_demo") in taken:
        number += 1
    return f"ORD-{number}", "ch_demo" if number == 1 else f"ch_demo_{number}"


@click.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="host:port for the receiver")
@click.option("--workers", type=int, default=2, show_default=True, help="receiver worker processes")
@click.option("--console-bind", default="127.0.0.1:8001", show_default=True,
              help="host:port for the operator console")
def up(bind: str, workers: int, console_bind: str) -> None:
    """Run everything for a first try: embedded Postgres, schema, ProcessOut simulator, receiver, dispatcher,
    worker and the operator console.

    With PAYHOOKS_DATABASE_URL unset, Postgres runs embedded with its data
    under ./.payhooks/ (or the nearest .payhooks of a parent directory). Other
    commands run in this directory or below it find this `up`. Ctrl-C stops
    every process this command started.
    """
    started = time.monotonic()
    sink = Sink()
    log_into(sink)
    data_dir = find_data_dir()
    running = _already_running(data_dir)
    if running:
        raise click.ClickException(f"payhooks up is already running in {data_dir.project_root} on {running}: "
                                   "use that one, or stop it (Ctrl-C in its terminal) first")
    dev_secrets, created = devsecrets.ensure(data_dir.path)
    data_dir = find_data_dir()  # now it exists
    embedded: EmbeddedPostgres | None = None
    simulator: Simulator | None = None
    children: dict[str, subprocess.Popen] = {}
    pumps = []

    def _terminate(signum, frame):  # SIGTERM behaves like Ctrl-C: a clean stop
        raise KeyboardInterrupt

    # Explicit handlers: a shell that starts `up` in the background sets SIGINT
    # to "ignore", which Python would otherwise inherit.
    signal.signal(signal.SIGINT, _terminate)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        # Metrics listeners on fixed ports are for deployments: a second `up` on the host would only
        # warn that they are taken. Set the ports to have them.
        child_env = {"PAYHOOKS_DISPATCHER_METRICS_PORT": "0", "PAYHOOKS_WORKER_METRICS_PORT": "0",
                     **dev_secrets, **os.environ, "PAYHOOKS_LOG_FORMAT": "json",
                     "PAYHOOKS_DATA_DIR": str(data_dir.path)}
        runtime: dict[str, str] = {}
        settings = load_settings()
        if not settings.database_url:
            embedded = EmbeddedPostgres(data_dir.path / "pg")
            runtime["PAYHOOKS_DATABASE_URL"] = child_env["PAYHOOKS_DATABASE_URL"] = embedded.start()
            _write_runtime(data_dir, runtime)
        settings = load_settings()
        engine = make_engine(settings, application_name="payhooks-migrate", role="migration")
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        log.info("schema at head", extra={"action": "up.schema_ready"})
        if settings.processout_api_url == Settings.model_fields["processout_api_url"].default:
            simulator = Simulator(auth=f"{settings.processout_project_id}:"
                                       f"{settings.processout_project_secret.get_secret_value()}"
                                  if settings.processout_project_secret else ":",
                                  events_file=data_dir.path / "processout-sim.json").start()
            runtime["PAYHOOKS_PROCESSOUT_API_URL"] = runtime[SIMULATOR_URL] = simulator.url
            child_env["PAYHOOKS_PROCESSOUT_API_URL"] = simulator.url
            log.info("ProcessOut API simulator on %s", simulator.url,
                     extra={"action": "up.processout_simulator", "url": simulator.url})
        base_url = local_url(bind)
        runtime[UP_URL] = base_url
        _write_runtime(data_dir, runtime)

        for name, argv in child_commands(bind=bind, workers=workers, console_bind=console_bind):
            children[name] = subprocess.Popen(argv, env=child_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True, errors="replace",
                                              start_new_session=True, preexec_fn=_die_with_parent)
            pumps.append(pump(children[name].stdout, process=name, sink=sink))
        if not _wait_ready(f"{base_url}/readyz", children=children, timeout_seconds=60):
            raise click.ClickException("the receiver did not become ready; its lines above say why "
                                       "(a busy port? then try `payhooks up --bind 127.0.0.1:8010`)")
        console_url = local_url(console_bind)
        if not _wait_ready(f"{console_url}/signin", children=children, timeout_seconds=60):
            raise click.ClickException("the console did not become ready; its lines above say why "
                                       "(a busy port? then try `payhooks up --console-bind 127.0.0.1:8011`)")
        _announce(sink, settings=settings, data_dir=data_dir, base_url=base_url, simulator=simulator,
                  console_url=console_url, dev_secrets=dev_secrets if created else None,
                  seconds=time.monotonic() - started)
        while all(child.poll() is None for child in children.values()):
            time.sleep(0.5)
        gone = ", ".join(name for name, child in children.items() if child.poll() is not None)
        raise click.ClickException(f"the {gone} process exited (its last lines are above); stopped the rest. "
                                   "Fix what they say, then run `payhooks up` again")
    except KeyboardInterrupt:
        log.info("stopping payhooks…", extra={"action": "up.stopping"})
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the clean stop short
            signal.signal(signum, signal.SIG_IGN)
        _stop_children(children)
        for thread in pumps:
            thread.join(timeout=5)
        if simulator is not None:
            simulator.stop()
        if embedded is not None:
            embedded.stop()
        (data_dir.path / RUNTIME_FILE).unlink(missing_ok=True)
        log.info("stopped", extra={"action": "up.stopped"})


def _announce(sink, *, settings: Settings, data_dir: DataDir, base_url: str, simulator, console_url: str,
              dev_secrets: dict | None, seconds: float) -> None:
    secrets_file = data_dir.path / "secrets.env"
    if sink.json_lines:  # for a machine: records; the values of the secrets stay in their file
        if dev_secrets:
            log.info("dev secrets generated into %s", secrets_file,
                     extra={"action": "up.dev_secrets", "path": str(secrets_file)})
        log.info("payhooks is up on %s (ready in %.1f s)", base_url, seconds,
                 extra={"action": "up.ready", "url": base_url, "data_dir": str(data_dir.path),
                        "processout_simulator": simulator.url if simulator else None,
                        "console": console_url, "console_token_file": str(secrets_file)})
        return
    if dev_secrets:
        sink.text(f"\nDev secrets, generated once into {_shown(secrets_file)} (shown only now):")
        for name, value in dev_secrets.items():
            sink.text(f"  {name}={value}")
    reference, checkout = _suggestion(settings)
    where = "this directory" if data_dir.project_root == Path.cwd().resolve() else str(data_dir.project_root)
    simulator_line = (f"ProcessOut API simulator: {simulator.url} (the workers fetch ProcessOut events there)\n"
                      if simulator else "")
    sink.text(
        f"\npayhooks is up on {base_url} (ready in {seconds:.1f} s); data in {_shown(data_dir.path)}\n"
        f"Webhook URLs: {base_url}/webhooks/{PROVIDER_PATHS}\n"
        f"{simulator_line}"
        f"Console: {console_url}  (sign in with any name and the token {_console_token(settings)};\n"
        f"         it is PAYHOOKS_CONSOLE_TOKEN in {_shown(secrets_file)})\n"
        f"Try it in another terminal, in {where} or any directory below it:\n"
        f"  payhooks orders create --reference {reference} --provider yoco --provider-payment-ref {checkout} \\\n"
        "      --amount 2500 --currency ZAR --customer-email you@example.com --customer-phone +27110000000\n"
        f"  payhooks send yoco payment.succeeded --order-ref {checkout} --amount 2500\n"
        f"  payhooks orders show {reference}        (status: paid)\n"
        "  payhooks providers                 (every provider's event types and what they do)\n"
        "Ctrl-C stops everything.\n"
    )


def _console_token(settings: Settings) -> str:
    token = settings.console_token
    return token.get_secret_value() if token is not None else "(set PAYHOOKS_CONSOLE_TOKEN)"


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it (shorter to read)."""
    try:
        return str(path.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)
