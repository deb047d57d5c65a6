"""Refunds are booked once per provider refund: two events about one refund book it once,
two partial refunds book twice (real worker process, real Postgres and broker)."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from tests.integration.helpers import signed_request
from tests.integration.refund_bodies import CURRENCY, REFUND_TYPES, refund_body
from tests.integration.stack import create_order, order_row, status_of, wait_final


def _refunds(engine: Engine, order_id: int) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            text("SELECT refund_key, amount FROM refunds WHERE order_id = :o ORDER BY id"), {"o": order_id})]


def _refund_emails(engine: Engine, order_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM deliveries WHERE order_id = :o AND kind = 'email.refund'"),
                            {"o": order_id}).scalar_one()


@pytest.mark.parametrize("provider", list(REFUND_TYPES))
def test_one_refund_is_booked_once_and_two_partial_refunds_twice(running, sender, client, settings, engine,
                                                                  processout, provider) -> None:
    order_id = create_order(engine, reference=f"R-{provider}", provider=provider, payment_ref=f"pay_{provider}",
                            amount=1000, currency=CURRENCY[provider])
    paid = sender.send(provider, next(t for t in ("order.authorized", "transaction.captured", "payment.succeeded",
                                                  "payment.completed") if t in _kinds(provider)),
                       order_ref=f"pay_{provider}")
    wait_final(engine, paid, stack=running)
    # Given refund rf_A, then the provider telling about rf_A again under a new event, then refund rf_B
    sent = []
    for event_id, refund_id, amount, at in (("ev_1", "rf_A", 300, "2026-11-27T10:00:00Z"),
                                            ("ev_2", "rf_A", 300, "2026-11-27T10:05:00Z"),
                                            ("ev_3", "rf_B", 200, "2026-11-27T11:00:00Z")):
        body = refund_body(provider, event_id=f"{event_id}_{provider}", refund_id=refund_id,
                           order_ref=f"pay_{provider}", amount_minor=amount, processout=processout, at=at)
        _, headers = signed_request(settings, provider, body=body)
        response = client.post(f"/webhooks/{provider}", data=body, headers=headers)
        assert response.json["status"] == "accepted", response.json  # three distinct events
        sent.append(response.json["id"])
    wait_final(engine, *sent, stack=running)
    assert {status_of(engine, i) for i in sent} == {"succeeded"}
    # Then rf_A is booked once and rf_B once: 500 refunded, two refund emails
    assert _refunds(engine, order_id) == [("ref:rf_A", 300), ("ref:rf_B", 200)]
    order = order_row(engine, f"R-{provider}")
    assert (order.status, order.refunded_amount) == ("partially_refunded", 500)
    assert _refund_emails(engine, order_id) == 2


def _kinds(provider: str) -> set[str]:
    from providers.registry import build_adapters
    from tests.conftest import make_settings

    return set(build_adapters(make_settings())[provider].kinds)
