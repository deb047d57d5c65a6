"""Small things every command's output shares: plurals, prompts that can be answered, error wording."""
from __future__ import annotations

import sys

import click
from pydantic import ValidationError


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 event``, ``2 events``, ``0 deliveries`` (pass the plural when it is not ``singular + "s"``)."""
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


class NeedsYes(click.ClickException):
    """A question was needed and nobody can answer it (stdin closed or at its end): exit 2."""

    exit_code = 2


def confirm(question: str, *, yes: bool) -> None:
    """Ask ``question`` unless ``--yes`` was given.

    No answer possible (stdin at its end: ``< /dev/null``, a closed pipe, a
    script) stops with "use --yes" and exit 2; an answer other than yes stops
    with exit 1. Ctrl-C at the prompt stops as usual.
    """
    if yes:
        return
    click.echo(f"{question} [y/N]: ", nl=False)
    answer = sys.stdin.readline()
    if not answer:
        click.echo()
        raise NeedsYes(f"{question.rstrip('?')}: there is no one to answer (stdin is closed); "
                       "use --yes to go ahead")
    if answer.strip().lower() not in ("y", "yes"):
        raise click.ClickException("Aborted: nothing changed (answered no); use --yes to go ahead without asking")


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
