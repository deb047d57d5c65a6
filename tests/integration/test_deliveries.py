"""Deliveries with a real worker, dispatcher, Postgres and broker; a local SMTP server and merchant."""
from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook

from models import transitions
from models.deliveries import replay as deliveries_replay
from testkit.processes import wait_for
from testkit.services import Services
from tests.integration.conftest import FULFILMENT_SECRET, SHOP
from tests.integration.stack import (
    Sender,
    create_order,
    event_row,
    execute,
    paid_transitions,
    scalar,
    start_processes,
    status_of,
    tuples,
    values,
)

def delivery_rows(engine: Engine) -> dict[str, tuple[str, int]]:
    """kind → (status, attempts)."""
    every = tuples(engine, "SELECT kind, status, attempts FROM deliveries ORDER BY id")
    return {kind: (status, attempts) for kind, status, attempts in every}


def tries(engine: Engine, kind: str) -> list[tuple[str, int | None]]:
    return tuples(engine, """SELECT a.outcome, a.response_code FROM delivery_attempts a
                              JOIN deliveries d ON d.id = a.delivery_id WHERE d.kind = :k ORDER BY a.number""", k=kind)


def wait_deliveries(engine: Engine, count: int, stack: Services, timeout: float = 45) -> dict[str, tuple[str, int]]:
    final = ("succeeded", "dead", "skipped")

    def done() -> bool:
        rows = delivery_rows(engine)
        return len(rows) >= count and all(status in final for status, _ in rows.values())

    try:
        wait_for(done, timeout=timeout, message=f"{count} deliveries to finish")
    except AssertionError:
        raise AssertionError(f"{delivery_rows(engine)}\n{stack.logs()}") from None
    return delivery_rows(engine)


def pay(engine: Engine, sender: Sender, *, reference: str = "ORD-1", times: int = 1,
        email: str | None = "thandi@example.co.za") -> int:
    create_order(engine, reference=reference, provider="yoco", payment_ref=f"ch_{reference}", amount=2500,
                 email=email, name="Thandi")
    return sender.send("yoco", "payment.succeeded", order_ref=f"ch_{reference}", amount=2500, times=times)


def pay_and_deliver(stack: Services, engine: Engine, sender: Sender, **pay_options) -> tuple[int, dict]:
    """Start a worker and a dispatcher, pay ORD-1 and wait for its two deliveries to finish."""
    start_processes(stack)
    event_id = pay(engine, sender, **pay_options)
    return event_id, wait_deliveries(engine, 2, stack)


def test_a_paid_order_sends_one_email_and_one_signed_fulfilment_call(delivering, sender, engine, smtp,
                                                                     merchant) -> None:
    # The provider delivered the event twice
    event_id, rows = pay_and_deliver(delivering, engine, sender, times=2)
    assert rows == {"fulfilment": ("succeeded", 1), "email.order_confirmation": ("succeeded", 1)}

    # One email, to the customer, saying what was paid
    (mail,) = smtp.sink.messages
    assert mail["X-Envelope-To"] == "thandi@example.co.za" and mail["From"] == SHOP
    assert mail["Subject"] == "Payment received for order ORD-1"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in mail.walk()
             if not part.is_multipart()}
    assert "Hello Thandi" in parts["text/plain"] and "25.00 ZAR" in parts["text/plain"]
    assert "<strong>25.00 ZAR</strong>" in parts["text/html"]
    assert tries(engine, "email.order_confirmation") == [("succeeded", 250)]

    # One fulfilment call, signed the Standard Webhooks way, keyed for idempotency
    (call,) = merchant.received
    key = f"{event_id}:fulfilment:fulfilment"
    assert call.path == "/fulfil" and call.headers["idempotency-key"] == key == call.headers["webhook-id"]
    Webhook(FULFILMENT_SECRET).verify(call.body, call.headers)
    assert call.json["order"]["reference"] == "ORD-1" and call.json["order"]["amount"] == 2500
    assert tries(engine, "fulfilment") == [("succeeded", 200)]


def test_a_replayed_event_sends_nothing_twice(delivering, sender, engine, smtp, merchant) -> None:
    event_id, _ = pay_and_deliver(delivering, engine, sender)
    every_delivery = "SELECT event_id, handler, kind FROM deliveries ORDER BY id"  # duplicates included
    first = tuples(engine, every_delivery)
    assert sorted(first) == [(event_id, "fulfilment", "email.order_confirmation"),
                             (event_id, "fulfilment", "fulfilment")]
    # Given the order put back to pending by hand, so the replayed handler writes its deliveries
    # again (not the "already paid" branch): only the unique (event, handler, kind) key stops them
    execute(engine, "UPDATE orders SET status = 'pending' WHERE reference = 'ORD-1'")
    # When an operator forces a replay of the succeeded event
    with engine.begin() as conn:
        assert transitions.replay(conn, [event_id], include_succeeded=True) == [event_id]
    wait_for(lambda: event_row(engine, event_id).replay_count == 1 and status_of(engine, event_id) == "succeeded",
             message="the replay to finish")
    assert paid_transitions(engine, event_id) == 2  # the handler did run its effect again
    wait_deliveries(engine, 2, delivering)
    assert tuples(engine, every_delivery) == first
    assert len(smtp.sink.messages) == 1 and len(merchant.received) == 1


@pytest.mark.parametrize(("fault", "kind", "final", "outcomes"), [
    pytest.param(("merchant", "answers", [500]), "fulfilment", ("succeeded", 2), [("failed", 500), ("succeeded", 200)],
                 id="a-500-then-200-is-retried-and-done"),
    pytest.param(("merchant", "answers", [400]), "fulfilment", ("dead", 1), [("dead", 400)],
                 id="a-400-is-dead-at-once-and-the-event-still-succeeds"),
    pytest.param(("merchant", "delays", [3.0]),  # longer than PAYHOOKS_DELIVERY_TIMEOUT_SECONDS=1
                 "fulfilment", ("succeeded", 2), [("failed", None), ("succeeded", 200)], id="a-timeout-is-retried"),
    pytest.param(("smtp", "refuse_with", "550 5.1.1 mailbox unavailable"), "email.order_confirmation", ("dead", 1),
                 [("dead", 550)], id="an-smtp-5xx-is-dead-and-not-retried"),
])
def test_a_refused_or_slow_delivery(delivering, sender, engine, smtp, merchant, fault, kind, final, outcomes) -> None:
    target, name, value = fault
    setattr({"merchant": merchant, "smtp": smtp.sink}[target], name, value)
    event_id, rows = pay_and_deliver(delivering, engine, sender)
    assert rows[kind] == final
    assert tries(engine, kind) == outcomes
    # The event succeeds whatever its deliveries do; each fulfilment try was one call, all under one key
    assert status_of(engine, event_id) == "succeeded"
    assert len(merchant.received) == len(tries(engine, "fulfilment"))
    assert len({call.headers["idempotency-key"] for call in merchant.received}) == 1
    if name == "delays":
        assert "Timeout" in scalar(engine, "SELECT error FROM delivery_attempts WHERE outcome = 'failed'")


def test_not_configured_deliveries_are_skipped_and_the_event_succeeds(stack, sender, engine) -> None:
    event_id, rows = pay_and_deliver(stack, engine, sender)
    # Known unsendable when the handler wrote them: skipped at once, no try, no task
    assert rows == {"fulfilment": ("skipped", 0), "email.order_confirmation": ("skipped", 0)}
    reasons = values(engine, "SELECT last_error FROM deliveries ORDER BY id")
    assert reasons == ["PAYHOOKS_FULFILMENT_URL is not set", "PAYHOOKS_SMTP_HOST is not set"]
    assert status_of(engine, event_id) == "succeeded"


def test_a_skipped_delivery_is_sent_by_a_replay_once_configured(delivering, sender, engine, smtp,
                                                                 merchant) -> None:
    delivering.env["PAYHOOKS_SMTP_HOST"] = ""  # no SMTP yet: the email is skipped when written
    _, rows = pay_and_deliver(delivering, engine, sender)
    assert rows["email.order_confirmation"] == ("skipped", 0)
    assert smtp.sink.messages == []
    # The operator configures SMTP, restarts the workers and replays the skipped delivery
    delivering.stop()
    delivering.env["PAYHOOKS_SMTP_HOST"] = "127.0.0.1"
    start_processes(delivering)
    ids = values(engine, "SELECT id FROM deliveries WHERE status = 'skipped'")
    with engine.begin() as conn:
        assert deliveries_replay(conn, ids) == ids
    wait_for(lambda: delivery_rows(engine)["email.order_confirmation"] == ("succeeded", 1),
             message="the replayed email")
    assert len(smtp.sink.messages) == 1 and len(merchant.received) == 1


def test_a_failed_payment_for_a_phone_only_order_sends_a_signed_sms(delivering, sender, engine, merchant) -> None:
    start_processes(delivering)
    create_order(engine, reference="SMS-1", provider="shadhinpay", payment_ref="SP_sms", amount=150000, email=None,
                 phone="+8801700000000")
    sender.send("shadhinpay", "payment.failed", order_ref="SP_sms", amount=150000)
    rows = wait_deliveries(engine, 1, delivering)
    assert rows == {"sms.payment_failed": ("succeeded", 1)}
    (call,) = merchant.received
    assert call.path == "/sms"
    Webhook(FULFILMENT_SECRET).verify(call.body, call.headers)  # no notify secret: the fulfilment one
    assert call.json["to"] == "+8801700000000"
    assert "1500.00 BDT" in call.json["message"] and "SMS-1" in call.json["message"]


def test_worker_killed_after_the_call_but_before_the_commit_resends_the_same_key(delivering, sender, engine,
                                                                                 merchant, smtp) -> None:
    killed: list[str] = []

    def kill_once(_received) -> None:  # the request arrived; the worker never learns the answer
        if not killed:
            killed.append("worker-a")
            delivering.kill("worker-a")

    merchant.on_request = kill_once
    smtp.sink.refuse_with = None
    delivering.start_worker("worker-a", concurrency=1)
    delivering.start_dispatcher()
    event_id = pay(engine, sender, email=None)  # only the fulfilment call
    wait_for(lambda: killed, message="the worker to be killed mid-call")
    delivering.start_worker("worker-b")
    rows = wait_deliveries(engine, 1, delivering, timeout=60)
    assert rows == {"fulfilment": ("succeeded", 2)}
    assert tries(engine, "fulfilment") == [("lost", None), ("succeeded", 200)]
    keys = {r.headers["idempotency-key"] for r in merchant.received}
    assert keys == {f"{event_id}:fulfilment:fulfilment"} and len(merchant.received) == 2


def test_worker_killed_after_smtp_data_resends_the_same_message_id(delivering, sender, engine, smtp) -> None:
    killed: list[str] = []

    def kill_once(_message) -> None:
        if not killed:
            killed.append("worker-a")
            delivering.kill("worker-a")

    smtp.sink.on_data = kill_once
    delivering.env["PAYHOOKS_FULFILMENT_URL"] = ""  # only the email
    delivering.start_worker("worker-a", concurrency=1)
    delivering.start_dispatcher()
    pay(engine, sender)
    wait_for(lambda: killed, message="the worker to be killed after DATA")
    delivering.start_worker("worker-b")
    rows = wait_deliveries(engine, 2, delivering, timeout=60)
    assert rows["email.order_confirmation"] == ("succeeded", 2)
    assert len(smtp.sink.messages) == 2
    assert len({m["Message-ID"] for m in smtp.sink.messages}) == 1  # one message, recognisably resent
    assert json.dumps(smtp.sink.messages[0]["Message-ID"]).count("@merchant.example") == 1


def test_a_fulfilment_url_with_credentials_never_reaches_an_error_row_or_the_log(delivering, sender, engine,
                                                                                   merchant) -> None:
    # Given a fulfilment URL with credentials in it, and a merchant refusing the call
    password = "fulfil-pa55word"
    delivering.env["PAYHOOKS_FULFILMENT_URL"] = merchant.url.replace("http://", f"http://shop:{password}@") + "/fulfil"
    merchant.answers = [400]
    _, rows = pay_and_deliver(delivering, engine, sender)
    assert rows["fulfilment"] == ("dead", 1)
    # The call was made with the credentials (httpx sends them as Basic) ...
    basic = base64.b64encode(f"shop:{password}".encode()).decode()
    assert merchant.received[0].headers["authorization"] == f"Basic {basic}"
    # ... and the error names the URL without them, in the row, the attempts and the worker's log
    error = scalar(engine, "SELECT last_error FROM deliveries WHERE kind = 'fulfilment'")
    attempts = json.dumps([list(r) for r in tuples(engine, "SELECT * FROM delivery_attempts")], default=str)
    assert error.startswith("HTTP 400 from http://shop:[redacted]@127.0.0.1:")
    logs = delivering.logs()
    for form in (password, basic):
        assert form not in error and form not in attempts and form not in logs
