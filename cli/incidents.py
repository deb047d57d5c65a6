"""`payhooks incidents list|show|ack|resolve|replay`: failures grouped by cause, and what an operator does about them.

Acknowledging and resolving are guarded changes with an audit row and an
alert; `replay` re-arms every member of an incident with the rules of
`payhooks replay` (succeeded ones only with --force, rows being worked on
never) and its audit row. The watcher resolves an incident by itself once all
its members succeeded.
"""
from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from sqlalchemy import text

from cli.options import (
    actor_name,
    check_statuses,
    confirm,
    goes_ahead,
    operator_engine,
    run_replay,
    settings_with_database,
)
from cli.output import console, echo_json, plural, short, styled, when_text
from models import incidents as incident_model
from models.incident_tables import INCIDENT_STATUSES
from models.queries import actions
from models.queries.events import statuses_of
from models.queries.values import jsonable, split_values
from models.redaction import Redactor
from models.replays import DEFAULT_BATCH_SIZE, Plan

SHOWN_MEMBERS = 50


@click.group("incidents")
def incidents() -> None:
    """Dead events and dead deliveries grouped by cause: open → acknowledged → resolved."""


@incidents.command("list")
@click.option("--status", "statuses", multiple=True,
              help="incident status (repeat or comma-separate) [default: open,acknowledged]")
@click.option("--all", "everything", is_flag=True, help="resolved ones too")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON array, for scripts")
def list_command(statuses: tuple[str, ...], everything: bool, limit: int, as_json: bool) -> None:
    """Incidents, newest change first, with how many of their members still fail."""
    chosen = split_values(statuses) or (INCIDENT_STATUSES if everything else ("open", "acknowledged"))
    check_statuses(chosen, allowed=INCIDENT_STATUSES)
    settings = settings_with_database()
    with operator_engine(settings) as engine, engine.connect() as conn:
        ids = list(conn.execute(text("""SELECT id FROM incidents WHERE status = ANY(:s)
                                         ORDER BY GREATEST(opened_at, last_seen_at) DESC, id DESC LIMIT :n"""),
                                {"s": list(chosen), "n": limit}).scalars())
        rows = [incident_model.summary(conn, incident_id) for incident_id in ids]
    rows = Redactor.from_settings(settings)(jsonable(rows))
    if as_json:
        echo_json(rows)
        return
    table = Table(title=f"{len(rows)} incident(s)", title_justify="left")
    for name in ("id", "status", "opened (UTC)", "source", "provider", "type", "failing", "members", "cause"):
        table.add_column(name, no_wrap=name != "cause", justify="right" if name in ("id", "failing", "members")
                         else "left")
    for row in rows:
        table.add_row(str(row["id"]), styled(row["status"]), when_text(row["opened_at"]), row["source"],
                      row["provider"] or "-", row["event_type"], str(row["failing"]), str(row["members"]),
                      short(row["cause"], 80))
    console().print(table)


def _record(conn: Any, incident_id: int) -> dict[str, Any]:
    record = incident_model.summary(conn, incident_id)
    if record is None:
        raise click.ClickException(f"no incident {incident_id}")
    column = "event_id" if record["source"] == "events" else "delivery_id"
    table = "webhook_events" if record["source"] == "events" else "deliveries"
    record["members_detail"] = [dict(r._mapping) for r in conn.execute(text(f"""
        SELECT m.{column} AS id, t.status, m.attempt, m.died_at, m.error
          FROM incident_members m JOIN {table} t ON t.id = m.{column}
         WHERE m.incident_id = :id ORDER BY m.died_at DESC, m.id DESC LIMIT :n"""),
        {"id": incident_id, "n": SHOWN_MEMBERS})]
    record["alerts"] = [dict(r._mapping) for r in conn.execute(text("""
        SELECT a.id, a.type, a.created_at,
               COALESCE(jsonb_object_agg(d.kind, d.status) FILTER (WHERE d.id IS NOT NULL), '{}') AS deliveries
          FROM alerts a LEFT JOIN deliveries d ON d.alert_id = a.id
         WHERE a.incident_id = :id GROUP BY a.id ORDER BY a.id"""), {"id": incident_id})]
    return record


@incidents.command("show")
@click.argument("incident_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="the whole record as JSON")
def show(incident_id: int, as_json: bool) -> None:
    """One incident: its cause, its members (newest deaths first) and the alerts it raised."""
    settings = settings_with_database()
    with operator_engine(settings) as engine, engine.connect() as conn:
        record = Redactor.from_settings(settings)(jsonable(_record(conn, incident_id)))
    if as_json:
        echo_json(record)
        return
    out = console()
    what = "deliveries" if record["source"] == "deliveries" else f"{record['provider']} events"
    out.print(f"incident {record['id']}: {record['status']} · {what} {record['event_type']}")
    out.print(f"cause: {record['cause']}")
    out.print(f"example: {short(record['example_error'], 200)}")
    out.print(f"opened {when_text(record['opened_at'])} UTC · last death {when_text(record['last_seen_at'])} UTC · "
              f"reopened {record['reopened_count']}×")
    if record["acknowledged_by"]:
        out.print(f"acknowledged by {record['acknowledged_by']} at {when_text(record['acknowledged_at'])} UTC")
    if record["resolved_by"]:
        out.print(f"resolved by {record['resolved_by']} at {when_text(record['resolved_at'])} UTC")
    out.print(f"members: {record['members']}, still failing: {record['failing']}")
    table = Table(title=f"members (newest {SHOWN_MEMBERS})", title_justify="left")
    for name in ("id", "status", "attempt", "died (UTC)", "error"):
        table.add_column(name, no_wrap=name != "error")
    for member in record["members_detail"]:
        table.add_row(str(member["id"]), styled(member["status"]), str(member["attempt"]),
                      when_text(member["died_at"]), short(member["error"], 80))
    out.print(table)
    for alert in record["alerts"]:
        sent = ", ".join(f"{k} {v}" for k, v in sorted(alert["deliveries"].items())) or "no channel configured"
        out.print(f"alert {alert['id']} {alert['type']} at {when_text(alert['created_at'])} UTC: {sent}")
    out.print(f"replay its members: payhooks incidents replay {record['id']}")


def _change(incident_id: int, by: str | None, *, action: str) -> None:
    settings = settings_with_database()
    actor = actor_name(by)
    change = incident_model.acknowledge if action == "ack" else incident_model.resolve
    with operator_engine(settings) as engine, engine.begin() as conn:
        if incident_model.summary(conn, incident_id) is None:
            raise click.ClickException(f"no incident {incident_id}")
        try:
            change(conn, settings, incident_id, actor=actor)
        except incident_model.NotChanged as exc:
            raise click.ClickException(str(exc)) from None
        action_id = actions.start_action(conn, actor=actor, action=f"incident.{action}", target="incidents",
                                       filter={"incident": incident_id})
        actions.add_to_action(conn, action_id, count=1)
    click.echo(f"incident {incident_id} {'acknowledged' if action == 'ack' else 'resolved'} by {actor} "
               f"(operator action {action_id})")


@incidents.command("ack")
@click.argument("incident_id", type=int)
@click.option("--by", default=None, help="who acknowledges, for the audit row [the OS user]")
def ack(incident_id: int, by: str | None) -> None:
    """Say someone is on it (open → acknowledged); an alert tells the others."""
    _change(incident_id, by, action="ack")


@incidents.command("resolve")
@click.argument("incident_id", type=int)
@click.option("--by", default=None, help="who resolves, for the audit row [the OS user]")
def resolve(incident_id: int, by: str | None) -> None:
    """Close it by hand; it reopens if the cause comes back."""
    _change(incident_id, by, action="resolve")


@incidents.command("replay")
@click.argument("incident_id", type=int)
@click.option("--force", is_flag=True, help="also replay members that succeeded since")
@click.option("--dry-run", is_flag=True, help="print what would be replayed; change nothing")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@click.option("--by", default=None, help="who replays, for the audit row [the OS user]")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=DEFAULT_BATCH_SIZE, show_default=True)
def replay(incident_id: int, force: bool, dry_run: bool, yes: bool, by: str | None, batch_size: int) -> None:
    """Set every member of the incident back to pending, due now (the rules of `payhooks replay`)."""
    settings = settings_with_database()
    with operator_engine(settings) as engine:
        with engine.connect() as conn:
            record = incident_model.summary(conn, incident_id)
            if record is None:
                raise click.ClickException(f"no incident {incident_id}")
            column = "event_id" if record["source"] == "events" else "delivery_id"
            ids = list(conn.execute(text(f"SELECT {column} FROM incident_members WHERE incident_id = :id "
                                         f"ORDER BY {column}"), {"id": incident_id}).scalars())
            table = "webhook_events" if record["source"] == "events" else "deliveries"
            found = statuses_of(conn, table=table, ids=ids)
        plan = Plan.of(record["source"], dict(sorted(found.items())), force=force, requested=ids)
        if not goes_ahead(plan, heading=f"incident {incident_id}: {plan.summary()}", dry_run=dry_run):
            return
        confirm(f"Replay {plural(len(plan.replay), plan.singular, plan.target)} of incident {incident_id}?",
                yes=yes)
        selection: dict[str, object] = {"incident": incident_id, "ids": ids}
        if force:
            selection["force"] = True
        done, action_id = run_replay(engine, plan=plan, actor=actor_name(by), selection=selection,
                                     force=force, batch_size=batch_size)
    click.echo(f"replayed {plural(done, plan.singular, plan.target)} (operator action {action_id}); "
               "the incident resolves itself once they all succeed")
