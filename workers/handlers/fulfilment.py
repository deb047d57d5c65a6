"""payment.succeeded → the order is paid, fulfilment is requested, the customer is told."""
from __future__ import annotations

from sqlalchemy import func

from workers.errors import AmountMismatch
from workers.handlers.context import HandlerContext
from workers.handlers.registry import register

ALREADY_PAID = ("paid", "refunded", "partially_refunded", "charged_back")


@register("payment.succeeded", name="fulfilment")
def fulfil(ctx: HandlerContext) -> str | None:
    order, payment = ctx.order, ctx.payment
    if order.status in ALREADY_PAID:
        ctx.record(order.status, note=f"{ctx.event_type} for an order already {order.status}: ignored")
        return f"order already {order.status}"
    if payment.currency is not None and payment.currency != order.currency:
        raise AmountMismatch(f"event {payment.currency}, order {order.currency}")
    if payment.amount_minor is not None and payment.amount_minor != order.amount:
        raise AmountMismatch(
            f"event {payment.amount_minor} {order.currency}, order {order.amount} {order.currency}"
        )
    ctx.move_order("paid", note=ctx.event_type, paid_at=func.clock_timestamp(),
                   provider_data={**(order.provider_data or {}), **payment.extra})
    summary = ctx.order_summary()
    ctx.outbound(handler="fulfilment", kind="fulfilment", payload={"order": summary})
    if order.customer_email:
        ctx.outbound(handler="fulfilment", kind="email.order_confirmation", payload={"order": summary})
    return None
