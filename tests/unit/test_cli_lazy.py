"""`payhooks` loads only what the command it runs uses: `--help` none of the commands, `send` no Celery.

Each check runs in a fresh interpreter (this one has imported everything) and
reads its ``sys.modules`` after the command.
"""
from __future__ import annotations

import inspect

import click
import pytest

from cli.main import COMMANDS, main
from testkit.processes import REPO_ROOT
from tests.conftest import modules_after

HEAVY = ("celery", "kombu", "flask", "werkzeug", "sqlalchemy", "psycopg", "psycopg_pool", "rich", "httpx",
         "pydantic", "alembic", "prometheus_client", "receiver", "workers")
SEND_NEEDS = ("httpx", "models.settings", "sandbox.catalog", "providers.registry", "sandbox.samples")
"""What `payhooks send` posts, signs and builds its events with, and reads its secrets and URLs from
(the group reads the settings too, for logging): whatever these import, its --help may too."""


def _loaded_after(code: str) -> set[str]:
    """The top-level packages and the cli modules a fresh interpreter holds after running ``code``."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT), "PAYHOOKS_DATA_DIR": str(REPO_ROOT / "no-such-dir")}
    loaded = modules_after(code, env=env)
    return {name.split(".")[0] for name in loaded} | {name for name in loaded if name.startswith("cli.")}


def _after_payhooks(*args: str) -> set[str]:
    return _loaded_after(f"""
        from click.testing import CliRunner
        from cli.main import main
        result = CliRunner().invoke(main, {list(args)!r})
        assert result.exit_code == 0, result.output
        assert "Usage: " in result.output
        """)


def test_the_help_of_the_group_imports_no_command_and_nothing_heavy() -> None:
    loaded = _after_payhooks("--help")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    assert {name for name in loaded if name.startswith("cli.")} <= {"cli.main", "cli.output"}


def test_the_help_of_send_imports_only_what_sending_needs() -> None:
    loaded = _after_payhooks("send", "--help")
    needed = _loaded_after("\n".join(f"import {module}" for module in SEND_NEEDS))
    assert "cli.send" in loaded
    assert not {"celery", "kombu", "workers", "alembic"} & loaded
    assert not (loaded & set(HEAVY)) - needed, (loaded & set(HEAVY)) - needed
    assert {name for name in loaded if name.startswith("cli.")} <= {"cli.main", "cli.output", "cli.options",
                                                                      "cli.send"}


@pytest.mark.parametrize("module", ["cli.stats", "cli.events"])
def test_the_read_commands_load_no_celery_no_http_client_and_rich_only_to_draw(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    assert not {"celery", "kombu", "httpx", "rich", "alembic", "workers"} & loaded
    if module == "cli.stats":
        assert not {"flask", "receiver"} & loaded


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_summary_in_the_group_help_is_the_commands_own(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command) and command.name == name
    own = inspect.cleandoc(command.help or "").split("\n\n")[0]
    assert " ".join(COMMANDS[name][1].split()) == " ".join(own.split())


def test_stats_reads_the_statuses_without_loading_the_orm() -> None:
    # `payhooks stats` runs every few seconds in scripts: its start is most of its wall time
    assert "sqlalchemy.orm" not in modules_after("import cli.stats")
