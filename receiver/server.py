"""`payhooks serve`: the receiver under granian (a Rust HTTP server, WSGI interface) with production defaults.

Granian parses HTTP and holds every connection in Rust (an idle keep-alive
connection costs no Python thread), then calls the unchanged Flask app on
one of ``threads`` Python threads in each of ``workers`` processes. Each
worker process builds its own app (:func:`wsgi_app`) after the fork, with its
own group-commit writer; a stopping worker finishes its requests in flight
and stores everything queued before it exits. ``--server gunicorn`` runs the
server this replaced (gthread), kept for comparison.
"""
from __future__ import annotations

import gc
import os

from flask import Flask

from models.settings import Settings
from receiver.closing import close_at_exit

GRACEFUL_STOP_SECONDS = 20
"""A stopping worker gets this long to answer its requests in flight before it is killed."""
KEEPALIVE_SECONDS = 5
"""Idle keep-alive connections are closed after this long (granian counts it until the next request's headers)."""

CONNECTIONS_PER_PROCESS = 1024
"""Connections (busy or idle) one process holds open; more wait in the kernel's accept queue."""

# granian's own records go to the root handler, i.e. our JSON lines (logs.configure)
_GRANIAN_LOGGING = {
    "handlers": {},
    "loggers": {"_granian": {"handlers": [], "propagate": True},
                "granian.access": {"handlers": [], "propagate": True}},
}


def default_shape(*, server: str, workers: int | None, threads: int | None) -> tuple[int, int]:
    """(processes, request threads per process) of ``server`` when not given."""
    cpus = os.cpu_count() or 1
    if server == "gunicorn":
        return workers or cpus * 2 + 1, threads or 4
    return workers or cpus, threads or 32


def run(settings: Settings, *, server: str, bind: str, workers: int | None, threads: int | None) -> None:
    """Serve until SIGTERM/SIGINT (then finish in-flight requests, drain the writers, exit)."""
    processes, per_process = default_shape(server=server, workers=workers, threads=threads)
    if server == "gunicorn":
        from receiver.server_gunicorn import ReceiverServer, default_options

        ReceiverServer(settings, default_options(bind=bind, workers=processes, threads=per_process)).run()
        return
    gc.freeze()  # what this process imported stays shared with the workers: their collector never touches it
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    host, _, port = bind.rpartition(":")
    Server(
        "receiver.server:wsgi_app", factory=True, address=host.strip("[]") or "0.0.0.0", port=int(port),
        interface=Interfaces.WSGI, http=HTTPModes.http1, workers=processes, blocking_threads=per_process,
        # granian's backpressure counts open connections, idle keep-alive ones included: keep it far above
        # the request threads, or idle connections would stall requests as they did under gunicorn
        backlog=CONNECTIONS_PER_PROCESS * processes, backpressure=CONNECTIONS_PER_PROCESS,
        http1_settings=HTTP1Settings(header_read_timeout=KEEPALIVE_SECONDS * 1000, keep_alive=True),
        workers_kill_timeout=GRACEFUL_STOP_SECONDS, log_dictconfig=_GRANIAN_LOGGING,
    ).serve()


def wsgi_app() -> Flask:
    """Granian's factory, called in each worker process: JSON logs, settings from the environment, the app."""
    from models import logs
    from models.redaction import Redactor
    from models.settings import load_settings
    from receiver import create_app

    # granian copies this process's environment into every request's WSGI environ (CGI style), so a
    # server variable such as HTTP_PROXY would read as a request header and be stored with each event
    for name in [name for name in os.environ if name.startswith("HTTP_")]:
        del os.environ[name]
    settings = load_settings()
    # granian configured logging again in this process; every derived form of a secret is scrubbed
    logs.configure(redactor=Redactor.from_settings(settings))
    app = create_app(settings)
    close_at_exit(app)
    return app
