"""`payhooks reconcile processout --since 24h [--dry-run] [--yes]`: recover ProcessOut events that never arrived."""
from __future__ import annotations

from datetime import UTC, datetime

import click

from cli.options import (
    WHEN,
    actor_name,
    confirm,
    operator_engine,
    settings_with_database,
)
from cli.output import ids_text, plural
from workers.errors import ProviderUnavailable
from workers.processout_api import ProcessOutClient
from workers.reconcile import (
    NotConfigured,
    list_since,
    missing_events,
    require_configuration,
    store_missing,
)


class ConfigurationError(click.ClickException):
    """A setting the command needs is missing: a usage problem, exit 2 like a bad option."""

    exit_code = 2


@click.group("reconcile")
def reconcile() -> None:
    """Recover events a provider sent (or should have sent) that never arrived."""


@reconcile.command("processout")
@click.option("--since", type=WHEN, required=True,
              help="how far back to look: a duration (30m, 24h, 7d) or an ISO 8601 date or datetime")
@click.option("--dry-run", is_flag=True, help="list what is missing; store nothing")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@click.option("--by", "by", default=None, help="who reconciles, for the audit row [the OS user]")
@click.option("--page-size", type=click.IntRange(1, 100), default=100, show_default=True,
              help="events per GET /events page")
def processout(since: datetime, dry_run: bool, yes: bool, by: str | None, page_size: int) -> None:
    """List ProcessOut's events since --since and store those payhooks never received.

    They are marked as reconciled and handled like any received event; events
    already stored are left as they are. An API error stores nothing.
    """
    if since > datetime.now(UTC):
        raise click.BadParameter("is in the future", param_hint="--since")
    settings = settings_with_database()
    try:
        require_configuration(settings)
    except NotConfigured as exc:
        raise ConfigurationError(str(exc)) from None
    client = ProcessOutClient(settings)
    try:
        listing = list_since(client, since=since, page_size=page_size)
    except ProviderUnavailable as exc:
        raise click.ClickException(f"{exc}; nothing was stored") from None
    finally:
        client.close()
    with operator_engine(settings) as engine:
        missing = missing_events(engine, listing.events)
        click.echo(f"ProcessOut lists {len(listing.events)} events since {since.isoformat(timespec='seconds')} "
                   f"({listing.pages} page(s)); {len(listing.events) - len(missing)} already stored, "
                   f"{len(missing)} missing")
        if not missing:
            click.echo("nothing to reconcile")
            return
        click.echo("missing: " + ", ".join(f"{e['id']} ({e['name']})" for e in missing[:20])
                   + (f" … and {len(missing) - 20} more" if len(missing) > 20 else ""))
        if dry_run:
            click.echo("dry run: nothing stored")
            return
        confirm(f"Store {plural(len(missing), 'ProcessOut event')} and handle them?", yes=yes)
        ids, action_id = store_missing(engine, missing, actor=actor_name(by),
                                       selection={"provider": "processout", "since": since.isoformat()})
    click.echo(f"stored {plural(len(ids), 'event')} as reconciled (operator action {action_id}): {ids_text(ids)}")
    if len(ids) < len(missing):
        click.echo(f"{len(missing) - len(ids)} arrived meanwhile and were left alone")
