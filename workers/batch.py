"""A batch of events with a fixed number of statements, whatever its size.

The built-in handlers run against :class:`BufferedContext`: they decide in
Python, on the batch's locked order rows, and their writes go into memory.
Once every event of the batch is decided, the writes go out as one set-based
statement each (arrays through ``unnest``):

1. orders moved, with their ``order_transitions`` rows;
2. refunds (``ON CONFLICT DO NOTHING``: a refund already recorded sends the
   batch to the per-event path, which answers "already recorded");
3. deliveries (pending, or ``skipped`` with the reason);
4. every event's final status with its attempt row (:func:`transitions.finish_batch`).

A failing event costs only itself: its writes were never sent, its order row
is put back as it was, and it ends ``retrying`` or ``dead`` in statement 4.
Anything this path cannot vouch for (a lease lost, a refund already there, a
handler asking for an SQL expression) raises :class:`Redo`; the caller rolls
the transaction back and runs the batch through the per-event path, where
each event has its own savepoint. Custom handlers always take that path.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, Connection
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.functions import FunctionElement

from models import transitions, wakeup
from models.orders import Order, Refund
from models.redaction import redact
from workers.errors import BadEventData, Ignored, OrderNotFound, PermanentError, format_traceback
from workers.handlers import HandlerContext, handlers_for
from workers.normalise import Payment, extract

_orders = Order.__table__
_refunds = Refund.__table__
_DIALECT = postgresql.dialect()
KEEP, VALUE, NOW = 0, 1, 2
"""How the orders statement sets a column of one order: as it is, to a value, to clock_timestamp()."""


class Redo(Exception):
    """The batch cannot be written set-based: roll back and handle it event by event."""


class OrderState(SimpleNamespace):
    """A locked order row as the batch's handlers see it: attribute access, changed in memory."""


@dataclass
class Writes:
    """What handlers wrote, not yet sent."""

    moves: dict[int, dict[str, tuple[int, Any]]] = field(default_factory=dict)
    """order id → column → (KEEP/VALUE/NOW, value)."""
    transitions: list[tuple[int, int, str, str, str | None]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[tuple[int, int, str, str, str, str | None]] = field(default_factory=list)

    def add(self, other: Writes) -> None:
        for order_id, columns in other.moves.items():
            self.moves.setdefault(order_id, {}).update(columns)
        self.transitions += other.transitions
        self.refunds += other.refunds
        self.deliveries += other.deliveries


@dataclass
class BufferedContext(HandlerContext):
    """:class:`HandlerContext` whose writes wait in :attr:`writes` and whose order is an :class:`OrderState`."""

    writes: Writes = field(default_factory=Writes)

    def move_order(self, to_status: str, *, note: str | None = None, **changes: Any) -> None:
        columns = self.writes.moves.setdefault(self.order.id, {})
        for name, value in changes.items():
            if name not in _orders.c:
                raise ValueError(f"orders has no column {name!r}")
            if isinstance(value, FunctionElement) and value.name == "clock_timestamp":
                columns[name] = (NOW, None)
                setattr(self.order, name, datetime.now(timezone.utc))
            elif isinstance(value, ClauseElement):
                raise Redo(f"move_order({name}=<SQL expression>) needs the per-event path")
            else:
                columns[name] = (VALUE, value)
                setattr(self.order, name, value)
        columns["status"] = (VALUE, to_status)
        self.record(to_status, note=note)
        self.order.status = to_status

    def record(self, to_status: str, *, note: str | None = None) -> None:
        self.writes.transitions.append((self.order.id, self.event_id, self.order.status, to_status, note))

    def outbound(self, *, handler: str, kind: str, payload: dict[str, Any]) -> bool:
        if any(d[0] == self.event_id and d[2] == handler and d[3] == kind for d in self.writes.deliveries):
            return False
        self.writes.deliveries.append((self.event_id, self.order.id, handler, kind, json.dumps(payload),
                                       self.unsendable(kind)))
        return True

    def insert_refund(self, **values: Any) -> bool:
        self.writes.refunds.append(values)
        return True  # checked when written: a conflict sends the batch to the per-event path


@dataclass
class Decided:
    outcome: transitions.Outcome
    seconds: float


LockOrder = Callable[[Connection, str, Payment], Any]


@dataclass
class Batch:
    """One batch's decisions: run :meth:`decide` per event (in id order), then :meth:`write`."""

    conn: Connection
    orders: dict[tuple[str, str | None], Any]
    """The rows locked for the batch, by (provider, payment reference)."""
    lock_order: LockOrder
    unsendable: Callable[..., str | None]
    retry_in: Callable[[transitions.Claim, Exception], Any]
    states: dict[int, OrderState] = field(default_factory=dict)
    writes: Writes = field(default_factory=Writes)
    decided: list[Decided] = field(default_factory=list)

    def decide(self, claim: transitions.Claim, provider: str, kind: str | None, resolved: Any) -> None:
        started = time.perf_counter()
        fetched = None
        try:
            if isinstance(resolved, Exception):
                raise resolved
            event_type, payload, was_fetched = resolved
            fetched = (event_type, payload) if was_fetched else None
            outcome = self._run(claim, provider, kind, event_type, payload, fetched)
        except Redo:
            raise
        except Exception as exc:  # every failure is recorded; permanent ones are not retried
            outcome = self._failed(claim, exc, fetched)
        self.decided.append(Decided(outcome, time.perf_counter() - started))

    def _run(self, claim: transitions.Claim, provider: str, kind: str | None, event_type: str, payload: Any,
             fetched: tuple[str, Any] | None) -> transitions.Outcome:
        handlers = handlers_for(kind) if kind else []
        if not handlers:
            return transitions.Outcome(claim, "ignored", f"no handler for {event_type}", fetched=fetched)
        payment = extract(provider, event_type, payload)
        try:
            order = self._order(provider, payment)
        except Ignored as exc:
            return transitions.Outcome(claim, "ignored", exc.reason, fetched=fetched)
        ctx = BufferedContext(conn=self.conn, event_id=claim.event_id, provider=provider, event_type=event_type,
                              kind=kind, payment=payment, order=order,
                              unsendable=lambda delivery_kind: self.unsendable(
                                  kind=delivery_kind, email=order.customer_email, phone=order.customer_phone))
        before = dict(vars(order))
        try:
            notes = [note for _, handler in handlers if (note := handler(ctx))]
        except BaseException as exc:
            vars(order).clear()
            vars(order).update(before)  # the failed event's changes never happened
            exc.payhooks_order_id = order.id  # type: ignore[attr-defined]  (the failure is linked to it too)
            raise
        self.writes.add(ctx.writes)
        return transitions.Outcome(claim, "succeeded", "; ".join(notes) or None, order_id=order.id, fetched=fetched)

    def _order(self, provider: str, payment: Payment) -> OrderState:
        row = self.orders.get((provider, payment.payment_ref)) if payment.payment_ref else None
        if row is None and payment.payment_ref:  # the batch's lock statement looked for it already
            if provider == "yoco":  # Yoco sends every payment of the account: not ours
                raise Ignored(f"no order for Yoco checkout {payment.payment_ref}")
            raise OrderNotFound(f"{provider} payment {payment.payment_ref}")
        if row is None:
            if not payment.alt_payment_id:
                raise BadEventData("the event names no payment reference")
            row = self.lock_order(self.conn, provider, payment)
        state = self.states.get(row.id)
        if state is None:  # one state per order, shared by every event of the batch that names it
            state = self.states[row.id] = OrderState(**row._mapping)
        return state

    def _failed(self, claim: transitions.Claim, exc: Exception,
                fetched: tuple[str, Any] | None) -> transitions.Outcome:
        permanent = isinstance(exc, PermanentError)
        retry_in = None if permanent else self.retry_in(claim, exc)
        return transitions.Outcome(claim, "dead" if retry_in is None else "retrying",
                                   redact(str(exc) or type(exc).__name__), retry_in=retry_in,
                                   traceback=None if permanent else redact(format_traceback(exc)),
                                   order_id=getattr(exc, "payhooks_order_id", None), fetched=fetched)

    def write(self, *, worker: str) -> None:
        """The batch's writes, one statement per kind of write; raises :class:`Redo` when one falls short.

        Parameters go in binary: psycopg's text form of an array escapes every element with
        a regular expression, which cost more CPU than the rest of the batch.
        """
        driver = self.conn.connection.driver_connection
        writes = self.writes
        if writes.moves or writes.transitions:
            driver.execute(*_moves_statement(writes), binary=True)
        if writes.refunds:
            sql, params = _refunds_statement(writes.refunds)
            if len(driver.execute(sql, params, binary=True).fetchall()) != len(writes.refunds):
                raise Redo("a refund of the batch is already recorded")
        if writes.deliveries:
            driver.execute(_DELIVERIES, dict(zip(("event_id", "order_id", "handler", "kind", "payload", "reason"),
                                                 map(list, zip(*writes.deliveries)), strict=True)),
                           binary=True)
        outcomes = [d.outcome for d in self.decided]
        done = transitions.finish_batch(self.conn, outcomes, worker=worker)
        if len(done) != len(outcomes):
            raise Redo("an event of the batch lost its lease")
        if any(reason is None for *_, reason in writes.deliveries) or any(
                o.status == "retrying" for o in outcomes):
            driver.execute(wakeup.NOTIFY)  # new work for the dispatcher, once this batch commits


def _sql_type(table, column: str) -> str:
    column_type = table.c[column].type
    return "text" if isinstance(column_type, JSON) else column_type.compile(dialect=_DIALECT)


def _value(table, column: str, value: Any) -> Any:
    return json.dumps(value) if isinstance(table.c[column].type, JSON) and value is not None else value


def _moves_statement(writes: Writes) -> tuple[str, dict[str, Any]]:
    """Orders moved (any columns the handlers set) and their transitions: one statement."""
    params: dict[str, Any] = {}
    parts: list[str] = []
    if writes.moves:
        ids = list(writes.moves)
        columns = sorted({c for changes in writes.moves.values() for c in changes})
        arrays, names, sets = ["%(id)b::bigint[]"], ["id"], ["updated_at = clock_timestamp()"]
        params["id"] = ids
        for n, column in enumerate(columns):
            modes = [writes.moves[i].get(column, (KEEP, None))[0] for i in ids]
            params[f"m{n}"] = modes
            params[f"v{n}"] = [_value(_orders, column, writes.moves[i].get(column, (KEEP, None))[1]) for i in ids]
            arrays += [f"%(m{n})b::int[]", f"%(v{n})b::{_sql_type(_orders, column)}[]"]
            names += [f"m{n}", f"v{n}"]
            cast = "::jsonb" if isinstance(_orders.c[column].type, JSON) else ""
            now = " WHEN 2 THEN clock_timestamp()" if NOW in modes else ""
            sets.append(f"{column} = CASE v.m{n} WHEN 1 THEN v.v{n}{cast}{now} ELSE o.{column} END")
        parts.append(f"""moved AS (
            UPDATE orders o SET {', '.join(sets)}
              FROM unnest({', '.join(arrays)}) AS v({', '.join(names)})
             WHERE o.id = v.id)""")
    statement = f"WITH {', '.join(parts)} " if parts else ""
    if writes.transitions:
        statement += """INSERT INTO order_transitions (order_id, event_id, from_status, to_status, note)
            SELECT * FROM unnest(%(t_order)b::bigint[], %(t_event)b::bigint[], %(t_from)b::text[],
                                 %(t_to)b::text[], %(t_note)b::text[])"""
        params.update(zip(("t_order", "t_event", "t_from", "t_to", "t_note"),
                          map(list, zip(*writes.transitions)), strict=True))
    else:
        statement += "SELECT 1"
    return statement, params


def _refunds_statement(refunds: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Refund rows, whatever columns the handler writes: one INSERT over arrays."""
    columns = list(refunds[0])
    params = {f"c{n}": [_value(_refunds, column, r[column]) for r in refunds] for n, column in enumerate(columns)}
    arrays = ", ".join(f"%(c{n})b::{_sql_type(_refunds, column)}[]" for n, column in enumerate(columns))
    return (f"INSERT INTO refunds ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
            "ON CONFLICT DO NOTHING RETURNING id"), params


_DELIVERIES = """
    INSERT INTO deliveries (event_id, order_id, handler, kind, payload, status, last_error, next_attempt_at,
                            processed_at)
    SELECT e, o, h, k, p::jsonb, CASE WHEN r IS NULL THEN 'pending' ELSE 'skipped' END, r,
           CASE WHEN r IS NULL THEN now() END, CASE WHEN r IS NOT NULL THEN clock_timestamp() END
      FROM unnest(%(event_id)b::bigint[], %(order_id)b::bigint[], %(handler)b::text[], %(kind)b::text[],
                  %(payload)b::text[], %(reason)b::text[]) AS v(e, o, h, k, p, r)
    ON CONFLICT ON CONSTRAINT uq_deliveries_event_id_handler_kind DO NOTHING"""
