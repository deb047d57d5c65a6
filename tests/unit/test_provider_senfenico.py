"""Senfenico's own rules: plain SHA-256 over the raw or the canonical bytes, keys without a reference.
What every adapter shares (known answer, malformed headers, parse) is in test_provider_common."""
from __future__ import annotations

import hashlib
import json

import pytest

from providers.base import VerificationError, Verified
from tests.unit.provider_cases import SECRETS, SENFENICO_OBJECT_BODY, make

KEY = SECRETS["senfenico"]


def hashed(payload: bytes) -> dict[str, str]:
    return {"x-webhook-hash": hashlib.sha256(payload + KEY.encode()).hexdigest()}


def canonical(body: bytes) -> bytes:
    """What Senfenico's Python SDK hashes: json.dumps(json.loads(raw)), default separators, ASCII."""
    return json.dumps(json.loads(body)).encode()


def test_canonical_candidate_is_accepted_and_recorded() -> None:
    assert canonical(SENFENICO_OBJECT_BODY) != SENFENICO_OBJECT_BODY
    assert b"caf\\u00e9" in canonical(SENFENICO_OBJECT_BODY)
    result = make("senfenico").verify(body=SENFENICO_OBJECT_BODY, headers=hashed(canonical(SENFENICO_OBJECT_BODY)))
    assert result == Verified(secret_index=0, method="canonical")


def test_raw_candidate_of_object_body() -> None:
    assert make("senfenico").verify(body=SENFENICO_OBJECT_BODY, headers=hashed(SENFENICO_OBJECT_BODY)).method == "raw"


def test_non_json_body_has_only_the_raw_candidate() -> None:
    body = b"\xff not json"
    assert make("senfenico").verify(body=body, headers=hashed(body)).method == "raw"
    with pytest.raises(VerificationError):
        make("senfenico").verify(body=body, headers=hashed(b"not json"))


@pytest.mark.parametrize(
    ("body", "canonical_form"),  # the canonical form is what the Python SDK hashes
    [(b'{"event":"settlement.paid","data":{"amount":10}}', b'{"event": "settlement.paid", "data": {"amount": 10}}'),
     (b'{"event":"charge.pending"}', b'{"event": "charge.pending"}')],
)
def test_parse_without_reference_or_data_keys_by_the_hash_of_the_canonical_form(
    body: bytes, canonical_form: bytes
) -> None:
    envelope = make("senfenico").parse(body=body, headers={})
    assert envelope.event_key == hashlib.sha256(canonical_form).hexdigest()
    assert envelope.livemode is None


def test_a_canonically_signed_body_re_spaced_keeps_its_key() -> None:
    # Under the canonical method the hash covers json.dumps(json.loads(raw)), so whitespace and
    # an overridden duplicate key can change without breaking it: the key must not change either.
    original = b'{"event":"charge.pending","data":{"amount":10}}'
    reshaped = b'{ "event" : "x", "event":"charge.pending",\n "data":{"amount":10} }'
    for body in (original, reshaped):
        assert make("senfenico").verify(body=body, headers=hashed(canonical(original))).method == "canonical"
    keys = {make("senfenico").parse(body=body, headers={}).event_key for body in (original, reshaped)}
    assert len(keys) == 1


def test_the_canonical_candidate_is_built_only_for_bodies_up_to_64_kib() -> None:
    pad = {"event": "charge.pending", "data": {"note": "x" * (64 * 1024)}}
    raw = json.dumps(pad, separators=(",", ":")).encode()
    with pytest.raises(VerificationError, match="does not match"):
        make("senfenico").verify(body=raw, headers=hashed(json.dumps(pad).encode()))
    small = {"event": "charge.pending", "data": {"note": "x" * 100}}
    raw_small = json.dumps(small, separators=(",", ":")).encode()
    assert make("senfenico").verify(body=raw_small, headers=hashed(json.dumps(small).encode())).method == "canonical"


def test_the_canonical_candidate_is_not_built_when_the_raw_one_matches(monkeypatch) -> None:
    from providers import senfenico

    body = b'{"event":"charge.pending"}'
    built = []
    monkeypatch.setattr(senfenico, "canonical_form", lambda raw: built.append(raw))
    assert make("senfenico").verify(body=body, headers=hashed(body)).method == "raw"
    assert built == []
