"""What a run did, read back from the database: statuses, latencies, effects per order.

Events of the run are the rows with ``id > min_id`` (the warm-up's rows are
below); orders of the run are those whose reference starts with the run's
prefix. Latencies come from the rows themselves: ``processed_at - received_at``.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from testkit.load import SendResult

FINAL = ("succeeded", "ignored", "dead")

_LATENCY = text("""
    SELECT percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY d), max(d), avg(d)
    FROM (SELECT EXTRACT(EPOCH FROM processed_at - received_at)::float8 AS d
          FROM webhook_events WHERE id > :min_id AND processed_at IS NOT NULL) AS s
""")

_SPAN = text("""
    SELECT EXTRACT(EPOCH FROM min(received_at))::float8, EXTRACT(EPOCH FROM max(received_at))::float8,
           EXTRACT(EPOCH FROM max(processed_at))::float8, count(*) FILTER (WHERE attempts > 1)
    FROM webhook_events WHERE id > :min_id
""")

_NOT_SUCCEEDED = text("""
    SELECT status, provider, left(coalesce(last_error, ''), 200) AS error, count(*) AS n
    FROM webhook_events WHERE id > :min_id AND status <> 'succeeded'
    GROUP BY 1, 2, 3 ORDER BY n DESC LIMIT 10
""")

_ORDERS = text("""
    WITH d AS (SELECT order_id, kind, count(*) AS n FROM deliveries GROUP BY order_id, kind),
         e AS (SELECT order_id, count(*) AS n FROM webhook_events WHERE id > :min_id GROUP BY order_id)
    SELECT count(*) AS orders,
           count(*) FILTER (WHERE o.status = 'paid') AS paid,
           count(*) FILTER (WHERE coalesce(f.n, 0) = 1) AS fulfilment_once,
           count(*) FILTER (WHERE f.n IS NULL) AS fulfilment_missing,
           count(*) FILTER (WHERE f.n > 1) AS fulfilment_duplicated,
           count(*) FILTER (WHERE coalesce(m.n, 0) = 1) AS confirmation_email_once,
           count(*) FILTER (WHERE coalesce(e.n, 0) = 1) AS one_event
    FROM orders o
    LEFT JOIN d f ON f.order_id = o.id AND f.kind = 'fulfilment'
    LEFT JOIN d m ON m.order_id = o.id AND m.kind = 'email.order_confirmation'
    LEFT JOIN e ON e.order_id = o.id
    WHERE o.reference LIKE :prefix
""")

_OTHER_DELIVERIES = text("""
    SELECT count(*) FROM deliveries d JOIN orders o ON o.id = d.order_id
    WHERE o.reference LIKE :prefix AND d.kind NOT IN ('fulfilment', 'email.order_confirmation')
""")

_DELIVERY_STATUSES = text("""
    SELECT d.status, count(*) FROM deliveries d JOIN orders o ON o.id = d.order_id
    WHERE o.reference LIKE :prefix GROUP BY d.status
""")


def progress(engine: Engine, min_id: int) -> tuple[int, int]:
    """(events stored, events final) of the run."""
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT count(*), count(*) FILTER (WHERE status IN ('succeeded', 'ignored', 'dead')) "
                 "FROM webhook_events WHERE id > :min_id"), {"min_id": min_id},
        ).one()
    return int(row[0]), int(row[1])


def collect(engine: Engine, *, min_id: int, prefix: str, result: SendResult, all_final: bool) -> dict[str, Any]:
    params = {"min_id": min_id, "prefix": prefix.replace("_", r"\_") + "%"}
    with engine.connect() as conn:
        statuses = dict(conn.execute(
            text("SELECT status, count(*) FROM webhook_events WHERE id > :min_id GROUP BY status"), params).all())
        quantiles, worst, mean = conn.execute(_LATENCY, params).one()
        first_received, last_received, last_processed, retried = conn.execute(_SPAN, params).one()
        not_succeeded = [dict(r._mapping) for r in conn.execute(_NOT_SUCCEEDED, params)]
        orders = dict(conn.execute(_ORDERS, params).one()._mapping)
        orders["other_deliveries"] = conn.execute(_OTHER_DELIVERIES, params).scalar_one()
        orders["delivery_statuses"] = dict(conn.execute(_DELIVERY_STATUSES, params).all())
    return {
        "send": result.figures(),
        "end_to_end": _end_to_end(result, statuses, last_processed, all_final),
        "statuses": statuses,
        "retried_events": retried,
        "not_succeeded_samples": not_succeeded,
        "receive_to_done_s": _latency(quantiles, worst, mean),
        "receive_span_s": round(last_received - first_received, 3) if first_received else None,
        "orders": orders,
    }


def _end_to_end(result: SendResult, statuses: dict[str, int], last_processed: float | None,
                all_final: bool) -> dict[str, Any]:
    """From the first POST to the last ``processed_at``: the run's time, when every event got there."""
    final = sum(statuses.get(s, 0) for s in FINAL)
    seconds = (last_processed - result.started_wall) if last_processed else None
    return {
        "final_events": final,
        "all_final": all_final,
        "first_post_to_last_processed_s": round(seconds, 3) if seconds else None,
        "first_post_to_all_final_s": round(seconds, 3) if seconds and all_final else None,
        "events_per_s": round(final / seconds, 1) if seconds else None,
    }


def _latency(quantiles: list[float] | None, worst: float | None, mean: float | None) -> dict[str, Any]:
    if not quantiles:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    p50, p90, p99 = (round(q, 3) for q in quantiles)
    return {"p50": p50, "p90": p90, "p99": p99, "max": round(worst, 3), "mean": round(mean, 3)}


def problems_in(figures: dict[str, Any]) -> list[str]:
    """Everything that makes the run a failure: lost, not succeeded, duplicated, or not finished."""
    events, send, orders = figures["events"], figures["send"], figures["orders"]
    problems = []
    if send["accepted"] != events:
        problems.append(f"{events - send['accepted']} of {events} events not accepted: {send['outcomes']}")
    stored = sum(figures["statuses"].values())
    if stored != events:
        problems.append(f"{stored} events stored for {events} sent (lost or duplicated)")
    if figures["statuses"].get("succeeded", 0) != events:
        problems.append(f"events not all succeeded: {figures['statuses']}")
    if not figures["wait"]["all_final"]:
        problems.append(f"not all final in time: {figures['wait']}")
    for key in ("paid", "fulfilment_once", "confirmation_email_once", "one_event"):
        if orders[key] != events:
            problems.append(f"orders {key}: {orders[key]} of {events}")
    if orders["fulfilment_duplicated"] or orders["other_deliveries"]:
        problems.append(f"duplicated effects: {orders['fulfilment_duplicated']} orders with >1 fulfilment, "
                        f"{orders['other_deliveries']} unexpected deliveries")
    teardown = figures.get("teardown", {})
    if teardown.get("leftover_pids") or teardown.get("up_exit_code", 0) != 0:
        problems.append(f"payhooks up did not stop cleanly: {teardown}")
    return problems
