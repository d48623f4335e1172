"""A stateless DHCPv6 server per interface (RFC 8415 Information-request, RFC 3646 DNS).

An interface configured with ``dhcp6`` joins All_DHCP_Relay_Agents_and_Servers
(ff02::1:2) and answers an Information-request with a Reply carrying its
Server Identifier (the DUID-LL of the interface's MAC), the client's
Client Identifier, the DNS servers and the domain search list, and an
information refresh time when one is configured.  It hands out no
addresses: hosts take those by SLAAC from the interface's RAs, whose O flag
tells them to ask here.

RFC 8415 16.12 says which requests a server discards: one naming another
server, or carrying an IA option.  Those, every other message type (a
Solicit for addresses this server does not have) and malformed datagrams
are dropped and counted (:class:`~vrouter.inet6.state.Dhcp6Stats`, and on
the interface by reason).
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vrouter.inet6 import ipv6, nd
from vrouter.wire import dhcp6, udp
from vrouter.wire.errors import WireError
from vrouter.wire.ipv6 import DST, NH_UDP, SRC, build, is_link_local

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.dhcp6")

GROUP = dhcp6.ALL_DHCP_RELAY_AGENTS_AND_SERVERS


@dataclass(frozen=True, slots=True)
class Dhcp6Settings:
    """What an interface's server hands out."""

    dns: tuple[bytes, ...] = ()
    """Recursive DNS servers (RFC 3646 option 23)."""
    domains: tuple[str, ...] = ()
    """The domain search list (RFC 3646 option 24)."""
    refresh: int | None = None
    """Information refresh time in seconds (RFC 8415 21.23), None: not sent (a day)."""

    def options(self) -> list[tuple[int, bytes]]:
        """Return the configuration options of a Reply."""
        out: list[tuple[int, bytes]] = []
        if self.dns:
            out.append((dhcp6.OPT_DNS_SERVERS, b"".join(self.dns)))
        if self.domains:
            out.append((dhcp6.OPT_DOMAIN_LIST, dhcp6.domain_list(self.domains)))
        if self.refresh is not None:
            out.append((dhcp6.OPT_INFORMATION_REFRESH_TIME, struct.pack("!I", self.refresh)))
        return out


def enable(vnet: Vnet, ifp: Ifnet, settings: Dhcp6Settings) -> Dhcp6Settings | None:
    """Serve ``settings`` on ``ifp``; return what it served before (None: nothing)."""
    inet6 = vnet.inet6
    old = inet6.dhcp6.get(ifp.name)
    inet6.dhcp6[ifp.name] = settings
    inet6.udp_services[dhcp6.SERVER_PORT] = input
    nd.join(vnet, ifp, GROUP)
    return old


def disable(vnet: Vnet, ifp: Ifnet) -> Dhcp6Settings | None:
    """Stop serving on ``ifp``; return what it served (None: nothing)."""
    inet6 = vnet.inet6
    old = inet6.dhcp6.pop(ifp.name, None)
    if old is not None:
        nd.leave(vnet, ifp, GROUP)
    if not inet6.dhcp6:
        inet6.udp_services.pop(dhcp6.SERVER_PORT, None)
    return old


def _drop(ifp: Ifnet, reason: str, error: bool = False) -> bool:
    stats = ifp.vnet.inet6.dhcp6_stats
    if error:
        stats.bad += 1
    else:
        stats.ignored += 1
    ifp.drop(reason, error=error)
    return True


def input(ifp: Ifnet, packet: memoryview, offset: int, unicast: bool, now: float) -> bool:
    """Take a UDP datagram to port 547 on ``ifp``; False if ``ifp`` serves no DHCPv6."""
    vnet = ifp.vnet
    settings = vnet.inet6.dhcp6.get(ifp.name)
    if settings is None:
        return False
    stats = vnet.inet6.dhcp6_stats
    stats.received += 1
    src, dst = bytes(packet[SRC]), bytes(packet[DST])
    datagram = packet[offset:]
    try:
        header = udp.UdpHeader.parse(datagram)
    except WireError as err:
        return _drop(ifp, err.reason, error=True)
    datagram = datagram[: header.length]
    if header.checksum == 0 or not udp.verify(src, dst, datagram):
        return _drop(ifp, "udp_badsum", error=True)
    try:
        message = dhcp6.parse(datagram[8:])
    except WireError as err:
        return _drop(ifp, err.reason, error=True)
    if message.type != dhcp6.INFORMATION_REQUEST:
        return _drop(ifp, "dhcp6_unsupported")
    server_id = dhcp6.duid_ll(ifp.mac)
    named = message.get(dhcp6.OPT_SERVERID)
    if (named is not None and named != server_id) or message.has(dhcp6.IA_OPTIONS):
        return _drop(ifp, "dhcp6_invalid", error=True)  # RFC 8415 16.12
    if not is_link_local(src):
        return _drop(ifp, "dhcp6_invalid", error=True)  # a client on the link asks from fe80::
    stats.information_requests += 1
    options = [(dhcp6.OPT_SERVERID, server_id)]
    client_id = message.get(dhcp6.OPT_CLIENTID)
    if client_id is not None:
        options.append((dhcp6.OPT_CLIENTID, client_id))
    options += settings.options()
    reply = dhcp6.Message(dhcp6.REPLY, message.transaction, tuple(options)).emit()
    us = nd.link_source(vnet, ifp)
    if us is None:
        return _drop(ifp, "dhcp6_nosource")
    payload = udp.build(us, src, dhcp6.SERVER_PORT, header.src_port, reply)
    if ipv6.output(vnet, build(us, src, NH_UDP, payload, hop_limit=vnet.inet6.hop_limit), now, ifp):
        stats.replies += 1
    return True
