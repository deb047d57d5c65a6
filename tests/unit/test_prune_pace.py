"""The prune's pace: it sleeps between batches so its average stays at PAYHOOKS_PRUNE_RATE."""
from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from cli.main import main as cli
from models.retention import Pace
from models.settings import Settings


class Waits(threading.Event):
    """A stop event that records how long the pace asked to wait, and never sleeps."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.asked.append(timeout or 0.0)
        return self.is_set()


def test_pace_waits_for_the_rate_to_catch_up() -> None:
    waits = Waits()
    pace = Pace(1000, stop=waits)
    pace.after(500)  # 500 events at 1,000/s are due at 0.5 s after the start
    pace.after(500)
    assert waits.asked[0] == pytest.approx(0.5, abs=0.05)
    assert waits.asked[1] == pytest.approx(1.0, abs=0.05)  # nothing was slept: due at 1.0 s now


def test_pace_zero_never_waits() -> None:
    waits = Waits()
    pace = Pace(0, stop=waits)
    pace.after(1_000_000)
    assert waits.asked == []


def test_stopping_ends_the_wait() -> None:
    stop = threading.Event()
    stop.set()
    pace = Pace(1, stop=stop)  # a day's wait at 1 event/s, cut short by the stop
    pace.after(86_400)
    assert pace.done == 86_400


def test_the_default_pace_meets_the_prune_target() -> None:
    assert Settings().prune_rate >= 5000


@pytest.mark.parametrize("value", ["-1", "fast"])
def test_a_bad_rate_is_refused_with_exit_2(value: str) -> None:
    result = CliRunner().invoke(cli, ["prune", "--older-than", "30d", "--rate", value])
    assert result.exit_code == 2
    assert "--rate" in result.output
