"""Retry schedules, table-tested."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from models.retry import RetrySchedule, ScheduleError, parse_duration, schedules_from
from tests.conftest import make_settings

S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5s", 5 * S), ("5m", 5 * M), ("2h", 2 * H), ("1d", 24 * H), ("1h30m", 90 * M),
     ("1710s", 28 * M + 30 * S), ("250ms", timedelta(milliseconds=250)), (" 30s ", 30 * S)],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "five", "5x", "-5s", "5s5", "s"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_duration(text)


def test_an_empty_schedule_is_rejected() -> None:
    with pytest.raises(ScheduleError):
        RetrySchedule.parse(" , ")


YOCO = RetrySchedule.parse("5s,5m,30m,2h,5h,10h,10h")


@pytest.mark.parametrize(
    ("failed", "rand", "expected"),
    [
        (1, 0.5, 5 * S),  # no jitter at the midpoint
        (1, 0.0, 4.5 * S),  # -10 %
        (1, 1.0, 5.5 * S),  # +10 %
        (2, 0.5, 5 * M),
        (4, 0.5, 2 * H),
        (7, 0.5, 10 * H),
        (8, 0.5, None),  # exhausted: dead
        (0, 0.5, None),
    ],
)
def test_delay_for(failed: int, rand: float, expected: timedelta | None) -> None:
    assert YOCO.delay_for(failed, rand=lambda: rand) == expected


def test_jitter_stays_within_ten_percent_and_varies() -> None:
    delays = {YOCO.delay_for(3) for _ in range(200)}
    assert all(27 * M <= d <= 33 * M for d in delays)
    assert len(delays) > 50


def test_next_attempt_at_adds_the_delay() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert YOCO.next_attempt_at(2, now=now, rand=lambda: 0.5) == now + 5 * M
    assert YOCO.next_attempt_at(8, now=now) is None


def test_default_schedules_follow_the_providers() -> None:
    schedules = schedules_from(make_settings())
    assert schedules["yoco"].delays == (5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H)
    assert schedules["smartpay"] == schedules["processout"] == schedules["yoco"]
    senfenico = schedules["senfenico"].delays
    assert senfenico[:6] == (30 * S, M, 2 * M, 4 * M, 8 * M, 16 * M)
    assert sum(senfenico, timedelta()) == H  # "resent for up to one hour"
    assert schedules["shadhinpay"].delays == (M, 5 * M, 15 * M, H, 6 * H, 24 * H)


def test_a_schedule_setting_overrides_the_default() -> None:
    schedules = schedules_from(make_settings(retry_schedule_yoco="1s,2s"))
    assert schedules["yoco"].delays == (S, 2 * S)
