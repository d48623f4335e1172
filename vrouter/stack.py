"""The built-in subsystems, in the order a vnet is assembled from them.

This is the stateless, build-once table (FreeBSD's ``SYSINIT`` list): a new
:class:`~vrouter.core.registry.Registry` made from it holds no vnet state.

Subsystems load and unload at run time (``vrouterctl module``): a built-in
that was unloaded comes back from this table, a third-party one from the
``vrouter.subsystems`` entry-point group (:func:`discover`).  The
:data:`ESSENTIAL` built-ins stay loaded: every vnet's interfaces, addresses
and control-plane views use them.
"""

from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass

from vrouter.core.registry import Registry, Subsystem
from vrouter.core.sysctl import Sysctl
from vrouter.core.vnet import VnetTree
from vrouter.firewall import subsystem as firewall
from vrouter.inet import subsystem as inet_subsystem
from vrouter.inet6 import subsystem as inet6_subsystem
from vrouter.link import state as link_state
from vrouter.mirror import state as mirror_state
from vrouter.route import state as route_state
from vrouter.services.dhcp import state as dhcp_state
from vrouter.transport import sockets as transport
from vrouter.transport.tcp import stack as tcp_stack


def builtin_subsystems() -> list[Subsystem]:
    """Return the subsystems every vnet gets."""
    return [
        link_state.SUBSYSTEM,
        route_state.SUBSYSTEM,
        inet_subsystem.SUBSYSTEM,
        inet6_subsystem.SUBSYSTEM,
        firewall.SUBSYSTEM,
        transport.SUBSYSTEM,
        tcp_stack.SUBSYSTEM,
        mirror_state.SUBSYSTEM,
        dhcp_state.SUBSYSTEM,
    ]


ESSENTIAL = ("link", "route", "inet", "inet6")
"""Built-ins never unloaded at run time (interfaces, addresses and the API rely on them)."""

ENTRY_POINT_GROUP = "vrouter.subsystems"
"""Where third-party subsystems register: an entry point names a
:class:`~vrouter.core.registry.Subsystem` (or a callable returning one)."""


@dataclass(frozen=True, slots=True)
class Available:
    """A subsystem that can be loaded by name, and where it comes from."""

    subsystem: Subsystem
    source: str
    """``builtin`` or ``entry point NAME = MODULE:ATTR (DISTRIBUTION VERSION)``."""


def discover() -> tuple[dict[str, Available], list[str]]:
    """Return the loadable subsystems by name (built-ins win a clash) and the problems met.

    Each entry point of :data:`ENTRY_POINT_GROUP` is imported; one that fails
    to import or yields no Subsystem is reported in the problems, not raised.
    """
    found = {s.name: Available(s, "builtin") for s in builtin_subsystems()}
    problems: list[str] = []
    for entry in sorted(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name
    ):
        dist = entry.dist
        where = f"entry point {entry.name} = {entry.value}" + (
            f" ({dist.name} {dist.version})" if dist is not None else ""
        )
        try:
            obj = entry.load()
            if not isinstance(obj, Subsystem) and callable(obj):
                obj = obj()
        except Exception as err:
            problems.append(f"{where}: cannot load: {err!r}")
            continue
        if not isinstance(obj, Subsystem):
            problems.append(f"{where}: yields {type(obj).__name__}, not a Subsystem")
            continue
        known = found.get(obj.name)
        if known is not None:
            if known.subsystem is not obj:
                problems.append(f"{where}: subsystem {obj.name!r} is already {known.source}")
            continue
        found[obj.name] = Available(obj, where)
    return found, problems


@functools.cache
def builtin_sysctl() -> Sysctl:
    """Return the sysctl tree of the built-in subsystems."""
    return Registry(builtin_subsystems()).sysctl()


def new_tree() -> VnetTree:
    """Return an empty vnet tree with the built-in subsystems loaded."""
    return VnetTree(Registry(builtin_subsystems()))
