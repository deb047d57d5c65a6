"""CI's run of the fault harness: every scenario in quick mode (``python -m bench.faults --quick``).

Each scenario drives the real receiver, dispatcher and workers as separate
processes, injects its fault and checks the ledger. The full run, with more
events and longer outages, is ``python -m bench.faults`` (README.md, "Reliability").
"""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults.catalog import SCENARIOS
from bench.faults.report import details
from bench.faults.runner import run_scenario
from testkit.postgres import EmbeddedServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(280)]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_keeps_the_promise(name: str, faults_server: EmbeddedServer, faults_broker: str | None,
                                    faults_root: Path) -> None:
    scenario = SCENARIOS[name]
    if scenario.needs_rabbitmq and faults_broker is None:
        pytest.skip("RabbitMQ does not answer (CI requires it)")
    # Given the real processes and a steady stream of signed events, When the fault is injected
    result = run_scenario(scenario, server=faults_server, run_root=faults_root, broker_url=faults_broker,
                          quick=True)
    report = details(result)
    # Then every acknowledged event is stored and final, and no effect happened twice
    assert result.acknowledged > 0, report
    assert result.lost == 0, report
    assert result.duplicate_effects == 0, report
    assert not [label for label in result.answers if not label.isdigit() or
                (int(label) >= 500 and label != "503")], report
    assert result.leaks == 0, report
    assert result.passed, report
