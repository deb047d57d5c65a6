"""`payhooks events list|show`: the event table is the audit log; this is how an operator reads it."""
from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cli.options import (
    build_event_filter,
    check_statuses,
    event_filter_options,
    operator_engine,
    settings_with_database,
)
from cli.output import console, echo_json, plural, short, styled, when_text
from models.queries.events import cursor_after, event_record, find_event_id, list_events
from models.queries.values import jsonable
from models.redaction import Redactor
from models.tables import EVENT_STATUSES

if TYPE_CHECKING:
    from rich.console import Console


@click.group("events")
def events() -> None:
    """Inspect stored webhook events (the audit log)."""


@events.command("list")
@event_filter_options()
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="at most this many events")
@click.option("--after", "after_id", type=int, default=None,
              help="the next page: events older than event ID (the last id of the previous page)")
@click.option("--json", "as_json", is_flag=True, help="one JSON array, for scripts")
def list_command(statuses: tuple[str, ...], providers: tuple[str, ...], types: tuple[str, ...],
                 order_reference: str | None, since: datetime | None, until: datetime | None,
                 limit: int, after_id: int | None, as_json: bool) -> None:
    """Events matching the filters, newest first, a page at a time (--after for the next)."""
    selection = build_event_filter(statuses=statuses, providers=providers, types=types,
                                   order_reference=order_reference, since=since, until=until)
    check_statuses(selection.statuses, allowed=EVENT_STATUSES)
    settings = settings_with_database()
    with operator_engine(settings) as engine, engine.connect() as conn:
        after = None
        if after_id is not None:
            after = cursor_after(conn, after_id)
            if after is None:
                raise click.ClickException(f"no event {after_id} (--after takes an event id)")
        rows = list_events(conn, selection, limit=limit, after=after)
    rows = Redactor.from_settings(settings)(jsonable(rows))
    if as_json:
        echo_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"{plural(len(rows), 'event')}, newest first", title_justify="left")
    for name in ("id", "received (UTC)", "provider", "type", "status", "tries", "replays", "order", "last error"):
        table.add_column(name, no_wrap=name != "last error", justify="right" if name in ("id", "tries",
                                                                                          "replays") else "left")
    for row in rows:
        table.add_row(str(row["id"]), when_text(row["received_at"]), row["provider"], row["event_type"],
                      styled(row["status"]), str(row["attempts"]), str(row["replay_count"]),
                      row["order_reference"] or "", short(row["last_error"]))
    out = console()
    out.print(table)
    if len(rows) == limit:
        out.print(f"(showing {limit}; the next page: add --after {rows[-1]['id']})")


def _body(raw: bytes | memoryview | None) -> dict[str, Any]:
    data = bytes(raw or b"")
    try:
        return {"raw_body": data.decode("utf-8"), "raw_body_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"raw_body": base64.b64encode(data).decode(), "raw_body_encoding": "base64"}


@events.command("show")
@click.argument("event_id", type=int, required=False)
@click.option("--provider", default=None, help="with --key: find the event by the provider's key")
@click.option("--key", "event_key", default=None, help="the provider's event id (event_key)")
@click.option("--json", "as_json", is_flag=True, help="the whole record as JSON")
def show_command(event_id: int | None, provider: str | None, event_key: str | None, as_json: bool) -> None:
    """Everything about one event: body, headers, payloads, history, attempts, deliveries."""
    if (event_id is None) == (provider is None or event_key is None):
        raise click.UsageError("give an EVENT_ID, or --provider and --key (not both)")
    settings = settings_with_database()
    with operator_engine(settings) as engine, engine.connect() as conn:
        if event_id is None:
            event_id = find_event_id(conn, provider=provider or "", event_key=event_key or "")
            if event_id is None:
                raise click.ClickException(f"no {provider} event with key {event_key!r}: check the key, or find "
                                           f"the event with `payhooks events list --provider {provider}`")
        record = event_record(conn, event_id)
    if record is None:
        raise click.ClickException(f"no event {event_id}: find its id with `payhooks events list`")
    record.update(_body(record.pop("raw_body")))
    record["attempts_count"] = record.pop("attempts")
    record["attempts"] = record.pop("attempts_detail")
    shown = Redactor.from_settings(settings)(jsonable(record))
    if as_json:
        echo_json(shown)
    else:
        _render(console(), shown)


def _section(out: Console, title: str) -> None:
    out.print()
    out.rule(title, align="left")


def _pairs(out: Console, pairs: list[tuple[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for name, value in pairs:
        grid.add_row(name, value if isinstance(value, Text) else ("" if value is None else str(value)))
    out.print(grid)


def _render(out: Console, r: dict[str, Any]) -> None:
    """The whole record for a person (rich is loaded here: a --json run never needs it)."""
    from rich.table import Table
    from rich.text import Text

    order = r["order"]
    verified = ("secret #" + str(r["secret_index"])) if r["secret_index"] is not None else "no secret index"
    out.rule(f"event {r['id']} · {r['provider']} · {r['event_type']}", align="left")
    _pairs(out, [
        ("status", styled(r["status"])), ("event key", r["event_key"]), ("attempts", r["attempts_count"]),
        ("replays", r["replay_count"]), ("received", r["received_at"]), ("processed", r["processed_at"]),
        ("next attempt", r["next_attempt_at"]), ("livemode", r["livemode"]),
        ("verified by", f"{verified} ({r['verify_method'] or 'n/a'})"),
        ("order", f"{order['reference']} ({order.get('status', '?')})" if order else None),
        ("last error", r["last_error"]),
    ])
    _section(out, "headers (secrets redacted when stored)")
    _pairs(out, sorted(r["headers"].items()))
    _section(out, f"raw body ({r['raw_body_encoding']})")
    out.print(r["raw_body"], soft_wrap=True)
    _section(out, "parsed payload")
    out.print(json.dumps(r["payload"], indent=2, ensure_ascii=False), soft_wrap=True)
    if r["fetched_payload"] is not None:
        _section(out, "fetched payload (from the provider's API)")
        out.print(json.dumps(r["fetched_payload"], indent=2, ensure_ascii=False), soft_wrap=True)
    _section(out, "history")
    history = Table(show_edge=False)
    for name in ("at (UTC)", "what", "detail"):
        history.add_column(name)
    for entry in r["history"]:
        history.add_row(when_text(entry["at"]), entry["what"], entry["detail"] or "")
    out.print(history)
    _section(out, f"attempts ({len(r['attempts'])})")
    for attempt in r["attempts"]:
        out.print(Text.assemble(f"#{attempt['number']} ", styled(attempt["outcome"]),
                                f"  {when_text(attempt['started_at'])} → {when_text(attempt['finished_at'])}"
                                f"  worker {attempt['worker'] or '?'}"))
        if attempt["error"]:
            out.print(f"  error: {attempt['error']}", soft_wrap=True)
        if attempt["traceback"]:
            out.print("  " + attempt["traceback"].rstrip().replace("\n", "\n  "), soft_wrap=True)
    _section(out, f"deliveries ({len(r['deliveries'])})")
    for delivery in r["deliveries"]:
        out.print(Text.assemble(f"delivery {delivery['id']} {delivery['key']} ", styled(delivery["status"]),
                                f"  tries {delivery['attempts']}  replays {delivery['replay_count']}"))
        if delivery["last_error"]:
            out.print(f"  last error: {delivery['last_error']}", soft_wrap=True)
        if delivery["tries"]:
            tries = Table(show_edge=False, padding=(0, 1))
            for name in ("#", "finished (UTC)", "outcome", "code", "ms", "response / error"):
                tries.add_column(name)
            for t in delivery["tries"]:
                tries.add_row(str(t["number"]), when_text(t["finished_at"]), styled(t["outcome"]),
                              "" if t["response_code"] is None else str(t["response_code"]),
                              "" if t["duration_ms"] is None else str(t["duration_ms"]),
                              short(t["error"] or t["response"], 80))
            out.print(tries)
