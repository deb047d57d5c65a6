"""Orders as the operator reads them: newest first, or one by reference with its whole story."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, select

from models.orders import Order, OrderTransition
from models.queries.events import deliveries_of, order_event_ids
from models.tables import WebhookEvent

_orders = Order.__table__
_transitions = OrderTransition.__table__
_events = WebhookEvent.__table__

ORDER_COLUMNS = ("id", "reference", "provider", "provider_payment_ref", "amount", "currency", "status",
                 "refunded_amount", "created_at", "updated_at", "paid_at")


def list_orders(conn: Connection, *, limit: int, statuses: tuple[str, ...] = (),
                before_id: int | None = None) -> list[dict[str, Any]]:
    """Orders newest first (by id), before ``before_id``."""
    conditions = []
    if statuses:
        conditions.append(_orders.c.status.in_(statuses))
    if before_id is not None:
        conditions.append(_orders.c.id < before_id)
    query = (select(*(_orders.c[name] for name in ORDER_COLUMNS)).where(and_(True, *conditions))
             .order_by(_orders.c.id.desc()).limit(limit))
    return [dict(row._mapping) for row in conn.execute(query)]


def order_record(conn: Connection, reference: str) -> dict[str, Any] | None:
    """The order, its transitions (with the event that caused each), its events and its deliveries."""
    row = conn.execute(select(_orders).where(_orders.c.reference == reference)).one_or_none()
    if row is None:
        return None
    record: dict[str, Any] = dict(row._mapping)
    record["transitions"] = [dict(r._mapping) for r in conn.execute(
        select(_transitions.c.at, _transitions.c.event_id, _transitions.c.from_status, _transitions.c.to_status,
               _transitions.c.note)
        .where(_transitions.c.order_id == row.id).order_by(_transitions.c.at, _transitions.c.id))]
    record["events"] = [dict(r._mapping) for r in conn.execute(
        select(_events.c.id, _events.c.provider, _events.c.event_key, _events.c.event_type, _events.c.status,
               _events.c.attempts, _events.c.received_at, _events.c.last_error)
        .where(_events.c.id.in_(order_event_ids(conn, reference)))
        .order_by(_events.c.received_at, _events.c.id))]
    record["deliveries"] = deliveries_of(conn, order_id=row.id)
    return record
