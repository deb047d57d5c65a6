"""`payhooks archive show FILE [--key K]`: read back what retention archived (format: README)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from models import archive


@click.group("archive")
def archive_group() -> None:
    """Read archived events (gzip JSON Lines, one file per day of receipt)."""


@archive_group.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", default=None, help="only the event with this provider event key")
@click.option("--id", "event_id", type=int, default=None, help="only the event with this id")
@click.option("--summary", is_flag=True, help="one line per event instead of the whole records")
def show(file: Path, key: str | None, event_id: int | None, summary: bool) -> None:
    """Print the events archived in FILE, one JSON object per line."""
    found = 0
    try:
        for event in archive.read(file, key=key, event_id=event_id):
            found += 1
            if summary:
                click.echo(f"{event['id']}\t{event['received_at']}\t{event['provider']}\t{event['event_key']}"
                           f"\t{event['event_type']}\t{event['status']}")
            else:
                click.echo(json.dumps(event, ensure_ascii=False))
    except (OSError, EOFError, ValueError) as exc:  # not gzip, truncated, not JSON lines
        raise click.ClickException(f"{file} is not a readable payhooks archive: {exc}") from None
    if not found and (key is not None or event_id is not None):
        raise click.ClickException(f"no event with {'key ' + repr(key) if key else 'id ' + str(event_id)} "
                                   f"in {file}")
