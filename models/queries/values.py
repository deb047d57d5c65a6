"""Values in and out of the read layer, the same for the CLI and the console.

In: times a person types (ISO 8601, or ``30m``/``1h``/``2d``/``1w`` ago) and
lists given as repeats or comma-separated. Out: rows as JSON (datetimes in
ISO 8601, bytes as text, Decimals as numbers). Pure functions, standard
library only: importing this loads no database driver.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


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


def split_values(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--status dead --status retrying`` and ``--status dead,retrying`` mean the same."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


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
