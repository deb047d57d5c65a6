"""Each provider's known answer (PROVIDERS.md) and one adapter factory, for the provider unit tests."""
from __future__ import annotations

import base64
import hashlib
import hmac

from providers.base import Adapter
from providers.processout import ProcessOutAdapter
from providers.senfenico import SenfenicoAdapter
from providers.shadhinpay import ShadhinPayAdapter
from providers.smartpay import SmartpayAdapter
from providers.yoco import YocoAdapter

SECRETS = {
    "smartpay": "Zq3kT9vWm2LpXr8YcN4bH6sJd1FgQe7UiOa5Kt0E",
    "processout": "hook:s3cr3t",
    "senfenico": "whk_test_0123456789",
    "yoco": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # public, from the Standard Webhooks spec
    "shadhinpay": "sp_whsec_test",
}
# The clock each known answer was signed at (ProcessOut and Senfenico carry no timestamp).
NOW = {"smartpay": 1700000000.123, "processout": 1_700_000_000.0, "senfenico": 1_700_000_000.0,
       "yoco": 1614265330.0, "shadhinpay": 1704110700.0}

SMARTPAY_TIMESTAMP = "1700000000123"
SMARTPAY_SIGNATURE = "24ed79931d295fc2d99022981049ce9315f203538646b7d59f4db48d241c2dab"
PROCESSOUT_GOOD = "Basic " + base64.b64encode(b"hook:s3cr3t").decode()
SENFENICO_HASH = "aceab7ed5f049ddeac364f4209483e61524dbf18700ef094460e9f5403c43abd"
YOCO_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
YOCO_TIMESTAMP = "1614265330"
YOCO_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SHADHINPAY_HEX = "b9e5669fc7fa4eb22be55836a21c5213adea8a6d431ea346beb152048f8991aa"
SHADHINPAY_T = "1704110700"

BODY = {
    "smartpay": (
        b'{"id":"evt_test_oracle1","object":"event","createdAt":1700000000000,"test":true,'
        b'"eventData":{"type":"order.authorized","version":"2022-02-18",'
        b'"data":{"id":"order_test_abc","object":"order","status":"succeeded"}}}'
    ),
    "processout": b'{"event_id":"ev_2Xk9","event_type":"transaction.failed"}',
    "senfenico": (
        rb'{"event": "checkout.success", "data": "{\"email\": \"a@b.c\", \"reference\": \"chk_1\", '
        rb'\"charge_reference\": \"ch_1\", \"amount\": 1000, \"success_url\": \"https://m.example/ok\", '
        rb'\"cancel_url\": \"https://m.example/ko\", \"phone\": \"70000000\", \"provider\": \"orange_bf\", '
        rb'\"live_mode\": false, \"created_at\": \"2024-05-01T10:00:00Z\", '
        rb'\"updated_at\": \"2024-05-01T10:01:00Z\", \"status\": \"success\"}"}'
    ),
    "yoco": b'{"test": 2432232314}',
    "shadhinpay": (
        b'{"event":"payment.completed","timestamp":"2024-01-01T12:05:00Z","data":{"payment_id":'
        b'"SP_1234567890","status":"COMPLETED","amount":1500,"currency":"BDT"}}'
    ),
}
# Senfenico as its docs send it (data an object, compact), and ShadhinPay's newer envelope.
SENFENICO_OBJECT_BODY = (
    b'{"event":"checkout.failed","data":{"reference":"chk_2","amount":500,"live_mode":true,'
    b'"status":"failed","note":"caf\xc3\xa9"}}'
)
SHADHINPAY_NEWER = (
    b'{"eventId":"evt_77","eventType":"payment.failed","occurredAt":"2024-01-01T12:05:00Z",'
    b'"payload":{"paymentId":"SP_9","merchantTxnId":"order_9","amount":"10.50","currency":"BDT",'
    b'"status":"FAILED"}}'
)


def smartpay_headers(signature: str = SMARTPAY_SIGNATURE, timestamp: str = SMARTPAY_TIMESTAMP) -> dict[str, str]:
    return {"smartpay-signature": signature, "smartpay-signature-timestamp": timestamp}


def yoco_headers(
    signature: str = YOCO_SIGNATURE, *, msg_id: str = YOCO_MSG_ID, timestamp: str = YOCO_TIMESTAMP,
    prefix: str = "webhook",
) -> dict[str, str]:
    return {f"{prefix}-id": msg_id, f"{prefix}-timestamp": timestamp, f"{prefix}-signature": signature}


def shadhinpay_sig(value: str) -> dict[str, str]:
    return {"x-shadhinpay-signature": value}


def shadhinpay_timestamped_hex(t: str = SHADHINPAY_T, body: bytes = BODY["shadhinpay"]) -> str:
    return hmac.new(SECRETS["shadhinpay"].encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


# The documented signature of each known answer.
HEADERS = {
    "smartpay": smartpay_headers(),
    "processout": {"authorization": PROCESSOUT_GOOD},
    "senfenico": {"x-webhook-hash": SENFENICO_HASH},
    "yoco": yoco_headers(),
    "shadhinpay": shadhinpay_sig("sha256=" + SHADHINPAY_HEX),
}


def make(provider: str, secrets: list[str] | None = None, *, now: float | None = None,
         tolerance: int | None = None) -> Adapter:
    """The provider's adapter with the known-answer secret (or ``secrets``) and a frozen clock."""
    secrets = [SECRETS[provider]] if secrets is None else secrets
    frozen = NOW[provider] if now is None else now
    options = {} if tolerance is None else {"tolerance_seconds": tolerance}
    if provider == "processout":
        return ProcessOutAdapter(basic_auth=secrets[0] if secrets else None, clock=lambda: frozen)
    classes = {"smartpay": SmartpayAdapter, "senfenico": SenfenicoAdapter, "yoco": YocoAdapter,
               "shadhinpay": ShadhinPayAdapter}
    return classes[provider](secrets=secrets, clock=lambda: frozen, **options)
