"""The receiver against real Postgres: every answer in DESIGN.md's table."""
from __future__ import annotations

import base64
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from providers.registry import PROVIDERS, build_adapters
from tests.conftest import PROCESSOUT_BASIC_AUTH, TEST_SECRETS
from tests.integration.helpers import (
    CLOSED_PORT_URL,
    EVENT_TYPES,
    SIGNATURE_HEADERS,
    count_events,
    live_server,
    post_signed,
    secret_forms,
    signed_request,
)
from tests.integration.stack import rows


def _rows(engine: Engine) -> list[Any]:
    return rows(engine, "SELECT * FROM webhook_events ORDER BY id")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_provider_is_verified_stored_and_accepted(client, settings, engine, provider) -> None:
    # Given a request signed exactly as the provider signs it
    body, headers = signed_request(settings, provider, event_id=f"evt_{provider}_1")
    # When it is posted
    response = client.post(f"/webhooks/{provider}", data=body, headers=headers)
    # Then it is accepted and stored once, raw bytes intact
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["status"] == "accepted"
    (row,) = _rows(engine)
    assert response.json["id"] == row.id
    assert (row.provider, row.status, row.event_type) == (provider, "pending", EVENT_TYPES[provider])
    assert bytes(row.raw_body) == body
    assert row.event_key
    lowered = {k.lower(): v for k, v in headers.items()}
    assert row.payload == build_adapters(settings)[provider].parse(body=body, headers=lowered).payload
    # and the headers are kept with the signature (or credentials) redacted
    secret_header = SIGNATURE_HEADERS[provider]
    assert row.headers[secret_header] == "[redacted]"
    sent = {k.lower(): v for k, v in headers.items()}[secret_header]
    assert sent not in json.dumps(row.headers)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_redelivery_is_a_duplicate_of_the_first_row(client, settings, engine, provider) -> None:
    body, headers = signed_request(settings, provider, event_id=f"evt_{provider}_dup")
    first = client.post(f"/webhooks/{provider}", data=body, headers=headers)
    # The provider re-signs its retry (a new timestamp for the timestamped schemes)
    body, headers = signed_request(settings, provider, body=body)
    second = client.post(f"/webhooks/{provider}", data=body, headers=headers)
    assert first.json["status"] == "accepted"
    assert second.status_code == 200
    assert second.json == {"status": "duplicate", "id": first.json["id"]}
    assert count_events(engine) == 1


def test_twenty_concurrent_identical_requests_store_one_row(app, settings, engine) -> None:
    body, headers = signed_request(settings, "yoco", event_id="evt_concurrent")
    with live_server(app) as base, ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(
            lambda _: httpx.post(f"{base}/webhooks/yoco", content=body, headers=headers, timeout=30),
            range(20),
        ))
    assert [a.status_code for a in answers] == [200] * 20
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["accepted"] + ["duplicate"] * 19
    assert len({a.json()["id"] for a in answers}) == 1
    assert count_events(engine) == 1


@pytest.mark.parametrize("provider", ["smartpay", "senfenico", "yoco", "shadhinpay"])
def test_tampered_body_is_401_and_stores_nothing(client, settings, engine, provider, caplog) -> None:
    body, headers = signed_request(settings, provider)
    tampered = body.replace(b"1000", b"9000") if b"1000" in body else body + b" "
    with caplog.at_level(logging.WARNING, logger="payhooks.receiver"):
        response = client.post(f"/webhooks/{provider}", data=tampered, headers=headers)
    assert response.status_code == 401
    assert response.json == {"error": "unauthorized"}  # generic: the reason is not the caller's
    assert count_events(engine) == 0
    (record,) = [r for r in caplog.records if getattr(r, "action", None) == "webhook.unverified"]
    assert record.provider == provider and record.reason
    for secret in TEST_SECRETS[provider]:
        assert secret not in caplog.text


@pytest.mark.parametrize("provider", ["smartpay", "senfenico", "yoco", "shadhinpay"])
def test_missing_signature_is_401(client, settings, engine, provider) -> None:
    body, _ = signed_request(settings, provider)
    response = client.post(f"/webhooks/{provider}", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert count_events(engine) == 0


def test_processout_requires_the_configured_basic_auth(client, settings, engine) -> None:
    body, headers = signed_request(settings, "processout")
    no_auth = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    assert client.post("/webhooks/processout", data=body, headers=no_auth).status_code == 401
    wrong = {**no_auth, "Authorization": "Basic aG9va3VzZXI6d3Jvbmc="}  # hookuser:wrong
    assert client.post("/webhooks/processout", data=body, headers=wrong).status_code == 401
    assert count_events(engine) == 0
    assert client.post("/webhooks/processout", data=body, headers=headers).status_code == 200
    assert PROCESSOUT_BASIC_AUTH.split(":")[1] not in json.dumps(_rows(engine)[0].headers)


def test_processout_form_encoded_body_is_accepted(client, settings, engine) -> None:
    body = b"event_id=ev_form_1&event_type=transaction.failed"
    _, headers = signed_request(settings, "processout", body=body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = client.post("/webhooks/processout", data=body, headers=headers)
    assert response.status_code == 200
    (row,) = _rows(engine)
    assert (row.event_key, row.event_type) == ("ev_form_1", "transaction.failed")


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("shadhinpay", b"this is not json"),
        ("smartpay", b'{"object":"event","eventData":{"type":"x"}}'),  # no event key
        # A NUL character is valid JSON but not storable in jsonb: 400, not 500.
        ("yoco", b'{"id":"evt_nul","type":"payment.succeeded","payload":{"note":"a\\u0000b"}}'),
    ],
    ids=["unparseable", "without-event-key", "postgres-cannot-store"],
)
def test_a_verified_body_that_cannot_be_stored_is_400(client, settings, engine, provider, body) -> None:
    response = post_signed(client, settings, provider, body=body)
    assert response.status_code == 400
    assert count_events(engine) == 0


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_payload_column_holds_the_json_of_any_encoding_python_reads(client, settings, engine, encoding) -> None:
    # Postgres parses a plain UTF-8 body itself; a BOM or UTF-16 body is encoded by Python instead.
    document = {"event": "payment.success", "eventId": f"evt_{encoding}", "data": {"note": "caf\u00e9 \u20ac"}}
    body, headers = signed_request(settings, "shadhinpay", body=json.dumps(document).encode(encoding))
    response = client.post("/webhooks/shadhinpay", data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    (row,) = _rows(engine)
    assert row.payload == document and bytes(row.raw_body) == body


def test_unknown_provider_is_404(client, engine) -> None:
    response = client.post("/webhooks/paypal", data=b"{}")
    assert response.status_code == 404
    assert count_events(engine) == 0


def test_body_over_the_limit_is_413(make_app, settings, engine) -> None:
    client = make_app(max_body_bytes=2048).test_client()
    response = post_signed(client, settings, "yoco", body=b'{"id":"evt_big","pad":"' + b"x" * 4096 + b'"}')
    assert response.status_code == 413
    assert count_events(engine) == 0


def test_unknown_event_type_is_stored_not_rejected(client, settings, engine) -> None:
    assert post_signed(client, settings, "yoco", event_type="payment.something_new").status_code == 200
    assert _rows(engine)[0].event_type == "payment.something_new"


def test_database_unreachable_is_503_and_the_retry_is_kept(make_app, settings, engine) -> None:
    # Given a receiver whose database is down (a closed port)
    down = make_app(database_url=CLOSED_PORT_URL, db_timeout_seconds=1).test_client()
    body, headers = signed_request(settings, "smartpay", event_id="evt_outage")
    # When the provider posts, it is told to come back later
    response = down.post("/webhooks/smartpay", data=body, headers=headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "Traceback" not in response.get_data(as_text=True)
    # and /readyz says so
    assert down.get("/readyz").status_code == 503
    # When the database is back and the provider retries, the event is stored
    body, headers = signed_request(settings, "smartpay", body=body)
    retry = make_app().test_client().post("/webhooks/smartpay", data=body, headers=headers)
    assert retry.status_code == 200 and retry.json["status"] == "accepted"
    assert count_events(engine) == 1


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ok", "database": "ok"}


def test_secret_index_of_a_rotation_is_recorded(make_app, settings, engine) -> None:
    rotated = make_app(yoco_secrets=["whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", *TEST_SECRETS["yoco"]])
    assert post_signed(rotated.test_client(), settings, "yoco").status_code == 200  # signed with the old (second) one
    assert _rows(engine)[0].secret_index == 1


def test_no_secret_reaches_the_log_or_the_row(make_app, settings, engine, capfd) -> None:
    from models import logs
    from models.redaction import Redactor

    # The production log pipeline (the JSON handler on stderr with the redaction filter)
    root = logging.getLogger()
    previous = root.handlers[:], root.level
    logs.configure(redactor=Redactor.from_settings(settings), json_lines=True)
    client = make_app().test_client()
    # A proxy that forwards the registered URL (credentials and all) and an Authorization header on
    # every provider's request: what a careless front end or the provider itself may add
    proxy_url = f"https://{PROCESSOUT_BASIC_AUTH}@hooks.example/webhooks/processout"
    basic = "Basic " + base64.b64encode(PROCESSOUT_BASIC_AUTH.encode()).decode()
    try:
        for provider in PROVIDERS:
            body, headers = signed_request(settings, provider)
            headers = {"authorization": basic, **{k.lower(): v for k, v in headers.items()},
                       "x-original-url": proxy_url}
            assert client.post(f"/webhooks/{provider}", data=body, headers=headers).status_code == 200
            assert client.post(f"/webhooks/{provider}", data=body + b"x", headers=headers).status_code in (401, 400)
            logging.getLogger("payhooks.test").warning("request carried %s", headers)
    finally:
        root.handlers[:], level = previous
        root.setLevel(level)
    log_text = capfd.readouterr().err
    rows = _rows(engine)
    assert len(rows) == len(PROVIDERS)
    assert all(r.headers["x-original-url"].endswith("[redacted]@hooks.example/webhooks/processout")
               and r.headers["authorization"] == "[redacted]" for r in rows)
    stored = json.dumps([dict(r.headers) for r in rows])
    assert "request carried" in log_text
    for secret in secret_forms():
        assert secret not in log_text, secret
        assert secret not in stored, secret
