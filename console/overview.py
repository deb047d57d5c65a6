"""Overview: events by status and provider, the last 24 hours, what is late, each provider's last event."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from console.pages import scrubbed
from console.state import reading
from models.queries.overview import LAST_RECEIVED_WINDOW
from models.queries.overview import overview as read_overview
from models.tables import EVENT_STATUSES
from providers.registry import PROVIDERS

bp = Blueprint("overview", __name__)

CHART_WIDTH = 720
CHART_HEIGHT = 160


def chart(hourly: list[dict[str, Any]]) -> dict[str, Any]:
    """Bar geometry for the inline SVG: per hour, received stacked as handled, dead and the rest."""
    peak = max((h["received"] for h in hourly), default=0) or 1
    slot = CHART_WIDTH / max(len(hourly), 1)
    bars = []
    for index, hour in enumerate(hourly):
        scale = CHART_HEIGHT / peak
        handled, dead = hour["handled"] * scale, hour["dead"] * scale
        other = (hour["received"] - hour["handled"] - hour["dead"]) * scale
        x = index * slot + 2
        bars.append({**hour, "x": x, "width": slot - 4,
                     "handled_y": CHART_HEIGHT - handled, "handled_h": handled,
                     "dead_y": CHART_HEIGHT - handled - dead, "dead_h": dead,
                     "other_y": CHART_HEIGHT - handled - dead - other, "other_h": other})
    return {"bars": bars, "peak": peak, "width": CHART_WIDTH, "height": CHART_HEIGHT}


@bp.route("/")
def index() -> str:
    with reading() as conn:
        numbers = read_overview(conn)
    present = [s for s in EVENT_STATUSES if numbers["by_status"].get(s)]
    oldest = numbers["oldest_pending_at"]
    oldest_age = None if oldest is None else max(0.0, (numbers["at"] - oldest).total_seconds())
    return render_template("overview.html", n=scrubbed(numbers), statuses=present, providers=PROVIDERS,
                           chart=chart(numbers["hourly"]), oldest_pending_age=oldest_age,
                           window=f"{LAST_RECEIVED_WINDOW:,}")
