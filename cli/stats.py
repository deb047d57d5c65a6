"""`payhooks stats`: events by provider × status, what is late, what died, how fast events finish."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cli.options import operator_engine, settings_with_database
from cli.output import STATUS_STYLE, console, echo_json, plural
from models.queries.values import jsonable
from models.schema import DELIVERY_STATUSES, EVENT_STATUSES
from models.stats import LATENCY_WINDOW_MINUTES, RECENT_DEAD_HOURS, collect

if TYPE_CHECKING:
    from rich.table import Table
    from sqlalchemy import Engine


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 120:
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def read_stats(engine: Engine) -> dict[str, Any]:
    """One consistent snapshot of every number."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            return collect(conn)


def _status_table(title: str, rows: dict[str, dict[str, int]], statuses: tuple[str, ...],
                  first: str) -> Table:
    from rich.table import Table

    present = [s for s in statuses if any(s in counts for counts in rows.values())]
    table = Table(title=title, title_justify="left")
    table.add_column(first)
    for status in present:
        table.add_column(status, justify="right", header_style=STATUS_STYLE.get(status, ""))
    table.add_column("total", justify="right", style="bold")
    for name, counts in rows.items():
        table.add_row(name, *(str(counts.get(s, 0)) for s in present), str(sum(counts.values())))
    if len(rows) > 1:
        totals = {s: sum(counts.get(s, 0) for counts in rows.values()) for s in present}
        table.add_row("all", *(str(totals[s]) for s in present), str(sum(totals.values())), style="bold")
    return table


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="the numbers as one JSON object")
def stats(as_json: bool) -> None:
    """Counts by provider and status, oldest pending, due retries, recent deaths, latency, deliveries."""
    settings = settings_with_database()
    with operator_engine(settings) as engine:
        numbers = read_stats(engine)
    if as_json:
        echo_json(jsonable(numbers))
        return
    _print(numbers)


def _print(numbers: dict[str, Any]) -> None:
    """The numbers for a person (rich is loaded here: a --json run never needs it)."""
    from rich.table import Table

    events, deliveries = numbers["events"], numbers["deliveries"]
    out = console()
    out.print(f"payhooks at {numbers['at']:%Y-%m-%d %H:%M:%S %Z} (database clock)")
    if events["by_provider_status"]:
        out.print(_status_table("events by provider and status", events["by_provider_status"], EVENT_STATUSES,
                                "provider"))
    else:
        out.print("no events stored yet")
    latency = events["receive_to_done_last_hour"]
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("oldest pending", _seconds(events["oldest_pending_age_seconds"]))
    summary.add_row("retries due now", str(events["due_retries"]))
    summary.add_row(f"dead in the last {RECENT_DEAD_HOURS} h", str(events["dead_last_24h"]))
    summary.add_row(f"receive → done, last {LATENCY_WINDOW_MINUTES} min",
                    f"p50 {_seconds(latency['p50_seconds'])}, p99 {_seconds(latency['p99_seconds'])}"
                    f" over {plural(latency['count'], 'event')}")
    out.print(summary)
    out.print()
    if deliveries["by_kind_status"]:
        out.print(_status_table("deliveries by kind and status", deliveries["by_kind_status"],
                                DELIVERY_STATUSES, "kind"))
    else:
        out.print("no deliveries yet")
    delivery_summary = Table.grid(padding=(0, 2))
    delivery_summary.add_column(style="bold")
    delivery_summary.add_column(justify="right")
    delivery_summary.add_row("delivery retries due now", str(deliveries["due_retries"]))
    delivery_summary.add_row(f"deliveries dead in the last {RECENT_DEAD_HOURS} h",
                             str(deliveries["dead_last_24h"]))
    out.print(delivery_summary)
