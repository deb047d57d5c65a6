"""Money in the providers' units: ISO 4217 minor-unit exponents and minor → major amounts.

Production arithmetic (the workers read amounts with it, deliveries print
them, the ProcessOut fixtures write them); it lives beside the adapters
because it is a fact about the providers' currencies, not about any caller.
"""
from __future__ import annotations

_ZERO_EXPONENT = frozenset({"JPY", "XOF"})


def currency_exponent(currency: str) -> int:
    """ISO 4217 minor-unit exponent: 0 for JPY and XOF, 2 for the others used here."""
    return 0 if currency.upper() in _ZERO_EXPONENT else 2


def minor_to_major(amount_minor: int, currency: str) -> str:
    """``1050, "USD"`` -> ``"10.50"``; ``1000, "JPY"`` -> ``"1000"``."""
    exponent = currency_exponent(currency)
    if exponent == 0:
        return str(amount_minor)
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    return f"{'-' if amount_minor < 0 else ''}{whole}.{fraction:0{exponent}d}"
