"""The harness's own checks, on made-up data: a ledger that cannot fail would prove nothing."""
from __future__ import annotations

import base64
from collections import Counter

import pytest

from bench.faults import leaks
from bench.faults.ledger import Findings, _replay, check_answers
from bench.faults.plan import Event, Order, Plan, build
from bench.faults.traffic import Answer


def _order(amount: int = 1000, email: str | None = "a@example.com") -> Order:
    return Order(reference="R", provider="yoco", payment_ref="p", amount=amount, currency="ZAR", email=email,
                 phone="+27110000000", story="pay")


def _event(index: int, role: str, order: Order, amount: int | None = None) -> Event:
    return Event(index=index, provider=order.provider, event_type=role, role=role, order=order,
                 amount=order.amount if amount is None else amount, event_id=f"e{index}", key=f"e{index}",
                 body=b"{}", expected_status="succeeded")


@pytest.mark.parametrize(("roles", "status", "refunded", "kinds"), [
    (["success"], "paid", 0, {"fulfilment": 1, "email.order_confirmation": 1}),
    (["success", "success"], "paid", 0, {"fulfilment": 1, "email.order_confirmation": 1}),
    (["failure", "success"], "paid", 0,
     {"email.payment_failed": 1, "fulfilment": 1, "email.order_confirmation": 1}),
    (["success", "failure"], "paid", 0, {"fulfilment": 1, "email.order_confirmation": 1}),
    (["success", "refund"], "refunded", 1000, {"fulfilment": 1, "email.order_confirmation": 1, "email.refund": 1}),
])
def test_replay_follows_the_forward_only_state_machine(roles, status, refunded, kinds) -> None:
    order = _order()
    events = [_event(i, role, order) for i, role in enumerate(roles)]
    assert _replay(order, events)[:3] == (status, refunded, Counter(kinds))


def test_replay_flags_a_refund_that_succeeded_before_the_payment() -> None:
    order = _order()
    *_, problems = _replay(order, [_event(0, "refund", order), _event(1, "success", order)])
    assert problems == ["refund event succeeded while the order was pending"]


def test_replay_adds_partial_refunds_and_texts_a_phone_only_customer() -> None:
    order = _order(email=None)
    events = [_event(0, "failure", order), _event(1, "success", order), _event(2, "refund", order, 400)]
    assert _replay(order, events)[:3] == ("partially_refunded", 400,
                                          Counter({"sms.payment_failed": 1, "fulfilment": 1}))


def test_two_rows_or_two_accepts_for_one_event_are_duplicates() -> None:
    plan = Plan(orders=[], events=[_event(0, "success", _order())])
    findings = Findings()
    check_answers([Answer(0, 1, 0.0, 0.1, 200, row_id=1, outcome="accepted"),
                   Answer(0, 1, 0.0, 0.1, 200, row_id=2, outcome="accepted"),
                   Answer(0, 2, 0.0, 0.1, 503)], plan, findings)
    assert len(findings.duplicates) == 2


def test_every_secret_and_its_encodings_are_searched_for() -> None:
    generated = leaks.generate()
    basic = generated.env["PAYHOOKS_PROCESSOUT_BASIC_AUTH"]
    header = "Authorization: Basic " + base64.b64encode(basic.encode()).decode()
    found = leaks.scan_text(generated.needles, f"ok\n{header}\n", where="receiver.log")
    assert {(leak.label, leak.where) for leak in found} == {("processout_basic_auth (base64)", "receiver.log:2")}
    assert leaks.scan_text(generated.needles, "password=" + basic.split(":")[1], where="x")


def test_a_plan_covers_all_five_providers_with_keys_as_the_receiver_parses_them() -> None:
    plan = build(60, mix="steady", tag="t", seed=7)
    assert {event.provider for event in plan.events} == {"smartpay", "processout", "senfenico", "yoco",
                                                          "shadhinpay"}
    assert len({(event.provider, event.key) for event in plan.events}) == len(plan.events)
    assert all(event.event_id in plan.processout_events for event in plan.events if event.provider == "processout")
