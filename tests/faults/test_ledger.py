"""The fault harness's judging code on made-up data: a ledger that cannot fail would prove nothing.

Tests import the harness (one way: bench/ never imports tests/), as test_faults.py runs it.
"""
from __future__ import annotations

import base64
from collections import Counter

from bench.faults import leaks
from bench.faults.ledger import Findings, _replay, check_answers
from bench.faults.plan import Event, Order, Plan, build
from testkit.load import Answer

REPLAYS = [  # roles in commit order → (order status, refunded amount, delivery kinds)
    (["success"], "paid", 0, {"fulfilment": 1, "email.order_confirmation": 1}),
    (["success", "success"], "paid", 0, {"fulfilment": 1, "email.order_confirmation": 1}),
    (["failure", "success"], "paid", 0, {"email.payment_failed": 1, "fulfilment": 1, "email.order_confirmation": 1}),
    (["success", "failure"], "paid", 0, {"fulfilment": 1, "email.order_confirmation": 1}),
    (["success", "refund"], "refunded", 1000, {"fulfilment": 1, "email.order_confirmation": 1, "email.refund": 1}),
]


def _order(email: str | None = "a@example.com") -> Order:
    return Order(reference="R", provider="yoco", payment_ref="p", amount=1000, currency="ZAR", email=email,
                 phone="+27110000000", story="pay")


def _events(order: Order, *roles: str, amounts: dict[int, int] | None = None) -> list[Event]:
    return [Event(index=i, provider=order.provider, event_type=role, role=role, order=order,
                  amount=(amounts or {}).get(i, order.amount), event_id=f"e{i}", key=f"e{i}", body=b"{}",
                  expected_status="succeeded") for i, role in enumerate(roles)]


def test_replay_follows_the_forward_only_state_machine() -> None:
    """The forward-only state machine; a refund before the payment is flagged; a phone-only customer gets SMS."""
    for roles, *expected in REPLAYS:
        got = _replay(_order(), _events(_order(), *roles))[:3]
        assert got == (*expected[:2], Counter(expected[2])), (roles, got)
    problems = _replay(_order(), _events(_order(), "refund", "success"))[3]
    assert problems == ["refund event succeeded while the order was pending"], problems
    phone_only = _order(email=None)
    got = _replay(phone_only, _events(phone_only, "failure", "success", "refund", amounts={2: 400}))[:3]
    assert got == ("partially_refunded", 400, Counter({"sms.payment_failed": 1, "fulfilment": 1})), got


def test_two_rows_or_two_accepted_are_duplicates_and_every_secret_form_is_found() -> None:
    findings = Findings()
    check_answers([Answer("200 accepted", 1, 0.1, index=0), Answer("200 accepted", 2, 0.1, index=0),
                   Answer("503", None, 0.1, index=0, attempt=2)], Plan([], _events(_order(), "success")), findings)
    assert len(findings.duplicates) == 2, findings.duplicates
    generated = leaks.generate()
    basic = generated.env["PAYHOOKS_PROCESSOUT_BASIC_AUTH"]
    header = "Authorization: Basic " + base64.b64encode(basic.encode()).decode()
    found = leaks.scan_text(generated.needles, f"ok\n{header}\n", where="receiver.log")
    assert {(leak.label, leak.where) for leak in found} == {("processout_basic_auth (base64)", "receiver.log:2")}
    assert leaks.scan_text(generated.needles, "password=" + basic.split(":")[1], where="x")


def test_a_plan_covers_all_five_providers_with_keys_as_the_receiver_parses_them() -> None:
    plan = build(60, mix="steady", tag="t", seed=7)
    assert {e.provider for e in plan.events} == {"smartpay", "processout", "senfenico", "yoco", "shadhinpay"}
    assert len({(e.provider, e.key) for e in plan.events}) == len(plan.events)
    assert all(e.event_id in plan.processout_events for e in plan.events if e.provider == "processout")
