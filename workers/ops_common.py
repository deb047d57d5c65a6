"""What the operator commands (`events`, `replay`, `stats`) share.

Settings and an engine per command, the time options (ISO 8601 or relative:
``30m``, ``1h``, ``2d``), the event filter options, JSON output, a rich
console, and the last line of defence against leaking a secret: every value
printed passes through the process's :class:`models.redaction.Redactor`
(installed with the settings when the command starts), which replaces any
configured secret in any of its derived forms (headers are stored redacted
already; this also covers an error message or a body that happens to carry one).
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import click
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from models.queries.events import EventFilter
from models.db import make_engine
from models.redaction import current
from models.settings import Settings

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def load_operator_settings() -> Settings:
    from workers.cli import _settings_with_database  # lazily: workers.cli registers these commands

    return _settings_with_database()


@contextmanager
def operator_engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings, pool_size=1, application_name="payhooks-ops", role="operator")
    try:
        yield engine
    except (OperationalError, InterfaceError, PoolTimeout) as exc:
        raise click.ClickException(
            f"database unavailable ({type(getattr(exc, 'orig', None) or exc).__name__}): check that Postgres "
            "answers at PAYHOOKS_DATABASE_URL, or, under `payhooks up`, that `up` still runs"
        ) from None
    finally:
        engine.dispose()


def parse_when(value: str, *, now: datetime | None = None) -> datetime:
    """``30m``/``1h``/``2d``/``1w`` ago, or an ISO 8601 date or datetime (naive means UTC)."""
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2).lower()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is neither an ISO 8601 datetime nor a duration like 30m, 1h, 2d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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


def split_values(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--status dead --status retrying`` and ``--status dead,retrying`` mean the same."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


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
    return EventFilter(statuses=split_values(statuses),
                       providers=tuple(p.lower() for p in split_values(providers)),  # `Yoco` is yoco
                       types=split_values(types), order_reference=order_reference, since=since, until=until)


def jsonable(value: Any) -> Any:
    """Rows as JSON: datetimes in ISO 8601, bytes as text, Decimals as numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def echo_json(value: Any) -> None:
    click.echo(current().text(json.dumps(value, indent=2, ensure_ascii=False)))


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
    stream = sys.stdout
    terminal = stream.isatty()
    return Console(file=RedactedStream(stream), width=None if terminal else 200, markup=False,
                   highlight=False, emoji=False)


def stderr_console() -> Console:
    return Console(file=RedactedStream(sys.stderr), markup=False, highlight=False, emoji=False)


def short(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    flat = " ".join(str(value).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
