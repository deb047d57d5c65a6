"""Why an event did not succeed, sorted by what happens next.

The docstrings are the messages. A :class:`PermanentError` is never retried:
the event goes ``dead`` at once. Any other exception (including
:class:`RetryableError`) is retried on the provider's schedule, then ``dead``.
:class:`Ignored` is not a failure: the event ends ``ignored``.
"""
from __future__ import annotations

import traceback


class HandlingError(Exception):
    """The event could not be handled."""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        message = (self.__doc__ or "").strip().rstrip(".")
        super().__init__(f"{message}: {detail}" if detail else message)


class RetryableError(HandlingError):
    """Handling failed for now; retried on the schedule."""


class OrderNotFound(RetryableError):
    """order not found"""


class RefundBeforePayment(RetryableError):
    """refund before the payment; retried until the order is paid"""


class ProviderUnavailable(RetryableError):
    """the provider's API did not answer usefully"""


class PermanentError(HandlingError):
    """Handling can never succeed; the event goes dead without retries."""


class NotFoundAtProvider(PermanentError):
    """not found at provider"""


class AmountMismatch(PermanentError):
    """amount or currency does not match the order"""


class BadEventData(PermanentError):
    """the event lacks data the handler needs"""


class Ignored(Exception):
    """Nothing to do for this event (no handler, or not one of ours)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def format_traceback(exc: BaseException) -> str:
    """The traceback stored with a failed attempt (its last 20 frames)."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=20))
