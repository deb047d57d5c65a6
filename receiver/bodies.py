"""Request bodies without a Content-Length (chunked) get the same size limit as the others.

Werkzeug enforces ``MAX_CONTENT_LENGTH`` on a Content-Length header; on a
streamed body it stops reading at the limit and hands the view the first
``MAX_CONTENT_LENGTH`` bytes, so an oversized chunked webhook would fail its
signature check (401) instead of being refused as too large (413). This
middleware reads such a body (one byte past the limit at most), answers 413
when it is longer, and otherwise passes it on with its Content-Length, so
the app sees the body whole, exactly as if it had been sent with one.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

_TOO_LARGE = b'{"error":"request entity too large"}\n'
_UNREADABLE = b'{"error":"bad request"}\n'


class StreamedBodyLimit:
    def __init__(self, app: Callable[..., Iterable[bytes]], *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("CONTENT_LENGTH") or environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return self.app(environ, start_response)
        try:
            body = environ["wsgi.input"].read(self.max_bytes + 1)
        except Exception:  # broken framing, a client gone mid-body
            return _answer(start_response, "400 Bad Request", _UNREADABLE)
        if len(body) > self.max_bytes:
            return _answer(start_response, "413 Request Entity Too Large", _TOO_LARGE)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _answer(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
