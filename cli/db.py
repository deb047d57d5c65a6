"""`payhooks db upgrade`: the schema, by Alembic (``migrations/``)."""
from __future__ import annotations

import click

from cli.options import settings_with_database
from models.db import make_engine
from models.migrate import upgrade


@click.group()
def db() -> None:
    """Schema management (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    engine = make_engine(settings_with_database(), application_name="payhooks-migrate", role="migration")
    try:
        upgrade(engine, revision)
    finally:
        engine.dispose()
    click.echo(f"schema at {revision}")
