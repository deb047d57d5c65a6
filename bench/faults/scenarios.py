"""One function per scenario: each injects its fault while the traffic flows and says when it ended.

:data:`SCENARIOS` lists them, with their sizes for the full run and for CI (``--quick``).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator

import psutil
from sqlalchemy import text

from bench.faults import MARK
from bench.faults.cluster import Tuning
from bench.faults.runner import Fault, Run, Scenario, Sizes, http_answers, label
from workers.celery_app import (
    PROCESS_EVENT,
    PROCESS_EVENTS,
    SEND_DELIVERIES,
    SEND_DELIVERY,
    make_celery,
    publisher,
)

SLOW_MARGIN_S = 2.0
"""How much longer than the database timeout an answer may take while the table is locked."""
MID_HANDLER_SQL = text(f"""
    SELECT application_name FROM pg_stat_activity
     WHERE datname = current_database() AND state = 'idle in transaction'
       AND application_name LIKE '{MARK}:%'""")


def _traffic_budget_s(run: Run) -> float:
    return len(run.plan.events) / run.sizes.rate + 30


def _while_traffic_flows(run: Run) -> Iterator[None]:
    """Every half second until the traffic ends (at the most its budget plus the resend window)."""
    deadline = time.monotonic() + _traffic_budget_s(run) + run.traffic.retry_for_s
    while not run.traffic.finished and time.monotonic() < deadline:
        time.sleep(0.5)
        yield


def _worker_groups(run: Run) -> dict[int, str]:
    """Process group → name of each worker group running now."""
    services = run.cluster.services
    return {services.pid(name): name for name in run.scenario.tuning.worker_groups
            if name in services.processes.processes}


def _mid_handler(run: Run, *, spare: set[int]) -> tuple[str, int] | None:
    """A worker group caught inside a handler's transaction, and the event it is handling.

    Events in ``spare`` were killed once already: killing the same event again and again would
    only exhaust its retry schedule (an event whose every try kills its worker ends ``dead``, by
    design), which is not what this scenario is about.
    """
    groups = _worker_groups(run)
    with run.engine.connect() as conn:
        names = conn.execute(MID_HANDLER_SQL).scalars().all()
    for name in names:
        _, pgid, event_id = name.split(":")
        if int(pgid) in groups and int(event_id) not in spare:
            return groups[int(pgid)], int(event_id)
    return None


def _smtp_sender(run: Run, port: int) -> str | None:
    """The worker group whose process holds the SMTP connection from ``port``."""
    groups = _worker_groups(run)
    for conn in psutil.net_connections(kind="tcp"):
        if conn.pid and conn.laddr and conn.laddr.port == port and conn.raddr \
                and conn.raddr.port == run.cluster.outside.mail.port:
            try:
                return groups.get(os.getpgid(conn.pid))
            except ProcessLookupError:
                return None
    return None


def _kill_target(run: Run, number: int, *, spare: set[int]) -> tuple[str, str, int] | None:
    """Every third kill catches a worker mid-email (sent, not recorded); the others mid-handler."""
    if number % 3 == 2:
        port = run.cluster.outside.mail.catch_sender(timeout_s=5)
        name = _smtp_sender(run, port) if port else None
        return (name, "delivery", port or 0) if name else None
    target = _mid_handler(run, spare=spare)
    return (target[0], "handler", target[1]) if target else None


def worker_kill(run: Run) -> Fault:
    """SIGKILL a worker group inside a handler (seen in pg_stat_activity) or mid-email, restart it; repeat."""
    fault, killed, kinds = Fault(), [], Counter()
    deadline = time.monotonic() + _traffic_budget_s(run)
    while sum(kinds.values()) < run.sizes.kills and time.monotonic() < deadline:
        target = _kill_target(run, sum(kinds.values()), spare=set(killed))
        if target is None:
            time.sleep(0.02)
            continue
        name, kind, event_id = target
        run.cluster.services.kill(name)
        fault.ended = time.monotonic()
        kinds[kind] += 1
        if kind == "handler":
            killed.append(event_id)
        run.cluster.start_worker(name)
        time.sleep(random.uniform(0.5, 1.5))
    fault.notes["kills"] = dict(kinds)
    if sum(kinds.values()) < run.sizes.kills:
        fault.problems.append(f"only {sum(kinds.values())} of {run.sizes.kills} kills landed")

    def confirm(run: Run, fault: Fault) -> None:
        with run.engine.connect() as conn:
            lost = conn.execute(text("SELECT count(DISTINCT event_id) FROM event_attempts "
                                     "WHERE outcome = 'lost' AND event_id = ANY(:ids)"), {"ids": killed}).scalar_one()
        fault.notes["handler_kills_confirmed_lost_attempt"] = lost

    fault.after = confirm
    return fault


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, timeout=150, capture_output=True)


def _outage(run: Run, note: str, down: Callable[[], object], up: Callable[[], object]) -> Fault:
    """After the lead, ``down()``; ``fault_s`` later ``up()`` (always, even when ``down`` failed half-way)."""
    fault = Fault()
    run.sleep(run.sizes.lead_s)
    began = time.monotonic()
    try:
        down()
        time.sleep(max(0.0, run.sizes.fault_s - (time.monotonic() - began)))
    finally:
        up()
    fault.ended = time.monotonic()
    fault.notes[note] = round(fault.ended - began, 1)
    return fault


def rabbitmq_outage(run: Run) -> Fault:
    """``rabbitmqctl stop_app`` for ``fault_s`` during ingest, then ``start_app`` (always)."""
    return _outage(run, "broker_down_s", lambda: _rabbitmqctl("stop_app"),
                   lambda: (_rabbitmqctl("start_app"), _rabbitmqctl("await_startup", "--timeout", "120")))


def postgres_restart(run: Run) -> Fault:
    """``pg_ctl stop -m fast`` on the embedded server, down ``fault_s``, then start it again (always); the
    harness's pooled connections died with the server."""
    fault = _outage(run, "postgres_down_s", run.server.stop_fast,
                    lambda: (run.server.start_again(), run.engine.dispose()))

    def receiver_figures(run: Run, fault: Fault) -> None:
        answers = http_answers(run.traffic)
        fault.notes["answers_503"] = sum(a.status == 503 for a in answers)
        later = [a.sent_at + a.latency_s for a in answers if a.ok and a.sent_at >= fault.ended]
        if later:
            fault.notes["first_2xx_after_restart_s"] = round(min(later) - fault.ended, 2)

    fault.after = receiver_figures
    return fault


def _fresh_claim(run: Run, *, within_s: float = 3.0) -> None:
    """Wait (briefly) until the dispatcher has just committed a claim, so a kill may land before its publish."""
    deadline = time.monotonic() + within_s
    lease = run.scenario.tuning.lease_seconds
    sql = text("SELECT count(*) FROM webhook_events WHERE status = 'queued' "
               "AND lease_expires_at > clock_timestamp() + make_interval(secs => :fresh)")
    while time.monotonic() < deadline:
        with run.engine.connect() as conn:
            if conn.execute(sql, {"fresh": lease - 0.2}).scalar_one():
                return
        time.sleep(0.01)


def dispatcher_kill(run: Run) -> Fault:
    """SIGKILL the dispatcher right after it committed a claim (before or after its publish), restart it."""
    fault = Fault()
    run.sleep(run.sizes.lead_s)
    for _ in range(run.sizes.kills):
        time.sleep(random.uniform(0.5, 2.0))
        _fresh_claim(run)
        run.cluster.services.kill("dispatcher")
        time.sleep(random.uniform(0.2, 1.0))
        run.cluster.services.start_dispatcher()
    fault.ended = time.monotonic()
    fault.notes["kills"] = run.sizes.kills

    def rearmed(run: Run, fault: Fault) -> None:
        lines = (run.cluster.run_dir / "dispatcher.log").read_text(errors="replace").splitlines()
        swept = [json.loads(line) for line in lines if '"dispatcher.swept"' in line]  # JSON log lines
        fault.notes["claims_rearmed_by_sweeper"] = sum(int(line.get("requeued", 0)) for line in swept
                                                       if line.get("action") == "dispatcher.swept"
                                                       and line.get("lane") == "events")

    fault.after = rearmed
    return fault


def _random_ids(run: Run, table: str, count: int) -> list[int]:
    with run.engine.connect() as conn:
        return list(conn.execute(text(f"SELECT id FROM {table} ORDER BY random() LIMIT :n"), {"n": count}).scalars())


def _publish_duplicates(publish, extra: Counter[str], events: list[int], deliveries: list[int], *,
                        times: int) -> None:
    """``times`` messages per id of each task, single-id and batched (what the dispatcher sends)."""
    for task, ids in ((PROCESS_EVENT, events), (PROCESS_EVENTS, events), (SEND_DELIVERY, deliveries),
                      (SEND_DELIVERIES, deliveries)):
        if ids:
            publish(task, ids * times)
            extra[task.removeprefix("payhooks.")] += len(ids) * times


def duplicate_storm(run: Run) -> Fault:
    """Each event POSTed 20 times at once (the traffic's ``copies``), plus extra broker messages.

    While the traffic flows, every half second two more messages go out for ten
    random stored events and five random deliveries (queued, running or done),
    both as single-id tasks and in batches like the dispatcher's; at the end one
    more of each for every event and delivery.
    """
    fault, extra = Fault(), Counter()
    app = make_celery(run.cluster.settings())
    publish = publisher(app, batch_size=run.cluster.settings().worker_batch_size)
    try:
        for _ in _while_traffic_flows(run):
            _publish_duplicates(publish, extra, _random_ids(run, "webhook_events", 10),
                                _random_ids(run, "deliveries", 5), times=2)
        _publish_duplicates(publish, extra, _random_ids(run, "webhook_events", 100_000),
                            _random_ids(run, "deliveries", 100_000), times=1)
    finally:
        app.close()
    fault.notes["copies_per_event"] = run.sizes.copies
    fault.notes["extra_broker_messages_per_id"] = dict(extra)
    return fault


def out_of_order(run: Run) -> Fault:
    """No fault but the stories themselves: refunds before payments, failures after success, unknown orders."""
    for _ in _while_traffic_flows(run):
        pass
    return Fault()


def db_slow(run: Run) -> Fault:
    """Hold ``LOCK TABLE webhook_events IN ACCESS EXCLUSIVE MODE`` for ``fault_s`` during ingest."""
    fault = Fault()
    run.sleep(run.sizes.lead_s)
    with run.server.connect(run.database, connect_timeout=5) as conn:
        conn.execute("SET lock_timeout = '30s'")
        conn.execute("LOCK TABLE webhook_events IN ACCESS EXCLUSIVE MODE")
        locked = time.monotonic()
        try:
            time.sleep(run.sizes.fault_s)
        finally:
            conn.rollback()
    fault.ended = time.monotonic()
    fault.notes["lock_held_s"] = round(fault.ended - locked, 1)
    timeout_s = run.scenario.tuning.db_timeout_seconds

    def during_lock(run: Run, fault: Fault) -> None:
        answers = [a for a in http_answers(run.traffic) if a.sent_at + a.latency_s >= locked
                   and a.sent_at <= fault.ended]
        fault.notes["answers_during_lock"] = dict(Counter(label(a) for a in answers))
        slowest = max((a.latency_s for a in answers), default=0.0)
        fault.notes["slowest_answer_s"] = round(slowest, 2)
        if slowest > timeout_s + SLOW_MARGIN_S:
            fault.problems.append(f"an answer took {slowest:.1f} s, over the {timeout_s:.0f} s database timeout "
                                  f"+ {SLOW_MARGIN_S:.0f} s")

    fault.after = during_lock
    return fault


KILL_TUNING = Tuning(worker_groups=("worker-a", "worker-b"), slow_handler=True)
SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("worker_kill", "worker SIGKILL mid-handler, repeated", worker_kill,
             full=Sizes(events=400, rate=8, kills=10), quick=Sizes(events=100, rate=5, kills=10),
             tuning=KILL_TUNING),
    Scenario("rabbitmq_outage", "RabbitMQ stopped during ingest, then started", rabbitmq_outage,
             full=Sizes(events=500, rate=10, fault_s=30, lead_s=8), quick=Sizes(events=80, rate=5, fault_s=8),
             needs_rabbitmq=True),
    Scenario("postgres_restart", "Postgres restarted during ingest", postgres_restart,
             full=Sizes(events=400, rate=8, fault_s=10, lead_s=8), quick=Sizes(events=80, rate=5, fault_s=3,
                                                                               lead_s=4)),
    Scenario("dispatcher_kill", "dispatcher SIGKILL after its claim commit, repeated", dispatcher_kill,
             full=Sizes(events=400, rate=8, kills=5, lead_s=5), quick=Sizes(events=80, rate=5, kills=5, lead_s=2)),
    Scenario("duplicate_storm", "duplicate storm (20 concurrent deliveries + broker duplicates)", duplicate_storm,
             full=Sizes(events=300, rate=5, copies=20), quick=Sizes(events=60, rate=4, copies=20)),
    Scenario("out_of_order", "out-of-order delivery and unknown orders", out_of_order,
             full=Sizes(events=400, rate=8), quick=Sizes(events=80, rate=5), mix="out_of_order"),
    Scenario("db_slow", "database slowed (table lock held)", db_slow,
             full=Sizes(events=400, rate=8, fault_s=10, lead_s=8), quick=Sizes(events=80, rate=5, fault_s=6,
                                                                               lead_s=4)),
)}
