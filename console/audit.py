"""Audit: what operators did by hand (replays from the CLI and the console), newest first."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, render_template, request, url_for

from console import forms
from console.pages import PAGE_SIZE, scrubbed
from console.state import reading
from models.queries.actions import list_actions

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.route("")
def index() -> Any:
    actor = (request.args.get("actor") or "").strip() or None
    before = forms.positive_int(request.args.get("before"))
    with reading() as conn:
        rows = list_actions(conn, limit=PAGE_SIZE, actor=actor, before_id=before)
    query = [("actor", actor)] if actor else []
    next_url = (url_for("audit.index") + "?" + urlencode([*query, ("before", str(rows[-1]["id"]))])
                if len(rows) == PAGE_SIZE else None)
    return render_template("audit/list.html", rows=scrubbed(rows), actor=actor or "", next_url=next_url)
