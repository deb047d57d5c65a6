"""Replay by filter: what a filter selects, counted by status with a sample; Confirm; progress.

The same rules as `payhooks replay`: the status filter defaults to dead;
dead, ignored and retrying events are re-armed, succeeded ones only when
forced, events being worked on never; batches of 500, one audit row that
counts what each batch committed.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from console import forms
from console.auth import signed_in_name
from console.pages import scrubbed
from console.state import reading, state
from models import replays
from models.queries.actions import action as read_action
from models.queries.events import list_events, select_events
from models.tables import EVENT_STATUSES
from providers.registry import PROVIDERS

bp = Blueprint("replay", __name__, url_prefix="/replay")

SAMPLE_SIZE = 10
DEFAULT_STATUSES = ("dead",)


def _plan(values) -> tuple[forms.Parsed, replays.Plan | None, list[dict[str, Any]], bool]:
    parsed = forms.event_filter(values, default_statuses=DEFAULT_STATUSES)
    force = values.get("force") == "1"
    if parsed.errors:
        return parsed, None, [], force
    with reading() as conn:
        plan = replays.Plan.of("events", select_events(conn, parsed.filter), force=force)
        sample = list_events(conn, parsed.filter, limit=SAMPLE_SIZE)
    return parsed, plan, sample, force


@bp.route("")
def preview() -> Any:
    """The filter form; with ``preview=1``, what Confirm would replay (nothing changes yet)."""
    asked = request.args.get("preview") == "1"
    if not asked:
        parsed = forms.event_filter(request.args, default_statuses=DEFAULT_STATUSES)
        return render_template("replay/preview.html", form=parsed.values, errors=parsed.errors, plan=None,
                               sample=[], force=False, statuses=EVENT_STATUSES, providers=PROVIDERS, pairs=[])
    parsed, plan, sample, force = _plan(request.args)
    page = render_template("replay/preview.html", form=parsed.values, errors=parsed.errors, plan=plan,
                           sample=scrubbed(sample), force=force, statuses=EVENT_STATUSES, providers=PROVIDERS,
                           pairs=forms.query_pairs(parsed.values))
    return page, 400 if parsed.errors else 200


@bp.route("", methods=["POST"])
def confirm() -> Response:
    """Confirm: select again (the rows may have moved since the preview), start the batches, show progress."""
    parsed, plan, _, force = _plan(request.form)
    if parsed.errors or plan is None:
        abort(400, "; ".join(parsed.errors))
    if not plan.replay:
        return redirect(url_for("replay.preview", preview="1", **_args(parsed, force)))
    selection: dict[str, object] = {**parsed.filter.as_json(), **({"force": True} if force else {}),
                                    "via": "console"}
    engine = state().engine
    action_id = replays.start(engine, plan=plan, actor=signed_in_name(), selection=selection)
    state().jobs.start(engine, plan=plan, action_id=action_id, actor=signed_in_name(), force=force)
    return redirect(url_for("replay.progress", action_id=action_id))


def _args(parsed: forms.Parsed, force: bool) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for name, value in forms.query_pairs(parsed.values):
        args.setdefault(name, []).append(value)
    if force:
        args["force"] = "1"
    return args


@bp.route("/<int:action_id>")
def progress(action_id: int) -> str:
    with reading() as conn:
        row = read_action(conn, action_id)
    if row is None or row["action"] != "replay":
        abort(404, f"No replay {action_id}.")
    job = state().jobs.get(action_id)
    completed = (row["detail"] or "").startswith("replayed ")
    finished = completed or (job.finished if job else True)
    # No thread here and no final line: it was started elsewhere (the CLI) or the console stopped mid-way.
    interrupted = job is None and not completed
    return render_template("replay/progress.html", a=scrubbed(row), job=job, finished=finished,
                           interrupted=interrupted)
