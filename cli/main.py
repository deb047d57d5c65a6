"""The `payhooks` command: the group, its logging and its errors; each command lives in a module of its own.

A command's module is imported only when that command runs (or prints its own
``--help``): :class:`LazyGroup` maps each name to ``"module:attribute"`` (the
pattern of click's "Lazily Loading Subcommands"), and lists the commands in
``payhooks --help`` from the summaries registered beside them, so the list
imports none of them. `payhooks --help` therefore loads click and this module
only, and `payhooks stats` what `stats` uses, never Celery or Flask.
"""
from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from cli.output import database_unavailable, schema_missing

if TYPE_CHECKING:
    from pydantic import ValidationError

SERVICES = frozenset({"up", "serve", "dispatcher", "worker"})
"""Long-running commands: they log at INFO. The others print for a person and log only warnings,
unless --verbose."""

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:attribute", the first paragraph of its help, shown by `payhooks --help`)
    "archive": ("cli.archive:archive_group", "Read archived events (gzip JSON Lines, one file per day of receipt)."),
    "console": ("cli.console:console", "Run the operator console (sign in with PAYHOOKS_CONSOLE_TOKEN)."),
    "db": ("cli.db:db", "Schema management (Alembic)."),
    "dispatcher": ("cli.dispatcher:dispatcher",
                   "Claim due events, publish them, re-arm expired leases (runs until SIGTERM/Ctrl-C)."),
    "events": ("cli.events:events", "Inspect stored webhook events (the audit log)."),
    "incidents": ("cli.incidents:incidents",
                  "Dead events and dead deliveries grouped by cause: open → acknowledged → resolved."),
    "orders": ("cli.orders:orders", "Register orders and look them up."),
    "providers": ("cli.send:providers",
                  "Each provider's event types, the canonical kind each maps to, and the handler it reaches."),
    "prune": ("cli.prune:prune", "Archive final events older than AGE to the archive directory, then remove them."),
    "reconcile": ("cli.reconcile:reconcile",
                  "Recover events a provider sent (or should have sent) that never arrived."),
    "replay": ("cli.replay:replay", "Set events (or, with --deliveries, deliveries) back to pending, due now."),
    "send": ("cli.send:send", "Build, sign and post a realistic PROVIDER event of EVENT_TYPE."),
    "serve": ("cli.serve:serve", "Run the receiver (granian, WSGI)."),
    "stats": ("cli.stats:stats", "Counts by provider and status, oldest pending, due retries, recent deaths, "
                                 "latency, deliveries."),
    "up": ("cli.up:up", "Run everything for a first try: embedded Postgres, schema, ProcessOut simulator, "
                        "receiver, dispatcher, worker and the operator console."),
    "worker": ("cli.worker:worker", "Run a Celery worker for process_event (same as `celery -A workers worker`)."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when one runs; the help lists them from their summaries.

    Bad settings (exit 2) or an unreachable database end any command with one
    readable line, never a traceback.
    """

    def __init__(self, *args, lazy_subcommands: Mapping[str, tuple[str, str]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_subcommands:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = self.lazy_subcommands[cmd_name][0].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's own, with a registered summary instead of importing the command to read its help."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name in self.lazy_subcommands:  # a stand-in that only knows the summary: click shortens it
                rows.append((name, click.Command(name, help=self.lazy_subcommands[name][1])))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _raised_by(exc, "pydantic_core", "ValidationError"):
                raise SettingsError.of(exc) from None
            if _raised_by(exc, "sqlalchemy.exc", "OperationalError", "InterfaceError"):
                raise database_unavailable(exc) from None
            if _raised_by(getattr(exc, "orig", None), "psycopg.errors", "UndefinedTable", "UndefinedColumn"):
                raise schema_missing(exc) from None
            raise


def _raised_by(exc: BaseException | None, module: str, *names: str) -> bool:
    """Whether ``exc`` is one of ``module``'s exceptions, without importing it for commands that never did
    (a module never imported raised nothing)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, tuple(getattr(loaded, name) for name in names))


class SettingsError(click.ClickException):
    """Bad settings stop a command at start, naming each setting and what to do."""

    exit_code = 2

    @classmethod
    def of(cls, exc: ValidationError) -> SettingsError:
        problems = []
        for error in exc.errors():
            message = str(error.get("msg", "")).removeprefix("Value error, ")
            where = ".".join(str(part) for part in error.get("loc", ()))
            problems.append(f"PAYHOOKS_{where.upper()}: {message}" if where else message)
        hint = "" if all("set PAYHOOKS_" in problem for problem in problems) else (
            "; fix it in the environment or .env")
        return cls("settings error: " + "; ".join(problems) + hint)


def _configure_logging(*, level: str | None) -> None:
    """JSON lines (readable on a terminal), with every configured secret redacted.

    Its modules are imported here, when a command runs: `payhooks --help` configures nothing."""
    from pydantic import ValidationError

    from models import logs
    from models.redaction import Redactor
    from models.settings import load_settings

    try:
        redactor = Redactor.from_settings(load_settings())
    except ValidationError:  # the command itself reports bad settings
        redactor = Redactor()
    logs.configure(redactor=redactor, level=level)  # also the redactor of every CLI output and error string


@click.group(cls=LazyGroup, lazy_subcommands=COMMANDS)
@click.version_option(package_name="payhooks", prog_name="payhooks", message="%(prog)s %(version)s")
@click.option("--verbose", "-v", is_flag=True, help="also print the log lines of commands (they go to stderr)")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """payhooks: verified, durable, exactly-once payment webhooks."""
    quiet = ctx.invoked_subcommand not in SERVICES and not verbose and "PAYHOOKS_LOG_LEVEL" not in os.environ
    _configure_logging(level="WARNING" if quiet else None)


if __name__ == "__main__":
    main()
