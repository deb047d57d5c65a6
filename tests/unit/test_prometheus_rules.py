"""The shipped Prometheus rules: valid (`promtool check rules`), unit-tested (`promtool test rules`),
and naming only metrics payhooks exports."""
from __future__ import annotations

import re
import subprocess

from models import metrics
from testkit.processes import REPO_ROOT
from tests.conftest import tool_or_skip

RULES_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "payhooks-rules.yml"
RULE_TESTS = RULES_DIR / "payhooks-rules.test.yml"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = tool_or_skip("promtool", "apt-get install prometheus")
    return subprocess.run([promtool, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules() -> None:
    result = _run("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = _run("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def _exported_names() -> set[str]:
    names: set[str] = set()
    for value in vars(metrics).values():
        describe = getattr(value, "describe", None)
        if callable(describe) and hasattr(value, "_name"):
            for family in describe():
                names.add(family.name)
                if family.type == "counter":
                    names.add(f"{family.name}_total")
    return names


def test_rules_name_only_metrics_payhooks_exports() -> None:
    used = set(re.findall(r"\bpayhooks_[a-z_]+\b", RULES.read_text()))
    assert used, "no payhooks metric in the rules"
    assert used <= _exported_names(), used - _exported_names()
