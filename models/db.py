"""Engines are built from settings by the entry point; nothing connects on import."""
from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from models.settings import Settings


class DatabaseNotConfigured(RuntimeError):
    """PAYHOOKS_DATABASE_URL is not set (use `payhooks up` for the embedded database)."""


def normalise_url(url: str) -> str:
    """Any Postgres URL spelling becomes SQLAlchemy's psycopg 3 dialect."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


ROLES = ("receiver", "worker", "dispatcher", "operator", "migration")
"""Who is connecting: each role has its own statement timeout (see :func:`statement_timeout_seconds`)."""


def statement_timeout_seconds(settings: Settings, role: str) -> float:
    """The role's statement and lock timeout in seconds (0: none).

    The receiver answers a provider within seconds, so its queries give up
    after ``PAYHOOKS_DB_TIMEOUT_SECONDS`` (5 s). Workers and the dispatcher
    have their own; operator commands (stats, events, replay, prune) and
    `payhooks db upgrade` (an index build on a big table) get long ones, so
    the receiver's 5 s never cancels them.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (choose from {', '.join(ROLES)})")
    if role == "receiver":
        return settings.db_timeout_seconds
    return float(getattr(settings, f"{role}_statement_timeout_seconds"))


def connect_args(settings: Settings, *, application_name: str, role: str = "receiver") -> dict[str, object]:
    """libpq options every payhooks connection gets: bounded connect, statement and lock waits."""
    timeout_ms = int(statement_timeout_seconds(settings, role) * 1000)
    return {
        "connect_timeout": max(1, int(settings.db_timeout_seconds)),
        "application_name": application_name,
        "options": f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
    }


def libpq_url(url: str) -> str:
    """The URL psycopg itself takes (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(
    settings: Settings, *, pool_size: int | None = None, application_name: str = "payhooks",
    role: str = "receiver",
) -> Engine:
    if not settings.database_url:
        raise DatabaseNotConfigured(DatabaseNotConfigured.__doc__)
    return create_engine(
        normalise_url(settings.database_url),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=2,
        pool_timeout=settings.db_timeout_seconds,
        pool_recycle=1800,
        connect_args=connect_args(settings, application_name=application_name, role=role),
    )
