"""What the customer reads: subjects and bodies from the package's Jinja2 templates."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from providers.money import minor_to_major

SUBJECTS = {
    "order_confirmation": "Payment received for order {reference}",
    "payment_failed": "Payment failed for order {reference}",
    "refund": "Refund for order {reference}",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("workers.deliveries", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def money(amount_minor: int, currency: str) -> str:
    """``2500, "ZAR"`` → ``"25.00 ZAR"``; ``1000, "JPY"`` → ``"1000 JPY"``."""
    return f"{minor_to_major(amount_minor, currency)} {currency}"


def template_context(payload: dict[str, Any]) -> dict[str, Any]:
    order = payload["order"]
    refund = payload.get("refund") or {}
    email = order.get("customer_email") or ""
    return {
        "name": order.get("customer_name") or email.split("@")[0] or "customer",
        "reference": order["reference"],
        "amount": money(order["amount"], order["currency"]),
        "refund_amount": money(refund["amount"], order["currency"]) if refund else "",
    }


def render_email(template: str, payload: dict[str, Any]) -> Rendered:
    context = template_context(payload)
    env = _environment()
    return Rendered(
        subject=SUBJECTS[template].format(**context),
        text=env.get_template(f"{template}.txt").render(context),
        html=env.get_template(f"{template}.html").render(context),
    )


def render_sms(template: str, payload: dict[str, Any]) -> str:
    return _environment().get_template(f"sms_{template}.txt").render(template_context(payload)).strip()
