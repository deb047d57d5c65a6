"""docker-compose.yml, Dockerfile and .env.example: valid for compose, complete, no secret on by default.

`docker-compose config -q` needs only the compose binary (no Docker engine).
CI installs it (.ci/run); there its absence fails the test, elsewhere it is skipped.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from models.settings import Settings
from testkit.processes import REPO_ROOT
from tests.conftest import tool_or_skip

COMPOSE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
SERVICES = {"postgres", "rabbitmq", "migrate", "receiver", "dispatcher", "worker", "console"}
SETTING_NAMES = sorted(f"PAYHOOKS_{name.upper()}" for name in Settings.model_fields)


def _compose(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PAYHOOKS_", "POSTGRES_", "RABBITMQ_", "COMPOSE_"))}
    compose = tool_or_skip("docker-compose", "apt-get install docker-compose")
    return subprocess.run([compose, "-f", "docker-compose.yml", *args], cwd=cwd, env=env,
                          capture_output=True, check=False, text=True, timeout=120)


def test_compose_file_is_valid_without_a_dot_env(tmp_path: Path) -> None:
    # Given a checkout with no .env (a fresh clone, CI)
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    # When compose validates it, Then it passes
    result = _compose("config", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    services = _compose("config", "--services", cwd=tmp_path)
    assert set(services.stdout.split()) == SERVICES, services.stderr


def test_compose_file_is_valid_with_the_example_settings() -> None:
    result = _compose("--env-file", str(ENV_EXAMPLE), "config", cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert "postgresql://payhooks:change-me-postgres-password@postgres:5432/payhooks" in result.stdout
    assert "amqp://payhooks:change-me-rabbitmq-password@rabbitmq:5672//" in result.stdout


def _top_level_block(text: str, key: str) -> str:
    """The lines under a top-level ``key:`` up to the next top-level key (plain parsing, no PyYAML)."""
    match = re.search(rf"^{re.escape(key)}:[^\n]*\n(.*?)(?=^\S|\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"no top-level {key}:"
    return match.group(1)


def _services(text: str) -> dict[str, str]:
    block = _top_level_block(text, "services")
    parts = re.split(r"^  ([A-Za-z0-9_-]+):[ \t]*\n", block, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_services_and_their_shape() -> None:
    text = COMPOSE.read_text()
    services = _services(text)
    assert set(services) == SERVICES
    assert "image: postgres:15" in services["postgres"] and "pg_isready" in services["postgres"]
    assert "image: rabbitmq:3-management" in services["rabbitmq"] and "healthcheck:" in services["rabbitmq"]
    assert 'command: ["payhooks", "db", "upgrade"]' in services["migrate"]
    assert '"payhooks", "serve"' in services["receiver"] and '"8000:8000"' in services["receiver"]
    assert '"payhooks", "dispatcher"' in services["dispatcher"]
    assert '"payhooks", "worker"' in services["worker"] and re.search(r"replicas:\s*2\b", services["worker"])
    assert '"payhooks", "console"' in services["console"] and '"127.0.0.1:8001:8001"' in services["console"]
    for app in ("receiver", "dispatcher", "worker", "console"):
        assert "<<: *payhooks-app" in services[app]
    assert "condition: service_completed_successfully" in _top_level_block(text, "x-payhooks-app")
    volumes = _top_level_block(text, "volumes")
    assert "postgres-data:" in volumes and "rabbitmq-data:" in volumes


def test_compose_passes_every_setting_through() -> None:
    environment = _top_level_block(COMPOSE.read_text(), "x-payhooks-environment")
    passed = set(re.findall(r"^\s+(PAYHOOKS_[A-Z0-9_]+):", environment, re.MULTILINE))
    assert sorted(set(SETTING_NAMES) - passed) == []


def test_env_example_lists_every_setting_and_turns_no_secret_on() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    listed = {m.group(1) for line in lines if (m := re.match(r"^#?\s*(PAYHOOKS_[A-Z0-9_]+)=", line))}
    assert sorted(set(SETTING_NAMES) - listed) == []
    # Only the compose services' own passwords are on, and only with placeholders
    active = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    assert set(active) == {"POSTGRES_PASSWORD", "RABBITMQ_USER", "RABBITMQ_PASSWORD"}
    assert all(value.startswith("change-me") for name, value in active.items() if "PASSWORD" in name)


def test_dockerfile_builds_a_non_root_image_that_serves() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert re.search(r"^RUN pip install \.", text, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert text.rstrip().splitlines()[-1] == 'CMD ["payhooks", "serve"]'
    ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".git" in ignored


def test_dockerfile_copies_every_package_the_command_imports() -> None:
    # `payhooks` imports the console's command group at start: an image without console/ could not even serve.
    text = (REPO_ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) \./\1$", text, re.MULTILINE))
    product = {"receiver", "workers", "models", "migrations", "console", "providers", "sandbox", "cli"}
    assert {name for name in product if (REPO_ROOT / name / "__init__.py").exists()} <= copied
