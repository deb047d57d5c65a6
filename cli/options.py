"""What the commands share: settings and a database engine, options, questions, and the steps of a replay.

Settings with a database (or one line saying where `payhooks up` would have
put it), an engine per command, the time options (ISO 8601 or relative:
``30m``, ``1h``, ``2d``: :mod:`models.queries.values`), the event filter options, the status check, the
confirmation prompt, who is acting for the audit row, and the two steps
`replay` and `incidents replay` share. What a command prints lives in
:mod:`cli.output`.

This module is imported by `send` and `providers` too, which never open the
database: SQLAlchemy (and the query models, which load it) is imported by the
helpers that use it, when they are called.
"""
from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cli.output import database_unavailable, ids_text, progress
from models.datadir import find_data_dir, no_database_hint
from models.queries.values import parse_when, split_values
from models.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from models.queries.events import EventFilter
    from models.replays import Plan


def settings_with_database() -> Settings:
    """The settings, or one readable line when there is no database to use (bad settings: exit 2 in `main`)."""
    settings = load_settings()
    if not settings.database_url:
        raise click.ClickException(no_database_hint(find_data_dir()))
    return settings


@contextmanager
def operator_engine(settings: Settings) -> Iterator[Engine]:
    """A one-connection engine for an operator command; an unreachable database is one line, exit 1."""
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from models.db import make_engine

    engine = make_engine(settings, pool_size=1, application_name="payhooks-ops", role="operator")
    try:
        yield engine
    except (OperationalError, InterfaceError, PoolTimeout) as exc:
        raise database_unavailable(exc) from None
    finally:
        engine.dispose()


def local_url(bind: str) -> str:
    """The URL a browser on this host reaches a ``host:port`` bind address at."""
    host, _, port = bind.rpartition(":")
    return f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}"


class WhenType(click.ParamType):
    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


WHEN = WhenType()


def check_statuses(statuses: tuple[str, ...], *, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(statuses) - set(allowed))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} (choose from {', '.join(allowed)})",
                                 param_hint="--status")


def event_filter_options(*, default_status: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """--status --provider --type --order --since --until, shared by `events list` and `replay`."""
    status_help = "event status (repeat or comma-separate)" + (
        f" [default: {','.join(default_status)}]" if default_status else "")
    options = [
        click.option("--status", "statuses", multiple=True, help=status_help),
        click.option("--provider", "providers", multiple=True, help="provider name (repeat or comma-separate)"),
        click.option("--type", "types", multiple=True, help="the provider's event type, e.g. payment.succeeded"),
        click.option("--order", "order_reference", default=None, help="the merchant's order reference"),
        click.option("--since", type=WHEN, default=None, help="received at or after: ISO 8601 or 30m/1h/2d ago"),
        click.option("--until", type=WHEN, default=None, help="received at or before: ISO 8601 or 30m/1h/2d ago"),
    ]

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def build_event_filter(*, statuses: tuple[str, ...], providers: tuple[str, ...], types: tuple[str, ...],
                       order_reference: str | None, since: datetime | None,
                       until: datetime | None) -> EventFilter:
    from models.queries.events import EventFilter

    return EventFilter(statuses=split_values(statuses),
                       providers=tuple(p.lower() for p in split_values(providers)),  # `Yoco` is yoco
                       types=split_values(types), order_reference=order_reference, since=since, until=until)


class NeedsYes(click.ClickException):
    """A question was needed and nobody can answer it (stdin closed or at its end): exit 2."""

    exit_code = 2


def confirm(question: str, *, yes: bool) -> None:
    """Ask ``question`` unless ``--yes`` was given.

    No answer possible (stdin at its end: ``< /dev/null``, a closed pipe, a
    script) stops with "use --yes" and exit 2; an answer other than yes stops
    with exit 1. Ctrl-C at the prompt stops as usual.
    """
    if yes:
        return
    click.echo(f"{question} [y/N]: ", nl=False)
    answer = sys.stdin.readline()
    if not answer:
        click.echo()
        raise NeedsYes(f"{question.rstrip('?')}: there is no one to answer (stdin is closed); "
                       "use --yes to go ahead")
    if answer.strip().lower() not in ("y", "yes"):
        raise click.ClickException("Aborted: nothing changed (answered no); use --yes to go ahead without asking")


def actor_name(by: str | None) -> str:
    """Who acts, for the audit row: --by, else the login name."""
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def goes_ahead(plan: Plan, *, heading: str, dry_run: bool) -> bool:
    """Print what a replay would do; False when nothing is to change (a dry run, or nothing replayable)."""
    click.echo(heading)
    if dry_run:
        if plan.replay:
            click.echo(f"would replay: {ids_text(plan.replay)}")
        click.echo("dry run: nothing changed")
        return False
    if not plan.replay:
        click.echo("nothing to replay")
        return False
    return True


def run_replay(engine: Engine, *, plan: Plan, actor: str, selection: dict[str, object], force: bool,
               batch_size: int) -> tuple[int, int]:
    """Re-arm the plan's rows in batches under one audit row, with a progress bar: (done, action id)."""
    from models import replays

    action_id = replays.start(engine, plan=plan, actor=actor, selection=selection)
    with progress("replaying", total=len(plan.replay), batch_size=batch_size) as (bar, task):
        done = replays.run(engine, plan=plan, action_id=action_id, actor=actor, force=force,
                           batch_size=batch_size,
                           on_batch=lambda selected, _rearmed: bar.update(task, completed=selected))
    return done, action_id
