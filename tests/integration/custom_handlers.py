"""A custom handler registered the documented way (PAYHOOKS_HANDLER_MODULES).

It fails every time for orders whose reference starts with "boom-", so the
tests can watch a real handler failure follow the retry schedule to `dead`;
it does nothing for other orders.
"""
from __future__ import annotations

from workers.handlers import HandlerContext, register


class Boom(RuntimeError):
    """the merchant's custom handler failed"""


@register("payment.succeeded", name="test_custom")
def custom(ctx: HandlerContext) -> str | None:
    if ctx.order.reference.startswith("boom-"):
        raise Boom(f"boom for {ctx.order.reference}")
    return None
