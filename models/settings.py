"""One typed settings object, built once at the entry point and passed down.

Every field reads ``PAYHOOKS_<NAME>`` from the environment (and ``.env``).
Secret lists are comma-separated, newest first: a request passes when any
secret matches, and the index of the one that matched is recorded.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
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
    dispatch_poll_seconds: float = Field(default=0.1, gt=0, le=1.0)
    dispatch_batch_size: int = Field(default=200, ge=1)
    worker_batch_size: int = Field(default=100, ge=1, le=500,
                                   description="most ids per message: a worker handles them in one transaction "
                                               "with a fixed number of statements (smaller when the backlog is)")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    db_pool_size: int = Field(default=5, ge=1)
    db_timeout_seconds: float = Field(
        default=5.0, gt=0, description="connect and statement timeout for the receiver's queries"
    )

    @field_validator(
        "smartpay_secrets", "senfenico_secrets", "yoco_secrets", "shadhinpay_secrets", "handler_modules",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

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
                       self.smtp_password, self.fulfilment_secret, self.notify_secret):
            if single is not None:
                found.append(single.get_secret_value())
        return found


def load_settings(**overrides: object) -> Settings:
    """Settings for a command: the environment, then `.env`, then what `payhooks up` wrote.

    `payhooks up` keeps its generated dev secrets in ``<data_dir>/secrets.env``
    and, while it runs, the embedded database URL in ``<data_dir>/runtime.env``,
    so `payhooks send`, `payhooks orders …` and the other commands find them.
    Later files win; the process environment wins over every file.
    """
    data_dir = Path(os.environ.get("PAYHOOKS_DATA_DIR", ".payhooks"))
    env_files = (data_dir / "secrets.env", data_dir / "runtime.env", Path(".env"))
    return Settings(_env_file=tuple(str(p) for p in env_files), **overrides)  # type: ignore[call-arg]
