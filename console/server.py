"""`payhooks console` under gunicorn: one process (the sign-in limits and replay progress live in it),
a few threads, loopback by default."""
from __future__ import annotations

from typing import Any

from receiver.server_gunicorn import SettingsApplication


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


class ConsoleServer(SettingsApplication):
    def load(self):
        from console.app import create_app

        return create_app(self.settings)
