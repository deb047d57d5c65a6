"""payment.failed → the order is marked failed and the customer is told (never after paid)."""
from __future__ import annotations

from workers.handlers.context import HandlerContext
from workers.handlers.fulfilment import ALREADY_PAID
from workers.handlers.registry import register


@register("payment.failed", name="failure_notification")
def notify_failure(ctx: HandlerContext) -> str | None:
    order = ctx.order
    if order.status in ALREADY_PAID:
        # Forward-only: a late failure (e.g. an earlier declined try) never un-pays an order.
        ctx.record(order.status, note=f"{ctx.event_type} after {order.status}: recorded and ignored")
        return f"payment failure after {order.status}: ignored"
    ctx.move_order("payment_failed", note=ctx.event_type)
    payload = {"order": ctx.order_summary()}
    if order.customer_email:
        ctx.outbound(handler="failure_notification", kind="email.payment_failed", payload=payload)
    elif order.customer_phone:
        ctx.outbound(handler="failure_notification", kind="sms.payment_failed", payload=payload)
    return None
