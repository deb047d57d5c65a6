"""Alembic environment driven by the app's metadata and settings.

The URL comes from, in order: a connection handed over by `payhooks db upgrade`
(``config.attributes["connection"]``), ``sqlalchemy.url`` in the config, or
``PAYHOOKS_DATABASE_URL``.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import models.keeping  # noqa: F401  (registers the longevity tables on the metadata)
import models.orders  # noqa: F401  (registers the order tables on the metadata)
from models.db import normalise_url
from models.settings import Settings
from models.tables import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    """kombu's SQLAlchemy transport (the embedded broker) keeps its own tables."""
    return not (type_ == "table" and reflected and compare_to is None and name.startswith("kombu_"))


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or Settings().database_url
    if not url:
        raise SystemExit("PAYHOOKS_DATABASE_URL is not set")
    return normalise_url(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
