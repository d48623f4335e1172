"""What the IPv6 header of a packet this vnet originates carries: source and hop limit.

Both the IP layer and ICMPv6 build packets of their own (ICMPv6 needs the
source for its checksum), so source address selection lives here, below both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vrouter.wire.ipv6 import build, is_link_local

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet


def source_address(vnet: Vnet, dst: bytes, ifp: Ifnet | None = None) -> bytes | None:
    """Return the address to send from towards ``dst`` (RFC 6724, simplified).

    Link-local destinations get the link-local address of ``ifp``; others a
    global address of ``ifp`` (the interface a reply leaves by), else of the
    route's egress interface, else any usable global address of the vnet;
    a deprecated address only when its interfaces have no other.
    """
    inet6 = vnet.inet6
    if is_link_local(dst) or (dst[0] == 0xFF and dst[1] & 0x0F <= 2):
        if ifp is None:
            return None
        return next((a.address for a in inet6.addrs_of(ifp) if a.link_local and a.usable), None)
    candidates: list[Ifnet] = []
    if ifp is not None:
        candidates.append(ifp)
    route = vnet.route.fib6.lookup(dst)
    if route is not None and route.ifnet is not None:
        candidates.append(route.ifnet)
    deprecated = None  # RFC 6724 rule 3: avoid deprecated addresses
    for candidate in candidates:
        for addr in inet6.addrs_of(candidate):
            if addr.usable and not addr.link_local:
                if not addr.deprecated:
                    return addr.address
                deprecated = deprecated or addr.address
    return deprecated or next((a.address for a in inet6.local.values() if a.usable), None)


def packet(vnet: Vnet, src: bytes, dst: bytes, next_header: int, payload: bytes) -> bytes:
    """Return an IPv6 packet this vnet originates (its default hop limit)."""
    return build(src, dst, next_header, payload, hop_limit=vnet.inet6.hop_limit)
