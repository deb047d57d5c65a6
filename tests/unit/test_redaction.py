"""The one redaction module: every secret in every form it travels in, in logs, headers and output."""
from __future__ import annotations

import base64
import json
import logging

from models.logs import JsonFormatter, RedactSecrets
from models.redaction import REDACTED, Redactor, safe_url
from tests.conftest import (
    API_TOKEN,
    PROCESSOUT_BASIC_AUTH,
    PROCESSOUT_PROJECT_SECRET,
    TEST_SECRETS,
    make_settings,
)

DB_PASSWORD = "db-pa55word"
FULFIL_PASSWORD = "fulfil-pa55"
FULFILMENT_SECRET = "whsec_ZnVsZmlsbWVudC1rZXktMDEyMzQ1Njc4OQ=="
METRICS_TOKEN = "metrics-token-0123"


def _settings():
    return make_settings(
        database_url=f"postgresql://payhooks:{DB_PASSWORD}@db:5432/payhooks",
        broker_url="amqp://rabbit:rabbit-pa55@mq:5672//",
        fulfilment_url=f"https://shop:{FULFIL_PASSWORD}@shop.example/fulfil",
        fulfilment_secret=FULFILMENT_SECRET, metrics_token=METRICS_TOKEN,
    )


def _every_form() -> list[str]:
    """What a secret looks like on the wire or in a log: plain, derived, encoded."""
    password = PROCESSOUT_BASIC_AUTH.partition(":")[2]
    return [
        *(secret for values in TEST_SECRETS.values() for secret in values),
        TEST_SECRETS["yoco"][0].removeprefix("whsec_"),
        PROCESSOUT_BASIC_AUTH, password, base64.b64encode(PROCESSOUT_BASIC_AUTH.encode()).decode(),
        API_TOKEN, PROCESSOUT_PROJECT_SECRET, METRICS_TOKEN,
        base64.b64encode(f"proj_test:{PROCESSOUT_PROJECT_SECRET}".encode()).decode(),
        FULFILMENT_SECRET, FULFILMENT_SECRET.removeprefix("whsec_"),
        DB_PASSWORD, "rabbit-pa55", FULFIL_PASSWORD,
        base64.b64encode(f"shop:{FULFIL_PASSWORD}".encode()).decode(),
    ]


def test_every_configured_secret_and_each_derived_form_is_replaced() -> None:
    redactor = Redactor.from_settings(_settings())
    for form in _every_form():
        text = f"before {form} after"
        assert redactor.text(text) == f"before {REDACTED} after", form


def test_url_credentials_lose_their_password_even_when_never_configured() -> None:
    redactor = Redactor()
    assert redactor.text("HTTP 500 from https://bob:hunter22@h.example/x") == (
        f"HTTP 500 from https://bob:{REDACTED}@h.example/x")
    assert safe_url("postgresql+psycopg://u:p%40ss@db/x") == f"postgresql+psycopg://u:{REDACTED}@db/x"
    assert safe_url("https://h.example/no-credentials") == "https://h.example/no-credentials"


def test_longest_first_so_no_half_of_a_secret_is_left() -> None:
    redactor = Redactor.of(["abcd", "abcdefgh"])
    assert redactor.text("xabcdefghx") == f"x{REDACTED}x"


def test_structures_are_scrubbed_keys_included() -> None:
    redactor = Redactor.from_settings(_settings())
    value = {API_TOKEN: [f"k={API_TOKEN}", 3, {"n": METRICS_TOKEN}]}
    assert json.dumps(redactor(value)).count(REDACTED) == 3


def test_stored_headers_hide_signature_headers_whole_and_scrub_the_rest() -> None:
    redactor = Redactor.from_settings(_settings())
    basic = "Basic " + base64.b64encode(PROCESSOUT_BASIC_AUTH.encode()).decode()
    stored = redactor.headers(
        {"authorization": basic, "x-sig": "abc123", "x-forwarded-for": f"token={API_TOKEN}", "user-agent": "ua/1"},
        secret_names={"x-sig"})
    assert stored == {"authorization": REDACTED, "x-sig": REDACTED, "x-forwarded-for": f"token={REDACTED}",
                      "user-agent": "ua/1"}


def test_the_log_filter_uses_the_same_rules() -> None:
    basic = base64.b64encode(PROCESSOUT_BASIC_AUTH.encode()).decode()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "auth %s from %s", (basic, "postgresql://u:pw@db/x"),
                               None)
    record.detail = PROCESSOUT_BASIC_AUTH.partition(":")[2]
    assert RedactSecrets(Redactor.from_settings(_settings())).filter(record)
    line = JsonFormatter().format(record)
    assert basic not in line and "pw@" not in line and "hook-pass-s3cret" not in line
    assert json.loads(line)["detail"] == REDACTED
