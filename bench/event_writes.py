"""What one event's life writes to webhook_events, per schema variant: exact index entries, HOT, WAL.

    python -m bench.event_writes [--events 5000] [--variants main,head,head-ff100,head-ff70]

No processes, no broker: a fresh database per variant, then the pipeline's own
statements in the pipeline's order, batch after batch: the receiver's INSERT
(:func:`models.ingest.store_batch`, 50 events), the dispatcher's claim
(:func:`models.transitions.claim_due`), the worker's claim
(:func:`~models.transitions.claim_batch`) and its final statuses
(:func:`~models.transitions.finish_batch`), each its own transaction. Index
entries are counted from the WAL (:func:`bench.table_stats.wal_writes`), so
the figures are exact and the same on a busy machine. Variants:

* ``main``: the schema before 0007 (``alembic`` at ``0006_incidents``);
* ``head``: this checkout's schema;
* ``head-ffN``: head with ``fillfactor = N``;
* ``worktable``: the other design evaluated for issue 15 (not built): the
  work-queue state in a narrow table of its own, ``event_work`` (a row per
  non-final event, inserted at ingest, deleted when final, with the due and
  lease partial indexes), and ``webhook_events`` updated once, when final
  (fillfactor 100, no due/lease index). Its statements are written here in
  SQL, the same shape as the pipeline's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import psycopg
from sqlalchemy import text

from bench.table_stats import TableStats
from models import transitions
from models.db import make_engine, normalise_url
from models.ingest import EventRow, store_batch
from models.migrate import upgrade
from models.settings import Settings
from testkit.postgres import admin_conninfo, create_database, drop_database

REVISIONS = {"main": "0006_incidents", "head": "head", "worktable": "head"}
WORKTABLE = [
    "ALTER TABLE webhook_events SET (fillfactor = 100)",
    "DROP INDEX ix_webhook_events_due", "DROP INDEX ix_webhook_events_lease",
    "ALTER TABLE webhook_events DROP CONSTRAINT ck_webhook_events_due_mark",
    "ALTER TABLE webhook_events DROP CONSTRAINT ck_webhook_events_lease_mark",
    """CREATE TABLE event_work (event_id bigint PRIMARY KEY, status varchar(16) NOT NULL,
                                attempts int NOT NULL DEFAULT 0, next_attempt_at timestamptz,
                                lease_expires_at timestamptz)""",
    "CREATE INDEX ix_event_work_due ON event_work (next_attempt_at) WHERE status IN ('pending', 'retrying')",
    "CREATE INDEX ix_event_work_lease ON event_work (lease_expires_at) WHERE status IN ('queued', 'processing')",
]
WORK_INSERT = "INSERT INTO event_work (event_id, status, next_attempt_at) SELECT id, 'pending', now() FROM unnest(:ids) id"
WORK_DISPATCH = """
    UPDATE event_work SET status = 'queued', next_attempt_at = NULL,
           lease_expires_at = clock_timestamp() + interval '120 seconds'
     WHERE event_id IN (SELECT event_id FROM event_work WHERE status IN ('pending', 'retrying')
                           AND next_attempt_at <= clock_timestamp() ORDER BY next_attempt_at
                         LIMIT :n FOR UPDATE SKIP LOCKED)
    RETURNING event_id"""
WORK_CLAIM = """
    WITH held AS (UPDATE event_work SET status = 'processing', attempts = attempts + 1
                   WHERE event_id = ANY(:ids) AND status = 'queued' RETURNING event_id, attempts)
    SELECT e.id, held.attempts, e.provider, e.event_type, e.payload FROM held JOIN webhook_events e ON e.id = held.event_id"""
WORK_FINISH = """
    WITH gone AS (DELETE FROM event_work WHERE event_id = ANY(:ids) AND status = 'processing'
                  RETURNING event_id, attempts)
    , done AS (
    UPDATE webhook_events e SET status = 'succeeded', attempts = gone.attempts, processed_at = clock_timestamp(),
           next_attempt_at = NULL, order_id = e.id, last_error = NULL
      FROM gone WHERE e.id = gone.event_id
    RETURNING e.id, e.attempts)
    INSERT INTO event_attempts (event_id, number, started_at, outcome, worker)
    SELECT id, attempts, clock_timestamp(), 'succeeded', 'w' FROM done
    RETURNING event_id"""
INGEST_BATCH = 50
WORK_BATCH = 100


def _rows(n0: int, count: int) -> list[EventRow]:
    rows = []
    for n in range(n0, n0 + count):
        payload = {"id": f"evt_{n}", "type": "payment.succeeded", "createdDate": "2026-11-27T14:00:00Z",
                   "payload": {"id": f"p_{n}", "amount": 1000 + n, "currency": "ZAR", "status": "succeeded",
                               "metadata": {"checkoutId": f"ch_{n:020d}", "reference": f"ORD-{n}"}}}
        body = json.dumps(payload).encode()
        rows.append(EventRow(provider="yoco", event_key=f"evt_{n}", event_type="payment.succeeded", livemode=False,
                             raw_body=body, headers={"content-type": "application/json", "webhook-id": f"msg_{n}",
                                                     "webhook-signature": "[redacted]"},
                             payload=payload, secret_index=0, verify_method="hmac", payload_is_body=True))
    return rows


def _worktable_batch(engine) -> int:  # noqa: ANN001
    with engine.begin() as conn:
        ids = [r.event_id for r in conn.execute(text(WORK_DISPATCH), {"n": WORK_BATCH})]
    with engine.begin() as conn:
        held = [r.id for r in conn.execute(text(WORK_CLAIM), {"ids": ids})]
    with engine.begin() as conn:
        return len(conn.execute(text(WORK_FINISH), {"ids": held}).all())


def run_variant(server_url: str, variant: str, *, events: int) -> dict:
    base, _, fill = variant.partition("-ff")
    server_url = normalise_url(server_url)
    name, url = create_database(server_url, prefix="payhooks_event_writes")
    engine = make_engine(Settings(_env_file=None, database_url=url))
    try:
        upgrade(engine, REVISIONS[base])
        with engine.begin() as conn:
            if fill:
                conn.execute(text(f"ALTER TABLE webhook_events SET (fillfactor = {int(fill)})"))
            for statement in WORKTABLE if base == "worktable" else []:
                conn.execute(text(statement))
        stats = TableStats(engine).start()
        ingest = psycopg.connect(**admin_conninfo(url))  # autocommit (admin_conninfo)
        done = 0
        for start in range(0, events, WORK_BATCH):
            for part in range(start, min(start + WORK_BATCH, events), INGEST_BATCH):
                stored = store_batch(ingest, _rows(part, min(INGEST_BATCH, events - part)))
                if base == "worktable":  # in that design, part of the ingest statement
                    with engine.begin() as conn:
                        conn.execute(text(WORK_INSERT), {"ids": [r.id for r in stored]})
            if base == "worktable":
                done += _worktable_batch(engine)
                continue
            with engine.begin() as conn:
                ids = transitions.claim_due(conn, batch_size=WORK_BATCH, lease_seconds=120)
            with engine.begin() as conn:
                claims = [c for c, _ in transitions.claim_batch(conn, ids, lease_seconds=120, worker="w")]
            with engine.begin() as conn:
                finished = transitions.finish_batch(conn, [
                    transitions.Outcome(claim=c, status="succeeded", order_id=c.event_id) for c in claims],
                    worker="w")
            done += len(finished)
        ingest.close()
        writes = stats.stop(events=events)
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_table_size('webhook_events')")).scalar_one()
    finally:
        engine.dispose()
        drop_database(server_url, name)
    events_table = dict(writes["tables"]["webhook_events"])
    work = writes["tables"].get("event_work") or {}
    if work.get("index_entries_per_event"):  # the work table's writes are the event's too
        events_table["index_entries_per_event"] = round(events_table.get("index_entries_per_event", 0)
                                                        + work["index_entries_per_event"], 2)
        events_table["index_entries_by_index"] = {**events_table.get("index_entries_by_index", {}),
                                                  **work.get("index_entries_by_index", {})}
    updates = events_table.get("wal_updates", events_table["updates"])
    hot = events_table.get("wal_hot_updates", events_table["hot_updates"])
    return {"variant": variant, "finished": done, "updates": updates, "hot_updates": hot,
            "hot_pct": round(100 * hot / max(updates, 1), 1),
            "index_entries_per_event": events_table.get("index_entries_per_event"),
            "by_index": events_table.get("index_entries_by_index"),
            "wal_bytes_per_event": writes.get("wal_bytes_per_event"), "heap_bytes_per_event": round(size / events)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.event_writes", description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default=os.environ.get("PAYHOOKS_TEST_DATABASE_URL",
                                                               "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--variants", default="main,head,head-ff100,head-ff70")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [run_variant(args.server_url, v.strip(), events=args.events) for v in args.variants.split(",")]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0 if all(r["finished"] == args.events for r in results) else 1
    for r in results:
        print(f"{r['variant']:11} {r['finished']} events: {r['updates']} updates, {r['hot_updates']} HOT "
              f"({r['hot_pct']} %), {r['index_entries_per_event']} index entries/event, "
              f"WAL {r['wal_bytes_per_event']} bytes/event, heap {r['heap_bytes_per_event']} bytes/event "
              "(before any vacuum)")
        print(f"{'':11} {r['by_index']}")
    ok = all(r["finished"] == args.events for r in results)
    print("result:      OK" if ok else "result:      FAILED (an event did not finish)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
