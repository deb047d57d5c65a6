"""`payhooks replay` against real Postgres, and end to end with a real worker and dispatcher."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine

from testkit.processes import wait_for
from tests.integration.ops_data import (
    events_by_id,
    insert_delivery,
    insert_event,
    ok,
    operator_actions,
)
from tests.integration.stack import (
    create_order,
    execute,
    paid_transitions,
    rows,
    scalar,
    status_of,
    wait_final,
)


@pytest.fixture
def mixed(engine: Engine) -> dict[str, int]:
    return {
        "dead_yoco": insert_event(engine, provider="yoco", status="dead", attempts=4, next_in_s=None,
                                  received_ago_s=600, done_after_s=5, last_error="order not found"),
        "dead_smartpay": insert_event(engine, provider="smartpay", event_type="order.authorized", status="dead",
                                      attempts=7, next_in_s=None, received_ago_s=60, done_after_s=5),
        "retrying": insert_event(engine, status="retrying", attempts=1, next_in_s=300),
        "succeeded": insert_event(engine, status="succeeded", attempts=1, next_in_s=None, done_after_s=1),
        "processing": insert_event(engine, status="processing", attempts=1),
    }


def _states(engine: Engine) -> dict[int, tuple[str, int]]:
    return {i: (row.status, row.replay_count) for i, row in events_by_id(engine).items()}


def test_dry_run_prints_and_changes_nothing(run, engine, mixed) -> None:
    before = _states(engine)
    result = ok(run("replay", "--dry-run"))
    assert "2 events to replay (dead 2)" in result.stdout
    assert f"would replay: {mixed['dead_yoco']}, {mixed['dead_smartpay']}" in result.stdout
    assert "dry run: nothing changed" in result.stdout
    assert _states(engine) == before
    assert operator_actions(engine) == []


def test_replay_dead_by_default_and_audit_it(run, engine, mixed) -> None:
    result = ok(run("replay", "--yes", "--by", "alice"))
    assert "replayed 2 events" in result.stdout
    events = events_by_id(engine)
    for key in ("dead_yoco", "dead_smartpay"):
        row = events[mixed[key]]
        assert (row.status, row.replay_count, row.retry_base) == ("pending", 1, row.attempts)
        assert row.processed_at is None and row.next_attempt_at is not None
    assert {key: events[mixed[key]].status for key in ("retrying", "succeeded", "processing")} == {
        "retrying": "retrying", "succeeded": "succeeded", "processing": "processing"}
    [action] = operator_actions(engine)
    assert (action.actor, action.action, action.target, action.count) == ("alice", "replay", "events", 2)
    assert action.filter == {"statuses": ["dead"]}
    assert "replayed 2 of 2" in action.detail


def test_filters_narrow_the_replay(run, engine, mixed) -> None:
    ok(run("replay", "--yes", "--by", "bob", "--provider", "smartpay", "--status", "dead,retrying"))
    states = _states(engine)
    assert states[mixed["dead_smartpay"]] == ("pending", 1)
    assert states[mixed["dead_yoco"]] == ("dead", 0)
    assert states[mixed["retrying"]] == ("retrying", 0)  # a yoco event: not selected
    [action] = operator_actions(engine)
    assert action.filter == {"statuses": ["dead", "retrying"], "providers": ["smartpay"]}
    assert action.count == 1


def test_since_filter_replays_only_recent_dead(run, engine, mixed) -> None:
    assert run("replay", "--yes", "--since", "5m").exit_code == 0
    states = _states(engine)
    assert states[mixed["dead_smartpay"]] == ("pending", 1)
    assert states[mixed["dead_yoco"]] == ("dead", 0)


def test_answering_no_changes_nothing(run, engine, mixed) -> None:
    before = _states(engine)
    result = run("replay", input="n\n")
    assert result.exit_code == 1
    assert "Replay 2 events? [y/N]" in result.output and "Aborted" in result.output
    assert _states(engine) == before
    assert operator_actions(engine) == []
    # and answering yes is what replays
    assert run("replay", input="y\n").exit_code == 0
    assert _states(engine)[mixed["dead_yoco"]] == ("pending", 1)


def test_a_prompt_nobody_can_answer_says_use_yes_and_exits_2(run, engine, mixed) -> None:
    # Given stdin at its end (a script, `< /dev/null`): the question cannot be answered
    before = _states(engine)
    result = run("replay", input="")
    assert result.exit_code == 2, result.output
    assert "use --yes" in result.stderr and "Aborted" not in result.output
    assert _states(engine) == before and operator_actions(engine) == []


def test_actor_defaults_to_the_os_user(run, engine, mixed) -> None:
    ok(run("replay", "--yes", env={"LOGNAME": "opsperson"}))
    assert operator_actions(engine)[0].actor == "opsperson"


def test_ids_skip_succeeded_without_force(run, engine, mixed) -> None:
    ids = [mixed["succeeded"], mixed["dead_yoco"], mixed["processing"], 987654]
    result = ok(run("replay", "--yes", "--by", "carol", *map(str, ids)))
    assert "1 event to replay (dead 1)" in result.stdout
    assert "skipped 1 succeeded (replaying them needs --force)" in result.stdout
    assert "skipped 1 pending or in progress" in result.stdout and "not found: 987654" in result.stdout
    states = _states(engine)
    assert states[mixed["succeeded"]] == ("succeeded", 0)
    assert states[mixed["processing"]] == ("processing", 0)
    assert states[mixed["dead_yoco"]] == ("pending", 1)
    [action] = operator_actions(engine)
    assert action.filter == {"ids": sorted(ids)} and action.count == 1


def test_force_replays_a_succeeded_event(run, engine, mixed) -> None:
    ok(run("replay", "--yes", "--force", str(mixed["succeeded"])))
    assert _states(engine)[mixed["succeeded"]] == ("pending", 1)
    [action] = operator_actions(engine)
    assert action.filter == {"ids": [mixed["succeeded"]], "force": True} and action.count == 1


def test_bulk_replay_commits_in_batches(run, engine) -> None:
    ids = [insert_event(engine, status="dead", next_in_s=None) for _ in range(5)]
    ok(run("replay", "--yes", "--batch-size", "2"))
    batches = rows(engine, "SELECT status, xmin::text AS tx FROM webhook_events WHERE id = ANY(:ids)", ids=ids)
    assert {row.status for row in batches} == {"pending"}
    assert len({row.tx for row in batches}) == 3  # 2 + 2 + 1, each batch its own transaction
    assert operator_actions(engine)[0].count == 5


@pytest.mark.parametrize(("args", "message"), [
    (["1", "--status", "dead"], "IDS or filters, not both"),
    (["--kind", "fulfilment"], "--deliveries"),
    (["--deliveries", "--provider", "yoco"], "--provider and --type filter events"),
    (["--status", "exploded"], "exploded"),
    (["--deliveries", "--status", "processing"], "processing"),
])
def test_usage_errors(run, engine, mixed, args, message) -> None:
    before = _states(engine)
    result = run("replay", "--yes", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert _states(engine) == before


@pytest.fixture
def deliveries(engine: Engine) -> dict[str, int]:
    order = create_order(engine, reference="ORD-D", status="paid")
    other = create_order(engine, reference="ORD-E", status="paid")
    event = insert_event(engine, status="succeeded", next_in_s=None, order_id=order)
    event_e = insert_event(engine, status="succeeded", next_in_s=None, order_id=other)
    return {
        "dead_fulfilment": insert_delivery(engine, event_id=event, order_id=order, kind="fulfilment",
                                           status="dead", attempts=6, next_in_s=None, processed_ago_s=60),
        "dead_email": insert_delivery(engine, event_id=event, order_id=order, kind="email.order_confirmation",
                                      status="dead", attempts=1, next_in_s=None, processed_ago_s=60),
        "sent_fulfilment": insert_delivery(engine, event_id=event_e, order_id=other, kind="fulfilment",
                                           status="succeeded", attempts=1, next_in_s=None),
        "dead_other": insert_delivery(engine, event_id=event_e, order_id=other, kind="email.order_confirmation",
                                      status="dead", attempts=1, next_in_s=None, processed_ago_s=60),
    }


def _delivery_states(engine: Engine) -> dict[int, tuple[str, int]]:
    return {r.id: (r.status, r.replay_count) for r in rows(engine, "SELECT id, status, replay_count FROM deliveries")}


def test_replay_deliveries_by_kind(run, engine, deliveries) -> None:
    result = ok(run("replay", "--deliveries", "--kind", "fulfilment", "--yes", "--by", "dave"))
    assert "replayed 1 delivery" in result.stdout
    states = _delivery_states(engine)
    assert states[deliveries["dead_fulfilment"]] == ("pending", 1)
    assert states[deliveries["dead_email"]] == ("dead", 0)
    assert states[deliveries["sent_fulfilment"]] == ("succeeded", 0)
    [action] = operator_actions(engine)
    assert (action.target, action.count, action.actor) == ("deliveries", 1, "dave")
    assert action.filter == {"statuses": ["dead"], "kinds": ["fulfilment"]}


def test_replay_deliveries_by_order_and_by_ids(run, engine, deliveries) -> None:
    assert run("replay", "--deliveries", "--order", "ORD-E", "--yes").exit_code == 0
    states = _delivery_states(engine)
    assert states[deliveries["dead_other"]] == ("pending", 1)
    assert states[deliveries["dead_email"]] == ("dead", 0)
    result = ok(run("replay", "--deliveries", "--yes", str(deliveries["dead_email"]),
                    str(deliveries["sent_fulfilment"])))
    assert "skipped 1 succeeded" in result.stdout
    states = _delivery_states(engine)
    assert states[deliveries["dead_email"]] == ("pending", 1)
    assert states[deliveries["sent_fulfilment"]] == ("succeeded", 0)


def test_delivery_dry_run_changes_nothing(run, engine, deliveries) -> None:
    before = _delivery_states(engine)
    result = ok(run("replay", "--deliveries", "--dry-run"))
    assert "3 deliveries to replay (dead 3)" in result.stdout
    assert _delivery_states(engine) == before and operator_actions(engine) == []


def _delivery_count(engine: Engine, event_id: int) -> int:
    return scalar(engine, "SELECT count(*) FROM deliveries WHERE event_id = :e", e=event_id)


def test_a_dead_event_succeeds_once_its_order_exists(run, running, sender, engine) -> None:
    # Given an event for an order not registered yet: retried (1 s schedule), then dead
    event_id = sender.send("shadhinpay", "payment.completed", order_ref="SP_late_order")
    assert wait_final(engine, event_id, stack=running) == ["dead"]
    # When the order is registered and the operator replays the dead events
    create_order(engine, reference="late-1", provider="shadhinpay", payment_ref="SP_late_order")
    result = ok(run("replay", "--yes", "--by", "erin"))
    assert "replayed 1 event " in result.stdout
    # Then it runs again and succeeds, and the order is paid
    wait_for(lambda: status_of(engine, event_id) == "succeeded", timeout=45, message="the replayed event")
    row = events_by_id(engine)[event_id]
    assert (row.replay_count, row.attempts) == (1, 5)
    assert scalar(engine, "SELECT status FROM orders WHERE reference = 'late-1'") == "paid"
    [action] = operator_actions(engine)
    assert (action.actor, action.count, action.filter) == ("erin", 1, {"statuses": ["dead"]})


def test_forced_replay_of_a_succeeded_event_sends_nothing_twice(run, running, sender, engine) -> None:
    create_order(engine, reference="once-1", provider="yoco", payment_ref="ch_once")
    event_id = sender.send("yoco", "payment.succeeded", order_ref="ch_once")
    assert wait_final(engine, event_id, stack=running) == ["succeeded"]
    assert _delivery_count(engine, event_id) == 2  # fulfilment + confirmation email
    # Without --force the succeeded event is not replayed
    plain = run("replay", "--yes", str(event_id))
    assert "needs --force" in plain.stdout and "nothing to replay" in plain.stdout
    assert events_by_id(engine)[event_id].replay_count == 0
    # Given the order put back to pending by hand, so the replayed handler writes its deliveries
    # again (not the "already paid" branch): only the unique (event, handler, kind) key stops them
    execute(engine, "UPDATE orders SET status = 'pending' WHERE reference = 'once-1'")
    # With --force it runs again, and the unique keys stop a second delivery
    ok(run("replay", "--yes", "--force", str(event_id)))
    def rerun_finished() -> bool:
        row = events_by_id(engine)[event_id]
        return row.status == "succeeded" and row.attempts == 2

    wait_for(rerun_finished, timeout=45, message="the forced replay to finish")
    assert events_by_id(engine)[event_id].replay_count == 1
    assert paid_transitions(engine, event_id) == 2  # the handler did run its effect again
    assert _delivery_count(engine, event_id) == 2
    assert scalar(engine, "SELECT status FROM orders WHERE reference = 'once-1'") == "paid"


def test_human_output_by_default_log_lines_only_with_verbose(run, engine, mixed) -> None:
    quiet = run("replay", "--yes", "--status", "dead", "--provider", "yoco", env={"PAYHOOKS_LOG_LEVEL": None})
    assert quiet.exit_code == 0 and "replayed 1 event " in quiet.stdout
    assert "operator.replay" not in quiet.output
    verbose = run("-v", "replay", "--yes", "--status", "dead", "--provider", "smartpay",
                  env={"PAYHOOKS_LOG_LEVEL": None})
    assert verbose.exit_code == 0 and "operator.replay" in verbose.stderr
