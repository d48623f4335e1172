"""ICMPv6 for one vnet: echo, ND dispatch, Packet Too Big, error messages.

This module builds the echo replies and errors it has to send and returns
them as whole IPv6 packets; the IP layer (:mod:`vrouter.inet6.ipv6`) sends
them, as smoltcp's interface sends the reply its ICMP handler returns.
ICMPv6 needs nothing of the IP layer but source address selection
(:mod:`vrouter.inet6.source`).  ND messages go to :mod:`vrouter.inet6.nd`.

Errors follow RFC 4443 2.4: never about an ICMPv6 error, a packet from an
unspecified or multicast source, or our own packet; never about a packet
to a multicast address or received as link-layer multicast, except Packet
Too Big and Parameter Problem for an unrecognised option of action 10
(``allow_multicast``); limited to ``net.inet6.icmp6.errratelimit`` per
second per vnet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vrouter.inet6 import mld, nd
from vrouter.inet6.source import packet as ip6_packet
from vrouter.inet6.source import source_address
from vrouter.wire import icmp6
from vrouter.wire import mld as mld_wire
from vrouter.wire.errors import WireError
from vrouter.wire.ipv6 import DST, NH_ICMPV6, SRC, UNSPECIFIED, walk

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

PROTO = NH_ICMPV6
PMTU_LIFETIME = 600.0
"""Seconds a learnt path MTU is kept (RFC 8201 5.3 suggests 10 minutes)."""
PMTU_ENTRIES = 4096
"""Destinations with a learnt path MTU kept per vnet; beyond it the oldest goes."""

_ND_INPUT = {
    icmp6.NEIGHBOR_SOLICIT: nd.ns_input,
    icmp6.NEIGHBOR_ADVERT: nd.na_input,
    icmp6.ROUTER_SOLICIT: nd.rs_input,
    icmp6.ROUTER_ADVERT: nd.ra_input,
    mld_wire.QUERY: mld.query_input,
}


def input(
    ifp: Ifnet, packet: memoryview, offset: int, unicast: bool, now: float
) -> bytes | None:
    """Process an ICMPv6 message addressed to this vnet; return the echo reply to send, if any."""
    vnet = ifp.vnet
    stat = vnet.inet6.icmp
    stat.in_msgs += 1
    src = bytes(packet[SRC])
    dst = bytes(packet[DST])
    try:
        message = icmp6.Icmp6Message.parse(src, dst, packet[offset:])
    except WireError as err:
        stat.in_errors += 1
        ifp.drop(err.reason, error=True)
        return None
    handler = _ND_INPUT.get(message.type)
    if handler is not None:
        handler(ifp, packet, message, now)
        return None
    if message.type == icmp6.ECHO_REQUEST:
        stat.in_echo += 1
        return _echo(vnet, ifp, packet, message)
    if message.type == icmp6.PACKET_TOO_BIG:
        stat.in_error_msgs += 1
        stat.in_toobig += 1
        _learn_pmtu(vnet, message, now)
    elif message.type == icmp6.REDIRECT:
        stat.in_redirect += 1
    elif icmp6.is_error(message.type):
        stat.in_error_msgs += 1
    return None


def _echo(
    vnet: Vnet, ifp: Ifnet, packet: memoryview, request: icmp6.Icmp6Message
) -> bytes | None:
    dst = bytes(packet[DST])
    asker = bytes(packet[SRC])
    if asker == UNSPECIFIED:
        return None
    # A reply to a multicast request comes from a unicast address of the
    # interface (RFC 4443 4.2).
    source = dst if dst[0] != 0xFF else source_address(vnet, asker, ifp)
    if source is None:
        return None
    reply = icmp6.echo_reply(request, source, asker)
    return ip6_packet(vnet, source, asker, NH_ICMPV6, reply)


def _learn_pmtu(vnet: Vnet, message: icmp6.Icmp6Message, now: float) -> None:
    """Remember the MTU a router reported for the quoted destination (RFC 8201)."""
    if len(message.body) < 40:
        return
    inet6 = vnet.inet6
    quoted_src = message.body[SRC]
    ours = quoted_src in inet6.local or any(address == quoted_src for _, address in inet6.linklocal)
    if not ours:
        return
    dst = message.body[DST]
    mtu = max(message.rest, icmp6.MIN_MTU)
    learnt = inet6.pmtu.get(dst)
    if learnt is not None and learnt[1] >= now:
        mtu = min(mtu, learnt[0])  # a PTB never raises the path MTU (RFC 8201 4)
    if dst not in inet6.pmtu and len(inet6.pmtu) >= PMTU_ENTRIES:
        for key in [k for k, (_, expiry) in inet6.pmtu.items() if expiry < now]:
            del inet6.pmtu[key]
        if len(inet6.pmtu) >= PMTU_ENTRIES:
            del inet6.pmtu[next(iter(inet6.pmtu))]  # the oldest learnt
    inet6.pmtu[dst] = (mtu, now + PMTU_LIFETIME)


def path_mtu(vnet: Vnet, dst: bytes, link_mtu: int, now: float) -> int:
    """Return the MTU to use towards ``dst``: the link's, or less if a PTB said so."""
    learnt = vnet.inet6.pmtu.get(dst)
    if learnt is None:
        return link_mtu
    if learnt[1] < now:
        del vnet.inet6.pmtu[dst]
        return link_mtu
    return min(link_mtu, learnt[0])


def _is_icmp6_error(packet: memoryview) -> bool:
    """Return True if ``packet`` carries an ICMPv6 error, behind any extension headers."""
    try:
        chain = walk(packet, len(packet), local=True)
    except WireError:
        return False
    return (
        chain.proto == NH_ICMPV6
        and chain.fragment_offset < 0
        and chain.offset < len(packet)
        and icmp6.is_error(packet[chain.offset])
    )


def _may_send(
    vnet: Vnet, packet: memoryview, l2_multicast: bool, allow_multicast: bool, now: float
) -> bool:
    inet6 = vnet.inet6
    stat = inet6.icmp
    src = bytes(packet[SRC])
    dst = bytes(packet[DST])
    if src == UNSPECIFIED or src[0] == 0xFF or src in inet6.local:
        stat.suppressed += 1
        return False
    if (dst[0] == 0xFF or l2_multicast) and not allow_multicast:
        stat.suppressed += 1
        return False
    if _is_icmp6_error(packet):
        stat.suppressed += 1
        return False
    if not inet6.icmp_bucket.take(inet6.icmp6_errrate, now):
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
    *,
    l2_multicast: bool = False,
    allow_multicast: bool = False,
) -> bytes | None:
    """Return the IPv6 packet of an ICMPv6 error about ``packet``, back to its source.

    None where no error may be sent (the rules and rate limit above) or no
    address can be its source.  The source address is the receiving
    interface's (link-local if the offender's source is link-local), so
    traceroute6 shows the hop the probe entered; otherwise the address of
    the route back.  A link-local destination is reached through ``ifp``.
    """
    if not _may_send(vnet, packet, l2_multicast, allow_multicast, now):
        return None
    target = bytes(packet[SRC])
    offended = bytes(packet[DST])
    # An error about a packet sent to one of our unicast addresses comes from
    # that address (RFC 4443 2.2 (a)).
    if offended in vnet.inet6.local or (
        ifp is not None and (ifp.name, offended) in vnet.inet6.linklocal
    ):
        source: bytes | None = offended
    else:
        source = source_address(vnet, target, ifp)
    if source is None:
        return None
    message = icmp6.error(type_, code, packet, source, target, rest)
    return ip6_packet(vnet, source, target, NH_ICMPV6, message)
