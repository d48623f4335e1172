"""The IP layers' protocol entries a transport subsystem takes over, and gives back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrouter.inet import ipv4
from vrouter.inet6 import ipv6

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet


def give_back(vnet: Vnet, proto: int, ours: tuple[object, ...]) -> None:
    """Where one of ``ours`` handles ``proto`` in ``vnet``, put the IP layer's own back."""
    for table, builtin in (
        (vnet.inet.protocols, ipv4.BUILTIN_PROTOCOLS),
        (vnet.inet6.protocols, ipv6.BUILTIN_PROTOCOLS),
    ):
        if table.get(proto) in ours:
            restore(table, proto, builtin.get(proto))


def restore(table: dict[int, Any], proto: int, original: object) -> None:
    """Make ``original`` the handler of ``proto`` in ``table`` (None: no handler)."""
    if original is not None:
        table[proto] = original
    else:
        table.pop(proto, None)
