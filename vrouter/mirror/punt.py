"""The punt path: which packets addressed to a vnet go to its mirror, and the way back.

The split (:func:`decide`), for a packet addressed to the vnet (one of its
addresses, a broadcast, or a multicast group):

- **the vnet alone**: ICMP echo requests, ICMPv6 echo requests and neighbour
  discovery (ND and RA), UDP to a port a socket-service socket holds, TCP of a
  connection, listener or TIME-WAIT the vnet's own TCP holds, and any other IP
  protocol the vnet has a handler for (a raw socket of the socket service);
- **both**: every other ICMP and ICMPv6 message (echo replies, errors, MLD):
  each stack takes what matches its own sockets and ignores the rest;
- **the mirror alone**: everything else, such as UDP and TCP to ports nobody
  in the vnet holds, OSPF (protocol 89), VRRP (112), PIM (103), multicast
  to groups nobody in the vnet joined (the mirror's kernel keeps what its
  programs joined and drops the rest).

ARP never reaches this module: the vnet answers for its addresses, and the
representors are NOARP (:mod:`vrouter.mirror.manager`).

A punted packet is written to the representor of the interface it arrived
on, framed as it was on that link (the sender's MAC when the frame is at
hand, the group's or the interface's MAC as destination), within the
vnet's ``net.mirror.punt_rate``.  Every outcome is counted.

:func:`from_mirror` is the way back: an IP packet the mirror's kernel sent
on a representor leaves through the vnet's own output (its routing, ARP/ND,
fragmentation and output firewall); multicast, broadcast and link-local
destinations leave through the representor's own interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vrouter.inet import ipv4
from vrouter.inet6 import ipv6
from vrouter.mirror.state import state_of
from vrouter.wire import icmp4, icmp6
from vrouter.wire.ethernet import BROADCAST, ETHERTYPE_IPV4, ETHERTYPE_IPV6, HEADER_LEN
from vrouter.wire.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP
from vrouter.wire.ipv6 import NH_ICMPV6

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

VNET = 0
"""The vnet serves the packet; the mirror never sees it."""
MIRROR = 1
"""Only the mirror gets the packet."""
BOTH = 2
"""The vnet serves the packet and the mirror gets a copy."""

_ICMP4_VNET = frozenset({icmp4.ECHO_REQUEST})
_ICMP6_VNET = frozenset({icmp6.ECHO_REQUEST, 133, 134, 135, 136, 137})  # echo, RS RA NS NA redirect
_ETHER_IPV4 = ETHERTYPE_IPV4.to_bytes(2, "big")
_ETHER_IPV6 = ETHERTYPE_IPV6.to_bytes(2, "big")


def decide(
    vnet: Vnet, family: int, proto: int, packet: memoryview, offset: int, src: bytes, dst: bytes
) -> int:
    """Return who takes a packet addressed to ``vnet``: :data:`VNET`, :data:`MIRROR` or
    :data:`BOTH`.  ``offset`` is where the transport header starts in ``packet``.

    A packet too short for the header its protocol needs stays with the vnet,
    which counts it as malformed.
    """
    if proto == PROTO_UDP:
        if len(packet) < offset + 8:
            return VNET
        transport = vars(vnet).get("transport")
        port = packet[offset + 2] << 8 | packet[offset + 3]
        return VNET if transport is not None and transport.udp.get((family, port)) else MIRROR
    if proto == PROTO_TCP:
        if len(packet) < offset + 20:
            return VNET
        tcp = vars(vnet).get("tcp")
        if tcp is None:
            return MIRROR
        table = tcp.table
        sport = packet[offset] << 8 | packet[offset + 1]
        dport = packet[offset + 2] << 8 | packet[offset + 3]
        key = (dst, dport, src, sport)
        if (
            key in table.conns
            or key in table.time_wait
            or (family, dst, dport) in table.listeners
            or (family, b"", dport) in table.listeners
        ):
            return VNET
        return MIRROR
    if family == 4 and proto == PROTO_ICMP:
        if len(packet) <= offset:
            return VNET
        return VNET if packet[offset] in _ICMP4_VNET else BOTH
    if family == 6 and proto == NH_ICMPV6:
        if len(packet) <= offset:
            return VNET
        return VNET if packet[offset] in _ICMP6_VNET else BOTH
    protocols = vnet.inet.protocols if family == 4 else vnet.inet6.protocols
    return VNET if proto in protocols else MIRROR


def punt4(ifp: Ifnet, packet: memoryview, offset: int, unicast: bool, now: float) -> bool:
    """``vnet.inet.punt``: send the mirror its share of an IPv4 packet; True if it took it all."""
    vnet = ifp.vnet
    src = bytes(packet[12:16])
    dst = bytes(packet[16:20])
    verdict = decide(vnet, 4, packet[9], packet, offset, src, dst)
    if verdict == VNET:
        return False
    if dst[0] >= 224 and dst[0] < 240:
        mac = bytes((0x01, 0x00, 0x5E, dst[1] & 0x7F, dst[2], dst[3]))
    elif unicast:
        mac = ifp.mac
    else:
        mac = BROADCAST
    _send(vnet, ifp, mac, _ETHER_IPV4, packet, now)
    return verdict == MIRROR


def punt6(
    ifp: Ifnet, packet: memoryview, offset: int, proto: int, unicast: bool, now: float
) -> bool:
    """``vnet.inet6.punt``: send the mirror its share of an IPv6 packet; True if it took it all."""
    vnet = ifp.vnet
    src = bytes(packet[8:24])
    dst = bytes(packet[24:40])
    verdict = decide(vnet, 6, proto, packet, offset, src, dst)
    if verdict == VNET:
        return False
    mac = b"\x33\x33" + dst[12:16] if dst[0] == 0xFF else ifp.mac
    _send(vnet, ifp, mac, _ETHER_IPV6, packet, now)
    return verdict == MIRROR


def _send(
    vnet: Vnet, ifp: Ifnet, mac: bytes, ethertype: bytes, packet: memoryview, now: float
) -> None:
    state = state_of(vnet)
    stats = state.stats
    writer = state.writers.get(ifp.name)
    if writer is None:
        stats.nodevice += 1
        return
    if not state.bucket.take(state.punt_rate, now):
        stats.ratelimited += 1
        return
    frame = packet.obj
    if (
        isinstance(frame, bytes | bytearray)
        and len(frame) >= HEADER_LEN + len(packet)
        and frame[12:14] == ethertype
    ):
        sender = bytes(frame[6:12])
    else:  # reassembled, or not from a link: the interface speaks for it
        sender = ifp.mac
    if writer(mac + sender + ethertype + bytes(packet)):
        stats.punted += 1
    else:
        stats.full += 1


def from_mirror(ifp: Ifnet, frame: bytes, now: float) -> None:
    """Send what the mirror's kernel wrote on ``ifp``'s representor out of the vnet."""
    vnet = ifp.vnet
    stats = state_of(vnet).stats
    ethertype = frame[12:14]
    packet = frame[HEADER_LEN:]
    if ethertype == _ETHER_IPV4 and len(packet) >= 20 and packet[0] >> 4 == 4:
        total = packet[2] << 8 | packet[3]
        if not 20 <= total <= len(packet):
            stats.out_dropped += 1
            return
        packet = packet[:total]
        dst = packet[16:20]
        scoped = (
            224 <= dst[0] < 240
            or dst == ipv4.LIMITED_BROADCAST
            or dst in vnet.inet.broadcasts
            or dst[:2] == b"\xa9\xfe"  # 169.254/16
        )
        if scoped:
            sent = ipv4.output_on(vnet, ifp, packet, now)
        else:
            sent = ipv4.output(vnet, packet, now) or ipv4.output_on(vnet, ifp, packet, now)
    elif ethertype == _ETHER_IPV6 and len(packet) >= 40 and packet[0] >> 4 == 6:
        total = 40 + (packet[4] << 8 | packet[5])
        if total > len(packet):
            stats.out_dropped += 1
            return
        packet = packet[:total]
        dst = packet[24:40]
        scoped = dst[0] == 0xFF or (dst[0] == 0xFE and dst[1] & 0xC0 == 0x80)
        if scoped:
            sent = ipv6.output(vnet, packet, now, ifp)
        else:
            sent = ipv6.output(vnet, packet, now) or ipv6.output(vnet, packet, now, ifp)
    else:
        stats.out_dropped += 1
        return
    if sent:
        stats.out += 1
    else:
        stats.out_noroute += 1


def enable(vnet: Vnet) -> None:
    """Start punting ``vnet``'s unserved local traffic to its mirror."""
    vnet.inet.punt = punt4
    vnet.inet6.punt = punt6


def disable(vnet: Vnet) -> None:
    """Stop punting: ``vnet`` serves (or refuses) all its local traffic again."""
    vnet.inet.punt = None
    vnet.inet6.punt = None
    state_of(vnet).writers.clear()
