"""What an extra index on webhook_events costs every insert: the same rows, with and without it, same run.

    python -m bench.insert_index_cost [--server-url URL] [--rounds 6]

A fresh migrated database; 60 transactions of 1,000 rows (the shape of a group
commit) per variant and round, the variants' order rotated each round. Prints
the median per variant and its ratio to no extra index. Used to decide that
the console keeps no index of its own on webhook_events.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time

import psycopg
from sqlalchemy.engine import make_url

from models.db import make_engine, normalise_url
from models.migrate import upgrade
from models.settings import Settings

VARIANTS = {"none": [], "provider": ["(provider, received_at)"],
            "provider+type": ["(provider, received_at)", "(event_type, received_at)"]}
INSERT = """INSERT INTO webhook_events (provider, event_key, event_type, raw_body, headers, payload)
SELECT (ARRAY['yoco','smartpay','processout','senfenico','shadhinpay'])[1 + g %% 5], %s || g, 'payment.succeeded',
       convert_to(repeat('x', 300), 'UTF8'), '{"content-type": "application/json"}', '{"id": 1}'
  FROM generate_series(1, 1000) g"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-url", default=os.environ.get("PAYHOOKS_TEST_DATABASE_URL",
                                                               "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    server = make_url(normalise_url(args.server_url))
    admin = dict(host=server.host, port=server.port or 5432, user=server.username, dbname="postgres",
                 autocommit=True)
    name = f"payhooks_index_cost_{secrets.token_hex(3)}"
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(Settings(_env_file=None, database_url=url))
        upgrade(engine)
        engine.dispose()
        results: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        names = list(VARIANTS)
        with psycopg.connect(**{**admin, "dbname": name}) as conn:
            for round_ in range(args.rounds):
                for variant in names[round_ % len(names):] + names[:round_ % len(names)]:
                    for n in range(2):
                        conn.execute(f"DROP INDEX IF EXISTS bench_extra_{n}")
                    for n, columns in enumerate(VARIANTS[variant]):
                        conn.execute(f"CREATE INDEX bench_extra_{n} ON webhook_events {columns}")
                    started = time.perf_counter()
                    for batch in range(60):
                        conn.execute(INSERT, (f"r{round_}{variant}b{batch}_",))
                    results[variant].append(time.perf_counter() - started)
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    base = statistics.median(results["none"])
    for variant, runs in results.items():
        median = statistics.median(runs)
        print(f"extra index {variant:14} 60k rows in 60 transactions: median {median * 1000:7.0f} ms, "
              f"ratio {median / base:.3f}")
    print("result: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
