"""The handler registry: built-in handlers run first whichever module registered first; a custom one may replace one."""
from __future__ import annotations

import pytest

from tests.conftest import modules_after
from workers.handlers import registry
from workers.handlers.registry import handlers_for, only_builtins, register


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch):
    monkeypatch.setattr(registry, "_registry", {})


def _handler(module: str):
    def handler(ctx):
        return None

    handler.__module__ = module
    return handler


BUILTIN = "workers.handlers.fulfilment"


def test_builtin_handlers_run_first_whichever_was_registered_first():
    # Given a custom module imported before the worker's boot imported the built-in handlers
    register("payment.succeeded", name="loyalty_points")(custom := _handler("mycompany.extras"))
    register("payment.succeeded", name="fulfilment")(builtin := _handler(BUILTIN))
    # Then the built-in one still runs first
    assert handlers_for("payment.succeeded") == [("fulfilment", builtin), ("loyalty_points", custom)]
    assert not only_builtins("payment.succeeded")
    assert only_builtins("payment.failed") and handlers_for("payment.failed") == []


@pytest.mark.parametrize("custom_first", [True, False])
def test_a_custom_handler_replaces_the_builtin_one_of_its_name(custom_first):
    builtin, custom = _handler(BUILTIN), _handler("mycompany.extras")
    order = [custom, builtin] if custom_first else [builtin, custom]
    for handler in order:
        register("payment.succeeded", name="fulfilment")(handler)
    assert handlers_for("payment.succeeded") == [("fulfilment", custom)]


def test_the_package_does_not_import_its_handler_modules():
    loaded = modules_after("import workers.handlers")
    assert "workers.handlers.registry" in loaded
    assert {"workers.handlers.failure", "workers.handlers.fulfilment", "workers.handlers.refund"} & loaded == set()
