"""The guarded transitions of webhook_events, against real Postgres."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from models import transitions
from tests.integration.stack import claim_due, scalar, stored_event, tuples


def _dispatch_and_claim(engine: Engine, event_id: int, *, worker: str = "w1") -> transitions.Claim:
    assert event_id in claim_due(engine)
    with engine.begin() as conn:
        return transitions.claim(conn, event_id, lease_seconds=30, worker=worker)


def _status(engine: Engine, event_id: int) -> tuple[str, int]:
    return tuples(engine, "SELECT status, attempts FROM webhook_events WHERE id = :id", id=event_id)[0]


def test_claim_counts_the_attempt_and_a_second_claim_finds_nothing(engine: Engine) -> None:
    event_id = stored_event(engine)
    held = _dispatch_and_claim(engine, event_id)
    assert (held.attempt, held.tries, held.provider) == (1, 1, "yoco")
    assert _status(engine, event_id) == ("processing", 1)
    with engine.begin() as conn, pytest.raises(transitions.NotClaimable):
        transitions.claim(conn, event_id, lease_seconds=30, worker="w2")


def test_a_pending_event_cannot_be_claimed_by_a_worker(engine: Engine) -> None:
    event_id = stored_event(engine)
    with engine.begin() as conn, pytest.raises(transitions.NotClaimable):
        transitions.claim(conn, event_id, lease_seconds=30, worker="w1")
    assert _status(engine, event_id) == ("pending", 0)


def test_a_stale_attempt_cannot_finish_after_its_lease_was_taken_over(engine: Engine) -> None:
    event_id = stored_event(engine)
    stale = _dispatch_and_claim(engine, event_id)
    # The lease ran out: the sweeper failed the attempt and the event was claimed again
    with engine.begin() as conn:
        transitions.fail(conn, stale, error="worker lost", traceback=None, retry_in=timedelta(0), lost=True)
    current = _dispatch_and_claim(engine, event_id, worker="w2")
    assert current.attempt == 2
    with engine.begin() as conn, pytest.raises(transitions.TransitionError):
        transitions.finish(conn, stale, status="succeeded")
    with engine.begin() as conn:
        transitions.finish(conn, current, status="succeeded")
    assert _status(engine, event_id) == ("succeeded", 2)


def test_fail_schedules_the_retry_or_kills(engine: Engine) -> None:
    event_id = stored_event(engine)
    held = _dispatch_and_claim(engine, event_id)
    with engine.begin() as conn:
        assert transitions.fail(conn, held, error="boom", traceback="tb", retry_in=timedelta(hours=1)) == "retrying"
        due_in = conn.execute(text("SELECT next_attempt_at - clock_timestamp() FROM webhook_events WHERE id = :id"),
                              {"id": event_id}).scalar_one()
    assert timedelta(minutes=59) < due_in <= timedelta(hours=1)
    with engine.begin() as conn:  # not due yet: not dispatched
        assert transitions.claim_due(conn, batch_size=10, lease_seconds=30) == []
        conn.execute(text("UPDATE webhook_events SET next_attempt_at = now() WHERE id = :id"), {"id": event_id})
    again = _dispatch_and_claim(engine, event_id)
    with engine.begin() as conn:
        assert transitions.fail(conn, again, error="boom", traceback=None, retry_in=None) == "dead"
    assert _status(engine, event_id) == ("dead", 2)


def test_replay_rearms_dead_events_and_restarts_the_schedule(engine: Engine) -> None:
    event_id = stored_event(engine)
    for _ in range(3):
        held = _dispatch_and_claim(engine, event_id)
        with engine.begin() as conn:
            transitions.fail(conn, held, error="boom", traceback=None, retry_in=timedelta(0))
            conn.execute(text("UPDATE webhook_events SET next_attempt_at = now() WHERE id = :id"),
                         {"id": event_id})
    held = _dispatch_and_claim(engine, event_id)
    with engine.begin() as conn:
        transitions.fail(conn, held, error="boom", traceback=None, retry_in=None)
        assert transitions.replay(conn, [event_id]) == [event_id]
    replayed = _dispatch_and_claim(engine, event_id)
    assert (replayed.attempt, replayed.tries) == (5, 1)  # attempt numbers go on; the schedule restarts
    assert scalar(engine, "SELECT replay_count FROM webhook_events WHERE id = :id", id=event_id) == 1


def test_replay_leaves_work_in_progress_and_successes_alone(engine: Engine) -> None:
    busy, done = stored_event(engine, "evt_busy"), stored_event(engine, "evt_done")
    with engine.begin() as conn:
        assert transitions.claim_due(conn, batch_size=10, lease_seconds=30) == [busy, done]
        transitions.claim(conn, busy, lease_seconds=30, worker="w1")
        finished = transitions.claim(conn, done, lease_seconds=30, worker="w1")
    with engine.begin() as conn:
        transitions.finish(conn, finished, status="succeeded")
        assert transitions.replay(conn, [busy, done]) == []
        assert transitions.replay(conn, [busy, done], include_succeeded=True) == [done]
    assert _status(engine, busy)[0] == "processing"
    assert _status(engine, done)[0] == "pending"


def test_expired_leases_requeue_lost_messages_and_return_lost_workers(engine: Engine) -> None:
    queued, working = stored_event(engine, "evt_q"), stored_event(engine, "evt_w")
    held = _dispatch_and_claim(engine, working)
    with engine.begin() as conn:
        transitions.claim_due(conn, batch_size=10, lease_seconds=30)
        conn.execute(text("UPDATE webhook_events SET lease_expires_at = now() - interval '1 second'"))
    with engine.begin() as conn:
        requeued, lost = transitions.expired_leases(conn, batch_size=10, lease_seconds=30, worker="sweeper")
        assert requeued == 1
        assert [(c.event_id, c.attempt) for c in lost] == [(working, held.attempt)]
    assert _status(engine, queued) == ("pending", 0)
