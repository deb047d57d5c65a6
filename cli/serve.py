"""`payhooks serve`: the receiver, in an interpreter of its own (`python -m receiver`)."""
from __future__ import annotations

import os
import sys

import click

from cli.options import settings_with_database


@click.command()
@click.option("--bind", default="0.0.0.0:8000", show_default=True, help="host:port to listen on")
@click.option("--workers", type=int, default=None, help="processes [granian: CPUs; gunicorn: 2 × CPUs + 1]")
@click.option("--threads", type=int, default=None, help="request threads per process [granian: 32; gunicorn: 4]")
@click.option("--server", type=click.Choice(["granian", "gunicorn"]), default="granian", show_default=True,
              help="HTTP server: granian (Rust) or gunicorn gthread (the former default, for comparison)")
def serve(bind: str, workers: int | None, threads: int | None, server: str) -> None:
    """Run the receiver (granian, WSGI)."""
    settings_with_database()  # bad settings or no database: one line and an exit status, here
    # The server runs in an interpreter that imports only the receiver (`python -m receiver`): its
    # worker processes are forked from it and would otherwise carry every module of the command line.
    argv = [sys.executable, "-m", "receiver", "--bind", bind, "--server", server]
    if workers:
        argv += ["--workers", str(workers)]
    if threads:
        argv += ["--threads", str(threads)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
