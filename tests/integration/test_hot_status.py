"""Migration 0007: an event's claim writes no index entry, and the columns the indexes use stay true."""
from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from models import transitions
from tests.integration.stack import execute, scalar, stored_event


def _updates(conn: Connection) -> tuple[int, int]:
    """(updates, of them HOT) of webhook_events in this transaction so far."""
    row = conn.execute(text("""
        SELECT pg_stat_get_xact_tuples_updated('webhook_events'::regclass) AS upd,
               pg_stat_get_xact_tuples_hot_updated('webhook_events'::regclass) AS hot""")).one()
    return row.upd, row.hot


def test_a_claim_is_a_hot_update_and_dispatch_and_finish_are_not(engine: Engine) -> None:
    # Given a stored event (a fresh page: room for new versions)
    event_id = stored_event(engine, "evt_hot")
    with engine.begin() as conn:
        # When the dispatcher queues it, a worker claims it and finishes it, in one transaction
        assert transitions.claim_due(conn, batch_size=10, lease_seconds=60) == [event_id]
        after_dispatch = _updates(conn)
        [(claim, _)] = transitions.claim_batch(conn, [event_id], lease_seconds=60, worker="w")
        after_claim = _updates(conn)
        assert transitions.finish_batch(conn, [transitions.Outcome(claim=claim, status="succeeded")],
                                        worker="w") == {event_id}
        after_finish = _updates(conn)
    # Then only the claim, which changes no indexed column, was HOT
    assert after_dispatch == (1, 0)
    assert after_claim == (2, 1)
    assert after_finish == (3, 1)


def test_final_status_follows_status(engine: Engine) -> None:
    event_id = stored_event(engine, "evt_final")
    final_status = "SELECT final_status FROM webhook_events WHERE id = :id"
    pending = scalar(engine, final_status, id=event_id)
    execute(engine, "UPDATE webhook_events SET status = 'dead', next_attempt_at = NULL, processed_at = now() "
                    "WHERE id = :id", id=event_id)
    assert (pending, scalar(engine, final_status, id=event_id)) == (None, "dead")


@pytest.mark.parametrize("assignments", [
    "status = 'pending', next_attempt_at = NULL",  # due without a due time: the due index misses it
    "status = 'succeeded', processed_at = now()",  # final, still in the due index
    "status = 'queued', next_attempt_at = NULL",  # leased without a lease: the lease index misses it
])
def test_rows_that_the_work_indexes_would_miscount_are_refused(engine: Engine, assignments: str) -> None:
    event_id = stored_event(engine, f"evt_ck_{abs(hash(assignments))}")
    with pytest.raises(IntegrityError, match="ck_webhook_events_(due|lease)_mark"):
        execute(engine, f"UPDATE webhook_events SET {assignments} WHERE id = :id", id=event_id)
