"""Closed ports: what a vnet answers to UDP and TCP that nobody takes, IPv4 and IPv6 alike.

Before the transport subsystem attaches, every port is closed; after, so is
every UDP port no socket holds.  A closed UDP port is owed ICMP port
unreachable (RFC 1122 4.1.3.1), a closed TCP port a reset (RFC 9293
3.10.7.1).  These functions check the datagram or segment, count what they
drop on the interface, and return what is owed; the IP layer sends it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vrouter.wire import tcp, udp
from vrouter.wire.errors import WireError

if TYPE_CHECKING:
    from vrouter.link.ifnet import Ifnet


def udp_input(ifp: Ifnet, src: bytes, dst: bytes, datagram: memoryview) -> bool:
    """Take a UDP datagram to a closed port; True if it is valid, so port unreachable is owed.

    Counted on ``ifp``: the parse error, ``udp_badsum`` (a zero checksum is
    valid in IPv4 only), else ``udp_noport``.
    """
    try:
        udp.UdpHeader.parse(datagram)
    except WireError as err:
        ifp.drop(err.reason, error=True)
        return False
    if not udp.verify(src, dst, datagram):
        ifp.drop("udp_badsum", error=True)
        return False
    ifp.drop("udp_noport")
    return True


def tcp_input(
    ifp: Ifnet, src: bytes, dst: bytes, segment: memoryview, unicast: bool
) -> bytes | None:
    """Take a TCP segment to a closed port; return the reset it is owed, if any.

    Counted on ``ifp``: the parse error, ``tcp_badsum``, else ``tcp_noport``.
    Nothing is owed to a segment that was not unicast or that is a reset.
    """
    try:
        header = tcp.TcpHeader.parse(segment)
    except WireError as err:
        ifp.drop(err.reason, error=True)
        return None
    if not tcp.verify(src, dst, segment):
        ifp.drop("tcp_badsum", error=True)
        return None
    ifp.drop("tcp_noport")
    return tcp.reset_for(dst, src, header) if unicast else None
