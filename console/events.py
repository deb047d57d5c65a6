"""Events: the filtered list (keyset pages), one event's whole story, and replaying it."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from psycopg.errors import QueryCanceled
from sqlalchemy.exc import OperationalError
from werkzeug.wrappers import Response

from console import forms
from console.auth import signed_in_name
from console.pages import PAGE_SIZE, body_text, scrubbed
from console.state import reading, state
from models import replays
from models.queries.events import cursor_after, event_record, list_events, statuses_of
from models.tables import EVENT_STATUSES
from providers.registry import PROVIDERS

bp = Blueprint("events", __name__, url_prefix="/events")

LIST_TIMEOUT_MS = 2000
"""A filter that matches almost nothing and names no indexed column walks a whole index; stop it early."""
TOO_SLOW = ("This filter matches too few events to find quickly. Add a Status, a Provider or a time range "
            "(Received from/until) to narrow where it looks.")


@bp.route("")
def index() -> Any:
    parsed = forms.event_filter(request.args)
    after_id = forms.positive_int(request.args.get("after"))
    rows: list[dict[str, Any]] = []
    if not parsed.errors:
        try:
            with reading() as conn:
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(LIST_TIMEOUT_MS)}")
                after = cursor_after(conn, after_id) if after_id else None
                rows = list_events(conn, parsed.filter, limit=PAGE_SIZE, after=after)
        except OperationalError as exc:
            if not isinstance(exc.orig, QueryCanceled):
                raise
            parsed.errors.append(TOO_SLOW)
    pairs = forms.query_pairs(parsed.values)
    next_url = (url_for("events.index") + "?" + _encode([*pairs, ("after", str(rows[-1]["id"]))])
                if len(rows) == PAGE_SIZE else None)
    page = render_template("events/list.html", rows=scrubbed(rows), form=parsed.values, errors=parsed.errors,
                           statuses=EVENT_STATUSES, providers=PROVIDERS, next_url=next_url,
                           first_url=url_for("events.index") + "?" + _encode(pairs) if after_id else None)
    return page, 400 if parsed.errors else 200


def _encode(pairs: list[tuple[str, str]]) -> str:
    from urllib.parse import urlencode

    return urlencode(pairs)


def _record(event_id: int) -> dict[str, Any]:
    with reading() as conn:
        record = event_record(conn, event_id)
    if record is None:
        abort(404, f"No event {event_id}.")
    record["body_text"], record["body_format"] = body_text(record.pop("raw_body"))
    record["timeline"] = timeline(record)
    return scrubbed(record)


def timeline(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One story in time order: received, each attempt (error, traceback), each change to the order,
    each replay, and each try of each delivery it wrote (SMTP reply or HTTP status)."""
    verified = f"secret #{record['secret_index']}" if record["secret_index"] is not None else "no secret"
    entries: list[dict[str, Any]] = [{"at": record["received_at"], "kind": "received", "what": "received",
                                      "detail": f"verified with {verified} ({record['verify_method'] or 'n/a'})"}]
    entries += [{"at": a["finished_at"], "kind": "attempt", "what": f"attempt {a['number']}: {a['outcome']}",
                 "detail": a["error"], "traceback": a["traceback"], "status": a["outcome"]}
                for a in record["attempts_detail"]]
    entries += [{"at": h["at"], "kind": "other", "what": h["what"], "detail": h["detail"]}
                for h in record["history"] if h["what"] != "received" and not h["what"].startswith("attempt ")]
    for d in record["deliveries"]:
        entries += [{"at": t["finished_at"], "kind": "delivery", "delivery_id": d["id"], "status": t["outcome"],
                     "what": f"delivery {d['id']} ({d['kind']}) try {t['number']}: {t['outcome']}",
                     "detail": " · ".join(str(part) for part in (t["response_code"], t["error"] or t["response"])
                                          if part not in (None, ""))}
                    for t in d["tries"]]
    return sorted(entries, key=lambda entry: entry["at"])


@bp.route("/<int:event_id>")
def show(event_id: int) -> str:
    return render_template("events/show.html", e=_record(event_id))


@bp.route("/<int:event_id>/replay", methods=["GET", "POST"])
def replay(event_id: int) -> Any:
    """GET: what a replay would do, with a Confirm button. POST (Confirm): do it, like `payhooks replay ID`."""
    force = request.values.get("force") == "1"
    with reading() as conn:
        found = statuses_of(conn, table="webhook_events", ids=[event_id])
    if not found:
        abort(404, f"No event {event_id}.")
    plan = replays.Plan.of("events", found, force=force, requested=[event_id])
    if request.method == "GET":
        return render_template("events/replay.html", e=_record(event_id), plan=plan, force=force,
                               current=found[event_id])
    return _confirm_single(plan, target_url=url_for("events.show", event_id=event_id), ids=[event_id],
                           force=force)


def _confirm_single(plan: replays.Plan, *, target_url: str, ids: list[int], force: bool) -> Response:
    if not plan.replay:
        flash(f"Nothing replayed: {plan.summary()}.", "error")
        return redirect(target_url)
    selection: dict[str, object] = {"ids": ids, **({"force": True} if force else {}), "via": "console"}
    engine = state().engine
    action_id = replays.start(engine, plan=plan, actor=signed_in_name(), selection=selection)
    done = replays.run(engine, plan=plan, action_id=action_id, actor=signed_in_name(), force=force)
    if done:
        flash(f"Replayed: back to pending, due now (operator action {action_id}).", "ok")
    else:
        flash(f"Not replayed: it changed state since this page was shown (operator action {action_id}).",
              "error")
    return redirect(target_url)
