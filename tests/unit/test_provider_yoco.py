"""Yoco's own rules: sign() ids, live mode, the id header fallback.
What every adapter shares (known answer, tolerance, malformed headers, parse) is in test_provider_common."""
from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from tests.unit.provider_cases import BODY, NOW, SECRETS, YOCO_TIMESTAMP, make

SECRET = SECRETS["yoco"]


def test_sign_uses_the_body_id_and_verifies() -> None:
    body = b'{"id":"evt_9","type":"payment.succeeded","payload":{"mode":"live"}}'
    signed = make("yoco").sign(body=body, secret=SECRET, now=NOW["yoco"] + 5)
    assert signed["webhook-id"] == "evt_9"
    assert signed["webhook-timestamp"] == "1614265335"
    # Independently: HMAC-SHA256 keyed by the base64 part over "id.timestamp.body"
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, b"evt_9.1614265335." + body, hashlib.sha256).digest()
    assert signed["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert make("yoco", now=NOW["yoco"] + 5).verify(body=body, headers=signed).secret_index == 0


def test_sign_without_body_id_uses_a_random_msg_id() -> None:
    first = make("yoco").sign(body=BODY["yoco"], secret=SECRET)
    second = make("yoco").sign(body=BODY["yoco"], secret=SECRET)
    assert first["webhook-id"].startswith("msg_")
    assert first["webhook-id"] != second["webhook-id"]
    assert first["webhook-timestamp"] == YOCO_TIMESTAMP  # the injected clock, not the wall clock
    assert make("yoco").verify(body=BODY["yoco"], headers=first).secret_index == 0


@pytest.mark.parametrize(
    ("payload", "livemode"),
    [(b'{"mode":"live"}', True), (b'{"mode":"test"}', False), (b"{}", None), (b'"x"', None)],
)
def test_parse_livemode(payload: bytes, livemode: bool | None) -> None:
    body = b'{"id":"evt_1","type":"refund.succeeded","payload":%s}' % payload
    assert make("yoco").parse(body=body, headers={}).livemode is livemode


@pytest.mark.parametrize(("body", "header", "key"), [
    (b'{"type":"refund.failed","payload":{}}', "webhook-id", "msg_42"),  # no body id: the header's
    (b'{"type":"refund.failed","payload":{}}', "svix-id", "msg_42"),
    (b'{"id":"evt_2E9vL4","type":"payment.succeeded","payload":{}}', "webhook-id", "evt_2E9vL4"),  # the body's first
])
def test_parse_keys_by_the_body_id_else_the_id_header(body: bytes, header: str, key: str) -> None:
    assert make("yoco").parse(body=body, headers={header: "msg_42"}).event_key == key
