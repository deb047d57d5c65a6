"""Handlers: the business effect of one canonical kind, in the event's transaction.

A handler receives a :class:`HandlerContext` whose order row is already locked
(``SELECT … FOR UPDATE``), changes the order through ``ctx.move_order`` (which
also records the transition) and writes its outbound work with
``ctx.outbound`` (unique per ``(event, handler, kind)``). It raises an error
from :mod:`workers.errors` to fail; returning a string leaves a note on the
event.

Register a custom handler for a canonical kind; it runs after the built-in one
for that kind, in the same transaction::

    from workers.handlers import register

    @register("payment.succeeded", name="loyalty_points")
    def add_points(ctx):
        ctx.conn.execute(...)

and list its module in ``PAYHOOKS_HANDLER_MODULES`` so workers import it.

The pieces, so that no import goes in a circle: the registry in
:mod:`workers.handlers.registry`, the context in :mod:`workers.handlers.context`
(both re-exported here, the documented import path), the built-in handlers in
``failure``, ``fulfilment`` and ``refund`` (they import the registry), and the
one step that imports them, :func:`workers.handlers.loading.load_handlers`,
called at the worker's boot. This package does not import its handler modules.
"""
from __future__ import annotations

from workers.handlers.context import HandlerContext
from workers.handlers.registry import BUILTIN_MODULES, Handler, handlers_for, only_builtins, register

__all__ = ["BUILTIN_MODULES", "Handler", "HandlerContext", "handlers_for", "only_builtins", "register"]
