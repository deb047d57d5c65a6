"""What the operator reads and does by hand: event listings, one event's whole record, audit rows.

SQLAlchemy Core over the tables the pipeline writes; the caller passes the
connection and owns the transaction. Nothing here changes an event's state:
replays go through :func:`models.transitions.replay` and
:func:`models.deliveries.replay`, and are recorded with :func:`start_action`
and :func:`add_to_action`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, or_, select, text, update
from sqlalchemy.sql.elements import ColumnElement

from models.orders import Delivery, DeliveryAttempt, OperatorAction, Order, OrderTransition
from models.tables import EventAttempt, WebhookEvent

_events = WebhookEvent.__table__
_attempts = EventAttempt.__table__
_orders = Order.__table__
_transitions = OrderTransition.__table__
_deliveries = Delivery.__table__
_tries = DeliveryAttempt.__table__
_actions = OperatorAction.__table__


@dataclass(frozen=True)
class EventFilter:
    """Every field narrows the selection; empty tuples and None mean "any"."""

    statuses: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    order_reference: str | None = None
    since: datetime | None = None
    """received at or after"""
    until: datetime | None = None
    """received at or before"""

    def as_json(self) -> dict[str, Any]:
        """The filter as the audit row keeps it: only what was set, datetimes in ISO 8601."""
        return _filter_json(asdict(self))


@dataclass(frozen=True)
class DeliveryFilter:
    statuses: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    order_reference: str | None = None
    since: datetime | None = None
    """created at or after"""
    until: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return _filter_json(asdict(self))


def _filter_json(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value in (None, ()):
            continue
        out[name] = value.isoformat() if isinstance(value, datetime) else (
            list(value) if isinstance(value, tuple) else value)
    return out


def _orders_named(reference: str) -> Select:
    return select(_orders.c.id).where(_orders.c.reference == reference)


def _event_conditions(f: EventFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.statuses:
        conditions.append(_events.c.status.in_(f.statuses))
    if f.providers:
        conditions.append(_events.c.provider.in_(f.providers))
    if f.types:
        conditions.append(_events.c.event_type.in_(f.types))
    if f.order_reference is not None:
        # order_id is set when a handler finished; order_transitions also name
        # the events that were refused a change (a failure after a payment).
        touched = select(_transitions.c.event_id).where(
            _transitions.c.order_id.in_(_orders_named(f.order_reference)))
        conditions.append(or_(_events.c.order_id.in_(_orders_named(f.order_reference)),
                              _events.c.id.in_(touched)))
    if f.since is not None:
        conditions.append(_events.c.received_at >= f.since)
    if f.until is not None:
        conditions.append(_events.c.received_at <= f.until)
    return conditions


def list_events(conn: Connection, f: EventFilter, *, limit: int) -> list[dict[str, Any]]:
    """Summaries of the matching events, newest first (no bodies: see :func:`event_record`)."""
    query = (
        select(_events.c.id, _events.c.provider, _events.c.event_key, _events.c.event_type,
               _events.c.status, _events.c.attempts, _events.c.replay_count, _events.c.received_at,
               _events.c.processed_at, _events.c.next_attempt_at, _events.c.last_error,
               _events.c.livemode, _events.c.secret_index, _orders.c.reference.label("order_reference"))
        .select_from(_events.outerjoin(_orders, _orders.c.id == _events.c.order_id))
        .where(and_(True, *_event_conditions(f)))
        .order_by(_events.c.received_at.desc(), _events.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def select_events(conn: Connection, f: EventFilter, *, limit: int | None = None) -> dict[int, str]:
    """``{id: status}`` of the matching events, oldest first (the order a replay re-arms them in)."""
    query = (select(_events.c.id, _events.c.status).where(and_(True, *_event_conditions(f)))
             .order_by(_events.c.id))
    if limit is not None:
        query = query.limit(limit)
    return {row.id: row.status for row in conn.execute(query)}


def select_deliveries(conn: Connection, f: DeliveryFilter, *, limit: int | None = None) -> dict[int, str]:
    """``{id: status}`` of the matching deliveries, oldest first."""
    conditions: list[ColumnElement[bool]] = []
    if f.statuses:
        conditions.append(_deliveries.c.status.in_(f.statuses))
    if f.kinds:
        conditions.append(_deliveries.c.kind.in_(f.kinds))
    if f.order_reference is not None:
        conditions.append(_deliveries.c.order_id.in_(_orders_named(f.order_reference)))
    if f.since is not None:
        conditions.append(_deliveries.c.created_at >= f.since)
    if f.until is not None:
        conditions.append(_deliveries.c.created_at <= f.until)
    query = (select(_deliveries.c.id, _deliveries.c.status).where(and_(True, *conditions))
             .order_by(_deliveries.c.id))
    if limit is not None:
        query = query.limit(limit)
    return {row.id: row.status for row in conn.execute(query)}


def statuses_of(conn: Connection, *, table: str, ids: list[int]) -> dict[int, str]:
    """``{id: status}`` of the given rows of ``webhook_events`` or ``deliveries`` (missing ids absent)."""
    source = {"webhook_events": _events, "deliveries": _deliveries}[table]
    rows = conn.execute(select(source.c.id, source.c.status).where(source.c.id.in_(ids)))
    return {row.id: row.status for row in rows}


def find_event_id(conn: Connection, *, provider: str, event_key: str) -> int | None:
    return conn.execute(
        select(_events.c.id).where(_events.c.provider == provider, _events.c.event_key == event_key)
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
    transitions = [
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
    record["history"] = _history(record, transitions, replays)
    record["deliveries"] = _deliveries_of(conn, event_id)
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


def _deliveries_of(conn: Connection, event_id: int) -> list[dict[str, Any]]:
    deliveries = [
        dict(row._mapping) for row in conn.execute(
            select(_deliveries.c.id, _deliveries.c.handler, _deliveries.c.kind, _deliveries.c.status,
                   _deliveries.c.attempts, _deliveries.c.replay_count, _deliveries.c.next_attempt_at,
                   _deliveries.c.last_error, _deliveries.c.created_at, _deliveries.c.processed_at)
            .where(_deliveries.c.event_id == event_id).order_by(_deliveries.c.id))
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
        delivery["key"] = f"{event_id}:{delivery['handler']}:{delivery['kind']}"
        delivery["tries"] = tries[delivery["id"]]
    return deliveries


def start_action(conn: Connection, *, actor: str, action: str, target: str, filter: dict[str, Any],
                 detail: str | None = None) -> int:
    """An ``operator_actions`` row with count 0, to which each committed batch adds its rows."""
    return conn.execute(
        _actions.insert().values(actor=actor[:255], action=action, target=target, filter=filter, count=0,
                                 detail=detail).returning(_actions.c.id)
    ).scalar_one()


def add_to_action(conn: Connection, action_id: int, *, count: int, detail: str | None = None) -> None:
    """Count rows done, in the transaction that did them, so the audit row never over- or under-counts."""
    values: dict[str, Any] = {"count": _actions.c.count + count}
    if detail is not None:
        values["detail"] = detail
    conn.execute(update(_actions).where(_actions.c.id == action_id).values(**values))
