"""The world around payhooks, run in the harness process: SMTP (with a login), the merchant, ProcessOut.

All three are the kit's fakes (:mod:`testkit.fakes`); the SMTP server here
demands a login, so the SMTP password is really used and can be looked for in
the logs.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from testkit.fakes import FakeProcessOut, MerchantServer, SmtpServer


@dataclass
class Outside:
    """Everything payhooks talks to besides Postgres and the broker."""

    mail: SmtpServer
    merchant: MerchantServer = field(default_factory=MerchantServer)
    processout: FakeProcessOut = field(default_factory=FakeProcessOut)

    def http_keys(self) -> Counter[str]:
        """How many calls arrived per ``Idempotency-Key`` (fulfilment and SMS)."""
        return self.merchant.idempotency_keys()

    def close(self) -> None:
        for closer in (self.mail.close, self.merchant.close, self.processout.close):
            try:
                closer()
            except (OSError, RuntimeError):  # best effort: the others still close
                continue
