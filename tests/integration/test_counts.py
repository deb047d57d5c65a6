"""Counts by status from tallies plus index ranges stay equal to a full GROUP BY through every change."""
from __future__ import annotations

from sqlalchemy import Engine, text

from models import counts, deliveries, transitions
from tests.integration.ops_data import insert_delivery, insert_event
from tests.integration.stack import create_order, scalar

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
