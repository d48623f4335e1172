"""What the IPv4 header of a packet this vnet originates carries: source and identification.

Both the IP layer and ICMP build packets of their own, so the choice of a
source address and the identification counter live here, below both.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet


def next_ident(vnet: Vnet) -> int:
    """Return the next IP identification value of this vnet."""
    inet = vnet.inet
    inet.ident = (inet.ident + 1) & 0xFFFF
    return inet.ident


def source_address(vnet: Vnet, dst: bytes) -> bytes | None:
    """Return the address this vnet sends from towards ``dst`` (None without a route)."""
    route = vnet.route.fib.lookup(dst)
    if route is None or route.ifnet is None or not route.ifnet.addresses:
        return None
    target = ipaddress.IPv4Address(route.gateway or dst)
    for iface in route.ifnet.addresses:
        if target in iface.network:
            return iface.ip.packed
    return route.ifnet.addresses[0].ip.packed
