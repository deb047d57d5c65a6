"""A benchmark's workload: N registered orders and, for each, the provider's "paid" event.

Orders go straight into the ``orders`` table (fast, before any clock starts);
the events are realistic bodies from ``sandbox.samples``, to be
signed with :class:`testkit.load.Signer`. ProcessOut events are thin: the
worker fetches each back from a (fake) ProcessOut API, which serves
``processout_events``.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from bench.faults.plan import EventBuilder, Order
from sandbox.samples import DEFAULT_CURRENCY
from testkit.load import WebhookRequest

ALL_PROVIDERS = ("smartpay", "senfenico", "yoco", "shadhinpay", "processout")


@dataclass
class Workload:
    prefix: str
    """Every order reference starts with it (``BENCH-<run>-``)."""
    orders: list[Order] = field(default_factory=list)
    requests: list[WebhookRequest] = field(default_factory=list)
    processout_events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def by_provider(self) -> dict[str, int]:
        return dict(Counter(order.provider for order in self.orders))


def build_workload(count: int, providers: tuple[str, ...], *, run_id: str, seed: int = 1) -> Workload:
    """``count`` orders spread round-robin over ``providers``, each with its unsigned paid event."""
    rng, builder = random.Random(seed), EventBuilder()
    workload = Workload(prefix=f"BENCH-{run_id}-", processout_events=builder.processout)
    for index in range(count):
        provider = providers[index % len(providers)]
        order = Order(reference=f"{workload.prefix}{index:06d}", provider=provider,
                      payment_ref=f"{provider[:2]}_{run_id}_{index:06d}", amount=rng.randint(100, 99_999),
                      currency=DEFAULT_CURRENCY[provider], email="buyer@example.com", phone=None, story="pay")
        workload.orders.append(order)
        event = builder.event(index, "success", order, event_id=f"ev_{run_id}_{index:06d}")
        workload.requests.append(WebhookRequest(provider=provider, body=event.body))
    return workload


def insert_orders(engine: Engine, orders: list[Order]) -> None:
    """Register the orders in one transaction (one multi-row INSERT per batch)."""
    rows = [{"r": o.reference, "p": o.provider, "ref": o.payment_ref, "a": o.amount, "c": o.currency,
             "e": o.email} for o in orders]
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO orders (reference, provider, provider_payment_ref, amount, currency,
                                        customer_email)
                    VALUES (:r, :p, :ref, :a, :c, :e)"""),
            rows,
        )
