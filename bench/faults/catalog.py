"""The scenarios, with their sizes for the full run and for CI (``--quick``)."""
from __future__ import annotations

from bench.faults.cluster import Tuning
from bench.faults.runner import Scenario, Sizes
from bench.faults.scenarios import (
    db_slow,
    dispatcher_kill,
    duplicate_storm,
    out_of_order,
    postgres_restart,
    rabbitmq_outage,
    worker_kill,
)

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
