"""The handler registry: which handlers run for a canonical kind, built-in ones first.

A module of its own, like a Flask ``Blueprint``: handler modules import it
to register (``@register(kind, name=...)``), and one explicit step, the
worker's boot (:func:`workers.handlers.loading.load_handlers`), imports the
handler modules. Nothing here imports a handler module.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workers.handlers.context import HandlerContext

Handler = Callable[["HandlerContext"], "str | None"]

BUILTIN_MODULES = ("workers.handlers.failure", "workers.handlers.fulfilment", "workers.handlers.refund")

_registry: dict[str, list[tuple[str, Handler]]] = {}


def _builtin(handler: Handler) -> bool:
    return handler.__module__ in BUILTIN_MODULES


def register(kind: str, *, name: str) -> Callable[[Handler], Handler]:
    """Run ``handler`` for ``kind``; a custom handler named like another one of that kind replaces it."""

    def decorator(handler: Handler) -> Handler:
        entries = _registry.setdefault(kind, [])
        if _builtin(handler) and any(n == name and not _builtin(h) for n, h in entries):
            return handler  # a custom handler registered first already replaced this built-in one
        entries[:] = [(n, h) for n, h in entries if n != name] + [(name, handler)]
        return handler

    return decorator


def handlers_for(kind: str) -> list[tuple[str, Handler]]:
    """The handlers of ``kind`` in the order they run: built-in ones first, whichever module was imported first."""
    entries = _registry.get(kind, [])
    return [entry for entry in entries if _builtin(entry[1])] + [
        entry for entry in entries if not _builtin(entry[1])]


def only_builtins(kind: str) -> bool:
    """Whether every handler of a kind is one of ours (their writes can be batched, see workers.batch)."""
    return all(_builtin(handler) for _, handler in handlers_for(kind))
