"""ProcessOut's own rules: HTTP Basic that must be configured (or explicitly waived), thin JSON or
form-encoded events. What every adapter shares (malformed headers, parse, kinds) is in test_provider_common."""
from __future__ import annotations

import pytest

from providers.base import EnvelopeError, VerificationError, Verified
from providers.processout import PENDING_FETCH, ProcessOutAdapter
from tests.unit.provider_cases import BODY, PROCESSOUT_GOOD

BODY = BODY["processout"]


@pytest.mark.parametrize("basic_auth", [None, ""])  # empty configured credentials count as absent
def test_without_configured_credentials_nothing_passes(basic_auth: str | None) -> None:
    adapter = ProcessOutAdapter(basic_auth=basic_auth)
    assert not adapter.configured
    for headers in ({}, {"authorization": PROCESSOUT_GOOD}, {"authorization": "garbage"}):
        with pytest.raises(VerificationError, match="no credentials configured"):
            adapter.verify(body=BODY, headers=headers)


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


def test_non_ascii_credentials_round_trip() -> None:
    adapter = ProcessOutAdapter(basic_auth="hook:pässwörd")
    signed = adapter.sign(body=BODY, secret="hook:pässwörd")
    assert adapter.verify(body=BODY, headers=signed).secret_index == 0


def test_sign_without_credentials_sends_no_header() -> None:
    assert ProcessOutAdapter(basic_auth=None).sign(body=BODY, secret="") == {}


@pytest.mark.parametrize(
    "body", [b'{"event_id":"ev_1"}', b'{"event_id":"ev_1","event_type":""}', b"event_id=ev_1"]
)
def test_parse_without_event_type_waits_for_the_fetch(body: bytes) -> None:
    envelope = ProcessOutAdapter().parse(body=body, headers={})
    assert (envelope.event_key, envelope.event_type) == ("ev_1", PENDING_FETCH)
    assert PENDING_FETCH == "pending_fetch"
