"""The one redactor: every secret we hold, in every form it travels in, replaced before it is shown.

Used by the log filter (:mod:`models.logs`), the receiver's stored headers,
every operator command's output and the error strings written to the
database. It imports neither Flask nor Celery, so every role can use it.

A configured secret is known in its derived forms too:

- the ProcessOut Basic ``user:pass``: as it is, its password alone and the
  base64 value an ``Authorization: Basic`` header carries;
- a ``whsec_`` (Standard Webhooks) secret: also its key part without the prefix;
- a URL with credentials (database, broker, fulfilment, notify): its password,
  percent-encoded or not, and the base64 Basic value an HTTP client sends for it;
- the ProcessOut project secret as the workers' Basic value, the SMTP password
  as SMTP AUTH PLAIN and LOGIN carry it (base64).

Beyond the configured values, any ``scheme://user:password@`` in a text has its
password replaced, so a URL we were never told about still loses its credentials.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from models.settings import Settings

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4
"""Shorter values are not secrets worth the name, and replacing them would garble the output."""

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/@:]*):(?P<password>[^\s/@]+)@")
_URL_SETTINGS = ("database_url", "broker_url", "fulfilment_url", "notify_url", "processout_api_url")


def _basic(user_pass: str) -> str:
    return base64.b64encode(user_pass.encode("utf-8")).decode("ascii")


def derived_forms(secret: str) -> set[str]:
    """``secret`` and the forms it travels in (see the module docstring)."""
    forms = {secret, quote(secret, safe="")}
    if secret.startswith("whsec_"):
        forms.add(secret.removeprefix("whsec_"))
    user, colon, password = secret.partition(":")
    if colon and "://" not in secret:  # a Basic "user:pass"
        forms |= {password, _basic(secret)}
    return forms


def url_secrets(url: str | None) -> set[str]:
    """The password of a URL with credentials, in its derived forms; empty without one."""
    if not url:
        return set()
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return set()
    if not password:
        return set()
    plain = unquote(password)
    user = unquote(parts.username or "")
    return {password, plain, _basic(f"{user}:{plain}")}


def safe_url(url: str) -> str:
    """``url`` with the password of its credentials replaced (for error strings and logs)."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", url)


@dataclass(frozen=True)
class Redactor:
    """Replaces every known secret form, longest first (no half-redactions), and URL passwords."""

    secrets: tuple[str, ...] = ()
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        usable = sorted({s for s in self.secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        object.__setattr__(self, "secrets", tuple(usable))
        pattern = re.compile("|".join(re.escape(s) for s in usable)) if usable else None
        object.__setattr__(self, "_pattern", pattern)

    @classmethod
    def of(cls, values: Iterable[str]) -> Redactor:
        """A redactor for plain secret values, each with its derived forms."""
        found: set[str] = set()
        for value in values:
            if value:
                found |= derived_forms(value)
        return cls(secrets=tuple(found))

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        """Every secret ``settings`` holds, including the passwords inside its URLs."""
        found: set[str] = set()
        for value in settings.secret_values():
            if value:
                found |= derived_forms(value)
        for name in _URL_SETTINGS:
            found |= url_secrets(getattr(settings, name, None))
        project_id, project_secret = settings.processout_project_id, settings.processout_project_secret
        if project_secret is not None:  # the worker's API calls carry Basic "project_id:secret"
            found.add(_basic(f"{project_id or ''}:{project_secret.get_secret_value()}"))
        if settings.smtp_password is not None:  # SMTP AUTH PLAIN and LOGIN carry it base64-encoded
            password = settings.smtp_password.get_secret_value()
            found |= {_basic(password), _basic(f"\0{settings.smtp_username or ''}\0{password}")}
        return cls(secrets=tuple(found))

    def text(self, value: str) -> str:
        if self._pattern is not None:
            value = self._pattern.sub(REDACTED, value)
        if "://" in value:
            value = safe_url(value)
        return value

    def __call__(self, value: Any) -> Any:
        """The same structure with every string scrubbed (keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self(k): self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value

    def headers(self, headers: Mapping[str, str], *, secret_names: Iterable[str] = ()) -> dict[str, str]:
        """Headers as stored: the named ones (signatures, Authorization) replaced whole, the rest scrubbed."""
        hidden = frozenset(secret_names) | {"authorization", "proxy-authorization", "cookie"}
        return {name: REDACTED if name in hidden else self.text(value) for name, value in headers.items()}


_current = Redactor()


def install(redactor: Redactor) -> None:
    """Make ``redactor`` the process's own (an entry point does this once, with its settings)."""
    global _current
    _current = redactor


def current() -> Redactor:
    """The process's redactor: the installed one, else one that knows only URL credentials."""
    return _current


def redact(value: Any) -> Any:
    """Shorthand for ``current()(value)``."""
    return _current(value)
