"""``python -m receiver``: what `payhooks serve` runs, in an interpreter that imports only the receiver.

The server's worker processes are forked from this one, so every module it
has loaded is in each of them; the command line (Celery's helpers, rich, the
console, every command group) would add about 15 MB to each worker's RSS.
`payhooks serve` checks the settings, then replaces itself with this.
"""
from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="payhooks serve")
    parser.add_argument("--bind", default="0.0.0.0:8000")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--server", choices=("granian", "gunicorn"), default="granian")
    args = parser.parse_args(argv)

    from models.multiproc import enable_multiprocess

    enable_multiprocess("receiver")  # before anything imports prometheus_client
    from models import logs
    from models.redaction import Redactor
    from models.settings import load_settings
    from receiver.server import run

    settings = load_settings()
    logs.configure(redactor=Redactor.from_settings(settings))
    run(settings, server=args.server, bind=args.bind, workers=args.workers, threads=args.threads)


if __name__ == "__main__":
    main()
