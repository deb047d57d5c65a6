"""A custom handler that makes every handled event take a while, and says who is handling it.

Loaded by workers through ``PAYHOOKS_HANDLER_MODULES`` in the worker-kill
scenario only. It runs after the built-in handler, inside the event's
transaction (the order row locked, the deliveries written, nothing committed),
names the transaction ``faults:<worker process group>:<event id>`` in
``pg_stat_activity`` and sleeps 100–300 ms. The harness kills the group it
sees there: a kill that lands mid-handler for certain, and names its event.
"""
from __future__ import annotations

import os
import random
import time

from sqlalchemy import text

from bench.faults import MARK
from workers.handlers import HandlerContext, register

DELAY_SECONDS = (0.1, 0.3)


def mark_and_wait(ctx: HandlerContext) -> None:
    name = f"{MARK}:{os.getpgid(0)}:{ctx.event_id}"
    ctx.conn.execute(text("SELECT set_config('application_name', :name, true)"), {"name": name})
    ctx.conn.execute(text("SELECT 1"))  # the new name shows once a statement has run under it
    time.sleep(random.uniform(*DELAY_SECONDS))


for _kind in ("payment.succeeded", "payment.failed", "payment.refunded", "payment.charged_back"):
    register(_kind, name="faults_slow")(mark_and_wait)
