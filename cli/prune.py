"""`payhooks prune`: archive, then remove, final events older than an age, by hand, with an audit row.

The same batches as the dispatcher's housekeeper (:func:`models.retention.prune_batch`):
each one a transaction that holds the pruning lock, writes its events to the
archive, fsyncs, deletes them and adds its count to the ``operator_actions``
row, so the audit row counts exactly what was removed even when the command
is interrupted. Never a non-final event; orders, refunds, order transitions,
operator actions and dedup keys stay.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import click

from cli.options import actor_name, confirm, operator_engine, settings_with_database
from cli.output import plural, progress
from models import archive, retention
from models.queries import actions

log = logging.getLogger("payhooks.ops")


def _age(value: str | None, *, retention_days: float) -> tuple[timedelta, str]:
    if value is None:
        if not retention_days:
            raise click.UsageError("PAYHOOKS_RETENTION_DAYS is 0 (keep everything): give --older-than")
        return timedelta(days=retention_days), f"{retention_days:g}d"
    try:
        return retention.parse_age(value, name="--older-than"), value
    except retention.PolicyError as exc:
        raise click.BadParameter(str(exc).removeprefix("--older-than: "), param_hint="--older-than") from None


@click.command("prune")
@click.option("--older-than", "older_than", default=None, metavar="AGE",
              help="final events processed longer ago than AGE (30d, 12h, 2w) [PAYHOOKS_RETENTION_DAYS]")
@click.option("--dry-run", is_flag=True, help="count what would go; change nothing")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--batch-size", type=click.IntRange(1, 50_000), default=None,
              help="events per transaction [PAYHOOKS_PRUNE_BATCH_SIZE]")
@click.option("--rate", type=click.FloatRange(min=0), default=None, metavar="EVENTS_PER_S",
              help="pace: at most this many events/s on average, 0 for as fast as it goes [PAYHOOKS_PRUNE_RATE]")
@click.option("--by", default=None, help="who is pruning, for the audit row [login name]")
def prune(older_than: str | None, dry_run: bool, yes: bool, batch_size: int | None, rate: float | None,
          by: str | None) -> None:
    """Archive final events older than AGE to the archive directory, then remove them."""
    settings = settings_with_database()
    age, shown_age = _age(older_than, retention_days=settings.retention_days)
    try:
        retention.check_age(age, settings, name="--older-than" if older_than else "PAYHOOKS_RETENTION_DAYS")
        retention.check_policy(settings)
    except retention.PolicyError as exc:
        raise click.UsageError(str(exc)) from None
    size = batch_size or settings.prune_batch_size
    directory = archive.archive_dir(settings)
    with operator_engine(settings) as engine:
        with engine.connect() as conn:
            cutoff = retention.cutoff_for(conn, age)
            total = retention.count_candidates(conn, cutoff=cutoff)
        click.echo(f"{total} final event(s) processed before {cutoff:%Y-%m-%d %H:%M:%S %Z} "
                   f"(older than {shown_age}); archive: {directory}")
        if dry_run:
            click.echo("dry run: nothing changed")
            return
        if not total:
            click.echo("nothing to prune")
            return
        confirm(f"Archive and remove {plural(total, 'event')}?", yes=yes)
        actor = actor_name(by)
        selection = {"older_than": shown_age, "cutoff": cutoff.isoformat(), "archive_dir": str(directory)}
        with engine.begin() as conn:
            action_id = actions.start_action(conn, actor=actor, action="prune", target="events",
                                           filter=selection, detail=f"started: {total} candidate(s)")
        done, files = 0, set()
        with progress("archiving and removing", total=total, batch_size=size) as (bar, task):
            after = retention.START
            pace = retention.Pace(settings.prune_rate if rate is None else rate)
            while True:
                with engine.begin() as conn:
                    retention.lock(conn, wait=True)
                    batch = retention.prune_batch(conn, cutoff=cutoff, batch_size=size, directory=directory,
                                                  after=after)
                    actions.add_to_action(conn, action_id, count=batch.removed)
                done += batch.removed
                files.update(batch.files)
                bar.advance(task, batch.removed)
                if batch.after is None:
                    break
                after = batch.after
                pace.after(batch.removed)
        with engine.begin() as conn:
            actions.add_to_action(conn, action_id, count=0,
                                detail=f"archived and removed {done} of {total}; {len(files)} archive file(s)")
    log.info("pruned %s events", done, extra={"action": "operator.prune", "count": done, "actor": actor,
                                              "operator_action_id": action_id})
    click.echo(f"archived and removed {done} event(s) into {len(files)} file(s) under {directory} "
               f"(operator action {action_id})")
