"""The size benchmark's targets and its text report."""
from __future__ import annotations

from typing import Any

from bench.summary import TargetCheck, mb, target_lines, verdict

INGEST_RATIO = 0.9
OPERATOR_S = 1.0
IDLE_DISPATCHER_PCT = 2.0
PRUNE_PER_S = 5000
PRUNE_P99_FACTOR = 2.0


def targets(figures: dict[str, Any]) -> list[TargetCheck]:
    ingest = figures["ingest"]
    ratio = ingest["filled"]["median_accepted_per_s"] / max(ingest["empty"]["median_accepted_per_s"], 0.001)
    checks = [TargetCheck(f"ingest filled/empty ≥ {INGEST_RATIO}", f"{ratio:.2f}", ratio >= INGEST_RATIO)]
    for name, seconds in figures["operator_s"]["filled"].items():
        checks.append(TargetCheck(f"`{name}` at {figures['rows']:,} rows ≤ {OPERATOR_S:g} s", f"{seconds:.2f} s",
                                  seconds <= OPERATOR_S))
    if "plans" in figures:  # the "index-bound": a sequential scan of a big table is the miss
        scans = sorted(name for name, plan in figures["plans"].items() if "Seq Scan" in plan)
        checks.append(TargetCheck("every operator query's plan uses an index (no Seq Scan)",
                                  ", ".join(scans) or "none", not scans))
    idle = figures["idle_dispatcher"]["filled"]["total_pct"]
    checks.append(TargetCheck(f"idle dispatcher (with its Postgres backends) ≤ {IDLE_DISPATCHER_PCT:g} % of a core",
                              f"{idle:.2f} %", idle <= IDLE_DISPATCHER_PCT))
    prune = figures.get("prune")
    if prune is None:
        return checks
    rate = prune["events_per_s"]
    checks.append(TargetCheck(f"prune (archive included) ≥ {PRUNE_PER_S:,}/s", f"{rate or 0:,}/s",
                              None if rate is None else rate >= PRUNE_PER_S))
    pooled = prune["pooled_p99_ms"]
    during, alone = pooled["during"], pooled["without"] or 0.0
    checks.append(TargetCheck(f"ingest p99 at a steady rate while pruning ≤ {PRUNE_P99_FACTOR:g} × without "
                              "(every request of each side)", f"{during or 0:.1f} ms vs {alone:.1f} ms",
                              None if during is None else during <= PRUNE_P99_FACTOR * alone))
    return checks


def render(figures: dict[str, Any]) -> str:
    m, fill = figures["machine"], figures["fill"]
    lines = [f"payhooks size benchmark — {m['at']}, {m['cpus']} CPUs, load {m['load_average_1m']}, "
             f"revision {m['revision']}",
             f"filled: {fill['rows']:,} final events over {figures['days']:g} days in {fill['fill_s']} s "
             f"(+ vacuum {fill['vacuum_s']} s, first fold {fill['first_fold_s']} s); database "
             f"{mb(fill['database_bytes'])}", "", "ingest (wrk, closed loop; alternated rounds):"]
    for name, data in figures["ingest"].items():
        per_round = ", ".join(f"{r['accepted_per_s']:,.0f}/s p99 {r['p99_ms'] or 0:.1f} ms" for r in data["rounds"])
        lines.append(f"  {name:>6}: median {data['median_accepted_per_s']:,.0f}/s, p99 "
                     f"{data['median_p99_ms']:.1f} ms  [{per_round}]")
    lines += ["", "operator commands: wall time of the whole command (interpreter start included) | "
              "its queries alone; median of 3:"]
    for name in figures["operator_s"]["filled"]:
        lines.append(f"  {name:<12} filled {figures['operator_s']['filled'][name]:.2f} s | "
                     f"{figures['query_s']['filled'][name] * 1000:.1f} ms;  empty "
                     f"{figures['operator_s']['empty'][name]:.2f} s | {figures['query_s']['empty'][name] * 1000:.1f} ms")
    lines += ["", "idle dispatcher (% of one core):"]
    for name, idle in figures["idle_dispatcher"].items():
        lines.append(f"  {name:>6}: dispatcher {idle['dispatcher_pct']} + its Postgres backends "
                     f"{idle['postgres_pct']} = {idle['total_pct']}")
    for name, idle in figures.get("idle_dispatcher_baseline", {}).items():
        lines.append(f"  {name:>6}, baseline tree: dispatcher {idle['dispatcher_pct']} + its Postgres backends "
                     f"{idle['postgres_pct']} = {idle['total_pct']}")
    prune = figures.get("prune") or {}
    lines += [] if not prune else ["", f"prune a third ({prune['expected']:,} events) while ingesting: removed {prune['removed']:,} in "
              f"{prune['seconds']} s = {prune['events_per_s'] or 0:,}/s; archive {mb(prune['archive_bytes'])}, "
              f"{prune['archive_lines']:,} lines",
              f"  steady ingest p99 over every request: {prune['pooled_p99_ms']['without'] or 0:.1f} ms without "
              f"pruning ({prune['pooled_p99_ms']['requests_without']:,} requests), "
              f"{prune['pooled_p99_ms']['during'] or 0:.1f} ms while pruning "
              f"({prune['pooled_p99_ms']['requests_during']:,} requests)",
              *(f"  steady ingest rounds {name}: " + ", ".join(
                  f"{r['accepted_per_s']:,.0f}/s p99 {r['p99_ms'] or 0:.1f} ms" for r in prune[key])
                for name, key in (("without pruning", "steady_without"), ("while pruning", "ingest_rounds"))),
              "  table sizes before → after: " + ", ".join(
                  f"{t} {mb(prune['bytes_before'][t])} → {mb(prune['bytes_after'][t])}" for t in prune["bytes_before"])]
    if "plans" in figures:
        lines += ["", "plans (EXPLAIN ANALYZE on the filled table):"]
        for name, plan in figures["plans"].items():
            lines.append(f"  -- {name}")
            lines += [f"     {row}" for row in plan.splitlines()]
    lines += ["", *target_lines(figures["targets"], "targets:")]
    lines += ["", verdict(figures["problems"], figures.get("log_dir"))]
    return "\n".join(lines)
