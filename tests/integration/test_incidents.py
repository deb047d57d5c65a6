"""Incidents and silence from the watcher, in-process against real Postgres, with deaths made by the transitions."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from models import deliveries, transitions
from models.alerts import raise_alert
from models.incidents import normalise_error
from tests.conftest import make_settings
from tests.integration.ops_data import (
    insert_delivery,
    insert_event,
    json_out,
    operator_actions,
)
from tests.integration.stack import create_order, rows, scalar, tuples, values
from workers.watch import Watcher

ALERT_URL = "http://127.0.0.1:9/alerts"  # nothing is sent in these tests: deliveries are only written


@pytest.fixture
def watcher(database_url: str, engine: Engine) -> Watcher:
    return Watcher(settings=make_settings(database_url=database_url, alert_url=ALERT_URL,
                                          silence_minutes_yoco=30), engine=engine)


def work(engine: Engine, ids: list[int], *, error: str | None) -> None:
    """Take due events through a real claim and end each dead with ``error`` (or succeeded when None)."""
    with engine.begin() as conn:
        transitions.claim_due(conn, batch_size=1000, lease_seconds=60)
        for claim in transitions.claim_many(conn, ids, lease_seconds=60, worker="test"):
            if error is None:
                transitions.finish(conn, claim, status="succeeded")
            else:
                transitions.fail(conn, claim, error=error.format(id=claim.event_id), traceback=None, retry_in=None)


def replay(engine: Engine, ids: list[int], *, error: str | None) -> None:
    """Replay the events, then ``work`` them again."""
    with engine.begin() as conn:
        transitions.replay(conn, ids)
    work(engine, ids, error=error)


def alerts(engine: Engine) -> list[tuple[str, int | None]]:
    return tuples(engine, "SELECT type, incident_id FROM alerts ORDER BY id")


def incident_rows(engine: Engine) -> list[tuple]:
    return tuples(engine, "SELECT id, status, provider, event_type, cause, reopened_count FROM incidents ORDER BY id")


def dead_yoco(engine: Engine, count: int, *, error: str = "no order for Yoco checkout ch_{id}x") -> list[int]:
    ids = [insert_event(engine, provider="yoco", status="pending") for _ in range(count)]
    work(engine, ids, error=error)
    return ids


@pytest.mark.parametrize("error, cause", [
    ("smartpay payment ord_1001", "smartpay payment <id>"),
    ("HTTP 500 from https://shop.example/fulfil?token=abc123", "HTTP 500 from https://shop.example/fulfil"),
    ("HTTP 502 from http://10.0.0.7:8443/orders/ORD-1042/fulfil", "HTTP 502 from http://10.0.0.7:8443/orders/<id>/fulfil"),
    ("ProcessOut has no event ev_9f8e7d", "ProcessOut has no event <id>"),
    ("amount 2500 != 'ZAR 12'", "amount <id> != <value>"),
    ("for a@b.example, id 3fa85f64-5717-4562-b3fc-2c963f66afa6", "for <email>, id <uuid>"),
    (None, "(no error recorded)"),
])
def test_errors_are_normalised_into_causes(error, cause) -> None:
    assert normalise_error(error) == cause


def test_several_deaths_of_one_cause_open_one_incident_with_one_alert(watcher, engine) -> None:
    # Given three yoco events dead for the same reason (different checkout ids) and one for another reason
    same = dead_yoco(engine, 3)
    other = dead_yoco(engine, 1, error="ProcessOut answered 503")
    # When the watcher runs, twice
    watcher.cycle()
    watcher.cycle()
    # Then two incidents, one alert each, and one webhook delivery per alert
    incidents = incident_rows(engine)
    assert [(r[1], r[2], r[4]) for r in incidents] == [
        ("open", "yoco", "no order for Yoco checkout <id>"), ("open", "yoco", "ProcessOut answered 503")]
    assert alerts(engine) == [("incident.opened", incidents[0][0]), ("incident.opened", incidents[1][0])]
    members = rows(engine, "SELECT incident_id, event_id FROM incident_members ORDER BY event_id")
    kinds = rows(engine, "SELECT kind, status, event_id, order_id FROM deliveries")
    document = scalar(engine, "SELECT document FROM alerts ORDER BY id LIMIT 1")
    assert [m.event_id for m in members] == same + other
    assert {tuple(k) for k in kinds} == {("alert.webhook", "pending", None, None)}
    assert document["type"] == "incident.opened" and document["incident"]["failing"] == 3
    assert document["text"].startswith(f"payhooks incident #{incidents[0][0]} opened: 3 dead yoco payment.succeeded")


def test_a_fresh_watcher_reading_the_same_deaths_changes_nothing(watcher, engine, database_url) -> None:
    dead_yoco(engine, 2)
    watcher.cycle()
    # A second dispatcher (no memory of what was read) looks at the same deaths
    Watcher(settings=watcher.settings, engine=engine).cycle()
    assert alerts(engine) == [("incident.opened", 1)]
    assert len(incident_rows(engine)) == 1


def test_a_restarted_watcher_does_not_reopen_what_an_operator_resolved(watcher, engine, run) -> None:
    dead_yoco(engine, 2)
    watcher.cycle()
    assert run("incidents", "resolve", "1", "--by", "ops").exit_code == 0
    # A dispatcher restart: a watcher with no memory reads the same (still dead) deaths again
    Watcher(settings=watcher.settings, engine=engine).cycle()
    assert incident_rows(engine)[0][1] == "resolved"
    assert [a[0] for a in alerts(engine)] == ["incident.opened", "incident.resolved"]


def test_an_incident_resolves_itself_when_all_members_succeed_and_reopens(watcher, engine) -> None:
    ids = dead_yoco(engine, 2)
    watcher.cycle()
    # When only one member is replayed to success, the incident stays open
    replay(engine, ids[:1], error=None)
    watcher.cycle()
    assert incident_rows(engine)[0][1] == "open"
    # When the other succeeds too, it resolves itself: one alert
    replay(engine, ids[1:], error=None)
    watcher.cycle()
    watcher.cycle()
    assert incident_rows(engine)[0][1] == "resolved"
    assert [a[0] for a in alerts(engine)] == ["incident.opened", "incident.resolved"]
    # When the cause comes back, the same incident reopens: one alert
    dead_yoco(engine, 2)
    watcher.cycle()
    (row,) = incident_rows(engine)
    assert row[1] == "open" and row[5] == 1
    assert [a[0] for a in alerts(engine)] == ["incident.opened", "incident.resolved", "incident.opened"]
    assert scalar(engine, "SELECT document FROM alerts ORDER BY id DESC LIMIT 1")["incident"]["reopened"] is True


def test_a_member_dying_again_after_a_replay_does_not_alert_again(watcher, engine) -> None:
    ids = dead_yoco(engine, 1)
    watcher.cycle()
    replay(engine, ids, error="no order for Yoco checkout ch_{id}x")
    watcher.cycle()
    assert [a[0] for a in alerts(engine)] == ["incident.opened"]
    assert scalar(engine, "SELECT attempt FROM incident_members") == 2


def kill_deliveries(engine: Engine, error: str) -> None:
    """Every due delivery through a real claim, then dead with ``error``."""
    with engine.begin() as conn:
        for delivery_id in deliveries.claim_due(conn, batch_size=100, lease_seconds=60):
            claim = deliveries.claim(conn, delivery_id, lease_seconds=60, worker="test")
            deliveries.fail(conn, claim, error=error.format(id=delivery_id), retry_in=None,
                            result=deliveries.Result(code=400))


def test_dead_deliveries_make_one_incident_per_kind_and_cause_and_dead_alerts_none(watcher, engine, run) -> None:
    order = create_order(engine, reference="ORD-9")
    events = [insert_event(engine, provider=p, status="succeeded") for p in ("yoco", "smartpay")]
    for event_id in events:  # the merchant's fulfilment endpoint refuses calls of both providers' events
        insert_delivery(engine, event_id=event_id, order_id=order, kind="fulfilment")
    with engine.begin() as conn:  # and an alert that cannot be delivered either
        raise_alert(conn, watcher.settings, type="provider.silent", message="quiet", facts={})
    kill_deliveries(engine, "HTTP 400 from https://shop.example/fulfil/{id}")
    watcher.cycle()
    (row,) = incident_rows(engine)
    assert row[1:5] == ("open", None, "fulfilment", "HTTP 400 from https://shop.example/fulfil/<id>")
    listed = json_out(run("incidents", "list", "--json"))
    assert [(r["source"], r["members"]) for r in listed] == [("deliveries", 2)]
    # Replaying the incident re-arms its deliveries (not the alert's)
    result = run("incidents", "replay", str(row[0]), "--yes")
    assert result.exit_code == 0 and "replayed 2 deliveries" in result.output
    statuses = rows(engine, "SELECT kind, status FROM deliveries ORDER BY id")
    assert [tuple(s) for s in statuses] == [("fulfilment", "pending"), ("fulfilment", "pending"),
                                            ("alert.webhook", "dead"),  # the undeliverable alert: no incident
                                            ("alert.webhook", "pending")]  # the incident's own alert


def test_provider_silence_and_recovery_with_a_frozen_clock(watcher, engine) -> None:
    start = scalar(engine, "SELECT clock_timestamp()")
    # Given yoco watched with a 30 minute threshold and nothing received yet
    watcher.cycle(now=start)
    assert alerts(engine) == []
    # When 31 minutes pass without an event: silent, once
    watcher.cycle(now=start + timedelta(minutes=31))
    watcher.cycle(now=start + timedelta(minutes=40))
    assert alerts(engine) == [("provider.silent", None)]
    # When a yoco event is accepted at 41 min on the frozen clock (a reconciled one does not count)
    at_41_min = -41 * 60  # received that far "ahead" of the real now, which is about `start`
    insert_event(engine, provider="yoco", status="succeeded", received_ago_s=at_41_min, verify_method="reconciled")
    watcher.cycle(now=start + timedelta(minutes=41))
    assert alerts(engine) == [("provider.silent", None)]
    insert_event(engine, provider="yoco", status="succeeded", received_ago_s=at_41_min)
    # Then recovered, once
    watcher.cycle(now=start + timedelta(minutes=42))
    watcher.cycle(now=start + timedelta(minutes=43))
    assert [a[0] for a in alerts(engine)] == ["provider.silent", "provider.recovered"]
    documents = values(engine, "SELECT document FROM alerts ORDER BY id")
    assert documents[0]["provider"] == "yoco" and documents[0]["silence_minutes"] == 30
    assert "yoco has sent no accepted webhook for 31 min" in documents[0]["text"]
    assert "yoco is sending webhooks again" in documents[1]["text"]


def test_incidents_cli_list_show_ack_resolve(watcher, engine, run) -> None:
    dead_yoco(engine, 2)
    watcher.cycle()
    (listed,) = json_out(run("incidents", "list", "--json"))
    assert listed["status"] == "open" and listed["members"] == 2 and listed["failing"] == 2
    shown = json_out(run("incidents", "show", str(listed["id"]), "--json"))
    assert len(shown["members_detail"]) == 2 and shown["alerts"][0]["type"] == "incident.opened"
    assert shown["alerts"][0]["deliveries"] == {"alert.webhook": "pending"}
    text_out = run("incidents", "show", str(listed["id"])).output
    assert "no order for Yoco checkout <id>" in text_out and "payhooks incidents replay" in text_out

    result = run("incidents", "ack", str(listed["id"]), "--by", "thandi")
    assert result.exit_code == 0 and "acknowledged by thandi" in result.output
    again = run("incidents", "ack", str(listed["id"]))
    assert again.exit_code == 1 and "is not open" in again.output
    assert run("incidents", "resolve", str(listed["id"]), "--by", "thandi").exit_code == 0
    assert json_out(run("incidents", "list", "--json")) == []
    assert [r["status"] for r in json_out(run("incidents", "list", "--all", "--json"))] == ["resolved"]
    assert [a[0] for a in alerts(engine)] == ["incident.opened", "incident.acknowledged", "incident.resolved"]
    actions = [(a.action, a.actor, a.count) for a in operator_actions(engine)]
    assert actions == [("incident.ack", "thandi", 1), ("incident.resolve", "thandi", 1)]
    missing = run("incidents", "show", "999")
    assert missing.exit_code == 1 and "no incident 999" in missing.output
    bad = run("incidents", "list", "--status", "closed")
    assert bad.exit_code == 2 and "closed" in bad.output


def test_incidents_replay_uses_the_replay_rules_and_audit(watcher, engine, run) -> None:
    ids = dead_yoco(engine, 3)
    watcher.cycle()
    replay(engine, ids[:1], error=None)  # one already succeeded: left alone without --force
    dry = run("incidents", "replay", "1", "--dry-run")
    assert "2 events to replay (dead 2); skipped 1 succeeded" in dry.output and "nothing changed" in dry.output
    result = run("incidents", "replay", "1", "--yes", "--by", "ops")
    assert result.exit_code == 0 and "replayed 2 events" in result.output
    statuses = dict(rows(engine, "SELECT id, status FROM webhook_events"))
    assert statuses == {ids[0]: "succeeded", ids[1]: "pending", ids[2]: "pending"}
    (action,) = operator_actions(engine)
    assert action.action == "replay" and action.count == 2 and action.filter["incident"] == 1
