"""A worker's batch: one transaction for every event, and a failing event costs only itself.

``process_events`` runs in this process against real Postgres; the events
are stored and dispatched (queued) as the receiver and dispatcher would.
"""
from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.integration.custom_handlers import custom
from tests.integration.stack import (
    attempts,
    claim_due,
    deliveries,
    event_row,
    order_row,
    queued_payments,
    rows,
    scalar,
    shadhinpay_order,
    stored_payments,
)
from workers.handlers import handlers_for, register
from workers.handlers.loading import load_handlers
from workers.processing import Runtime, process_events


@pytest.fixture
def runtime(settings, engine: Engine) -> Runtime:
    # The custom handler that fails for "boom-" orders runs after fulfilment, as a merchant's would.
    load_handlers()  # the built-in ones, as a worker boots
    register("payment.succeeded", name="test_custom")(custom)
    assert [name for name, _ in handlers_for("payment.succeeded")][-1] == "test_custom"
    return Runtime(settings=settings, engine=engine)


def test_a_batch_of_good_events_commits_every_effect_once(runtime, engine) -> None:
    orders = {ref: shadhinpay_order(engine, ref) for ref in ("ch_1", "ch_2", "ch_3")}
    ids = queued_payments(engine, *orders)
    assert process_events(runtime, ids) == {event_id: "succeeded" for event_id in ids}
    for ref, order_id in orders.items():
        assert order_row(engine, f"R-{ref}").status == "paid"
        assert [kind for _, kind in deliveries(engine, order_id)] == ["fulfilment", "email.order_confirmation"]
    for event_id in ids:
        assert [(a.number, a.outcome) for a in attempts(engine, event_id)] == [(1, "succeeded")]
    # The same ids again (a duplicate message) find nothing to do and change nothing.
    assert process_events(runtime, ids) == {event_id: "not-claimable" for event_id in ids}
    assert scalar(engine, "SELECT count(*) FROM order_transitions") == 3


def test_a_failing_event_is_recorded_alone_and_the_rest_of_its_batch_commits(runtime, engine) -> None:
    # Given a batch whose middle event names an order that does not exist
    first, last = shadhinpay_order(engine, "ch_first"), shadhinpay_order(engine, "ch_last")
    good_1, orphan, good_2 = queued_payments(engine, "ch_first", "ch_missing", "ch_last")
    outcomes = process_events(runtime, [good_1, orphan, good_2])
    # Then the good events are done with all their effects
    assert outcomes == {good_1: "succeeded", orphan: "retrying", good_2: "succeeded"}
    for order_id, ref in ((first, "ch_first"), (last, "ch_last")):
        assert order_row(engine, f"R-{ref}").status == "paid"
        assert len(deliveries(engine, order_id)) == 2
    # and the failing one is retrying with one failed attempt, and wrote nothing else
    row = event_row(engine, orphan)
    assert (row.status, row.attempts) == ("retrying", 1)
    assert "ch_missing" in row.last_error
    assert [(a.number, a.outcome) for a in attempts(engine, orphan)] == [(1, "failed")]
    assert scalar(engine, "SELECT count(*) FROM order_transitions WHERE event_id = :e", e=orphan) == 0
    assert scalar(engine, "SELECT count(*) FROM deliveries WHERE event_id = :e", e=orphan) == 0
    # and each good event moved its order exactly once (the optimistic try left nothing behind)
    assert scalar(engine, "SELECT count(*) FROM order_transitions") == 2


def test_a_handler_failing_after_writes_leaves_none_of_them(runtime, engine) -> None:
    # Given a batch whose middle order has a custom handler that fails after fulfilment wrote
    good, boom = shadhinpay_order(engine, "ch_ok"), shadhinpay_order(engine, "ch_boom", prefix="boom-")
    ok_id, boom_id = queued_payments(engine, "ch_ok", "ch_boom")
    assert process_events(runtime, [ok_id, boom_id]) == {ok_id: "succeeded", boom_id: "retrying"}
    # Then the failing event's order move, transition and deliveries were all rolled back
    assert order_row(engine, "boom-ch_boom").status == "pending"
    assert deliveries(engine, boom) == []
    assert "boom for boom-ch_boom" in event_row(engine, boom_id).last_error
    # while the other event of the batch kept all of its effects
    assert order_row(engine, "R-ch_ok").status == "paid"
    assert len(deliveries(engine, good)) == 2


def test_a_second_event_for_the_same_order_in_a_batch_sees_what_the_first_did(runtime, engine) -> None:
    # Given the payment and its refund of one order in the same batch
    shadhinpay_order(engine, "ch_twice")
    paid, refunded = stored_payments(engine, "ch_twice") + stored_payments(engine, "ch_twice",
                                                                           event_type="payment.refunded")
    assert sorted(claim_due(engine)) == [paid, refunded]
    # Then the refund finds the order paid (not the row as locked before the payment moved it)
    assert process_events(runtime, [paid, refunded]) == {paid: "succeeded", refunded: "succeeded"}
    assert order_row(engine, "R-ch_twice").status == "refunded"
    moves = rows(engine, "SELECT from_status, to_status FROM order_transitions ORDER BY id")
    assert [tuple(m) for m in moves] == [("pending", "paid"), ("paid", "refunded")]
