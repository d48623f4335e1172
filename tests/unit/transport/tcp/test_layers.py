"""The connection's layers: each module owns its methods and calls only the layers below it."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import pytest

from vrouter.transport.tcp import conn, input, output, tcb, timers
from vrouter.transport.tcp.conn import Connection
from vrouter.transport.tcp.input import TcpInput
from vrouter.transport.tcp.output import TcpOutput
from vrouter.transport.tcp.tcb import Tcb
from vrouter.transport.tcp.timers import TcpTimers

LAYERS: list[tuple[ModuleType, type, set[str]]] = [
    (tcb, Tcb, set()),
    (output, TcpOutput, {"tcb"}),
    (input, TcpInput, {"tcb", "output"}),
    (timers, TcpTimers, {"tcb", "output"}),
    (conn, Connection, {"tcb", "output", "input", "timers"}),
]
"""Each layer's module, its class, and the layers it may use."""
NAMES = {"tcb", "output", "input", "timers", "conn"}


def _imported_layers(module: ModuleType) -> set[str]:
    """Return the layers a module imports at run time (``if TYPE_CHECKING`` excluded)."""
    found = set()
    for node in ast.parse(inspect.getsource(module)).body:  # top level only
        if isinstance(node, ast.ImportFrom) and node.module:
            head, _, last = node.module.rpartition(".")
            if head == "vrouter.transport.tcp" and last in NAMES:
                found.add(last)
    return found


@pytest.mark.parametrize(("module", "allowed"), [(m, a) for m, _, a in LAYERS])
def test_a_layer_imports_only_the_layers_below_it(module: ModuleType, allowed: set[str]) -> None:
    assert _imported_layers(module) <= allowed


def test_connection_is_the_layers_in_order() -> None:
    assert Connection.__mro__ == (Connection, TcpInput, TcpTimers, TcpOutput, Tcb, object)


def test_no_layer_redefines_a_method_of_another() -> None:
    owned = {cls: {n for n in vars(cls) if not n.startswith("__")} for _, cls, _ in LAYERS}
    for a, names_a in owned.items():
        for b, names_b in owned.items():
            if a is not b:
                assert not names_a & names_b, (a.__name__, b.__name__)


@pytest.mark.parametrize("cls", [cls for _, cls, _ in LAYERS])
def test_a_layer_uses_only_methods_it_has(cls: type) -> None:
    """A ``self.x`` naming a method or property of the connection must be one of the layer's."""
    methods = {
        name
        for name, value in inspect.getmembers(Connection)
        if callable(value) or isinstance(value, property)
    }
    tree = ast.parse(inspect.getsource(cls))
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("self", "conn")
    }
    missing = {name for name in used & methods if not hasattr(cls, name)}
    assert not missing, f"{cls.__name__} calls up into {sorted(missing)}"
