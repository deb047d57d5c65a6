"""What a receiver worker process does when it ends, under granian or gunicorn.

Its own module so that both servers (:mod:`receiver.server`,
:mod:`receiver.server_gunicorn`) import it and neither imports the other back.
"""
from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
from typing import Any

from flask import Flask

from receiver.state import EXTENSION


def close_at_exit(app: Flask) -> None:
    """When this worker process ends: store what its writer holds, close its connections, retire its metrics."""
    pid = os.getpid()

    def _close() -> None:
        if os.getpid() != pid:  # a forked child inherits the registration, not the app
            return
        app.extensions[EXTENSION].close()
        from models.metrics import mark_process_dead

        mark_process_dead(pid)
        logging.getLogger("payhooks.receiver").info(
            "receiver process stopped", extra={"action": "receiver.stopped", "pid": pid})

    once = _Once(_close)
    atexit.register(once)  # a gunicorn worker leaves through sys.exit
    multiprocessing.util.Finalize(None, once, exitpriority=100)  # a granian worker (multiprocessing) skips atexit


class _Once:
    def __init__(self, fn: Any) -> None:
        self._fn = fn
        self._done = False

    def __call__(self) -> None:
        if not self._done:
            self._done = True
            self._fn()
