"""The import graph of ``vrouter``: no cycles, and the layers depend one way.

Nodes are modules; an edge is any import a module makes when it runs,
function-local imports included (``if TYPE_CHECKING:`` blocks excluded:
they never run).  There is no allow-list: a cycle fails the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import vrouter

ROOT = Path(vrouter.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """Return the module of ``vrouter`` that importing ``name`` runs (None: not ours)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, package: str) -> None:
        self.module = module
        self.package = package
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        for alias in node.names:
            full = f"{base}.{alias.name}"
            self._add(full if full in MODULES else base)

    def _add(self, name: str) -> None:
        target = _resolve(name)
        if target is not None and target != self.module:
            self.found.add(target)


def graph() -> dict[str, set[str]]:
    """Return every module's imports of other ``vrouter`` modules."""
    edges = {}
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        visitor = _Imports(module, package)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        edges[module] = visitor.found
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_finder_sees_a_cycle_when_there_is_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_includes_function_local_imports_and_skips_type_checking() -> None:
    edges = graph()
    assert "vrouter.daemon.ops" not in edges["vrouter.api.host"]
    assert "vrouter.api.server" in edges["vrouter.daemon.main"]


def test_there_is_no_import_cycle() -> None:
    found = cycles(graph())
    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


# Packages that must not import the ones named (a lower layer never imports a higher one).
LAYERS = {
    "vrouter.wire": ("vrouter.",),  # imports nothing else of vrouter
    "vrouter.core": ("vrouter.api", "vrouter.daemon", "vrouter.cli", "vrouter.transport"),
    "vrouter.transport": ("vrouter.api", "vrouter.daemon", "vrouter.cli"),
    "vrouter.api": ("vrouter.daemon", "vrouter.cli"),
}


def test_lower_layers_do_not_import_higher_ones() -> None:
    wrong = []
    for module, targets in graph().items():
        for package, forbidden in LAYERS.items():
            if module == package or module.startswith(package + "."):
                for target in targets:
                    if target.startswith(forbidden) and not target.startswith(package):
                        wrong.append(f"{module} imports {target}")
    assert wrong == []
