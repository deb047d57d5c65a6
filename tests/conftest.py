"""Shared test settings: known secrets every test signs with."""
from __future__ import annotations

import pytest

from models.settings import Settings

TEST_SECRETS = {
    "smartpay": ["Zq3kT9vWm2LpXr8YcN4bH6sJd1FgQe7UiOa5Kt0E"],
    "senfenico": ["whk_test_0123456789"],
    "yoco": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    "shadhinpay": ["sp_whsec_test"],
}
PROCESSOUT_BASIC_AUTH = "hookuser:hook-pass-s3cret"
API_TOKEN = "test-api-token-0123456789"
PROCESSOUT_PROJECT_SECRET = "proj-secret-s3cret"
SECRET_ENV = {
    "PAYHOOKS_SMARTPAY_SECRETS": TEST_SECRETS["smartpay"][0],
    "PAYHOOKS_SENFENICO_SECRETS": TEST_SECRETS["senfenico"][0],
    "PAYHOOKS_YOCO_SECRETS": TEST_SECRETS["yoco"][0],
    "PAYHOOKS_SHADHINPAY_SECRETS": TEST_SECRETS["shadhinpay"][0],
    "PAYHOOKS_PROCESSOUT_BASIC_AUTH": PROCESSOUT_BASIC_AUTH,
    "PAYHOOKS_PROCESSOUT_PROJECT_ID": "proj_test",
    "PAYHOOKS_PROCESSOUT_PROJECT_SECRET": PROCESSOUT_PROJECT_SECRET,
    "PAYHOOKS_API_TOKEN": API_TOKEN,
}
"""The test secrets as the environment of a payhooks process."""


def make_settings(**overrides: object) -> Settings:
    """Settings built by the test, never read from the developer's environment files."""
    values: dict[str, object] = {
        "smartpay_secrets": TEST_SECRETS["smartpay"],
        "senfenico_secrets": TEST_SECRETS["senfenico"],
        "yoco_secrets": TEST_SECRETS["yoco"],
        "shadhinpay_secrets": TEST_SECRETS["shadhinpay"],
        "processout_basic_auth": PROCESSOUT_BASIC_AUTH,
        "processout_project_id": "proj_test",
        "processout_project_secret": PROCESSOUT_PROJECT_SECRET,
        "api_token": API_TOKEN,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings() -> Settings:
    return make_settings()
