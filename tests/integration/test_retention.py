"""Retention against real Postgres: `payhooks prune`, the archive, and the housekeeper."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine

from models import archive, retention
from tests.conftest import make_settings
from tests.integration.ops_data import (
    insert_attempt,
    insert_delivery,
    insert_event,
    insert_try,
    json_out,
    ok,
    operator_actions,
)
from tests.integration.stack import create_order, execute, rows, scalar, values
from workers.housekeeping import Housekeeper

DAY_S = 86400.0


def _count(engine: Engine, table: str) -> int:
    return scalar(engine, f"SELECT count(*) FROM {table}")


def _ids(engine: Engine) -> set[int]:
    return set(values(engine, "SELECT id FROM webhook_events"))


def _assert_nothing_changed(engine: Engine, archive_dir: Path) -> None:
    """All six events still there, no archive written, nothing audited."""
    assert len(_ids(engine)) == 6
    assert not archive_dir.exists()
    assert operator_actions(engine) == []


def _archived(directory: Path) -> list[dict]:
    lines: list[dict] = []
    for path in sorted(directory.glob("events-*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            lines += [json.loads(line) for line in handle if line.strip()]
    return lines


@pytest.fixture
def history(engine: Engine) -> dict[str, int]:
    """Old final events with attempts, deliveries, tries and a refund; old and new non-final ones."""
    order = create_order(engine, reference="ORD-OLD", status="refunded")
    old_paid = insert_event(engine, key="evt_old_paid", status="succeeded", received_ago_s=40 * DAY_S,
                            done_after_s=2, next_in_s=None, attempts=2, order_id=order,
                            body=b'{"id": "evt_old_paid", "amount": 2500}', payload={"id": "evt_old_paid"})
    insert_attempt(engine, event_id=old_paid, number=1, outcome="failed", error="smtp down")
    insert_attempt(engine, event_id=old_paid, number=2, outcome="succeeded")
    delivery = insert_delivery(engine, event_id=old_paid, order_id=order, kind="email", status="succeeded",
                               processed_ago_s=40 * DAY_S)
    insert_try(engine, delivery_id=delivery, number=1, outcome="succeeded", code=250, response="250 ok")
    old_dead = insert_event(engine, key="evt_old_dead", status="dead", received_ago_s=35 * DAY_S,
                            done_after_s=60, next_in_s=None, attempts=7, last_error="order not found")
    old_ignored = insert_event(engine, key="evt_old_ignored", status="ignored", received_ago_s=31 * DAY_S,
                               done_after_s=1, next_in_s=None, attempts=1)
    old_retrying = insert_event(engine, key="evt_old_retrying", status="retrying", received_ago_s=50 * DAY_S,
                                attempts=3, next_in_s=60)
    # final, old, but its email is still being retried: it waits for the delivery
    old_busy = insert_event(engine, key="evt_old_busy", status="succeeded", received_ago_s=45 * DAY_S,
                            done_after_s=1, next_in_s=None, order_id=order)
    insert_delivery(engine, event_id=old_busy, order_id=order, kind="sms", status="retrying", next_in_s=60)
    recent = insert_event(engine, key="evt_recent", status="succeeded", received_ago_s=DAY_S, done_after_s=1,
                          next_in_s=None)
    execute(engine, "INSERT INTO refunds (order_id, event_id, kind, amount, currency, refund_key) "
                    "VALUES (:o, :e, 'refund', 2500, 'ZAR', 'event:' || :e)", o=order, e=old_paid)
    execute(engine, "INSERT INTO order_transitions (order_id, event_id, from_status, to_status) "
                    "VALUES (:o, :e, 'pending', 'paid')", o=order, e=old_paid)
    return {"order": order, "old_paid": old_paid, "old_dead": old_dead, "old_ignored": old_ignored,
            "old_retrying": old_retrying, "old_busy": old_busy, "recent": recent}


def test_prune_archives_then_removes_only_old_final_events(run, engine: Engine, history, tmp_path: Path) -> None:
    archive_dir = tmp_path / "arch"
    env = {"PAYHOOKS_ARCHIVE_DIR": str(archive_dir)}
    # Given events older and younger than 30 days, final and not
    # When the operator prunes what is older than 30 days
    ok(run("prune", "--older-than", "30d", "--yes", "--by", "ops@example", env=env))
    # Then only the old final events without work in flight are gone, with their attempts, deliveries and tries
    gone = {history["old_paid"], history["old_dead"], history["old_ignored"]}
    assert _ids(engine) == {history["old_retrying"], history["old_busy"], history["recent"]}
    assert _count(engine, "event_attempts") == 0
    assert _count(engine, "delivery_attempts") == 0
    assert _count(engine, "deliveries") == 1  # the busy sms
    # and orders, refunds, transitions and dedup keys stay, still naming the pruned event
    assert _count(engine, "orders") == 1
    assert scalar(engine, "SELECT event_id FROM refunds") == history["old_paid"]
    assert scalar(engine, "SELECT event_id FROM order_transitions") == history["old_paid"]
    assert _count(engine, "event_keys") == 6
    # and every removed event is in the archive exactly once, whole
    lines = _archived(archive_dir)
    assert sorted(line["id"] for line in lines) == sorted(gone)
    paid = next(line for line in lines if line["id"] == history["old_paid"])
    import base64
    assert base64.b64decode(paid["raw_body_base64"]) == b'{"id": "evt_old_paid", "amount": 2500}'
    assert [a["outcome"] for a in paid["attempts"]] == ["failed", "succeeded"]
    assert paid["attempts"][0]["error"] == "smtp down"
    assert paid["deliveries"][0]["tries"][0]["response"] == "250 ok"
    assert paid["verification"] == {"secret_index": 0, "method": "hmac"}
    # one file per day of received_at
    days = {line["received_at"][:10] for line in lines}
    assert {p.name for p in archive_dir.iterdir()} == {f"events-{d}.jsonl.gz" for d in days}
    # and the audit row counts what was removed
    action = operator_actions(engine)[-1]
    assert (action.action, action.target, action.actor, action.count) == ("prune", "events", "ops@example", 3)
    assert action.filter["older_than"] == "30d"


def test_archive_show_reads_one_event_back(run, engine: Engine, history, tmp_path: Path) -> None:
    archive_dir = tmp_path / "arch"
    env = {"PAYHOOKS_ARCHIVE_DIR": str(archive_dir)}
    assert run("prune", "--older-than", "30d", "--yes", env=env).exit_code == 0
    day = scalar(engine, "SELECT to_char((now() - interval '35 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
    event = json_out(run("archive", "show", str(archive_dir / f"events-{day}.jsonl.gz"), "--key", "evt_old_dead"))
    assert (event["id"], event["status"], event["last_error"]) == (history["old_dead"], "dead", "order not found")
    missing = run("archive", "show", str(archive_dir / f"events-{day}.jsonl.gz"), "--key", "nope")
    assert missing.exit_code == 1 and "no event with key 'nope'" in missing.output


def test_dry_run_changes_nothing(run, engine: Engine, history, tmp_path: Path) -> None:
    result = ok(run("prune", "--older-than", "30d", "--dry-run", env={"PAYHOOKS_ARCHIVE_DIR": str(tmp_path / "a")}))
    assert "4 final event(s)" in result.output  # the busy one is counted, and then waits
    _assert_nothing_changed(engine, tmp_path / "a")


@pytest.mark.parametrize(("args", "env", "message"), [
    (("--older-than", "0"), {}, "must be longer than zero"),
    (("--older-than", "0d"), {}, "must be longer than zero"),
    (("--older-than", "-5d"), {}, "is not a duration"),
    (("--older-than", "soon"), {}, "is not a duration"),
    (("--older-than", "1h"), {}, "--older-than (1.0 h) is shorter than the shadhinpay retry horizon"),
    ((), {"PAYHOOKS_RETENTION_DAYS": "1"}, "PAYHOOKS_RETENTION_DAYS (24.0 h) is shorter than the shadhinpay"),
    ((), {"PAYHOOKS_RETENTION_DAYS": "abc"}, "PAYHOOKS_RETENTION_DAYS"),
    ((), {"PAYHOOKS_RETENTION_DAYS": "-3"}, "PAYHOOKS_RETENTION_DAYS"),
    ((), {"PAYHOOKS_RETENTION_DAYS": "0"}, "give --older-than"),
    ((), {"PAYHOOKS_RETENTION_DAYS": "30", "PAYHOOKS_DEDUP_DAYS": "10"}, "PAYHOOKS_DEDUP_DAYS (10) is shorter"),
])
def test_bad_input_exits_2_and_changes_nothing(run, engine: Engine, history, tmp_path: Path, args, env,
                                               message) -> None:
    result = run("prune", *args, "--yes", env={"PAYHOOKS_ARCHIVE_DIR": str(tmp_path / "a"), **env})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    _assert_nothing_changed(engine, tmp_path / "a")


def test_a_prune_nobody_can_confirm_says_use_yes_and_changes_nothing(run, engine: Engine, history,
                                                                     tmp_path: Path) -> None:
    # Given old final events, and no terminal to answer the question (stdin at its end)
    result = run("prune", "--older-than", "30d", env={"PAYHOOKS_ARCHIVE_DIR": str(tmp_path / "a")})
    # Then the command stops with exit 2 and says how to go ahead, having changed nothing
    assert result.exit_code == 2, result.output
    assert "use --yes" in result.output and "Aborted" not in result.output
    _assert_nothing_changed(engine, tmp_path / "a")


def test_a_batch_that_did_not_commit_leaves_no_line_twice(engine: Engine, history, tmp_path: Path) -> None:
    directory = tmp_path / "arch"
    age = retention.parse_age("30d", name="age")
    # Given a batch that wrote and fsynced its archive lines, then died before its transaction committed
    with engine.connect() as conn:
        tx = conn.begin()
        retention.lock(conn, wait=True)
        batch = retention.prune_batch(conn, cutoff=retention.cutoff_for(conn, age), batch_size=10,
                                      directory=directory)
        assert batch.removed == 3
        tx.rollback()
    assert len(_archived(directory)) == 3  # on disk, but not committed
    assert len(_ids(engine)) == 6
    # and one of its events is no longer final (a replay) when pruning runs again
    execute(engine, "UPDATE webhook_events SET status = 'pending', next_attempt_at = now() WHERE id = :id",
            id=history["old_dead"])
    with engine.begin() as conn:
        retention.lock(conn, wait=True)
        again = retention.prune_batch(conn, cutoff=retention.cutoff_for(conn, age), batch_size=10,
                                      directory=directory)
    # Then every removed event is archived once, the replayed one not at all, and the ledger matches the files
    assert again.removed == 2
    lines = _archived(directory)
    assert sorted(line["id"] for line in lines) == sorted([history["old_paid"], history["old_ignored"]])
    ledger = {row.name: row.bytes for row in rows(engine, "SELECT name, bytes FROM archive_files")}
    assert ledger == {str(p): p.stat().st_size for p in directory.iterdir()}


def test_a_shortened_archive_file_stops_pruning(engine: Engine, history, tmp_path: Path) -> None:
    directory = tmp_path / "arch"
    cutoff_age = retention.parse_age("30d", name="age")
    with engine.begin() as conn:
        retention.prune_batch(conn, cutoff=retention.cutoff_for(conn, cutoff_age), batch_size=10,
                              directory=directory)
    for damaged in directory.iterdir():  # every day's file loses its end
        damaged.write_bytes(damaged.read_bytes()[:5])
    insert_event(engine, status="succeeded", received_ago_s=40 * DAY_S, done_after_s=2, next_in_s=None)
    before = _ids(engine)
    with pytest.raises(archive.ArchiveError), engine.begin() as conn:
        retention.prune_batch(conn, cutoff=retention.cutoff_for(conn, cutoff_age), batch_size=50,
                              directory=directory)
    assert _ids(engine) == before


def test_housekeeper_prunes_with_the_retention_setting(database_url: str, engine: Engine, history,
                                                      tmp_path: Path) -> None:
    settings = make_settings(database_url=database_url, retention_days=30, archive_dir=str(tmp_path / "arch"),
                             prune_batch_size=2)
    done = Housekeeper(settings=settings, engine=engine).tick()
    assert done["removed"] == 3
    assert _ids(engine) == {history["old_retrying"], history["old_busy"], history["recent"]}
    assert len(_archived(tmp_path / "arch")) == 3
    # keys are kept for DEDUP_DAYS: nothing is old enough to forget
    assert _count(engine, "event_keys") == 6
    execute(engine, "UPDATE event_keys SET received_at = now() - interval '500 days'")
    assert Housekeeper(settings=settings, engine=engine).tick()["keys"] == 3  # only those whose event is gone
    assert set(values(engine, "SELECT event_key FROM event_keys")) == {"evt_old_retrying", "evt_old_busy", "evt_recent"}


def test_retention_zero_keeps_everything(database_url: str, engine: Engine, history, tmp_path: Path) -> None:
    settings = make_settings(database_url=database_url, retention_days=0, archive_dir=str(tmp_path / "arch"))
    assert Housekeeper(settings=settings, engine=engine).tick()["removed"] == 0
    assert len(_ids(engine)) == 6


class _Paces(retention.Pace):
    made: list[_Paces] = []

    def __init__(self, rate: float, **kwargs) -> None:
        super().__init__(rate, **kwargs)
        self.batches: list[int] = []
        _Paces.made.append(self)

    def after(self, removed: int) -> None:
        self.batches.append(removed)  # recorded, not slept


@pytest.mark.parametrize("how", ["housekeeper", "command"])
def test_pruning_is_paced_batch_by_batch(run, database_url: str, engine: Engine, history, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    _Paces.made = []
    monkeypatch.setattr(retention, "Pace", _Paces)
    if how == "housekeeper":
        settings = make_settings(database_url=database_url, retention_days=30, archive_dir=str(tmp_path / "arch"),
                                 prune_batch_size=1, prune_rate=40)
        assert Housekeeper(settings=settings, engine=engine).tick()["removed"] == 3
    else:
        ok(run("prune", "--older-than", "30d", "--yes", "--batch-size", "1", "--rate", "40",
               env={"PAYHOOKS_ARCHIVE_DIR": str(tmp_path / "arch")}))
    [pace] = _Paces.made
    assert pace.rate == 40
    assert sum(pace.batches) == 3 and all(batch <= 1 for batch in pace.batches)


def test_a_backlog_goes_on_where_the_last_tick_stopped(database_url: str, engine: Engine, history,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import workers.housekeeping as housekeeping

    settings = make_settings(database_url=database_url, retention_days=30, archive_dir=str(tmp_path / "arch"),
                             prune_batch_size=10, prune_rate=0)
    keeper = Housekeeper(settings=settings, engine=engine)
    seen: list[tuple] = []
    real_batch = retention.prune_batch
    monkeypatch.setattr(retention, "prune_batch", lambda conn, **kw: seen.append(kw["after"]) or real_batch(conn, **kw))
    clock = iter([0.0, 1.0, 9.0])  # the deadline, one batch within the budget, then past it
    monkeypatch.setattr(housekeeping, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    assert keeper.prune() == 3
    assert keeper.resume_after is not None and keeper.resume_after != retention.START  # a backlog
    assert _ids(engine) == {history["old_retrying"], history["old_busy"], history["recent"]}
    first = keeper.resume_after
    monkeypatch.setattr(housekeeping, "time", SimpleNamespace(monotonic=lambda: 0.0))
    assert keeper.prune() == 0
    assert seen == [retention.START, first]  # the next tick went on where the last stopped, not at the oldest
    assert keeper.resume_after is None  # no backlog left
