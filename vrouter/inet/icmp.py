"""ICMP for one vnet: echo replies and error messages (RFC 792, RFC 1812).

This module builds what ICMP has to say and returns it as a whole IPv4
datagram; the IP layer (:mod:`vrouter.inet.ipv4`) sends it, as smoltcp's
interface sends the reply its ICMP handler returns.  So ICMP needs nothing
of the IP layer but the source address and identification
(:mod:`vrouter.inet.source`).

Errors are never sent about an ICMP error, a non-first fragment, a packet
to or from a broadcast or multicast address, or a martian source
(RFC 1812 4.3.2.7), and are limited to ``net.inet.icmp.errratelimit`` per
second per vnet with a token bucket.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from vrouter.inet.source import next_ident, source_address
from vrouter.wire import icmp4, ipv4
from vrouter.wire.errors import WireError

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

PROTO = ipv4.PROTO_ICMP


def input(ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float) -> bytes | None:
    """Process an ICMP message addressed to this vnet; return the echo reply to send, if any."""
    vnet = ifp.vnet
    stat = vnet.inet.icmp
    stat.in_msgs += 1
    try:
        message = icmp4.IcmpMessage.parse(packet[hlen:])
    except WireError as err:
        stat.in_errors += 1
        ifp.drop(err.reason, error=True)
        return None
    if message.type != icmp4.ECHO_REQUEST:
        return None
    stat.in_echo += 1
    if not unicast:
        stat.in_bcast_echo += 1
        return None
    return ipv4.build(
        bytes(packet[ipv4.DST]),
        bytes(packet[ipv4.SRC]),
        PROTO,
        icmp4.echo_reply(message),
        ttl=vnet.inet.ttl,
        ident=next_ident(vnet),
        tos=packet[1],
    )


def _may_send(vnet: Vnet, packet: memoryview, now: float) -> bool:
    """Apply RFC 1812 4.3.2.7 and the rate limit."""
    inet = vnet.inet
    stat = inet.icmp
    src = bytes(packet[ipv4.SRC])
    dst = bytes(packet[ipv4.DST])
    frag = (packet[6] << 8) | packet[7]
    if (
        src in inet.local  # our own packet: nobody to tell
        or src[0] >= 224
        or src[0] in (0, 127)
        or src in inet.broadcasts
        or dst[0] >= 224
        or dst in inet.broadcasts
        or frag & ipv4.OFFSET_MASK
    ):
        stat.suppressed += 1
        return False
    hlen = (packet[0] & 0x0F) << 2
    if packet[9] == PROTO and len(packet) > hlen:
        icmp_type = packet[hlen]
        if icmp_type in icmp4.ERROR_TYPES or icmp_type > 18:
            stat.suppressed += 1
            return False
    if not inet.icmp_bucket.take(inet.icmp_errrate, now):
        stat.ratelimited += 1
        return False
    return True


def error(
    vnet: Vnet,
    ifp: Ifnet | None,
    packet: memoryview,
    type_: int,
    code: int,
    now: float,
    rest: int = 0,
) -> bytes | None:
    """Return the IPv4 datagram of an ICMP error about ``packet`` (an IP datagram).

    None where no error may be sent (the rules and rate limit above) or no
    address can be its source.  The source address is the receiving
    interface's address on the sender's network (so traceroute shows the
    hop the probe entered), else the address of the route back.
    """
    if not _may_send(vnet, packet, now):
        return None
    target = bytes(packet[ipv4.SRC])
    source = None
    if ifp is not None and ifp.addresses:
        addr = ipaddress.IPv4Address(target)
        source = next(
            (a.ip.packed for a in ifp.addresses if addr in a.network), ifp.addresses[0].ip.packed
        )
    if source is None:
        source = source_address(vnet, target)
    if source is None:
        return None
    message = icmp4.error(type_, code, packet, rest)
    return ipv4.build(source, target, PROTO, message, ttl=vnet.inet.ttl, ident=next_ident(vnet))
