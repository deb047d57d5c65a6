"""`payhooks reconcile processout` against the local fake ProcessOut API (paged), real Postgres and real workers."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from sandbox.samples import sample_processout_event
from testkit.fakes import FakeProcessOut
from tests.conftest import make_settings
from tests.integration.ops_data import ok, operator_actions
from tests.integration.stack import Sender, create_order, order_row, rows, start_processes, wait_final
from workers.watch import Watcher


@pytest.fixture
def run(run, processout: FakeProcessOut):
    """The conftest's runner, with the fake ProcessOut as the API."""
    runner = run
    return lambda *args, **kw: runner(*args, env={"PAYHOOKS_PROCESSOUT_API_URL": processout.url,
                                                  **kw.pop("env", {})}, **kw)


def at(ago: timedelta) -> str:
    return (datetime.now(UTC) - ago).isoformat(timespec="seconds").replace("+00:00", "Z")


def listed(processout: FakeProcessOut, event_id: str, *, ago: timedelta, order_ref: str = "tr_x",
           event_type: str = "transaction.captured") -> None:
    """An event ProcessOut has (and lists), fired ``ago``, whose webhook never arrived."""
    event = sample_processout_event(event_id=event_id, event_type=event_type, order_ref=order_ref,
                                    amount_minor=1000)["event"]
    processout.events[event_id] = {**event, "fired_at": at(ago)}


def stored(engine: Engine) -> dict[str, tuple]:
    return {r.event_key: (r.id, r.status, r.verify_method, r.received_at) for r in rows(
        engine, "SELECT event_key, id, status, verify_method, received_at FROM webhook_events ORDER BY id")}


@pytest.fixture
def gap(processout: FakeProcessOut, sender: Sender, engine: Engine) -> dict[str, list[str]]:
    """Three events received, nine never received in the last day, six older than a day."""
    received = [sender.send("processout", "transaction.captured", order_ref=f"tr_r{i}", event_id=f"ev_r{i}")
                for i in range(3)]
    assert len(received) == 3
    for i in range(3):
        processout.events[f"ev_r{i}"]["fired_at"] = at(timedelta(hours=i + 1))
    missing = [f"ev_m{i}" for i in range(9)]
    for i, event_id in enumerate(missing):
        listed(processout, event_id, ago=timedelta(minutes=10 + 90 * i), order_ref=f"tr_m{i}")
    old = [f"ev_old{i}" for i in range(6)]
    for i, event_id in enumerate(old):
        listed(processout, event_id, ago=timedelta(hours=30 + i))
    return {"received": [f"ev_r{i}" for i in range(3)], "missing": missing, "old": old}


def test_dry_run_lists_what_is_missing_and_stores_nothing(run, engine, gap, processout) -> None:
    before = stored(engine)
    result = ok(run("reconcile", "processout", "--since", "24h", "--dry-run", "--page-size", "4"))
    assert "ProcessOut lists 12 events since" in result.output and "(4 page(s))" in result.output
    assert "3 already stored, 9 missing" in result.output and "dry run: nothing stored" in result.output
    assert stored(engine) == before


def test_reconcile_pages_stores_the_missing_and_they_are_handled(run, engine, gap, processout, stack) -> None:
    create_order(engine, reference="M-0", provider="processout", payment_ref="tr_m0")
    before = stored(engine)
    result = ok(run("reconcile", "processout", "--since", "24h", "--yes", "--page-size", "4", "--by", "ops"))
    assert "stored 9 events as reconciled" in result.output
    # Paged the SDK way: limit, then start_after the last id of each page, until older than --since
    cursors = [q.get("start_after") for q in processout.list_requests]
    assert [q["limit"] for q in processout.list_requests] == ["4"] * len(cursors)
    # 18 events, 4 a page: the 4th page reaches events older than a day, so no 5th is asked for
    assert cursors[0] is None and len(cursors) == 4 and len(set(cursors)) == 4
    after = stored(engine)
    assert set(after) == set(gap["received"]) | set(gap["missing"])  # nothing older than a day
    assert all(after[k] == before[k] for k in gap["received"])  # received events untouched
    assert {after[k][1:3] for k in gap["missing"]} == {("pending", "reconciled")}
    (action,) = operator_actions(engine)
    assert (action.action, action.actor, action.count) == ("reconcile", "ops", 9)
    assert sorted(action.filter["ids"]) == sorted(after[k][0] for k in gap["missing"])
    # They run through the normal path: the worker fetches each by id and handles it
    start_processes(stack)
    wait_final(engine, *[after[k][0] for k in gap["missing"]], stack=stack)
    assert order_row(engine, "M-0").status == "paid"
    # A second run finds nothing missing and changes nothing
    again = run("reconcile", "processout", "--since", "24h", "--yes")
    assert "0 missing" in again.output and "nothing to reconcile" in again.output


def test_an_api_error_on_any_page_stores_nothing(run, engine, gap, processout) -> None:
    before = stored(engine)
    processout.list_failures = [0, 500]  # the first page answers, the second fails
    result = run("reconcile", "processout", "--since", "24h", "--yes", "--page-size", "4")
    assert result.exit_code == 1
    assert "ProcessOut answered 500 to GET /events; nothing was stored" in result.output
    assert len(processout.list_requests) == 2
    assert stored(engine) == before and operator_actions(engine) == []


@pytest.mark.parametrize("args, env, message", [
    (("--since", "yesterday"), {}, "neither an ISO 8601 datetime nor a duration"),
    (("--since", "2h", "--page-size", "0"), {}, "--page-size"),
    (("--since", "24h"), {"PAYHOOKS_PROCESSOUT_PROJECT_ID": ""}, "ProcessOut is not configured: set "
                                                                  "PAYHOOKS_PROCESSOUT_PROJECT_ID"),
    ((), {}, "Missing option '--since'"),
])
def test_bad_input_is_a_clear_error_with_exit_2(run, engine, args, env, message) -> None:
    result = run("reconcile", "processout", *args, env=env)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_wrong_api_credentials_are_reported(run, engine, gap) -> None:
    result = run("reconcile", "processout", "--since", "24h", "--yes",
                 env={"PAYHOOKS_PROCESSOUT_PROJECT_SECRET": "wrong-secret-xyz"})
    assert result.exit_code == 1 and "ProcessOut answered 401" in result.output
    assert "wrong-secret-xyz" not in result.output


def test_the_watcher_reconciles_periodically(database_url, engine, gap, processout) -> None:
    settings = make_settings(database_url=database_url, processout_api_url=processout.url,
                             reconcile_processout_minutes=60)
    watcher = Watcher(settings=settings, engine=engine)
    watcher.reconcile_if_due()
    assert {k for k, v in stored(engine).items() if v[2] == "reconciled"} == set(gap["missing"])
    # Not due again within the period: no call to ProcessOut
    calls = len(processout.list_requests)
    watcher.reconcile_if_due()
    assert len(processout.list_requests) == calls
    (action,) = operator_actions(engine)
    assert action.actor == "payhooks-watcher" and action.count == 9
