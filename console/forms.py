"""Filters from a query string or a form, the same for the Events list and Replay by filter.

Statuses and providers come from checkboxes (repeated names), type from a
text field (comma-separated), times as ISO 8601 or ``30m``/``2h``/``1d`` ago,
exactly as the CLI's options take them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from models.orders import DELIVERY_STATUSES
from models.queries.deliveries import DeliveryFilter
from models.queries.events import EventFilter
from models.queries.values import parse_when, split_values
from models.tables import EVENT_STATUSES
from receiver.providers.registry import PROVIDERS


@dataclass
class Parsed:
    filter: Any
    errors: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    """what the form shows back"""


def _text(args: MultiDict, name: str) -> str | None:
    value = (args.get(name) or "").strip()
    return value or None


def _times(args: MultiDict, errors: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, label in (("since", "Received from"), ("until", "Received until")):
        raw = _text(args, name)
        if raw is None:
            out[name] = None
            continue
        try:
            out[name] = parse_when(raw)
        except ValueError:
            errors.append(f"{label}: {raw!r} is neither an ISO 8601 time nor a duration like 30m, 2h, 1d")
            out[name] = None
    return out


def _choices(args: MultiDict, name: str, allowed: tuple[str, ...], label: str, errors: list[str]
             ) -> tuple[str, ...]:
    chosen = split_values(tuple(args.getlist(name)))
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        errors.append(f"{label}: unknown {', '.join(unknown)}")
    return tuple(c for c in chosen if c in allowed)


def event_filter(args: MultiDict, *, default_statuses: tuple[str, ...] = ()) -> Parsed:
    errors: list[str] = []
    statuses = _choices(args, "status", EVENT_STATUSES, "Status", errors)
    if not statuses and "status" not in args and default_statuses:
        statuses = default_statuses
    providers = _choices(args, "provider", PROVIDERS, "Provider", errors)
    types = split_values(tuple(args.getlist("type")))
    times = _times(args, errors)
    parsed = EventFilter(statuses=statuses, providers=providers, types=types,
                         order_reference=_text(args, "order"), event_key=_text(args, "key"), **times)
    values = {"status": statuses, "provider": providers, "type": ", ".join(types),
              "order": _text(args, "order") or "", "key": _text(args, "key") or "",
              "since": _text(args, "since") or "", "until": _text(args, "until") or ""}
    return Parsed(filter=parsed, errors=errors, values=values)


def delivery_filter(args: MultiDict) -> Parsed:
    errors: list[str] = []
    statuses = _choices(args, "status", DELIVERY_STATUSES, "Status", errors)
    kinds = split_values(tuple(args.getlist("kind")))
    times = _times(args, errors)
    parsed = DeliveryFilter(statuses=statuses, kinds=kinds, order_reference=_text(args, "order"), **times)
    values = {"status": statuses, "kind": ", ".join(kinds), "order": _text(args, "order") or "",
              "since": _text(args, "since") or "", "until": _text(args, "until") or ""}
    return Parsed(filter=parsed, errors=errors, values=values)


def query_pairs(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The form's values as (name, value) pairs, for hidden fields and next-page links."""
    pairs: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, tuple | list):
            pairs += [(name, v) for v in value]
        elif value:
            pairs.append((name, str(value)))
    return pairs


def positive_int(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    number = int(value)
    return number if 0 < number < 2**63 else None
