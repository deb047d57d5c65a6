"""A captured request resent as an attacker would: nothing changes anywhere.

For each provider a valid payment (and, where the provider has them, a refund)
is handled by a real worker process; then each captured request is resent
(a) byte for byte, (b) with its unsigned headers changed, removed or added
(event-id headers, user agent, content type, a second signature header),
(c) re-stamped where the scheme allows it. Each answer must be the expected
``duplicate`` (same id) or 401, and no second effect may appear: order
transitions, refunds, delivery rows and attempts, emails, merchant calls,
ProcessOut fetches. A last, fresh event proves the pipeline was still live.

ShadhinPay's requests carry no ``eventId`` and no refund id, so the event key
built from the signed body is all that stands between a resent refund and a
second booking (the unsigned ``X-ShadhinPay-Event-Id`` once decided it).
"""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import Engine

from providers.registry import PROVIDERS
from sandbox.samples import sample_body, sample_processout_event
from testkit.processes import wait_for
from tests.integration.helpers import EVENT_TYPES, REFUND_TYPES, SIGNATURE_HEADERS, refund_body, signed_request
from tests.integration.stack import create_order, start_processes, tuples, values, wait_final

Headers = list[tuple[str, str]]
DUP, REFUSED = "duplicate", 401


def _set(headers: Headers, name: str, value: str | None) -> Headers:
    kept = [(k, v) for k, v in headers if k.lower() != name]
    return kept if value is None else [*kept, (name, value)]


def _get(headers: Headers, name: str) -> str:
    return next(v for k, v in headers if k.lower() == name)


def header_variants(provider: str, headers: Headers) -> dict[str, tuple[Headers, Any]]:
    """(b): every unsigned header changed, removed or added; a second signature header."""
    signature_name = SIGNATURE_HEADERS[provider]
    signed = {"smartpay": {"smartpay-signature", "smartpay-signature-timestamp"}, "processout": {"authorization"},
              "senfenico": {"x-webhook-hash"}, "yoco": {"webhook-id", "webhook-timestamp", "webhook-signature"},
              "shadhinpay": {"x-shadhinpay-signature"}}[provider]
    variants: dict[str, tuple[Headers, Any]] = {
        "fresh X-ShadhinPay-Event-Id": (_set(headers, "x-shadhinpay-event-id", "evt_forged_1"), DUP),
        "another fresh X-ShadhinPay-Event-Id": (_set(headers, "x-shadhinpay-event-id", "evt_forged_2"), DUP),
        "fresh Idempotency-Key, X-Request-Id, X-Event-Id": (
            _set(_set(_set(headers, "idempotency-key", "k2"), "x-request-id", "r2"), "x-event-id", "e2"), DUP),
        "svix-id added": (_set(headers, "svix-id", "msg_forged"), DUP),
        "user agent changed": (_set(headers, "user-agent", "attacker/1.0"), DUP),
        "content type text/plain": (_set(headers, "content-type", "text/plain"), DUP),
        "content type form": (_set(headers, "content-type", "application/x-www-form-urlencoded"), DUP),
        "content type removed": (_set(headers, "content-type", None), DUP),
        "every unsigned header removed": ([(k, v) for k, v in headers if k.lower() in signed], DUP),
        "a second, forged signature header": (
            [*headers, (signature_name, "Basic Zm9yZ2VkOmZvcmdlZA==" if provider == "processout" else "0" * 64)],
            REFUSED),
    }
    # webhook-id is signed for Yoco (Standard Webhooks): changing it breaks the signature
    variants["webhook-id changed"] = (_set(headers, "webhook-id", "msg_forged"), REFUSED if provider == "yoco" else DUP)
    if provider == "yoco":
        variants["a forged svix-signature beside webhook-signature"] = (
            _set(headers, "svix-signature", "v1," + "A" * 43 + "="), DUP)
    return variants


def restamp_variants(provider: str, body: bytes, headers: Headers) -> dict[str, tuple[bytes, Headers, Any]]:
    """(c): what each scheme lets an attacker change without the secret, and what it does not."""
    later = str(int(time.time()) + 60)
    variants: dict[str, tuple[bytes, Headers, Any]] = {}
    signature = _get(headers, SIGNATURE_HEADERS[provider])
    if provider == "smartpay":
        variants["signature in upper case"] = (body, _set(headers, "smartpay-signature", signature.upper()), DUP)
        variants["fresh timestamp, old signature"] = (
            body, _set(headers, "smartpay-signature-timestamp", later + "000"), REFUSED)
    elif provider == "yoco":
        variants["extra v1 entry before the genuine one"] = (
            body, _set(headers, "webhook-signature", f"v1,{'A' * 43}= {signature}"), DUP)
        variants["svix-* names instead of webhook-*"] = (
            body, [(k.replace("webhook-", "svix-"), v) for k, v in headers], DUP)
        variants["fresh timestamp, old signature"] = (body, _set(headers, "webhook-timestamp", later), REFUSED)
    elif provider == "shadhinpay":
        hex_value = signature.removeprefix("sha256=")
        variants["bare form of the same signature"] = (body, _set(headers, "x-shadhinpay-signature", hex_value), DUP)
        variants["upper-case hex"] = (
            body, _set(headers, "x-shadhinpay-signature", "sha256=" + hex_value.upper()), DUP)
        variants["t=,v1= form with a fresh timestamp"] = (
            body, _set(headers, "x-shadhinpay-signature", f"t={later},v1={hex_value}"), REFUSED)
        variants["body re-spaced, old signature"] = (body.replace(b",", b", "), headers, REFUSED)
    elif provider == "senfenico":
        variants["hash in upper case"] = (body, _set(headers, "x-webhook-hash", signature.upper()), DUP)
        # The sample is already in the Python SDK's canonical form, so a re-spaced copy still matches
        # through the canonical candidate: the key (from the parsed body) keeps it the same event
        variants["body re-spaced, same hash (canonical candidate)"] = (body.replace(b'", "', b'","'), headers, DUP)
        variants["body with a field changed, same hash"] = (body.replace(b"checkout.success", b"charge.success"),
                                                            headers, REFUSED)
    elif provider == "processout":
        event = json.loads(body)
        form = f"event_id={event['event_id']}&event_type={event['event_type']}".encode()
        variants["same event id as a form"] = (form, _set(headers, "content-type",
                                                          "application/x-www-form-urlencoded"), DUP)
        variants["same event id, forged event type"] = (
            json.dumps({"event_id": event["event_id"], "event_type": "transaction.refunded"}).encode(), headers, DUP)
        variants["lower-case basic scheme"] = (body, _set(headers, "authorization",
                                                          _get(headers, "authorization").replace("Basic", "basic")), DUP)
    return variants


def effects(engine: Engine, order_id: int, smtp, merchant, processout) -> dict[str, Any]:
    return {
        "events": tuples(engine, "SELECT id, provider, event_key, status, attempts, replay_count FROM webhook_events "
                                 "ORDER BY id"),
        "order": tuples(engine, "SELECT status, refunded_amount FROM orders WHERE id = :o", o=order_id),
        "transitions": tuples(engine, "SELECT event_id, from_status, to_status FROM order_transitions "
                                      "WHERE order_id = :o ORDER BY id", o=order_id),
        "refunds": tuples(engine, "SELECT event_id, refund_key, amount FROM refunds WHERE order_id = :o ORDER BY id",
                          o=order_id),
        "deliveries": tuples(engine, "SELECT event_id, handler, kind, status FROM deliveries WHERE order_id = :o "
                                     "ORDER BY id", o=order_id),
        "delivery attempts": tuples(engine, "SELECT d.kind, a.number, a.outcome FROM delivery_attempts a "
                                            "JOIN deliveries d ON d.id = a.delivery_id WHERE d.order_id = :o "
                                            "ORDER BY a.id", o=order_id),
        "emails": len(smtp.sink.messages),
        "merchant calls": len(merchant.received),
        "processout fetches": len(processout.requests),
    }


def _deliveries_done(engine: Engine, order_id: int, count: int) -> bool:
    states = values(engine, "SELECT status FROM deliveries WHERE order_id = :o", o=order_id)
    return len(states) == count and all(s in ("succeeded", "dead", "skipped") for s in states)


def _captured(provider: str, settings, processout, *, order_ref: str) -> list[tuple[str, bytes, Headers]]:
    """The valid requests an attacker captured: a payment, and a refund where the provider has one."""
    event_id = f"ev_pay_{provider}_{order_ref}"
    body = sample_body(provider, EVENT_TYPES[provider], order_ref=order_ref, amount_minor=1000, event_id=event_id)
    if provider == "shadhinpay":  # the documented envelope: no eventId
        document = json.loads(body)
        del document["eventId"]
        body = json.dumps(document, separators=(",", ":")).encode()
    if provider == "processout":
        processout.events[event_id] = sample_processout_event(
            event_id=event_id, event_type=EVENT_TYPES[provider], order_ref=order_ref, amount_minor=1000)["event"]
    requests = [("payment", body)]
    if provider in REFUND_TYPES:
        requests.append(("refund", refund_body(provider, event_id=f"ev_ref_{provider}_{order_ref}",
                                               refund_id=None if provider == "shadhinpay" else f"rf_{order_ref}",
                                               order_ref=order_ref, amount_minor=400, processout=processout)))
    out = []
    for name, request_body in requests:
        _, headers = signed_request(settings, provider, body=request_body)
        out.append((name, request_body, [("User-Agent", f"{provider}-webhooks/1.0"), *headers.items()]))
    return out


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_captured_request_resent_changes_nothing(delivering, smtp, merchant, processout, client, settings, engine,
                                                   provider) -> None:
    order_id = create_order(engine, reference=f"A-{provider}", provider=provider, payment_ref=f"pay_{provider}")
    sentinel_order = create_order(engine, reference=f"S-{provider}", provider=provider,
                                  payment_ref=f"sentinel_{provider}")
    start_processes(delivering)
    # Given the valid requests, each handled to the end (worker, emails, fulfilment call)
    captured = _captured(provider, settings, processout, order_ref=f"pay_{provider}")
    ids = {}
    for name, body, headers in captured:
        response = client.post(f"/webhooks/{provider}", data=body, headers=headers)
        assert response.json["status"] == "accepted", response.json
        ids[name] = response.json["id"]
        wait_final(engine, ids[name], stack=delivering)
    expected_deliveries = 3 if "refund" in ids else 2  # fulfilment + confirmation (+ refund email)
    wait_for(lambda: _deliveries_done(engine, order_id, expected_deliveries), message="the deliveries")
    before = effects(engine, order_id, smtp, merchant, processout)
    assert before["order"][0][0] == ("partially_refunded" if "refund" in ids else "paid")
    assert before["emails"] == expected_deliveries - 1 and before["merchant calls"] == 1

    # When each captured request is resent in every way
    answers: dict[tuple[str, str], Any] = {}
    expected: dict[tuple[str, str], Any] = {}
    for name, body, headers in captured:
        attempts = {"(a) byte for byte": (body, headers, DUP)}
        attempts |= {f"(b) {label}": (body, varied, want)
                     for label, (varied, want) in header_variants(provider, headers).items()}
        attempts |= {f"(c) {label}": variant
                     for label, variant in restamp_variants(provider, body, headers).items()}
        for label, (sent_body, sent_headers, want) in attempts.items():
            response = client.post(f"/webhooks/{provider}", data=sent_body, headers=sent_headers)
            if response.status_code == 200 and response.json["id"] == ids[name]:
                answers[(name, label)] = response.json["status"]
            else:
                answers[(name, label)] = response.status_code if response.status_code != 200 else response.json
            expected[(name, label)] = want
    assert answers == expected

    # Then, once a fresh event has gone all the way through, nothing else has changed anywhere
    fresh = _captured(provider, settings, processout, order_ref=f"sentinel_{provider}")[0]
    response = client.post(f"/webhooks/{provider}", data=fresh[1], headers=fresh[2])
    assert response.json["status"] == "accepted"
    wait_final(engine, response.json["id"], stack=delivering)
    wait_for(lambda: _deliveries_done(engine, sentinel_order, 2), message="the fresh event's deliveries")
    after = effects(engine, order_id, smtp, merchant, processout)
    fresh_id = response.json["id"]
    assert [e for e in after["events"] if e[0] != fresh_id] == before["events"]
    assert after["emails"] == before["emails"] + 1 and after["merchant calls"] == before["merchant calls"] + 1
    assert after["processout fetches"] == before["processout fetches"] + (provider == "processout")
    for part in ("order", "transitions", "refunds", "deliveries", "delivery attempts"):
        assert after[part] == before[part], part
