"""A custom handler that fails every attempt, for ``bench.retry`` (loaded via PAYHOOKS_HANDLER_MODULES).

It runs after the built-in handler, in the event's transaction, and raises a
retryable error, so the whole attempt rolls back and the event follows its
provider's retry schedule to ``dead``, whatever the provider (Yoco's events
for unknown orders would be ``ignored`` instead, so "order not found" alone
would leave Yoco out).
"""
from __future__ import annotations

from workers.errors import RetryableError
from workers.handlers import HandlerContext, register

KINDS = ("payment.succeeded", "payment.failed", "payment.refunded", "payment.charged_back")


class BenchFailure(RetryableError):
    """bench.retry's handler fails every attempt"""


def fail(ctx: HandlerContext) -> None:
    raise BenchFailure(f"event {ctx.event_id}")


for _kind in KINDS:
    register(_kind, name="bench_failing")(fail)
