"""py-spy around a benchmark phase: record every process of a tree, then name the top frames.

``py-spy record --subprocesses --nonblocking --format raw`` samples the
receiver's main process and all its workers without pausing them and writes collapsed
stacks (``frame;frame;… count``). :func:`top_frames` sums them two ways:
*self* (the innermost frame: where the samples sit) and *inclusive* (every
frame on the stack: which call the time is spent under). By default py-spy
leaves out threads it sees idle (waiting in epoll/futex), so what remains is
the time request threads are busy, on the CPU or in a blocking call it cannot
tell from work (psycopg's wait for Postgres' answer shows up as
``Connection.wait``). ``gil=True`` (``--gil``) keeps only the thread holding
the GIL: the interpreter's CPU time alone.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


def py_spy() -> str | None:
    """The py-spy next to this interpreter (pip install py-spy into the venv), else on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


@dataclass
class Recording:
    output: Path
    process: subprocess.Popen

    def wait(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            return self.process.wait(timeout=10)


def record(pid: int, *, seconds: float, output: Path, rate_hz: int = 100, gil: bool = False) -> Recording:
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy (into the venv)")
    argv = [binary, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate", str(rate_hz),
            "--duration", str(max(1, int(seconds))), "--format", "raw", "--output", str(output)]
    if gil:
        argv.append("--gil")
    with open(output.with_suffix(".log"), "wb") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Recording(output=output, process=process)


def _function(frame: str) -> str:
    """``name (path/to/module.py:123)`` → ``name (path/to/module.py)`` (lines merged)."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def top_frames(collapsed: Path, *, limit: int = 15) -> dict[str, object]:
    """Self and inclusive shares (% of samples) of the busiest functions in a raw py-spy file."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_function(f) for f in stack.split(";") if not f.startswith("process ")]
        if frames:
            own[frames[-1]] += samples
        for frame in set(frames):
            under[frame] += samples
    if not total:
        return {"samples": 0, "self": {}, "inclusive": {}}
    return {"samples": total,
            "self": {f: round(100 * n / total, 1) for f, n in own.most_common(limit)},
            "inclusive": {f: round(100 * n / total, 1) for f, n in under.most_common(limit * 3)}}
