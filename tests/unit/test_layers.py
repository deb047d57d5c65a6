"""Imports point one way: command line → receiver, workers, console → models → providers → nothing of ours.

Every import counts: at the top of a module, inside a function, under ``TYPE_CHECKING``. Strings handed
to ``importlib`` (PAYHOOKS_HANDLER_MODULES) are not imports here.
"""
from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.processes import REPO_ROOT
from tests.conftest import modules_after

OURS = ("providers", "models", "sandbox", "receiver", "workers", "console", "cli")

MAY_IMPORT: dict[str, frozenset[str]] = {  # what each package may import of ours
    "cli": frozenset(OURS),
    "console": frozenset({"receiver", "models", "providers"}),  # its server subclasses the receiver's gunicorn app
    "receiver": frozenset({"models", "providers"}),
    "workers": frozenset({"models", "providers"}),
    # what `payhooks up` and `send` imitate the outside world with, on top of the adapters (to sign bodies and
    # know each provider's types): only the command line, the tests and the benches import it
    "sandbox": frozenset({"providers"}),
    "models": frozenset({"providers"}),
    "providers": frozenset(),
}


def our_modules(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every module of our packages by dotted name (a package by its own name)."""
    found = {}
    for package in OURS:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of everything the module imports, anywhere in it."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno  # a submodule, or a name in ``base``


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """Module → {module of ours it imports: line}; a name resolves to the longest module that holds it."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for name, line in imported_names(module, path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.setdefault(name, line)
    return graph


def layer(module: str) -> str:
    return module.partition(".")[0]


def forbidden(graph: dict[str, dict[str, int]], modules: dict[str, Path]) -> list[str]:
    """Every arrow from one layer to a layer it may not import, as ``path:line a -> b``."""
    return [f"{modules[source].relative_to(REPO_ROOT)}:{line} {source} -> {target}"
            for source, edges in graph.items() for target, line in edges.items()
            if layer(target) != layer(source) and layer(target) not in MAY_IMPORT[layer(source)]]


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module, each sorted: modules that reach each other."""
    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for target in graph.get(todo.pop(), {}):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    reached = {node: reach(node) for node in graph}
    components = {tuple(sorted({node} | {other for other in reached[node] if node in reached.get(other, ())}))
                  for node in graph if node in reached[node]}
    return sorted(list(component) for component in components if len(component) > 1)


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return our_modules()


@pytest.mark.parametrize(("package", "above"), [
    ("models", {"receiver", "workers", "cli", "console", "sandbox", "flask"}),
    ("providers", {"flask", "werkzeug", *OURS} - {"providers"}),
])
def test_the_lowest_layers_import_nothing_above_them(modules, package, above):
    # Given every import in the package (functions and TYPE_CHECKING blocks included)
    found = [f"{path.relative_to(REPO_ROOT)}:{line} {name}"
             for module, path in modules.items() if module.split(".")[0] == package
             for name, line in imported_names(module, path) if name.split(".")[0] in above]
    # Then none of them reaches up (models: to the receiver, the workers, the command line, the console or
    # the sandbox; providers: to flask or anything of ours)
    assert found == []


def test_no_arrow_points_up(modules):
    assert forbidden(import_graph(modules), modules) == []


def test_no_import_cycles(modules):
    # Every import counts, so a cycle dodged with an import inside a function shows here too.
    graph = import_graph(modules)
    assert cycles(graph) == []
    packages: dict[str, dict[str, int]] = {}
    for source, edges in graph.items():
        for target in edges:
            if layer(source) != layer(target):
                packages.setdefault(layer(source), {})[layer(target)] = 0
    assert cycles(packages) == []


@pytest.mark.parametrize(("statement", "loads", "never"), [
    # The receiver's web stack and its connection pool stay out of every Celery worker process.
    pytest.param("import workers.celery_app, workers.processing, workers.batch", {"workers", "providers"},
                 {"flask", "werkzeug", "psycopg_pool", "receiver", "sandbox", "console", "cli"},
                 id="a-worker-loads-no-flask-and-no-receiver"),
    # `python -m receiver` imports the package (and receiver.server) before __main__ points
    # prometheus_client at its multiprocess directory: the views, which load it, come with create_app.
    pytest.param("import receiver, receiver.server", {"receiver"}, {"prometheus_client"},
                 id="the-receiver-package-loads-no-metrics-before-its-main-sets-them-up"),
    pytest.param("import providers.registry, providers.money", {"providers"},
                 {"flask", "sqlalchemy", *OURS} - {"providers"}, id="providers-load-nothing-of-ours"),
])
def test_a_fresh_interpreter_loads(statement: str, loads: set[str], never: set[str]) -> None:
    loaded = {name.split(".")[0] for name in modules_after(statement)}
    assert loads <= loaded and loaded & never == set(), loaded & never


# --- the checks above can fail: they catch what they are meant to catch -----------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return our_modules(tmp_path)


def test_a_cycle_through_a_function_import_is_found(tmp_path):
    modules = _tree(tmp_path, {
        "workers/__init__.py": "",
        "workers/handlers/__init__.py": "def load():\n    from workers.handlers import refund\n",
        "workers/handlers/refund.py": "from workers.handlers import register\n",
    })
    assert cycles(import_graph(modules)) == [["workers.handlers", "workers.handlers.refund"]]


def test_an_upward_import_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", tmp_path)
    modules = _tree(tmp_path, {
        "models/__init__.py": "",
        "models/order_service.py": "def f():\n    from receiver.providers.registry import PROVIDERS\n",
        "receiver/__init__.py": "",
        "receiver/providers/__init__.py": "",
        "receiver/providers/registry.py": "",
        "workers/__init__.py": "",
        "workers/processing.py": "from sandbox import samples\n",
        "sandbox/__init__.py": "",
        "sandbox/samples.py": "",
    })
    assert forbidden(import_graph(modules), modules) == [
        "models/order_service.py:2 models.order_service -> receiver.providers.registry",
        "workers/processing.py:1 workers.processing -> sandbox.samples",
    ]
