"""The receiver's trust boundary: a provider is live only when configured, limits per provider, /metrics token."""
from __future__ import annotations

import json
import logging

import pytest

from providers.registry import PROVIDERS
from tests.integration.helpers import count_events, metric, post_signed, signed_request

UNCONFIGURED = {"smartpay_secrets": [], "senfenico_secrets": [], "yoco_secrets": [], "shadhinpay_secrets": [],
                "processout_basic_auth": None}


def _requests_total(client, provider: str, status: str) -> float:
    return metric(client.get("/metrics").get_data(as_text=True), "payhooks_webhook_requests_total",
                  provider=provider, status=status)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_unconfigured_provider_is_404_logged_counted_and_stores_nothing(make_app, settings, engine,
                                                                          caplog, provider) -> None:
    client = make_app(**UNCONFIGURED).test_client()
    # Even a request signed with what would be the right secret: the endpoint is not live
    body, headers = signed_request(settings, provider)
    before = _requests_total(client, provider, "404")
    with caplog.at_level(logging.WARNING, logger="payhooks.receiver"):
        response = client.post(f"/webhooks/{provider}", data=body, headers=headers)
    assert (response.status_code, response.json) == (404, {"error": "provider not configured"})
    assert _requests_total(client, provider, "404") == before + 1
    (record,) = [r for r in caplog.records if getattr(r, "action", None) == "webhook.unconfigured_provider"]
    assert record.provider == provider
    assert count_events(engine) == 0


def test_one_configured_provider_does_not_open_the_others(make_app, settings, engine) -> None:
    client = make_app(**{**UNCONFIGURED, "yoco_secrets": settings.secrets_for("yoco")}).test_client()
    assert post_signed(client, settings, "yoco").status_code == 200
    assert post_signed(client, settings, "processout").status_code == 404
    assert count_events(engine) == 1


def test_unauthenticated_processout_only_when_allowed_and_capped_at_8_kib(make_app, engine) -> None:
    client = make_app(processout_basic_auth=None, processout_allow_unauthenticated=True).test_client()
    thin = json.dumps({"event_id": "ev_open_1", "event_type": "transaction.captured"}).encode()
    assert client.post("/webhooks/processout", data=thin).json["status"] == "accepted"
    padded = json.dumps({"event_id": "ev_open_2", "pad": "x" * 8192}).encode()
    assert client.post("/webhooks/processout", data=padded).status_code == 413
    assert count_events(engine) == 1


def test_a_provider_body_limit_applies_to_that_provider_only(make_app, settings, engine) -> None:
    client = make_app(max_body_bytes_yoco=2048).test_client()
    big = b'{"id":"evt_big","type":"payment.succeeded","pad":"' + b"x" * 4096 + b'"}'
    assert post_signed(client, settings, "yoco", body=big).status_code == 413
    shadhinpay = big.replace(b'"id"', b'"eventId"', 1).replace(b'"type"', b'"event"', 1)
    assert post_signed(client, settings, "shadhinpay", body=shadhinpay).status_code == 200
    assert count_events(engine) == 1


def test_a_provider_limit_may_be_larger_than_the_global_one(make_app, settings, engine) -> None:
    client = make_app(max_body_bytes=2048, max_body_bytes_shadhinpay=16384).test_client()
    big = b'{"eventId":"evt_big","event":"payment.completed","pad":"' + b"x" * 4096 + b'"}'
    assert post_signed(client, settings, "shadhinpay", body=big).status_code == 200
    assert post_signed(client, settings, "yoco", body=big.replace(b'"eventId"', b'"id"')).status_code == 413


def test_metrics_ask_for_the_bearer_token_when_one_is_set(make_app) -> None:
    client = make_app(metrics_token="scrape-token-0123").test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic scrape-token-0123"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401 and response.json == {"error": "unauthorized"}
        assert "payhooks_" not in response.get_data(as_text=True)
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123"})
    assert response.status_code == 200 and "payhooks_webhook_requests_total" in response.get_data(as_text=True)
    # Without a token the endpoint stays open (scraped on a private network)
    assert make_app().test_client().get("/metrics").status_code == 200
