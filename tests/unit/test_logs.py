"""Log lines: JSON with a stable action, and no secret ever written."""
from __future__ import annotations

import json
import logging
import sys

from models.logs import JsonFormatter, ReadableFormatter, RedactSecrets

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("payhooks.worker", logging.WARNING, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_lines_carry_the_action_and_the_extras() -> None:
    line = JsonFormatter().format(_record("event %s failed", 7, action="event.retrying", event_id=7,
                                          provider="yoco"))
    entry = json.loads(line)
    assert entry["action"] == "event.retrying" and entry["message"] == "event 7 failed"
    assert (entry["event_id"], entry["provider"], entry["level"]) == (7, "yoco", "warning")


def test_a_record_without_an_action_is_named_by_its_logger() -> None:
    assert json.loads(JsonFormatter().format(_record("hello")))["action"] == "payhooks.worker"


def test_readable_lines_for_a_terminal() -> None:
    line = ReadableFormatter().format(_record("hi", action="x.y", event_id=3))
    assert "WARNING" in line and "x.y: hi" in line and "event_id=3" in line


def test_secrets_are_scrubbed_from_messages_args_and_extras() -> None:
    record = _record("bad key %s in %s", SECRET, "yoco", action="oops", detail=f"key={SECRET}")
    assert RedactSecrets([SECRET]).filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert SECRET not in json.dumps(entry)
    assert entry["message"] == "bad key [redacted] in yoco" and entry["detail"] == "key=[redacted]"


def test_secrets_are_scrubbed_from_exceptions() -> None:
    try:
        raise ValueError(f"could not decode {SECRET}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    RedactSecrets([SECRET]).filter(record)
    line = JsonFormatter().format(record)
    assert SECRET not in line and "[redacted]" in line and "ValueError" in line
