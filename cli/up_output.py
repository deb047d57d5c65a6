"""`payhooks up`'s output: every process's lines merged into one stream.

The children log JSON lines (``PAYHOOKS_LOG_FORMAT=json``) into pipes that
`up` reads. `up` writes one stream to its stdout: readable lines on a
terminal, JSON lines otherwise (``PAYHOOKS_LOG_FORMAT`` forces either). A
line that is not ours (gunicorn's, Celery's "Warm shutdown") becomes a record
of ours with the process named. The worker runs Celery without its banner or
its root warning; one ``worker.ready`` line of ours says what they said
(:func:`cli.worker.quiet_worker`).
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from datetime import datetime, timezone
from typing import IO, Any

from models.logs import JsonFormatter

_FOREIGN = re.compile(r"^\[[^\]]+\] \[\d+\] \[(?P<level>[A-Z]+)\] (?P<message>.*)$")
"""gunicorn's ``[date] [pid] [LEVEL] message``."""
_SHOWN_EXTRAS_SKIP = {"ts", "level", "logger", "action", "message", "process", "exception"}


def json_wanted(stream: IO[str]) -> bool:
    fmt = os.environ.get("PAYHOOKS_LOG_FORMAT", "")
    return fmt == "json" or (fmt != "text" and not stream.isatty())


class Sink:
    """One output stream shared by threads: records as JSON lines or readable lines, plus plain text."""

    def __init__(self, stream: IO[str] | None = None, *, json_lines: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.json_lines = json_wanted(self.stream) if json_lines is None else json_lines
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, default=str) if self.json_lines else self._readable(entry)
        self._write(line)

    def text(self, text: str) -> None:
        """For a person at a terminal only (banners, secrets shown once): dropped in JSON mode."""
        if not self.json_lines:
            self._write(text)

    def _write(self, line: str) -> None:
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError):  # the reader went away: nothing to tell it
                pass

    @staticmethod
    def _readable(entry: dict[str, Any]) -> str:
        try:
            when = datetime.fromisoformat(str(entry.get("ts"))).astimezone().strftime("%H:%M:%S")
        except ValueError:
            when = datetime.now().strftime("%H:%M:%S")
        extras = " ".join(f"{k}={v}" for k, v in entry.items() if k not in _SHOWN_EXTRAS_SKIP)
        line = (f"{when} {str(entry.get('level', 'info')).upper():<7} {entry.get('process', 'up'):<10} "
                f"{entry.get('action') or entry.get('logger')}: {entry.get('message', '')}")
        if extras:
            line += f"  [{extras}]"
        if entry.get("exception"):
            line += "\n" + str(entry["exception"])
        return line


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def parse_line(line: str, *, process: str) -> dict[str, Any] | None:
    """A child's output line as a record of ours (None for a blank line)."""
    line = line.rstrip("\n")
    if not line.strip():
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if isinstance(entry, dict) and "message" in entry:
        return {**entry, "process": process}
    foreign = _FOREIGN.match(line)
    level, message = (foreign["level"].lower(), foreign["message"]) if foreign else ("info", line.strip())
    return {"ts": _now(), "level": level, "logger": process, "action": f"{process}.output", "message": message,
            "process": process}


def pump(stream: IO[str], *, process: str, sink: Sink) -> threading.Thread:
    """Copy a child's lines into ``sink`` until the child closes its end."""

    def run() -> None:
        for line in iter(stream.readline, ""):
            entry = parse_line(line, process=process)
            if entry is not None:
                sink.record(entry)
        stream.close()

    thread = threading.Thread(target=run, name=f"output-{process}", daemon=True)
    thread.start()
    return thread


class SinkHandler(logging.Handler):
    """`up`'s own log records into the sink (keeping the redaction filters of the handler it replaces)."""

    def __init__(self, sink: Sink) -> None:
        super().__init__()
        self.sink = sink
        self._json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.record({**json.loads(self._json.format(record)), "process": "up"})
        except Exception:  # noqa: BLE001  (logging must never raise)
            self.handleError(record)


def log_into(sink: Sink) -> None:
    root = logging.getLogger()
    handler = SinkHandler(sink)
    for old in root.handlers:
        for filter_ in old.filters:
            handler.addFilter(filter_)
    root.handlers[:] = [handler]
    logging.getLogger("alembic").setLevel(logging.WARNING)  # `up` says "schema at head" itself
