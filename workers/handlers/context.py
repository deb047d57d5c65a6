"""The handler's view of one event: the locked order, and the writes a handler may make.

A handler receives a :class:`HandlerContext` whose order row is already locked
(``SELECT … FOR UPDATE``), changes the order through ``ctx.move_order`` (which
also records the transition) and writes its outbound work with
``ctx.outbound`` (unique per ``(event, handler, kind)``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Connection, Row, func, update
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.functions import FunctionElement

from models import wakeup
from models.orders import Order
from workers.normalise import Payment

_orders = Order.__table__

# The statements every event runs are fixed SQL, run by psycopg itself on the
# connection (and in the transaction) of ``ctx.conn``: building and compiling
# a SQLAlchemy construct per call cost several times the CPU of running it,
# and SQLAlchemy's result set-up alone about 0.13 ms a statement. Moving an
# order and recording the transition is one statement.
_MOVE = """
    WITH moved AS (UPDATE orders SET status = %(to_status)s, updated_at = clock_timestamp(){assignments}
                    WHERE id = %(order_id)s RETURNING id)
    INSERT INTO order_transitions (order_id, event_id, from_status, to_status, note)
    SELECT id, %(event_id)s, %(from_status)s, %(to_status)s, %(note)s FROM moved"""
_RECORD = """
    INSERT INTO order_transitions (order_id, event_id, from_status, to_status, note)
    VALUES (%(order_id)s, %(event_id)s, %(from_status)s, %(to_status)s, %(note)s)"""
_OUTBOUND = """
    INSERT INTO deliveries (event_id, order_id, handler, kind, payload{skipped_columns})
    VALUES (%(event_id)s, %(order_id)s, %(handler)s, %(kind)s, %(payload)s{skipped_values})
    ON CONFLICT ON CONSTRAINT uq_deliveries_event_id_handler_kind DO NOTHING
    RETURNING id"""
_OUTBOUND_PENDING = _OUTBOUND.format(skipped_columns="", skipped_values="")
_OUTBOUND_SKIPPED = _OUTBOUND.format(
    skipped_columns=", status, last_error, next_attempt_at, processed_at",
    skipped_values=", 'skipped', %(reason)s, NULL, clock_timestamp()")
_NOW = "clock_timestamp()"


def _driver(conn: Connection) -> Any:
    """The psycopg connection under ``conn``: same session, same open transaction."""
    return conn.connection.driver_connection


def _sql_value(name: str, value: Any) -> tuple[str, Any] | None:
    """How ``move_order`` sets one column in fixed SQL: (SQL, bound value); None when only SQLAlchemy can."""
    if name not in _orders.c:
        raise ValueError(f"orders has no column {name!r}")
    if isinstance(value, FunctionElement) and value.name == "clock_timestamp":
        return _NOW, None
    if isinstance(value, ClauseElement):
        return None
    if isinstance(_orders.c[name].type, JSON) and value is not None:
        value = Jsonb(value)
    return f"%({name})s", value


@dataclass
class HandlerContext:
    conn: Connection
    event_id: int
    provider: str
    event_type: str
    kind: str
    payment: Payment
    order: Row[Any]
    unsendable: Callable[[str], str | None] = lambda kind: None
    """Why a delivery of a kind cannot be sent now (the row is then written ``skipped``)."""

    def move_order(self, to_status: str, *, note: str | None = None, **changes: Any) -> None:
        """Set the order's status (and other columns), recording the transition.

        A change is a plain value or ``func.clock_timestamp()``; any other SQL
        expression is accepted too, through SQLAlchemy (two statements).
        """
        assignments, params = [], self._transition(to_status, note)
        for name, value in changes.items():
            sql = _sql_value(name, value)
            if sql is None:
                self.conn.execute(update(_orders).where(_orders.c.id == self.order.id)
                                  .values(status=to_status, updated_at=func.clock_timestamp(), **changes))
                self.record(to_status, note=note)
                return
            assignments.append(f", {name} = {sql[0]}")
            params[name] = sql[1]
        _driver(self.conn).execute(_MOVE.format(assignments="".join(assignments)), params)

    def record(self, to_status: str, *, note: str | None = None) -> None:
        """Record what this event did (or was not allowed to do) to the order."""
        _driver(self.conn).execute(_RECORD, self._transition(to_status, note))

    def _transition(self, to_status: str, note: str | None) -> dict[str, Any]:
        return {"order_id": self.order.id, "event_id": self.event_id, "from_status": self.order.status,
                "to_status": to_status, "note": note}

    def outbound(self, *, handler: str, kind: str, payload: dict[str, Any]) -> bool:
        """Write one delivery row; False when this event already wrote it (a replay).

        A delivery that cannot be sent (its setting or the customer's address is
        missing) is written ``skipped`` with the reason: no task is spent on it,
        and a replay sends it once the setting exists.
        """
        reason = self.unsendable(kind)
        inserted = _driver(self.conn).execute(_OUTBOUND_SKIPPED if reason else _OUTBOUND_PENDING, {
            "event_id": self.event_id, "order_id": self.order.id, "handler": handler, "kind": kind,
            "payload": Jsonb(payload), "reason": reason,
        }).fetchone()
        if inserted is not None and not reason:
            _driver(self.conn).execute(wakeup.NOTIFY)  # the dispatcher sends it once this commits
        return inserted is not None

    def insert_refund(self, **values: Any) -> bool:
        """Write one refund row (``refunds`` columns); False when it is already recorded (a unique key).

        A batch's built-in handlers write their refunds together in one statement
        (:mod:`workers.batch`); this is the one-row form of the same write.
        """
        columns = list(values)
        inserted = _driver(self.conn).execute(
            f"INSERT INTO refunds ({', '.join(columns)}) VALUES ({', '.join(f'%({c})s' for c in columns)}) "
            "ON CONFLICT DO NOTHING RETURNING id", values).fetchone()
        return inserted is not None

    def order_summary(self) -> dict[str, Any]:
        order = self.order
        return {"reference": order.reference, "amount": order.amount, "currency": order.currency,
                "customer_email": order.customer_email, "customer_phone": order.customer_phone,
                "customer_name": order.customer_name,
                "provider": order.provider, "provider_payment_ref": order.provider_payment_ref}
