"""Shared by ingest, retry and duplicates: the run's header facts, CPU lines, targets, the exit status.

A *problem* is a failed correctness check (rows ≠ accepted, a wrong id, an
attempt never made): the bench exits 1; 2 when it could not be set up
(:func:`run_bench`). A *target* is a speed goal from the
issue: a miss is printed as ``MISSED`` and never changes the exit status.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from testkit.processes import ProcessSet, log

REPO = Path(__file__).resolve().parents[1]


def revision() -> str:
    """``git rev-parse --short HEAD`` of the working tree, ``+dirty`` when it has changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{'+dirty' if dirty else ''}" if head else "unknown"


def machine() -> dict[str, Any]:
    return {"cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_1m": round(os.getloadavg()[0], 2), "revision": revision(),
            "at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


@dataclass(frozen=True)
class TargetCheck:
    goal: str
    value: str
    met: bool | None
    """None: not measured in this run (e.g. the phase was skipped)."""

    def line(self) -> str:
        verdict = "not measured" if self.met is None else ("met" if self.met else "MISSED")
        return f"  {self.goal}: {self.value} — {verdict}"

    def as_dict(self) -> dict[str, Any]:
        return {"goal": self.goal, "value": self.value, "met": self.met}


def cpu_line(cpu: dict[str, Any], *, indent: str = "  ") -> str:
    """Average CPU per group (% of ONE core), the machine's other load, and the machine total."""
    if not cpu:
        return f"{indent}cpu: (no samples)"
    groups = ", ".join(f"{name} {g['avg_pct']}" for name, g in
                       sorted(cpu["groups"].items(), key=lambda item: -item[1]["avg_pct"]))
    return (f"{indent}cpu (% of one core, avg over {cpu['seconds']} s): {groups}; other (not ours) "
            f"{cpu['other_pct']}; machine {cpu['machine_pct']} of {cpu['machine_capacity_pct']}")


def verdict(problems: list[str], log_dir: str | None) -> str:
    if not problems:
        return "result: OK (every correctness check passed)"
    body = "\n  ".join(problems)
    logs = f"\nlogs: {log_dir}" if log_dir else ""
    return f"result: FAILED\n  {body}{logs}"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


Measure = Callable[[ProcessSet, Path], dict[str, Any]]
"""Runs the bench with its processes and a scratch directory; returns the figures with ``problems``."""


def run_bench(name: str, args: argparse.Namespace, measure: Measure,
              render: Callable[[dict[str, Any]], str]) -> int:
    """Scratch and log directories, clean-up whatever happens, the report, the exit status (0, 1 or 2).

    Logs are kept (and named in the report) when something failed or ``--keep-logs`` is given.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    log_dir = Path(tempfile.mkdtemp(prefix=f"payhooks-{name}-logs-"))
    workdir = Path(tempfile.mkdtemp(prefix=f"payhooks-{name}-"))
    processes = ProcessSet(log_dir)
    figures: dict[str, Any] = {}
    try:
        figures = measure(processes, workdir)
    except KeyboardInterrupt:
        log("interrupted")
        figures = {"problems": ["interrupted"]}
    except Exception as exc:  # report it with the processes' last log lines; clean up below
        log(f"setup or run failed: {type(exc).__name__}: {exc}")
        for path in sorted(log_dir.glob("*.log")):
            log(f"--- last lines of {path.name}\n{processes.tail(path.stem)}")
        figures = {"problems": [f"{type(exc).__name__}: {exc}"], "setup_failed": True}
    finally:
        processes.stop(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
    ok = not figures.get("problems")
    if ok and not args.keep_logs:
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        figures["log_dir"] = str(log_dir)
    print(json.dumps(figures, indent=2, default=str) if args.json else render(figures), flush=True)
    if figures.get("setup_failed"):
        return 2
    return 0 if ok else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
