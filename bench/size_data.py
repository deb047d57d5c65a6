"""Filling a database with a history of final events by SQL, and the plans of the operator queries.

:func:`fill` writes ``rows`` final events spread over ``days`` of history
(succeeded 90 %, ignored 7 %, dead 3 %, five providers), each with its
dedup key, one attempt (dead ones: the error), and for every other
succeeded event an email delivery with one try: about what a year of a busy
shop looks like per day, in chunks of ``chunk`` rows so progress shows and no
transaction grows huge. Then ``VACUUM ANALYZE`` (what autovacuum would have
done to rows this old) and a fresh fold of the status tallies, as the
housekeeper does when it first meets a database.
"""
from __future__ import annotations

import gzip
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.summary import scalar
from models import counts
from testkit.processes import log

_FIRST_ID = re.compile(r'"id" ?: ?(\d+)')
_FILL = """
WITH g AS (
    SELECT n, nextval('webhook_events_id_seq') AS id,
           (ARRAY['smartpay', 'processout', 'senfenico', 'yoco', 'shadhinpay'])[1 + n % 5] AS provider,
           CASE WHEN n % 100 < 90 THEN 'succeeded' WHEN n % 100 < 97 THEN 'ignored' ELSE 'dead' END AS status,
           COALESCE(CAST(:end_at AS timestamptz), now()) - make_interval(secs => CAST(:span_s AS float8)
               * (1 - (n - CAST(:first AS bigint))::float8 / CAST(:rows AS float8))) AS at
      FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS n),
e AS (
    INSERT INTO webhook_events (id, provider, event_key, event_type, status, attempts, next_attempt_at,
                                received_at, processed_at, livemode, raw_body, headers, payload,
                                secret_index, verify_method, last_error)
    SELECT id, provider, 'fill_' || n, 'payment.succeeded', status, CASE status WHEN 'dead' THEN 7 ELSE 1 END,
           NULL, at, at + interval '180 milliseconds', false, convert_to(body, 'UTF8'),
           jsonb_build_object('content-type', 'application/json', 'user-agent', 'provider-webhooks/2.1',
                              'webhook-id', 'msg_' || n, 'webhook-signature', '[redacted]'),
           body::jsonb, 0, 'hmac', CASE status WHEN 'dead' THEN 'order not found' END
      FROM (SELECT g.*, json_build_object(
                'id', 'fill_' || n, 'type', 'payment.succeeded', 'createdDate', at,
                'payload', json_build_object('id', 'p_' || md5(n::text), 'type', 'payment', 'amount', 1000 + n % 90000,
                    'currency', 'ZAR', 'status', 'succeeded', 'mode', 'test',
                    'metadata', json_build_object('checkoutId', 'ch_' || md5(n::text || 'c'),
                        'productType', 'checkout', 'customer', 'cust_' || (n % 50000)),
                    'createdDate', at, 'fingerprint', md5(n::text || 'f') || md5(n::text || 'g')))::text AS body
              FROM g) b
    RETURNING id, provider, event_key, status, received_at, processed_at),
k AS (
    INSERT INTO event_keys (provider, event_key, event_id, received_at)
    SELECT provider, event_key, id, received_at FROM e),
a AS (
    INSERT INTO event_attempts (event_id, number, started_at, finished_at, outcome, error, worker)
    SELECT id, 1, processed_at - interval '20 milliseconds', processed_at,
           CASE status WHEN 'succeeded' THEN 'succeeded' WHEN 'ignored' THEN 'ignored' ELSE 'dead' END,
           CASE status WHEN 'dead' THEN 'order not found' END, 'worker@bench:1' FROM e),
d AS (
    INSERT INTO deliveries (event_id, order_id, handler, kind, status, payload, attempts, next_attempt_at,
                            created_at, updated_at, processed_at)
    SELECT id, 0, 'fulfilment', 'email', 'succeeded',
           jsonb_build_object('to', 'customer@example.com', 'subject', 'Your order'), 1, NULL,
           processed_at, processed_at, processed_at + interval '2 seconds'
      FROM e WHERE status = 'succeeded' AND id % 2 = 0
    RETURNING id, processed_at)
INSERT INTO delivery_attempts (delivery_id, number, started_at, finished_at, outcome, response_code, response,
                               duration_ms, worker)
SELECT id, 1, processed_at - interval '300 milliseconds', processed_at, 'succeeded', 250, '250 2.0.0 Ok: queued',
       300, 'worker@bench:1' FROM d"""


def fill(engine: Engine, *, rows: int, days: float, chunk: int = 250_000) -> dict[str, Any]:
    """Insert the history; returns the seconds it took and the database size."""
    started = time.monotonic()
    fill_span(engine, first=0, rows=rows, end_at=None, span_s=days * 86400, chunk=chunk,
              progress=lambda done: log(f"filled {done:,} of {rows:,} events "
                                        f"({done / max(time.monotonic() - started, 0.001):,.0f}/s)"))
    filled_s = time.monotonic() - started
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("webhook_events", "event_attempts", "deliveries", "delivery_attempts", "event_keys"):
            conn.execute(text(f"VACUUM (ANALYZE) {table}"))
        conn.execute(text("CHECKPOINT"))  # the fill's dirty pages written now, not during the ingest rounds
    vacuum_s = time.monotonic() - started - filled_s
    fold_started = time.monotonic()
    with engine.begin() as conn:  # rows were written with past timestamps: fold from scratch
        conn.execute(text("DELETE FROM status_tallies"))
        conn.execute(text("DELETE FROM tally_marks"))
    folded = counts.fold_all(engine, lag_seconds=counts.MIN_FOLD_LAG_SECONDS, budget_seconds=3600)
    return {"rows": rows, "fill_s": round(filled_s, 1), "vacuum_s": round(vacuum_s, 1),
            "first_fold_s": round(time.monotonic() - fold_started, 1), "folded": folded,
            "database_bytes": scalar(engine, "SELECT pg_database_size(current_database())")}


def fill_span(engine: Engine, *, first: int, rows: int, end_at: datetime | None, span_s: float,
              chunk: int = 50_000, progress: Callable[[int], None] | None = None) -> None:
    """``rows`` more final events (numbers ``first`` …, so keys stay unique), processed over the
    ``span_s`` seconds before ``end_at`` (None: now): one simulated day of `bench.size_steady`."""
    with engine.begin() as conn:  # deliveries name an order: one placeholder order, id 0
        conn.execute(text("INSERT INTO orders (id, reference, provider, provider_payment_ref, amount, currency, "
                          "status) VALUES (0, 'BENCH-FILL', 'yoco', 'ch_fill', 1000, 'ZAR', 'paid') "
                          "ON CONFLICT DO NOTHING"))
    for lo in range(first, first + rows, chunk):
        hi = min(first + rows, lo + chunk) - 1
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(text(_FILL), {"lo": lo, "hi": hi, "rows": rows, "span_s": span_s, "first": first,
                                       "end_at": end_at})
        if progress is not None:
            progress(hi + 1 - first)


def archived(directory: Path) -> tuple[int, int]:
    """(lines, distinct event ids) of the prune archives in ``directory``."""
    lines, ids = 0, set()
    for path in directory.glob("events-*.jsonl.gz"):
        with gzip.open(path, "rt") as handle:
            for line in handle:
                lines += 1
                ids.add(int(_FIRST_ID.search(line).group(1)))  # the event's id comes before any nested one
    return lines, len(ids)


def table_bytes(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": t}).scalar_one()
                for t in ("webhook_events", "event_attempts", "deliveries", "delivery_attempts", "event_keys")}


def plans(engine: Engine, *, event_id: int) -> dict[str, str]:
    """EXPLAIN of every operator query on the filled table: each must be an index (or index-only) scan."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy.dialects import postgresql

    from models.queries.events import EventFilter, list_events

    queries = {
        "stats: final since the tally mark": (
            "SELECT provider, final_status, count(*) FROM webhook_events "
            "WHERE final_status IN ('succeeded', 'dead', 'ignored') AND (processed_at >= now() - interval '3 minutes' OR processed_at IS NULL) GROUP BY 1, 2"),
        "stats: deliveries due": (
            "SELECT kind, status, count(*) FROM deliveries WHERE status IN ('pending', 'retrying') GROUP BY 1, 2"),
        "stats: deliveries leased": (
            "SELECT kind, status, count(*) FROM deliveries WHERE status IN ('queued', 'sending') GROUP BY 1, 2"),
        "sweeper: expired delivery leases": (
            "SELECT id FROM deliveries WHERE status = 'queued' AND lease_expires_at < clock_timestamp() LIMIT 200"),
        "dispatcher: due events": (
            "SELECT id FROM webhook_events WHERE status IN ('pending', 'retrying') "
            "AND next_attempt_at <= clock_timestamp() ORDER BY next_attempt_at LIMIT 200"),
        "dispatcher: oldest unhandled": (
            f"SELECT LEAST((SELECT min(received_at) FROM webhook_events WHERE {counts.EVENTS.open_where(0)}), "
            f"(SELECT min(received_at) FROM webhook_events WHERE {counts.EVENTS.open_where(1)}))"),
        "stats: events due": (
            f"SELECT provider, status, count(*) FROM webhook_events WHERE {counts.EVENTS.open_where(0)} "
            "GROUP BY 1, 2"),
        "stats: events leased": (
            f"SELECT provider, status, count(*) FROM webhook_events WHERE {counts.EVENTS.open_where(1)} "
            "GROUP BY 1, 2"),
        "stats: dead in 24 h": (
            "SELECT count(*) FROM webhook_events WHERE final_status = 'dead' AND processed_at >= now() - interval '24 hours'"),
        "stats: latency last hour": (
            "SELECT count(*), percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - "
            "received_at)) FROM webhook_events WHERE final_status IN ('succeeded', 'ignored') "
            "AND processed_at >= now() - interval '60 minutes'"),
        "stats: due retries": (
            "SELECT count(*) FROM webhook_events WHERE status = 'retrying' AND next_attempt_at <= now()"),
        "events show": f"SELECT * FROM webhook_events WHERE id = {event_id}",
        "events show: attempts": f"SELECT * FROM event_attempts WHERE event_id = {event_id}",
        "events show: deliveries": f"SELECT * FROM deliveries WHERE event_id = {event_id}",
        "events show --key": (  # models.queries.events.find_event_id: through the dedup keys' primary key
            "SELECT e.id FROM webhook_events e JOIN event_keys k ON k.event_id = e.id "
            "WHERE k.provider = 'yoco' AND k.event_key = 'fill_3'"),
        "retention: candidates": (
            "SELECT e.id FROM webhook_events e WHERE e.final_status IN ('succeeded', 'dead', 'ignored') "
            "AND e.processed_at < now() - interval '20 days' ORDER BY e.processed_at LIMIT 1000"),
        "sweeper: expired event leases": (
            "SELECT id FROM webhook_events WHERE status = 'queued' AND lease_expires_at < clock_timestamp() LIMIT 200"),
        "dedup: key lookup": "SELECT event_id FROM event_keys WHERE provider = 'yoco' AND event_key = 'fill_3'",
    }
    since = datetime.now(UTC) - timedelta(hours=1)
    statements: dict[str, tuple[str, dict[str, Any]]] = {name: (sql, {}) for name, sql in queries.items()}
    for name, selection in {
        "events list --status dead --since 1h": EventFilter(statuses=("dead",), since=since),
        "events list --provider yoco": EventFilter(providers=("yoco",)),
        "events list (no filter)": EventFilter(),
        "events list --status pending": EventFilter(statuses=("pending",)),
        "events list --status processing": EventFilter(statuses=("processing",)),
        "events list --status succeeded": EventFilter(statuses=("succeeded",)),
    }.items():
        captured: list[Any] = []

        class _Capture:
            def execute(self, query, *args, **kwargs):  # noqa: ANN001
                captured.append(query)
                return []

        list_events(_Capture(), selection, limit=50)  # type: ignore[arg-type]
        compiled = captured[0].compile(dialect=postgresql.psycopg.dialect(),
                                       compile_kwargs={"render_postcompile": True})
        statements[name] = (compiled.string, dict(compiled.params))
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for name, (sql, params) in statements.items():
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql,
                                        params).scalars()
            out[name] = "\n".join(rows)
    return out


def query_seconds(engine: Engine, *, event_id: int) -> dict[str, float]:
    """The database part of each operator command, in this process (no interpreter start-up)."""
    from datetime import UTC, datetime, timedelta

    from models.queries.events import EventFilter, event_record, list_events
    from models.stats import collect

    def timed(work) -> float:  # noqa: ANN001
        took = []
        for _ in range(3):
            started = time.monotonic()
            with engine.connect() as conn:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    work(conn)
            took.append(time.monotonic() - started)
        return round(sorted(took)[1], 4)

    since = datetime.now(UTC) - timedelta(hours=1)
    return {"stats": timed(collect),
            "events list": timed(lambda c: list_events(c, EventFilter(statuses=("dead",), since=since), limit=50)),
            "events show": timed(lambda c: event_record(c, event_id))}
