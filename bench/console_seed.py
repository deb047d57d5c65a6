"""Fill a payhooks database with N events shaped like a month of traffic, for the console bench.

All in SQL (``generate_series``), in batches: events over 30 days in id order
(96 % succeeded, 2.5 % ignored, 1.5 % dead; the newest few thousand pending,
queued, processing or retrying), one order per ten events with its payment
transition, two deliveries with a try each per order, an attempt row for
every fifth event, and a thousand operator actions.
"""
from __future__ import annotations

from sqlalchemy import Engine, text

from models import counts

BATCH = 250_000
RECENT = 2_000
"""the newest events, still moving through the pipeline"""

_EVENTS = """
INSERT INTO webhook_events (provider, event_key, event_type, status, attempts, next_attempt_at, lease_expires_at,
                            received_at, processed_at, last_error, livemode, raw_body, headers, payload, secret_index,
                            verify_method, order_id)
SELECT p.provider, 'evt_' || g, p.provider || (ARRAY['.payment.succeeded', '.payment.failed', '.refund.succeeded',
                                                     '.checkout.completed'])[1 + g % 4],
       s.status, CASE WHEN s.status IN ('dead', 'retrying') THEN 3 ELSE 1 END,
       CASE WHEN s.status IN ('pending', 'retrying') THEN r.at + interval '5 seconds' END,
       CASE WHEN s.status IN ('queued', 'processing') THEN r.at + interval '120 seconds' END,
       r.at, CASE WHEN s.status IN ('succeeded', 'ignored', 'dead') THEN r.at + interval '2 seconds' END,
       CASE WHEN s.status IN ('dead', 'retrying') THEN 'order not found: ' || p.provider || ' payment pay_' || g END,
       false,
       convert_to(b.body::text, 'UTF8'),
       jsonb_build_object('content-type', 'application/json', 'user-agent', 'Provider-Webhooks/1.0',
                          'webhook-id', 'msg_' || g, 'webhook-signature', '[redacted]'),
       b.body, (g % 2), 'hmac-sha256', CASE WHEN g % 10 = 0 THEN g / 10 END
  FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g,
       LATERAL (SELECT (ARRAY['yoco', 'smartpay', 'processout', 'senfenico', 'shadhinpay'])[1 + (g * 7) % 5]
                       AS provider) AS p,
       LATERAL (SELECT now() - make_interval(secs => (CAST(:n AS double precision) - g) * 2592000.0 / :n) AS at) AS r,
       LATERAL (SELECT CASE
                  WHEN g > :n - :recent THEN (ARRAY['pending', 'queued', 'processing', 'retrying'])[1 + g % 4]
                  WHEN (g * 2654435761) % 1000 < 15 THEN 'dead'
                  WHEN (g * 2654435761) % 1000 < 40 THEN 'ignored'
                  ELSE 'succeeded' END AS status) AS s,
       LATERAL (SELECT jsonb_build_object('id', 'evt_' || g, 'type', 'payment.succeeded', 'created', 1764230400 + g,
                  'data', jsonb_build_object('amount', 1000 + g % 5000, 'currency', 'ZAR', 'reference', 'pay_' || g,
                                             'metadata', jsonb_build_object('note', repeat('x', 80)))) AS body) AS b
"""

_ORDERS = """
INSERT INTO orders (id, reference, provider, provider_payment_ref, amount, currency, customer_email, status,
                    created_at, updated_at, paid_at)
SELECT o, 'ORD-' || o, 'yoco', 'pay_' || (o * 10), 1000 + o % 5000, 'ZAR', 'buyer' || o || '@example.com', 'paid',
       e.received_at - interval '1 minute', e.received_at, e.received_at
  FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS o
  JOIN webhook_events e ON e.id = o * 10
"""

_REST = [
    """INSERT INTO order_transitions (order_id, event_id, from_status, to_status, note, at)
       SELECT id, id * 10, 'pending', 'paid', 'payment.succeeded', paid_at FROM orders
        WHERE id BETWEEN :lo AND :hi""",
    """INSERT INTO deliveries (event_id, order_id, handler, kind, status, payload, attempts, next_attempt_at,
                               created_at, updated_at, processed_at, last_error)
       SELECT o.id * 10, o.id, 'fulfilment', k.kind,
              CASE WHEN o.id % 97 = 0 THEN 'dead' ELSE 'succeeded' END, '{"to": "buyer@example.com"}', 1, NULL,
              o.paid_at, o.paid_at, o.paid_at + interval '1 second',
              CASE WHEN o.id % 97 = 0 THEN '550 mailbox unavailable' END
         FROM orders o, (VALUES ('fulfilment'), ('order_confirmation')) AS k(kind)
        WHERE o.id BETWEEN :lo AND :hi""",
    """INSERT INTO delivery_attempts (delivery_id, number, started_at, finished_at, outcome, response_code,
                                      response, duration_ms, worker)
       SELECT id, 1, processed_at - interval '1 second', processed_at,
              CASE WHEN status = 'dead' THEN 'dead' ELSE 'succeeded' END,
              CASE WHEN status = 'dead' THEN 550 ELSE 200 END, 'ok', 40, 'bench:1'
         FROM deliveries WHERE order_id BETWEEN :lo AND :hi""",
]

_ATTEMPTS = """
INSERT INTO event_attempts (event_id, number, started_at, finished_at, outcome, error, traceback, worker)
SELECT id, 1, received_at + interval '1 second', received_at + interval '2 seconds',
       CASE status WHEN 'succeeded' THEN 'succeeded' WHEN 'ignored' THEN 'ignored' WHEN 'dead' THEN 'dead'
                   ELSE 'failed' END,
       last_error, CASE WHEN last_error IS NOT NULL THEN 'Traceback (most recent call last):' END, 'bench:1'
  FROM webhook_events WHERE id BETWEEN :lo AND :hi AND (id % 5 = 0 OR status IN ('dead', 'retrying'))
"""


def seed(engine: Engine, *, events: int, progress=lambda message: None) -> None:
    """Insert ``events`` events and what hangs off them into an empty, migrated database."""
    params = {"n": events, "recent": min(RECENT, events // 10)}
    for lo in range(1, events + 1, BATCH):
        hi = min(events, lo + BATCH - 1)
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.execute(text(_EVENTS), {**params, "lo": lo, "hi": hi})
            conn.execute(text(_ATTEMPTS), {"lo": lo, "hi": hi})
        progress(f"events {hi}/{events}")
    orders = events // 10
    for lo in range(1, orders + 1, BATCH):
        hi = min(orders, lo + BATCH - 1)
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.execute(text(_ORDERS), {"lo": lo, "hi": hi})
            for statement in _REST:
                conn.execute(text(statement), {"lo": lo, "hi": hi})
        progress(f"orders {hi}/{orders}")
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('orders', 'id'), max(id)) FROM orders")
        conn.execute(text("""INSERT INTO operator_actions (actor, action, target, filter, count, detail, at)
                             SELECT 'ops' || (g % 7), 'replay', 'events',
                                    jsonb_build_object('ids', jsonb_build_array(g * 1000)), 1,
                                    'replayed 1 of 1 selected', now() - make_interval(hours => g)
                               FROM generate_series(1, 1000) AS g"""))
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("SET statement_timeout = 0")
        conn.exec_driver_sql("VACUUM (ANALYZE)")
    progress("vacuumed and analysed")
    # What the dispatcher's housekeeper does every few seconds in production: fold the final rows
    # into the status tallies, so counts read tallies plus the rows still in work.
    folded = counts.fold_all(engine, lag_seconds=counts.fold_lag_seconds(lease_seconds=120), budget_seconds=900)
    progress(f"folded {folded} final rows into the status tallies")
