"""The harness's own checks, on made-up data (bench/faults/selfcheck.py): a ledger that cannot fail would
prove nothing. Run as ``python -m bench.faults.selfcheck`` (tests import testkit, never bench)."""
from __future__ import annotations

import os
import subprocess
import sys

from testkit.processes import REPO_ROOT


def test_the_judge_catches_made_up_faults() -> None:
    # Given made-up events, answers, secrets and a plan, When the harness judges them
    done = subprocess.run([sys.executable, "-m", "bench.faults.selfcheck"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={k: v for k, v in os.environ.items() if not k.startswith("PAYHOOKS_")})
    # Then every check holds: the state machine replayed, duplicates and secrets found, the plan complete
    assert done.returncode == 0, done.stdout + done.stderr
    assert "self-check: the harness's judge caught every made-up fault" in done.stdout
