"""Retry schedules: a small frozen value and a pure function of the attempt number.

A schedule is the list of delays after each failed attempt (``5s,5m,30m,2h``).
Each delay gets a jitter of ±``jitter`` (10 %) so a burst of failures does not
come back as a burst; after the last delay the event is dead.
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.settings import Settings
from providers.registry import PROVIDERS

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ScheduleError(ValueError):
    """A retry schedule setting is not a comma-separated list of durations like 5s,5m,2h."""


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"5m"``, ``"1h30m"`` → timedelta."""
    text = text.strip()
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ScheduleError(f"not a duration: {text!r}")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


@dataclass(frozen=True)
class RetrySchedule:
    delays: tuple[timedelta, ...]
    jitter: float = 0.1

    @classmethod
    def parse(cls, text: str, *, jitter: float = 0.1) -> RetrySchedule:
        delays = tuple(parse_duration(part) for part in text.split(",") if part.strip())
        if not delays:
            raise ScheduleError("a retry schedule needs at least one delay")
        return cls(delays=delays, jitter=jitter)

    def delay_for(self, failed_attempts: int, *, rand: Callable[[], float] = random.random) -> timedelta | None:
        """The wait after the ``failed_attempts``-th failure, or None when the schedule is exhausted."""
        if failed_attempts < 1 or failed_attempts > len(self.delays):
            return None
        factor = 1 + self.jitter * (2 * rand() - 1)
        return self.delays[failed_attempts - 1] * factor

    def next_attempt_at(
        self, failed_attempts: int, *, now: datetime, rand: Callable[[], float] = random.random
    ) -> datetime | None:
        delay = self.delay_for(failed_attempts, rand=rand)
        return None if delay is None else now + delay


def schedules_from(settings: Settings) -> dict[str, RetrySchedule]:
    """One schedule per provider, from ``PAYHOOKS_RETRY_SCHEDULE_<PROVIDER>``."""
    return {
        provider: RetrySchedule.parse(getattr(settings, f"retry_schedule_{provider}"))
        for provider in PROVIDERS
    }
