"""``bench.duplicates``'s per-phase figures, checks and readable report."""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from bench.summary import cpu_line, ms, verdict
from testkit.load import SendResult, summarize_ms

TOOL = ("Python http.client threads (testkit/load.py), closed loop, one keep-alive connection each; "
        "each delivery signed just before it is sent")


def phase_figures(name: str, answers: SendResult) -> dict[str, Any]:
    done = [a for a in answers.answers if a is not None]
    by_outcome: dict[str, list[float]] = defaultdict(list)
    for answer in done:
        by_outcome[answer.outcome].append(answer.latency_s)
    duration = answers.duration
    return {
        "name": name, "tool": TOOL, "deliveries": len(answers.answers), "answered": len(done),
        "answers": dict(Counter(a.outcome for a in done)), "duration_s": round(duration, 3),
        "requests_per_s": round(len(done) / duration, 1) if duration else None,
        "duplicates_per_s": round(len(by_outcome["200 duplicate"]) / duration, 1) if duration else None,
        "latency_ms": {"all": summarize_ms([a.latency_s for a in done]),
                       "first delivery (accepted)": summarize_ms(by_outcome["200 accepted"]),
                       "duplicate": summarize_ms(by_outcome["200 duplicate"])},
        "generator_cpu_pct_of_one_core": round(100 * answers.cpu_seconds / duration, 1) if duration else None,
    }


def check_phase(name: str, answers: SendResult, event_of: list[int], expected: list[int | None], *,
                first_deliveries: bool) -> list[str]:
    """Every answer 200 accepted|duplicate naming its event's row; one ``accepted`` per event (mixed phase)."""
    problems = []
    unanswered = sum(a is None for a in answers.answers)
    if unanswered:
        problems.append(f"{name}: {unanswered} deliveries never answered (time limit)")
    wrong_answer = Counter(a.outcome for a in answers.answers
                           if a is not None and a.outcome not in ("200 accepted", "200 duplicate"))
    if wrong_answer:
        problems.append(f"{name}: answers other than 200 accepted/duplicate: {dict(wrong_answer)}")
    wrong_id = [(i, a.event_row_id, expected[i]) for i, a in enumerate(answers.answers)
                if a is not None and a.outcome.startswith("200 ") and a.event_row_id != expected[i]]
    if wrong_id:
        index, got, wanted = wrong_id[0]
        problems.append(f"{name}: {len(wrong_id)} answers named the wrong row (e.g. delivery {index}: "
                        f"id {got}, the row holding its body is {wanted})")
    accepted = Counter(event_of[i] for i, a in enumerate(answers.answers)
                       if a is not None and a.outcome == "200 accepted")
    events = set(event_of)
    if first_deliveries:
        not_once = [e for e in events if accepted.get(e, 0) != 1]
        if not_once:
            problems.append(f"{name}: {len(not_once)} events not accepted exactly once "
                            f"(e.g. event {not_once[0]}: {accepted.get(not_once[0], 0)} times)")
    elif accepted:
        problems.append(f"{name}: {sum(accepted.values())} deliveries of already-stored events answered "
                        "'accepted'")
    return problems


def render(figures: dict[str, Any]) -> str:
    if "phases" not in figures:
        return verdict(figures.get("problems") or ["unknown"], figures.get("log_dir"))
    m = figures["machine"]
    lines = [
        (f"payhooks duplicates — as of {m['revision']}, {m['at']}; {m['cpus']} CPUs, load average "
        f"{m['load_average_1m']}"),
        (f"`payhooks serve` production defaults, alone on a fresh database; {figures['events']} distinct events "
        f"(all five providers) × {figures['copies']} deliveries, shuffled; {figures['concurrency']} connections"),
        f"tool: {TOOL}",
    ]
    for phase in figures["phases"]:
        lines.extend(_phase_lines(phase))
    lines.append(f"rows: {figures['rows']} for {figures['events']} distinct events "
                 f"({'one per event' if figures['rows'] == figures['events'] else 'WRONG'}); every answer checked "
                 "against the id of the row holding its body")
    lines.append(verdict(figures.get("problems", []), figures.get("log_dir")))
    return "\n".join(lines)


def _phase_lines(p: dict[str, Any]) -> list[str]:
    answers = ", ".join(f"{k} × {v}" for k, v in sorted(p["answers"].items()))
    lines = [(f"{p['name']}: {p['answered']} of {p['deliveries']} deliveries answered in {p['duration_s']:.2f} s = "
             f"{p['requests_per_s']} requests/s (duplicates {p['duplicates_per_s']}/s); {answers}; "
             f"generator {p['generator_cpu_pct_of_one_core']} % of one core")]
    if p.get("tool") and p["tool"] != TOOL:
        lines.append(f"  tool: {p['tool']}")
    for kind, lat in p["latency_ms"].items():
        if lat["p50"] is not None:
            lines.append(f"  latency {kind}: p50 {ms(lat['p50'])} / p90 {ms(lat['p90'])} / p99 {ms(lat['p99'])} / "
                         f"max {ms(lat['max'])} ms")
    lines.append(cpu_line(p.get("cpu") or {}))
    return lines
