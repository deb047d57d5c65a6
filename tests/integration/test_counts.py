"""Counts by status from tallies plus index ranges stay equal to a full GROUP BY through every change."""
from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

from models import counts, deliveries, transitions
from testkit.processes import wait_for
from tests.integration.ops_data import insert_delivery, insert_event
from tests.integration.stack import create_order, execute, scalar
from workers.dispatcher import Dispatcher

DAY_S = 86400.0


def _truth(engine: Engine, counted: counts.Counted) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for row in conn.execute(text(f"SELECT {counted.group} AS g, status, count(*) AS n FROM {counted.table} "
                                     "GROUP BY 1, 2")):
            out.setdefault(row.g, {})[row.status] = row.n
    return {g: dict(sorted(s.items())) for g, s in sorted(out.items())}


def _counted(engine: Engine, counted: counts.Counted) -> dict[str, dict[str, int]]:
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            return counts.counts_by_group(conn, counted)


def _tallied(engine: Engine) -> int:
    return scalar(engine, "SELECT COALESCE(sum(n), 0) FROM status_tallies")


def test_counts_stay_exact_through_fold_replay_and_delete(engine: Engine) -> None:
    order = create_order(engine, reference="ORD-C")
    old = [insert_event(engine, provider=p, status=s, received_ago_s=d * DAY_S, done_after_s=5, next_in_s=None)
           for p, s, d in (("yoco", "succeeded", 20), ("yoco", "dead", 15), ("smartpay", "ignored", 10),
                           ("yoco", "succeeded", 3), ("senfenico", "dead", 2))]
    insert_event(engine, provider="yoco", status="retrying", attempts=1, next_in_s=60)
    insert_event(engine, provider="yoco", status="pending")
    email = insert_delivery(engine, event_id=old[0], order_id=order, kind="email", status="dead",
                            processed_ago_s=10 * DAY_S)
    insert_delivery(engine, event_id=old[1], order_id=order, kind="email", status="succeeded",
                    processed_ago_s=9 * DAY_S)
    # Given no fold yet: everything is counted live
    assert _counted(engine, counts.EVENTS) == _truth(engine, counts.EVENTS)
    # When the housekeeper folds history (an hour of lag) into the tallies
    assert counts.fold_all(engine, lag_seconds=3600) == 7
    assert _tallied(engine) == 7
    assert _counted(engine, counts.EVENTS) == _truth(engine, counts.EVENTS)
    assert _counted(engine, counts.DELIVERIES) == _truth(engine, counts.DELIVERIES)
    # and new final rows arrive after the mark
    insert_event(engine, provider="smartpay", status="succeeded", received_ago_s=5, done_after_s=1, next_in_s=None)
    assert _counted(engine, counts.EVENTS) == _truth(engine, counts.EVENTS)
    # When an operator replays folded rows (dead → pending), the trigger takes them out of the tallies
    with engine.begin() as conn:
        assert transitions.replay(conn, [old[1], old[4]]) == [old[1], old[4]]
        assert deliveries.replay(conn, [email]) == [email]
    assert _counted(engine, counts.EVENTS) == _truth(engine, counts.EVENTS)
    assert _counted(engine, counts.DELIVERIES) == _truth(engine, counts.DELIVERIES)
    # When retention deletes folded rows, the statement trigger subtracts them
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM deliveries WHERE event_id = :e"), {"e": old[0]})
        conn.execute(text("DELETE FROM webhook_events WHERE id = ANY(:ids)"), {"ids": [old[0], old[2]]})
    assert _counted(engine, counts.EVENTS) == _truth(engine, counts.EVENTS)
    assert _counted(engine, counts.DELIVERIES) == _truth(engine, counts.DELIVERIES)
    # and folding again up to now keeps them equal
    counts.fold_all(engine, lag_seconds=0)
    assert _counted(engine, counts.EVENTS) == _truth(engine, counts.EVENTS)


def test_status_counts_sum_over_providers(engine: Engine) -> None:
    for provider in ("yoco", "smartpay"):
        insert_event(engine, provider=provider, status="succeeded", received_ago_s=DAY_S, done_after_s=1,
                     next_in_s=None)
    counts.fold_all(engine, lag_seconds=0)
    with engine.connect() as conn:
        assert counts.status_counts(conn) == {"succeeded": 2}


def _gauge(status: str) -> float | None:
    return REGISTRY.get_sample_value("payhooks_rows", {"table": "webhook_events", "status": status})


def test_gauges_recount_final_rows_only_when_they_changed(engine: Engine, settings, monkeypatch) -> None:
    recounts: list[str] = []
    real = counts.final_by_group
    monkeypatch.setattr(counts, "final_by_group",
                        lambda conn, counted: recounts.append(counted.table) or real(conn, counted))
    dispatcher = Dispatcher(settings, engine, publish=lambda task, ids: None)
    insert_event(engine, status="succeeded", received_ago_s=60, done_after_s=1, next_in_s=None)
    gone = insert_event(engine, status="succeeded", received_ago_s=30, done_after_s=1, next_in_s=None)
    insert_event(engine, status="pending")
    dispatcher.observe()
    assert _gauge("succeeded") == 2 and _gauge("pending") == 1 and recounts.count("webhook_events") == 1
    # Given nothing changed, later looks reuse the count (at most one more: an earlier test's
    # connection may flush its row statistics meanwhile, which moves the sign of change)
    for _ in range(3):
        dispatcher.observe()
    assert recounts.count("webhook_events") <= 2
    assert _gauge("succeeded") == 2 and _gauge("pending") == 1
    recounts.clear()
    # When a row becomes final now, the newest processed_at moves: counted at the next look
    insert_event(engine, status="dead", received_ago_s=5, done_after_s=1, next_in_s=None)
    dispatcher.observe()
    assert _gauge("dead") == 1 and recounts.count("webhook_events") == 1
    # When an older final row goes (no newer processed_at), Postgres' row statistics show it
    with engine.connect() as conn:
        conn.execute(text("DELETE FROM webhook_events WHERE id = :id"), {"id": gone})
        conn.commit()
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
    wait_for(lambda: dispatcher.observe() or _gauge("succeeded") == 1, timeout=20,
             message="the gauge to see the deleted row")


def test_open_rows_are_counted_through_the_partial_indexes_whatever_the_statistics_say(engine: Engine) -> None:
    # Given statistics analyzed while a backlog was pending, and the backlog since handled
    for _ in range(3):
        insert_event(engine, status="pending")
    execute(engine, "INSERT INTO webhook_events (provider, event_key, event_type, status, received_at, "
                    "next_attempt_at, livemode, raw_body, headers, payload) SELECT 'yoco', 'backlog-' || g, "
                    "'payment.succeeded', 'pending', now(), now(), false, '\\x7b7d', '{}', '{}' "
                    "FROM generate_series(1, 20000) g")
    execute(engine, "ANALYZE webhook_events")
    execute(engine, "UPDATE webhook_events SET status = 'ignored', processed_at = now(), next_attempt_at = NULL "
                    "WHERE event_key LIKE 'backlog-%'")
    seq_scans = "SELECT pg_stat_get_xact_numscans(CAST('webhook_events' AS regclass))"  # this backend's, so far
    with engine.connect() as conn, conn.begin():
        # When the open rows are counted, then no sequential scan ran and the planner settings are back
        before = conn.execute(text(seq_scans)).scalar_one()
        assert counts.open_by_group(conn) == {"yoco": {"pending": 3}}
        assert conn.execute(text(seq_scans)).scalar_one() == before
        assert conn.execute(text("SELECT current_setting('enable_seqscan')")).scalar_one() == "on"
