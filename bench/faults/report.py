"""The per-scenario table (stdout) and the whole run as JSON."""
from __future__ import annotations

import json
from pathlib import Path

from bench.faults.results import ScenarioResult

COLUMNS = ("scenario", "mode", "sent", "acked", "requests (by answer)", "final (succeeded/ignored/dead)",
           "dup effects", "lost", "resends", "recovery s", "secrets", "result")


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def row(result: ScenarioResult) -> list[str]:
    final = result.final
    answers = ", ".join(f"{label}: {count}" for label, count in result.answers.items())
    return [
        result.scenario, result.mode, str(result.sent), str(result.acknowledged),
        f"{result.requests} ({answers})",
        f"{final.get('succeeded', 0)}/{final.get('ignored', 0)}/{final.get('dead', 0)}"
        + (f" +{final['not final']} not final" if final.get("not final") else ""),
        str(result.duplicate_effects), str(result.lost), str(result.resends), _seconds(result.recovery_s),
        str(result.leaks), "pass" if result.passed else "FAIL",
    ]


def markdown_table(results: list[ScenarioResult]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(result)) + " |" for result in results]
    return "\n".join(lines)


def details(result: ScenarioResult) -> str:
    """Notes, the fault's own figures and every failure of one scenario, for under the table."""
    parts = [(f"{result.scenario} ({result.title}): {result.seconds:.0f} s, settled {_seconds(result.settled_s)} s "
              f"after the fault, slowest answer {result.max_answer_s:.2f} s, searched "
              f"{result.scanned.get('log_lines', 0)} log lines and {result.scanned.get('db_rows', 0)} rows")]
    if result.notes:
        parts.append("  notes: " + json.dumps(result.notes, sort_keys=True))
    parts += [f"  FAILED: {failure}" for failure in result.failures]
    for name, values in result.details.items():
        parts += [f"    {name}: {value}" for value in values]
    parts += [f"    secret: {place}" for place in result.leak_places]
    if not result.passed:
        parts.append(f"  logs: {result.run_dir}")
    return "\n".join(parts)


def print_report(results: list[ScenarioResult]) -> None:
    print(markdown_table(results))
    print()
    for result in results:
        print(details(result))


def write_json(results: list[ScenarioResult], path: Path) -> None:
    path.write_text(json.dumps([result.__dict__ for result in results], indent=2, default=str))
