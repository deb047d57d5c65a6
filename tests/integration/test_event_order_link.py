"""An event is linked to the order it touched whatever its outcome: `events list --order` and
`events show` find a dead or retrying event too (a real worker decides the outcome)."""
from __future__ import annotations

from sandbox.samples import sample_body
from testkit.processes import wait_for
from tests.integration.helpers import post_signed
from tests.integration.ops_data import json_out
from tests.integration.stack import create_order, event_row, status_of, wait_final


def test_a_dead_event_is_linked_to_its_order(running, client, settings, engine, run) -> None:
    # Given a ZAR order, and a Yoco payment for it in USD
    order_id = create_order(engine, reference="ORD-Y2", provider="yoco", payment_ref="ch_y2", amount=2500)
    body = sample_body("yoco", "payment.succeeded", order_ref="ch_y2", amount_minor=2500, currency="USD")
    answer = post_signed(client, settings, "yoco", body=body)
    assert answer.status_code == 200
    event_id = answer.json["id"]
    # Then it is dead, and still names the order
    assert wait_final(engine, event_id, stack=running) == ["dead"]
    assert event_row(engine, event_id).order_id == order_id
    listed = json_out(run("events", "list", "--order", "ORD-Y2", "--json"))
    assert [row["id"] for row in listed] == [event_id]
    assert listed[0]["order_reference"] == "ORD-Y2"
    shown = json_out(run("events", "show", str(event_id), "--json"))
    assert shown["order"]["reference"] == "ORD-Y2" and shown["status"] == "dead"


def test_a_retrying_event_is_linked_to_its_order(running, sender, engine, run) -> None:
    # A refund before its payment is retried: it touched the order, so it is listed with it
    order_id = create_order(engine, reference="ORD-R", provider="yoco", payment_ref="ch_r", amount=800)
    refund_id = sender.send("yoco", "refund.succeeded", order_ref="ch_r", amount=300)
    wait_for(lambda: status_of(engine, refund_id) == "retrying", message="the refund to wait")
    assert event_row(engine, refund_id).order_id == order_id
    listed = json_out(run("events", "list", "--order", "ORD-R", "--json"))
    assert [row["id"] for row in listed] == [refund_id]


def test_ups_suggestion_fits_the_orders_already_there(settings, engine) -> None:
    from cli.up import _suggestion

    assert _suggestion(settings) == ("ORD-1", "ch_demo")
    create_order(engine, reference="ORD-1", provider="yoco", payment_ref="ch_demo", amount=2500)
    assert _suggestion(settings) == ("ORD-2", "ch_demo_2")
    create_order(engine, reference="ORD-9", provider="yoco", payment_ref="ch_demo_2", amount=2500)
    assert _suggestion(settings) == ("ORD-3", "ch_demo_3")  # ORD-2 is free, but its checkout id is not
