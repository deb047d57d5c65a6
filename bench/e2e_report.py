"""``bench.e2e``'s figures, read back from the database, its checks and its readable report.

Events of the run are the rows with ``id > min_id`` (the warm-up's rows are
below); orders of the run are those whose reference starts with the run's
prefix. Latencies come from the rows themselves: ``processed_at - received_at``.
The report is a few readable lines (``--json`` prints the dict itself).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from bench.summary import cpu_line, seconds, verdict
from testkit.load import SendResult

FINAL = ("succeeded", "ignored", "dead")

_RECEIVE_TO_DONE = text("""
    SELECT EXTRACT(EPOCH FROM processed_at - received_at)::float8
    FROM webhook_events WHERE id > :min_id AND processed_at IS NOT NULL
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


def collect(engine: Engine, *, min_id: int, prefix: str, result: SendResult, all_final: bool) -> dict[str, Any]:
    params = {"min_id": min_id, "prefix": prefix.replace("_", r"\_") + "%"}
    with engine.connect() as conn:
        statuses = dict(conn.execute(
            text("SELECT status, count(*) FROM webhook_events WHERE id > :min_id GROUP BY status"), params).all())
        receive_to_done = list(conn.execute(_RECEIVE_TO_DONE, params).scalars())
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
        "receive_to_done_s": seconds(receive_to_done),
        "receive_span_s": round(last_received - first_received, 3) if first_received else None,
        "orders": orders,
    }


def _end_to_end(result: SendResult, statuses: dict[str, int], last_processed: float | None,
                all_final: bool) -> dict[str, Any]:
    """From the first POST to the last ``processed_at``: the run's time, when every event got there."""
    final = sum(statuses.get(s, 0) for s in FINAL)
    took = (last_processed - result.started_wall) if last_processed else None
    return {
        "final_events": final,
        "all_final": all_final,
        "first_post_to_last_processed_s": round(took, 3) if took else None,
        "first_post_to_all_final_s": round(took, 3) if took and all_final else None,
        "events_per_s": round(final / took, 1) if took else None,
    }


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
    return problems


def render(figures: dict[str, Any]) -> str:
    if "send" not in figures:
        return _verdict(figures)
    f, o, r = figures, figures["orders"], figures["receive_to_done_s"]
    mix = ", ".join(f"{p} {n}" for p, n in f["providers"].items())
    lines = [
        (f"payhooks e2e — mode {f['mode']}, {f['events']} events ({mix}), concurrency {f['concurrency']}, "
         f"rate {f['offered_rate'] or 'max'}, worker {f['worker_args']}, serve {f['serve_args']}, "
         f"code {f.get('code', '(this checkout)')}"),
        _send(f["send"], f.get("offered_rate")), _end_to_end_line(f), _statuses(f),
        (f"receive→done (processed_at - received_at): p50 {r['p50']} s, p90 {r['p90']} s, "
         f"p99 {r['p99']} s, max {r['max']} s, mean {r['mean']} s"),
        (f"orders:      {o['orders']} of {f['events']}; paid {o['paid']}; exactly one fulfilment "
         f"{o['fulfilment_once']} (missing {o['fulfilment_missing']}, duplicated {o['fulfilment_duplicated']}); "
         f"one confirmation email {o['confirmation_email_once']}; one event {o['one_event']}; "
         f"unexpected deliveries {o['other_deliveries']}; delivery statuses {o['delivery_statuses']}"),
        *_cpu(f.get("cpu") or {}), _writes(f.get("writes") or {}), _verdict(f),
    ]
    return "\n".join(line for line in lines if line)


def _send(s: dict[str, Any], offered: float | None) -> str:
    ms = s["client_latency_ms"]
    line = (f"send:        {s['sent']} sent, {s['accepted']} accepted in {s['duration_s']:.2f} s = "
            f"{s['rate_per_s']} events/s (answer p50 {ms['p50']} ms, p99 {ms['p99']} ms, max {ms['max']} ms; "
            f"generator CPU {s['generator_cpu_pct_of_one_core']} % of one core)")
    if offered:
        line += f"; offered {offered:g}/s, worst lateness {s['max_lateness_s'] or 0} s"
    return line


def _end_to_end_line(f: dict[str, Any]) -> str:
    e = f["end_to_end"]
    if not e["all_final"]:
        return (f"end to end:  NOT all final within the timeout: {e['final_events']} of {f['events']} final, "
                f"the last {e['first_post_to_last_processed_s']} s after the first POST")
    return (f"end to end:  {e['final_events']} final {e['first_post_to_all_final_s']} s after the first POST "
            f"= {e['events_per_s']} events/s (events received over {f['receive_span_s']} s)")


def _statuses(f: dict[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(f["statuses"].items()))
    line = f"statuses:    {counts}; events retried: {f['retried_events']}"
    for sample in f["not_succeeded_samples"]:
        line += f"\n  {sample['n']} × {sample['status']} {sample['provider']}: {sample['error']!r}"
    return line


def _cpu(c: dict[str, Any]) -> list[str]:
    if not c:
        return []
    top = ", ".join(f"{name} {pct}" for name, pct in c["top_processes"].items())
    return [cpu_line(c, indent="cpu:         ", peaks=True), f"busiest:     {top}"]


def _writes(w: dict[str, Any]) -> str:
    if not w:
        return ""

    def entries(t: dict[str, Any]) -> str:
        exact = f"{t['index_entries_per_event']} index entries/event (from the WAL), " \
            if "index_entries_per_event" in t else ""
        return (f"{exact}≤ {t['index_entries_ceiling_per_event']} ({t['indexes']} indexes, "
                f"{t['partial_indexes']} partial)")

    def updates(t: dict[str, Any]) -> str:  # the WAL's count when there is one: the statistics may lag
        if "wal_updates" in t:
            return f"{t['wal_updates']} upd of which {t['wal_hot_updates']} HOT (from the WAL)"
        return f"{t['updates']} upd of which {t['hot_updates']} HOT"

    tables = "; ".join(
        f"{name} {t['inserts']} ins, {updates(t)}, {entries(t)}"
        for name, t in w["tables"].items() if t["inserts"] or t["updates"])
    line = f"writes:      {tables}; WAL ≤ {w['wal_bytes_per_event_ceiling']} bytes/event (whole cluster)"
    if "wal_bytes_per_event" in w:
        line += (f"; this database: {w['index_entries_per_event']} index entries/event, "
                 f"WAL records {w['wal_bytes_per_event']} bytes/event")
    busiest = sorted(((n, name) for t in w["tables"].values()
                      for name, n in (t.get("index_entries_by_index") or {}).items()), reverse=True)
    if busiest:
        line += "\nindexes:     " + ", ".join(f"{name} {n}" for n, name in busiest)
    return line


def _verdict(f: dict[str, Any]) -> str:
    return verdict([] if f.get("ok") else f.get("problems") or ["unknown"], f.get("log_dir"), width=13, ok="OK")
