"""The tiny interface every provider adapter implements.

An adapter does three things and nothing else: verify the raw request bytes
(raise :class:`VerificationError` on any failure), parse the envelope into an
:class:`Envelope` (raise :class:`EnvelopeError` when the body is unusable), and
map the provider's event types to canonical kinds (a data table, ``KINDS``).
It also knows how to *sign* a body the way the provider does, so the simulator
(``payhooks send``), the tests and the benchmarks produce real requests.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Clock = Callable[[], float]
"""Returns the current time as epoch seconds (``time.time``); tests freeze it."""

CANONICAL_KINDS = frozenset(
    {"payment.succeeded", "payment.failed", "payment.refunded", "payment.charged_back"}
)


class VerificationError(Exception):
    """The request could not be verified (signature, timestamp or credentials)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EnvelopeError(Exception):
    """The body is verified but not a usable event (not parseable, no event key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    """What verification learned: which secret of the rotation list matched, and how."""

    secret_index: int | None
    method: str | None = None


@dataclass(frozen=True)
class Envelope:
    event_key: str
    event_type: str
    livemode: bool | None
    payload: Any
    payload_is_body: bool = True
    """The payload is the body's JSON as sent, so the database can parse the body itself."""


class Adapter(Protocol):
    """``headers`` arguments are mappings with lower-cased header names."""

    name: str
    kinds: Mapping[str, str]
    secret_headers: frozenset[str]
    """Lower-cased header names whose values are redacted before storage."""
    configured: bool
    """False without a usable secret: the endpoint is then not live (404, nothing stored)."""
    max_body_bytes: int | None
    """A cap of the adapter's own below the configured body limit (None: none)."""

    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> Verified: ...

    def parse(self, *, body: bytes, headers: Mapping[str, str]) -> Envelope: ...

    def sign(self, *, body: bytes, secret: str, now: float | None = None) -> dict[str, str]: ...


@dataclass(frozen=True)
class SecretList:
    """A provider's secrets, newest first; plain strings only inside this process."""

    values: Sequence[str] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.values)


def load_json(body: bytes) -> Any:
    """Parse a verified body; every failure becomes an :class:`EnvelopeError`."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise EnvelopeError(f"body is not JSON: {type(exc).__name__}") from None


def require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} is not a JSON object")
    return value


def require_str(value: Any, what: str) -> str:
    """A non-empty string that a database text column can hold (UTF-8, no NUL)."""
    if not isinstance(value, str) or not value:
        raise EnvelopeError(f"{what} is missing")
    if "\x00" in value or not _encodes_as_utf8(value):
        raise EnvelopeError(f"{what} has characters that cannot be stored")
    return value


def _encodes_as_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, from "\ud800" escapes in JSON
        return False
    return True


def header(headers: Mapping[str, str], *names: str) -> str | None:
    """First present header among ``names``.

    Adapters always receive headers as a mapping with lower-cased names (the
    receiver builds it), so ``names`` are lower-case too.
    """
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None


def system_clock() -> float:
    return time.time()


_EPOCH_DIGITS = re.compile(r"[0-9]{1,16}")


def check_timestamp(
    value: str | None, *, now_seconds: float, tolerance_seconds: float, units_per_second: int = 1
) -> int:
    """Parse an epoch timestamp header and enforce the tolerance on both sides of now.

    ``units_per_second`` is 1000 for millisecond headers (the arithmetic is then in
    ms). Returns the timestamp in the header's units; every failure is a
    :class:`VerificationError`.
    """
    if not value:
        raise VerificationError("missing timestamp header")
    if not _EPOCH_DIGITS.fullmatch(value):
        raise VerificationError("malformed timestamp header")
    timestamp = int(value)
    now = now_seconds * units_per_second
    tolerance = tolerance_seconds * units_per_second
    if timestamp < now - tolerance:
        raise VerificationError("timestamp too old")
    if timestamp > now + tolerance:
        raise VerificationError("timestamp too new")
    return timestamp


_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def as_sha256_hex(value: str) -> str | None:
    """``value`` lower-cased when it is exactly 64 ASCII hex digits, else None."""
    return value.lower() if _SHA256_HEX.fullmatch(value) else None
