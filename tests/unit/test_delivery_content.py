"""What customers read, and the keys that make a resend recognisable."""
from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import make_settings
from workers.deliveries.content import money, render_email, render_sms
from workers.deliveries.senders import build_email, message_id, signed_headers

ORDER = {"reference": "ORD-7", "amount": 2500, "currency": "ZAR", "customer_email": "thandi@example.co.za",
         "customer_phone": None, "customer_name": "Thandi <b>M</b>", "provider": "yoco",
         "provider_payment_ref": "ch_1"}


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    (2500, "ZAR", "25.00 ZAR"), (5, "USD", "0.05 USD"), (1000, "JPY", "1000 JPY"), (150050, "BDT", "1500.50 BDT"),
    (700, "XOF", "700 XOF"),
])
def test_money_uses_the_currency_exponent(amount: int, currency: str, expected: str) -> None:
    assert money(amount, currency) == expected


@pytest.mark.parametrize(("template", "subject"), [
    ("order_confirmation", "Payment received for order ORD-7"),
    ("payment_failed", "Payment failed for order ORD-7"),
    ("refund", "Refund for order ORD-7"),
])
def test_each_email_names_the_order_and_amount(template: str, subject: str) -> None:
    rendered = render_email(template, {"order": ORDER, "refund": {"amount": 1000, "kind": "partially_refunded"}})
    assert rendered.subject == subject
    assert "ORD-7" in rendered.text and "25.00 ZAR" in rendered.text
    assert "Hello Thandi <b>M</b>," in rendered.text  # plain text is not escaped
    assert "Thandi &lt;b&gt;M&lt;/b&gt;" in rendered.html  # HTML is
    if template == "refund":
        assert "10.00 ZAR" in rendered.text


def test_without_a_name_the_email_greets_the_mailbox() -> None:
    rendered = render_email("payment_failed", {"order": {**ORDER, "customer_name": None}})
    assert rendered.text.startswith("Hello thandi,")


def test_the_sms_is_one_short_line() -> None:
    text = render_sms("payment_failed", {"order": ORDER})
    assert "\n" not in text and "ORD-7" in text and "25.00 ZAR" in text


def test_the_message_id_is_stable_per_delivery_key() -> None:
    assert message_id("12:fulfilment:email.order_confirmation", "shop@merchant.example") == message_id(
        "12:fulfilment:email.order_confirmation", "shop@merchant.example")
    assert message_id("12:a:b", "shop@merchant.example") != message_id("13:a:b", "shop@merchant.example")
    assert message_id("12:a:b", "shop@merchant.example").endswith("@merchant.example>")


def test_the_email_has_text_and_html_parts_and_the_stable_id() -> None:
    settings = make_settings(smtp_from="shop@merchant.example")
    msg = build_email(settings, key="12:fulfilment:email.order_confirmation", kind="email.order_confirmation",
                      payload={"order": ORDER}, to="thandi@example.co.za")
    assert msg["To"] == "thandi@example.co.za"
    assert msg["Message-ID"] == message_id("12:fulfilment:email.order_confirmation", "shop@merchant.example")
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_signed_headers_verify_with_standard_webhooks() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = signed_headers(secret=secret, key="12:fulfilment:fulfilment", body=b'{"a":1}')
    assert headers["Idempotency-Key"] == headers["webhook-id"] == "12:fulfilment:fulfilment"
    Webhook(secret).verify(b'{"a":1}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)
