"""Console pages at size: server time of every page on a database of N events, against a small one.

    python -m bench.console --events 5000000 [--baseline-events 10000] [--repeat 5] [--keep]

Each size gets its own database on the server (``payhooks_console_bench_<N>``),
seeded by :mod:`bench.console_seed` and kept with ``--keep`` for the next run.
Every page is rendered in-process through the real app (Flask, Jinja, the
query layer, Postgres); the time is the server's time for the request. Then
each SQL statement a page ran is EXPLAINed (ANALYZE, BUFFERS) at the large
size, and statements that scan ``webhook_events`` sequentially are named.
Prints a table of median/max per page at both sizes and the ratio; the exit
status is 0 unless something failed (targets are reported, not enforced).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import sys
import time
from typing import Any

import psycopg
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from bench.console_seed import seed
from models.db import make_engine, normalise_url
from models.migrate import upgrade
from models.settings import Settings
from testkit.postgres import admin_conninfo, drop_database
from testkit.processes import log

TARGET_MS = 300.0
TOKEN = "bench-console-token"


def prepare(server_url: str, events: int, *, keep: bool = True) -> str:
    """The URL of a migrated database holding ``events`` seeded events (kept ones are made once, reused after)."""
    name = f"payhooks_console_bench_{events}" + ("" if keep else f"_{os.getpid()}_{secrets.token_hex(3)}")
    with psycopg.connect(**admin_conninfo(server_url)) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(normalise_url(server_url)).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(Settings(_env_file=None, database_url=url, db_timeout_seconds=600))
    try:
        upgrade(engine)
        with engine.connect() as conn:
            have = conn.execute(text("SELECT count(*) FROM webhook_events")).scalar_one()
        if have != events:
            if have:
                raise SystemExit(f"{name} holds {have} events, not {events}: drop it first")
            started = time.monotonic()
            seed(engine, events=events, progress=lambda m: log(f"{name}: {m}"))
            log(f"{name}: seeded in {time.monotonic() - started:.0f} s")
    finally:
        engine.dispose()
    return url


def pages(engine: Engine) -> dict[str, str]:
    """The paths to time, with ids taken from this database."""
    with engine.connect() as conn:
        one = lambda sql: conn.execute(text(sql)).scalar_one()  # noqa: E731
        dead = one("SELECT max(id) FROM webhook_events WHERE final_status = 'dead'")
        middle = one("SELECT max(id) / 2 FROM webhook_events")
        order_event = one("SELECT id FROM webhook_events WHERE order_id IS NOT NULL ORDER BY id DESC LIMIT 1")
        reference = one("SELECT reference FROM orders ORDER BY id DESC LIMIT 1")
        delivery = one("SELECT max(id) FROM deliveries")
        key = one("SELECT event_key FROM webhook_events WHERE id = (SELECT max(id) / 3 FROM webhook_events)")
        action = one("SELECT max(id) FROM operator_actions")
    return {
        "overview": "/",
        "events": "/events",
        "events page 2": f"/events?after={middle}",
        "events dead": "/events?status=dead",
        "events yoco": "/events?provider=yoco",
        "events type": "/events?type=yoco.refund.succeeded",
        "events key": f"/events?key={key}",
        "events order": f"/events?order={reference}",
        "events last 2h": "/events?since=2h",
        "events 10-12 days ago": "/events?since=12d&until=10d",
        "event (dead)": f"/events/{dead}",
        "event (with order)": f"/events/{order_event}",
        "event replay confirm": f"/events/{dead}/replay",
        "replay preview dead": "/replay?preview=1&status=dead&provider=smartpay&since=7d",
        "replay progress": f"/replay/{action}",
        "deliveries": "/deliveries",
        "deliveries dead": "/deliveries?status=dead",
        "delivery": f"/deliveries/{delivery}",
        "orders": "/orders",
        "order": f"/orders/{reference}",
        "audit": "/audit",
    }


def time_pages(url: str, *, repeat: int, explain: bool) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    from console.app import create_app

    settings = Settings(_env_file=None, database_url=url, console_token=TOKEN, db_timeout_seconds=30)
    engine = make_engine(settings, pool_size=2, application_name="payhooks-console-bench")
    app = create_app(settings, engine=engine)
    client = app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/signin", data={"name": "bench", "token": TOKEN, "csrf_token": csrf}).status_code == 302
    statements: list[tuple[str, Any]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, context, many: statements.append((sql, params)))
    times: dict[str, list[float]] = {}
    seq_scans: dict[str, list[str]] = {}
    try:
        for name, path in pages(engine).items():
            client.get(path)  # warm the cache the way a second look does
            times[name] = []
            for _ in range(repeat):
                statements.clear()
                started = time.perf_counter()
                response = client.get(path)
                times[name].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{name} {path}: {response.status_code}")
            if explain:
                seq_scans[name] = _seq_scans(engine, list(statements))
    finally:
        engine.dispose()
    return times, seq_scans


def _seq_scans(engine: Engine, statements: list[tuple[str, Any]]) -> list[str]:
    """Statements whose plan scans webhook_events (or another big table) sequentially, with their time."""
    found = []
    with engine.connect() as conn:
        for sql, params in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).scalar_one()
            top = plan[0]
            for node in _nodes(top["Plan"]):
                if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in (
                        "webhook_events", "deliveries", "orders", "event_attempts", "delivery_attempts"):
                    found.append(f"{node['Relation Name']} ({top['Execution Time']:.0f} ms): "
                                 + " ".join(sql.split())[:140])
        conn.rollback()
    return found


def _nodes(node: dict[str, Any]):
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-url", default=os.environ.get("PAYHOOKS_TEST_DATABASE_URL",
                                                               "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--baseline-events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the seeded databases for the next run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    urls: dict[int, str] = {}
    try:
        for size in (args.baseline_events, args.events):
            urls[size] = prepare(args.server_url, size, keep=args.keep)
        log("timing the baseline")
        small, _ = time_pages(urls[args.baseline_events], repeat=args.repeat, explain=False)
        log("timing at size")
        large, scans = time_pages(urls[args.events], repeat=args.repeat, explain=True)
    finally:
        if not args.keep:
            for url in urls.values():
                drop_database(args.server_url, make_url(url).database)
    rows = []
    for name in large:
        big, base = statistics.median(large[name]), statistics.median(small[name])
        rows.append({"page": name, "baseline_median_ms": round(base, 1), "median_ms": round(big, 1),
                     "max_ms": round(max(large[name]), 1), "ratio": round(big / base, 2) if base else None,
                     "met": max(large[name]) <= TARGET_MS, "seq_scans": scans.get(name, [])})
    if args.json:
        print(json.dumps({"events": args.events, "baseline_events": args.baseline_events, "pages": rows}))
        return 0
    print(f"console pages: server time, {args.events:,} events vs {args.baseline_events:,} (same run), "
          f"{args.repeat} runs each, target ≤ {TARGET_MS:.0f} ms")
    print(f"{'page':26} {'base ms':>8} {'median ms':>10} {'max ms':>8} {'ratio':>6}  target")
    for r in rows:
        print(f"{r['page']:26} {r['baseline_median_ms']:8.1f} {r['median_ms']:10.1f} {r['max_ms']:8.1f} "
              f"{r['ratio'] or 0:6.2f}  {'met' if r['met'] else 'MISSED'}")
    for r in rows:
        for scan in r["seq_scans"]:
            print(f"  sequential scan in {r['page']}: {scan}")
    print("result: OK (every page answered 200; targets are reported above, not enforced)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
