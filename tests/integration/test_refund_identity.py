"""Refunds are booked once per provider refund: two events about one refund book it once,
two partial refunds book twice (real worker process, real Postgres and broker)."""
from __future__ import annotations

import pytest

from tests.integration.helpers import EVENT_TYPES, REFUND_TYPES, post_signed, refund_body
from tests.integration.stack import create_order, order_row, scalar, tuples, wait_final


@pytest.mark.parametrize("provider", list(REFUND_TYPES))
def test_one_refund_is_booked_once_and_two_partial_refunds_twice(running, sender, client, settings, engine,
                                                                  processout, provider) -> None:
    order_id = create_order(engine, reference=f"R-{provider}", provider=provider, payment_ref=f"pay_{provider}")
    paid = sender.send(provider, EVENT_TYPES[provider], order_ref=f"pay_{provider}")
    wait_final(engine, paid, stack=running)
    # Given refund rf_A, then the provider telling about rf_A again under a new event, then refund rf_B
    sent = []
    for event_id, refund_id, amount, at in (("ev_1", "rf_A", 300, "2026-11-27T10:00:00Z"),
                                            ("ev_2", "rf_A", 300, "2026-11-27T10:05:00Z"),
                                            ("ev_3", "rf_B", 200, "2026-11-27T11:00:00Z")):
        body = refund_body(provider, event_id=f"{event_id}_{provider}", refund_id=refund_id,
                           order_ref=f"pay_{provider}", amount_minor=amount, processout=processout, at=at)
        response = post_signed(client, settings, provider, body=body)
        assert response.json["status"] == "accepted", response.json  # three distinct events
        sent.append(response.json["id"])
    assert set(wait_final(engine, *sent, stack=running)) == {"succeeded"}
    # Then rf_A is booked once and rf_B once: 500 refunded, two refund emails
    assert tuples(engine, "SELECT refund_key, amount FROM refunds WHERE order_id = :o ORDER BY id", o=order_id) == [
        ("ref:rf_A", 300), ("ref:rf_B", 200)]
    order = order_row(engine, f"R-{provider}")
    assert (order.status, order.refunded_amount) == ("partially_refunded", 500)
    assert scalar(engine, "SELECT count(*) FROM deliveries WHERE order_id = :o AND kind = 'email.refund'",
                  o=order_id) == 2
