"""`payhooks orders …`: register an order and look one up, from the shell.

The same validation and the same insert as ``POST /api/orders``
(``models.order_service``); no API token is needed, the database URL is.
"""
from __future__ import annotations

import json
from typing import Any

import click
from pydantic import ValidationError

from models.order_service import DuplicateOrder, OrderInput, create_order, field_errors, get_order
from models.redaction import redact


def _engine():
    from workers.cli import _settings_with_database  # lazily: workers.cli adds this group
    from workers.ops_common import operator_engine

    return operator_engine(_settings_with_database())


def _echo_json(order: dict[str, Any]) -> None:
    click.echo(json.dumps(order, indent=2))


@click.group("orders")
def orders() -> None:
    """Register orders and look them up."""


@orders.command("create")
@click.option("--reference", required=True, help="the merchant's own order reference")
@click.option("--provider", required=True,
              help="smartpay, processout, senfenico, yoco or shadhinpay (any case)")
@click.option("--provider-payment-ref", required=True,
              help="the provider's payment reference (which field carries it: docs/PROVIDERS.md)")
@click.option("--amount", type=int, required=True, help="amount in minor units (cents; yen and XOF as is)")
@click.option("--currency", required=True, help="ISO 4217 code, e.g. ZAR")
@click.option("--customer-email", default=None, help="where payment emails go")
@click.option("--customer-phone", default=None, help="+, 6 to 20 digits, spaces or dashes")
@click.option("--customer-name", default=None, help="how emails greet the customer")
def create(reference: str, provider: str, provider_payment_ref: str, amount: int, currency: str,
           customer_email: str | None, customer_phone: str | None, customer_name: str | None) -> None:
    """Register an order before the customer pays; prints it as JSON."""
    try:
        data = OrderInput(
            reference=reference, provider=provider.strip().lower(), provider_payment_ref=provider_payment_ref,
            amount=amount, currency=currency, customer_email=customer_email,
            customer_phone=customer_phone, customer_name=customer_name,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"--{name.replace('_', '-')}: {message}" for name, message in field_errors(exc).items()
        )
        raise click.ClickException(f"invalid order: {problems}; correct and run it again") from None
    with _engine() as engine:
        try:
            with engine.begin() as conn:
                order = create_order(conn, data)
        except DuplicateOrder as exc:
            raise click.ClickException(
                f"{redact(str(exc))}: choose another --reference/--provider-payment-ref, or see "
                f"the existing order with `payhooks orders show {reference}`") from None
    _echo_json(order)


@orders.command("show")
@click.argument("reference")
def show(reference: str) -> None:
    """Print the order registered as REFERENCE as JSON."""
    with _engine() as engine, engine.connect() as conn:
        order = get_order(conn, reference)
    if order is None:
        raise click.ClickException(f"no order with reference {reference!r}: check it, or register it with "
                                   "`payhooks orders create`")
    _echo_json(order)
