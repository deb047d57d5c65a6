"""One scenario from start to ledger: a fresh database and queue, the processes, traffic, the fault, the checks.

Everything a scenario starts is stopped in ``finally`` (processes, the local
servers, the queues, the database), whether the scenario passed, failed or
was interrupted.
"""
from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from bench.faults import leaks, ledger
from bench.faults import plan as planning
from bench.faults.cluster import Cluster, Outside, Tuning
from bench.faults.results import ScenarioResult
from bench.faults.settle import last_to_finish, wait_settled, watch_recovery
from testkit.fakes import SmtpServer
from testkit.load import Answer, Signer, Stream, WebhookRequest
from testkit.postgres import EmbeddedServer
from testkit.processes import log
from testkit.services import delete_queue, new_queue_name

LEAK_LIMIT = 10
"""Places of found secrets listed in the result (all are counted)."""


@dataclass(frozen=True)
class Sizes:
    events: int
    rate: float
    """Events per second."""
    fault_s: float = 0.0
    """How long the outage, lock or storm lasts."""
    lead_s: float = 3.0
    """Traffic before the fault starts."""
    kills: int = 0
    copies: int = 1
    senders: int = 4
    """Concurrent deliveries (each of ``copies`` requests); keep it under the receiver's 8 threads."""


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    inject: Callable[[Run], Fault]
    full: Sizes
    quick: Sizes
    mix: str = "steady"
    tuning: Tuning = field(default_factory=Tuning)
    needs_rabbitmq: bool = False


@dataclass
class Fault:
    ended: float | None = None
    """time.monotonic() when the fault was over (None: when the traffic ended)."""
    notes: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """Scenario-specific failures (e.g. fewer kills than asked)."""
    after: Callable[[Run, Fault], None] | None = None
    """Checks that need the settled state (run after the wait, before the ledger)."""
    recovery_s: float | None = None
    """Fault end → its backlog handled; None when it was not within the timeout."""
    settled_s: float | None = None
    """Fault end → every event and delivery final."""
    left: tuple[int, int] = (0, 0)
    """(events, deliveries) not final at the end of the wait."""


@dataclass
class Run:
    scenario: Scenario
    sizes: Sizes
    cluster: Cluster
    server: EmbeddedServer
    database: str
    plan: planning.Plan
    traffic: Stream
    """The plan's events as requests, by index; the one ``payhooks send`` delivers is skipped."""
    engine: Engine
    stop: threading.Event = field(default_factory=threading.Event)

    def sleep(self, seconds: float) -> None:
        """Sleep, but no longer than until the run is stopped."""
        self.stop.wait(seconds)


def _register_orders(cluster: Cluster, plan: planning.Plan) -> None:
    """One order through ``payhooks orders create``, the rest through ``POST /api/orders``."""
    orders = plan.registered_orders()
    first, rest = orders[0], orders[1:]
    cluster.cli("orders", "create", "--reference", first.reference, "--provider", first.provider,
                "--provider-payment-ref", first.payment_ref, "--amount", str(first.amount), "--currency",
                first.currency, "--customer-phone", first.phone or "",
                *(["--customer-email", first.email] if first.email else []), check=True)
    headers = {"Authorization": f"Bearer {cluster.secrets.env['PAYHOOKS_API_TOKEN']}"}
    with httpx.Client(base_url=cluster.receiver_url, headers=headers, timeout=30) as client:
        for order in rest:
            response = client.post("/api/orders", json={
                "reference": order.reference, "provider": order.provider,
                "provider_payment_ref": order.payment_ref, "amount": order.amount, "currency": order.currency,
                "customer_email": order.email, "customer_phone": order.phone})
            if response.status_code != 201:
                raise RuntimeError(f"POST /api/orders answered {response.status_code}: {response.text[:300]}")


def _answered_id(output: str) -> int | None:
    """The row id in ``payhooks send``'s ``200 accepted: yoco payment.succeeded is event N`` line."""
    found = re.match(r"\d{3} \w+: .* is event (\d+)$", output.splitlines()[0] if output else "")
    return int(found.group(1)) if found else None


def _send_with_cli(run: Run, event: planning.Event, *, retry_for_s: float = 60.0) -> None:
    """``payhooks send`` the event, again after a non-2xx (as a provider would), for up to ``retry_for_s``."""
    first = time.monotonic()
    for attempt in range(1, 11):
        sent_at = time.monotonic()
        code, output = run.cluster.cli("send", "yoco", "payment.succeeded", "--url", run.cluster.receiver_url,
                                       "--order-ref", event.order.payment_ref, "--amount", str(event.amount),
                                       "--event-id", event.event_id)
        status = output[:3] if output[:3].isdigit() else None
        row_id = _answered_id(output) if status == "200" else None
        last = status == "200" or attempt == 10 or time.monotonic() - first > retry_for_s
        run.traffic.record(Answer(f"{status} cli" if status else f"error cli exit {code}", row_id,
                                  time.monotonic() - sent_at, index=event.index, attempt=attempt, sent_at=sent_at),
                           final=last)
        if last:
            return
        time.sleep(2)


def _boot(cluster: Cluster, plan: planning.Plan) -> Engine:
    """Schema (``payhooks db upgrade``), the processes, the orders; returns the harness's engine."""
    cluster.cli("db", "upgrade", check=True)
    engine = cluster.engine()
    cluster.start_all()
    _register_orders(cluster, plan)
    return engine


def _drive(run: Run, *, limit_s: float) -> Fault:
    """Traffic on, the fault injected, then wait for the backlog (recovery) and for everything to be final."""
    log(f"{run.scenario.name}: {len(run.plan.events)} events for {len(run.plan.orders)} orders "
        f"at {run.sizes.rate}/s")
    run.traffic.start()
    (cli_index,) = run.traffic.skip
    sender = threading.Thread(target=_send_with_cli, args=(run, run.plan.events[cli_index]), daemon=True)
    sender.start()
    try:
        fault = run.scenario.inject(run)
    finally:
        run.stop.set()
    recovered = watch_recovery(run.engine, since=fault.ended, timeout_s=limit_s) if fault.ended else None
    sender.join(90)
    run.traffic.stop(wait_s=len(run.plan.events) / run.sizes.rate + run.traffic.retry_for_s + 60)
    fault_end = fault.ended or run.traffic.finished
    fault.recovery_s = (recovered or watch_recovery(run.engine, since=fault_end, timeout_s=limit_s))()
    if fault.recovery_s is not None:
        fault.notes["recovery_waited_for"] = last_to_finish(run.engine, since=fault_end)
    fault.settled_s, fault.left = wait_settled(run.engine, since=fault_end, timeout_s=limit_s)
    if fault.after is not None:
        fault.after(run, fault)
    return fault


def label(answer: Answer) -> str:
    """How the answer is counted: its status code, else the error (``cli exit 1``, ``TimeoutError``)."""
    return str(answer.status) if answer.status is not None else answer.outcome.removeprefix("error ")


def http_answers(traffic: Stream) -> list[Answer]:
    """The answers to the stream's own requests (not those ``payhooks send`` got)."""
    return [answer for answer in traffic.answers if answer.index not in traffic.skip]


def _conclude(run: Run, fault: Fault, *, quick: bool, started: float) -> ScenarioResult:
    """The ledger and the secrets search (database first, logs once every process has stopped)."""
    cluster, needles = run.cluster, run.cluster.secrets.needles
    for order in run.plan.registered_orders()[:2]:
        cluster.cli("orders", "show", order.reference)
    traffic, findings = run.traffic, ledger.check(run.engine, run.plan, run.traffic.acknowledged, cluster.outside)
    ledger.check_answers(traffic.answers, run.plan, findings)
    db_leaks, rows = leaks.scan_database(needles, run.engine)
    exited_early = cluster.services.exited()
    cluster.stop()
    file_leaks, lines = leaks.scan_files(needles, sorted(cluster.run_dir.glob("*.log")) + [run.server.log_path])
    found, notes = db_leaks + file_leaks, dict(fault.notes)
    if fault.left != (0, 0):
        notes["not_final_at_end"] = {"events": fault.left[0], "deliveries": fault.left[1]}
    if exited_early:
        notes["exited_early"] = exited_early
    bare_503 = sum(1 for a in http_answers(traffic) if a.status == 503 and not a.retry_after)
    labels = Counter(label(a) for a in traffic.answers)
    return ScenarioResult(
        scenario=run.scenario.name, title=run.scenario.title, mode="quick" if quick else "full",
        sizes=asdict(run.sizes), sent=len(traffic.first_try), requests=len(traffic.answers),
        acknowledged=len(traffic.acknowledged), never_acknowledged=len(traffic.gave_up),
        answers=dict(sorted(labels.items())), final=dict(findings.final), lost=len(findings.lost),
        duplicate_effects=len(findings.duplicates), missing_effects=len(findings.missing_effects),
        unexpected=len(findings.unexpected), resends=findings.resends, recovery_s=fault.recovery_s,
        settled_s=fault.settled_s, max_answer_s=max((a.latency_s for a in http_answers(traffic)), default=0.0),
        leaks=len(found), leak_places=sorted({f"{leak.label} in {leak.where}" for leak in found})[:LEAK_LIMIT],
        scanned={"log_lines": lines, "db_rows": rows}, notes=notes, details=findings.details(),
        run_dir=str(cluster.run_dir), seconds=time.monotonic() - started,
        problems=list(fault.problems) + [f"{name} exited on its own" for name in exited_early]
        + ([f"{bare_503} answer(s) 503 without Retry-After"] if bare_503 else []))


def run_scenario(scenario: Scenario, *, server: EmbeddedServer, run_root: Path, broker_url: str | None,
                 quick: bool, events: int | None = None) -> ScenarioResult:
    """Run one scenario; ``broker_url`` None puts the broker on the scenario's database (kombu's SQLAlchemy)."""
    sizes = scenario.quick if quick else scenario.full
    if events:
        sizes = replace(sizes, events=events)
    started = time.monotonic()
    run_secrets = leaks.generate()
    plan = planning.build(sizes.events, mix=scenario.mix, tag=scenario.name[:4])
    database = server.create_database(f"faults_{scenario.name}")
    broker_url = broker_url or "sqla+" + server.url(database)
    run_dir = run_root / scenario.name
    run_dir.mkdir(parents=True, exist_ok=True)
    outside = Outside(mail=SmtpServer(username=leaks.SMTP_USER, password=run_secrets.env["PAYHOOKS_SMTP_PASSWORD"]))
    outside.processout.events.update(plan.processout_events)
    queue = new_queue_name(f"payhooks-faults-{scenario.name}")
    cluster = Cluster(run_dir=run_dir, database_url=server.url(database), broker_url=broker_url, queue=queue,
                      secrets=run_secrets, outside=outside, tuning=scenario.tuning)
    cli_event = next(e for e in plan.events if e.provider == "yoco" and e.role == "success" and e.order.registered)
    traffic = Stream(cluster.receiver_url, [WebhookRequest(e.provider, e.body) for e in plan.events],
                     Signer(run_secrets.signing), rate=sizes.rate, threads=sizes.senders, copies=sizes.copies,
                     skip={cli_event.index})
    engine: Engine | None = None
    try:
        engine = _boot(cluster, plan)
        run = Run(scenario, sizes, cluster, server, database, plan, traffic, engine)
        fault = _drive(run, limit_s=180.0 if quick else 300.0)
        return _conclude(run, fault, quick=quick, started=started)
    finally:
        traffic.stop()
        cluster.stop()
        outside.close()
        if engine is not None:
            engine.dispose()
        delete_queue(broker_url, queue)
        server.drop_database(database)
