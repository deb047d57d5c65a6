"""Yoco adapter: Standard Webhooks via the package, with our clock and tolerance."""
from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from providers.base import EnvelopeError, VerificationError, Verified
from providers.yoco import KINDS, YocoAdapter

# Public known answer from the Standard Webhooks spec.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = "1614265330"
NOW = 1614265330.0
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()


def adapter(secrets: list[str] | None = None, *, now: float = NOW, tolerance: int = 180) -> YocoAdapter:
    return YocoAdapter(
        secrets=[SECRET] if secrets is None else secrets, tolerance_seconds=tolerance, clock=lambda: now
    )


def headers(
    signature: str = SIGNATURE, *, msg_id: str = MSG_ID, timestamp: str = TIMESTAMP, prefix: str = "webhook"
) -> dict[str, str]:
    return {f"{prefix}-id": msg_id, f"{prefix}-timestamp": timestamp, f"{prefix}-signature": signature}


def test_known_answer_verifies_with_a_frozen_clock_years_ago() -> None:
    # The package alone would compare with the wall clock and reject this 2021 timestamp.
    assert adapter().verify(body=BODY, headers=headers()) == Verified(secret_index=0, method=None)


def test_svix_header_names_are_accepted() -> None:
    assert adapter().verify(body=BODY, headers=headers(prefix="svix")).secret_index == 0


def test_any_matching_entry_passes_and_other_versions_are_ignored() -> None:
    wrong = "v1," + base64.b64encode(b"x" * 32).decode()
    value = f"v2,c29tZXRoaW5n {wrong} {SIGNATURE}"
    assert adapter().verify(body=BODY, headers=headers(value)).secret_index == 0


def test_only_other_versions_do_not_match() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        adapter().verify(body=BODY, headers=headers("v1a," + SIGNATURE[3:]))


def test_tampered_body_fails() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        adapter().verify(body=b'{"test": 2432232315}', headers=headers())


def test_tampered_id_fails() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        adapter().verify(body=BODY, headers=headers(msg_id="msg_other"))


def test_wrong_secret_fails_without_leaking() -> None:
    with pytest.raises(VerificationError) as caught:
        adapter([OTHER_SECRET]).verify(body=BODY, headers=headers())
    assert SIGNATURE[3:] not in caught.value.reason
    assert "MfKQ9r8" not in caught.value.reason


def test_second_secret_of_rotation_matches() -> None:
    assert adapter([OTHER_SECRET, SECRET]).verify(body=BODY, headers=headers()).secret_index == 1


def test_unusable_secret_is_skipped_not_a_crash() -> None:
    # "whsec_!!!" decodes to no bytes: the package raises EmptyWebhookSecretError for it.
    assert adapter(["whsec_!!!", "", SECRET]).verify(body=BODY, headers=headers()).secret_index == 2


def test_no_secret_configured_fails() -> None:
    with pytest.raises(VerificationError, match="no secret configured"):
        adapter([]).verify(body=BODY, headers=headers())


@pytest.mark.parametrize("offset_seconds", [-180, 0, 180])
def test_timestamp_within_tolerance_on_both_sides(offset_seconds: int) -> None:
    assert adapter(now=NOW + offset_seconds).verify(body=BODY, headers=headers()).secret_index == 0


def test_stale_timestamp_fails() -> None:
    with pytest.raises(VerificationError, match="too old"):
        adapter(now=NOW + 181).verify(body=BODY, headers=headers())


def test_future_timestamp_fails() -> None:
    with pytest.raises(VerificationError, match="too new"):
        adapter(now=NOW - 181).verify(body=BODY, headers=headers())


def test_tolerance_wider_than_the_package_default_is_honoured() -> None:
    # The package hard-codes 5 minutes; a 10-minute setting must still accept 9 minutes.
    assert adapter(now=NOW + 540, tolerance=600).verify(body=BODY, headers=headers()).secret_index == 0


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {k: v for k, v in headers().items() if k != "webhook-id"},
        {k: v for k, v in headers().items() if k != "webhook-timestamp"},
        {k: v for k, v in headers().items() if k != "webhook-signature"},
        headers(""),
        headers(msg_id=""),
        headers(timestamp=""),
        headers(timestamp="abc"),
        headers(timestamp="1614265330.0"),
        headers(timestamp="1e9"),
        headers(timestamp="nan"),
        headers(timestamp="-1614265330"),
        headers(timestamp="9" * 5000),
        headers("v1"),  # no comma
        headers("v1,"),  # empty signature
        headers("v1,abc"),  # bad base64 padding
        headers("v1,a,b"),  # two commas
        headers("v1,é"),  # non-ASCII
        headers("v1,\udcff"),
        headers(SIGNATURE + " v1"),  # a malformed entry after a good one
        headers(SIGNATURE + "  " + SIGNATURE),  # empty entry
        headers(",abc="),  # empty version
        headers(msg_id="\udcff"),
    ],
)
def test_malformed_headers_raise_verification_error_only(bad: dict[str, str]) -> None:
    with pytest.raises(VerificationError):
        adapter().verify(body=BODY, headers=bad)


def test_non_utf8_body_fails_verification() -> None:
    with pytest.raises(VerificationError, match="UTF-8"):
        adapter().verify(body=b"\xff\xfe", headers=headers())


def test_sign_uses_the_body_id_and_verifies() -> None:
    body = b'{"id":"evt_9","type":"payment.succeeded","payload":{"mode":"live"}}'
    signed = adapter().sign(body=body, secret=SECRET, now=NOW + 5)
    assert signed["webhook-id"] == "evt_9"
    assert signed["webhook-timestamp"] == "1614265335"
    # Independently: HMAC-SHA256 keyed by the base64 part over "id.timestamp.body"
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, b"evt_9.1614265335." + body, hashlib.sha256).digest()
    assert signed["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert adapter(now=NOW + 5).verify(body=body, headers=signed).secret_index == 0


def test_sign_without_body_id_uses_a_random_msg_id() -> None:
    first = adapter().sign(body=BODY, secret=SECRET)
    second = adapter().sign(body=BODY, secret=SECRET)
    assert first["webhook-id"].startswith("msg_")
    assert first["webhook-id"] != second["webhook-id"]
    assert first["webhook-timestamp"] == TIMESTAMP  # the injected clock, not the wall clock
    assert adapter().verify(body=BODY, headers=first).secret_index == 0


# -- parse --------------------------------------------------------------------

EVENT = (
    b'{"id":"evt_2E9vL4","type":"payment.succeeded","createdDate":"2024-05-01T10:00:00Z",'
    b'"payload":{"id":"p_1","type":"payment","amount":900,"currency":"ZAR","status":"succeeded",'
    b'"mode":"test","metadata":{"checkoutId":"ch_1"}}}'
)


def test_parse_event() -> None:
    envelope = adapter().parse(body=EVENT, headers=headers())
    assert envelope.event_key == "evt_2E9vL4"
    assert envelope.event_type == "payment.succeeded"
    assert envelope.livemode is False
    assert envelope.payload["payload"]["metadata"]["checkoutId"] == "ch_1"


@pytest.mark.parametrize(
    ("payload", "livemode"),
    [(b'{"mode":"live"}', True), (b'{"mode":"test"}', False), (b"{}", None), (b'"x"', None)],
)
def test_parse_livemode(payload: bytes, livemode: bool | None) -> None:
    body = b'{"id":"evt_1","type":"refund.succeeded","payload":%s}' % payload
    assert adapter().parse(body=body, headers={}).livemode is livemode


@pytest.mark.parametrize("prefix", ["webhook", "svix"])
def test_parse_falls_back_to_the_id_header(prefix: str) -> None:
    body = b'{"type":"refund.failed","payload":{}}'
    assert adapter().parse(body=body, headers={f"{prefix}-id": "msg_42"}).event_key == "msg_42"


def test_parse_prefers_the_body_id_over_the_header() -> None:
    assert adapter().parse(body=EVENT, headers={"webhook-id": "msg_42"}).event_key == "evt_2E9vL4"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff",
        b"[]",
        b"true",
        b'{"type":"payment.succeeded"}',  # no id and no header
        b'{"id":"evt_1"}',
        b'{"id":"evt_1","type":""}',
        b'{"id":"evt_1","type":5}',
    ],
)
def test_parse_rejects_unusable_bodies(body: bytes) -> None:
    with pytest.raises(EnvelopeError):
        adapter().parse(body=body, headers={})


def test_kinds_table() -> None:
    assert KINDS == {"payment.succeeded": "payment.succeeded", "refund.succeeded": "payment.refunded"}
    assert YocoAdapter.name == "yoco"
    assert {"webhook-signature", "svix-signature"} <= YocoAdapter.secret_headers
