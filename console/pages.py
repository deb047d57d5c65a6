"""What the views and templates share: Jinja filters, page sizes, the scrubbed record a page shows."""
from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from console.redaction import jsonable
from console.state import state

PAGE_SIZE = 50


def scrubbed(value: Any) -> Any:
    """Rows as plain JSON-like data with every configured secret replaced (before any template sees them)."""
    return state().redact(jsonable(value))


def when(value: Any) -> str:
    """``YYYY-MM-DD HH:MM:SS`` UTC from a datetime or the ISO text :func:`scrubbed` made of one."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    if value < 172800:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def body_text(raw: Any) -> tuple[str, str]:
    """The raw body as the operator reads it: pretty JSON when it parses, else text, else base64."""
    data = bytes(raw or b"") if not isinstance(raw, str) else raw.encode()
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode(), "base64 (not UTF-8)"
    try:
        return pretty(json.loads(decoded)), "JSON, pretty-printed"
    except ValueError:
        return decoded, "text"


FILTERS = {"when": when, "seconds": seconds, "pretty": pretty}
