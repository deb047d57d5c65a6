"""What a scenario sends: orders and their stories of events, from all five providers, interleaved.

A story is the life of one order as the provider tells it (paid; paid then
refunded; failed then paid; a refund that arrives before the payment; …).
Each event carries what the ledger expects of it: its final status, and the
order's final state. Events for unknown orders are stories too.
"""
from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field

from models.settings import Settings
from providers.registry import build_adapters
from sandbox.samples import DEFAULT_CURRENCY, sample_body, sample_processout_event

PROVIDERS = ("smartpay", "processout", "senfenico", "yoco", "shadhinpay")
TYPES: dict[str, dict[str, str]] = {  # the roles each provider has an event type for
    "smartpay": {"success": "order.authorized", "failure": "order.rejected", "refund": "refund.created"},
    "processout": {"success": "transaction.captured", "failure": "transaction.failed",
                   "refund": "transaction.refunded"},
    "senfenico": {"success": "checkout.success", "failure": "checkout.failed"},
    "yoco": {"success": "payment.succeeded", "refund": "refund.succeeded"},
    "shadhinpay": {"success": "payment.completed", "failure": "payment.failed", "refund": "payment.refunded"},
}
STORIES: dict[str, tuple[tuple[str, ...], str]] = {  # name: (roles in sending order, final order state)
    "pay": (("success",), "paid"),
    "pay_refund": (("success", "refund"), "refunded"),
    "pay_two_refunds": (("success", "refund:40", "refund:rest"), "refunded"),
    "pay_partial_refund": (("success", "refund:30"), "partially_refunded"),
    "fail": (("failure",), "payment_failed"),
    "fail_then_pay": (("failure", "success"), "paid"),
    "refund_first": (("refund", "success"), "refunded"),
    "fail_after_pay": (("success", "failure"), "paid"),
    "unknown_order": (("success",), "unknown"),
}
MIXES: dict[str, dict[str, int]] = {
    "steady": {"pay": 4, "pay_refund": 2, "pay_two_refunds": 1, "pay_partial_refund": 1, "fail": 1,
               "fail_then_pay": 1},
    "out_of_order": {"refund_first": 4, "fail_after_pay": 3, "fail_then_pay": 2, "unknown_order": 2,
                     "pay_two_refunds": 1},
}


@dataclass(frozen=True)
class Order:
    reference: str
    provider: str
    payment_ref: str
    amount: int
    currency: str
    email: str | None
    phone: str | None
    story: str
    registered: bool = True

    @property
    def expected_status(self) -> str:
        return STORIES[self.story][1]


@dataclass(frozen=True)
class Event:
    index: int
    provider: str
    event_type: str
    role: str
    order: Order
    amount: int
    event_id: str
    key: str
    body: bytes = field(repr=False)
    expected_status: str


@dataclass
class Plan:
    orders: list[Order]
    events: list[Event]
    processout_events: dict[str, dict] = field(default_factory=dict, repr=False)

    def registered_orders(self) -> list[Order]:
        return [o for o in self.orders if o.registered]


def _make_order(rng: random.Random, provider: str, story: str, tag: str) -> Order:
    currency = DEFAULT_CURRENCY[provider]
    amount = rng.randrange(500, 50_000) if currency in ("JPY", "XOF") else rng.randrange(500, 50_000) * 10
    with_email = rng.random() < 0.85
    serial = secrets.token_hex(4)
    return Order(reference=f"F-{tag}-{serial}", provider=provider, payment_ref=f"pay_{tag}_{serial}",
                 amount=amount, currency=currency,
                 email=f"buyer-{serial}@example.com" if with_email else None, phone="+27110000000",
                 story=story, registered=story != "unknown_order")


def _amount_for(role: str, order: Order, refunded_before: int) -> int:
    """``refund:40`` is 40 % of the order, ``refund:rest`` what earlier refunds left, else the whole."""
    _, _, share = role.partition(":")
    if share == "rest":
        return order.amount - refunded_before
    return order.amount * int(share) // 100 if share else order.amount


class EventBuilder:
    """Each event of an order's story: its body, ProcessOut's copy, its key as the receiver parses it."""

    def __init__(self) -> None:
        self.adapters = build_adapters(Settings(_env_file=None))  # type: ignore[call-arg]
        self.processout: dict[str, dict] = {}
        self.refunded: dict[str, int] = {}

    def event(self, index: int, role: str, order: Order, *, event_id: str | None = None) -> Event:
        base_role = role.split(":")[0]
        event_type = TYPES[order.provider][base_role]
        amount = _amount_for(role, order, self.refunded.get(order.reference, 0))
        if base_role == "refund":
            self.refunded[order.reference] = self.refunded.get(order.reference, 0) + amount
        event_id = event_id or f"evt_{secrets.token_hex(8)}"
        body = sample_body(order.provider, event_type, order_ref=order.payment_ref, amount_minor=amount,
                           event_id=event_id)
        if order.provider == "processout":
            self.processout[event_id] = sample_processout_event(
                event_id=event_id, event_type=event_type, order_ref=order.payment_ref,
                amount_minor=amount)["event"]
        key = self.adapters[order.provider].parse(body=body, headers={}).event_key
        expected = "succeeded"
        if not order.registered:
            expected = "ignored" if order.provider == "yoco" else "dead"
        return Event(index=index, provider=order.provider, event_type=event_type, role=base_role, order=order,
                     amount=amount, event_id=event_id, key=key, body=body, expected_status=expected)


def build(events: int, *, mix: str, tag: str, seed: int | None = None) -> Plan:
    """About ``events`` events in stories drawn from ``mix``, providers taken in turn, interleaved."""
    rng = random.Random(seed)
    weights = MIXES[mix]
    names = [name for name, weight in weights.items() for _ in range(weight)]
    orders: list[Order] = []
    slotted: list[tuple[float, int, str, Order]] = []
    count = 0
    while count < events:
        story = names[len(orders) % len(names)]
        roles = STORIES[story][0]
        candidates = [p for p in PROVIDERS if all(role.split(":")[0] in TYPES[p] for role in roles)]
        order = _make_order(rng, candidates[len(orders) % len(candidates)], story, tag)
        orders.append(order)
        slot = rng.uniform(0, events)
        for step, role in enumerate(roles):
            slotted.append((slot, step, role, order))
            slot += rng.uniform(2, 8)
        count += len(roles)
    slotted.sort(key=lambda item: (item[0], item[1]))
    builder = EventBuilder()
    built = [builder.event(index, role, order) for index, (_, _, role, order) in enumerate(slotted)]
    return Plan(orders=orders, events=built, processout_events=builder.processout)
