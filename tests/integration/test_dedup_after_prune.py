"""A redelivery of an event that retention archived and removed is still a duplicate, and runs nothing."""
from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine

from models import retention
from tests.conftest import make_settings
from tests.integration.helpers import post_signed, signed_request
from tests.integration.stack import create_order, execute, scalar, tuples, values, wait_final


def _post(client, body: bytes) -> tuple[int, dict]:
    response = post_signed(client, make_settings(), "yoco", body=body)
    return response.status_code, response.json


def _age(engine: Engine, event_id: int, *, days: int) -> None:
    execute(engine, "UPDATE webhook_events SET received_at = received_at - make_interval(days => :d), "
                    "processed_at = processed_at - make_interval(days => :d) WHERE id = :id", d=days, id=event_id)


def _footprint(engine: Engine) -> tuple[int, int, int, str]:
    return (scalar(engine, "SELECT count(*) FROM webhook_events"),
            scalar(engine, "SELECT count(*) FROM deliveries"),
            scalar(engine, "SELECT count(*) FROM order_transitions"),
            scalar(engine, "SELECT status FROM orders WHERE reference = 'ORD-D'"))


def test_redelivery_of_a_pruned_event_is_a_duplicate_and_runs_no_handler(
        client, engine: Engine, running, run, tmp_path: Path) -> None:
    create_order(engine, reference="ORD-D", provider="yoco", payment_ref="ch_dedup", amount=2500)
    body, _ = signed_request(make_settings(), "yoco", event_type="payment.succeeded", order_ref="ch_dedup",
                             amount_minor=2500, event_id="evt_pruned_1")
    # Given an event handled by a real worker, then archived and removed by retention
    status, first = _post(client, body)
    assert (status, first["status"]) == (200, "accepted")
    wait_final(engine, first["id"], stack=running)
    _age(engine, first["id"], days=60)
    assert run("prune", "--older-than", "30d", "--yes",
               env={"PAYHOOKS_ARCHIVE_DIR": str(tmp_path / "a")}).exit_code == 0
    before = _footprint(engine)
    assert before[0] == 0 and before[3] == "paid"
    transitions_before = scalar(engine, "SELECT count(*) FROM order_transitions WHERE event_id = :e", e=first["id"])
    assert transitions_before == 1
    # When the provider redelivers it
    status, again = _post(client, body)
    # Then it is answered duplicate with its original id, and stores nothing
    assert (status, again) == (200, {"status": "duplicate", "id": first["id"]})
    # and no handler runs: a later, new event is handled while the redelivery left no trace
    later, _ = signed_request(make_settings(), "yoco", event_type="refund.succeeded", order_ref="ch_dedup",
                              amount_minor=100, event_id="evt_after_1")
    status, fresh = _post(client, later)
    assert fresh["status"] == "accepted" and fresh["id"] != first["id"]
    wait_final(engine, fresh["id"], stack=running)
    by_event = dict(tuples(engine, "SELECT event_id, count(*) FROM order_transitions GROUP BY 1"))
    assert values(engine, "SELECT id FROM webhook_events") == [fresh["id"]]
    assert by_event[first["id"]] == transitions_before  # the payment was not handled a second time
    assert _footprint(engine)[3] == "partially_refunded"  # the refund ran against the paid order


def test_redelivery_while_its_event_is_being_pruned_is_a_duplicate(client, engine: Engine, tmp_path: Path) -> None:
    body, _ = signed_request(make_settings(), "yoco", event_type="payment.succeeded", order_ref="ch_none",
                             event_id="evt_racing_1")
    status, first = _post(client, body)
    execute(engine, "UPDATE webhook_events SET status = 'ignored', processed_at = now() - interval '40 days', "
                    "next_attempt_at = NULL WHERE id = :id", id=first["id"])
    # Given a pruning batch that has archived and deleted the event but not yet committed
    with engine.connect() as conn:
        tx = conn.begin()
        retention.lock(conn, wait=True)
        batch = retention.prune_batch(conn, cutoff=retention.cutoff_for(conn, retention.parse_age("30d", name="a")),
                                      batch_size=10, directory=tmp_path / "a")
        assert batch.removed == 1
        # When the provider redelivers it meanwhile (another connection: the receiver's pool)
        answers: list[tuple[int, dict]] = []
        sender = threading.Thread(target=lambda: answers.append(_post(client, body)))
        sender.start()
        sender.join(timeout=20)
        racing = list(answers)
        tx.commit()
    sender.join(timeout=20)
    # Then it does not wait for the prune, and is a duplicate with the original id
    assert racing == [(200, {"status": "duplicate", "id": first["id"]})]
    assert scalar(engine, "SELECT count(*) FROM webhook_events") == 0
