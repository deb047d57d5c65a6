"""What one scenario measured, and whether payhooks kept its promise in it."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.faults.leaks import Leak
from bench.faults.ledger import Findings
from bench.faults.settle import Drained

if TYPE_CHECKING:
    from bench.faults.runner import Fault, Scenario, Sizes
    from bench.faults.traffic import Traffic

LEAK_LIMIT = 10


def _answer_label(answer: Any) -> str:
    return str(answer.status) if answer.status is not None else (answer.error or "no answer")


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
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @classmethod
    def build(cls, *, scenario: Scenario, quick: bool, sizes: Sizes, traffic: Traffic, findings: Findings,
              fault: Fault, drained: Drained, leaks: list[Leak], scanned: dict[str, int],
              exited_early: list[str], run_dir: Path, seconds: float) -> ScenarioResult:
        summary = findings.summary()
        notes = dict(fault.notes)
        if drained.left != (0, 0):
            notes["not_final_at_end"] = {"events": drained.left[0], "deliveries": drained.left[1]}
        if exited_early:
            notes["exited_early"] = exited_early
        bare_503 = sum(1 for a in traffic.answers if a.status == 503 and a.outcome != "cli" and not a.retry_after)
        return cls(
            scenario=scenario.name, title=scenario.title, mode="quick" if quick else "full",
            sizes=asdict(sizes), sent=traffic.sent_count(), requests=len(traffic.answers),
            acknowledged=len(traffic.acknowledged), never_acknowledged=len(traffic.gave_up),
            answers=dict(sorted(Counter(_answer_label(a) for a in traffic.answers).items())),
            final=summary["final"], lost=summary["lost"], duplicate_effects=summary["duplicate_effects"],
            missing_effects=summary["missing_effects"], unexpected=summary["unexpected"],
            resends=summary["resends"], recovery_s=drained.recovery_s, settled_s=drained.settled_s,
            max_answer_s=max((a.seconds for a in traffic.answers if a.outcome != "cli"), default=0.0),
            leaks=len(leaks), leak_places=sorted({f"{leak.label} in {leak.where}" for leak in leaks})[:LEAK_LIMIT],
            scanned=scanned, notes=notes, details=summary["detail"], run_dir=str(run_dir), seconds=seconds,
            problems=list(fault.problems) + [f"{name} exited on its own" for name in exited_early]
            + ([f"{bare_503} answer(s) 503 without Retry-After"] if bare_503 else []),
        )


def judge(result: ScenarioResult) -> None:
    """Fill ``result.failures``: every way the promise (or the harness's own expectation) was broken."""
    failures = list(result.problems)
    counts = {"lost": result.lost, "duplicate effects": result.duplicate_effects,
              "missing effects": result.missing_effects, "unexpected outcomes": result.unexpected,
              "secrets found": result.leaks, "events never acknowledged": result.never_acknowledged}
    failures += [f"{name}: {count}" for name, count in counts.items() if count]
    for label, count in result.answers.items():
        if not label.isdigit():
            failures.append(f"{count} request(s) without an answer ({label})")
        elif int(label) >= 300 and label != "503":  # 4xx: the harness or the receiver is wrong
            failures.append(f"{count} answer(s) {label}")
    if result.settled_s is None:
        failures.append("not everything was final when the wait ended")
    result.failures = failures
