"""``bench.retry``'s arithmetic, checks and readable report."""
from __future__ import annotations

from collections import Counter, defaultdict
from itertools import pairwise
from typing import Any

from bench.summary import TargetCheck, cpu_line, header, seconds, target_lines, verdict

EARLY_TOLERANCE_S = 0.005
"""An attempt that starts more than this before its due time is a bug (both times are Postgres' clock)."""
LATENESS_GOAL_BEYOND_POLL_S = 1.0

METHOD = ("lateness of attempt k+1 = event_attempts.started_at(k+1) − the next_attempt_at that attempt k's "
          "failure set, read from webhook_events every 0.1 s while the event was retrying (both Postgres' "
          "clock_timestamp(), so no clock skew). started_at is the worker's claim; a worker claims a batch "
          "of events (PAYHOOKS_WORKER_BATCH_SIZE) at once and runs their handlers one after another")
CROSS_CHECK = ("cross-check without the poller: started_at(k+1) − finished_at(k) − nominal delay; it also "
               "carries the schedule's ±10 % jitter, so it spreads ±0.1 × delay around the lateness")


def analyse(rows: dict[str, list[Any]], *, due: dict[tuple[int, int], float], delays: list[float],
            attempts_expected: int) -> dict[str, Any]:
    """Lateness of every retry, the cross-check, the first attempt's wait, and what is wrong."""
    by_event: dict[int, list[tuple]] = defaultdict(list)
    for event_id, number, started, finished, outcome in rows["attempts"]:
        by_event[event_id].append((number, started, finished, outcome))
    late: list[float] = []
    late_by_retry: dict[int, list[float]] = defaultdict(list)
    cross: list[float] = []
    problems: list[str] = []
    missing_due = early = 0
    for event_id, attempts in by_event.items():
        for (number, _, finished, _), (_, started, _, _) in pairwise(attempts):
            cross.append(started - finished - delays[number - 1])
            when = due.get((event_id, number))
            if when is None:
                missing_due += 1
                continue
            late.append(started - when)
            late_by_retry[number].append(started - when)
            early += started - when < -EARLY_TOLERANCE_S
    received = {r[0]: r[4] for r in rows["events"]}
    first_wait = [a[0][1] - received[e] for e, a in by_event.items() if a and a[0][0] == 1 and e in received]
    problems += _shape_problems(rows, by_event, attempts_expected)
    if early:
        problems.append(f"{early} attempts started before their due time")
    if missing_due:
        problems.append(f"{missing_due} due times not seen by the poller (lateness of those attempts unknown)")
    return {
        "method": METHOD, "cross_check_method": CROSS_CHECK,
        "lateness_s": seconds(late), "retries_measured": len(late),
        "lateness_by_retry_s": {f"retry {k} (after {delays[k - 1]:g} s)": seconds(v)
                                for k, v in sorted(late_by_retry.items())},
        "cross_check_s": seconds(cross), "first_attempt_after_receive_s": seconds(first_wait),
        "statuses": dict(Counter(r[2] for r in rows["events"])),
        "attempts_per_event": dict(Counter(len(a) for a in by_event.values())),
        "problems": problems,
    }


def _shape_problems(rows: dict[str, list[Any]], by_event: dict[int, list[tuple]],
                    attempts_expected: int) -> list[str]:
    """Every event dead after exactly ``attempts_expected`` attempts numbered 1…n, failed then dead."""
    wanted = ["failed"] * (attempts_expected - 1) + ["dead"]
    numbers = list(range(1, attempts_expected + 1))
    wrong = []
    for event_id, _, status, *_ in rows["events"]:
        attempts = by_event.get(event_id, [])
        if status != "dead" or [a[3] for a in attempts] != wanted or [a[0] for a in attempts] != numbers:
            wrong.append(event_id)
    if not wrong:
        return []
    sample = wrong[0]
    return [(f"{len(wrong)} events did not end dead after {attempts_expected} attempts (failed… then dead); "
            f"e.g. event {sample}: {by_event.get(sample)}")]


def evaluate(figures: dict[str, Any]) -> list[TargetCheck]:
    p99 = figures["lateness_s"]["p99"]
    goal = figures["poll_s"] + LATENESS_GOAL_BEYOND_POLL_S
    return [TargetCheck(f"retry lateness p99 ≤ poll {figures['poll_s']:g} s + {LATENESS_GOAL_BEYOND_POLL_S:g} s",
                        "-" if p99 is None else f"{p99:.3f} s", None if p99 is None else p99 <= goal)]


def render(figures: dict[str, Any]) -> str:
    s = figures["sent"]
    lines = [
        header("retry", figures["machine"]),
        (f"{figures['events']} events (all five providers) failing every attempt; schedule {figures['schedule']} "
        f"(±10 % jitter) for every provider; dispatcher poll {figures['poll_s']:g} s; worker defaults; "
        f"posted {s['accepted']} of {s['sent']} at {s['rate_per_s']}/s"),
        f"method: {figures['method']}",
        f"lateness (s) over {figures['retries_measured']} retries: {_dist(figures['lateness_s'])}",
        *[f"  {name}: {_dist(d)}" for name, d in figures["lateness_by_retry_s"].items()],
        f"{figures['cross_check_method']}:",
        f"  {_dist(figures['cross_check_s'])}",
        f"first attempt after receive (pending path, no schedule): {_dist(figures['first_attempt_after_receive_s'])}",
        (f"statuses: {figures['statuses']}; attempts per event: {figures['attempts_per_event']}; "
        f"all dead {figures['wait']['seconds_after_first_post']} s after the first POST"),
        cpu_line(figures.get("cpu") or {}, indent=""),
        *target_lines(evaluate(figures)),
        verdict(figures.get("problems", []), figures.get("log_dir")),
    ]
    return "\n".join(lines)


def _dist(d: dict[str, float | None]) -> str:
    if d.get("p50") is None:
        return "(none)"
    return f"p50 {d['p50']:.3f}, p90 {d['p90']:.3f}, p99 {d['p99']:.3f}, max {d['max']:.3f}, mean {d['mean']:.3f}"
