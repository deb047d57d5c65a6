"""The sign-in limiter: a sliding window of failures per address, on an injected clock."""
from __future__ import annotations

from console.limits import SignInLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_past_the_limit_wait_for_the_window_to_slide() -> None:
    clock = Clock()
    limiter = SignInLimiter(attempts=3, window_seconds=60, clock=clock)
    for step in range(3):
        assert limiter.retry_after_seconds("10.0.0.1") == 0
        limiter.failed("10.0.0.1")
        clock.now += 10
    # three failures at t=1000, 1010, 1020; now t=1030: the first ages out at 1060
    assert limiter.retry_after_seconds("10.0.0.1") == 30
    assert limiter.retry_after_seconds("10.0.0.2") == 0  # another address is not limited
    clock.now = 1059.5
    assert limiter.retry_after_seconds("10.0.0.1") == 1
    clock.now = 1060.0
    assert limiter.retry_after_seconds("10.0.0.1") == 0
    limiter.failed("10.0.0.1")  # 1010, 1020, 1060: full again
    assert limiter.retry_after_seconds("10.0.0.1") == 10
