"""Build the five adapters from the one settings object."""
from __future__ import annotations

from typing import TYPE_CHECKING

from receiver.providers.base import Adapter, Clock, system_clock
from receiver.providers.processout import ProcessOutAdapter
from receiver.providers.senfenico import SenfenicoAdapter
from receiver.providers.shadhinpay import ShadhinPayAdapter
from receiver.providers.smartpay import SmartpayAdapter
from receiver.providers.yoco import YocoAdapter

if TYPE_CHECKING:
    from models.settings import Settings

PROVIDERS = ("smartpay", "processout", "senfenico", "yoco", "shadhinpay")


def build_adapters(settings: Settings, *, clock: Clock = system_clock) -> dict[str, Adapter]:
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
