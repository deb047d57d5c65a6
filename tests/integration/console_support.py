"""Console test support: signing in, form tokens (the app and signed-in clients are conftest's fixtures)."""
from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

CONSOLE_TOKEN = "console-token-7Hq2mZ"
OPERATOR = "Ada Operator"


def csrf_from(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def sign_in(client: FlaskClient, *, name: str = OPERATOR, token: str = CONSOLE_TOKEN, **form: str) -> Any:
    """The sign-in form posted with its CSRF token (``form`` adds fields, such as ``next``): the answer."""
    page = client.get("/signin").get_data(as_text=True)
    return client.post("/signin", data={"name": name, "token": token, **form, "csrf_token": csrf_from(page)})


def page_csrf(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return csrf_from(response.get_data(as_text=True))
