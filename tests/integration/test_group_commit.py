"""The receiver's group commit, against the real Postgres: each promise of one INSERT per batch.

A SHARE lock on ``webhook_events`` holds the writer's first INSERT, so the
requests that arrive meanwhile queue up behind it and are written together,
and the test can see that nobody is answered before the commit.
"""
from __future__ import annotations

import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
import pytest

from models.ingest import EventStore, IngestBusy, Stored
from testkit.processes import wait_for
from tests.integration.helpers import count_events, inserts_held, signed_request


def _event(key: str, *, body: bytes | None = None) -> dict:
    body = body or json.dumps({"id": key, "type": "payment.succeeded"}).encode()
    return {"provider": "yoco", "event_key": key, "event_type": "payment.succeeded", "livemode": False,
            "raw_body": body, "headers": {"content-type": "application/json"}, "payload": None,
            "payload_is_body": True, "secret_index": 0, "verify_method": "test"}


@pytest.fixture
def store(settings, engine):
    store = EventStore(settings)
    yield store
    store.close()


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=40) as pool:
        yield pool


def _queue_behind_a_held_insert(store: EventStore, pool: ThreadPoolExecutor, wait_blocked, first: dict,
                                rest: list[dict]) -> tuple[Future[Stored], list[Future[Stored]]]:
    """``first`` is the writer's batch, held at the lock; ``rest`` waits in the queue for the next batch."""
    head = pool.submit(store.store, **first)
    wait_blocked()
    tail = [pool.submit(store.store, **event) for event in rest]
    wait_for(lambda: store._writer.queued() == len(rest), timeout=10, message="the requests to queue")
    return head, tail


def test_a_batch_is_one_insert_and_no_answer_comes_before_its_commit(store, pool, database_url, engine) -> None:
    with inserts_held(database_url) as wait_blocked:
        head, tail = _queue_behind_a_held_insert(store, pool, wait_blocked, _event("evt_head"),
                                                 [_event(f"evt_{i}") for i in range(20)])
        # Then while the INSERT cannot commit, no request has its answer
        assert not head.done() and not any(f.done() for f in tail)
    results = [head.result(timeout=10)] + [f.result(timeout=10) for f in tail]
    assert all(r.created for r in results) and len({r.id for r in results}) == 21
    assert count_events(engine) == 21
    # the 20 that waited went in together: the held batch, then one more
    assert store._writer.batches_written == 2


def test_exactly_one_accepted_per_key_within_a_batch_and_across(store, pool, database_url, engine) -> None:
    with inserts_held(database_url) as wait_blocked:
        head, tail = _queue_behind_a_held_insert(
            store, pool, wait_blocked, _event("evt_first"),
            [_event("evt_same") for _ in range(10)] + [_event("evt_first") for _ in range(3)])
    first = head.result(timeout=10)
    same = [f.result(timeout=10) for f in tail[:10]]
    first_again = [f.result(timeout=10) for f in tail[10:]]
    assert first.created
    assert sorted(r.created for r in same) == [False] * 9 + [True]
    assert len({r.id for r in same}) == 1
    assert all(not r.created and r.id == first.id for r in first_again)
    # across batches: a later delivery names the same row
    later = store.store(**_event("evt_same"))
    assert not later.created and later.id == same[0].id
    assert count_events(engine) == 2


def test_one_unstorable_row_fails_alone_and_its_batch_mates_are_stored(store, pool, database_url, engine) -> None:
    bad = _event("evt_nul", body=b'{"id":"evt_nul","note":"a\\u0000b"}')  # valid JSON, not storable in jsonb
    with inserts_held(database_url) as wait_blocked:
        head, tail = _queue_behind_a_held_insert(
            store, pool, wait_blocked, _event("evt_head"),
            [_event("evt_a"), _event("evt_b"), bad, _event("evt_c")])
    assert head.result(timeout=10).created
    assert [tail[i].result(timeout=10).created for i in (0, 1, 3)] == [True, True, True]
    with pytest.raises(psycopg.DataError):
        tail[2].result(timeout=10)
    assert count_events(engine) == 4


def test_a_stopping_store_writes_its_queue_then_refuses(store, pool, database_url, engine) -> None:
    with inserts_held(database_url) as wait_blocked:
        head, tail = _queue_behind_a_held_insert(store, pool, wait_blocked, _event("evt_head"),
                                                 [_event(f"evt_{i}") for i in range(5)])
        closing = pool.submit(store.close)
        wait_for(lambda: store._writer._closed, timeout=5, message="close to start")
        with pytest.raises(IngestBusy):
            store.store(**_event("evt_too_late"))
    closing.result(timeout=20)
    assert all(f.result(timeout=1).created for f in [head, *tail])
    assert count_events(engine) == 6


def test_a_full_queue_answers_503_with_retry_after(make_app, settings, engine, database_url, pool, caplog) -> None:
    app = make_app(ingest_queue_size=1)

    def post(event_id: str):
        body, headers = signed_request(settings, "yoco", event_id=event_id)
        return app.test_client().post("/webhooks/yoco", data=body, headers=headers)

    with inserts_held(database_url) as wait_blocked:
        held = pool.submit(post, "evt_held")
        wait_blocked()
        queued = pool.submit(post, "evt_queued")
        wait_for(lambda: app.extensions["payhooks"].store._writer.queued() == 1, timeout=10,
                 message="the second request to queue")
        # When a third arrives while the one-place queue is full
        with caplog.at_level(logging.ERROR, logger="payhooks.receiver"):
            refused = post("evt_refused")
        assert refused.status_code == 503 and refused.headers["Retry-After"].isdigit()
        assert any(getattr(r, "action", None) == "webhook.busy" for r in caplog.records)
        assert not held.done() and not queued.done()
    assert held.result(timeout=10).json["status"] == "accepted"
    assert queued.result(timeout=10).json["status"] == "accepted"
    assert count_events(engine) == 2
