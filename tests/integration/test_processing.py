"""Events to effects with a real worker process, the real dispatcher, real Postgres and broker."""
from __future__ import annotations

import subprocess
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import Engine

from testkit.processes import wait_for
from tests.conftest import make_settings
from tests.integration.helpers import EVENT_TYPES, REFUND_TYPES, post_signed
from tests.integration.stack import (
    attempts,
    claim_due,
    create_order,
    deliveries,
    event_row,
    order_row,
    status_of,
    values,
    wait_final,
)
from workers.celery_app import make_celery, publisher

FAILURE_TYPES = {"smartpay": "order.rejected", "processout": "transaction.failed", "senfenico": "checkout.failed",
                 "shadhinpay": "payment.failed"}  # Yoco sends no failed payments
TYPES = {provider: (success, FAILURE_TYPES.get(provider), REFUND_TYPES.get(provider))
         for provider, success in EVENT_TYPES.items()}
"""provider: (success, failure, refund); None where the provider has no such event."""


@pytest.mark.parametrize("provider", list(TYPES))
def test_success_failure_and_refund_reach_the_order_once(running, sender, engine, provider) -> None:
    success, failure, refund = TYPES[provider]
    paid = create_order(engine, reference=f"A-{provider}", provider=provider, payment_ref=f"pay_a_{provider}")
    failed = create_order(engine, reference=f"B-{provider}", provider=provider, payment_ref=f"pay_b_{provider}")

    # Every event is delivered twice, as a provider retrying would.
    success_id = sender.send(provider, success, order_ref=f"pay_a_{provider}", times=2)
    sent = [success_id]
    if failure:
        failure_id = sender.send(provider, failure, order_ref=f"pay_b_{provider}", times=2)
        sent.append(failure_id)
    if refund:
        refund_id = sender.send(provider, refund, order_ref=f"pay_a_{provider}", times=2)
        sent.append(refund_id)
    assert set(wait_final(engine, *sent, stack=running)) == {"succeeded"}
    order_a = order_row(engine, f"A-{provider}")
    expected_a = [(success_id, "fulfilment"), (success_id, "email.order_confirmation")]
    if refund:
        assert (order_a.status, order_a.refunded_amount) == ("refunded", 1000)
        expected_a.append((refund_id, "email.refund"))
    else:
        assert order_a.status == "paid"
    assert deliveries(engine, paid) == expected_a
    if failure:
        assert order_row(engine, f"B-{provider}").status == "payment_failed"
        assert deliveries(engine, failed) == [(failure_id, "email.payment_failed")]


def test_the_same_celery_message_twice_runs_the_handler_once(stack, sender, engine, settings,
                                                              broker_url) -> None:
    order = create_order(engine, reference="dup-msg", provider="yoco", payment_ref="ch_dup", amount=900)
    event_id = sender.send("yoco", "payment.succeeded", order_ref="ch_dup", amount=900)
    # Given the event claimed for dispatch (no dispatcher runs in this test)
    assert claim_due(engine) == [event_id]
    # When its message is published twice
    app = make_celery(settings.model_copy(update={"broker_url": broker_url,
                                                   "queue_name": stack.env["PAYHOOKS_QUEUE_NAME"]}))
    publish = publisher(app, batch_size=1)
    publish("payhooks.process_events", [event_id, event_id])  # two messages of one id each
    publish("payhooks.process_event", [event_id])  # and the single-id task of older versions
    stack.start_worker()
    wait_final(engine, event_id, stack=stack)
    # Then one attempt, one set of effects, and the second message found nothing to do
    assert [a.outcome for a in attempts(engine, event_id)] == ["succeeded"]
    assert deliveries(engine, order) == [(event_id, "fulfilment"), (event_id, "email.order_confirmation")]
    wait_for(lambda: "not queued: skipped" in stack.logs(), timeout=15, message="the duplicate skipped")


def _assert_schedule_followed(engine: Engine, event_id: int, *, expected: list[str], error: str) -> None:
    rows = attempts(engine, event_id)
    assert [a.outcome for a in rows] == expected
    assert all(error in a.error for a in rows)
    for before, after in pairwise(rows):
        # 1 s schedule with ±10 % jitter: never more than the jitter early
        assert (after.started_at - before.finished_at).total_seconds() >= 0.9
    event = event_row(engine, event_id)
    assert event.attempts == len(expected)
    assert event.next_attempt_at is None and error in event.last_error


def test_a_failing_handler_follows_the_schedule_then_is_dead(running, sender, engine) -> None:
    order = create_order(engine, reference="boom-1", provider="smartpay", payment_ref="order_boom")
    event_id = sender.send("smartpay", "order.authorized", order_ref="order_boom")
    # While it retries, the row says when it is due again
    wait_for(lambda: event_row(engine, event_id).status == "retrying", message="retrying")
    retrying = event_row(engine, event_id)
    assert retrying.next_attempt_at is not None and "boom" in retrying.last_error
    wait_final(engine, event_id, stack=running)
    _assert_schedule_followed(engine, event_id, expected=["failed", "failed", "failed", "dead"], error="boom")
    # The built-in handler ran in the same transaction and was rolled back each time
    assert order_row(engine, "boom-1").status == "pending"
    assert deliveries(engine, order) == []


def test_an_event_for_an_unknown_order_is_retried_then_dead(running, sender, engine) -> None:
    event_id = sender.send("shadhinpay", "payment.completed", order_ref="SP_nobody")
    assert wait_final(engine, event_id, stack=running) == ["dead"]
    _assert_schedule_followed(engine, event_id, expected=["failed", "failed", "failed", "dead"],
                              error="order not found")


def test_worker_killed_mid_handler_completes_on_a_new_worker_once(stack, sender, engine, processout) -> None:
    order = create_order(engine, reference="kill-1", provider="processout", payment_ref="tr_kill", amount=2500)
    processout.delays["ev_kill"] = 30.0  # the first worker hangs in the fetch...
    stack.start_worker("worker-a")
    stack.start_dispatcher()
    event_id = sender.send("processout", "transaction.captured", order_ref="tr_kill", amount=2500,
                           event_id="ev_kill")
    wait_for(lambda: processout.requests, message="the worker to call ProcessOut")
    assert status_of(engine, event_id) == "processing"
    # ...and is SIGKILLed there, pool children included
    stack.kill("worker-a")
    processout.delays.clear()
    stack.start_worker("worker-b")
    assert wait_final(engine, event_id, timeout=60, stack=stack) == ["succeeded"]
    rows = attempts(engine, event_id)
    assert [(a.outcome, a.error) for a in rows] == [("lost", "worker lost"), ("succeeded", None)]
    assert order_row(engine, "kill-1").status == "paid"
    assert deliveries(engine, order) == [(event_id, "fulfilment"), (event_id, "email.order_confirmation")]


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def test_rabbitmq_down_during_ingest_delays_but_loses_nothing(running, sender, engine, broker_url) -> None:
    if not broker_url.startswith("amqp"):
        pytest.skip("RabbitMQ is not running here (CI requires it)")
    orders = {f"rmq-{n}": create_order(engine, reference=f"rmq-{n}", provider="yoco", payment_ref=f"ch_rmq_{n}",
                                       amount=500) for n in range(10)}
    _rabbitmqctl("stop_app")
    try:
        # The receiver needs no broker to answer: every event is acknowledged
        ids = [sender.send("yoco", "payment.succeeded", order_ref=f"ch_rmq_{n}", amount=500) for n in range(10)]
        wait_for(lambda: "publish failed" in running.logs(), timeout=30, message="a failed publish")
        assert all(status_of(engine, i) in ("pending", "queued") for i in ids)
    finally:
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")
    assert set(wait_final(engine, *ids, timeout=90, stack=running)) == {"succeeded"}
    for reference, order_id in orders.items():
        assert order_row(engine, reference).status == "paid"
        assert len(deliveries(engine, order_id)) == 2  # fulfilment + confirmation, once each
    assert all(len(attempts(engine, i)) == 1 for i in ids)


class TestOutOfOrderAndBadEvents:
    def test_refund_before_payment_waits_for_the_payment(self, running, sender, engine) -> None:
        create_order(engine, reference="early-refund", provider="yoco", payment_ref="ch_early", amount=800)
        refund_id = sender.send("yoco", "refund.succeeded", order_ref="ch_early", amount=300)
        wait_for(lambda: status_of(engine, refund_id) == "retrying", message="the refund to wait")
        assert "refund before the payment" in event_row(engine, refund_id).last_error
        payment_id = sender.send("yoco", "payment.succeeded", order_ref="ch_early", amount=800)
        assert wait_final(engine, refund_id, payment_id, stack=running) == ["succeeded", "succeeded"]
        order = order_row(engine, "early-refund")
        assert (order.status, order.refunded_amount) == ("partially_refunded", 300)

    def test_a_failure_after_success_is_recorded_and_ignored(self, running, sender, engine) -> None:
        order = create_order(engine, reference="late-fail", provider="smartpay", payment_ref="order_late")
        paid = sender.send("smartpay", "order.authorized", order_ref="order_late")
        wait_final(engine, paid, stack=running)
        failed = sender.send("smartpay", "order.rejected", order_ref="order_late")
        assert wait_final(engine, failed, stack=running) == ["succeeded"]
        assert "ignored" in event_row(engine, failed).last_error
        assert order_row(engine, "late-fail").status == "paid"
        assert [kind for _, kind in deliveries(engine, order)] == ["fulfilment", "email.order_confirmation"]
        notes = values(engine, "SELECT note FROM order_transitions WHERE event_id = :e", e=failed)
        assert notes and "recorded and ignored" in notes[0]

    def test_amount_mismatch_is_dead_without_retries(self, running, sender, engine) -> None:
        order = create_order(engine, reference="short", provider="senfenico", payment_ref="chk_short", amount=5000)
        event_id = sender.send("senfenico", "checkout.success", order_ref="chk_short", amount=4999)
        assert wait_final(engine, event_id, stack=running) == ["dead"]
        assert [a.outcome for a in attempts(engine, event_id)] == ["dead"]
        assert "amount" in event_row(engine, event_id).last_error
        assert order_row(engine, "short").status == "pending"
        assert deliveries(engine, order) == []

    def test_unknown_yoco_checkout_and_unknown_type_are_ignored(self, running, sender, engine) -> None:
        foreign = sender.send("yoco", "payment.succeeded", order_ref="ch_not_ours")
        unknown_type = sender.send("shadhinpay", "payout.created", order_ref="SP_1")
        assert wait_final(engine, foreign, unknown_type, stack=running) == ["ignored", "ignored"]
        assert "ch_not_ours" in event_row(engine, foreign).last_error
        assert [a.outcome for a in attempts(engine, unknown_type)] == ["ignored"]

    def test_processout_404_is_dead_and_500_is_retried(self, running, sender, engine, processout) -> None:
        order = create_order(engine, reference="po-500", provider="processout", payment_ref="tr_500", amount=1999)
        processout.failures["ev_flaky"] = [500]
        flaky = sender.send("processout", "transaction.captured", order_ref="tr_500", amount=1999,
                            event_id="ev_flaky")
        # A thin event the API does not know: forged or foreign
        forged = post_signed(sender.client, make_settings(), "processout",
                             body=b'{"event_id":"ev_forged","event_type":"transaction.captured"}').json["id"]
        wait_final(engine, flaky, forged, stack=running)

        assert status_of(engine, forged) == "dead"
        assert [a.outcome for a in attempts(engine, forged)] == ["dead"]
        assert "not found at provider" in event_row(engine, forged).last_error
        assert status_of(engine, flaky) == "succeeded"
        assert [a.outcome for a in attempts(engine, flaky)] == ["failed", "succeeded"]
        assert "500" in attempts(engine, flaky)[0].error
        fetched: dict[str, Any] = event_row(engine, flaky).fetched_payload
        assert fetched["data"]["transaction"]["id"] == "tr_500"
        assert deliveries(engine, order)[0] == (flaky, "fulfilment")
        # The fetch authenticates with the project credentials, never the webhook's Basic auth
        assert all(auth and auth.startswith("Basic ") for _, auth in processout.requests)


def test_two_workers_on_one_host_share_the_work(stack, sender, engine) -> None:
    refs = [f"two-{n}" for n in range(6)]
    for ref in refs:
        create_order(engine, reference=ref, provider="yoco", payment_ref=f"ch_{ref}", amount=700)
    first, second = stack.start_worker("worker-1"), stack.start_worker("worker-2")
    stack.start_dispatcher()
    ids = [sender.send("yoco", "payment.succeeded", order_ref=f"ch_{ref}", amount=700) for ref in refs]
    assert set(wait_final(engine, *ids, stack=stack)) == {"succeeded"}
    assert first.poll() is None and second.poll() is None, stack.logs()
