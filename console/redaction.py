"""Where the console gets its redaction: the one module the CLI uses too (repoint here if it moves).

Everything the console renders passes through it twice: the views scrub the
records they hand to templates, and Jinja's ``finalize`` scrubs every value a
template prints, so a secret that reached a row, an error or a header never
reaches a page.
"""
from __future__ import annotations

from models.queries.values import jsonable
from models.redaction import Redactor

__all__ = ["Redactor", "jsonable", "redactor_for"]


def redactor_for(settings) -> Redactor:
    return Redactor.from_settings(settings)
