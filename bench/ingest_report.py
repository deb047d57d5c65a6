"""``bench.ingest``'s checks, targets and readable report (``--json`` prints the dict itself)."""
from __future__ import annotations

from typing import Any

from bench.summary import TargetCheck, cpu_line, header, latency, ms, target_lines, verdict

SATURATION_GOAL_PER_S = 2000.0
SATURATION_P99_GOAL_MS = 50.0
P99_GOAL_MS = 20.0
P99_GOAL_RATE = 1000.0
RSS_GOAL_MB = 80.0

TOLERATED = ("200 accepted", "503")
"""Answers that are no bug: stored, or 503 (the database too slow: the provider retries)."""


def _phase(figures: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in figures.get("phases", []) if p["name"] == name), None)


def problems_in(figures: dict[str, Any]) -> list[str]:
    """Correctness: rows added = accepted answers; only 200 accepted (or 503) to distinct events."""
    problems = []
    phases = list(figures.get("phases", []))
    for compared in figures.get("compare", []):
        phases += [{**p, "name": f"{compared['label']}: {p['name']}"} for p in compared["phases"]]
    for phase in phases:
        if phase["name"].endswith("healthz"):
            if phase["rows_added"]:
                problems.append(f"healthz: {phase['rows_added']} rows appeared while only GET /healthz ran")
            continue
        if phase["rows_added"] != phase["accepted"]:
            problems.append(f"{phase['name']}: {phase['rows_added']} rows added for {phase['accepted']} "
                            f"answers 'accepted' (answers: {phase['answers']})")
        wrong = {k: v for k, v in phase["answers"].items() if k not in TOLERATED and not k.startswith("error")}
        if wrong:
            problems.append(f"{phase['name']}: answers other than 200 accepted/503: {wrong}")
        if not phase["accepted"]:
            problems.append(f"{phase['name']}: no event accepted")
    return problems


def _p99(goal: str, phase: dict[str, Any] | None, limit: float) -> TargetCheck:
    if phase is None:
        return TargetCheck(goal, "-", None)
    p99 = phase["latency_ms"].get("p99")
    return TargetCheck(goal, f"{ms(p99)} ms", p99 is not None and p99 <= limit)


def evaluate(figures: dict[str, Any]) -> list[TargetCheck]:
    saturation, healthz = _phase(figures, "saturation"), _phase(figures, "healthz")
    rate = saturation["accepted_per_s"] if saturation else None
    checks = [TargetCheck(f"ingest ≥ {SATURATION_GOAL_PER_S:,.0f} accepted/s at saturation",
                          "-" if rate is None else f"{rate:,.0f}/s", None if rate is None else rate >= SATURATION_GOAL_PER_S)]
    if saturation:
        checks.append(_p99(f"p99 ≤ {SATURATION_P99_GOAL_MS:g} ms at saturation", saturation, SATURATION_P99_GOAL_MS))
    checks.append(_p99(f"p99 ≤ {P99_GOAL_MS:g} ms at {P99_GOAL_RATE:,.0f}/s offered",
                       _phase(figures, f"{P99_GOAL_RATE:g}/s"), P99_GOAL_MS))
    if saturation and healthz and healthz["answered_per_s"]:  # information: what a webhook costs over a bare GET
        checks.append(TargetCheck("ratio to the bare /healthz rate (no target)",
                                  f"{rate:,.0f} ÷ {healthz['answered_per_s']:,.0f} = "
                                  f"{rate / healthz['answered_per_s']:.2f}", None))
    workers = figures.get("memory", {}).get("workers", {})
    if workers:
        worst = max(w["rss_mb"] for w in workers.values())
        checks.append(TargetCheck(f"receiver RSS ≤ {RSS_GOAL_MB:g} MB per worker process after the run",
                                  f"max {worst:.1f} MB", worst <= RSS_GOAL_MB))
    return checks


def render(figures: dict[str, Any]) -> str:
    s = figures["settings"]
    server = (f"`payhooks serve {s['serve_args']}`" if s.get("serve_args") else
              f"`payhooks serve` production defaults (granian, {s['receiver_workers']} worker processes)")
    lines = [
        header("ingest", figures["machine"]),
        (f"receiver: {server}, alone on a fresh database; distinct signed events, all five providers round-robin; "
         f"{s['connections']} connections, {s['duration_s']:g} s per phase"),
        cpu_line(figures.get("idle_cpu") or {}, indent="before load: "),
    ]
    for phase in figures["phases"]:
        lines.extend(_phase_lines(phase))
    lines.append(_memory_line(figures.get("memory", {})))
    if figures.get("compare"):
        lines.extend(_compare_lines(figures["compare"], figures))
    lines += [*target_lines(figures["targets"]), verdict(figures.get("problems", []), figures.get("log_dir"))]
    return "\n".join(lines)


def _phase_lines(p: dict[str, Any]) -> list[str]:
    errors = ", ".join(f"{k} × {v}" for k, v in p["errors"].items()) or "none"
    what = "GET /healthz answered" if p["name"] == "healthz" else "accepted"
    rate = p["answered_per_s"] if p["name"] == "healthz" else p["accepted_per_s"]
    lines = [
        f"{p['name']:<11} [{p['tool']}]",
        (f"  {p['sent']} sent, {p['accepted']} {what} in {p['window_s']:.2f} s = {rate:,.1f}/s; latency "
         f"{latency(p['latency_ms'])}; errors: {errors}"),
    ]
    gen = p["generator"]
    generator = f"generator {gen.get('cpu_pct_of_one_core')} % of one core"
    if p["offered_rate"]:
        generator += f", sent at {gen.get('achieved_send_rate_per_s')}/s of {p['offered_rate']:g}/s offered"
        if "max_lateness_s" in gen:
            generator += f", worst lateness {gen.get('max_lateness_s') or 0} s"
        if gen.get("unsent"):
            generator += (f"; {gen['unsent']} events left unsent when the phase stopped (the receiver "
                          f"did not keep up)")
    if gen.get("note"):
        generator += f" — {gen['note']}"
    if p["name"] != "healthz":
        check = "= accepted" if p["rows_added"] == p["accepted"] else "≠ accepted (FAILED)"
        lines.append(f"  rows +{p['rows_added']} {check}; {generator}")
    else:
        lines.append(f"  {generator}")
    lines.append(cpu_line(p["cpu"]))
    return lines


def _memory_line(memory: dict[str, Any]) -> str:
    workers = memory.get("workers", {})
    if not workers:
        return "memory: (not measured)"
    rss, uss, pss = (", ".join(f"{w.get(key, 0):.1f}" for w in workers.values())
                     for key in ("rss_mb", "uss_mb", "pss_mb"))
    return (f"memory after the run: receiver worker processes RSS {rss} MB (unique USS {uss} MB, "
            f"proportional PSS {pss} MB); master RSS {memory['master_rss_mb']:.1f} MB")


def _compare_lines(compared: list[dict[str, Any]], main: dict[str, Any]) -> list[str]:
    """``--compare``: a table of this run's receiver, then each comparison, with the ratios to the first."""
    rows = [("this receiver", main)] + [(c["label"], c) for c in compared]
    base_sat = _rate(main, "saturation")
    lines = ["same run, same tool and connections (healthz and saturation of each receiver):",
             f"  {'receiver':<34} {'/healthz/s':>11} {'accepted/s':>11} {'p50 ms':>7} {'p99 ms':>7} "
             f"{'max RSS MB':>10}  vs this"]
    for label, figures in rows:
        lat = (_phase(figures, "saturation") or {}).get("latency_ms", {})
        rss = max((w["rss_mb"] for w in figures.get("memory", {}).get("workers", {}).values()), default=0.0)
        rate = _rate(figures, "saturation")
        ratio = f"{base_sat / rate:.2f}×" if rate and label != "this receiver" else ""
        lines.append(f"  {label:<34} {_rate(figures, 'healthz'):>11,.0f} {rate:>11,.0f} "
                     f"{lat.get('p50') or 0:>7.1f} {lat.get('p99') or 0:>7.1f} {rss:>10.1f}  {ratio}")
    return lines


def _rate(figures: dict[str, Any], name: str) -> float:
    phase = _phase(figures, name) or {}
    return phase.get("answered_per_s" if name == "healthz" else "accepted_per_s", 0.0)
