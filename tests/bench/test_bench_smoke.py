"""CI's smoke run of every benchmark: a tiny N, a real receiver (and dispatcher and worker), exit 0.

Each bench runs as CI would run it by hand (``python -m bench.<name>``) in a
subprocess against the Postgres server of ``PAYHOOKS_TEST_DATABASE_URL``
(each creates and drops its own database) and, where it needs one, RabbitMQ.
Exit 0 means every correctness check of the bench passed (rows = accepted,
one row per event, the retry schedule followed); speed targets are only
printed, never asserted, since a tiny N on a shared machine says nothing
about speed. The real runs and their figures are in BENCHMARKS.md.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from testkit.processes import REPO_ROOT, env_without_payhooks
from testkit.services import rabbitmq_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SMOKE_RUNS = {
    "ingest": ["--rates", "200", "--duration", "2", "--events", "40"],
    "retry": ["--events", "10", "--schedule", "1s,1s", "--rate", "50"],
    "duplicates": ["--events", "40", "--copies", "3"],
    "e2e": ["--mode", "stack", "--events", "40"],
    "size": ["--rows", "2000", "--rounds", "1", "--duration", "2", "--idle-seconds", "2", "--steady-rate", "50",
             "--steady-rounds", "1", "--plans"],
    "size_steady": ["--retention-days", "1", "--cycles", "4", "--rows-per-day", "300"],
    "console": ["--events", "3000", "--baseline-events", "300", "--repeat", "1"],
}
NEEDS_BROKER = {"retry", "e2e", "size"}


@pytest.fixture(scope="module")
def server_url() -> str:
    url = os.environ.get("PAYHOOKS_TEST_DATABASE_URL")
    if not url:
        pytest.skip("the benchmarks need a Postgres server: set PAYHOOKS_TEST_DATABASE_URL (CI does)")
    return url


@pytest.mark.parametrize("bench", list(SMOKE_RUNS))
def test_bench_runs_and_its_checks_pass(bench: str, server_url: str) -> None:
    argv = [sys.executable, "-m", f"bench.{bench}", *SMOKE_RUNS[bench], "--server-url", server_url]
    if bench in NEEDS_BROKER:
        broker = rabbitmq_url()
        if broker is None:
            pytest.skip("RabbitMQ does not answer (CI requires it)")
        argv += ["--broker-url", broker]
    # Given a fresh database and the real processes, When the bench runs with a tiny N
    done = subprocess.run(argv, check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=220,
                          env=env_without_payhooks())
    # Then it exits 0: every correctness check passed (a missed speed target never fails it)
    report = f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr (last 4000)\n{done.stderr[-4000:]}"
    assert done.returncode == 0, report
    assert re.search(r"^result:\s+OK", done.stdout, re.MULTILINE), report
