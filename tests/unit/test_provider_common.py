"""What every adapter does alike, as one table of per-provider cases: known answers accepted,
tampered, unsigned, stale or wrongly keyed requests refused, malformed input contained, kinds."""
from __future__ import annotations

import base64
import importlib
import json
from typing import Any

import pytest

from providers.base import EnvelopeError, VerificationError, Verified
from providers.shadhinpay import body_digest
from tests.unit.provider_cases import (
    BODY,
    HEADERS,
    NOW,
    PROCESSOUT_GOOD,
    SECRETS,
    SENFENICO_HASH,
    SENFENICO_OBJECT_BODY,
    SHADHINPAY_HEX,
    SHADHINPAY_NEWER,
    SHADHINPAY_T,
    SMARTPAY_SIGNATURE,
    YOCO_SIGNATURE,
    make,
    shadhinpay_sig,
    shadhinpay_timestamped_hex,
    smartpay_headers,
    yoco_headers,
)

YOCO_OTHER_SECRET = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()
SHADHINPAY_TIMED = shadhinpay_sig(f"t={SHADHINPAY_T},v1={shadhinpay_timestamped_hex()}")


def case(provider: str, headers: dict[str, str] | None = None, *, body: bytes | None = None, **make_kwargs: Any):
    """(provider, make() keywords, body, headers): the known answer unless told otherwise."""
    return (provider, make_kwargs, BODY[provider] if body is None else body,
            HEADERS[provider] if headers is None else headers)


ACCEPTED = [
    (case("smartpay"), Verified(0, None)),
    (case("smartpay", smartpay_headers(SMARTPAY_SIGNATURE.upper())), Verified(0, None)),
    (case("smartpay", secrets=["BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", SECRETS["smartpay"]]), Verified(1, None)),
    (case("smartpay", secrets=["not-base62!", SECRETS["smartpay"]]), Verified(1, None)),  # skipped, no crash
    (case("processout"), Verified(0, "basic")),
    (case("processout", {"authorization": PROCESSOUT_GOOD.replace("Basic", "basic")}), Verified(0, "basic")),
    (case("senfenico"), Verified(0, "raw")),
    (case("senfenico", {"x-webhook-hash": SENFENICO_HASH.upper()}), Verified(0, "raw")),
    (case("senfenico", secrets=["whk_new", SECRETS["senfenico"]]), Verified(1, "raw")),
    # Yoco: a 2021 known answer passes with our frozen clock (the package alone uses the wall clock)
    (case("yoco"), Verified(0, None)),
    (case("yoco", yoco_headers(prefix="svix")), Verified(0, None)),
    # any matching entry passes and other versions are ignored
    (case("yoco", yoco_headers(f"v2,c29tZXRoaW5n v1,{base64.b64encode(b'x' * 32).decode()} {YOCO_SIGNATURE}")),
     Verified(0, None)),
    (case("yoco", secrets=[YOCO_OTHER_SECRET, SECRETS["yoco"]]), Verified(1, None)),
    # "whsec_!!!" decodes to no bytes (the package raises EmptyWebhookSecretError): skipped, no crash
    (case("yoco", secrets=["whsec_!!!", "", SECRETS["yoco"]]), Verified(2, None)),
    # The package hard-codes 5 minutes; a 10-minute setting must still accept 9 minutes.
    (case("yoco", now=NOW["yoco"] + 540, tolerance=600), Verified(0, None)),
    (case("shadhinpay"), Verified(0, "sha256=")),
    (case("shadhinpay", shadhinpay_sig(SHADHINPAY_HEX)), Verified(0, "bare")),
    (case("shadhinpay", SHADHINPAY_TIMED), Verified(0, "t,v1")),
    # spaces, unknown keys and several v1 in the timestamped form
    (case("shadhinpay", shadhinpay_sig(f"t={SHADHINPAY_T}, v0=ignored, v1={'0' * 64}, "
                                       f"v1={shadhinpay_timestamped_hex()}")), Verified(0, "t,v1")),
    (case("shadhinpay", secrets=["sp_whsec_new", SECRETS["shadhinpay"]]), Verified(1, "sha256=")),
]
# (provider, tolerance in seconds, the smallest step past it that is refused, a timestamped signature)
TIMED = [("smartpay", 300, 0.001, HEADERS["smartpay"]), ("yoco", 180, 1, HEADERS["yoco"]),
         ("shadhinpay", 300, 1, SHADHINPAY_TIMED)]
ACCEPTED += [(case(p, headers, now=NOW[p] + sign * tolerance), Verified(0, None if p != "shadhinpay" else "t,v1"))
             for p, tolerance, _, headers in TIMED for sign in (-1, 0, 1)]


def by_provider(value: Any) -> str | None:
    """Test ids that start with the provider's name."""
    return value[0] if isinstance(value, tuple) else None


@pytest.mark.parametrize(("case", "expected"), ACCEPTED, ids=by_provider)
def test_accepted(case: tuple[str, dict[str, Any], bytes, dict[str, str]], expected: Verified) -> None:
    provider, make_kwargs, body, headers = case
    assert make(provider, **make_kwargs).verify(body=body, headers=headers) == expected


def tampered(provider: str, old: bytes, new: bytes, headers: dict[str, str] | None = None, **kwargs: Any):
    return case(provider, headers, body=BODY[provider].replace(old, new), **kwargs)


REFUSED = [
    (tampered("smartpay", b"order_test_abc", b"order_test_abd"), "does not match"),
    (case("smartpay", secrets=["not-base62!"]), None),  # its only secret unusable: refused, no crash
    (case("smartpay", now=NOW["smartpay"] + 61, tolerance=60), "too old"),  # the tolerance is a setting
    (case("smartpay", body=b"\xff\xfe\x00"), "does not match"),  # non-UTF-8 is a plain mismatch
    (case("processout", {}), "missing authorization"),
    (tampered("senfenico", b"1000", b"9000"), "does not match"),
    (case("yoco", body=b'{"test": 2432232315}'), "does not match"),
    (case("yoco", yoco_headers(msg_id="msg_other")), "does not match"),
    (case("yoco", yoco_headers("v1a," + YOCO_SIGNATURE[3:])), "does not match"),  # only other versions
    (case("yoco", body=b"\xff\xfe"), "UTF-8"),
    # in every form, and the timestamped form does not accept the untimestamped MAC
    *[(tampered("shadhinpay", b"1500", b"9500", headers), "does not match")
      for headers in (HEADERS["shadhinpay"], shadhinpay_sig(SHADHINPAY_HEX), SHADHINPAY_TIMED)],
    (case("shadhinpay", shadhinpay_sig(f"t={SHADHINPAY_T},v1={SHADHINPAY_HEX}")), "does not match"),
    *[(case(p, secrets=[]), "no secret configured") for p in ("smartpay", "senfenico", "yoco", "shadhinpay")],
    *[(case(p, headers, now=NOW[p] + sign * (tolerance + step_past)), match) for p, tolerance, step_past, headers
      in TIMED for sign, match in ((1, "too old"), (-1, "too new"))],
]


@pytest.mark.parametrize(("case", "match"), REFUSED, ids=by_provider)
def test_refused(case: tuple[str, dict[str, Any], bytes, dict[str, str]], match: str | None) -> None:
    provider, make_kwargs, body, headers = case
    with pytest.raises(VerificationError, match=match):
        make(provider, **make_kwargs).verify(body=body, headers=headers)


@pytest.mark.parametrize(
    ("provider", "secrets", "headers", "secret_parts"),
    [
        ("smartpay", ["Zq3kT9vWm2LpXr8YcN4bH6sJd1FgQe7UiOa5Kt0F"], None,
         [SMARTPAY_SIGNATURE, SECRETS["smartpay"][:10]]),
        ("processout", None, {"authorization": "Basic " + base64.b64encode(b"hook:guess").decode()},
         ["s3cr3t", "guess"]),
        ("senfenico", ["whk_test_other"], None, [SENFENICO_HASH, "whk_test"]),
        ("yoco", [YOCO_OTHER_SECRET], None, [YOCO_SIGNATURE[3:], "MfKQ9r8"]),
        ("shadhinpay", ["sp_whsec_other"], None, [SHADHINPAY_HEX, "sp_whsec"]),
    ],
)
def test_wrong_secret_fails_and_the_reason_leaks_nothing(
    provider: str, secrets: list[str] | None, headers: dict[str, str] | None, secret_parts: list[str]
) -> None:
    with pytest.raises(VerificationError) as caught:
        make(provider, secrets).verify(body=BODY[provider], headers=headers or HEADERS[provider])
    for part in secret_parts:
        assert part not in caught.value.reason


@pytest.mark.parametrize("provider", ["smartpay", "processout", "senfenico", "shadhinpay"])
def test_sign_reproduces_the_known_answer(provider: str) -> None:
    # (Yoco's known answer has no body id, so its sign() picks a fresh msg id: see test_provider_yoco.)
    signed = make(provider).sign(body=BODY[provider], secret=SECRETS[provider], now=NOW[provider])
    assert signed == HEADERS[provider]


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key != name}


MALFORMED_HEADERS = {
    "smartpay": [
        {}, without(HEADERS["smartpay"], "smartpay-signature"),
        without(HEADERS["smartpay"], "smartpay-signature-timestamp"),
        *[smartpay_headers(signature=value) for value in (
            "", SMARTPAY_SIGNATURE[:-1], SMARTPAY_SIGNATURE + "0", "g" * 64, "sha256=" + SMARTPAY_SIGNATURE,
            " " + SMARTPAY_SIGNATURE, "é" * 64)],
        *[smartpay_headers(timestamp=value) for value in (
            "", "abc", "1700000000123.0", " 1700000000123", "-1700000000123",
            "١٧٠٠٠٠٠٠٠٠١٢٣",  # Arabic-Indic digits: isdigit() but not ASCII
            "9" * 5000, "\udcff")],
    ],
    "processout": [{"authorization": value} for value in (
        "", "Basic", "Basic ", "Bearer " + PROCESSOUT_GOOD.split()[1], "Basic !!!!",
        "Basic aG9vaz",  # bad padding
        PROCESSOUT_GOOD + " extra", "Basic é", "Basic \udcff",
        PROCESSOUT_GOOD.split()[1],  # no scheme
    )],
    "senfenico": [{}, {"x-senfenico-hash": SENFENICO_HASH}, *[{"x-webhook-hash": value} for value in (
        "", SENFENICO_HASH[:-1], SENFENICO_HASH + "a", "z" * 64, "sha256=" + SENFENICO_HASH, "é" * 64,
        "\udcff" * 64)]],
    "yoco": [
        {}, *[without(HEADERS["yoco"], f"webhook-{name}") for name in ("id", "timestamp", "signature")],
        yoco_headers(msg_id=""), yoco_headers(msg_id="\udcff"),
        *[yoco_headers(timestamp=value)
          for value in ("", "abc", "1614265330.0", "1e9", "nan", "-1614265330", "9" * 5000)],
        *[yoco_headers(value) for value in (
            "", "v1",  # no comma
            "v1,", "v1,abc",  # empty signature, bad base64 padding
            "v1,a,b", "v1,é", "v1,\udcff",  # two commas, non-ASCII
            YOCO_SIGNATURE + " v1",  # a malformed entry after a good one
            YOCO_SIGNATURE + "  " + YOCO_SIGNATURE,  # empty entry
            ",abc=",  # empty version
        )],
    ],
    "shadhinpay": [{}, {"x-shadhinpay-sig": SHADHINPAY_HEX}, *[shadhinpay_sig(value) for value in (
        "", "   ", "sha256=", "sha256=" + SHADHINPAY_HEX[:-1], "sha256=" + "x" * 64, "md5=" + SHADHINPAY_HEX,
        SHADHINPAY_HEX + "0", "é" * 64, "\udcff",
        f"t={SHADHINPAY_T}",  # no v1
        f"v1={SHADHINPAY_HEX}",  # no t
        f"t={SHADHINPAY_T}v1={SHADHINPAY_HEX}",  # no comma
        f"t={SHADHINPAY_T};v1={SHADHINPAY_HEX}",
        f"t=abc,v1={SHADHINPAY_HEX}",  # non-numeric timestamp
        f"t=,v1={SHADHINPAY_HEX}", f"t=1704110700.5,v1={SHADHINPAY_HEX}", f"t={'9' * 5000},v1={SHADHINPAY_HEX}",
        f"t={SHADHINPAY_T},t={SHADHINPAY_T},v1={SHADHINPAY_HEX}", f"t={SHADHINPAY_T},v1=zz",
        f"t={SHADHINPAY_T},v1={SHADHINPAY_HEX},junk",
    )]],
}


@pytest.mark.parametrize(
    ("provider", "headers"), [(p, headers) for p, cases in MALFORMED_HEADERS.items() for headers in cases]
)
def test_malformed_headers_raise_verification_error_only(provider: str, headers: dict[str, str]) -> None:
    with pytest.raises(VerificationError):
        make(provider).verify(body=BODY[provider], headers=headers)


YOCO_EVENT = (
    b'{"id":"evt_2E9vL4","type":"payment.succeeded","createdDate":"2024-05-01T10:00:00Z",'
    b'"payload":{"id":"p_1","type":"payment","amount":900,"currency":"ZAR","status":"succeeded",'
    b'"mode":"test","metadata":{"checkoutId":"ch_1"}}}'
)
THIN = {"event_id": "ev_2Xk9", "event_type": "transaction.failed"}
FORM = {"event_id": "ev_/42", "event_type": "transaction.captured"}


@pytest.mark.parametrize(
    ("provider", "body", "key", "event_type", "livemode", "path", "value"),
    [
        ("smartpay", BODY["smartpay"], "evt_test_oracle1", "order.authorized", False,
         ("eventData", "data", "id"), "order_test_abc"),
        ("processout", BODY["processout"], "ev_2Xk9", "transaction.failed", None, (), THIN),
        ("processout", b"event_id=ev_%2F42&event_type=transaction.captured", "ev_/42", "transaction.captured",
         None, (), FORM),
        ("senfenico", BODY["senfenico"], "checkout.success:chk_1", "checkout.success", False,
         ("data", "amount"), 1000),  # the double-encoded data, decoded
        ("senfenico", SENFENICO_OBJECT_BODY, "checkout.failed:chk_2", "checkout.failed", True,
         ("data", "note"), "café"),
        ("yoco", YOCO_EVENT, "evt_2E9vL4", "payment.succeeded", False,
         ("payload", "metadata", "checkoutId"), "ch_1"),
        # ShadhinPay's documented envelope is keyed by the payment and its signed fields
        ("shadhinpay", BODY["shadhinpay"],
         f"payment.completed_SP_1234567890_{body_digest(json.loads(BODY['shadhinpay']))}",
         "payment.completed", None, ("data", "amount"), 1500),
        ("shadhinpay", SHADHINPAY_NEWER, "evt_77", "payment.failed", None, ("payload", "paymentId"), "SP_9"),
    ],
)
def test_parse(provider: str, body: bytes, key: str, event_type: str, livemode: bool | None,
               path: tuple[str, ...], value: Any) -> None:
    envelope = make(provider).parse(body=body, headers=HEADERS[provider] if provider == "yoco" else {})
    assert (envelope.event_key, envelope.event_type, envelope.livemode) == (key, event_type, livemode)
    payload = envelope.payload
    for step in path:
        payload = payload[step]
    assert payload == value


UNUSABLE_BODIES = {
    "smartpay": [
        b"not json", b"\xff\xfe", b"[1, 2]", b"42", b'"evt_1"', b"null",
        b'{"eventData":{"type":"order.authorized"}}', b'{"id":"","eventData":{"type":"order.authorized"}}',
        b'{"id":7,"eventData":{"type":"order.authorized"}}', b'{"id":"evt_1"}', b'{"id":"evt_1","eventData":[]}',
        b'{"id":"evt_1","eventData":{"version":"2022-02-18"}}',
    ],
    "processout": [
        b"", b"not json and not a form", b"\xff\xfe\x00", b"[1, 2]", b"42", b'"ev_1"',
        b'{"event_type":"transaction.failed"}', b'{"event_id":"","event_type":"transaction.failed"}',
        b'{"event_id":12,"event_type":"transaction.failed"}', b"event_type=transaction.failed",
        b"event_id=&event_type=transaction.failed",
    ],
    "senfenico": [
        b"not json", b"\xff", b"[]", b"3.5", b'{"data":{"reference":"chk_1"}}',
        b'{"event":"","data":{"reference":"chk_1"}}', b'{"event":"checkout.success","data":"not json"}',
        b'{"event":"checkout.success","data":"[1]"}', b'{"event":"checkout.success","data":[1]}',
    ],
    "yoco": [
        b"not json", b"\xff", b"[]", b"true",
        b'{"type":"payment.succeeded"}',  # no id and no header
        b'{"id":"evt_1"}', b'{"id":"evt_1","type":""}', b'{"id":"evt_1","type":5}',
    ],
    "shadhinpay": [
        b"not json", b"\xff", b"[]", b"null",
        b'{"data":{"payment_id":"SP_1"}}',  # no type
        b'{"event":"payment.completed"}',  # no key at all
        b'{"event":"payment.completed","data":{"payment_id":""}}',
        b'{"event":"payment.completed","data":{"payment_id":true}}', b'{"event":"payment.completed","data":"SP_1"}',
    ],
}


@pytest.mark.parametrize(("provider", "body"), [(p, body) for p, bodies in UNUSABLE_BODIES.items() for body in bodies])
def test_parse_rejects_unusable_bodies(provider: str, body: bytes) -> None:
    with pytest.raises(EnvelopeError):
        make(provider).parse(body=body, headers={})


@pytest.mark.parametrize(
    ("provider", "kinds", "secret_headers"),
    [
        ("smartpay", {"order.authorized": "payment.succeeded", "order.rejected": "payment.failed",
                      "refund.created": "payment.refunded"}, {"smartpay-signature", "authorization"}),
        ("processout", {"transaction.captured": "payment.succeeded", "transaction.failed": "payment.failed",
                        "transaction.refunded": "payment.refunded",
                        "transaction.chargeback.created": "payment.charged_back"}, {"authorization"}),
        ("senfenico", {"checkout.success": "payment.succeeded", "charge.success": "payment.succeeded",
                       "checkout.failed": "payment.failed", "charge.failed": "payment.failed"},
         {"x-webhook-hash", "authorization"}),
        ("yoco", {"payment.succeeded": "payment.succeeded", "refund.succeeded": "payment.refunded"},
         {"webhook-signature", "svix-signature", "authorization"}),
        ("shadhinpay", {"payment.completed": "payment.succeeded", "payment.failed": "payment.failed",
                        "payment.refunded": "payment.refunded"}, {"x-shadhinpay-signature", "authorization"}),
    ],
)
def test_kinds_table_name_and_secret_headers(provider: str, kinds: dict[str, str], secret_headers: set[str]) -> None:
    module = importlib.import_module(f"providers.{provider}")
    adapter_class = type(make(provider))
    assert module.KINDS == kinds and adapter_class.kinds is module.KINDS
    assert adapter_class.name == provider
    assert adapter_class.secret_headers == secret_headers
