"""Console test support: the app on the run's real database, signed-in clients, form tokens."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from models.settings import Settings
from tests.conftest import make_settings

CONSOLE_TOKEN = "console-token-7Hq2mZ"
OPERATOR = "Ada Operator"


@pytest.fixture
def console_settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url, console_token=CONSOLE_TOKEN)


@pytest.fixture
def console_app(console_settings: Settings, engine: Engine):
    from console.app import create_app

    return create_app(console_settings, engine=engine)


def csrf_from(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def sign_in(client: FlaskClient, *, name: str = OPERATOR, token: str = CONSOLE_TOKEN) -> Any:
    page = client.get("/signin").get_data(as_text=True)
    return client.post("/signin", data={"name": name, "token": token, "csrf_token": csrf_from(page)})


@pytest.fixture
def signed_in(console_app) -> Iterator[FlaskClient]:
    client = console_app.test_client()
    response = sign_in(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    yield client


def page_csrf(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return csrf_from(response.get_data(as_text=True))
