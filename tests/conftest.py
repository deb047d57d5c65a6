"""Shared test settings (known secrets every test signs with), and the unit tests' two outside looks:
a command-line tool that may be missing, and the modules a fresh interpreter loads."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from models.settings import Settings
from testkit.processes import REPO_ROOT

TEST_SECRETS = {
    "smartpay": ["Zq3kT9vWm2LpXr8YcN4bH6sJd1FgQe7UiOa5Kt0E"],
    "senfenico": ["whk_test_0123456789"],
    "yoco": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    "shadhinpay": ["sp_whsec_test"],
}
PROCESSOUT_BASIC_AUTH = "hookuser:hook-pass-s3cret"
API_TOKEN = "test-api-token-0123456789"
PROCESSOUT_PROJECT_SECRET = "proj-secret-s3cret"
TEST_SETTINGS: dict[str, object] = {
    **{f"{provider}_secrets": secrets for provider, secrets in TEST_SECRETS.items()},
    "processout_basic_auth": PROCESSOUT_BASIC_AUTH,
    "processout_project_id": "proj_test",
    "processout_project_secret": PROCESSOUT_PROJECT_SECRET,
    "api_token": API_TOKEN,
}
SECRET_ENV = {f"PAYHOOKS_{name.upper()}": value[0] if isinstance(value, list) else value
              for name, value in TEST_SETTINGS.items()}
"""The test secrets as the environment of a payhooks process."""


def make_settings(**overrides: object) -> Settings:
    """Settings built by the test, never read from the developer's environment files."""
    return Settings(_env_file=None, **{**TEST_SETTINGS, **overrides})  # type: ignore[call-arg]


@pytest.fixture
def settings() -> Settings:
    return make_settings()


def tool_or_skip(name: str, install: str) -> str:
    """The path of the tool ``name``; without it the test is skipped, or fails under CI (.ci/run installs it)."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed; .ci/run installs it ({install})")
        pytest.skip(f"{name} is not installed ({install})")
    return found


def modules_after(code: str, *, env: dict[str, str] | None = None) -> set[str]:
    """Every module a fresh interpreter holds after running ``code`` (this one has imported everything)."""
    script = textwrap.dedent(code) + "\nimport sys\nprint(' '.join(sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())
