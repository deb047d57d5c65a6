"""Shared by every bench: the run's header facts, report lines (targets, CPU, latency, verdict), the
common options, and :func:`run_bench` (scratch directories, clean-up, the report, the exit status).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import Engine, text

from testkit.load import summarize
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


TARGETS_HEADING = "targets (informational: a miss does not fail the run):"


def target_lines(targets: list[dict[str, Any]] | list[TargetCheck], heading: str = TARGETS_HEADING) -> list[str]:
    """The heading, then one line per target (met, MISSED or not measured)."""
    return [heading, *(t.line() if isinstance(t, TargetCheck) else TargetCheck(**t).line() for t in targets)]


def header(title: str, m: dict[str, Any]) -> str:
    """The report's first line: which bench, which code, when, on what machine under what load."""
    return (f"payhooks {title} — as of {m['revision']}, {m['at']}; {m['cpus']} CPUs, "
            f"load average {m['load_average_1m']}")


def cpu_line(cpu: dict[str, Any], *, indent: str = "  ", peaks: bool = False) -> str:
    """Average CPU per group (% of ONE core; ``peaks``: and its peak 1-s sample), the machine's other
    load, and the machine total."""
    if not cpu:
        return f"{indent}cpu: (no samples)"
    groups = ", ".join(f"{name} {g['avg_pct']}" + (f" (peak {g['peak_pct']})" if peaks else "") for name, g in
                       sorted(cpu["groups"].items(), key=lambda item: -item[1]["avg_pct"]))
    what = (f"% of one core, average over the {cpu['seconds']} s run (peak 1-s sample)" if peaks else
            f"cpu (% of one core, avg over {cpu['seconds']} s)")
    return (f"{indent}{what}: {groups}; other (not ours) "
            f"{cpu['other_pct']}; machine {cpu['machine_pct']} of {cpu['machine_capacity_pct']}")


def verdict(problems: list[str], log_dir: str | None, *, width: int = 0,
            ok: str = "OK (every correctness check passed)") -> str:
    """``result: OK`` or ``result: FAILED`` with every problem, and where the logs are; labels padded to ``width``."""
    def label(name: str) -> str:
        return f"{name}:".ljust(width) if width else f"{name}: "

    if not problems:
        return f"{label('result')}{ok}"
    body = "\n  ".join(problems)
    logs = f"\n{label('logs')}{log_dir}" if log_dir else ""
    return f"{label('result')}FAILED\n  {body}{logs}"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def latency(lat: dict[str, float | None]) -> str:
    """``p50 x / p90 x / p99 x / max x ms`` of a :func:`testkit.load.summarize_ms` dict."""
    return f"p50 {ms(lat.get('p50'))} / p90 {ms(lat.get('p90'))} / p99 {ms(lat.get('p99'))} / max {ms(lat.get('max'))} ms"


def seconds(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/max/mean of ``values`` (seconds, :func:`testkit.load.summarize`) to the millisecond."""
    return {k: None if v is None else round(v, 3) for k, v in summarize(values).items()}


def mb(value: int, digits: int = 0) -> str:
    return f"{value / 2**20:,.{digits}f} MB"


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    """The one value ``sql`` selects."""
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"


def parser(prog: str, doc: str, *, broker: str | None = "") -> argparse.ArgumentParser:
    """An argument parser with the options every bench takes: ``--server-url``, ``--broker-url`` (unless
    ``broker`` is None; its help otherwise), ``--keep-logs`` and ``--json``."""
    parsed = argparse.ArgumentParser(prog=f"python -m bench.{prog}", description=doc.splitlines()[0])
    parsed.add_argument("--server-url", default=SERVER_URL, help="Postgres server on which a fresh database is created")
    if broker is not None:
        parsed.add_argument("--broker-url", default=BROKER_URL, help=broker or None)
    parsed.add_argument("--keep-logs", action="store_true", help="keep the process logs even when all is well")
    parsed.add_argument("--json", action="store_true", help="print one JSON object of the figures")
    return parsed


def choose_tool(parsed: argparse.ArgumentParser, args: argparse.Namespace, without_wrk: str) -> None:
    """``--tool auto``: wrk when installed, else ``without_wrk``; ``--tool wrk`` without wrk is an error."""
    from bench import wrk

    if args.tool == "auto":
        args.tool = "wrk" if wrk.available() else without_wrk
    elif args.tool == "wrk" and not wrk.available():
        parsed.error("--tool wrk: wrk is not installed (apt-get install -y wrk)")


Measure = Callable[[argparse.Namespace, ProcessSet, Path], dict[str, Any]]
"""Runs the bench (its options, its processes, a scratch directory); returns the figures with ``problems``."""


def run_bench(name: str, args: argparse.Namespace, measure: Measure,
              render: Callable[[dict[str, Any]], str], *, needs: str | None = None) -> int:
    """Scratch and log directories, clean-up whatever happens, the report, the exit status (0, 1 or 2).

    Logs are kept (and named in the report) when something failed or ``--keep-logs`` is given.
    Figures without ``needs`` (the run stopped before it measured) are reported as the verdict alone.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    log_dir = Path(tempfile.mkdtemp(prefix=f"payhooks-{name}-logs-"))
    workdir = Path(tempfile.mkdtemp(prefix=f"payhooks-{name}-"))
    processes = ProcessSet(log_dir)
    figures: dict[str, Any] = {}
    try:
        figures = measure(args, processes, workdir)
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
    if args.json:
        report = json.dumps(figures, indent=2, default=str)
    elif needs and needs not in figures:
        report = verdict(figures.get("problems") or ["unknown"], figures.get("log_dir"))
    else:
        report = render(figures)
    print(report, flush=True)
    if figures.get("setup_failed"):
        return 2
    return 0 if ok else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
