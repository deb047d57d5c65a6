"""`payhooks events list|show` against real Postgres: filters, JSON, the whole record, no secret shown."""
from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from tests.conftest import API_TOKEN, PROCESSOUT_BASIC_AUTH, TEST_SECRETS
from tests.integration.helpers import EVENT_TYPES, secret_forms
from tests.integration.ops_data import (
    insert_attempt,
    insert_delivery,
    insert_event,
    insert_try,
    json_out,
    ok,
)
from tests.integration.stack import create_order, execute


@pytest.fixture
def six(engine: Engine) -> dict[str, int]:
    """Six events across providers, types, statuses, orders and times (keys e1…e6)."""
    order_a = create_order(engine, reference="ORD-A", status="paid")
    order_b = create_order(engine, reference="ORD-B", provider="processout")
    ids = {
        "e1": insert_event(engine, key="e1", provider="yoco", event_type="payment.succeeded", status="succeeded",
                           received_ago_s=3 * 3600, done_after_s=1, order_id=order_a),
        "e2": insert_event(engine, key="e2", provider="yoco", event_type="refund.succeeded", status="dead",
                           received_ago_s=2 * 3600, last_error="amount mismatch"),
        "e3": insert_event(engine, key="e3", provider="smartpay", event_type="order.authorized",
                           status="retrying", received_ago_s=90 * 60, next_in_s=60),
        "e4": insert_event(engine, key="e4", provider="shadhinpay", event_type="payment.completed",
                           status="dead", received_ago_s=30 * 60, last_error="order not found: SP_1"),
        "e5": insert_event(engine, key="e5", provider="processout", event_type="transaction.captured",
                           status="pending", received_ago_s=5 * 60, order_id=order_b),
        "e6": insert_event(engine, key="e6", provider="senfenico", event_type="checkout.success",
                           status="ignored", received_ago_s=2 * 86400),
    }
    # e2 was refused a change to ORD-A: it belongs to that order too
    execute(engine, """INSERT INTO order_transitions (order_id, event_id, from_status, to_status, note)
                       VALUES (:o, :e, 'paid', 'paid', 'refund larger than the payment')""", o=order_a, e=ids["e2"])
    return ids


def _keys(result) -> list[str]:
    return [row["event_key"] for row in json_out(result)]


ISO_100_MIN_AGO = "ISO_100_MIN_AGO"


@pytest.mark.parametrize(("args", "expected"), [
    ([], ["e5", "e4", "e3", "e2", "e1", "e6"]),
    (["--status", "dead"], ["e4", "e2"]),
    (["--status", "dead,retrying"], ["e4", "e3", "e2"]),
    (["--status", "dead", "--status", "pending"], ["e5", "e4", "e2"]),
    (["--provider", "yoco"], ["e2", "e1"]),
    (["--provider", "yoco", "--status", "succeeded"], ["e1"]),
    (["--type", "payment.succeeded"], ["e1"]),
    (["--type", "order.authorized", "--type", "checkout.success"], ["e3", "e6"]),
    (["--order", "ORD-A"], ["e2", "e1"]),
    (["--order", "ORD-B"], ["e5"]),
    (["--order", "ORD-NONE"], []),
    (["--since", "1h"], ["e5", "e4"]),
    (["--since", "45m"], ["e5", "e4"]),
    (["--since", "10m"], ["e5"]),
    (["--until", "1h"], ["e3", "e2", "e1", "e6"]),
    (["--since", "4h", "--until", "1h"], ["e3", "e2", "e1"]),
    (["--since", "3d", "--until", "1d"], ["e6"]),
    (["--since", ISO_100_MIN_AGO], ["e5", "e4", "e3"]),
    (["--limit", "2"], ["e5", "e4"]),
])
def test_list_filters(run, six, args, expected) -> None:
    iso = (datetime.now(UTC) - timedelta(minutes=100)).replace(tzinfo=None).isoformat(timespec="seconds")
    args = [iso if a == ISO_100_MIN_AGO else a for a in args]  # naive ISO: read as UTC
    assert _keys(run("events", "list", "--json", *args)) == expected


def test_list_json_rows_carry_the_summary(run, six) -> None:
    rows = {row["event_key"]: row for row in json_out(run("events", "list", "--json"))}
    assert rows["e1"]["order_reference"] == "ORD-A" and rows["e1"]["status"] == "succeeded"
    assert rows["e4"]["last_error"] == "order not found: SP_1"
    assert rows["e4"]["id"] == six["e4"] and rows["e4"]["provider"] == "shadhinpay"
    received = datetime.fromisoformat(rows["e6"]["received_at"])
    assert timedelta(days=2) - timedelta(minutes=1) < datetime.now(UTC) - received < timedelta(days=2, minutes=1)


def test_list_defaults_to_50(run, engine) -> None:
    for n in range(55):
        insert_event(engine, key=f"bulk-{n:02d}", received_ago_s=100 - n)
    rows = json_out(run("events", "list", "--json"))
    assert [r["event_key"] for r in rows] == [f"bulk-{n:02d}" for n in range(54, 4, -1)]


def test_list_table_is_readable(run, six) -> None:
    result = ok(run("events", "list", "--status", "dead"))
    assert "2 events, newest first" in result.stdout and "received (UTC)" in result.stdout
    lines = result.stdout.splitlines()
    e4 = next(line for line in lines if f" {six['e4']} " in f" {line} " and "shadhinpay" in line)
    assert "payment.completed" in e4 and "dead" in e4 and "order not found: SP_1" in e4
    assert "smartpay" not in result.stdout and "senfenico" not in result.stdout


@pytest.fixture
def full_event(engine: Engine) -> dict[str, int]:
    order = create_order(engine, reference="ORD-FULL", status="paid")
    event = insert_event(
        engine, key="evt_full", provider="smartpay", event_type="order.authorized", status="succeeded",
        received_ago_s=120, done_after_s=3, order_id=order, attempts=2, secret_index=1,
        verify_method="hmac-sha256", body=b'{"event": "order.authorized", "raw": true}',
        headers={"smartpay-signature": "[redacted]", "user-agent": "Smartpay/1"},
        payload={"event": "order.authorized", "parsed": True}, fetched={"fetched": "from api"},
    )
    insert_attempt(engine, event_id=event, number=1, outcome="failed", error="fulfilment timed out",
                   traceback="Traceback (most recent call last):\n  File \"x.py\", line 1\nTimeoutError: slow")
    insert_attempt(engine, event_id=event, number=2, outcome="succeeded")
    execute(engine, "INSERT INTO order_transitions (order_id, event_id, from_status, to_status) "
                    "VALUES (:o, :e, 'pending', 'paid')", o=order, e=event)
    fulfilment = insert_delivery(engine, event_id=event, order_id=order, kind="fulfilment", status="succeeded",
                                 attempts=2)
    insert_try(engine, delivery_id=fulfilment, number=1, outcome="failed", code=503, response="busy",
               error="HTTP 503")
    insert_try(engine, delivery_id=fulfilment, number=2, outcome="succeeded", code=200, response="ok")
    email = insert_delivery(engine, event_id=event, order_id=order, handler="fulfilment",
                            kind="email.order_confirmation", status="skipped", attempts=1,
                            last_error="no SMTP host configured")
    insert_try(engine, delivery_id=email, number=1, outcome="skipped", error="no SMTP host configured")
    return {"event": event, "order": order, "fulfilment": fulfilment, "email": email}


def test_show_json_has_the_whole_record(run, full_event) -> None:
    record = json_out(run("events", "show", str(full_event["event"]), "--json"))
    assert (record["id"], record["event_key"], record["status"]) == (full_event["event"], "evt_full", "succeeded")
    assert record["raw_body"] == '{"event": "order.authorized", "raw": true}'
    assert record["raw_body_encoding"] == "utf-8"
    assert record["headers"] == {"smartpay-signature": "[redacted]", "user-agent": "Smartpay/1"}
    assert record["payload"] == {"event": "order.authorized", "parsed": True}
    assert record["fetched_payload"] == {"fetched": "from api"}
    assert (record["secret_index"], record["verify_method"]) == (1, "hmac-sha256")
    assert record["order"]["reference"] == "ORD-FULL"
    assert [(a["number"], a["outcome"], a["error"]) for a in record["attempts"]] == [
        (1, "failed", "fulfilment timed out"), (2, "succeeded", None)]
    assert "TimeoutError: slow" in record["attempts"][0]["traceback"]
    whats = [entry["what"] for entry in record["history"]]
    assert whats[0] == "received"
    assert {"attempt 1: failed", "attempt 2: succeeded", "order ORD-FULL: pending → paid"} <= set(whats)
    deliveries = {d["kind"]: d for d in record["deliveries"]}
    assert deliveries["fulfilment"]["key"] == f"{full_event['event']}:fulfilment:fulfilment"
    assert [(t["number"], t["outcome"], t["response_code"]) for t in deliveries["fulfilment"]["tries"]] == [
        (1, "failed", 503), (2, "succeeded", 200)]
    assert deliveries["email.order_confirmation"]["status"] == "skipped"
    assert deliveries["email.order_confirmation"]["tries"][0]["error"] == "no SMTP host configured"


def test_show_by_provider_and_key_is_the_same_record(run, full_event) -> None:
    by_id = json_out(run("events", "show", str(full_event["event"]), "--json"))
    by_key = json_out(run("events", "show", "--provider", "smartpay", "--key", "evt_full", "--json"))
    assert by_key == by_id


def test_show_for_a_person_prints_every_part(run, full_event) -> None:
    result = ok(run("events", "show", str(full_event["event"])))
    out = result.stdout
    for expected in ("evt_full", "secret #1 (hmac-sha256)", "ORD-FULL (paid)", "user-agent", "Smartpay/1",
                     '"raw": true', '"parsed": true', '"fetched": "from api"', "pending → paid",
                     "fulfilment timed out", "TimeoutError: slow", f"{full_event['event']}:fulfilment:fulfilment",
                     "503", "HTTP 503", "no SMTP host configured", "deliveries (2)", "attempts (2)"):
        assert expected in out, expected


def test_show_a_binary_body_as_base64(run, engine) -> None:
    event = insert_event(engine, body=b"\xff\xfe\x00binary")
    record = json_out(run("events", "show", str(event), "--json"))
    assert record["raw_body_encoding"] == "base64"
    assert base64.b64decode(record["raw_body"]) == b"\xff\xfe\x00binary"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["list", "--status", "exploded"], 2, "exploded"),
    (["list", "--since", "yesterday-ish"], 2, "yesterday-ish"),
    (["list", "--limit", "0"], 2, "--limit"),
    (["show", "999999"], 1, "no event 999999"),
    (["show", "--provider", "yoco", "--key", "nope"], 1, "no yoco event with key 'nope'"),
    (["show"], 2, "give an EVENT_ID"),
    (["show", "--provider", "yoco"], 2, "give an EVENT_ID"),
    (["show", "1", "--provider", "yoco", "--key", "k"], 2, "not both"),
])
def test_list_and_show_refuse_bad_options(run, engine, args, code, message) -> None:
    result = run("events", *args)
    assert result.exit_code == code
    assert message in result.stderr


def test_no_configured_secret_is_shown_for_real_events(run, sender, engine) -> None:
    # Given one real, signed event of every provider stored by the receiver
    ids = {p: sender.send(p, t, order_ref=f"ref_{p}") for p, t in EVENT_TYPES.items()}
    outputs = [run("events", "list").stdout, run("events", "list", "--json").stdout]
    for event_id in ids.values():
        outputs.append(run("events", "show", str(event_id)).stdout)
        outputs.append(run("events", "show", str(event_id), "--json").stdout)
    # Then no output carries a secret, in any form a request carried it
    everything = "\n".join(outputs)
    assert all(str(i) in everything for i in ids.values())
    for secret in secret_forms():
        assert secret not in everything, secret
    # and the headers that carried them are shown redacted
    processout = json_out(run("events", "show", str(ids["processout"]), "--json"))
    assert processout["headers"]["authorization"] == "[redacted]"
    assert processout["verify_method"] == "basic" and processout["secret_index"] == 0


def test_a_secret_that_reached_a_row_is_still_not_printed(run, engine) -> None:
    # Given a row that somehow carries secrets (an old row, an error message quoting one)
    event = insert_event(engine, key="leaky", status="dead", headers={"x-debug": f"Bearer {API_TOKEN}"},
                         last_error=f"bad signature with {TEST_SECRETS['smartpay'][0]}",
                         body=f'{{"auth": "{PROCESSOUT_BASIC_AUTH}"}}'.encode())
    commands = [("events", "show", str(event)), ("events", "show", str(event), "--json"), ("events", "list"),
                ("events", "list", "--json")]
    outputs = "\n".join(run(*command).stdout for command in commands)
    # Then the CLI shows them redacted
    assert "[redacted]" in outputs
    for secret in (API_TOKEN, TEST_SECRETS["smartpay"][0], PROCESSOUT_BASIC_AUTH,
                   PROCESSOUT_BASIC_AUTH.partition(":")[2]):
        assert secret not in outputs
