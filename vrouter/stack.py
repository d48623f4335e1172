"""The built-in subsystems, in the order a vnet is assembled from them.

This is the stateless, build-once table (FreeBSD's ``SYSINIT`` list): a new
:class:`~vrouter.core.registry.Registry` made from it holds no vnet state.
"""

from __future__ import annotations

import functools

from vrouter.core.registry import Registry, Subsystem
from vrouter.core.sysctl import Sysctl
from vrouter.core.vnet import VnetTree
from vrouter.firewall import subsystem as firewall
from vrouter.inet import state as inet_state
from vrouter.inet6 import state as inet6_state
from vrouter.link import state as link_state
from vrouter.route import state as route_state


def builtin_subsystems() -> list[Subsystem]:
    """Return the subsystems every vnet gets."""
    return [
        link_state.SUBSYSTEM,
        route_state.SUBSYSTEM,
        inet_state.SUBSYSTEM,
        inet6_state.SUBSYSTEM,
        firewall.SUBSYSTEM,
    ]


@functools.cache
def builtin_sysctl() -> Sysctl:
    """Return the sysctl tree of the built-in subsystems."""
    return Registry(builtin_subsystems()).sysctl()


def new_tree() -> VnetTree:
    """Return an empty vnet tree with the built-in subsystems loaded."""
    return VnetTree(Registry(builtin_subsystems()))
