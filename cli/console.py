"""`payhooks console`: the operator console, a process of its own (`payhooks up` runs it as a child)."""
from __future__ import annotations

import click

from cli.options import local_url, settings_with_database
from console.server import ConsoleServer, default_options

DEFAULT_BIND = "127.0.0.1:8001"


@click.command("console")
@click.option("--bind", default=DEFAULT_BIND, show_default=True,
              help="host:port; keep it off the public webhook port (loopback, or a private network)")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True)
def console(bind: str, threads: int) -> None:
    """Run the operator console (sign in with PAYHOOKS_CONSOLE_TOKEN)."""
    settings = settings_with_database()
    if settings.console_token is None or not settings.console_token.get_secret_value().strip():
        raise click.ClickException("PAYHOOKS_CONSOLE_TOKEN is not set: the console does not start without a "
                                   "sign-in token (`payhooks up` generates one)")
    click.echo(f"payhooks console on {local_url(bind)}", err=True)
    ConsoleServer(settings, default_options(bind=bind, threads=threads)).run()
