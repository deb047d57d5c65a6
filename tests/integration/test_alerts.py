"""Alerts end to end: real worker and dispatcher (with its watcher), a local alert receiver and SMTP server."""
from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook

from testkit.fakes import MerchantServer, SmtpServer
from testkit.processes import free_port, wait_for
from testkit.services import Services
from tests.integration.stack import (
    Sender,
    create_order,
    scalar,
    start_processes,
    status_of,
    tuples,
    values,
    wait_final,
)

ALERT_SECRET = "whsec_" + "YWxlcnQtc2VjcmV0LWZvci10ZXN0cy0xMjM0NQ=="


@pytest.fixture
def receiver(merchant: MerchantServer) -> MerchantServer:
    return merchant  # plays the team's alert endpoint (a Slack incoming webhook, a pager bridge)


@pytest.fixture
def alerting(stack: Services, receiver: MerchantServer) -> Services:
    stack.env.update({
        "PAYHOOKS_ALERT_URL": f"{receiver.url}/alerts",
        "PAYHOOKS_ALERT_SECRET": ALERT_SECRET,
        "PAYHOOKS_WATCH_INTERVAL_SECONDS": "0.3",
        "PAYHOOKS_DELIVERY_RETRY_SCHEDULE": "1s,1s,1s",
        "PAYHOOKS_DELIVERY_TIMEOUT_SECONDS": "2",
    })
    return stack


def posted(receiver: MerchantServer, kind: str | None = None) -> list[dict]:
    return [r.json for r in receiver.received if kind is None or r.json["type"] == kind]


def alert_mails(smtp: SmtpServer) -> list:
    return [m for m in smtp.sink.messages if m["X-Envelope-To"] == "oncall@merchant.example"]


def test_one_opened_alert_for_many_deaths_and_one_resolved_after_the_replay(
        alerting, sender: Sender, engine: Engine, receiver, smtp, run) -> None:
    alerting.env.update({"PAYHOOKS_ALERT_EMAIL": "oncall@merchant.example", "PAYHOOKS_SMTP_HOST": "127.0.0.1",
                         "PAYHOOKS_SMTP_PORT": str(smtp.port)})
    start_processes(alerting)
    # Given three Smartpay events for orders the merchant never registered: one cause, three deaths
    refs = ["ord_1001", "ord_1002", "ord_1003"]
    ids = [sender.send("smartpay", "order.authorized", order_ref=ref, amount=1000) for ref in refs]
    assert set(wait_final(engine, *ids, stack=alerting)) == {"dead"}
    wait_for(lambda: posted(receiver, "incident.opened"), message="the incident.opened alert")
    wait_for(lambda: scalar(engine, "SELECT count(*) FROM incident_members") == 3,
             message="all three deaths in the incident")
    wait_for(lambda: len(alert_mails(smtp)) == 1, message="the alert email")
    # Then one alert, however many watcher cycles pass, signed the Standard Webhooks way
    (opened,) = posted(receiver)
    call = receiver.received[0]
    Webhook(ALERT_SECRET).verify(call.body, call.headers)
    assert call.headers["webhook-id"] == f"alert:{opened['alert_id']}:alert.webhook"
    assert opened["text"].startswith("payhooks incident #1 opened:")
    assert opened["incident"]["provider"] == "smartpay" and opened["incident"]["cause"] == "order not found: smartpay payment <id>"
    (mail,) = alert_mails(smtp)
    assert mail["X-Envelope-To"] == "oncall@merchant.example"
    assert mail["Subject"].startswith("[payhooks] incident.opened: payhooks incident #1 opened")

    # When the merchant registers the orders and the operator replays the incident
    for ref in refs:
        create_order(engine, reference=ref.upper(), provider="smartpay", payment_ref=ref)
    result = run("incidents", "replay", "1", "--yes", "--by", "oncall")
    assert result.exit_code == 0 and "replayed 3 events" in result.output
    wait_for(lambda: {status_of(engine, i) for i in ids} == {"succeeded"}, message="the replayed events")
    # Then the incident resolves itself: one more alert
    wait_for(lambda: posted(receiver, "incident.resolved"), message="the incident.resolved alert")
    wait_for(lambda: len(alert_mails(smtp)) == 2, message="the second alert email")
    assert [a["type"] for a in posted(receiver)] == ["incident.opened", "incident.resolved"]
    resolved = posted(receiver, "incident.resolved")[0]
    assert resolved["incident"]["resolved_by"] == "auto" and resolved["incident"]["failing"] == 0

    def tries() -> dict[str, int]:
        return dict(tuples(engine, """
            SELECT d.kind, count(a.id) FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id
             WHERE d.alert_id IS NOT NULL AND a.outcome = 'succeeded' GROUP BY d.kind"""))

    wait_for(lambda: tries() == {"alert.webhook": 2, "alert.email": 2}, message="each try audited")


def test_an_unreachable_alert_url_retries_and_never_blocks_events(stack, sender: Sender, engine: Engine) -> None:
    closed = free_port()  # nothing listens there
    stack.env.update({"PAYHOOKS_ALERT_URL": f"http://127.0.0.1:{closed}/alerts",
                      "PAYHOOKS_WATCH_INTERVAL_SECONDS": "0.3", "PAYHOOKS_DELIVERY_RETRY_SCHEDULE": "1s,1s"})
    start_processes(stack)
    dead = sender.send("smartpay", "order.authorized", order_ref="ord_2001")
    wait_final(engine, dead, stack=stack)

    def alert_delivery():
        return next(iter(tuples(engine, "SELECT status, attempts FROM deliveries WHERE alert_id IS NOT NULL")), None)

    wait_for(lambda: (alert_delivery() or ("",))[0] == "retrying", message="the alert to be retrying")
    # While the alert cannot be sent, events go on being handled
    create_order(engine, reference="OK-1", provider="yoco", payment_ref="ch_ok1", amount=2500)
    good = sender.send("yoco", "payment.succeeded", order_ref="ch_ok1", amount=2500)
    assert wait_final(engine, good, stack=stack) == ["succeeded"]
    # The alert ends dead after its own schedule, every try recorded, and raises no incident of its own
    wait_for(lambda: alert_delivery() == ("dead", 3), timeout=30, message="the alert delivery to die")
    assert values(engine, "SELECT outcome FROM delivery_attempts ORDER BY id") == ["failed", "failed", "dead"]
    wait_for(lambda: '"alert.dead"' in stack.logs(), message="the watcher to read the dead alert")
    assert scalar(engine, "SELECT count(*) FROM incidents") == 1


def test_provider_silence_and_recovery_with_short_settings(alerting, sender: Sender, engine: Engine,
                                                           receiver) -> None:
    port = free_port()
    alerting.env.update({"PAYHOOKS_SILENCE_MINUTES_YOCO": "0.05", "PAYHOOKS_DISPATCHER_METRICS_PORT": str(port)})
    start_processes(alerting)
    # Given yoco watched with a 3 second threshold and nothing sent: silent, once
    wait_for(lambda: posted(receiver, "provider.silent"), timeout=30, message="provider.silent")
    silent = posted(receiver, "provider.silent")[0]
    assert silent["provider"] == "yoco" and silent["last_received_at"] is None
    # When yoco sends an event: recovered, once
    create_order(engine, reference="Y-1", provider="yoco", payment_ref="ch_y1", amount=2500)
    sender.send("yoco", "payment.succeeded", order_ref="ch_y1", amount=2500)
    wait_for(lambda: posted(receiver, "provider.recovered"), timeout=30, message="provider.recovered")
    assert "yoco is sending webhooks again" in posted(receiver, "provider.recovered")[0]["text"]
    # The dispatcher exports when each provider last sent something
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'payhooks_last_received_timestamp_seconds{provider="yoco"}' in scraped
    assert 'payhooks_silence_threshold_seconds{provider="yoco"} 3.0' in scraped


def test_a_refused_alert_keeps_the_secret_url_out_of_the_error(receiver) -> None:
    from tests.conftest import make_settings
    from workers.deliveries.alerts import send_alert
    from workers.deliveries.senders import Rejected

    url = f"{receiver.url}/services/T000/B000/s3cretSlackToken"
    settings = make_settings(alert_url=url)
    receiver.answers = [404]
    with httpx.Client() as http, pytest.raises(Rejected) as refused:
        send_alert(settings, http, key="alert:1:alert.webhook", kind="alert.webhook",
                   document={"type": "provider.silent", "text": "yoco is quiet"})
    assert str(refused.value) == "HTTP 404 from the alert URL"
    assert url in settings.secret_values()  # so logs and operator output redact it like any secret
    (call,) = receiver.received
    assert call.json["text"] == "yoco is quiet" and "webhook-signature" not in call.headers  # unsigned: no secret
