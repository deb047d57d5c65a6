"""`payhooks orders …`: register an order and look one up, from the shell.

The same validation and the same insert as ``POST /api/orders``
(``models.order_service``); no API token is needed, the database URL is.
"""
from __future__ import annotations

from typing import Any

import click
from pydantic import ValidationError

from cli.options import operator_engine, settings_with_database
from cli.output import echo_json
from models.order_service import (
    DuplicateOrder,
    OrderInput,
    create_order,
    field_errors,
    get_order,
)
from models.redaction import redact
from providers.money import minor_to_major


def _echo(order: dict[str, Any], *, as_json: bool, created: bool = False) -> None:
    """For a person by default: what the order is, and the next command to run with it."""
    if as_json:
        echo_json(order)
        return
    amount = f"{minor_to_major(order['amount'], order['currency'])} {order['currency']}"
    customer = ", ".join(v for v in (order["customer_name"], order["customer_email"], order["customer_phone"]) if v)
    lines = [f"{'registered ' if created else ''}order {order['reference']}: status: {order['status']}",
             f"  amount     {amount} ({order['amount']} in minor units)",
             f"  provider   {order['provider']}, payment reference {order['provider_payment_ref']}",
             f"  customer   {customer or '(no email or phone: no notices are sent)'}"]
    if order["refunded_amount"]:
        lines.append(f"  refunded   {minor_to_major(order['refunded_amount'], order['currency'])} "
                     f"{order['currency']}")
    if created:
        lines.append(f"Pay it as the provider would: payhooks send {order['provider']} payment.succeeded "
                     f"--order-ref {order['provider_payment_ref']} --amount {order['amount']}")
    else:
        lines.append(f"  created    {order['created_at']}, updated {order['updated_at']}")
        lines.append(f"Its events: payhooks events list --order {order['reference']}")
    click.echo("\n".join(lines))


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
@click.option("--json", "as_json", is_flag=True, help="print the order as JSON, for scripts")
def create(reference: str, provider: str, provider_payment_ref: str, amount: int, currency: str,
           customer_email: str | None, customer_phone: str | None, customer_name: str | None,
           as_json: bool) -> None:
    """Register an order before the customer pays."""
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
    with operator_engine(settings_with_database()) as engine:
        try:
            with engine.begin() as conn:
                order = create_order(conn, data)
        except DuplicateOrder as exc:
            raise click.ClickException(
                f"{redact(str(exc))}: choose another --reference/--provider-payment-ref, or see "
                f"the existing order with `payhooks orders show {reference}`") from None
    _echo(order, as_json=as_json, created=True)


@orders.command("show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="the order as JSON, for scripts")
def show(reference: str, as_json: bool) -> None:
    """The order registered as REFERENCE."""
    with operator_engine(settings_with_database()) as engine, engine.connect() as conn:
        order = get_order(conn, reference)
    if order is None:
        raise click.ClickException(f"no order with reference {reference!r}: check it, or register it with "
                                   "`payhooks orders create`")
    _echo(order, as_json=as_json)
