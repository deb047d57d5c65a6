"""CI's run of the fault harness: every scenario in quick mode, as it is run by hand.

``python -m bench.faults --quick --json PATH`` runs once, in a subprocess
(tests import testkit, never bench), on its own embedded Postgres: each
scenario drives the real receiver, dispatcher and workers as separate
processes, injects its fault and checks the ledger. Each scenario's result is
then judged by a test of its own. The full run, with more events and longer
outages, is ``python -m bench.faults`` (README.md, "Reliability").
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from testkit.processes import REPO_ROOT, env_without_payhooks
from testkit.services import rabbitmq_url

SCENARIOS = ("worker_kill", "rabbitmq_outage", "postgres_restart", "dispatcher_kill", "duplicate_storm",
             "out_of_order", "db_slow")
"""bench/faults/scenarios.py's SCENARIOS, in its order (a scenario missing from the run fails its test)."""
NEEDS_RABBITMQ = {"rabbitmq_outage"}
SCENARIO_S = 280

pytestmark = [pytest.mark.integration, pytest.mark.timeout(SCENARIO_S * len(SCENARIOS))]


@pytest.fixture(scope="session")
def faults_broker() -> str | None:
    """RabbitMQ's URL, or None when it does not answer (the scenarios needing it are skipped; CI requires it)."""
    return rabbitmq_url()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every scenario's result (``ScenarioResult`` as JSON) and the harness's printed report."""
    out = tmp_path_factory.mktemp("faults") / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench.faults", "--quick", "--json", str(out)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=SCENARIO_S * len(SCENARIOS) - 30, check=False,
                          env=env_without_payhooks())
    results = {r["scenario"]: r for r in json.loads(out.read_text())} if out.exists() else {}
    return {"results": results, "report": f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}"}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_keeps_the_promise(name: str, harness: dict[str, Any], faults_broker: str | None) -> None:
    if name in NEEDS_RABBITMQ and faults_broker is None:
        pytest.skip("RabbitMQ does not answer (CI requires it)")
    # Given the real processes and a steady stream of signed events, When the fault is injected
    result, report = harness["results"].get(name), harness["report"]
    assert result is not None, report
    # Then every acknowledged event is stored and final, and no effect happened twice
    assert result["acknowledged"] > 0, report
    assert result["lost"] == 0, report
    assert result["duplicate_effects"] == 0, report
    assert not [label for label in result["answers"] if not label.isdigit() or
                (int(label) >= 500 and label != "503")], report
    assert result["leaks"] == 0, report
    assert not result["failures"], report


def test_the_list_above_is_the_harness_catalogue(harness: dict[str, Any], faults_broker: str | None) -> None:
    ran = set(harness["results"])
    expected = set(SCENARIOS) - (NEEDS_RABBITMQ if faults_broker is None else set())
    assert ran == expected, harness["report"]
