"""Who used the CPU during a benchmark: per-group and per-process CPU %, sampled with psutil.

A group is a set of root pids (e.g. "receiver": the serve main process) plus all
their descendants, except descendants that are roots of another group (the
benchmark's own process is the parent of every service, yet "bench" is only
itself). Percentages are of ONE core: on 2 cores the machine tops out at 200.
"other" is the machine total minus every group: load we did not start.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

Roots = Callable[[], dict[str, list[int]]]


@dataclass
class Sample:
    at: float
    seconds: float
    machine: float
    groups: dict[str, float]
    processes: dict[str, float]


@dataclass
class Ticker:
    """A daemon thread that calls :meth:`tick` every ``interval`` seconds until :meth:`stop`; a tick that
    raises is counted in ``errors`` (watching must never break the benchmark)."""

    interval: float = field(default=1.0, kw_only=True)
    errors: int = field(default=0, kw_only=True)
    _stop: threading.Event = field(default_factory=threading.Event, kw_only=True)
    _thread: threading.Thread | None = field(default=None, kw_only=True)

    def start(self) -> Ticker:
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                self.errors += 1

    def tick(self) -> None:
        raise NotImplementedError


@dataclass
class CpuSampler(Ticker):
    roots: Roots
    samples: list[Sample] = field(default_factory=list)
    _last: dict[int, float] = field(default_factory=dict)
    _last_at: float = 0.0
    _last_wall: float = 0.0

    def start(self) -> CpuSampler:
        self.tick()  # baseline
        return super().start()  # type: ignore[return-value]

    def stop(self) -> None:
        super().stop()
        self.tick()

    def tick(self) -> None:
        now, wall = time.monotonic(), time.time()
        machine = psutil.cpu_percent(interval=None) * (psutil.cpu_count() or 1)
        members = _members(self.roots(), _children_map())
        groups: dict[str, float] = {}
        processes: dict[str, float] = {}
        seconds = now - self._last_at if self._last_at else 0.0
        for group, pids in members.items():
            for pid in pids:
                used = self._delta(pid, since_wall=self._last_wall)
                if used is None or not seconds:
                    continue
                pct = 100.0 * used / seconds
                groups[group] = groups.get(group, 0.0) + pct
                processes[f"{group}/{pid} {_label(pid)}"] = pct
        if seconds:
            self.samples.append(Sample(at=now, seconds=seconds, machine=machine, groups=groups,
                                       processes=processes))
        self._last_at, self._last_wall = now, wall

    def _delta(self, pid: int, *, since_wall: float) -> float | None:
        """CPU seconds ``pid`` used since the last sample (all of it if it started since then)."""
        try:
            proc = psutil.Process(pid)
            times = proc.cpu_times()
            total = times.user + times.system
            previous = self._last.get(pid)
            if previous is None:
                previous = 0.0 if proc.create_time() >= since_wall else total
        except psutil.Error:
            return None
        self._last[pid] = total
        return max(0.0, total - previous)

    def summary(self, start: float, end: float) -> dict[str, object]:
        """Average and peak CPU % (of one core) per group over monotonic [start, end]."""
        window = [s for s in self.samples if start < s.at <= end + self.interval]
        total = sum(s.seconds for s in window)
        if not total:
            return {}
        names = sorted({g for s in window for g in s.groups})
        groups = {name: {"avg_pct": round(sum(s.groups.get(name, 0.0) * s.seconds for s in window) / total, 1),
                         "peak_pct": round(max(s.groups.get(name, 0.0) for s in window), 1)}
                  for name in names}
        machine = sum(s.machine * s.seconds for s in window) / total
        accounted = sum(g["avg_pct"] for g in groups.values())
        per_process: dict[str, float] = {}
        for s in window:
            for name, pct in s.processes.items():
                per_process[name] = per_process.get(name, 0.0) + pct * s.seconds / total
        top = sorted(per_process.items(), key=lambda item: -item[1])[:8]
        return {"groups": groups, "machine_pct": round(machine, 1),
                "machine_capacity_pct": 100 * (psutil.cpu_count() or 1),
                "other_pct": round(max(0.0, machine - accounted), 1),
                "top_processes": {name: round(pct, 1) for name, pct in top}, "seconds": round(total, 1)}


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        children.setdefault(proc.info["ppid"] or 0, []).append(proc.pid)
    return children


def _members(roots: dict[str, list[int]], children: dict[int, list[int]]) -> dict[str, list[int]]:
    all_roots = {pid for pids in roots.values() for pid in pids}
    members: dict[str, list[int]] = {}
    for group, pids in roots.items():
        found, todo = [], list(pids)
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(c for c in children.get(pid, []) if c not in all_roots)
        members[group] = found
    return members


_LABELS: dict[int, str] = {}


def _label(pid: int) -> str:
    """A short description of the process: its name and the first distinctive arguments."""
    if pid not in _LABELS:
        try:
            words = " ".join(w.rsplit("/", 1)[-1] for w in psutil.Process(pid).cmdline()).split()
            if words and words[0] == "postgres:":  # "postgres: 15/main: user db host(port) state"
                words = words[:4]
            _LABELS[pid] = " ".join(words[:4])[:60] or psutil.Process(pid).name()
        except psutil.Error:
            _LABELS[pid] = "?"
    return _LABELS[pid]


def pids_named(*names: str) -> list[int]:
    """Processes whose name is one of ``names`` and whose parent's is not (the tops of trees)."""
    found = []
    for proc in psutil.process_iter(["name", "ppid"]):
        try:
            parent = psutil.Process(proc.info["ppid"]).name() if proc.info["ppid"] else ""
        except psutil.Error:
            parent = ""
        if proc.info["name"] in names and parent not in names:
            found.append(proc.pid)
    return found


def postgres_of_database(postmaster_pid: int, database: str) -> list[int]:
    """The postmaster's processes that work for ``database``: its backends, and the shared ones
    (WAL writer, checkpointer, …), but not backends of other databases on the same server
    (other people's tests on a shared machine)."""
    try:
        children = psutil.Process(postmaster_pid).children()
    except psutil.Error:
        return []
    found = []
    for child in children:
        try:
            title = " ".join(child.cmdline())
        except psutil.Error:
            continue
        # a client backend: "postgres: 15/main: user database host(port) state"
        words = title.split(": ", 2)[-1].split()
        is_backend = len(words) >= 3 and "(" in words[2]
        other_vacuum = words[:2] == ["autovacuum", "worker"] and database not in words
        if (not is_backend and not other_vacuum) or (is_backend and words[1] == database):
            found.append(child.pid)
    return found
