"""`payhooks console` under gunicorn: one process (the sign-in limits and replay progress live in it),
a few threads, loopback by default."""
from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from models.settings import Settings


def default_options(*, bind: str, threads: int) -> dict[str, Any]:
    return {
        "bind": bind,
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        "keepalive": 5,
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "payhooks-console",
        "control_socket_disable": True,
    }


class ConsoleServer(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self):
        from console.app import create_app

        return create_app(self.settings)
