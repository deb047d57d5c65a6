"""POST /api/orders and GET /api/orders/<reference> against real Postgres (DESIGN.md, "Orders")."""
from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import API_TOKEN
from tests.integration.helpers import CLOSED_PORT_URL, live_server
from tests.integration.stack import rows

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": "ord_1001",
        "provider": "yoco",
        "provider_payment_ref": "ch_9Kq2xY",
        "amount": 12_500,
        "currency": "ZAR",
        "customer_email": "thandi@example.co.za",
        "customer_phone": "+27 82 555 0100",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def _rows(engine: Engine) -> list[Any]:
    return rows(engine, "SELECT * FROM orders ORDER BY id")


def test_an_order_is_registered_and_returned(app, client, engine) -> None:
    assert "orders" in app.blueprints  # create_app registers the orders API
    # When the merchant registers an order
    response = client.post("/api/orders", json=order_body(), headers=AUTH)
    # Then it is 201 with the order, pending, and a Location to read it back
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.json
    (row,) = _rows(engine)
    assert response.headers["Location"] == "/api/orders/ord_1001"
    assert body["id"] == row.id
    expected = {**order_body(), "status": "pending", "refunded_amount": 0, "paid_at": None}
    assert {k: body[k] for k in expected} == expected
    assert datetime.fromisoformat(body["created_at"]) == row.created_at
    assert datetime.fromisoformat(body["updated_at"]) == row.updated_at
    # and the row holds exactly that
    assert {k: getattr(row, k) for k in expected} == expected
    # When it is read back, the same order comes back
    shown = client.get(response.headers["Location"], headers=AUTH)
    assert shown.status_code == 200
    assert shown.json == body


def test_the_customer_name_is_kept_for_the_emails(client, engine) -> None:
    response = client.post("/api/orders", json=order_body(customer_name="  Thandi Mokoena "), headers=AUTH)
    assert response.status_code == 201
    assert response.json["customer_name"] == "Thandi Mokoena"
    assert _rows(engine)[0].customer_name == "Thandi Mokoena"


def test_contact_details_are_optional_and_currency_is_upper_cased(client, engine) -> None:
    body = order_body(currency="xof", provider="senfenico", amount=5000,
                      customer_email=..., customer_phone="")
    response = client.post("/api/orders", json=body, headers=AUTH)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert (response.json["currency"], response.json["customer_email"],
            response.json["customer_phone"]) == ("XOF", None, None)
    (row,) = _rows(engine)
    assert (row.currency, row.customer_email, row.customer_phone) == ("XOF", None, None)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": API_TOKEN},
     {"Authorization": f"Basic {API_TOKEN}"}, {"Authorization": "Bearer "},
     {"Authorization": "Bearer t\u00f6ken"}],
    ids=["missing", "wrong", "no-scheme", "basic", "empty", "non-ascii"],
)
def test_without_the_right_token_it_is_401(client, engine, headers) -> None:
    posted = client.post("/api/orders", json=order_body(), headers=headers)
    read = client.get("/api/orders/ord_1001", headers=headers)
    assert (posted.status_code, posted.json) == (401, {"error": "unauthorized"})
    assert (read.status_code, read.json) == (401, {"error": "unauthorized"})
    assert _rows(engine) == []


@pytest.mark.parametrize("token", [None, ""], ids=["unset", "empty"])
def test_with_no_token_configured_the_api_is_closed(make_app, engine, caplog, token) -> None:
    # Given a receiver with no API token configured
    client = make_app(api_token=token).test_client()
    # When anyone posts, even with an empty or a guessed bearer token, it is 401
    with caplog.at_level(logging.WARNING, logger="payhooks.receiver.orders"):
        for headers in ({}, {"Authorization": "Bearer "}, AUTH):
            response = client.post("/api/orders", json=order_body(), headers=headers)
            assert (response.status_code, response.json) == (401, {"error": "unauthorized"})
    reasons = {r.reason for r in caplog.records if getattr(r, "action", None) == "orders.unauthorized"}
    assert reasons == {"no api token configured"}
    assert _rows(engine) == []


@pytest.mark.parametrize(
    ("overrides", "bad_field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": "1000"}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": 2**63}, "amount"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "E1R"}, "currency"),
        ({"provider": "paypal"}, "provider"),
        ({"reference": ...}, "reference"),
        ({"reference": ""}, "reference"),
        ({"reference": "x" * 256}, "reference"),
        ({"reference": "ord\n1"}, "reference"),
        ({"provider_payment_ref": "ch\x001"}, "provider_payment_ref"),
        ({"provider_payment_ref": ...}, "provider_payment_ref"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"customer_email": "a@" + "b" * 320 + ".com"}, "customer_email"),
        ({"customer_phone": "call me"}, "customer_phone"),
        ({"customer_phone": "12345"}, "customer_phone"),
        ({"customer_mail": "typo@example.com"}, "customer_mail"),
    ],
)
def test_a_bad_field_is_400_and_named(client, engine, overrides, bad_field) -> None:
    response = client.post("/api/orders", json=order_body(**overrides), headers=AUTH)
    assert response.status_code == 400
    assert response.json["error"] == "invalid order"
    assert list(response.json["fields"]) == [bad_field]
    assert response.json["fields"][bad_field]
    assert _rows(engine) == []


def test_every_bad_field_is_named_at_once(client, engine, caplog) -> None:
    body = order_body(amount=0, currency="EURO", provider="paypal", reference=...,
                      customer_email="thandi-at-example")
    with caplog.at_level(logging.WARNING, logger="payhooks.receiver.orders"):
        response = client.post("/api/orders", json=body, headers=AUTH)
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"amount", "currency", "provider", "reference",
                                            "customer_email"}
    assert response.json["fields"]["reference"] == "Field required"
    assert response.json["fields"]["currency"] == "must be a 3-letter ISO 4217 code"
    (record,) = [r for r in caplog.records if getattr(r, "action", None) == "orders.invalid"]
    assert record.status == 400
    assert "thandi-at-example" not in caplog.text  # field names are logged, not the values
    assert _rows(engine) == []


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b'"ord_1"', b"", b"{\"reference\": "])
def test_a_body_that_is_not_a_json_object_is_400(client, engine, data) -> None:
    response = client.post("/api/orders", data=data, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json == {"error": "invalid order", "fields": {"body": "must be a JSON object"}}
    assert _rows(engine) == []


def test_a_json_body_without_a_json_content_type_is_accepted(client, engine) -> None:
    response = client.post("/api/orders", data=json.dumps(order_body()), headers=AUTH)
    assert response.status_code == 201
    assert [row.reference for row in _rows(engine)] == ["ord_1001"]


def test_a_reference_already_registered_is_409(client, engine) -> None:
    first = client.post("/api/orders", json=order_body(), headers=AUTH)
    again = client.post("/api/orders", json=order_body(provider_payment_ref="ch_other", amount=1),
                        headers=AUTH)
    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json == {"error": "order already registered", "reference": "ord_1001",
                          "conflict": "reference"}
    (row,) = _rows(engine)
    assert (row.provider_payment_ref, row.amount) == ("ch_9Kq2xY", 12_500)  # the first one stands


def test_the_same_order_sent_twice_is_409_for_its_reference(client, engine) -> None:
    # Both unique keys are taken; the answer names the reference whichever index Postgres checks first
    assert client.post("/api/orders", json=order_body(), headers=AUTH).status_code == 201
    again = client.post("/api/orders", json=order_body(), headers=AUTH)
    assert again.status_code == 409
    assert again.json["conflict"] == "reference"
    assert len(_rows(engine)) == 1


def test_concurrent_registrations_of_one_order_store_one_row(app, engine) -> None:
    body = order_body()
    with live_server(app) as base, ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(
            lambda _: httpx.post(f"{base}/api/orders", json=body, headers=AUTH, timeout=30),
            range(10),
        ))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 9
    assert len(_rows(engine)) == 1


def test_a_provider_payment_already_registered_is_409(client, engine) -> None:
    first = client.post("/api/orders", json=order_body(), headers=AUTH)
    again = client.post("/api/orders", json=order_body(reference="ord_1002"), headers=AUTH)
    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json == {"error": "order already registered", "reference": "ord_1002",
                          "conflict": "provider_payment_ref"}
    assert [row.reference for row in _rows(engine)] == ["ord_1001"]
    # The same payment reference at another provider is another payment
    other = client.post("/api/orders", json=order_body(reference="ord_1003", provider="smartpay"),
                        headers=AUTH)
    assert other.status_code == 201
    assert [row.reference for row in _rows(engine)] == ["ord_1001", "ord_1003"]


def test_an_unknown_reference_is_404(client, engine) -> None:
    response = client.get("/api/orders/ord_nope", headers=AUTH)
    assert response.status_code == 404
    assert response.json == {"error": "order not found", "reference": "ord_nope"}


def test_a_reference_with_a_slash_or_a_space_round_trips(client, engine) -> None:
    created = client.post("/api/orders", json=order_body(reference="shop/2024 #17"), headers=AUTH)
    assert created.status_code == 201
    assert created.headers["Location"] == "/api/orders/shop/2024%20%2317"
    shown = client.get(created.headers["Location"], headers=AUTH)
    assert shown.status_code == 200
    assert shown.json["reference"] == "shop/2024 #17"


def test_database_unreachable_is_503_with_retry_after(make_app, engine) -> None:
    down = make_app(database_url=CLOSED_PORT_URL, db_timeout_seconds=1).test_client()
    posted = down.post("/api/orders", json=order_body(), headers=AUTH)
    read = down.get("/api/orders/ord_1001", headers=AUTH)
    for response in (posted, read):
        assert response.status_code == 503
        assert response.json == {"error": "service unavailable"}
        assert response.headers["Retry-After"].isdigit()


def test_the_token_never_reaches_the_log(client, engine, caplog) -> None:
    wrong = "Bearer almost-" + API_TOKEN
    with caplog.at_level(logging.DEBUG):
        assert client.post("/api/orders", json=order_body(), headers=AUTH).status_code == 201
        assert client.post("/api/orders", json=order_body(), headers=AUTH).status_code == 409
        assert client.post("/api/orders", json={"amount": 0}, headers=AUTH).status_code == 400
        assert client.get("/api/orders/ord_1001", headers=AUTH).status_code == 200
        assert client.get("/api/orders/missing", headers=AUTH).status_code == 404
        assert client.post("/api/orders", json=order_body(),
                           headers={"Authorization": wrong}).status_code == 401
    actions = [getattr(r, "action", None) for r in caplog.records if r.name.startswith("payhooks")]
    assert actions == ["orders.created", "orders.duplicate", "orders.invalid", "orders.not_found",
                       "orders.unauthorized"]
    (unauthorized,) = [r for r in caplog.records if getattr(r, "action", None) == "orders.unauthorized"]
    assert unauthorized.reason == "wrong bearer token"
    for record in caplog.records:
        rendered = f"{record.getMessage()} {record.__dict__}"
        assert API_TOKEN not in rendered
    assert API_TOKEN not in caplog.text
