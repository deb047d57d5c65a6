"""`payhooks replay`: re-run dead events (or deliveries) once their cause is fixed, with an audit row.

Rows go back to ``pending``, due now, through the guarded transitions
(:func:`models.transitions.replay`, :func:`models.deliveries.replay`), in
batches of ``--batch-size`` per transaction so a replay of 100k rows never
holds long locks. One ``operator_actions`` row is written before the first
batch and each batch adds its count in its own transaction, so the audit row
always counts exactly what was committed, even when the command is interrupted.
"""
from __future__ import annotations

import getpass
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from models import audit, deliveries, transitions
from models.orders import DELIVERY_STATUSES
from models.tables import EVENT_STATUSES
from workers.cli_text import confirm, plural
from workers.events_cli import check_statuses
from workers.ops_common import (
    build_event_filter,
    event_filter_options,
    load_operator_settings,
    operator_engine,
    split_values,
    stderr_console,
)

log = logging.getLogger("payhooks.ops")

REPLAYABLE = {"events": ("dead", "ignored", "retrying"), "deliveries": ("dead", "skipped", "retrying")}
"""What the transitions re-arm without --force (succeeded needs it; rows being worked on never move)."""
DEFAULT_BATCH_SIZE = 500
SHOWN_IDS = 20


def _actor(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid:{os.getuid()}"


@dataclass
class Plan:
    """What a replay would do, sorted by what the current status allows."""

    target: str
    replay: list[int] = field(default_factory=list)
    by_status: Counter[str] = field(default_factory=Counter)
    succeeded_skipped: list[int] = field(default_factory=list)
    busy_skipped: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, target: str, statuses: dict[int, str], *, force: bool,
           requested: list[int] | None = None) -> Plan:
        plan = cls(target=target)
        allowed = REPLAYABLE[target] + (("succeeded",) if force else ())
        for row_id, status in statuses.items():
            if status in allowed:
                plan.replay.append(row_id)
                plan.by_status[status] += 1
            elif status == "succeeded":
                plan.succeeded_skipped.append(row_id)
            else:
                plan.busy_skipped.append(row_id)
        plan.missing = sorted(set(requested or ()) - set(statuses))
        return plan

    @property
    def singular(self) -> str:
        return "delivery" if self.target == "deliveries" else "event"

    def summary(self) -> str:
        parts = [f"{plural(len(self.replay), self.singular, self.target)} to replay"]
        if self.by_status:
            parts[0] += " (" + ", ".join(f"{s} {n}" for s, n in sorted(self.by_status.items())) + ")"
        if self.succeeded_skipped:
            parts.append(f"skipped {len(self.succeeded_skipped)} succeeded (replaying them needs --force)")
        if self.busy_skipped:
            parts.append(f"skipped {len(self.busy_skipped)} pending or in progress")
        if self.missing:
            parts.append(f"not found: {', '.join(map(str, self.missing[:SHOWN_IDS]))}")
        return "; ".join(parts)


def _ids_text(ids: list[int]) -> str:
    more = f" … and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else ""
    return ", ".join(map(str, ids[:SHOWN_IDS])) + more


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
    settings = load_operator_settings()
    with operator_engine(settings) as engine:
        with engine.connect() as conn:
            if ids:
                requested = sorted(set(ids))
                found = audit.statuses_of(conn, table="deliveries" if of_deliveries else "webhook_events",
                                          ids=requested)
                plan = Plan.of(target, dict(sorted(found.items())), force=force, requested=requested)
                selection: dict[str, object] = {"ids": requested}
            elif of_deliveries:
                delivery_filter = audit.DeliveryFilter(statuses=chosen, kinds=split_values(kinds),
                                                       order_reference=order_reference, since=since, until=until)
                plan = Plan.of(target, audit.select_deliveries(conn, delivery_filter, limit=limit), force=force)
                selection = delivery_filter.as_json()
            else:
                event_filter = build_event_filter(statuses=chosen, providers=providers, types=types,
                                                  order_reference=order_reference, since=since, until=until)
                plan = Plan.of(target, audit.select_events(conn, event_filter, limit=limit), force=force)
                selection = event_filter.as_json()
        if force:
            selection["force"] = True
        if limit:
            selection["limit"] = limit
        click.echo(plan.summary())
        if dry_run:
            if plan.replay:
                click.echo(f"would replay: {_ids_text(plan.replay)}")
            click.echo("dry run: nothing changed")
            return
        if not plan.replay:
            click.echo("nothing to replay")
            return
        confirm(f"Replay {plural(len(plan.replay), plan.singular, target)}?", yes=yes)
        done, action_id = _run(engine, plan=plan, actor=_actor(by), selection=selection, force=force,
                               batch_size=batch_size)
    click.echo(f"replayed {plural(done, plan.singular, target)} (operator action {action_id})")
    if done < len(plan.replay):
        left = len(plan.replay) - done
        click.echo(f"{plural(left, plan.singular, target)} changed state since selected and "
                   f"{'was' if left == 1 else 'were'} left alone")


def _run(engine, *, plan: Plan, actor: str, selection: dict[str, object], force: bool,
         batch_size: int) -> tuple[int, int]:
    replay_rows = deliveries.replay if plan.target == "deliveries" else transitions.replay
    with engine.begin() as conn:
        action_id = audit.start_action(conn, actor=actor, action="replay", target=plan.target,
                                       filter=selection, detail=f"started: {plan.summary()}")
    done = 0
    batches = [plan.replay[i:i + batch_size] for i in range(0, len(plan.replay), batch_size)]
    progress = Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=stderr_console(), disable=len(batches) < 2)
    with progress:
        task = progress.add_task("replay", total=len(plan.replay))
        for batch in batches:
            with engine.begin() as conn:
                rearmed = replay_rows(conn, batch, include_succeeded=force)
                audit.add_to_action(conn, action_id, count=len(rearmed))
            done += len(rearmed)
            progress.advance(task, len(batch))
    with engine.begin() as conn:
        audit.add_to_action(conn, action_id, count=0,
                            detail=f"replayed {done} of {len(plan.replay)} selected; {plan.summary()}")
    log.info("replayed %s %s", done, plan.target,
             extra={"action": "operator.replay", "target": plan.target, "count": done, "actor": actor,
                    "operator_action_id": action_id, "force": force})
    return done, action_id
