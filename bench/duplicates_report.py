"""``bench.duplicates``'s per-phase figures, checks and readable report; its duplicates-only phase with wrk."""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench import wrk
from bench.cpu import CpuSampler
from bench.summary import cpu_line, header, latency, verdict
from testkit.load import SendResult, Signer, WebhookRequest, summarize_ms
from testkit.processes import log

TOOL = ("Python http.client threads (testkit/load.py), closed loop, one keep-alive connection each; "
        "each delivery signed just before it is sent")


def phase_figures(name: str, answers: SendResult, event_of: list[int], expected: list[int | None],
                  sampler: CpuSampler, *, first_deliveries: bool) -> dict[str, Any]:
    """A phase of Python threads: its figures, CPU and :func:`check_phase`'s ``problems``."""
    log(f"phase {name}: {answers.sent} answered in {answers.duration:.1f} s, {dict(answers.outcomes)}")
    by_outcome: dict[str, list[float]] = defaultdict(list)
    for answer in (a for a in answers.answers if a is not None):
        by_outcome[answer.outcome].append(answer.latency_s)
    sent = answers.figures()
    return {
        "name": name, "tool": TOOL, "deliveries": len(answers.answers), "answered": sent["sent"],
        "answers": sent["outcomes"], "duration_s": sent["duration_s"], "requests_per_s": sent["rate_per_s"],
        "duplicates_per_s": round(len(by_outcome["200 duplicate"]) / answers.duration, 1) if answers.duration else None,
        "latency_ms": {"all": sent["client_latency_ms"],
                       "first delivery (accepted)": summarize_ms(by_outcome["200 accepted"]),
                       "duplicate": summarize_ms(by_outcome["200 duplicate"])},
        "generator_cpu_pct_of_one_core": sent["generator_cpu_pct_of_one_core"],
        "cpu": sampler.summary(answers.started, answers.started + answers.duration),
        "problems": check_phase(name, answers, event_of, expected, first_deliveries=first_deliveries),
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
    lines = [
        header("duplicates", figures["machine"]),
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
            lines.append(f"  latency {kind}: {latency(lat)}")
    lines.append(cpu_line(p.get("cpu") or {}))
    return lines


MIN_RATE_PER_S = 300
"""wrk is given the time to send every delivery at this rate; a slower receiver fails the check (unanswered)."""


def duplicates_only(base_url: str, requests: list[WebhookRequest], *, expected_ids: list[int | None],
                    signer: Signer, connections: int, max_seconds: float, workdir: Path,
                    sampler: CpuSampler) -> dict[str, Any]:
    """The duplicates-only phase with wrk: the receiver's duplicate rate, not Python's.

    Python threads that keep every answer cost about 0.5 ms of CPU per request (testkit/load.py), as
    much as the receiver's duplicate path, so on two cores they cap the rate they measure. wrk sends
    each pre-signed delivery once (bench/wrk.py's pool) and its Lua script keeps the id every answer
    names. wrk cannot tell which answer belongs to which request, so the check is on the whole: every
    answer is ``200 duplicate``, and the ids named are exactly the rows of the events sent (each
    delivered once here: each row once).
    """
    # wrk runs for its whole -d even when every thread is done: allow for a receiver at 300/s
    result = wrk.send_pool(base_url, requests, signer=signer, name="duplicates", threads=2,
                           connections=min(connections, len(requests)), workdir=workdir, collect_ids=True,
                           duration_s=min(max_seconds, 2 + len(requests) / MIN_RATE_PER_S))
    window, answers, lat = result.window_s, result.answers, result.latency_ms
    figures: dict[str, Any] = {
        "name": "duplicates only", "tool": result.tool, "deliveries": len(requests), "answered": result.answered,
        "answers": answers, "duration_s": round(window, 3),
        "requests_per_s": round(result.answered / window, 1) if window else None,
        "duplicates_per_s": round(result.duplicate / window, 1) if window else None,
        "latency_ms": {"all": {"p50": lat["p50"], "p90": lat["p90"], "p99": lat["p99"], "max": lat["max"]}},
        "generator_cpu_pct_of_one_core": round(100 * result.wrk_cpu_seconds / window, 1) if window else None,
        "cpu": sampler.summary(result.first_at, result.last_at),
        "problems": [],
    }
    sent, problems = len(requests), figures["problems"]
    if result.answered != sent or result.sent != sent:
        problems.append(f"duplicates only: {result.answered} answers to {sent} deliveries (wrk sent {result.sent})")
    if result.duplicate != result.answered:
        problems.append(f"duplicates only: answers other than 200 duplicate: {result.statuses}, "
                        f"accepted {result.accepted}")
    named, wanted = Counter(result.ids), Counter(expected_ids)
    if named != wanted:
        extra, missing = named - wanted, wanted - named
        problems.append(f"duplicates only: the ids answered are not the events' rows ({sum(extra.values())} "
                        f"unexpected, e.g. {list(extra)[:3]}; {sum(missing.values())} missing)")
    log(f"phase duplicates only (wrk): {result.answered} answered in {window:.1f} s, {answers}")
    return figures
