"""The IP layers' protocol entries a transport subsystem takes over, and gives back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrouter.core import tables
from vrouter.inet import ipv4
from vrouter.inet6 import ipv6

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.inet.state import InetState
    from vrouter.inet6.state import Inet6State


def give_back(vnet: Vnet, proto: int, ours: tuple[object, ...]) -> None:
    """Where one of ``ours`` handles ``proto`` in ``vnet``, put the IP layer's own back."""
    for state, builtin in (
        (vnet.inet, ipv4.BUILTIN_PROTOCOLS),
        (vnet.inet6, ipv6.BUILTIN_PROTOCOLS),
    ):
        if state.protocols.get(proto) in ours:
            restore(state, proto, builtin.get(proto))


def restore(state: InetState | Inet6State, proto: int, original: Any) -> None:
    """Make ``original`` the handler of ``proto`` in ``state.protocols`` (None: no handler)."""
    if original is not None:
        state.protocols = tables.put(state.protocols, proto, original)
    else:
        state.protocols = tables.drop(state.protocols, proto)
