"""ProcessOut adapter: optional HTTP Basic check, thin JSON or form-encoded event."""
from __future__ import annotations

import base64

import pytest

from providers.base import EnvelopeError, VerificationError, Verified
from providers.processout import KINDS, PENDING_FETCH, ProcessOutAdapter

BODY = b'{"event_id":"ev_2Xk9","event_type":"transaction.failed"}'
GOOD = "Basic " + base64.b64encode(b"hook:s3cr3t").decode()


def test_without_configured_credentials_nothing_passes() -> None:
    adapter = ProcessOutAdapter(basic_auth=None)
    assert not adapter.configured
    for headers in ({}, {"authorization": GOOD}, {"authorization": "garbage"}):
        with pytest.raises(VerificationError, match="no credentials configured"):
            adapter.verify(body=BODY, headers=headers)


def test_empty_configured_credentials_count_as_absent() -> None:
    adapter = ProcessOutAdapter(basic_auth="")
    assert not adapter.configured
    with pytest.raises(VerificationError):
        adapter.verify(body=BODY, headers={})


def test_unauthenticated_only_when_explicitly_allowed_and_then_capped() -> None:
    adapter = ProcessOutAdapter(basic_auth=None, allow_unauthenticated=True)
    assert adapter.configured and adapter.max_body_bytes == 8 * 1024
    assert adapter.verify(body=BODY, headers={}) == Verified(secret_index=None, method="unauthenticated")
    # Configured credentials always win over the switch: no cap, and they are required
    with_auth = ProcessOutAdapter(basic_auth="hook:s3cr3t", allow_unauthenticated=True)
    assert with_auth.max_body_bytes is None
    with pytest.raises(VerificationError, match="missing authorization"):
        with_auth.verify(body=BODY, headers={})


def test_form_bodies_with_more_fields_than_a_thin_event_are_refused() -> None:
    adapter = ProcessOutAdapter(basic_auth="hook:s3cr3t")
    assert adapter.parse(body=b"event_id=ev_1&event_type=transaction.captured", headers={}).event_key == "ev_1"
    many = "&".join(f"f{i}=x" for i in range(17)).encode()
    with pytest.raises(EnvelopeError, match="a few fields"):
        adapter.parse(body=b"event_id=ev_1&" + many, headers={})


def test_matching_basic_credentials_pass() -> None:
    adapter = ProcessOutAdapter(basic_auth="hook:s3cr3t")
    assert adapter.verify(body=BODY, headers={"authorization": GOOD}) == Verified(0, "basic")
    lower_scheme = GOOD.replace("Basic", "basic")
    assert adapter.verify(body=BODY, headers={"authorization": lower_scheme}).secret_index == 0


def test_missing_credentials_are_required_when_configured() -> None:
    with pytest.raises(VerificationError, match="missing authorization"):
        ProcessOutAdapter(basic_auth="hook:s3cr3t").verify(body=BODY, headers={})


def test_wrong_credentials_fail_without_leaking_them() -> None:
    wrong = "Basic " + base64.b64encode(b"hook:guess").decode()
    with pytest.raises(VerificationError) as caught:
        ProcessOutAdapter(basic_auth="hook:s3cr3t").verify(body=BODY, headers={"authorization": wrong})
    assert "s3cr3t" not in caught.value.reason
    assert "guess" not in caught.value.reason


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Basic",
        "Basic ",
        "Bearer " + GOOD.split()[1],
        "Basic !!!!",
        "Basic aG9vaz",  # bad padding
        GOOD + " extra",
        "Basic é",
        "Basic \udcff",
        GOOD.split()[1],  # no scheme
    ],
)
def test_malformed_authorization_raises_verification_error_only(value: str) -> None:
    with pytest.raises(VerificationError):
        ProcessOutAdapter(basic_auth="hook:s3cr3t").verify(body=BODY, headers={"authorization": value})


def test_non_ascii_credentials_round_trip() -> None:
    adapter = ProcessOutAdapter(basic_auth="hook:pässwörd")
    signed = adapter.sign(body=BODY, secret="hook:pässwörd")
    assert adapter.verify(body=BODY, headers=signed).secret_index == 0


def test_sign_builds_the_basic_header() -> None:
    adapter = ProcessOutAdapter(basic_auth=None)
    assert adapter.sign(body=BODY, secret="hook:s3cr3t") == {"authorization": GOOD}
    assert adapter.sign(body=BODY, secret="") == {}


def test_parse_json_thin_event() -> None:
    envelope = ProcessOutAdapter().parse(body=BODY, headers={})
    assert envelope.event_key == "ev_2Xk9"
    assert envelope.event_type == "transaction.failed"
    assert envelope.livemode is None
    assert envelope.payload == {"event_id": "ev_2Xk9", "event_type": "transaction.failed"}


def test_parse_form_encoded_event() -> None:
    body = b"event_id=ev_%2F42&event_type=transaction.captured"
    envelope = ProcessOutAdapter().parse(body=body, headers={})
    assert envelope.event_key == "ev_/42"
    assert envelope.event_type == "transaction.captured"
    assert envelope.payload == {"event_id": "ev_/42", "event_type": "transaction.captured"}


@pytest.mark.parametrize(
    "body", [b'{"event_id":"ev_1"}', b'{"event_id":"ev_1","event_type":""}', b"event_id=ev_1"]
)
def test_parse_without_event_type_waits_for_the_fetch(body: bytes) -> None:
    envelope = ProcessOutAdapter().parse(body=body, headers={})
    assert (envelope.event_key, envelope.event_type) == ("ev_1", PENDING_FETCH)
    assert PENDING_FETCH == "pending_fetch"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json and not a form",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b"42",
        b'"ev_1"',
        b'{"event_type":"transaction.failed"}',
        b'{"event_id":"","event_type":"transaction.failed"}',
        b'{"event_id":12,"event_type":"transaction.failed"}',
        b"event_type=transaction.failed",
        b"event_id=&event_type=transaction.failed",
    ],
)
def test_parse_rejects_unusable_bodies(body: bytes) -> None:
    with pytest.raises(EnvelopeError):
        ProcessOutAdapter().parse(body=body, headers={})


def test_kinds_table() -> None:
    assert KINDS == {
        "transaction.captured": "payment.succeeded",
        "transaction.failed": "payment.failed",
        "transaction.refunded": "payment.refunded",
        "transaction.chargeback.created": "payment.charged_back",
    }
    assert ProcessOutAdapter.name == "processout"
    assert ProcessOutAdapter.secret_headers == frozenset({"authorization"})
