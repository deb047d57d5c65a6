"""Orders: newest first, or one by reference with its transitions, events and deliveries."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, redirect, render_template, request, url_for

from console import forms
from console.pages import PAGE_SIZE, scrubbed
from console.state import reading
from models.queries.orders import list_orders, order_record
from models.schema import ORDER_STATUSES

bp = Blueprint("orders", __name__, url_prefix="/orders")


@bp.route("")
def index() -> Any:
    reference = (request.args.get("reference") or "").strip()
    if reference:
        return redirect(url_for("orders.show", reference=reference))
    status = request.args.get("status") or ""
    if status and status not in ORDER_STATUSES:
        abort(400, f"Status: unknown {status}")
    before = forms.positive_int(request.args.get("before"))
    with reading() as conn:
        rows = list_orders(conn, limit=PAGE_SIZE, statuses=(status,) if status else (), before_id=before)
    query = [("status", status)] if status else []
    next_url = (url_for("orders.index") + "?" + urlencode([*query, ("before", str(rows[-1]["id"]))])
                if len(rows) == PAGE_SIZE else None)
    return render_template("orders/list.html", rows=scrubbed(rows), status=status, statuses=ORDER_STATUSES,
                           next_url=next_url)


@bp.route("/<path:reference>")
def show(reference: str) -> str:
    with reading() as conn:
        record = order_record(conn, reference)
    if record is None:
        abort(404, f"No order with reference {reference!r}.")
    return render_template("orders/show.html", o=scrubbed(record))
