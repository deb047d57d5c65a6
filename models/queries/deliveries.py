"""Deliveries (emails, fulfilment calls, SMS) as the operator reads them: filters, keyset pages, one record."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select
from sqlalchemy.sql.elements import ColumnElement

from models.orders import Delivery, Order
from models.queries.events import (
    DELIVERY_COLUMNS,
    deliveries_of,
    filter_json,
    orders_named,
)
from models.tables import WebhookEvent

_deliveries = Delivery.__table__
_orders = Order.__table__
_events = WebhookEvent.__table__


@dataclass(frozen=True)
class DeliveryFilter:
    statuses: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    order_reference: str | None = None
    since: datetime | None = None
    """created at or after"""
    until: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return filter_json(asdict(self))


def _conditions(f: DeliveryFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.statuses:
        conditions.append(_deliveries.c.status.in_(f.statuses))
    if f.kinds:
        conditions.append(_deliveries.c.kind.in_(f.kinds))
    if f.order_reference is not None:
        conditions.append(_deliveries.c.order_id.in_(orders_named(f.order_reference)))
    if f.since is not None:
        conditions.append(_deliveries.c.created_at >= f.since)
    if f.until is not None:
        conditions.append(_deliveries.c.created_at <= f.until)
    return conditions


def select_deliveries(conn: Connection, f: DeliveryFilter, *, limit: int | None = None) -> dict[int, str]:
    """``{id: status}`` of the matching deliveries, oldest first."""
    query = (select(_deliveries.c.id, _deliveries.c.status).where(and_(True, *_conditions(f)))
             .order_by(_deliveries.c.id))
    if limit is not None:
        query = query.limit(limit)
    return {row.id: row.status for row in conn.execute(query)}


def list_deliveries(conn: Connection, f: DeliveryFilter, *, limit: int, before_id: int | None = None
                    ) -> list[dict[str, Any]]:
    """Matching deliveries, newest first (by id, the order they were written in), before ``before_id``."""
    conditions = _conditions(f)
    if before_id is not None:
        conditions.append(_deliveries.c.id < before_id)
    query = (
        select(*(_deliveries.c[name] for name in DELIVERY_COLUMNS), _orders.c.reference.label("order_reference"))
        .select_from(_deliveries.join(_orders, _orders.c.id == _deliveries.c.order_id))
        .where(and_(True, *conditions))
        .order_by(_deliveries.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def delivery_record(conn: Connection, delivery_id: int) -> dict[str, Any] | None:
    """One delivery with every try, its payload, its order's reference and its event's summary."""
    found = deliveries_of(conn, delivery_id=delivery_id)
    if not found:
        return None
    record = found[0]
    extra = conn.execute(
        select(_deliveries.c.payload, _orders.c.reference.label("order_reference"),
               _events.c.provider.label("event_provider"), _events.c.event_type.label("event_type"),
               _events.c.status.label("event_status"))
        .select_from(_deliveries.join(_orders, _orders.c.id == _deliveries.c.order_id)
                     .outerjoin(_events, _events.c.id == _deliveries.c.event_id))
        .where(_deliveries.c.id == delivery_id)).one()
    record.update(extra._mapping)
    return record
