"""Every provider's event types in one place: what `payhooks send` accepts and `payhooks providers` lists.

The handled types are the adapters' own ``KINDS`` tables (one line per type);
the others are the types each provider documents that payhooks stores and
marks ``ignored``. A canonical kind (``payment.succeeded`` …) is mapped to the
provider's first type of that kind.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from providers.base import CANONICAL_KINDS
from providers.processout import KINDS as PROCESSOUT
from providers.senfenico import KINDS as SENFENICO
from providers.shadhinpay import KINDS as SHADHINPAY
from providers.smartpay import KINDS as SMARTPAY
from providers.yoco import KINDS as YOCO

CANONICAL_ORDER = ("payment.succeeded", "payment.failed", "payment.refunded", "payment.charged_back")
assert set(CANONICAL_ORDER) == CANONICAL_KINDS

HANDLED: Mapping[str, Mapping[str, str]] = {
    "smartpay": SMARTPAY, "processout": PROCESSOUT, "senfenico": SENFENICO, "yoco": YOCO, "shadhinpay": SHADHINPAY,
}

IGNORED: Mapping[str, tuple[str, ...]] = {
    "smartpay": ("order.canceled", "payment.created"),
    "processout": ("transaction.requested", "transaction.authorized", "transaction.voided",
                   "transaction.chargeback.won", "transaction.chargeback.lost"),
    "senfenico": ("checkout.pending", "charge.pending"),
    "yoco": ("refund.failed",),
    "shadhinpay": ("payment.refund_failed", "payment.cancelled", "payment.expired"),
}
"""Types the provider documents that have no handler: stored, then ``ignored``."""


@dataclass(frozen=True)
class Resolved:
    event_type: str
    """The provider's own type, as it goes into the body."""
    kind: str | None
    """The canonical kind it maps to; None: no handler takes it."""
    asked_for_kind: bool = False
    """The caller named a canonical kind (and it was mapped)."""


def provider_name(value: str) -> str | None:
    """``Yoco``, ``YOCO`` → ``yoco``; None when no provider has that name."""
    name = value.strip().lower()
    return name if name in HANDLED else None


def resolve(provider: str, requested: str) -> Resolved:
    """The provider's own type first; else a canonical kind mapped to the provider's type; else as given."""
    kinds = HANDLED[provider]
    if requested in kinds:
        return Resolved(event_type=requested, kind=kinds[requested])
    if requested in CANONICAL_KINDS:
        for event_type, kind in kinds.items():
            if kind == requested:
                return Resolved(event_type=event_type, kind=kind, asked_for_kind=True)
    return Resolved(event_type=requested, kind=None)


def types_of(provider: str) -> list[tuple[str, str | None]]:
    """(type, kind or None) of every type the provider documents: handled ones first, in kind order."""
    kinds = HANDLED[provider]
    handled = sorted(kinds.items(), key=lambda item: CANONICAL_ORDER.index(item[1]))
    return [*handled, *((event_type, None) for event_type in IGNORED[provider])]
