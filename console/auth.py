"""Sign-in, sign-out, and the guard every request passes: session, CSRF, rate limit.

The token is ``PAYHOOKS_CONSOLE_TOKEN``; the name is who the audit rows name.
The session is Flask's signed cookie (HttpOnly, SameSite=Strict). Every form
that changes anything carries the session's CSRF token; a POST without the
right one is refused with 400. A signed-out visitor is sent to sign-in (an
HTML request) or answered 401 (anything else).
"""
from __future__ import annotations

import hmac
import logging
import re
import secrets
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from console.state import state

bp = Blueprint("auth", __name__)
log = logging.getLogger("payhooks.console")

PUBLIC_ENDPOINTS = {"auth.signin", "static"}
NAME_RE = re.compile(r"^[\w .@+-]{1,64}$")


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def template_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "signed_in_name": session.get("name")}


def _wants_html() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "text/html"


def guard() -> Response | tuple[Any, int] | None:
    """Before every request: signed in (unless public), and a valid CSRF token on every POST."""
    if request.endpoint not in PUBLIC_ENDPOINTS and not session.get("name"):
        if request.method == "GET" and _wants_html():
            return redirect(url_for("auth.signin", next=request.full_path.rstrip("?")))
        return {"error": "sign in first"}, 401
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf", "")
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            log.warning("refused a form without a valid CSRF token",
                        extra={"action": "console.csrf_refused", "path": request.path})
            abort(400, "This form has expired or did not come from the console. Reload the page and try again.")
    return None


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("overview.index")


def signed_in_name() -> str:
    return session["name"]


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    error = None
    name = ""
    if request.method == "POST":
        address = request.remote_addr or "?"
        limiter = state().limiter
        wait_seconds = limiter.retry_after_seconds(address)
        if wait_seconds:
            log.warning("sign-in rate limited", extra={"action": "console.signin_limited", "address": address})
            page = render_template("signin.html", error=f"Too many attempts. Try again in {wait_seconds} s.",
                                   name="", next=request.form.get("next", ""))
            return page, 429, {"Retry-After": str(wait_seconds)}
        name = request.form.get("name", "").strip()
        token = request.form.get("token", "")
        expected = state().settings.console_token.get_secret_value()
        if not NAME_RE.match(name):
            error = "Name: 1 to 64 letters, digits, spaces or . @ + - _"
            limiter.failed(address)
        elif not hmac.compare_digest(token.encode(), expected.encode()):
            error = "That token is not the console's token."
            limiter.failed(address)
            log.warning("sign-in refused", extra={"action": "console.signin_refused", "address": address,
                                                  "operator": name})
        else:
            session.clear()
            session.permanent = True
            session["name"] = name
            session["csrf"] = secrets.token_urlsafe(32)
            log.info("signed in", extra={"action": "console.signin", "address": address, "operator": name})
            return redirect(_safe_next(request.form.get("next")))
        return render_template("signin.html", error=error, name=name, next=request.form.get("next", "")), 401
    return render_template("signin.html", error=None, name="", next=request.args.get("next", ""))


@bp.route("/signout", methods=["POST"])
def signout() -> Response:
    log.info("signed out", extra={"action": "console.signout", "operator": session.get("name")})
    session.clear()
    return redirect(url_for("auth.signin"))
