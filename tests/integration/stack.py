"""What the integration tests do with the stack: orders and rows, signed events through the receiver,
waiting until events are final (with the processes' logs when they are not).

The stack itself (worker and dispatcher processes, the fake ProcessOut) is
made by the fixtures of conftest.py from testkit/.
"""
from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import Engine, text

from models import transitions
from models.ingest import store_event
from sandbox.samples import sample_body, sample_processout_event
from testkit.fakes import FakeProcessOut
from testkit.processes import wait_for
from testkit.services import Services
from tests.conftest import make_settings
from tests.integration.helpers import CURRENCY, signed_request


def create_order(engine: Engine, *, reference: str, provider: str = "yoco", payment_ref: str | None = None,
                 amount: int = 1000, currency: str | None = None, status: str = "pending",
                 email: str | None = "buyer@example.com", phone: str | None = None, name: str | None = None) -> int:
    """An order (payment ``pay_<reference>``, the provider's currency unless given): its id."""
    with engine.begin() as conn:
        return conn.execute(
            text("""INSERT INTO orders (reference, provider, provider_payment_ref, amount, currency, status,
                                        customer_email, customer_phone, customer_name)
                    VALUES (:r, :p, :ref, :a, :c, :s, :e, :ph, :n) RETURNING id"""),
            {"r": reference, "p": provider, "ref": payment_ref or f"pay_{reference}", "a": amount,
             "c": currency or CURRENCY[provider], "s": status, "e": email, "ph": phone, "n": name},
        ).scalar_one()


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    """The rows ``sql`` selects, its ``:name`` parameters given as keywords."""
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def values(engine: Engine, sql: str, **params: Any) -> list[Any]:
    """The first column of each row ``sql`` selects."""
    return [row[0] for row in rows(engine, sql, **params)]


def tuples(engine: Engine, sql: str, **params: Any) -> list[tuple]:
    """The rows ``sql`` selects, as plain tuples."""
    return [tuple(row) for row in rows(engine, sql, **params)]


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    """The one value ``sql`` selects."""
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def execute(engine: Engine, sql: str, **params: Any) -> None:
    """Run ``sql`` (a write) in a transaction of its own."""
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def paid_transitions(engine: Engine, event_id: int) -> int:
    """How often ``event_id`` moved its order from pending to paid (a handler's effect, counted)."""
    return scalar(engine, """SELECT count(*) FROM order_transitions
                              WHERE event_id = :e AND from_status = 'pending' AND to_status = 'paid'""", e=event_id)


def stored_event(engine: Engine, key: str = "evt_1", *, provider: str = "yoco", event_type: str = "payment.succeeded",
                 body: bytes = b"{}") -> int:
    """A verified event (a Yoco payment unless told) stored as the receiver stores it (pending): its id."""
    with engine.begin() as conn:
        return store_event(conn.connection.driver_connection, provider=provider, event_key=key, event_type=event_type,
                           livemode=False, raw_body=body, headers={}, payload=json.loads(body), secret_index=0,
                           verify_method="hmac").id


def stored_payments(engine: Engine, *refs: str, event_type: str = "payment.completed") -> list[int]:
    """One stored ShadhinPay event per payment reference (in that order), not yet dispatched."""
    return [stored_event(engine, f"evt_{event_type}_{ref}", provider="shadhinpay", event_type=event_type,
                         body=sample_body("shadhinpay", event_type, order_ref=ref, amount_minor=1000,
                                          event_id=f"evt_{event_type}_{ref}")) for ref in refs]


def claim_due(engine: Engine) -> list[int]:
    """Every due event queued, as the dispatcher does (in a transaction of its own): their ids."""
    with engine.begin() as conn:
        return transitions.claim_due(conn, batch_size=50, lease_seconds=60)


def queued_payments(engine: Engine, *refs: str) -> list[int]:
    """One stored, dispatched ShadhinPay payment per payment reference (in that order)."""
    ids = stored_payments(engine, *refs)
    assert sorted(claim_due(engine)) == sorted(ids)
    return ids


def shadhinpay_order(engine: Engine, ref: str, *, prefix: str = "R-") -> int:
    """A pending ShadhinPay order ``<prefix><ref>`` paid by payment ``ref``: its id."""
    return create_order(engine, reference=f"{prefix}{ref}", provider="shadhinpay", payment_ref=ref)


def event_row(engine: Engine, event_id: int) -> Any:
    (row,) = rows(engine, "SELECT * FROM webhook_events WHERE id = :id", id=event_id)
    return row


def order_row(engine: Engine, reference: str) -> Any:
    (row,) = rows(engine, "SELECT * FROM orders WHERE reference = :r", r=reference)
    return row


def attempts(engine: Engine, event_id: int) -> list[Any]:
    return rows(engine, "SELECT * FROM event_attempts WHERE event_id = :id ORDER BY number", id=event_id)


def deliveries(engine: Engine, order_id: int) -> list[tuple[int, str]]:
    return tuples(engine, "SELECT event_id, kind FROM deliveries WHERE order_id = :o ORDER BY id", o=order_id)


def status_of(engine: Engine, event_id: int) -> str:
    return event_row(engine, event_id).status


FINAL = ("succeeded", "dead", "ignored")


class Sender:
    """Posts signed events through the receiver (in-process, real Postgres)."""

    def __init__(self, client, processout: FakeProcessOut) -> None:
        self.client = client
        self.processout = processout
        self.settings = make_settings()

    def send(self, provider: str, event_type: str, *, order_ref: str, amount: int = 1000,
             event_id: str | None = None, times: int = 1) -> int:
        event_id = event_id or f"evt_{secrets.token_hex(6)}"
        if provider == "processout":
            self.processout.events[event_id] = sample_processout_event(
                event_id=event_id, event_type=event_type, order_ref=order_ref, amount_minor=amount)["event"]
        body, _ = signed_request(self.settings, provider, event_type=event_type, order_ref=order_ref,
                                 amount_minor=amount, event_id=event_id)
        ids = set()
        for _ in range(times):  # a provider retrying: each delivery signed anew
            _, headers = signed_request(self.settings, provider, body=body)
            response = self.client.post(f"/webhooks/{provider}", data=body, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)
            ids.add(response.json["id"])
        assert len(ids) == 1
        return ids.pop()


def start_processes(stack: Services) -> Services:
    """A worker and a dispatcher started, with ``stack.env`` as it is now."""
    stack.start_worker()
    stack.start_dispatcher()
    return stack


def wait_final(engine: Engine, *event_ids: int, timeout: float = 45.0, stack: Services | None = None) -> list[str]:
    """Once every event is final: their statuses, in the order given."""

    def done() -> bool:
        return all(status_of(engine, i) in FINAL for i in event_ids)

    try:
        wait_for(done, timeout=timeout, message=f"events {event_ids} to finish")
    except AssertionError:
        states = {i: (status_of(engine, i), event_row(engine, i).last_error) for i in event_ids}
        raise AssertionError(f"not final: {states}\n{stack.logs() if stack else ''}") from None
    return [status_of(engine, i) for i in event_ids]
