"""Replays, shared by `payhooks replay` and the console: what a selection would do, then doing it.

Rows go back to ``pending``, due now, through the guarded transitions
(:func:`models.transitions.replay`, :func:`models.deliveries.replay`), in
batches, one transaction each, so a replay of 100k rows never holds long
locks. One ``operator_actions`` row is written before the first batch and
each batch adds its count in its own transaction, so the audit row always
counts exactly what was committed, even when the replay is interrupted.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from models import deliveries, transitions
from models.queries.actions import add_to_action, start_action

log = logging.getLogger("payhooks.ops")

REPLAYABLE = {"events": ("dead", "ignored", "retrying"), "deliveries": ("dead", "skipped", "retrying")}
"""What the transitions re-arm without force (succeeded needs it; rows being worked on never move)."""
DEFAULT_BATCH_SIZE = 500
SHOWN_IDS = 20


@dataclass
class Plan:
    """What a replay would do, sorted by what the current status allows."""

    target: str
    replay: list[int] = field(default_factory=list)
    by_status: Counter[str] = field(default_factory=Counter)
    succeeded_skipped: list[int] = field(default_factory=list)
    busy_skipped: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, target: str, statuses: dict[int, str], *, force: bool,
           requested: list[int] | None = None) -> Plan:
        plan = cls(target=target)
        allowed = REPLAYABLE[target] + (("succeeded",) if force else ())
        for row_id, status in statuses.items():
            if status in allowed:
                plan.replay.append(row_id)
                plan.by_status[status] += 1
            elif status == "succeeded":
                plan.succeeded_skipped.append(row_id)
            else:
                plan.busy_skipped.append(row_id)
        plan.missing = sorted(set(requested or ()) - set(statuses))
        return plan

    @property
    def singular(self) -> str:
        return "delivery" if self.target == "deliveries" else "event"

    def summary(self) -> str:
        count = len(self.replay)
        parts = [f"{count} {self.target if count != 1 else self.singular} to replay"]
        if self.by_status:
            parts[0] += " (" + ", ".join(f"{s} {n}" for s, n in sorted(self.by_status.items())) + ")"
        if self.succeeded_skipped:
            parts.append(f"skipped {len(self.succeeded_skipped)} succeeded (replaying them needs --force)")
        if self.busy_skipped:
            parts.append(f"skipped {len(self.busy_skipped)} pending or in progress")
        if self.missing:
            parts.append(f"not found: {', '.join(map(str, self.missing[:SHOWN_IDS]))}")
        return "; ".join(parts)


def start(engine: Engine, *, plan: Plan, actor: str, selection: dict[str, object]) -> int:
    """The audit row of a replay about to run (count 0); returns its id."""
    with engine.begin() as conn:
        return start_action(conn, actor=actor, action="replay", target=plan.target, filter=selection,
                            detail=f"started: {plan.summary()}")


def run(engine: Engine, *, plan: Plan, action_id: int, actor: str, force: bool,
        batch_size: int = DEFAULT_BATCH_SIZE, on_batch: Callable[[int, int], None] | None = None) -> int:
    """Re-arm ``plan.replay`` in batches; ``on_batch(selected_so_far, rearmed_so_far)`` after each.

    Returns how many rows were re-armed (rows that changed state since they
    were selected are left alone).
    """
    replay_rows = deliveries.replay if plan.target == "deliveries" else transitions.replay
    done = 0
    for start_at in range(0, len(plan.replay), batch_size):
        batch = plan.replay[start_at:start_at + batch_size]
        with engine.begin() as conn:
            rearmed = replay_rows(conn, batch, include_succeeded=force)
            add_to_action(conn, action_id, count=len(rearmed))
        done += len(rearmed)
        if on_batch is not None:
            on_batch(start_at + len(batch), done)
    with engine.begin() as conn:
        add_to_action(conn, action_id, count=0,
                      detail=f"replayed {done} of {len(plan.replay)} selected; {plan.summary()}")
    log.info("replayed %s %s", done, plan.target,
             extra={"action": "operator.replay", "target": plan.target, "count": done, "actor": actor,
                    "operator_action_id": action_id, "force": force})
    return done
