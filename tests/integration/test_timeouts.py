"""Each role has its own statement timeout: the receiver's short one never cancels operators or migrations."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from models.db import make_engine
from tests.conftest import make_settings
from tests.integration.stack import scalar


def _timeout_of(database_url: str, role: str, **overrides: object) -> str:
    engine = make_engine(make_settings(database_url=database_url, **overrides), role=role)
    try:
        return scalar(engine, "SHOW statement_timeout")
    finally:
        engine.dispose()


def test_each_role_gets_its_own_documented_timeout(database_url: str) -> None:
    assert _timeout_of(database_url, "receiver") == "5s"
    assert _timeout_of(database_url, "worker") == "1min"
    assert _timeout_of(database_url, "dispatcher") == "30s"
    assert _timeout_of(database_url, "operator") == "5min"
    assert _timeout_of(database_url, "migration") == "0"
    assert _timeout_of(database_url, "operator", operator_statement_timeout_seconds=42) == "42s"


def test_a_slow_statement_is_cancelled_for_the_receiver_but_not_for_an_operator(database_url: str) -> None:
    # Given a receiver timeout of 1 s (the default is 5 s)
    settings = make_settings(database_url=database_url, db_timeout_seconds=1)
    receiver = make_engine(settings, role="receiver")
    operator = make_engine(settings, role="operator")
    try:
        # When both run a statement that takes longer
        with pytest.raises(OperationalError, match="statement timeout"), receiver.connect() as conn:
            conn.execute(text("SELECT pg_sleep(1.5)"))
        with operator.connect() as conn:
            # Then only the receiver's is cancelled
            assert conn.execute(text("SELECT 1 FROM pg_sleep(1.5)")).scalar_one() == 1
    finally:
        receiver.dispose()
        operator.dispose()


def test_unknown_role_is_refused(database_url: str) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        make_engine(make_settings(database_url=database_url), role="intern")
