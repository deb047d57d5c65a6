"""What one scenario measured, whether payhooks kept its promise in it; the table (stdout) and the JSON."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COLUMNS = ("scenario", "mode", "sent", "acked", "requests (by answer)", "final (succeeded/ignored/dead)",
           "dup effects", "lost", "resends", "recovery s", "secrets", "result")


@dataclass
class ScenarioResult:
    scenario: str
    title: str
    mode: str
    sizes: dict[str, Any]
    sent: int
    requests: int
    acknowledged: int
    never_acknowledged: int
    answers: dict[str, int]
    final: dict[str, int]
    lost: int
    duplicate_effects: int
    missing_effects: int
    unexpected: int
    resends: int
    recovery_s: float | None
    settled_s: float | None
    max_answer_s: float
    leaks: int
    leak_places: list[str]
    scanned: dict[str, int]
    notes: dict[str, Any]
    details: dict[str, list[str]]
    run_dir: str
    seconds: float
    problems: list[str] = field(default_factory=list)
    failures: list[str] = field(init=False)
    """Every way the promise (or the harness's own expectation) was broken."""

    def __post_init__(self) -> None:
        failures = list(self.problems)
        counts = {"lost": self.lost, "duplicate effects": self.duplicate_effects,
                  "missing effects": self.missing_effects, "unexpected outcomes": self.unexpected,
                  "secrets found": self.leaks, "events never acknowledged": self.never_acknowledged}
        failures += [f"{name}: {count}" for name, count in counts.items() if count]
        for label, count in self.answers.items():
            if not label.isdigit():
                failures.append(f"{count} request(s) without an answer ({label})")
            elif int(label) >= 300 and label != "503":  # 4xx: the harness or the receiver is wrong
                failures.append(f"{count} answer(s) {label}")
        if self.settled_s is None:
            failures.append("not everything was final when the wait ended")
        self.failures = failures

    @property
    def passed(self) -> bool:
        return not self.failures

    def row(self) -> list[str]:
        final, answers = self.final, ", ".join(f"{label}: {count}" for label, count in self.answers.items())
        return [
            self.scenario, self.mode, str(self.sent), str(self.acknowledged), f"{self.requests} ({answers})",
            f"{final.get('succeeded', 0)}/{final.get('ignored', 0)}/{final.get('dead', 0)}"
            + (f" +{final['not final']} not final" if final.get("not final") else ""),
            str(self.duplicate_effects), str(self.lost), str(self.resends), _seconds(self.recovery_s),
            str(self.leaks), "pass" if self.passed else "FAIL",
        ]

    def explain(self) -> str:
        """Notes, the fault's own figures and every failure, for under the table."""
        parts = [(f"{self.scenario} ({self.title}): {self.seconds:.0f} s, settled {_seconds(self.settled_s)} s "
                  f"after the fault, slowest answer {self.max_answer_s:.2f} s, searched "
                  f"{self.scanned.get('log_lines', 0)} log lines and {self.scanned.get('db_rows', 0)} rows")]
        if self.notes:
            parts.append("  notes: " + json.dumps(self.notes, sort_keys=True))
        parts += [f"  FAILED: {failure}" for failure in self.failures]
        for name, values in self.details.items():
            parts += [f"    {name}: {value}" for value in values]
        parts += [f"    secret: {place}" for place in self.leak_places]
        if not self.passed:
            parts.append(f"  logs: {self.run_dir}")
        return "\n".join(parts)


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def print_report(results: list[ScenarioResult]) -> None:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    print("\n".join(lines + ["| " + " | ".join(result.row()) + " |" for result in results]))
    print()
    for result in results:
        print(result.explain())


def write_json(results: list[ScenarioResult], path: Path) -> None:
    path.write_text(json.dumps([result.__dict__ for result in results], indent=2, default=str))
