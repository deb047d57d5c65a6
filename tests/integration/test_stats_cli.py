"""`payhooks stats` against real Postgres: every number matches the rows inserted."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from cli.main import main
from testkit.load import percentile
from testkit.postgres import create_database, drop_database
from tests.integration.ops_data import (
    insert_delivery,
    insert_event,
    json_out,
    ok,
)
from tests.integration.stack import create_order

DONE_SECONDS = [1.0, 2.0, 3.0, 4.0, 10.0]


@pytest.fixture
def data(engine: Engine) -> None:
    events = [  # (provider, status, received seconds ago, done seconds later, due in seconds)
        # Done within the last hour: five yoco events with known receive → done times
        *[("yoco", "succeeded", 600, seconds, None) for seconds in DONE_SECONDS],
        # An ignored one in the window counts too; one done two hours ago does not
        ("senfenico", "ignored", 300, 2.5, None), ("yoco", "succeeded", 7300, 500, None),
        # Pending: the oldest has been due for 42 s
        ("smartpay", "pending", 0, None, -42), ("smartpay", "pending", 0, None, -10),
        # Retrying: two due now, one later
        *[("shadhinpay", "retrying", 0, None, due_in) for due_in in (-5, -1, 600)],
        # Dead: two in the last 24 h (not in the latency), one 30 h ago
        ("processout", "dead", 3700, 3600, None), ("processout", "dead", 4000, 100, None),
        ("processout", "dead", 30 * 3600, 1, None),
    ]
    for provider, status, ago, done, due_in in events:
        insert_event(engine, provider=provider, status=status, received_ago_s=ago, done_after_s=done, next_in_s=due_in)
    order = create_order(engine, reference="ORD-S", status="paid")
    event = insert_event(engine, status="processing")
    rows = (("fulfilment", "succeeded", None, 5), ("fulfilment", "dead", None, 60),
            ("email.refund", "dead", None, 26 * 3600), ("email.order_confirmation", "retrying", -3, None),
            ("sms.payment_failed", "retrying", 300, None), ("email.payment_failed", "skipped", None, 5))
    for n, (kind, status, next_in, done_ago) in enumerate(rows):
        insert_delivery(engine, event_id=event, order_id=order, kind=kind, status=status, handler=f"h{n}",
                        next_in_s=next_in, processed_ago_s=done_ago)


def test_stats_json_matches_the_rows(run, data) -> None:
    stats = json_out(run("stats", "--json"))
    events = stats["events"]
    assert events["by_provider_status"] == {
        "processout": {"dead": 3},
        "senfenico": {"ignored": 1},
        "shadhinpay": {"retrying": 3},
        "smartpay": {"pending": 2},
        "yoco": {"succeeded": 6, "processing": 1},
    }
    assert events["by_status"] == {"dead": 3, "ignored": 1, "retrying": 3, "pending": 2, "succeeded": 6,
                                   "processing": 1}
    assert events["total"] == 16
    assert 42 <= events["oldest_pending_age_seconds"] < 60
    assert events["due_retries"] == 2
    assert events["dead_last_24h"] == 2
    latency = events["receive_to_done_last_hour"]
    window = DONE_SECONDS + [2.5]
    assert latency["count"] == len(window)
    assert latency["p50_seconds"] == pytest.approx(percentile(window, 0.5), abs=0.001)
    assert latency["p99_seconds"] == pytest.approx(percentile(window, 0.99), abs=0.001)
    deliveries = stats["deliveries"]
    assert deliveries["by_status"] == {"succeeded": 1, "dead": 2, "retrying": 2, "skipped": 1}
    assert deliveries["by_kind_status"]["fulfilment"] == {"dead": 1, "succeeded": 1}
    assert deliveries["total"] == 6
    assert deliveries["due_retries"] == 1
    assert deliveries["dead_last_24h"] == 1


def test_stats_table_for_a_person(run, data) -> None:
    result = ok(run("stats"))
    out = result.stdout
    yoco = next(line for line in out.splitlines() if "yoco" in line)
    assert yoco.split("│")[1:-1][-1].strip() == "7"  # the row's total
    assert "retries due now" in out and "dead in the last 24 h" in out
    dead_line = next(line for line in out.splitlines() if "dead in the last 24 h" in line and "deliveries" not in line)
    assert dead_line.split()[-1] == "2"
    assert f"p50 {percentile(DONE_SECONDS + [2.5], 0.5):.3f} s" in out and "over 6 events" in out
    assert "deliveries by kind and status" in out and "sms.payment_failed" in out


def test_stats_of_an_empty_database(run, engine) -> None:
    stats = json_out(run("stats", "--json"))
    assert stats["events"]["total"] == 0 and stats["events"]["oldest_pending_age_seconds"] is None
    assert stats["events"]["receive_to_done_last_hour"] == {"count": 0, "p50_seconds": None, "p99_seconds": None}
    assert stats["deliveries"]["by_status"] == {}
    result = run("stats")
    assert result.exit_code == 0 and "no events stored yet" in result.stdout


@pytest.mark.parametrize("args", [["stats"], ["prune", "--older-than", "90d", "--dry-run"], ["events", "list"]])
def test_a_database_without_the_schema_gets_one_line_naming_db_upgrade(server_url: str, tmp_path, args) -> None:
    name, url = create_database(server_url, prefix="payhooks_unmigrated")
    try:
        result = CliRunner().invoke(main, args, env={"PAYHOOKS_DATABASE_URL": url, "PAYHOOKS_DATA_DIR": str(tmp_path)})
    finally:
        assert drop_database(server_url, name) is None
    assert type(result.exception) is SystemExit and result.exit_code == 1, result.output  # a ClickException
    assert "the database lacks what this command reads (UndefinedTable: relation " in result.stderr
    assert "does not exist): if it was never migrated" in result.stderr
    assert "run `payhooks db upgrade` against PAYHOOKS_DATABASE_URL" in result.stderr
