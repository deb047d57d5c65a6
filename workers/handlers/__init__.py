"""Handlers: the business effect of one canonical kind, in the event's transaction.

A handler receives a :class:`HandlerContext` whose order row is already locked
(``SELECT … FOR UPDATE``), changes the order through ``ctx.move_order`` (which
also records the transition) and writes its outbound work with
``ctx.outbound`` (unique per ``(event, handler, kind)``). It raises an error
from :mod:`workers.errors` to fail; returning a string leaves a note on the
event.

Register a custom handler for a canonical kind; it runs after the built-in one
for that kind, in the same transaction::

    from workers.handlers import register

    @register("payment.succeeded", name="loyalty_points")
    def add_points(ctx):
        ctx.conn.execute(...)

and list its module in ``PAYHOOKS_HANDLER_MODULES`` so workers import it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, update
from sqlalchemy.dialects.postgresql import insert

from models.orders import Delivery, Order, OrderTransition
from workers.normalise import Payment

_deliveries = Delivery.__table__
_orders = Order.__table__


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
        """Set the order's status (and other columns), recording the transition."""
        self.conn.execute(
            update(_orders).where(_orders.c.id == self.order.id)
            .values(status=to_status, updated_at=func.clock_timestamp(), **changes)
        )
        self.record(to_status, note=note)

    def record(self, to_status: str, *, note: str | None = None) -> None:
        """Record what this event did (or was not allowed to do) to the order."""
        self.conn.execute(OrderTransition.__table__.insert().values(
            order_id=self.order.id, event_id=self.event_id, from_status=self.order.status,
            to_status=to_status, note=note,
        ))

    def outbound(self, *, handler: str, kind: str, payload: dict[str, Any]) -> bool:
        """Write one delivery row; False when this event already wrote it (a replay).

        A delivery that cannot be sent (its setting or the customer's address is
        missing) is written ``skipped`` with the reason: no task is spent on it,
        and a replay sends it once the setting exists.
        """
        reason = self.unsendable(kind)
        skipped = {"status": "skipped", "last_error": reason, "next_attempt_at": None,
                   "processed_at": func.clock_timestamp()} if reason else {}
        inserted = self.conn.execute(
            insert(_deliveries)
            .values(event_id=self.event_id, order_id=self.order.id, handler=handler, kind=kind,
                    payload=payload, **skipped)
            .on_conflict_do_nothing(constraint="uq_deliveries_event_id_handler_kind")
            .returning(_deliveries.c.id)
        ).scalar_one_or_none()
        return inserted is not None

    def order_summary(self) -> dict[str, Any]:
        order = self.order
        return {"reference": order.reference, "amount": order.amount, "currency": order.currency,
                "customer_email": order.customer_email, "customer_phone": order.customer_phone,
                "customer_name": order.customer_name,
                "provider": order.provider, "provider_payment_ref": order.provider_payment_ref}


Handler = Callable[[HandlerContext], "str | None"]

_registry: dict[str, list[tuple[str, Handler]]] = {}


def register(kind: str, *, name: str) -> Callable[[Handler], Handler]:
    def decorator(handler: Handler) -> Handler:
        entries = _registry.setdefault(kind, [])
        entries[:] = [(n, h) for n, h in entries if n != name] + [(name, handler)]
        return handler

    return decorator


def handlers_for(kind: str) -> list[tuple[str, Handler]]:
    _load_builtins()
    return list(_registry.get(kind, []))


def _load_builtins() -> None:
    from workers.handlers import failure, fulfilment, refund  # noqa: F401  (they register)
