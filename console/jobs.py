"""Replays the console started, running in a thread of the console process, with their progress.

The audit row (``operator_actions.count``) is the durable record of progress:
each batch adds to it in the transaction that re-armed the rows. This
registry only adds what a page cannot read from the row: how many were
selected and whether the thread has finished.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from models import replays

log = logging.getLogger("payhooks.console")


@dataclass
class ReplayJob:
    action_id: int
    selected: int
    processed: int = 0
    rearmed: int = 0
    finished: bool = False
    error: str | None = None


class ReplayJobs:
    def __init__(self) -> None:
        self._jobs: dict[int, ReplayJob] = {}
        self._lock = threading.Lock()

    def get(self, action_id: int) -> ReplayJob | None:
        with self._lock:
            return self._jobs.get(action_id)

    def start(self, engine: Engine, *, plan: replays.Plan, action_id: int, actor: str, force: bool,
              batch_size: int = replays.DEFAULT_BATCH_SIZE) -> ReplayJob:
        job = ReplayJob(action_id=action_id, selected=len(plan.replay))
        with self._lock:
            self._jobs[action_id] = job

        def progress(processed: int, rearmed: int) -> None:
            job.processed, job.rearmed = processed, rearmed

        def work() -> None:
            try:
                job.rearmed = replays.run(engine, plan=plan, action_id=action_id, actor=actor, force=force,
                                          batch_size=batch_size, on_batch=progress)
            except Exception as exc:  # the audit row keeps what was committed; the page says it stopped
                job.error = type(exc).__name__
                log.exception("replay stopped", extra={"action": "console.replay_failed",
                                                       "operator_action_id": action_id})
            finally:
                job.finished = True

        threading.Thread(target=work, name=f"replay-{action_id}", daemon=True).start()
        return job
