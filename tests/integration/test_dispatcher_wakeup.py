"""The dispatcher sleeps on LISTEN and is woken by the receiver's NOTIFY (models/wakeup.py).

The dispatcher here has a safety poll of a minute: an event it picks up well
within that was announced to it, not found by polling.
"""
from __future__ import annotations

import psycopg
from sqlalchemy import text

from models import wakeup
from models.db import libpq_url
from models.ingest import EventRow, store_batch
from tests.conftest import make_settings
from tests.integration.stack import execute, scalar, status_of, wait_for

SAFETY_POLL = "60"
WITHIN = 20.0  # seconds: a third of the safety poll


def _row(key: str) -> EventRow:
    return EventRow(provider="yoco", event_key=key, event_type="payment.succeeded", livemode=False,
                    raw_body=b"{}", headers={}, payload={}, secret_index=0, verify_method="hmac")


_INSERT_SILENTLY = """
    INSERT INTO webhook_events (provider, event_key, event_type, raw_body, headers, payload, status, next_attempt_at)
    VALUES ('yoco', :k, 't', '', '{}', '{}', :status, clock_timestamp() + make_interval(secs => :s))"""
"""An event stored by SQL, without the receiver's NOTIFY."""


def test_an_event_received_while_the_dispatcher_sleeps_is_dispatched_at_once(stack, sender, engine) -> None:
    # Given a dispatcher that looks on its own only once a minute (and holds no lease that runs out
    # sooner), asleep after its first look: that look claimed an event stored without a wake-up
    execute(engine, _INSERT_SILENTLY, k="probe", status="pending", s=0)
    stack.env.update(PAYHOOKS_DISPATCH_SAFETY_POLL_SECONDS=SAFETY_POLL, PAYHOOKS_LEASE_SECONDS="600",
                     PAYHOOKS_LOG_LEVEL="DEBUG")
    stack.start_dispatcher()
    probe = scalar(engine, "SELECT id FROM webhook_events WHERE event_key = 'probe'")
    wait_for(lambda: status_of(engine, probe) == "queued", message="the dispatcher's first look")
    log = stack.workdir / "dispatcher.log"
    wait_for(lambda: '"dispatcher.asleep"' in log.read_text(errors="replace"), message="the dispatcher asleep")

    # When a webhook arrives through the receiver
    event_id = sender.send("yoco", "payment.succeeded", order_ref="pay_wake")

    # Then the dispatcher claims it long before its safety poll would have
    wait_for(lambda: status_of(engine, event_id) != "pending", timeout=WITHIN,
             message=f"event {event_id} dispatched (log:\n{stack.logs()})")
    assert status_of(engine, event_id) == "queued"  # no worker runs


def _notified_before_marker(listening: psycopg.Connection, sender: psycopg.Connection) -> list[str]:
    """Every wake-up delivered before a marker sent now (Postgres delivers them in commit order)."""
    sender.execute("SELECT pg_notify(%s, 'marker')", [wakeup.CHANNEL])
    seen = []
    for notify in listening.notifies(timeout=30):
        if notify.payload == "marker":
            return seen
        seen.append(notify.payload)
    raise AssertionError("the marker never came")


def test_a_batch_that_creates_events_notifies_once_and_a_duplicate_batch_not_at_all(database_url, engine) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as listening, \
            psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        listening.execute(f"LISTEN {wakeup.CHANNEL}")
        # a batch of three new events: one wake-up for the batch
        store_batch(conn, [_row("wake-a"), _row("wake-b"), _row("wake-c")])
        assert _notified_before_marker(listening, conn) == [""]
        # the same events again: nothing new, nobody to wake
        store_batch(conn, [_row("wake-a"), _row("wake-b")])
        assert _notified_before_marker(listening, conn) == []


def test_the_listener_wakes_on_a_notification_and_forgets_it_once_drained(database_url, engine) -> None:
    listener = wakeup.Listener(make_settings(database_url=database_url), application_name="test-listener")
    assert listener.open()
    try:
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            store_batch(conn, [_row("wake-d")])
            store_batch(conn, [_row("wake-e")])
            assert listener.wait(30.0)
            conn.execute("SELECT pg_notify(%s, 'marker')", [wakeup.CHANNEL])
            assert listener.wait(30.0)  # the second batch's, or the marker
            while listener.drain():
                pass
            assert listener.listening
    finally:
        listener.close()
    assert not listener.listening


def test_the_next_due_row_or_lease_is_what_an_idle_dispatcher_waits_for(engine) -> None:
    with engine.begin() as conn:
        assert wakeup.seconds_to_next(conn) is None  # nothing stored: sleep the safety poll
        conn.execute(text(_INSERT_SILENTLY), {"k": "later", "status": "retrying", "s": 300})
        conn.execute(text(_INSERT_SILENTLY), {"k": "sooner", "status": "retrying", "s": 40})
        assert 30 < wakeup.seconds_to_next(conn) <= 40
        conn.execute(text("UPDATE webhook_events SET status = 'queued', next_attempt_at = NULL, "
                          "lease_expires_at = clock_timestamp() + interval '10 seconds' WHERE event_key = 'sooner'"))
        assert 0 < wakeup.seconds_to_next(conn) <= 10
