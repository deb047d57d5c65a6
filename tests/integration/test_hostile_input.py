"""Hostile input at the HTTP layer, against real Postgres: never a 5xx, nothing unverified stored.

Two kinds of attack: requests nobody signed (random bodies and headers), and
requests a holder of the secret signed but whose bodies are adversarial
(deep JSON, scalars, huge numbers, NUL, lone surrogates, invalid UTF-8…).
Either way the answer is a 4xx or a 200 that names a stored row.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from models.tables import WebhookEvent
from providers.registry import PROVIDERS
from testkit.services import serve_process
from tests.conftest import API_TOKEN, TEST_SECRETS
from tests.integration.helpers import count_events, post_signed, read_answer, signed_request

SIGNED = ["smartpay", "senfenico", "yoco", "shadhinpay"]
HEADER_NAMES = {
    "smartpay": ["Smartpay-Signature", "Smartpay-Signature-Timestamp", "Smartpay-Subscription-Id"],
    "processout": ["Authorization"],
    "senfenico": ["X-Webhook-Hash"],
    "yoco": ["webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-signature"],
    "shadhinpay": ["X-ShadhinPay-Signature", "X-ShadhinPay-Event-Id"],
}
FUZZ = hyp_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120),
    st.sampled_from(["", "v1,", "v1,@@@", "sha256=zz", "t=,v1=", "t=abc,v1=00", "Basic", "Basic !!",
                     "1" * 30, "-1", "v1," + "A" * 44, "sha256=" + "0" * 64, "0" * 64]),
)


def _post_sane(client, engine: Engine, provider: str, body: bytes, headers) -> Any:
    """``body`` posted to the provider's endpoint: the answer, known to be no 5xx, and a 200 naming a stored row
    or else nothing stored."""
    before = count_events(engine)
    response = client.post(f"/webhooks/{provider}", data=body, headers=headers)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    if response.status_code == 200:
        row_id = response.json["id"]
        with engine.connect() as conn:
            assert conn.execute(select(WebhookEvent.id).where(WebhookEvent.id == row_id)).scalar_one() == row_id
    else:
        assert count_events(engine) == before
    return response


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "processout"])
def test_unsigned_random_requests_are_refused_and_store_nothing(client, engine, provider) -> None:
    @FUZZ
    @given(body=st.binary(max_size=2048),
           headers=st.dictionaries(st.sampled_from(HEADER_NAMES[provider]), header_values, max_size=4),
           content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                         "multipart/form-data", ""]))
    def attack(body: bytes, headers: dict[str, str], content_type: str) -> None:
        response = _post_sane(client, engine, provider, body, {**headers, "Content-Type": content_type})
        assert response.status_code == 401  # nothing here carries a valid signature: nothing stored

    attack()


JSON_ATTACKS = [
    b"[" * 10_000 + b"]" * 10_000,  # 10k-deep JSON
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    b"[1, 2, 3]",
    b'"just a string"',
    b"12345",
    b"null",
    b"true",
    b'{"id": "x", "type": "payment.succeeded", "n": ' + b"9" * 5_000 + b"}",  # past Python's int limit
    b'{"id": "x", "type": "payment.succeeded", "n": ' + b"9" * 3_000 + b"}",  # a big but storable number
    b'{"id": "x", "type": "payment.succeeded", "n": 1e400}',  # infinity
    b'{"id": "a", "id": "b", "type": "t", "type": "u"}',  # duplicate keys
    b'{"id": "nul\\u0000key", "type": "t"}',
    b'{"id": "x", "type": "t", "payload": {"note": "a\\u0000b"}}',
    b'{"id": "\\ud800", "type": "t"}',  # a lone surrogate as the key
    b'{"id": "x", "type": "t", "payload": {"note": "\\udfff"}}',  # ... and inside the payload
    b'{"id": "' + b"k" * 10_000 + b'", "type": "t"}',  # an event key far too long
    b"\xff\xfe\x00not utf-8",
    b"not json at all",
    b"",
    b"{}",
    b'{"event_id": ["list"], "event_type": {"a": 1}}',
    b"event_id=&event_type=",
    b"event_id=ev_1&event_id=ev_2",
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("body", JSON_ATTACKS, ids=range(len(JSON_ATTACKS)))
def test_signed_adversarial_bodies_never_get_a_5xx(client, settings, engine, provider, body) -> None:
    # Yoco signs over text: a body that is not UTF-8 cannot be signed the Yoco way at all.
    if provider == "yoco" and not _is_utf8(body):
        pytest.skip("Standard Webhooks signs text")
    response = _post_sane(client, engine, provider, body, signed_request(settings, provider, body=body)[1])
    assert response.status_code in (200, 400), response.get_data(as_text=True)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("provider", SIGNED)
def test_signed_random_json_gets_a_clear_answer(client, settings, engine, provider) -> None:
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=20,
    )

    @FUZZ
    @given(document=json_values)
    def attack(document) -> None:
        body = json.dumps(document).encode()
        _post_sane(client, engine, provider, body, signed_request(settings, provider, body=body)[1])

    attack()


def test_one_byte_over_the_limit_is_413_and_stores_nothing(client, settings, engine) -> None:
    limit = settings.max_body_bytes
    body = b'{"id":"evt_big","type":"payment.succeeded","pad":"' + b"x" * limit + b'"}'
    body = body[: limit + 1]
    assert post_signed(client, settings, "yoco", body=body).status_code == 413
    assert count_events(engine) == 0


def test_a_repeated_signature_header_is_refused(client, settings, engine) -> None:
    body, headers = signed_request(settings, "shadhinpay")
    genuine = {k.lower(): v for k, v in headers.items()}["x-shadhinpay-signature"]
    forged_first = [("Content-Type", "application/json"), ("X-ShadhinPay-Signature", "sha256=" + "0" * 64),
                    ("X-ShadhinPay-Signature", genuine)]
    forged_last = [forged_first[0], forged_first[2], forged_first[1]]
    # WSGI joins repeated headers into one comma-separated value: ambiguous, so refused either way
    for headers_sent in (forged_first, forged_last):
        assert _post_sane(client, engine, "shadhinpay", body, headers_sent).status_code == 401
    # while the genuine header alone passes
    assert client.post("/webhooks/shadhinpay", data=body, headers=[forged_first[0], forged_first[2]]).status_code == 200


@pytest.fixture(scope="module")
def served(tmp_path_factory, database_url, migrated_engine) -> Iterator[int]:
    """The real `payhooks serve` (granian), for attacks a test client cannot even express."""
    env = {"PAYHOOKS_SHADHINPAY_SECRETS": TEST_SECRETS["shadhinpay"][0], "PAYHOOKS_API_TOKEN": API_TOKEN}
    with serve_process(database_url=database_url, workdir=tmp_path_factory.mktemp("serve"), workers=1,
                       threads=2, env=env) as (base, _):
        yield int(base.rpartition(":")[2])


def _raw(port: int, request: bytes) -> int:
    """Send raw bytes; return the HTTP status of the answer (0: the server closed without one)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return read_answer(sock)[0]


RAW_ATTACKS = {
    "newline in a header value": b"X-ShadhinPay-Signature: sha256=00\n injected: yes\r\n",
    "bare CR in a header value": b"X-ShadhinPay-Signature: sha256=00\rX-Evil: 1\r\n",
    "NUL in a header value": b"X-ShadhinPay-Signature: sha256=\x0000\r\n",
    "a header line of 20 kB": b"X-ShadhinPay-Signature: " + b"a" * 20_000 + b"\r\n",
    "two Content-Lengths": b"Content-Length: 2\r\n",
    "bad chunked encoding": b"Transfer-Encoding: chunked\r\n",
}


@pytest.mark.parametrize("attack", list(RAW_ATTACKS))
def test_malformed_http_gets_a_4xx_from_the_real_server(served, engine, attack) -> None:
    body = b'{"event":"payment.completed","data":{"payment_id":"SP_raw","amount":1,"currency":"BDT"}}'
    head = (b"POST /webhooks/shadhinpay HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + RAW_ATTACKS[attack])
    if attack == "bad chunked encoding":
        request = head + b"\r\nzz\r\n" + body + b"\r\n0\r\n\r\n"
    else:
        request = head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    before = count_events(engine)
    status = _raw(served, request)
    assert 400 <= status < 500, f"{attack}: {status}"
    assert count_events(engine) == before


def test_bad_chunked_encoding_on_the_orders_api_is_4xx(served, engine) -> None:
    request = (b"POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer " + API_TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n"
               b"zz\r\n{}\r\n0\r\n\r\n")
    assert 400 <= _raw(served, request) < 500
