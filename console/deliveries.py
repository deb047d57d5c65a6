"""Deliveries: the list (filters, keyset pages), one delivery with every try, and replaying it."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from console import forms
from console.auth import signed_in_name
from console.pages import PAGE_SIZE, scrubbed
from console.state import reading, state
from models import replays
from models.orders import DELIVERY_STATUSES
from models.queries.deliveries import delivery_record, list_deliveries
from models.queries.events import statuses_of

bp = Blueprint("deliveries", __name__, url_prefix="/deliveries")


@bp.route("")
def index() -> Any:
    parsed = forms.delivery_filter(request.args)
    before = forms.positive_int(request.args.get("before"))
    rows: list[dict[str, Any]] = []
    if not parsed.errors:
        with reading() as conn:
            rows = list_deliveries(conn, parsed.filter, limit=PAGE_SIZE, before_id=before)
    pairs = forms.query_pairs(parsed.values)
    next_url = (url_for("deliveries.index") + "?" + urlencode([*pairs, ("before", str(rows[-1]["id"]))])
                if len(rows) == PAGE_SIZE else None)
    page = render_template("deliveries/list.html", rows=scrubbed(rows), form=parsed.values, errors=parsed.errors,
                           statuses=DELIVERY_STATUSES, next_url=next_url,
                           first_url=url_for("deliveries.index") + "?" + urlencode(pairs) if before else None)
    return page, 400 if parsed.errors else 200


def _record(delivery_id: int) -> dict[str, Any]:
    with reading() as conn:
        record = delivery_record(conn, delivery_id)
    if record is None:
        abort(404, f"No delivery {delivery_id}.")
    return scrubbed(record)


@bp.route("/<int:delivery_id>")
def show(delivery_id: int) -> str:
    return render_template("deliveries/show.html", d=_record(delivery_id))


@bp.route("/<int:delivery_id>/replay", methods=["GET", "POST"])
def replay(delivery_id: int) -> Any:
    """GET: what a replay would do, with Confirm. POST: `payhooks replay --deliveries ID`."""
    force = request.values.get("force") == "1"
    with reading() as conn:
        found = statuses_of(conn, table="deliveries", ids=[delivery_id])
    if not found:
        abort(404, f"No delivery {delivery_id}.")
    plan = replays.Plan.of("deliveries", found, force=force, requested=[delivery_id])
    if request.method == "GET":
        return render_template("deliveries/replay.html", d=_record(delivery_id), plan=plan, force=force)
    return _confirm(plan, delivery_id=delivery_id, force=force)


def _confirm(plan: replays.Plan, *, delivery_id: int, force: bool) -> Response:
    target = url_for("deliveries.show", delivery_id=delivery_id)
    if not plan.replay:
        flash(f"Nothing replayed: {plan.summary()}.", "error")
        return redirect(target)
    engine = state().engine
    selection: dict[str, object] = {"ids": [delivery_id], **({"force": True} if force else {}), "via": "console"}
    action_id = replays.start(engine, plan=plan, actor=signed_in_name(), selection=selection)
    done = replays.run(engine, plan=plan, action_id=action_id, actor=signed_in_name(), force=force)
    flash(f"Replayed: back to pending, due now (operator action {action_id})." if done else
          f"Not replayed: it changed state since this page was shown (operator action {action_id}).",
          "ok" if done else "error")
    return redirect(target)
