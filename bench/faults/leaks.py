"""Secrets: fresh ones for every scenario, and a search for them wherever payhooks writes.

Every configured secret, the ProcessOut Basic password on its own, and the
encodings they travel in (``Authorization: Basic base64(user:pass)``, SMTP
AUTH's base64) are searched for in every log line, every column of every
table, and every CLI output of the run. A hit is reported by label and place,
never by value.
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, text

from cli import devsecrets
from testkit.load import signing_secrets

TABLES = ("webhook_events", "event_attempts", "orders", "order_transitions", "refunds", "deliveries",
          "delivery_attempts", "operator_actions")
PROCESSOUT_USER = "po-hooks"
PROCESSOUT_PROJECT = "proj_faults"
SMTP_USER = "payhooks-mailer"
MIN_NEEDLE = 8


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode().rstrip("=")


def _whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class RunSecrets:
    env: dict[str, str]
    """The PAYHOOKS_* variables that hold secrets."""
    signing: dict[str, str]
    """provider → what it signs with (processout: ``user:pass`` of the Basic auth)."""
    needles: dict[str, str] = field(repr=False)
    """label → a string that must appear nowhere."""


def generate() -> RunSecrets:
    env = devsecrets.generate()
    basic_password = "po-pass-" + secrets.token_urlsafe(18)
    env.update({
        "PAYHOOKS_PROCESSOUT_BASIC_AUTH": f"{PROCESSOUT_USER}:{basic_password}",
        "PAYHOOKS_PROCESSOUT_PROJECT_ID": PROCESSOUT_PROJECT,
        "PAYHOOKS_PROCESSOUT_PROJECT_SECRET": "po-proj-" + secrets.token_urlsafe(18),
        "PAYHOOKS_SMTP_USERNAME": SMTP_USER,
        "PAYHOOKS_SMTP_PASSWORD": "smtp-pass-" + secrets.token_urlsafe(18),
        "PAYHOOKS_FULFILMENT_SECRET": _whsec(),
        "PAYHOOKS_NOTIFY_SECRET": _whsec(),
    })
    return RunSecrets(env=env, signing=signing_secrets(env), needles=_needles(env, basic_password))


def _needles(env: dict[str, str], basic_password: str) -> dict[str, str]:
    found = {name.removeprefix("PAYHOOKS_").lower(): value for name, value in env.items()
             if name not in ("PAYHOOKS_PROCESSOUT_PROJECT_ID", "PAYHOOKS_SMTP_USERNAME")}
    found["processout_basic_password"] = basic_password
    found["processout_basic_auth (base64)"] = _b64(env["PAYHOOKS_PROCESSOUT_BASIC_AUTH"])
    project = f"{PROCESSOUT_PROJECT}:{env['PAYHOOKS_PROCESSOUT_PROJECT_SECRET']}"
    found["processout_project_auth (base64)"] = _b64(project)
    smtp_password = env["PAYHOOKS_SMTP_PASSWORD"]
    found["smtp_password (base64)"] = _b64(smtp_password)
    found["smtp_auth_plain (base64)"] = _b64(f"\0{SMTP_USER}\0{smtp_password}")
    for name in ("PAYHOOKS_YOCO_SECRETS", "PAYHOOKS_FULFILMENT_SECRET", "PAYHOOKS_NOTIFY_SECRET"):
        found[f"{name.removeprefix('PAYHOOKS_').lower()} (key part)"] = env[name].removeprefix("whsec_")
    return {label: value for label, value in found.items() if len(value) >= MIN_NEEDLE}


@dataclass(frozen=True)
class Leak:
    label: str
    where: str


def scan_text(needles: dict[str, str], content: str, *, where: str) -> list[Leak]:
    leaks = []
    for number, line in enumerate(content.splitlines(), start=1):
        leaks.extend(Leak(label, f"{where}:{number}") for label, value in needles.items() if value in line)
    return leaks


def scan_files(needles: dict[str, str], paths: list[Path]) -> tuple[list[Leak], int]:
    """Leaks in these files, and how many lines were searched."""
    contents = {path.name: path.read_text(errors="replace") for path in paths if path.is_file()}
    return ([leak for name, content in contents.items() for leak in scan_text(needles, content, where=name)],
            sum(content.count("\n") for content in contents.values()))


def scan_database(needles: dict[str, str], engine: Engine) -> tuple[list[Leak], int]:
    """Leaks in any column of any payhooks table, and how many rows were searched."""
    leaks: list[Leak] = []
    rows = 0
    with engine.connect() as conn:
        for table in TABLES:
            for row in conn.execute(text(f"SELECT * FROM {table}")).mappings():
                rows += 1
                for column, value in row.items():
                    if value is None:
                        continue
                    binary = isinstance(value, (bytes, memoryview))
                    rendered = bytes(value).decode("utf-8", errors="replace") if binary else str(value)
                    leaks.extend(Leak(label, f"{table}.{column} id={row.get('id')}")
                                 for label, needle in needles.items() if needle in rendered)
    return leaks, rows
