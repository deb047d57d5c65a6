"""Senfenico adapter: plain SHA-256 over raw or canonical bytes, double-encoded data."""
from __future__ import annotations

import hashlib
import json

import pytest

from providers.base import EnvelopeError, VerificationError, Verified
from providers.senfenico import KINDS, SenfenicoAdapter

KEY = "whk_test_0123456789"
BODY = (
    rb'{"event": "checkout.success", "data": "{\"email\": \"a@b.c\", \"reference\": \"chk_1\", '
    rb'\"charge_reference\": \"ch_1\", \"amount\": 1000, \"success_url\": \"https://m.example/ok\", '
    rb'\"cancel_url\": \"https://m.example/ko\", \"phone\": \"70000000\", \"provider\": \"orange_bf\", '
    rb'\"live_mode\": false, \"created_at\": \"2024-05-01T10:00:00Z\", '
    rb'\"updated_at\": \"2024-05-01T10:01:00Z\", \"status\": \"success\"}"}'
)
HASH = "aceab7ed5f049ddeac364f4209483e61524dbf18700ef094460e9f5403c43abd"
# The docs' form: data as an object, sent compact (not Python's default separators).
OBJECT_BODY = (
    b'{"event":"checkout.failed","data":{"reference":"chk_2","amount":500,"live_mode":true,'
    b'"status":"failed","note":"caf\xc3\xa9"}}'
)


def adapter(secrets: list[str] | None = None) -> SenfenicoAdapter:
    return SenfenicoAdapter(secrets=[KEY] if secrets is None else secrets)


def digest(payload: bytes, key: str = KEY) -> str:
    return hashlib.sha256(payload + key.encode()).hexdigest()


def test_known_answer_verifies_as_raw() -> None:
    assert adapter().verify(body=BODY, headers={"x-webhook-hash": HASH}) == Verified(0, "raw")


def test_sign_reproduces_known_answer() -> None:
    assert adapter().sign(body=BODY, secret=KEY) == {"x-webhook-hash": HASH}


def test_canonical_candidate_is_accepted_and_recorded() -> None:
    # Given the Python SDK's hash: over json.dumps(json.loads(raw)), default separators, ASCII
    canonical = json.dumps(json.loads(OBJECT_BODY)).encode()
    assert canonical != OBJECT_BODY
    assert b"caf\\u00e9" in canonical
    result = adapter().verify(body=OBJECT_BODY, headers={"x-webhook-hash": digest(canonical)})
    assert result == Verified(secret_index=0, method="canonical")


def test_raw_candidate_of_object_body() -> None:
    result = adapter().verify(body=OBJECT_BODY, headers={"x-webhook-hash": digest(OBJECT_BODY)})
    assert result.method == "raw"


def test_non_json_body_has_only_the_raw_candidate() -> None:
    body = b"\xff not json"
    assert adapter().verify(body=body, headers={"x-webhook-hash": digest(body)}).method == "raw"
    with pytest.raises(VerificationError):
        adapter().verify(body=body, headers={"x-webhook-hash": digest(b"not json")})


def test_tampered_body_fails() -> None:
    with pytest.raises(VerificationError, match="does not match"):
        adapter().verify(body=BODY.replace(b"1000", b"9000"), headers={"x-webhook-hash": HASH})


def test_wrong_key_fails_without_leaking() -> None:
    with pytest.raises(VerificationError) as caught:
        adapter(["whk_test_other"]).verify(body=BODY, headers={"x-webhook-hash": HASH})
    assert HASH not in caught.value.reason
    assert "whk_test" not in caught.value.reason


def test_second_key_of_rotation_matches() -> None:
    assert adapter(["whk_new", KEY]).verify(body=BODY, headers={"x-webhook-hash": HASH}).secret_index == 1


def test_no_secret_configured_fails() -> None:
    with pytest.raises(VerificationError, match="no secret configured"):
        adapter([]).verify(body=BODY, headers={"x-webhook-hash": HASH})


def test_uppercase_hash_is_accepted() -> None:
    assert adapter().verify(body=BODY, headers={"x-webhook-hash": HASH.upper()}).method == "raw"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-webhook-hash": ""},
        {"x-webhook-hash": HASH[:-1]},
        {"x-webhook-hash": HASH + "a"},
        {"x-webhook-hash": "z" * 64},
        {"x-webhook-hash": "sha256=" + HASH},
        {"x-webhook-hash": "é" * 64},
        {"x-webhook-hash": "\udcff" * 64},
        {"x-senfenico-hash": HASH},
    ],
)
def test_malformed_headers_raise_verification_error_only(headers: dict[str, str]) -> None:
    with pytest.raises(VerificationError):
        adapter().verify(body=BODY, headers=headers)


# -- parse --------------------------------------------------------------------


def test_parse_double_encoded_data() -> None:
    envelope = adapter().parse(body=BODY, headers={})
    assert envelope.event_key == "checkout.success:chk_1"
    assert envelope.event_type == "checkout.success"
    assert envelope.livemode is False
    assert isinstance(envelope.payload["data"], dict)
    assert envelope.payload["data"]["amount"] == 1000


def test_parse_data_as_object() -> None:
    envelope = adapter().parse(body=OBJECT_BODY, headers={})
    assert envelope.event_key == "checkout.failed:chk_2"
    assert envelope.livemode is True
    assert envelope.payload["data"]["note"] == "café"


def test_parse_without_reference_keys_by_the_hash_of_the_canonical_form() -> None:
    body = b'{"event":"settlement.paid","data":{"amount":10}}'
    envelope = adapter().parse(body=body, headers={})
    canonical = b'{"event": "settlement.paid", "data": {"amount": 10}}'  # what the Python SDK hashes
    assert envelope.event_key == hashlib.sha256(canonical).hexdigest()
    assert envelope.livemode is None


def test_parse_without_data_keys_by_the_hash_of_the_canonical_form() -> None:
    body = b'{"event":"charge.pending"}'
    assert adapter().parse(body=body, headers={}).event_key == hashlib.sha256(b'{"event": "charge.pending"}').hexdigest()


def test_a_canonically_signed_body_re_spaced_keeps_its_key() -> None:
    # Under the canonical method the hash covers json.dumps(json.loads(raw)), so whitespace and
    # an overridden duplicate key can change without breaking it: the key must not change either.
    original = b'{"event":"charge.pending","data":{"amount":10}}'
    digest = hashlib.sha256(json.dumps(json.loads(original)).encode() + KEY.encode()).hexdigest()
    reshaped = b'{ "event" : "x", "event":"charge.pending",\n "data":{"amount":10} }'
    for body in (original, reshaped):
        assert adapter().verify(body=body, headers={"x-webhook-hash": digest}).method == "canonical"
    assert adapter().parse(body=reshaped, headers={}).event_key == adapter().parse(body=original, headers={}).event_key


def test_the_canonical_candidate_is_built_only_for_bodies_up_to_64_kib() -> None:
    pad = {"event": "charge.pending", "data": {"note": "x" * (64 * 1024)}}
    raw = json.dumps(pad, separators=(",", ":")).encode()
    digest = hashlib.sha256(json.dumps(pad).encode() + KEY.encode()).hexdigest()
    with pytest.raises(VerificationError, match="does not match"):
        adapter().verify(body=raw, headers={"x-webhook-hash": digest})
    small = {"event": "charge.pending", "data": {"note": "x" * 100}}
    raw_small = json.dumps(small, separators=(",", ":")).encode()
    digest_small = hashlib.sha256(json.dumps(small).encode() + KEY.encode()).hexdigest()
    assert adapter().verify(body=raw_small, headers={"x-webhook-hash": digest_small}).method == "canonical"


def test_the_canonical_candidate_is_not_built_when_the_raw_one_matches(monkeypatch) -> None:
    from providers import senfenico

    body = b'{"event":"charge.pending"}'
    built = []
    monkeypatch.setattr(senfenico, "canonical_form", lambda raw: built.append(raw))
    digest = hashlib.sha256(body + KEY.encode()).hexdigest()
    assert adapter().verify(body=body, headers={"x-webhook-hash": digest}).method == "raw"
    assert built == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff",
        b"[]",
        b"3.5",
        b'{"data":{"reference":"chk_1"}}',
        b'{"event":"","data":{"reference":"chk_1"}}',
        b'{"event":"checkout.success","data":"not json"}',
        b'{"event":"checkout.success","data":"[1]"}',
        b'{"event":"checkout.success","data":[1]}',
    ],
)
def test_parse_rejects_unusable_bodies(body: bytes) -> None:
    with pytest.raises(EnvelopeError):
        adapter().parse(body=body, headers={})


def test_kinds_table() -> None:
    assert KINDS == {
        "checkout.success": "payment.succeeded",
        "charge.success": "payment.succeeded",
        "checkout.failed": "payment.failed",
        "charge.failed": "payment.failed",
    }
    assert SenfenicoAdapter.name == "senfenico"
    assert "x-webhook-hash" in SenfenicoAdapter.secret_headers
