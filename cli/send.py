"""`payhooks send` (a provider's event, signed, to the receiver) and `payhooks providers` (what each sends)."""
from __future__ import annotations

import importlib
import secrets
import sys
from typing import Any

import click
import httpx

from cli.options import confirm
from cli.output import console, echo_json
from models.datadir import SIMULATOR_URL, UP_URL, find_data_dir
from models.redaction import redact
from models.settings import load_settings
from providers.registry import build_adapters
from sandbox.catalog import CANONICAL_ORDER, HANDLED, provider_name, resolve, types_of
from sandbox.samples import sample_body, sample_processout_event


def _types_help() -> str:
    lines = [f"  {name}: {', '.join(t for t, _ in types_of(name))}" for name in HANDLED]
    return "\n".join(lines)


class ProviderName(click.ParamType):
    name = "PROVIDER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        found = provider_name(str(value))
        if found is None:
            self.fail(f"{value!r} is not a provider; choose one of {', '.join(HANDLED)} (any case)", param, ctx)
        return found


def _handler_names(kind: str | None) -> list[str]:
    # The handler modules load the models (SQLAlchemy): only once a command runs, never for --help.
    from workers.handlers import handlers_for
    from workers.handlers.loading import load_handlers

    load_handlers()  # the built-in ones (custom ones: _load_custom_handlers)
    return [name for name, _ in handlers_for(kind)] if kind else []


def _load_custom_handlers() -> str | None:
    """Import PAYHOOKS_HANDLER_MODULES as workers do, so their handlers are listed; why not, if they fail."""
    for module in load_settings().handler_modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001  (shown, never fatal for a listing)
            return f"{module}: {type(exc).__name__}: {exc}"
    return None


@click.command(epilog="Canonical kinds: " + ", ".join(CANONICAL_ORDER) + ".\n\nEach provider's own types:\n\n"
               + _types_help().replace("\n", "\n\n") + "\n\nSee `payhooks providers` for the handler each reaches.")
@click.argument("provider", type=ProviderName())
@click.argument("event_type")
@click.option("--url", default=None,
              help="receiver base URL, or a full webhook URL [the running `payhooks up`'s, else "
                   "http://127.0.0.1:8000]")
@click.option("--order-ref", default=None, help="the order's provider payment reference")
@click.option("--amount", type=int, default=1000, show_default=True, help="amount in minor units")
@click.option("--currency", default=None, help="ISO 4217 code [the provider's usual one]")
@click.option("--event-id", default=None, help="reuse an event id (to see duplicate handling)")
@click.option("--yes", "-y", is_flag=True, help="send a type no handler takes without asking")
def send(provider: str, event_type: str, url: str | None, order_ref: str | None, amount: int,
         currency: str | None, event_id: str | None, yes: bool) -> None:
    """Build, sign and post a realistic PROVIDER event of EVENT_TYPE.

    EVENT_TYPE is a canonical kind (payment.succeeded, payment.failed,
    payment.refunded, payment.charged_back), sent as the provider's own type
    for it, or one of the provider's own types. PROVIDER is any case.
    """
    resolved = resolve(provider, event_type)
    handlers = _handler_names(resolved.kind)
    if not handlers:
        why = (f"{provider} has no event type for {event_type}" if event_type in CANONICAL_ORDER
               else f"no handler takes {provider} {event_type}")
        known = ", ".join(t for t, kind in types_of(provider) if kind)
        click.echo(f"warning: {why}: the event will be stored and end `ignored`. "
                   f"{provider}'s handled types: {known} (see `payhooks providers`)", err=True)
        confirm("Send it anyway?", yes=yes)
    settings = load_settings()
    runtime = find_data_dir().runtime()
    base = url or runtime.get(UP_URL) or "http://127.0.0.1:8000"
    target = base if "/webhooks/" in base else f"{base.rstrip('/')}/webhooks/{provider}"
    order_ref = order_ref or f"ord_{secrets.token_hex(6)}"
    event_id = event_id or (f"ev_{secrets.token_hex(8)}" if provider == "processout" else None)
    if provider == "processout":
        _register_with_simulator(settings, runtime.get(SIMULATOR_URL), yes=yes, event=sample_processout_event(
            event_id=event_id or "", event_type=resolved.event_type, order_ref=order_ref, amount_minor=amount,
            currency=currency)["event"])
        auth = settings.processout_basic_auth
        secret = auth.get_secret_value() if auth else ""
        if not secret and not settings.processout_allow_unauthenticated:
            raise click.ClickException(
                "no ProcessOut Basic auth configured: set PAYHOOKS_PROCESSOUT_BASIC_AUTH=user:pass, or run this in "
                "the directory where `payhooks up` runs (or below it): `up` generates dev secrets there")
    else:
        configured = settings.secrets_for(provider)
        if not configured:
            raise click.ClickException(
                f"no {provider} secret configured: set PAYHOOKS_{provider.upper()}_SECRETS, or run this in the "
                "directory where `payhooks up` runs (or below it): `up` generates dev secrets there")
        secret = configured[0]
    body = sample_body(provider, resolved.event_type, order_ref=order_ref, amount_minor=amount, currency=currency,
                       event_id=event_id)
    headers = {"Content-Type": "application/json",
               **build_adapters(settings)[provider].sign(body=body, secret=secret)}
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise click.ClickException(redact(
            f"could not reach {target} ({type(exc).__name__}): start `payhooks up` (or `payhooks serve`), or "
            "pass --url with the receiver's address")) from None
    _report(response, provider=provider, resolved=resolved, handlers=handlers, target=target)


def _register_with_simulator(settings, simulator_url: str | None, *, yes: bool, event: dict[str, Any]) -> None:
    """ProcessOut's POST carries only the id: the full event must exist where the workers fetch it."""
    from sandbox.processout_sim import (
        register,  # the simulator's client: only for a ProcessOut event
    )

    if simulator_url and settings.processout_api_url.rstrip("/") == simulator_url.rstrip("/"):
        secret = settings.processout_project_secret
        try:
            register(simulator_url=simulator_url, event=event, project_id=settings.processout_project_id or "",
                     project_secret=secret.get_secret_value() if secret else "")
        except httpx.HTTPError as exc:
            raise click.ClickException(redact(
                f"the ProcessOut simulator at {simulator_url} refused the event ({exc}): restart `payhooks up`, "
                "which runs it")) from None
        return
    click.echo(f"warning: the workers fetch ProcessOut events from {settings.processout_api_url}, which has "
               "never heard of this sample event: it will end `dead` (not found at provider). Run `payhooks up` "
               "(its ProcessOut simulator gets every sent event) to see one succeed", err=True)
    confirm("Send it anyway?", yes=yes)


def _report(response: httpx.Response, *, provider: str, resolved, handlers: list[str], target: str) -> None:
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    shown = f"{resolved.event_type}" + (f" (for {resolved.kind})" if resolved.asked_for_kind else "")
    if response.is_success and isinstance(answer, dict) and "id" in answer:
        status = answer.get("status", "accepted")
        click.echo(f"{response.status_code} {status}: {provider} {shown} is event {answer['id']}")
        reaches = f"the {', '.join(handlers)} handler" if handlers else "no handler (it will be `ignored`)"
        click.echo(f"  it reaches {reaches}; follow it with `payhooks events show {answer['id']}`")
        return
    detail = answer.get("error") if isinstance(answer, dict) else None
    click.echo(f"{response.status_code} {detail or response.text.strip()[:200]}: {provider} {shown} to {target}")
    hints = {401: f"the receiver does not share this secret: `payhooks send` signs with PAYHOOKS_{provider.upper()}"
                  "_SECRETS (run it where `payhooks up` runs, so both use its dev secrets)",
             404: "the receiver has no such provider configured, or --url is not a payhooks receiver"}
    click.echo(f"  next: {hints.get(response.status_code, 'see the receiver log for the reason')}", err=True)
    sys.exit(1)


@click.command("providers")
@click.option("--json", "as_json", is_flag=True, help="one JSON object, for scripts")
def providers(as_json: bool) -> None:
    """Each provider's event types, the canonical kind each maps to, and the handler it reaches."""
    problem = _load_custom_handlers()
    listing = {name: [{"type": event_type, "kind": kind, "handlers": _handler_names(kind)}
                      for event_type, kind in types_of(name)] for name in HANDLED}
    if as_json:
        echo_json(listing)
        return
    from rich.table import Table

    table = Table(title="Event types by provider (`payhooks send PROVIDER KIND|TYPE` takes either)",
                  title_justify="left")
    for column in ("provider", "type", "canonical kind", "handler"):
        table.add_column(column, no_wrap=True)
    for name, rows in listing.items():
        for index, row in enumerate(rows):
            table.add_row(name if index == 0 else "", row["type"], row["kind"] or "",
                          ", ".join(row["handlers"]) or "none: stored, then ignored",
                          end_section=index == len(rows) - 1)
    out = console()
    out.print(table)
    out.print("Any other type is stored and ignored too. Docs: docs/PROVIDERS.md")
    if problem:
        click.echo(f"warning: a PAYHOOKS_HANDLER_MODULES module failed to import ({problem}); its handlers are "
                   "not listed. Fix the module or the setting", err=True)
