"""Downgrade to base and back: every revision is reversible on a real database."""
from __future__ import annotations

from sqlalchemy import Engine, inspect

from models.migrate import downgrade, upgrade


def test_downgrade_base_then_upgrade_head(engine: Engine) -> None:
    downgrade(engine, "base")
    assert "webhook_events" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert {"webhook_events", "event_attempts"} <= set(inspect(engine).get_table_names())
