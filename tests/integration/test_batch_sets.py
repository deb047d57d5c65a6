"""The set-based batch (workers/batch.py): a fixed number of statements, every effect once.

Only the built-in handlers are registered here, so batches take the
set-based path (test_batch.py registers a custom handler and covers the
per-event path). Statements are counted at psycopg's cursor, which both
SQLAlchemy and our fixed SQL go through.
"""
from __future__ import annotations

import logging

import psycopg
import pytest
from sqlalchemy import Engine

from tests.integration.stack import (
    attempts,
    claim_due,
    deliveries,
    event_row,
    execute,
    order_row,
    queued_payments,
    rows,
    scalar,
    shadhinpay_order,
    stored_payments,
)
from workers.handlers import registry as handlers
from workers.handlers.loading import load_handlers
from workers.processing import Runtime, process_events


@pytest.fixture
def runtime(settings, engine: Engine):
    load_handlers()  # the built-ins register
    saved = {kind: list(entries) for kind, entries in handlers._registry.items()}
    for kind, entries in handlers._registry.items():
        entries[:] = [(n, h) for n, h in entries if h.__module__ in handlers.BUILTIN_MODULES]
    yield Runtime(settings=settings, engine=engine)
    handlers._registry.clear()
    handlers._registry.update(saved)


@pytest.fixture
def statements(monkeypatch):
    """Counts every statement sent to Postgres from this process."""
    counter = {"n": 0}
    original = psycopg.Cursor.execute

    def counting(self, query, params=None, **kwargs):
        counter["n"] += 1
        return original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    return counter


def _redone(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if getattr(r, "action", None) == "batch.redone"]


def test_a_batch_costs_the_same_statements_whatever_its_size(runtime, engine, statements, caplog) -> None:
    caplog.set_level(logging.INFO, logger="payhooks.worker")
    counts = {}
    for size in (3, 30):
        refs = [f"ch_{size}_{n}" for n in range(size)]
        for ref in refs:
            shadhinpay_order(engine, ref)
        ids = queued_payments(engine, *refs)
        statements["n"] = 0
        assert process_events(runtime, ids) == {event_id: "succeeded" for event_id in ids}
        counts[size] = statements["n"]
        for ref in refs:
            order = order_row(engine, f"R-{ref}")
            assert order.status == "paid" and order.paid_at is not None
    assert counts[3] == counts[30], counts
    assert _redone(caplog) == []
    assert scalar(engine, "SELECT count(*) FROM order_transitions") == 33
    assert scalar(engine, "SELECT count(*) FROM event_attempts WHERE outcome = 'succeeded'") == 33


def test_a_failing_event_costs_only_itself_without_a_redo(runtime, engine, caplog) -> None:
    caplog.set_level(logging.INFO, logger="payhooks.worker")
    first, last = shadhinpay_order(engine, "ch_a"), shadhinpay_order(engine, "ch_b")
    good_1, orphan, good_2 = queued_payments(engine, "ch_a", "ch_nobody", "ch_b")
    assert process_events(runtime, [good_1, orphan, good_2]) == {
        good_1: "succeeded", orphan: "retrying", good_2: "succeeded"}
    assert _redone(caplog) == []
    for order_id in (first, last):
        assert [kind for _, kind in deliveries(engine, order_id)] == ["fulfilment", "email.order_confirmation"]
    row = event_row(engine, orphan)
    assert (row.status, row.attempts, row.processed_at) == ("retrying", 1, None)
    assert row.next_attempt_at is not None and "ch_nobody" in row.last_error
    assert [(a.number, a.outcome) for a in attempts(engine, orphan)] == [(1, "failed")]
    assert scalar(engine, "SELECT traceback IS NOT NULL FROM event_attempts WHERE event_id = :e", e=orphan)
    assert scalar(engine, "SELECT count(*) FROM deliveries WHERE event_id = :e", e=orphan) == 0


def test_payment_then_refund_of_one_order_in_one_batch(runtime, engine, caplog) -> None:
    caplog.set_level(logging.INFO, logger="payhooks.worker")
    order_id = shadhinpay_order(engine, "ch_pr")
    paid, refunded = stored_payments(engine, "ch_pr") + stored_payments(engine, "ch_pr", event_type="payment.refunded")
    assert sorted(claim_due(engine)) == [paid, refunded]
    assert process_events(runtime, [paid, refunded]) == {paid: "succeeded", refunded: "succeeded"}
    assert _redone(caplog) == []
    order = order_row(engine, "R-ch_pr")
    assert (order.status, order.refunded_amount) == ("refunded", 1000)
    assert [kind for _, kind in deliveries(engine, order_id)] == [
        "fulfilment", "email.order_confirmation", "email.refund"]
    moves = rows(engine, "SELECT event_id, from_status, to_status FROM order_transitions ORDER BY id")
    refunds = rows(engine, "SELECT event_id, kind, amount FROM refunds")
    assert [tuple(m) for m in moves] == [(paid, "pending", "paid"), (refunded, "paid", "refunded")]
    assert [tuple(r) for r in refunds] == [(refunded, "refund", 1000)]
    # and the commit order readers rely on (processed_at) is the order the batch handled them in
    assert event_row(engine, paid).processed_at < event_row(engine, refunded).processed_at


def test_a_refund_already_recorded_sends_the_batch_event_by_event(runtime, engine, caplog) -> None:
    # Given a paid order whose refund event's refund row exists already (a replayed refund)
    caplog.set_level(logging.INFO, logger="payhooks.worker")
    order_id = shadhinpay_order(engine, "ch_rr")
    other = shadhinpay_order(engine, "ch_other")
    [paid] = queued_payments(engine, "ch_rr")
    assert process_events(runtime, [paid]) == {paid: "succeeded"}
    [refund] = stored_payments(engine, "ch_rr", event_type="payment.refunded")
    execute(engine, "INSERT INTO refunds (order_id, event_id, kind, amount, currency, refund_key) "
                    "VALUES (:o, :e, 'refund', 1000, 'BDT', 'event:' || :e)", o=order_id, e=refund)
    [good] = stored_payments(engine, "ch_other")
    claim_due(engine)
    # Then the set-based try is rolled back and the per-event path answers "already recorded"
    assert process_events(runtime, [refund, good]) == {refund: "succeeded", good: "succeeded"}
    assert len(_redone(caplog)) == 1
    assert event_row(engine, refund).last_error == "refund already recorded"
    assert order_row(engine, "R-ch_rr").status == "paid"
    assert [kind for _, kind in deliveries(engine, other)] == ["fulfilment", "email.order_confirmation"]
    assert scalar(engine, "SELECT count(*) FROM refunds") == 1
    assert scalar(engine, "SELECT count(*) FROM event_attempts WHERE event_id = :e", e=good) == 1
