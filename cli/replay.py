"""`payhooks replay`: re-run dead events (or deliveries) once their cause is fixed, with an audit row.

Rows go back to ``pending``, due now, through the guarded transitions
(:func:`models.transitions.replay`, :func:`models.deliveries.replay`), in
batches of ``--batch-size`` per transaction so a replay of 100k rows never
holds long locks. One ``operator_actions`` row is written before the first
batch and each batch adds its count in its own transaction, so the audit row
always counts exactly what was committed, even when the command is interrupted.
"""
from __future__ import annotations

from datetime import datetime

import click

from cli.options import (
    actor_name,
    build_event_filter,
    check_statuses,
    confirm,
    event_filter_options,
    goes_ahead,
    operator_engine,
    run_replay,
    settings_with_database,
)
from cli.output import plural
from models.orders import DELIVERY_STATUSES
from models.queries import deliveries as delivery_queries
from models.queries import events as event_queries
from models.queries.values import split_values
from models.replays import DEFAULT_BATCH_SIZE, Plan
from models.tables import EVENT_STATUSES


@click.command("replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--deliveries", "of_deliveries", is_flag=True,
              help="replay deliveries (emails, fulfilment calls, SMS) instead of events")
@event_filter_options(default_status=("dead",))
@click.option("--kind", "kinds", multiple=True, help="with --deliveries: the delivery kind, e.g. fulfilment")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="at most this many, oldest first")
@click.option("--force", is_flag=True,
              help="also replay succeeded ones (unique delivery keys still stop a second email or call)")
@click.option("--dry-run", is_flag=True, help="print what would be replayed; change nothing")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@click.option("--by", "by", default=None, help="who replays, for the audit row [the OS user]")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="rows re-armed per transaction")
def replay(ids: tuple[int, ...], of_deliveries: bool, statuses: tuple[str, ...], providers: tuple[str, ...],
           types: tuple[str, ...], order_reference: str | None, since: datetime | None, until: datetime | None,
           kinds: tuple[str, ...], limit: int | None, force: bool, dry_run: bool, yes: bool, by: str | None,
           batch_size: int) -> None:
    """Set events (or, with --deliveries, deliveries) back to pending, due now.

    Give IDS, or filters (the same as `events list`; --status defaults to
    dead). For deliveries the filters are --status, --kind, --order and
    --since/--until (on when the delivery was created).
    """
    filtered = any((statuses, providers, types, kinds, order_reference, since, until, limit))
    if ids and filtered:
        raise click.UsageError("give IDS or filters, not both")
    if kinds and not of_deliveries:
        raise click.UsageError("--kind filters deliveries: add --deliveries")
    if of_deliveries and (providers or types):
        raise click.UsageError("--provider and --type filter events; deliveries take --status, --kind, --order")
    target = "deliveries" if of_deliveries else "events"
    chosen = split_values(statuses) or ("dead",)
    check_statuses(chosen, allowed=DELIVERY_STATUSES if of_deliveries else EVENT_STATUSES)
    settings = settings_with_database()
    with operator_engine(settings) as engine:
        with engine.connect() as conn:
            if ids:
                requested = sorted(set(ids))
                found = event_queries.statuses_of(conn, table="deliveries" if of_deliveries else "webhook_events",
                                          ids=requested)
                plan = Plan.of(target, dict(sorted(found.items())), force=force, requested=requested)
                selection: dict[str, object] = {"ids": requested}
            elif of_deliveries:
                delivery_filter = delivery_queries.DeliveryFilter(statuses=chosen, kinds=split_values(kinds),
                                                       order_reference=order_reference, since=since, until=until)
                plan = Plan.of(target, delivery_queries.select_deliveries(conn, delivery_filter, limit=limit), force=force)
                selection = delivery_filter.as_json()
            else:
                event_filter = build_event_filter(statuses=chosen, providers=providers, types=types,
                                                  order_reference=order_reference, since=since, until=until)
                plan = Plan.of(target, event_queries.select_events(conn, event_filter, limit=limit), force=force)
                selection = event_filter.as_json()
        if force:
            selection["force"] = True
        if limit:
            selection["limit"] = limit
        if not goes_ahead(plan, heading=plan.summary(), dry_run=dry_run):
            return
        confirm(f"Replay {plural(len(plan.replay), plan.singular, target)}?", yes=yes)
        done, action_id = run_replay(engine, plan=plan, actor=actor_name(by), selection=selection, force=force,
                                     batch_size=batch_size)
    click.echo(f"replayed {plural(done, plan.singular, target)} (operator action {action_id})")
    if done < len(plan.replay):
        left = len(plan.replay) - done
        click.echo(f"{plural(left, plan.singular, target)} changed state since selected and "
                   f"{'was' if left == 1 else 'were'} left alone")
