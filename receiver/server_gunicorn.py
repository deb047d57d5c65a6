"""`payhooks serve --server gunicorn`: the receiver under gunicorn's gthread worker (the server before granian)."""
from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication

from models.settings import Settings
from receiver.closing import close_at_exit


def default_options(*, bind: str, workers: int | None = None, threads: int | None = None) -> dict[str, Any]:
    """Threaded workers: the request path waits on one commit, not on the CPU."""
    cpus = os.cpu_count() or 1
    return {
        "bind": bind,
        "workers": workers or cpus * 2 + 1,
        "worker_class": "gthread",
        "threads": threads or 4,
        "keepalive": 5,
        "timeout": 30,
        "graceful_timeout": 20,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "payhooks-receiver",
        "control_socket_disable": True,  # one fixed path per user would collide between instances
        "child_exit": _child_exit,
    }


def _child_exit(server, worker) -> None:
    """A gunicorn worker's metric files stop counting as live when it exits."""
    from models.metrics import mark_process_dead

    mark_process_dead(worker.pid)


class SettingsApplication(BaseApplication):
    """A gunicorn application from our settings and a dict of gunicorn options; ``load`` builds the app."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # newer options are skipped on older gunicorns
                self.cfg.set(key, value)


class ReceiverServer(SettingsApplication):
    """Each gunicorn worker builds its own app (and engine) after the fork."""

    def load(self):
        from receiver import create_app

        threads = int(self.options.get("threads") or 1)
        pool_size = max(self.settings.db_pool_size, threads)
        app = create_app(self.settings.model_copy(update={"db_pool_size": pool_size}))
        close_at_exit(app)
        return app
