"""``bench.duplicates``' duplicates-only phase with wrk: the receiver's duplicate rate, not Python's.

Python threads that keep every answer cost about 0.5 ms of CPU per request
(testkit/load.py), as much as the receiver's duplicate path, so on two cores
they cap the rate they measure. wrk sends each pre-signed delivery once
(bench/wrk.py's pool) and its Lua script keeps the id every answer names.
wrk cannot tell which answer belongs to which request, so the check is on
the whole: every answer is ``200 duplicate``, and the ids named are exactly
the rows of the events sent (each delivered once here: each row once).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bench import wrk
from bench.cpu import CpuSampler
from testkit.load import Signer, WebhookRequest
from testkit.processes import log

MIN_RATE_PER_S = 300
"""wrk is given the time to send every delivery at this rate; a slower receiver fails the check (unanswered)."""
TOOL = "wrk -t2 (closed loop; Lua sends each pre-signed delivery once and keeps the id of every answer)"


def duplicates_only(base_url: str, requests: list[WebhookRequest], *, expected_ids: list[int | None],
                    signer: Signer, connections: int, max_seconds: float, workdir: Path,
                    sampler: CpuSampler) -> dict[str, Any]:
    signer.sign_all(requests)
    threads = 2
    prefix = workdir / "duplicates-pool"
    wrk.write_pool(requests, prefix=prefix, threads=threads, base_url=base_url)
    # wrk runs for its whole -d even when every thread is done: allow for a receiver at 300/s
    duration_s = min(max_seconds, 2 + len(requests) / MIN_RATE_PER_S)
    result = wrk.run_pool(base_url, prefix=prefix, pool_size=len(requests), duration_s=duration_s,
                          threads=threads, connections=min(connections, len(requests)), workdir=workdir,
                          collect_ids=True)
    for index in range(threads):
        Path(f"{prefix}.{index}").unlink(missing_ok=True)
    window = result.window_s
    answers = {("200 duplicate" if k == "200" else k): v for k, v in result.statuses.items()}
    if result.accepted or result.other_200:
        answers["200 duplicate"] = result.duplicate
        answers.update({"200 accepted": result.accepted} if result.accepted else {})
        answers.update({"200 other": result.other_200} if result.other_200 else {})
    lat = result.latency_ms
    figures: dict[str, Any] = {
        "name": "duplicates only", "tool": result.tool, "deliveries": len(requests), "answered": result.answered,
        "answers": answers, "duration_s": round(window, 3),
        "requests_per_s": round(result.answered / window, 1) if window else None,
        "duplicates_per_s": round(result.duplicate / window, 1) if window else None,
        "latency_ms": {"all": {"p50": lat["p50"], "p90": lat["p90"], "p99": lat["p99"], "max": lat["max"]}},
        "generator_cpu_pct_of_one_core": round(100 * result.wrk_cpu_seconds / window, 1) if window else None,
        "cpu": sampler.summary(result.first_at, result.last_at),
    }
    figures["problems"] = _check(result, expected_ids, len(requests))
    log(f"phase duplicates only (wrk): {result.answered} answered in {window:.1f} s, {answers}")
    return figures


def _check(result: wrk.WrkResult, expected_ids: list[int | None], sent: int) -> list[str]:
    problems = []
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
    return problems
