"""Build the five adapters from the one settings object.

The settings are described by what this module reads (:class:`AdapterSettings`),
so the adapters import nothing of ours: ``models.settings.Settings`` fits it.
"""
from __future__ import annotations

from typing import Protocol

from providers.base import Adapter, Clock, system_clock
from providers.processout import ProcessOutAdapter
from providers.senfenico import SenfenicoAdapter
from providers.shadhinpay import ShadhinPayAdapter
from providers.smartpay import SmartpayAdapter
from providers.yoco import YocoAdapter


class _Secret(Protocol):
    def get_secret_value(self) -> str: ...


class AdapterSettings(Protocol):
    """What the adapters take from the settings (``models.settings.Settings`` has all of it)."""

    processout_basic_auth: _Secret | None
    processout_allow_unauthenticated: bool
    smartpay_tolerance_seconds: int
    yoco_tolerance_seconds: int
    shadhinpay_tolerance_seconds: int

    def secrets_for(self, provider: str) -> list[str]: ...


PROVIDERS = ("smartpay", "processout", "senfenico", "yoco", "shadhinpay")


def build_adapters(settings: AdapterSettings, *, clock: Clock = system_clock) -> dict[str, Adapter]:
    """One adapter per provider name, secrets and tolerances taken from ``settings``."""
    basic_auth = settings.processout_basic_auth
    adapters: dict[str, Adapter] = {
        "smartpay": SmartpayAdapter(
            secrets=settings.secrets_for("smartpay"),
            tolerance_seconds=settings.smartpay_tolerance_seconds,
            clock=clock,
        ),
        "processout": ProcessOutAdapter(
            basic_auth=basic_auth.get_secret_value() if basic_auth is not None else None,
            allow_unauthenticated=settings.processout_allow_unauthenticated,
            clock=clock,
        ),
        "senfenico": SenfenicoAdapter(secrets=settings.secrets_for("senfenico"), clock=clock),
        "yoco": YocoAdapter(
            secrets=settings.secrets_for("yoco"),
            tolerance_seconds=settings.yoco_tolerance_seconds,
            clock=clock,
        ),
        "shadhinpay": ShadhinPayAdapter(
            secrets=settings.secrets_for("shadhinpay"),
            tolerance_seconds=settings.shadhinpay_tolerance_seconds,
            clock=clock,
        ),
    }
    return adapters
