"""payment.refunded / payment.charged_back → a refund row, the order's new state, a notice."""
from __future__ import annotations

from workers.errors import AmountMismatch, RefundBeforePayment
from workers.handlers.context import HandlerContext
from workers.handlers.registry import register
from workers.normalise import refund_identity

REFUNDABLE = ("paid", "partially_refunded")


def _refund(ctx: HandlerContext, *, chargeback: bool) -> str | None:
    order, payment = ctx.order, ctx.payment
    if order.status in ("pending", "payment_failed"):
        raise RefundBeforePayment(f"order {order.reference} is {order.status}")
    if order.status not in REFUNDABLE:
        ctx.record(order.status, note=f"{ctx.event_type} for an order already {order.status}: ignored")
        return f"order already {order.status}"
    if payment.currency is not None and payment.currency != order.currency:
        raise AmountMismatch(f"refund in {payment.currency}, order in {order.currency}")
    remaining = order.amount - order.refunded_amount
    amount = remaining if payment.amount_minor is None else payment.amount_minor
    if amount <= 0 or amount > remaining:
        raise AmountMismatch(f"refund of {amount} {order.currency}, {remaining} left to refund")
    inserted = ctx.insert_refund(order_id=order.id, event_id=ctx.event_id,
                                 kind="chargeback" if chargeback else "refund",
                                 refund_key=refund_identity(payment, event_id=ctx.event_id), amount=amount,
                                 currency=order.currency)
    if not inserted:  # a replay of this event, or another event about a refund already booked
        return "refund already recorded"
    refunded = order.refunded_amount + amount
    if chargeback:
        status = "charged_back"
    else:
        status = "refunded" if refunded >= order.amount else "partially_refunded"
    ctx.move_order(status, note=f"{ctx.event_type}: {amount} {order.currency}", refunded_amount=refunded)
    if order.customer_email:
        ctx.outbound(handler="refund", kind="email.refund",
                     payload={"order": ctx.order_summary(), "refund": {"amount": amount, "kind": status}})
    return None


@register("payment.refunded", name="refund")
def refund(ctx: HandlerContext) -> str | None:
    return _refund(ctx, chargeback=False)


@register("payment.charged_back", name="refund")
def charge_back(ctx: HandlerContext) -> str | None:
    return _refund(ctx, chargeback=True)
