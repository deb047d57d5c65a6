"""`payhooks orders create|show` against real Postgres."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.integration.ops_data import json_out, ok
from tests.integration.stack import tuples

CREATE = [
    "create", "--reference", "ord_cli_1", "--provider", "senfenico",
    "--provider-payment-ref", "chk_55aa", "--amount", "5000", "--currency", "xof",
    "--customer-email", "awa@example.bf", "--customer-phone", "+226 70 00 00 00", "--json",
]


@pytest.fixture
def run(run):
    """`payhooks orders ARGS`, with only the test settings (conftest's runner)."""
    return lambda *args, **options: run("orders", *args, **options)


def _references(engine: Engine) -> list[tuple[str, str, int]]:
    return tuples(engine, "SELECT reference, currency, amount FROM orders ORDER BY id")


def test_create_then_show(run, engine) -> None:
    # When an order is created from the shell, Then it is printed as JSON and stored
    order = json_out(run(*CREATE))
    assert {k: order[k] for k in ("reference", "provider", "provider_payment_ref", "amount",
                                  "currency", "customer_email", "customer_phone", "status")} == {
        "reference": "ord_cli_1", "provider": "senfenico", "provider_payment_ref": "chk_55aa",
        "amount": 5000, "currency": "XOF", "customer_email": "awa@example.bf",
        "customer_phone": "+226 70 00 00 00", "status": "pending",
    }
    assert _references(engine) == [("ord_cli_1", "XOF", 5000)]
    # and `show` prints the same order
    assert json_out(run("show", "ord_cli_1", "--json")) == order


def test_contact_options_may_be_left_out(run, engine) -> None:
    order = json_out(run("create", "--reference", "ord_cli_2", "--provider", "smartpay",
                         "--provider-payment-ref", "order_test_abc", "--amount", "1200", "--currency", "JPY", "--json"))
    assert (order["customer_email"], order["customer_phone"]) == (None, None)
    assert _references(engine) == [("ord_cli_2", "JPY", 1200)]


def test_a_duplicate_fails_and_says_why(run, engine) -> None:
    assert run(*CREATE).exit_code == 0
    again = run(*CREATE)
    assert again.exit_code == 1
    assert "ord_cli_1" in again.stderr and "already registered" in again.stderr
    same_payment = run(*[("ord_cli_9" if a == "ord_cli_1" else a) for a in CREATE])
    assert same_payment.exit_code == 1
    assert "chk_55aa" in same_payment.stderr and "another order" in same_payment.stderr
    assert _references(engine) == [("ord_cli_1", "XOF", 5000)]


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [("--currency", "EURO", "--currency"), ("--amount", "0", "--amount"),
     ("--provider", "paypal", "--provider"), ("--customer-email", "nope", "--customer-email")],
)
def test_an_invalid_value_fails_naming_the_option(run, engine, option, value, named) -> None:
    args = list(CREATE)
    args[args.index(option) + 1] = value
    result = run(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: invalid order: ")
    assert f"{named}:" in result.stderr
    assert result.stdout == ""
    assert _references(engine) == []


def test_every_invalid_value_is_named(run, engine) -> None:
    result = run("create", "--reference", "ord_cli_3", "--provider", "paypal",
                 "--provider-payment-ref", "p1", "--amount", "-1", "--currency", "EURO")
    assert result.exit_code == 1
    for named in ("--provider:", "--amount:", "--currency:"):
        assert named in result.stderr
    assert "--reference" not in result.stderr
    assert _references(engine) == []


def test_a_missing_required_option_is_a_usage_error(run, engine) -> None:
    result = run("create", "--reference", "ord_cli_4", "--provider", "yoco", "--amount", "100",
                 "--currency", "ZAR")
    assert result.exit_code == 2
    assert "--provider-payment-ref" in result.stderr
    assert _references(engine) == []


@pytest.mark.parametrize(("reference", "env", "message"), [
    ("ord_missing", {}, "no order with reference 'ord_missing'"),
    ("ord_1", {"PAYHOOKS_DATABASE_URL": None}, "PAYHOOKS_DATABASE_URL is not set"),
], ids=["an-unknown-reference", "without-a-database-url"])
def test_show_exits_1_saying_why(run, engine, reference, env, message) -> None:
    result = run("show", reference, env=env)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_output_is_for_a_person_by_default_with_the_next_step(run, engine) -> None:
    created = ok(run("create", "--reference", "ORD-H", "--provider", "Yoco", "--provider-payment-ref", "ch_h",
                     "--amount", "2500", "--currency", "ZAR", "--customer-email", "a@example.com"))
    assert "registered order ORD-H: status: pending" in created.stdout and "25.00 ZAR" in created.stdout
    assert "payhooks send yoco payment.succeeded --order-ref ch_h --amount 2500" in created.stdout
    shown = run("show", "ORD-H")
    assert "order ORD-H: status: pending" in shown.stdout and "payhooks events list --order ORD-H" in shown.stdout
    assert "{" not in shown.stdout
