"""One scenario from start to ledger: a fresh database and queue, the processes, traffic, the fault, the checks.

Everything a scenario starts is stopped in ``finally`` (processes, the local
servers, the queues, the database), whether the scenario passed, failed or
was interrupted.
"""
from __future__ import annotations

import re
import secrets as random_tokens
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from bench.faults import leaks, ledger
from bench.faults import plan as planning
from bench.faults.cluster import Cluster, Tuning
from bench.faults.outside import Outside
from bench.faults.results import ScenarioResult, judge
from bench.faults.settle import Drained, RecoveryWatch, last_to_finish, wait_settled
from bench.faults.traffic import Answer, Traffic
from testkit.fakes import SmtpServer
from testkit.load import Signer
from testkit.postgres import EmbeddedServer
from testkit.processes import log
from testkit.services import delete_queue


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


@dataclass
class Run:
    scenario: Scenario
    sizes: Sizes
    cluster: Cluster
    server: EmbeddedServer
    database: str
    plan: planning.Plan
    traffic: Traffic
    engine: Engine
    stop: threading.Event = field(default_factory=threading.Event)

    def sleep(self, seconds: float) -> None:
        """Sleep, but no longer than until the run is stopped."""
        self.stop.wait(seconds)


def _register_orders(cluster: Cluster, plan: planning.Plan) -> None:
    """One order through ``payhooks orders create``, the rest through ``POST /api/orders``."""
    orders = plan.registered_orders()
    first, rest = orders[0], orders[1:]
    code, output = cluster.cli("orders", "create", "--reference", first.reference, "--provider", first.provider,
                               "--provider-payment-ref", first.payment_ref, "--amount", str(first.amount),
                               "--currency", first.currency, "--customer-phone", first.phone or "",
                               *(["--customer-email", first.email] if first.email else []))
    if code != 0:
        raise RuntimeError(f"payhooks orders create failed: {output[-500:]}")
    headers = {"Authorization": f"Bearer {cluster.secrets.api_token}"}
    with httpx.Client(base_url=cluster.receiver_url, headers=headers, timeout=30) as client:
        for order in rest:
            response = client.post("/api/orders", json={
                "reference": order.reference, "provider": order.provider,
                "provider_payment_ref": order.payment_ref, "amount": order.amount, "currency": order.currency,
                "customer_email": order.email, "customer_phone": order.phone})
            if response.status_code != 201:
                raise RuntimeError(f"POST /api/orders answered {response.status_code}: {response.text[:300]}")


def _cli_event(plan: planning.Plan) -> planning.Event:
    """The event ``payhooks send`` delivers instead of the stream: a Yoco payment of a registered order."""
    return next(e for e in plan.events if e.provider == "yoco" and e.role == "success" and e.order.registered)


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
        status = int(output[:3]) if output[:3].isdigit() else None
        row_id = _answered_id(output) if status == 200 else None
        last = status == 200 or attempt == 10 or time.monotonic() - first > retry_for_s
        run.traffic.record_external(
            Answer(event.index, attempt, sent_at, time.monotonic() - sent_at, status,
                   None if status else f"cli exit {code}", row_id=row_id, outcome="cli"), final=last)
        if last:
            return
        time.sleep(2)


def _boot(cluster: Cluster, plan: planning.Plan) -> Engine:
    """Schema (``payhooks db upgrade``), the processes, the orders; returns the harness's engine."""
    code, output = cluster.cli("db", "upgrade")
    if code != 0:
        raise RuntimeError(f"payhooks db upgrade failed: {output[-500:]}")
    engine = cluster.engine()
    cluster.start_all()
    _register_orders(cluster, plan)
    return engine


def _drive(run: Run, *, limit_s: float) -> tuple[Fault, Drained]:
    """Traffic on, the fault injected, then wait for the backlog (recovery) and for everything to be final."""
    cli_event = _cli_event(run.plan)
    run.traffic.skip.add(cli_event.index)
    log(f"{run.scenario.name}: {len(run.plan.events)} events for {len(run.plan.orders)} orders "
        f"at {run.sizes.rate}/s")
    run.traffic.start()
    sender = threading.Thread(target=_send_with_cli, args=(run, cli_event), daemon=True)
    sender.start()
    try:
        fault = run.scenario.inject(run)
    finally:
        run.stop.set()
    watch = RecoveryWatch(run.engine, since=fault.ended, timeout_s=limit_s).start() if fault.ended else None
    sender.join(90)
    run.traffic.wait(timeout=len(run.plan.events) / run.sizes.rate + run.traffic.retry_for_s + 60)
    fault_end = fault.ended or run.traffic.finished
    watch = watch or RecoveryWatch(run.engine, since=fault_end, timeout_s=limit_s).start()
    recovery_s = watch.join()
    if recovery_s is not None:
        fault.notes["recovery_waited_for"] = last_to_finish(run.engine, since=fault_end)
    settled_s, left = wait_settled(run.engine, since=fault_end, timeout_s=limit_s)
    if fault.after is not None:
        fault.after(run, fault)
    return fault, Drained(recovery_s=recovery_s, settled_s=settled_s, left=left)


def _conclude(run: Run, fault: Fault, drained: Drained, *, quick: bool, started: float) -> ScenarioResult:
    """The ledger and the secrets search (database first, logs once every process has stopped)."""
    cluster, needles = run.cluster, run.cluster.secrets.needles
    for order in run.plan.registered_orders()[:2]:
        cluster.cli("orders", "show", order.reference)
    findings = ledger.check(run.engine, run.plan, run.traffic.acknowledged, cluster.outside)
    ledger.check_answers(run.traffic.answers, run.plan, findings)
    db_leaks, rows = leaks.scan_database(needles, run.engine)
    exited_early = cluster.exited()
    cluster.stop()
    log_files = sorted(cluster.run_dir.glob("*.log")) + [run.server.log_path]
    file_leaks, lines = leaks.scan_files(needles, log_files)
    result = ScenarioResult.build(scenario=run.scenario, quick=quick, sizes=run.sizes, traffic=run.traffic,
                                  findings=findings, fault=fault, drained=drained, leaks=db_leaks + file_leaks,
                                  scanned={"log_lines": lines, "db_rows": rows}, exited_early=exited_early,
                                  run_dir=cluster.run_dir, seconds=time.monotonic() - started)
    judge(result)
    return result


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
    queue = f"payhooks-faults-{scenario.name}-{random_tokens.token_hex(3)}"
    cluster = Cluster(run_dir=run_dir, database_url=server.url(database), broker_url=broker_url, queue=queue,
                      secrets=run_secrets, outside=outside, tuning=scenario.tuning)
    engine: Engine | None = None
    traffic: Traffic | None = None
    try:
        engine = _boot(cluster, plan)
        traffic = Traffic(cluster.receiver_url, plan, Signer(run_secrets.signing), rate=sizes.rate,
                          threads=sizes.senders, copies=sizes.copies)
        run = Run(scenario, sizes, cluster, server, database, plan, traffic, engine)
        fault, drained = _drive(run, limit_s=180.0 if quick else 300.0)
        return _conclude(run, fault, drained, quick=quick, started=started)
    finally:
        if traffic is not None:
            traffic.stop()
        cluster.stop()
        outside.close()
        if engine is not None:
            engine.dispose()
        delete_queue(broker_url, queue)
        server.drop_database(database)
