"""The one step that imports the handler modules so they register: the worker's boot calls it.

:func:`workers.celery_app.make_celery` calls it with
``PAYHOOKS_HANDLER_MODULES`` (a module that fails to import stops the
worker at boot, not per task); :class:`workers.processing.Runtime` calls it
for the built-in handlers; `payhooks providers` before it lists them.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterable


def load_handlers(modules: Iterable[str] = ()) -> None:
    """Import the built-in handler modules, then ``modules`` (custom handlers); importing twice is a no-op."""
    from workers.handlers import failure, fulfilment, refund  # noqa: F401  (they register)

    for module in modules:
        importlib.import_module(module)
