"""Sign-in attempts per client address, in a sliding window: past the limit, a 429 until it slides."""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class SignInLimiter:
    """``attempts`` failed sign-ins per address per ``window_seconds``; then refuse until the oldest ages out.

    Kept in the process: the console runs as one process (with threads), so
    every request sees the same counts.
    """

    def __init__(self, *, attempts: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window_seconds = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        return failures

    def retry_after_seconds(self, address: str) -> int:
        """0 when ``address`` may try now, else whole seconds until it may."""
        with self._lock:
            now = self.clock()
            failures = self._recent(address, now)
            if len(failures) < self.attempts:
                return 0
            return max(1, int(failures[0] + self.window_seconds - now + 0.999))

    def failed(self, address: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent(address, now).append(now)
            if len(self._failures) > 10_000:  # bound the memory an address-spraying client can take
                for stale in [a for a, f in self._failures.items() if not f]:
                    del self._failures[stale]
