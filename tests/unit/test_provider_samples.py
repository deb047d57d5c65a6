"""Sample bodies round-trip through every adapter; the registry; fuzzing every adapter."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.settings import Settings
from providers.base import CANONICAL_KINDS, Adapter, EnvelopeError, VerificationError, Verified
from providers.money import currency_exponent, minor_to_major
from providers.processout import ProcessOutAdapter
from providers.registry import PROVIDERS, build_adapters
from sandbox.samples import DEFAULT_CURRENCY, sample_body, sample_processout_event
from tests.unit.provider_cases import SECRETS, make as make_with

NOW = 1_700_000_000.0


def make(provider: str) -> Adapter:
    return make_with(provider, now=NOW)


CASES = [(provider, event_type) for provider in PROVIDERS for event_type in make(provider).kinds]


def test_every_kinds_table_maps_to_canonical_kinds() -> None:
    assert len(CASES) == 3 + 4 + 4 + 2 + 3
    for provider in PROVIDERS:
        assert set(make(provider).kinds.values()) <= CANONICAL_KINDS
        assert make(provider).name == provider


@pytest.mark.parametrize(("provider", "event_type"), CASES)
def test_sample_signs_verifies_and_parses(provider: str, event_type: str) -> None:
    adapter = make(provider)
    body = sample_body(provider, event_type, order_ref="ord_ref_1", amount_minor=12345)
    headers = adapter.sign(body=body, secret=SECRETS[provider], now=NOW)
    assert adapter.verify(body=body, headers=headers).secret_index == 0
    envelope = adapter.parse(body=body, headers=headers)
    assert envelope.event_type == event_type
    assert envelope.event_key


def order_ref_and_amount(provider: str, payload: dict[str, Any], event_type: str) -> tuple[Any, Any]:
    """Where PROVIDERS.md's order table says the order reference and amount are."""
    if provider == "smartpay":
        data = payload["eventData"]["data"]
        ref = data["order"] if event_type == "refund.created" else data["id"]
        return ref, data["amount"]
    if provider == "senfenico":
        return payload["data"]["reference"], payload["data"]["amount"]
    if provider == "yoco":
        return payload["payload"]["metadata"]["checkoutId"], payload["payload"]["amount"]
    return payload["data"]["payment_id"], payload["data"]["amount"]


@pytest.mark.parametrize(
    ("provider", "event_type", "expected_amount"),
    [
        ("smartpay", "order.authorized", 12345),
        ("smartpay", "refund.created", 12345),
        ("senfenico", "checkout.success", 12345),
        ("yoco", "refund.succeeded", 12345),
        ("shadhinpay", "payment.completed", "123.45"),
    ],
)
def test_sample_puts_order_ref_and_amount_where_the_provider_does(
    provider: str, event_type: str, expected_amount: Any
) -> None:
    body = sample_body(provider, event_type, order_ref="ord_ref_1", amount_minor=12345)
    payload = make(provider).parse(body=body, headers={}).payload
    assert order_ref_and_amount(provider, payload, event_type) == ("ord_ref_1", expected_amount)


def test_senfenico_sample_double_encodes_data_like_the_sdks() -> None:
    body = sample_body("senfenico", "checkout.failed", order_ref="chk_9", amount_minor=700)
    raw = json.loads(body)
    assert isinstance(raw["data"], str)
    assert json.loads(raw["data"])["status"] == "failed"
    assert make("senfenico").parse(body=body, headers={}).event_key == "checkout.failed:chk_9"


def test_processout_sample_is_the_thin_event() -> None:
    body = sample_body("processout", "transaction.captured", order_ref="tr_1", amount_minor=1000)
    assert set(json.loads(body)) == {"event_id", "event_type"}
    assert json.loads(body)["event_id"].startswith("ev_")


def test_processout_fetched_event_carries_order_and_major_amount() -> None:
    fetched = sample_processout_event(
        event_id="ev_1", event_type="transaction.refunded", order_ref="tr_1", amount_minor=1050
    )
    event = fetched["event"]
    assert (event["id"], event["name"]) == ("ev_1", "transaction.refunded")
    assert event["data"]["transaction"]["id"] == "tr_1"
    assert event["data"]["transaction"]["amount"] == "10.50"
    assert event["data"]["transaction"]["currency"] == "USD"


@pytest.mark.parametrize(
    ("provider", "event_type"),
    [("smartpay", "order.authorized"), ("processout", "transaction.failed"),
     ("yoco", "payment.succeeded"), ("shadhinpay", "payment.refunded")],
)
def test_event_ids_are_fresh_unless_given(provider: str, event_type: str) -> None:
    adapter = make(provider)

    def key(**extra: Any) -> str:
        body = sample_body(provider, event_type, order_ref="ord_1", amount_minor=100, **extra)
        return adapter.parse(body=body, headers={}).event_key

    assert key() != key()
    assert key(event_id="evt_fixed") == "evt_fixed"


def test_default_currencies_and_explicit_currency() -> None:
    assert DEFAULT_CURRENCY == {
        "smartpay": "JPY", "processout": "USD", "senfenico": "XOF", "yoco": "ZAR", "shadhinpay": "BDT",
    }
    body = sample_body("shadhinpay", "payment.completed", order_ref="SP_1", amount_minor=1500)
    assert json.loads(body)["data"]["currency"] == "BDT"
    body = sample_body("yoco", "payment.succeeded", order_ref="ch_1", amount_minor=900, currency="USD")
    assert json.loads(body)["payload"]["currency"] == "USD"


@pytest.mark.parametrize(
    ("amount_minor", "currency", "expected"),
    [
        (1050, "USD", "10.50"),
        (1000, "ZAR", "10.00"),
        (5, "BDT", "0.05"),
        (0, "USD", "0.00"),
        (-250, "USD", "-2.50"),
        (1000, "JPY", "1000"),
        (1000, "XOF", "1000"),
        (1000, "jpy", "1000"),
        (10**30 + 7, "USD", "10000000000000000000000000000.07"),
    ],
)
def test_minor_to_major(amount_minor: int, currency: str, expected: str) -> None:
    assert minor_to_major(amount_minor, currency) == expected


def test_currency_exponent() -> None:
    assert [currency_exponent(c) for c in ("JPY", "XOF", "USD", "ZAR", "BDT")] == [0, 0, 2, 2, 2]


def test_unknown_provider_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        sample_body("paypal", "x", order_ref="o", amount_minor=1)


# -- registry -----------------------------------------------------------------


def test_build_adapters_from_settings() -> None:
    settings = Settings(
        _env_file=None,
        smartpay_secrets="BBBBBBBB," + SECRETS["smartpay"],
        senfenico_secrets=[SECRETS["senfenico"]],
        yoco_secrets=[SECRETS["yoco"]],
        shadhinpay_secrets=[SECRETS["shadhinpay"]],
        processout_basic_auth=SECRETS["processout"],
        yoco_tolerance_seconds=60,
    )
    adapters = build_adapters(settings, clock=lambda: NOW)
    assert tuple(adapters) == PROVIDERS == ("smartpay", "processout", "senfenico", "yoco", "shadhinpay")
    assert all(adapters[name].name == name for name in PROVIDERS)
    for provider in PROVIDERS:
        body = sample_body(provider, next(iter(adapters[provider].kinds)), order_ref="o", amount_minor=1)
        headers = make(provider).sign(body=body, secret=SECRETS[provider], now=NOW)
        expected_index = 1 if provider == "smartpay" else 0
        assert adapters[provider].verify(body=body, headers=headers).secret_index == expected_index
    # The tolerance setting reaches the adapter: 61 s old is too old at 60 s.
    body = sample_body("yoco", "payment.succeeded", order_ref="o", amount_minor=1)
    with pytest.raises(VerificationError, match="too old"):
        adapters["yoco"].verify(body=body, headers=make("yoco").sign(body=body, secret=SECRETS["yoco"],
                                                                     now=NOW - 61))


def test_build_adapters_without_secrets_fails_closed_for_every_provider() -> None:
    adapters = build_adapters(Settings(_env_file=None, smartpay_secrets=[], senfenico_secrets=[],
                                       yoco_secrets=[], shadhinpay_secrets=[], processout_basic_auth=None))
    for provider in PROVIDERS:
        assert not adapters[provider].configured
        with pytest.raises(VerificationError, match="no (secret|credentials) configured"):
            adapters[provider].verify(body=b"{}", headers={})
    allowed = build_adapters(Settings(_env_file=None, processout_basic_auth=None,
                                      processout_allow_unauthenticated=True))
    assert allowed["processout"].configured and allowed["processout"].max_body_bytes == 8192


# -- fuzzing: nothing but VerificationError / EnvelopeError escapes --------------

HEADER_NAMES = [
    "smartpay-signature", "smartpay-signature-timestamp", "authorization", "x-webhook-hash",
    "webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp",
    "svix-signature", "x-shadhinpay-signature", "x-shadhinpay-event-id",
]
BODY_KEYS = [
    "id", "test", "eventData", "type", "data", "event", "event_id", "event_type", "reference",
    "live_mode", "payload", "mode", "eventId", "eventType", "payment_id", "paymentId",
]
HEX64 = st.from_regex(r"[0-9a-fA-F]{64}", fullmatch=True)
B64 = st.binary(min_size=0, max_size=40).map(lambda raw: base64.b64encode(raw).decode())
header_values = st.one_of(
    st.text(max_size=80),
    st.characters(min_codepoint=0, max_codepoint=0xFFFF).map(lambda c: c * 3),  # incl. surrogates
    HEX64,
    HEX64.map(lambda h: "sha256=" + h),
    st.tuples(st.sampled_from(["1700000000", "1700000000000", "abc", ""]), HEX64).map(
        lambda tv: f"t={tv[0]},v1={tv[1]}"
    ),
    st.lists(st.tuples(st.sampled_from(["v1", "v2", "", "v1,x"]), B64), max_size=3).map(
        lambda entries: " ".join(f"{v},{s}" for v, s in entries)
    ),
    B64.map(lambda b: "Basic " + b),
    st.sampled_from(["1700000000", "1700000000000", "-1", "1e9", "nan"]),
)
headers_strategy = st.dictionaries(
    st.sampled_from(HEADER_NAMES) | st.text(max_size=10), header_values, max_size=6
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(BODY_KEYS) | st.text(max_size=8), children, max_size=5),
    max_leaves=15,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    json_values.map(lambda value: json.dumps({"data": json.dumps(value)}).encode()),
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fuzz_adapters(provider: str) -> list[Adapter]:
    """The configured adapter, plus one without secrets (and ProcessOut without auth)."""
    unauthenticated = [ProcessOutAdapter(basic_auth=None, allow_unauthenticated=True, clock=lambda: NOW)]
    return [make(provider), make_with(provider, [], now=NOW)] + (unauthenticated if provider == "processout" else [])


@pytest.mark.parametrize("provider", PROVIDERS)
@FUZZ
@given(body=bodies, headers=headers_strategy)
def test_verify_raises_only_verification_error(provider: str, body: bytes, headers: dict[str, str]) -> None:
    for adapter in fuzz_adapters(provider):
        try:
            adapter.verify(body=body, headers=headers)
        except VerificationError as exc:
            assert exc.reason and isinstance(exc.reason, str)


@pytest.mark.parametrize("provider", PROVIDERS)
@FUZZ
@given(body=bodies, headers=headers_strategy)
def test_parse_raises_only_envelope_error(provider: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        envelope = make(provider).parse(body=body, headers=headers)
    except EnvelopeError as exc:
        assert exc.reason and isinstance(exc.reason, str)
    else:
        for text in (envelope.event_key, envelope.event_type):
            assert isinstance(text, str) and text and "\x00" not in text
            text.encode("utf-8")  # storable: no lone surrogates
        assert envelope.livemode in (True, False, None)


@pytest.mark.parametrize("provider", PROVIDERS)
@FUZZ
@given(data=st.data(), value=header_values, flip=st.integers(min_value=-1, max_value=400))
def test_mutated_signed_request_raises_only_verification_error(
    provider: str, data: st.DataObject, value: str, flip: int
) -> None:
    # Given a correctly signed sample (so the timestamp checks pass and the deeper paths run)
    adapter = make(provider)
    body = sample_body(provider, next(iter(adapter.kinds)), order_ref="ord_1", amount_minor=100)
    headers = adapter.sign(body=body, secret=SECRETS[provider], now=NOW)
    # When one signed header gets an arbitrary value, or one body byte flips
    headers[data.draw(st.sampled_from(sorted(headers)))] = value
    if 0 <= flip < len(body):
        body = body[:flip] + bytes([body[flip] ^ 0x01]) + body[flip + 1 :]
    # Then only VerificationError can come out
    try:
        adapter.verify(body=body, headers=headers)
    except VerificationError as exc:
        assert exc.reason


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError inside json
        b"[" * 30_000 + b"]" * 30_000,  # the same, small enough for Senfenico's canonical candidate
        b'{"data": "' + b"[" * 100_000 + b'"}',
        b'{"id": 1' + b"0" * 5000 + b"}",  # int longer than the str->int digit limit
        b'{"id": "\\ud800", "type": "x", "event": "\\udfff", "event_id": "\\ud800"}',
    ],
)
def test_pathological_json_is_contained(provider: str, body: bytes) -> None:
    adapter = make(provider)
    # Signed for real, so verification reads the body and passes: the body reaches parse
    headers = adapter.sign(body=body, secret=SECRETS[provider], now=NOW)
    assert isinstance(adapter.verify(body=body, headers=headers), Verified)
    with pytest.raises(EnvelopeError):
        adapter.parse(body=body, headers=headers)
    if provider != "processout":  # a well-formed signature that does not match: every candidate is tried
        forged = {name: value.replace(value[-8:], "00000000") if "sign" in name or "hash" in name else value
                  for name, value in headers.items()}
        with pytest.raises(VerificationError, match="does not match"):
            adapter.verify(body=body, headers=forged)


@pytest.mark.parametrize(
    ("provider", "body", "headers"),
    [
        ("smartpay", b'{"id":"evt_\\u0000","eventData":{"type":"order.authorized"}}', {}),
        ("smartpay", b'{"id":"evt_1","eventData":{"type":"order.\\ud800"}}', {}),
        ("processout", b'{"event_id":"ev_\\ud800"}', {}),
        ("processout", b'{"event_id":"ev_1","event_type":"x\\u0000"}', {}),
        ("senfenico", b'{"event":"checkout.success","data":{"reference":"chk_\\udfff"}}', {}),
        ("yoco", b'{"type":"payment.succeeded"}', {"webhook-id": "msg_\x00"}),
        ("shadhinpay", b'{"eventId":"e\\udcff","event":"payment.completed"}', {}),
        ("shadhinpay", b'{"event":"payment.completed","data":{"payment_id":"SP_\\ud800"}}', {}),
    ],
)
def test_keys_and_types_a_database_cannot_hold_are_envelope_errors(
    provider: str, body: bytes, headers: dict[str, str]
) -> None:
    with pytest.raises(EnvelopeError, match="cannot be stored"):
        make(provider).parse(body=body, headers=headers)
