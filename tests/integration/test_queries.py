"""The shared query layer: keyset pages give every matching event once, newest first, for every kind of
filter, exactly as one plain ORDER BY would; and `payhooks events list --after` pages through them."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from models.queries.events import EventFilter, cursor_after, list_events
from tests.integration.ops_data import insert_event, json_out
from tests.integration.stack import create_order, scalar, values

STATUSES = ("pending", "succeeded", "dead", "retrying", "ignored")
PROVIDERS = ("yoco", "smartpay", "shadhinpay")


@pytest.fixture
def mixed(engine: Engine) -> list[int]:
    """90 events in shuffled receive times (several share one), some on an order."""
    rng = random.Random(16)
    order_id = create_order(engine, reference="ORD-Q")
    ids = []
    for n in range(90):
        ids.append(insert_event(engine, key=f"q{n}", provider=PROVIDERS[n % 3], status=STATUSES[n % 5],
                                event_type="refund.succeeded" if n % 7 == 0 else "payment.succeeded",
                                received_ago_s=float(rng.choice(range(0, 7200, 60))),
                                order_id=order_id if n % 4 == 0 else None))
    return ids


def _expected(engine: Engine, where: str, **params) -> list[int]:
    return values(engine, f"SELECT id FROM webhook_events WHERE {where} ORDER BY received_at DESC, id DESC", **params)


def _paged(engine: Engine, f: EventFilter, *, size: int) -> list[int]:
    seen: list[int] = []
    with engine.connect() as conn:
        after = None
        while True:
            rows = list_events(conn, f, limit=size, after=after)
            seen += [r["id"] for r in rows]
            assert len(seen) <= 90, "a page repeated rows"
            if len(rows) < size:
                return seen
            after = cursor_after(conn, rows[-1]["id"])


@pytest.mark.parametrize(("f", "where"), [
    (EventFilter(), "true"),
    (EventFilter(statuses=("dead", "retrying")), "status IN ('dead', 'retrying')"),
    (EventFilter(providers=("yoco",)), "provider = 'yoco'"),
    (EventFilter(types=("refund.succeeded",), statuses=("pending", "dead")),
     "event_type = 'refund.succeeded' AND status IN ('pending', 'dead')"),
    (EventFilter(order_reference="ORD-Q"), "order_id IS NOT NULL"),
    (EventFilter(order_reference="ORD-Q", providers=("smartpay",)), "order_id IS NOT NULL AND provider = 'smartpay'"),
    (EventFilter(event_key="q17"), "event_key = 'q17'"),
    (EventFilter(order_reference="NOPE"), "false"),
])
@pytest.mark.parametrize("size", [1, 7, 50])
def test_keyset_pages_match_one_plain_ordering(engine: Engine, mixed, f, where, size) -> None:
    assert _paged(engine, f, size=size) == _expected(engine, where)


def test_time_window_pages(engine: Engine, mixed) -> None:
    now = scalar(engine, "SELECT now()")
    f = EventFilter(since=now - timedelta(minutes=90), until=now - timedelta(minutes=30))
    assert _paged(engine, f, size=4) == _expected(
        engine, "received_at >= :a AND received_at <= :b", a=f.since, b=f.until)


def test_cli_pages_with_after(engine: Engine, mixed, run) -> None:
    first = json_out(run("events", "list", "--status", "dead", "--limit", "10", "--json"))
    second = json_out(run("events", "list", "--status", "dead", "--limit", "10", "--json",
                          "--after", str(first[-1]["id"])))
    assert [r["id"] for r in first + second] == _expected(engine, "status = 'dead'")
    table = run("events", "list", "--status", "dead", "--limit", "10")
    assert f"the next page: add --after {first[-1]['id']}" in " ".join(table.stdout.split())
    missing = run("events", "list", "--after", "999999")
    assert missing.exit_code == 1 and "no event 999999" in missing.output


def test_last_received_per_provider_reads_a_bounded_window(engine: Engine) -> None:
    from models.queries.overview import last_received

    insert_event(engine, provider="smartpay", received_ago_s=600)  # older than the window below
    newest = [insert_event(engine, provider=p, received_ago_s=ago) for p, ago in
              (("yoco", 300), ("shadhinpay", 200), ("yoco", 100))]
    with engine.connect() as conn:
        small = last_received(conn, window=3)
        whole = last_received(conn, window=100)
        received = dict(conn.execute(text("SELECT id, received_at FROM webhook_events")).all())
    assert small["last_received"]["yoco"] == received[newest[2]]
    assert small["last_received"]["shadhinpay"] == received[newest[1]]
    assert small["last_received"]["smartpay"] is None and small["last_received"]["processout"] is None
    assert small["last_received_horizon"] == received[newest[0]]  # "none since" the window's oldest
    assert whole["last_received"]["smartpay"] is not None and whole["last_received_horizon"] is None
