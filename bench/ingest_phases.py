"""The phases of ``bench.ingest``: each sends its own distinct events and says which tool measured it.

* :meth:`Sender.fixed_rate`: wrk paced at the rate; without wrk,
  testkit/load.py in open loop (request *i* due at ``start + i / rate``).
* :meth:`Sender.saturation`: wrk, closed loop, each pre-signed request sent
  once (bench/wrk.py); without wrk, testkit/load.py in closed loop.
* :meth:`Sender.healthz`: the same tool and concurrency as the saturation
  phase, ``GET /healthz``: the receiver's bare HTTP rate, the baseline of the ratio.

Every phase signs its requests just before it starts, so Smartpay's, Yoco's
and ShadhinPay's timestamps are seconds old when they arrive.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import wrk
from bench.workload import ALL_PROVIDERS, build_workload
from testkit.load import Signer, WebhookRequest, send_all
from testkit.processes import log

FIXED_RATE_GRACE_SECONDS = 10.0
"""A fixed-rate phase stops sending this long after its last request was due: a receiver that cannot
keep up shows as events left unsent (``generator.unsent``), not as a phase that runs for minutes."""
SATURATION_POOL_PER_S = 6000
"""Pre-signed events per second of the saturation phase: well above what two cores store."""


@dataclass
class Phase:
    name: str
    tool: str
    offered_rate: float | None
    sent: int = 0
    accepted: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    """Answer label → count: ``200 accepted``, ``200 duplicate``, ``503``, ``error TimeoutError``, …"""
    window_s: float = 0.0
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    rows_added: int | None = None
    cpu: dict[str, Any] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list, repr=False)
    """Every answer's latency (testkit/load.py phases only; wrk keeps its own histogram)."""

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.window_s if self.window_s else 0.0

    @property
    def answered_per_s(self) -> float:
        return sum(self.answers.values()) / self.window_s if self.window_s else 0.0

    @property
    def errors(self) -> dict[str, int]:
        return {label: n for label, n in self.answers.items() if label not in ("200 accepted", "200")}


def events(count: int, *, run_id: str) -> list[WebhookRequest]:
    """``count`` distinct, unsigned paid events, round-robin over all five providers."""
    return build_workload(count, ALL_PROVIDERS, run_id=run_id).requests


@dataclass
class Sender:
    """Who sends the phases, and how: wrk (``threads`` threads, its files in ``workdir``, its pid in
    ``pids`` while it runs) or, with ``wrk`` False, testkit/load.py's threads; ``connections`` either way."""

    base_url: str
    signer: Signer
    wrk: bool
    duration_s: float
    connections: int
    threads: int = 2
    workdir: Path | None = None
    pids: dict[str, int] = field(default_factory=dict)

    def fixed_rate(self, requests: list[WebhookRequest], rate: float) -> Phase:
        """wrk paced at ``rate``: evenly spaced sends, latency measured in C (a Python sender's own GIL
        waits would count as the receiver's latency); without wrk, testkit/load.py in open loop."""
        if not self.wrk:
            phase = Phase(name=f"{rate:g}/s", offered_rate=rate, tool=f"testkit/load.py (Python http.client, "
                          f"open loop at {rate:g}/s, {self.connections} connections)")
            return self._send(phase, requests, max_seconds=len(requests) / rate + FIXED_RATE_GRACE_SECONDS,
                              message=f"phase {rate:g}/s: {len(requests)} events")
        phase = self.saturation(requests, rate=rate)
        phase.name, phase.offered_rate = f"{rate:g}/s", rate
        phase.tool = (f"wrk -t{min(self.threads, self.connections)} -c{min(self.connections, len(requests))} "
                      f"paced at {rate:g}/s (Lua: sends evenly spaced, each pre-signed event once)")
        phase.generator["achieved_send_rate_per_s"] = round(phase.sent / phase.window_s, 1) if phase.window_s else 0
        phase.generator["unsent"] = len(requests) - phase.sent
        phase.generator.pop("note", None)  # its pool is rate × duration: used up is the plan
        return phase

    def saturation(self, requests: list[WebhookRequest], rate: float | None = None) -> Phase:
        if not self.wrk:
            phase = Phase(name="saturation", offered_rate=None,
                          tool=f"testkit/load.py (Python http.client, closed loop, {self.connections} connections)")
            return self._send(phase, requests, max_seconds=self.duration_s, message=f"phase saturation (sender): "
                              f"up to {len(requests)} events for {self.duration_s:g} s")
        # Never more connections than events: under `--server gunicorn`, a connection that never sends holds
        # one of the gthread threads for 5 s (its wait for a new connection's first bytes) and delays others.
        connections = min(self.connections, len(requests))
        threads = min(self.threads, connections)
        log(f"phase saturation (wrk): up to {len(requests)} pre-signed events for {self.duration_s:g} s")
        started = time.monotonic()
        result = wrk.send_pool(self.base_url, requests, signer=self.signer, name="saturation", threads=threads,
                               connections=connections, duration_s=self.duration_s, workdir=self.workdir,
                               on_start=self._running, rate_per_s=rate)
        self.pids.pop("wrk", None)  # its pid may be reused by another process
        phase = _from_wrk("saturation", result, started=started)
        phase.tool = f"wrk -t{threads} -c{connections} (closed loop; Lua sends each pre-signed event once)"
        if result.pool_used_up:
            phase.generator["note"] = "used up its pre-signed pool before the deadline: raise --events"
        if result.filler:
            phase.generator["filler_healthz_requests"] = result.filler
        return phase

    def healthz(self) -> Phase:
        if not self.wrk:  # testkit/load.py's threads in closed loop, the list never used up
            tool = f"Python http.client threads (closed loop, {self.connections} connections, GET /healthz)"
            phase = self._send(Phase(name="healthz", offered_rate=None, tool=tool),
                               [WebhookRequest("", b"", {}, get="/healthz")] * int(100_000 * self.duration_s),
                               max_seconds=self.duration_s,
                               message=f"phase healthz (Python): GET /healthz for {self.duration_s:g} s")
            phase.answers = {("200" if label == "200 ok" else label): n for label, n in phase.answers.items()}
            phase.accepted = phase.answers.get("200", 0)
            phase.generator = {"cpu_pct_of_one_core": phase.generator["cpu_pct_of_one_core"]}
            return phase
        log(f"phase healthz (wrk): GET /healthz for {self.duration_s:g} s")
        started = time.monotonic()
        result = wrk.run_get(f"{self.base_url}/healthz", duration_s=self.duration_s, threads=self.threads,
                             connections=self.connections, workdir=self.workdir, on_start=self._running)
        self.pids.pop("wrk", None)
        phase = _from_wrk("healthz", result, started=started)
        phase.tool = f"wrk -t{self.threads} -c{self.connections} (closed loop, GET /healthz)"
        phase.accepted = phase.answers.get("200", 0)
        return phase

    def _running(self, pid: int) -> None:
        self.pids["wrk"] = pid

    def _send(self, phase: Phase, requests: list[WebhookRequest], *, max_seconds: float, message: str) -> Phase:
        """testkit/load.py at ``phase.offered_rate`` (None: closed loop), signed just before it starts."""
        self.signer.sign_all(r for r in requests if r.headers is None)
        log(message)
        phase.started = time.monotonic()
        result = send_all(self.base_url, requests, concurrency=self.connections, rate=phase.offered_rate,
                          max_seconds=max_seconds)
        phase.ended = time.monotonic()
        figures = result.figures()
        phase.sent, phase.accepted, phase.answers = result.sent, result.accepted, dict(result.outcomes)
        phase.window_s = result.duration
        phase.latency_ms = figures["client_latency_ms"]
        phase.latencies_s = result.latencies
        phase.generator = {"cpu_pct_of_one_core": figures["generator_cpu_pct_of_one_core"],
                           "max_lateness_s": figures["max_lateness_s"],
                           "achieved_send_rate_per_s": figures["rate_per_s"],
                           "unsent": len(requests) - result.sent}
        return phase


def _from_wrk(name: str, result: wrk.WrkResult, *, started: float) -> Phase:
    phase = Phase(name=name, tool=result.tool, offered_rate=None, sent=result.sent or result.answered,
                  accepted=result.accepted, answers=result.answers, window_s=result.window_s,
                  latency_ms=dict(result.latency_ms), started=result.first_at or started,
                  ended=result.last_at or time.monotonic())
    # wrk's CPU over the sending window (its idle tail costs nothing)
    phase.generator = {"cpu_pct_of_one_core": round(100 * result.wrk_cpu_seconds / max(result.window_s, 0.001), 1)}
    return phase
