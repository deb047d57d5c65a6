"""``bench.ingest --compare`` / ``--compare-commit``: other receivers measured in the same run.

Each comparison starts its own receiver on a fresh database after the main
one has stopped, warms it up, and runs the same ``/healthz`` and saturation
phases with the same tool and connections, so "before" and "after" share the
machine's load of that minute. ``--compare '--server gunicorn'`` is another
server shape of this code; ``--compare-commit REF`` is the receiver of commit
REF (``git archive`` of it, run with its own ``payhooks serve`` defaults on
this venv), e.g. the commit before the group commit.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.cpu import CpuSampler
from bench.ingest import (
    _counted,
    _healthz,
    _phase_dict,
    _saturation,
    warm_up,
    worker_memory,
)
from bench.targets import ServiceOptions, service_target
from testkit.load import Signer
from testkit.processes import ProcessSet, log

REPO_ROOT = Path(__file__).resolve().parents[1]


def comparisons(args: argparse.Namespace) -> list[dict[str, Any]]:
    """What to compare: ``{"label", "serve_args", "commit"}`` each."""
    found = [{"label": f"serve {extra}", "serve_args": extra, "commit": None} for extra in args.compare]
    if args.compare_commit:
        found.append({"label": f"commit {args.compare_commit}", "serve_args": "", "commit": args.compare_commit})
    return found


def measure_all(args: argparse.Namespace, processes: ProcessSet, workdir: Path) -> list[dict[str, Any]]:
    return [_measure_one(args, processes, workdir, **choice) for choice in comparisons(args)]


def _source(ref: str, workdir: Path) -> Path:
    dest = workdir / f"source-{ref.replace('/', '_')}"
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", ref], cwd=REPO_ROOT, capture_output=True, check=True, timeout=60)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=60)
    return dest


def _measure_one(args: argparse.Namespace, processes: ProcessSet, workdir: Path, *, label: str,
                 serve_args: str, commit: str | None) -> dict[str, Any]:
    log(f"comparison: {label}")
    source = _source(commit, workdir) if commit else None
    words = shlex.split(serve_args)
    env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))  # NAME=VALUE: environment
    options = ServiceOptions(server_url=args.server_url, broker_url=args.broker_url, services=("serve",),
                             serve_args=tuple(w for w in words if w.split("=", 1)[0] not in env), env=env,
                             serve_source=source)
    pids: dict[str, int] = {}
    with service_target(options, processes=processes, workdir=workdir) as target:
        engine = target.engine()
        sampler = CpuSampler(roots=lambda: {**target.cpu_roots(), **{k: [v] for k, v in pids.items()}}).start()
        try:
            _wait_started(target)
            signer = Signer(target.secrets)
            warm_up(target, signer)
            run_id = f"cmp{os.getpid()}{int(time.time()) % 100000}"
            done = [_counted(engine, lambda: _healthz(args, target, workdir, pids), sampler),
                    _counted(engine, lambda: _saturation(args, target, signer, workdir, pids, run_id),
                             sampler)]
        finally:
            sampler.stop()
            engine.dispose()
        memory = worker_memory(target)
    return {"label": label, "phases": [_phase_dict(p) for p in done], "memory": memory}


def _wait_started(target: Any, timeout: float = 60.0) -> None:
    """The receiver's worker processes stop appearing (readyz already answered from one of them)."""
    import psutil

    master = psutil.Process(target.processes.processes["serve"].pid)
    deadline, last, stable_since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(master.children())
        if count != last:
            last, stable_since = count, time.monotonic()
        elif count and time.monotonic() - stable_since > 2.0:
            return
        time.sleep(0.2)


def render_lines(compared: list[dict[str, Any]], main: dict[str, Any]) -> list[str]:
    """A table: this run's receiver, then each comparison, with the ratios to the first."""
    rows = [("this receiver", main)] + [(c["label"], c) for c in compared]
    base_sat = _rate(main, "saturation")
    lines = ["same run, same tool and connections (healthz and saturation of each receiver):",
             f"  {'receiver':<34} {'/healthz/s':>11} {'accepted/s':>11} {'p50 ms':>7} {'p99 ms':>7} "
             f"{'max RSS MB':>10}  vs this"]
    for label, figures in rows:
        sat = _phase(figures, "saturation") or {}
        lat = sat.get("latency_ms", {})
        rss = max((w["rss_mb"] for w in figures.get("memory", {}).get("workers", {}).values()), default=0.0)
        rate = _rate(figures, "saturation")
        ratio = f"{base_sat / rate:.2f}×" if rate and label != "this receiver" else ""
        lines.append(f"  {label:<34} {_rate(figures, 'healthz'):>11,.0f} {rate:>11,.0f} "
                     f"{lat.get('p50') or 0:>7.1f} {lat.get('p99') or 0:>7.1f} {rss:>10.1f}  {ratio}")
    return lines


def _phase(figures: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in figures.get("phases", []) if p["name"] == name), None)


def _rate(figures: dict[str, Any], name: str) -> float:
    phase = _phase(figures, name) or {}
    return phase.get("answered_per_s" if name == "healthz" else "accepted_per_s", 0.0)
