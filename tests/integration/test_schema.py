"""The Alembic history builds exactly the schema the models describe."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

import models.keeping  # noqa: F401  (the longevity tables too)
import models.orders  # noqa: F401  (the order tables are part of the schema)
from models.tables import Base


def test_upgrade_head_on_empty_database_matches_models(engine: Engine) -> None:
    # Given a database built only by `upgrade head` (the session fixture)
    with engine.connect() as conn:
        # When Alembic compares it with the models
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # Then there is nothing to migrate
    assert diff == []


def test_event_key_is_unique_per_provider_in_one_place(engine: Engine) -> None:
    # The dedup keys hold (provider, event_key) as their primary key; webhook_events no second
    # unique index on it (migration 0008: every event row is inserted only for a newly claimed key)
    key = inspect(engine).get_pk_constraint("event_keys")
    assert (key["name"], key["constrained_columns"]) == ("pk_event_keys", ["provider", "event_key"])
    assert [c["name"] for c in inspect(engine).get_unique_constraints("webhook_events")
            if c["column_names"] == ["provider", "event_key"]] == []
