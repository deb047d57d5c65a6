"""Events as the operator reads them: filters, keyset pages, one event's whole record.

SQLAlchemy Core over the tables the pipeline writes; the caller passes the
connection and owns the transaction. Nothing here changes an event's state:
replays go through :mod:`models.replays`.

Listings are newest first by ``(received_at, id)`` and page by keyset. Each
query picks the index that drives it: an event key goes to the dedup keys'
primary key (``event_keys``), an order reference to the order's few events,
and anything else to one index scan per status (final statuses:
``(final_status, received_at)``; statuses in work: the due or lease index,
whose rows are the backlog), merged (a ``UNION ALL`` of ordered, limited branches), so a page reads about
``limit`` rows per status whatever the table's size.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, text, tuple_, union_all
from sqlalchemy.sql.elements import ColumnElement

from models.keeping import EventKey
from models.orders import Delivery, DeliveryAttempt, Order, OrderTransition
from models.tables import EVENT_STATUSES, EventAttempt, WebhookEvent, event_status_sql
from providers.registry import PROVIDERS

_events = WebhookEvent.__table__
_attempts = EventAttempt.__table__
_orders = Order.__table__
_transitions = OrderTransition.__table__
_deliveries = Delivery.__table__
_tries = DeliveryAttempt.__table__


@dataclass(frozen=True)
class EventFilter:
    """Every field narrows the selection; empty tuples and None mean "any"."""

    statuses: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    order_reference: str | None = None
    event_key: str | None = None
    """the provider's event id, of any provider"""
    since: datetime | None = None
    """received at or after"""
    until: datetime | None = None
    """received at or before"""

    def as_json(self) -> dict[str, Any]:
        """The filter as the audit row keeps it: only what was set, datetimes in ISO 8601."""
        return filter_json(asdict(self))


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: its last row's ``received_at`` and ``id``."""

    received_at: datetime
    id: int


def filter_json(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value in (None, ()):
            continue
        out[name] = value.isoformat() if isinstance(value, datetime) else (
            list(value) if isinstance(value, tuple) else value)
    return out


def orders_named(reference: str):
    return select(_orders.c.id).where(_orders.c.reference == reference)


def order_event_ids(conn: Connection, reference: str) -> list[int]:
    """The events an order names: matched by a handler, or refused a change (a failure after a payment)."""
    order_ids = orders_named(reference)
    rows = conn.execute(
        select(_events.c.id).where(_events.c.order_id.in_(order_ids))
        .union(select(_transitions.c.event_id).where(_transitions.c.order_id.in_(order_ids),
                                                     _transitions.c.event_id.is_not(None))))
    return [row[0] for row in rows]


def _conditions(conn: Connection, f: EventFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.statuses:
        conditions.append(text(event_status_sql(f.statuses, alias=_events.name)))
    if f.providers:
        conditions.append(_events.c.provider.in_(f.providers))
    if f.types:
        conditions.append(_events.c.event_type.in_(f.types))
    if f.event_key is not None:
        # Every provider named: the dedup keys' primary key answers with one probe each.
        conditions.append(_events.c.id.in_(
            select(EventKey.event_id).where(EventKey.provider.in_(f.providers or PROVIDERS),
                                            EventKey.event_key == f.event_key)))
    if f.order_reference is not None:
        conditions.append(_events.c.id.in_(order_event_ids(conn, f.order_reference)))
    if f.since is not None:
        conditions.append(_events.c.received_at >= f.since)
    if f.until is not None:
        conditions.append(_events.c.received_at <= f.until)
    return conditions


SUMMARY_COLUMNS = ("id", "provider", "event_key", "event_type", "status", "attempts", "replay_count",
                   "received_at", "processed_at", "next_attempt_at", "last_error", "livemode", "secret_index")


def list_events(conn: Connection, f: EventFilter, *, limit: int, after: Cursor | None = None
                ) -> list[dict[str, Any]]:
    """Summaries of the matching events, newest first, after ``after`` (no bodies: see :func:`event_record`)."""
    newest_first = (_events.c.received_at.desc(), _events.c.id.desc())
    page: list[ColumnElement[bool]] = []
    if after is not None:
        page = [_events.c.received_at <= after.received_at,
                tuple_(_events.c.received_at, _events.c.id) < tuple_(after.received_at, after.id)]
    if f.event_key is not None or f.order_reference is not None:
        keys = select(_events.c.id).where(*_conditions(conn, f), *page).order_by(*newest_first).limit(limit)
    else:
        rest = _conditions(conn, replace(f, statuses=()))
        branches = [select(_events.c.id, _events.c.received_at)
                    .where(text(event_status_sql((status,), alias=_events.name)), *rest, *page)
                    .order_by(*newest_first).limit(limit) for status in (f.statuses or EVENT_STATUSES)]
        merged = union_all(*branches).subquery("page")
        keys = select(merged.c.id).order_by(merged.c.received_at.desc(), merged.c.id.desc()).limit(limit)
    ids = [row[0] for row in conn.execute(keys)]
    if not ids:
        return []
    query = (
        select(*(_events.c[name] for name in SUMMARY_COLUMNS), _orders.c.reference.label("order_reference"))
        .select_from(_events.outerjoin(_orders, _orders.c.id == _events.c.order_id))
        .where(_events.c.id.in_(ids))
        .order_by(*newest_first)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def cursor_after(conn: Connection, event_id: int) -> Cursor | None:
    """The keyset position of event ``event_id`` (None when it no longer exists)."""
    row = conn.execute(select(_events.c.received_at, _events.c.id).where(_events.c.id == event_id)).one_or_none()
    return None if row is None else Cursor(received_at=row.received_at, id=row.id)


def select_events(conn: Connection, f: EventFilter, *, limit: int | None = None) -> dict[int, str]:
    """``{id: status}`` of the matching events, oldest first (the order a replay re-arms them in)."""
    query = (select(_events.c.id, _events.c.status).where(and_(True, *_conditions(conn, f)))
             .order_by(_events.c.id))
    if limit is not None:
        query = query.limit(limit)
    return {row.id: row.status for row in conn.execute(query)}


def statuses_of(conn: Connection, *, table: str, ids: list[int]) -> dict[int, str]:
    """``{id: status}`` of the given rows of ``webhook_events`` or ``deliveries`` (missing ids absent)."""
    source = {"webhook_events": _events, "deliveries": _deliveries}[table]
    rows = conn.execute(select(source.c.id, source.c.status).where(source.c.id.in_(ids)))
    return {row.id: row.status for row in rows}


def find_event_id(conn: Connection, *, provider: str, event_key: str) -> int | None:
    """The stored event with this key (through the dedup keys' primary key); None if unknown or pruned."""
    return conn.execute(
        select(_events.c.id).join(EventKey, EventKey.event_id == _events.c.id)
        .where(EventKey.provider == provider, EventKey.event_key == event_key)
    ).scalar_one_or_none()


def event_record(conn: Connection, event_id: int) -> dict[str, Any] | None:
    """Everything about one event: the row, its order, attempts, history, deliveries and their tries."""
    event = conn.execute(select(_events).where(_events.c.id == event_id)).one_or_none()
    if event is None:
        return None
    record: dict[str, Any] = dict(event._mapping)
    record.pop("lease_expires_at", None)
    record["order"] = None
    if event.order_id is not None:
        order = conn.execute(
            select(_orders.c.id, _orders.c.reference, _orders.c.status, _orders.c.amount, _orders.c.currency)
            .where(_orders.c.id == event.order_id)).one_or_none()
        record["order"] = dict(order._mapping) if order else {"id": event.order_id, "reference": None}
    record["attempts_detail"] = [
        dict(row._mapping) for row in conn.execute(
            select(_attempts.c.number, _attempts.c.started_at, _attempts.c.finished_at, _attempts.c.outcome,
                   _attempts.c.error, _attempts.c.traceback, _attempts.c.worker)
            .where(_attempts.c.event_id == event_id).order_by(_attempts.c.number))
    ]
    record["transitions"] = [
        dict(row._mapping) for row in conn.execute(
            select(_transitions.c.at, _transitions.c.from_status, _transitions.c.to_status,
                   _transitions.c.note, _orders.c.reference.label("order_reference"))
            .select_from(_transitions.join(_orders, _orders.c.id == _transitions.c.order_id))
            .where(_transitions.c.event_id == event_id).order_by(_transitions.c.at, _transitions.c.id))
    ]
    replays = [
        dict(row._mapping) for row in conn.execute(
            text("""SELECT at, actor, detail FROM operator_actions
                     WHERE action = 'replay' AND target = 'events' AND filter -> 'ids' @> to_jsonb(CAST(:id AS bigint))
                     ORDER BY at, id"""),
            {"id": event_id})
    ]
    record["history"] = _history(record, record["transitions"], replays)
    record["deliveries"] = deliveries_of(conn, event_ids=[event_id])
    return record


def _history(record: dict[str, Any], transitions: list[dict[str, Any]],
             replays: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One timeline: received, every attempt's outcome, what it did to the order, replays by id."""
    verified = f"secret #{record['secret_index']}" if record["secret_index"] is not None else "no secret"
    entries = [{"at": record["received_at"], "what": "received",
                "detail": f"verified with {verified} ({record['verify_method'] or 'n/a'})"}]
    entries += [{"at": a["finished_at"], "what": f"attempt {a['number']}: {a['outcome']}", "detail": a["error"]}
                for a in record["attempts_detail"]]
    entries += [{"at": t["at"], "what": f"order {t['order_reference']}: {t['from_status']} → {t['to_status']}",
                 "detail": t["note"]} for t in transitions]
    entries += [{"at": r["at"], "what": f"replayed by {r['actor']}", "detail": r["detail"]} for r in replays]
    return sorted(entries, key=lambda entry: entry["at"])


DELIVERY_COLUMNS = ("id", "event_id", "order_id", "handler", "kind", "status", "attempts", "replay_count",
                    "next_attempt_at", "last_error", "created_at", "processed_at")


def deliveries_of(conn: Connection, *, event_ids: list[int] | None = None, order_id: int | None = None,
                  delivery_id: int | None = None) -> list[dict[str, Any]]:
    """Deliveries of some events, of an order, or one delivery; each with its key and every try."""
    where: ColumnElement[bool]
    if delivery_id is not None:
        where = _deliveries.c.id == delivery_id
    elif order_id is not None:
        where = _deliveries.c.order_id == order_id
    else:
        where = _deliveries.c.event_id.in_(event_ids or [])
    deliveries = [
        dict(row._mapping) for row in conn.execute(
            select(*(_deliveries.c[name] for name in DELIVERY_COLUMNS)).where(where).order_by(_deliveries.c.id))
    ]
    tries: dict[int, list[dict[str, Any]]] = {d["id"]: [] for d in deliveries}
    if deliveries:
        for row in conn.execute(
            select(_tries.c.delivery_id, _tries.c.number, _tries.c.started_at, _tries.c.finished_at,
                   _tries.c.outcome, _tries.c.response_code, _tries.c.response, _tries.c.error,
                   _tries.c.duration_ms, _tries.c.worker)
            .where(_tries.c.delivery_id.in_(list(tries))).order_by(_tries.c.delivery_id, _tries.c.number)
        ):
            entry = dict(row._mapping)
            tries[entry.pop("delivery_id")].append(entry)
    for delivery in deliveries:
        delivery["key"] = f"{delivery['event_id']}:{delivery['handler']}:{delivery['kind']}"
        delivery["tries"] = tries[delivery["id"]]
    return deliveries
