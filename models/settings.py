"""One typed settings object, built once at the entry point and passed down.

Every field reads ``PAYHOOKS_<NAME>`` from the environment (and ``.env``).
Secret lists are comma-separated, newest first: a request passes when any
secret matches, and the index of the one that matched is recorded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SecretList = Annotated[list[SecretStr], NoDecode]

DEFAULT_SCHEDULE_YOCO = "5s,5m,30m,2h,5h,10h,10h"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYHOOKS_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of Postgres; unset under `payhooks up` = embedded Postgres",
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker; unset = kombu's SQLAlchemy transport on the database"
    )
    data_dir: str = Field(default=".payhooks", description="where `payhooks up` keeps its data")

    smartpay_secrets: SecretList = Field(default_factory=list)
    senfenico_secrets: SecretList = Field(default_factory=list)
    yoco_secrets: SecretList = Field(default_factory=list)
    shadhinpay_secrets: SecretList = Field(default_factory=list)
    processout_project_id: str | None = None
    processout_project_secret: SecretStr | None = None
    processout_api_url: str = "https://api.processout.com"
    processout_basic_auth: SecretStr | None = Field(
        default=None, description="`user:pass` embedded in the registered webhook URL"
    )

    smartpay_tolerance_seconds: int = Field(default=300, ge=1)
    yoco_tolerance_seconds: int = Field(default=180, ge=1)
    shadhinpay_tolerance_seconds: int = Field(default=300, ge=1)

    api_token: SecretStr | None = None

    retry_schedule_smartpay: str = DEFAULT_SCHEDULE_YOCO
    retry_schedule_processout: str = DEFAULT_SCHEDULE_YOCO
    retry_schedule_senfenico: str = "30s,1m,2m,4m,8m,16m,1710s"  # 1 h in total
    retry_schedule_yoco: str = DEFAULT_SCHEDULE_YOCO
    retry_schedule_shadhinpay: str = "1m,5m,15m,1h,6h,24h"

    queue_name: str = Field(default="payhooks.events", description="the broker queue of process_event")
    handler_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="modules workers import to register custom handlers"
    )
    worker_concurrency: int | None = Field(default=None, ge=1, description="default: CPU count")

    smtp_host: str | None = Field(default=None, description="unset: email deliveries are skipped")
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_from: str = "payhooks@localhost"
    fulfilment_url: str | None = Field(default=None, description="unset: fulfilment calls are skipped")
    fulfilment_secret: SecretStr | None = Field(default=None, description="whsec_… signing our calls")
    notify_url: str | None = Field(default=None, description="the merchant's SMS gateway; unset: skipped")
    notify_secret: SecretStr | None = Field(default=None, description="default: the fulfilment secret")
    delivery_retry_schedule: str = "10s,1m,5m,30m,2h,6h"
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)

    dispatcher_metrics_port: int = Field(default=9101, ge=0, description="0: no metrics listener")
    worker_metrics_port: int = Field(default=9102, ge=0, description="0: no metrics listener")

    lease_seconds: int = Field(default=120, ge=5)
    dispatch_poll_seconds: float = Field(
        default=0.1, gt=0, le=1.0,
        description="shortest pause between two looks for due rows that found less than a batch")
    dispatch_safety_poll_seconds: float = Field(
        default=2.0, gt=0, le=60.0,
        description="longest an idle dispatcher sleeps without a wake-up (NOTIFY) or a known due row")
    dispatch_batch_size: int = Field(default=200, ge=1)
    worker_batch_size: int = Field(default=100, ge=1, le=500,
                                   description="most ids per message: a worker handles them in one transaction "
                                               "with a fixed number of statements (smaller when the backlog is)")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    db_pool_size: int = Field(default=5, ge=1)
    db_timeout_seconds: float = Field(
        default=5.0, gt=0, description="connect timeout, and statement timeout of the receiver's queries"
    )

    # Trust boundary (issue 11): nothing unverified is stored, bounded work before a match,
    # /metrics behind an optional token.
    processout_allow_unauthenticated: bool = Field(
        default=False,
        description="accept ProcessOut webhooks without Basic auth (anyone can then make the workers "
                    "fetch ids they choose); thin bodies are then capped at 8 KiB",
    )
    max_body_bytes_smartpay: int | None = Field(default=None, ge=1024, description="default: max_body_bytes")
    max_body_bytes_processout: int | None = Field(default=None, ge=1024, description="default: max_body_bytes")
    max_body_bytes_senfenico: int | None = Field(default=None, ge=1024, description="default: max_body_bytes")
    max_body_bytes_yoco: int | None = Field(default=None, ge=1024, description="default: max_body_bytes")
    max_body_bytes_shadhinpay: int | None = Field(default=None, ge=1024, description="default: max_body_bytes")
    metrics_token: SecretStr | None = Field(
        default=None, description="bearer token /metrics on the receiver asks for; unset: open"
    )

    def body_limit_for(self, provider: str) -> int:
        """The largest body ``provider``'s endpoint reads: its own limit, else the global one."""
        own = getattr(self, f"max_body_bytes_{provider}", None)
        return own if own is not None else self.max_body_bytes

    # --- longevity (issue 13): timeouts per role, retention, archive, dedup ---
    worker_statement_timeout_seconds: float = Field(
        default=60.0, ge=0, description="statement and lock timeout of workers' queries (0: none)")
    dispatcher_statement_timeout_seconds: float = Field(
        default=30.0, ge=0, description="statement and lock timeout of the dispatcher and housekeeping (0: none)")
    operator_statement_timeout_seconds: float = Field(
        default=300.0, ge=0, description="statement timeout of operator commands (stats, events, replay, prune)")
    migration_statement_timeout_seconds: float = Field(
        default=0.0, ge=0, description="statement timeout of `payhooks db upgrade` (0: none; index builds)")
    retention_days: float = Field(
        default=90, ge=0, description="final events processed longer ago are archived, then removed (0: keep)")
    dedup_days: float = Field(
        default=400, ge=0, description="how long a provider's event key answers `duplicate` after receipt")
    archive_dir: str | None = Field(
        default=None, description="where pruned events are archived; unset: <data_dir>/archive")
    prune_batch_size: int = Field(default=1000, ge=1, le=50_000, description="events archived and removed per transaction")
    prune_rate: float = Field(
        default=6000, ge=0, description="events/s pruning aims at, at most, so live traffic keeps the machine (0: no pace)")
    housekeeping_every_seconds: float = Field(
        default=10.0, gt=0, description="how often the dispatcher's housekeeper prunes and folds counts")
    # --- end longevity ---

    # Incidents, alerts, provider silence, ProcessOut reconciliation (issue 17).
    alert_url: SecretStr | None = Field(
        default=None, description="JSON POST per incident change; unset: not sent (a secret: Slack's URL is one)")
    alert_secret: SecretStr | None = Field(
        default=None, description="whsec_… : alerts are signed with Standard Webhooks when set")
    alert_email: str | None = Field(default=None, description="also email alerts here, through the SMTP settings")
    watch_interval_seconds: float = Field(default=5.0, gt=0, le=300,
                                          description="how often the dispatcher's watcher looks for changes")
    silence_minutes_smartpay: float | None = Field(default=None, gt=0)
    silence_minutes_processout: float | None = Field(default=None, gt=0)
    silence_minutes_senfenico: float | None = Field(default=None, gt=0)
    silence_minutes_yoco: float | None = Field(default=None, gt=0)
    silence_minutes_shadhinpay: float | None = Field(default=None, gt=0)
    reconcile_processout_minutes: float | None = Field(
        default=None, gt=0, description="run `reconcile processout` this often from the watcher; unset: off")

    @field_validator("alert_secret")
    @classmethod
    def _standard_webhooks_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from standardwebhooks.webhooks import Webhook

            try:
                Webhook(value.get_secret_value())
            except Exception:
                raise ValueError("must be a Standard Webhooks secret: whsec_ followed by base64") from None
        return value

    def silence_minutes(self, provider: str) -> float | None:
        return getattr(self, f"silence_minutes_{provider}", None)


    # Operator console (`payhooks console`): its sign-in token, sessions and sign-in rate limit.
    console_token: SecretStr | None = Field(
        default=None, description="the console's sign-in token; the console refuses to start without one"
    )
    console_session_hours: float = Field(default=12.0, gt=0, description="how long a sign-in lasts")
    console_signin_attempts: int = Field(
        default=5, ge=1, description="failed sign-ins allowed per address per window, then 429"
    )
    console_signin_window_seconds: float = Field(default=60.0, gt=0)
    console_secure_cookie: bool = Field(
        default=False, description="mark the session cookie Secure (set it when served over HTTPS)"
    )
    # receiver group commit: one writer thread per receiver process stores the webhooks of
    # concurrent requests with one INSERT and one commit per batch
    ingest_queue_size: int = Field(
        default=1024, ge=1, description="webhooks waiting for the writer, per receiver process; beyond: 503"
    )
    ingest_batch_max: int = Field(default=256, ge=1, le=10_000, description="rows per INSERT of the writer")

    @field_validator(
        "smartpay_secrets", "senfenico_secrets", "yoco_secrets", "shadhinpay_secrets", "handler_modules",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _signed_calls_have_a_secret(self) -> Settings:
        """A fulfilment or SMS URL without its signing secret is refused at start, not skipped per call."""
        if self.fulfilment_url and self.fulfilment_secret is None:
            raise ValueError("PAYHOOKS_FULFILMENT_URL is set but PAYHOOKS_FULFILMENT_SECRET is not (our calls "
                             "are always signed): set PAYHOOKS_FULFILMENT_SECRET, or unset PAYHOOKS_FULFILMENT_URL")
        if self.notify_url and self.notify_secret is None and self.fulfilment_secret is None:
            raise ValueError("PAYHOOKS_NOTIFY_URL is set but neither PAYHOOKS_NOTIFY_SECRET nor "
                             "PAYHOOKS_FULFILMENT_SECRET is (our calls are always signed): set "
                             "PAYHOOKS_NOTIFY_SECRET, or unset PAYHOOKS_NOTIFY_URL")
        return self

    def secrets_for(self, provider: str) -> list[str]:
        """Plain secret strings of one provider, for the adapter that verifies with them."""
        values: list[SecretStr] = getattr(self, f"{provider}_secrets", [])
        return [value.get_secret_value() for value in values]

    def secret_values(self) -> list[str]:
        """Every configured secret, for redaction checks."""
        found = [
            value.get_secret_value()
            for name in ("smartpay", "senfenico", "yoco", "shadhinpay")
            for value in getattr(self, f"{name}_secrets")
        ]
        for single in (self.processout_project_secret, self.processout_basic_auth, self.api_token,
                       self.smtp_password, self.fulfilment_secret, self.notify_secret, self.metrics_token,
                       self.alert_secret, self.alert_url, self.console_token):
            if single is not None:
                found.append(single.get_secret_value())
        return found


def load_settings(**overrides: object) -> Settings:
    """Settings for a command: the environment, then `.env`, then what `payhooks up` wrote.

    `payhooks up` keeps its generated dev secrets in ``<data_dir>/secrets.env``
    and, while it runs, the embedded database URL in ``<data_dir>/runtime.env``,
    so `payhooks send`, `payhooks orders …` and the other commands find them.
    The data directory is ``PAYHOOKS_DATA_DIR``, else the nearest ``.payhooks``
    in the working directory or a parent (:mod:`models.datadir`). Later files
    win; the process environment wins over every file.
    """
    from models.datadir import find_data_dir

    data_dir = find_data_dir()
    env_files = [data_dir.path / "secrets.env", data_dir.path / "runtime.env"]
    if data_dir.found and data_dir.project_root != Path.cwd().resolve():
        env_files.append(data_dir.project_root / ".env")  # the project's, found from a subdirectory
    env_files.append(Path(".env"))
    if not data_dir.explicit:
        overrides.setdefault("data_dir", str(data_dir.path))
    return Settings(_env_file=tuple(str(p) for p in env_files), **overrides)  # type: ignore[call-arg]
