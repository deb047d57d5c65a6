"""What the commands print: JSON for scripts, rich tables for a person, and nothing secret in either.

The last line of defence against leaking a secret: every value printed passes
through the process's :class:`models.redaction.Redactor` (installed with the
settings when the command starts, :mod:`cli.main`), which replaces any
configured secret in any of its derived forms (headers are stored redacted
already; this also covers an error message or a body that happens to carry one).

rich is imported by the helpers that draw with it, when they are called: a
``--json`` run never loads it.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from models.redaction import current

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.text import Text

SHOWN_IDS = 20

STATUS_STYLE = {"succeeded": "green", "skipped": "green", "ignored": "dim", "dead": "bold red",
                "retrying": "yellow", "pending": "cyan", "queued": "cyan", "processing": "blue",
                "sending": "blue", "failed": "yellow", "lost": "yellow"}


def database_unavailable(exc: Exception) -> click.ClickException:
    """The one line for a database that does not answer (exit 1)."""
    return click.ClickException(
        f"database unavailable ({type(getattr(exc, 'orig', None) or exc).__name__}): check that Postgres "
        "answers at PAYHOOKS_DATABASE_URL, or, under `payhooks up`, that `up` still runs")


def schema_missing(exc: Exception) -> click.ClickException:
    """The one line for a database that lacks a table or column a command reads (exit 1): never migrated,
    or older than this payhooks. The database's own words stay in it, for the case where it is neither."""
    orig = getattr(exc, "orig", None) or exc
    said = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return click.ClickException(
        f"the database lacks what this command reads ({type(orig).__name__}: {said}): if it was never "
        "migrated, or is older than this payhooks, run `payhooks db upgrade` against PAYHOOKS_DATABASE_URL")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 event``, ``2 events``, ``0 deliveries`` (pass the plural when it is not ``singular + "s"``)."""
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def ids_text(ids: list[int]) -> str:
    """The first :data:`SHOWN_IDS` ids, and how many more."""
    more = f" … and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else ""
    return ", ".join(map(str, ids[:SHOWN_IDS])) + more


def echo_json(value: Any) -> None:
    click.echo(current().text(json.dumps(value, indent=2, ensure_ascii=False)))


def short(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    flat = " ".join(str(value).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def when_text(value: str | None) -> str:
    """ISO 8601 (as :func:`models.queries.values.jsonable` made it) shown as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    if not value:
        return ""
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")


def styled(status: str | None) -> Text:
    """A status in its colour (:data:`STATUS_STYLE`)."""
    from rich.text import Text

    return Text(status or "", style=STATUS_STYLE.get(status or "", ""))


class RedactedStream:
    """A text stream whose every write passes through the process's redactor."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(current().text(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def console() -> Console:
    """Rich output to the current stdout; wide enough for a table when piped to a file."""
    from rich.console import Console

    stream = sys.stdout
    terminal = stream.isatty()
    return Console(file=RedactedStream(stream), width=None if terminal else 200, markup=False,
                   highlight=False, emoji=False)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(file=RedactedStream(sys.stderr), markup=False, highlight=False, emoji=False)


@contextmanager
def progress(label: str, *, total: int, batch_size: int) -> Iterator[tuple[Progress, TaskID]]:
    """A progress bar on stderr for work done in batches; none when it fits in one batch."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=stderr_console(), disable=total <= batch_size)
    with bar:
        yield bar, bar.add_task(label, total=total)
