"""IPv4 input, forwarding and output for one vnet (RFC 791, RFC 1812).

``input`` validates every packet (each drop counted by reason in the vnet's
``IpStats`` and on the interface), delivers what is addressed to the vnet
and forwards the rest: TTL decremented with an incremental checksum update
(RFC 1624), longest-prefix route, ICMP errors where RFC 1812 asks for them.
Link-layer broadcasts, IP broadcasts and multicast are never forwarded.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import fields
from typing import TYPE_CHECKING

from vrouter.inet import arp, closed, icmp
from vrouter.inet.fragment import fragment_ipv4, ipv4_input
from vrouter.inet.source import next_ident as next_ident
from vrouter.inet.source import source_address as source_address
from vrouter.inet.state import IN, OUT, IpStats, ProtoHandler, UdpService
from vrouter.link.lltable import REACHABLE
from vrouter.link.offload import (
    F_NEEDS_CSUM,
    GSO_ECN,
    GSO_TCPV4,
    OffloadBuffer,
    VirtioHdr,
    carry,
    resolve,
    segment_length,
    vhdr_of,
)
from vrouter.route.dest import flow4, put_header
from vrouter.route.fib import BLACKHOLE, UNICAST
from vrouter.route.state import add_connected, remove_connected
from vrouter.wire import icmp4
from vrouter.wire import ipv4 as ip_wire
from vrouter.wire import udp as udp_wire
from vrouter.wire.checksum import update16
from vrouter.wire.errors import WireError
from vrouter.wire.ethernet import BROADCAST, ETHERTYPE_IPV4, HEADER, HEADER_LEN
from vrouter.wire.ipv4 import (
    FLAG_DF,
    FLAG_MF,
    OFFSET_MASK,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    check,
)

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

LIMITED_BROADCAST = b"\xff\xff\xff\xff"
_FIELDS_AT = struct.Struct("!2xH4xBxH4x4s").unpack_from
"""Total length, TTL, header checksum and destination (bytes) of an IPv4 header, in one call."""
_HEADER_AT = struct.Struct("20s").unpack_from
"""An IPv4 header without options as bytes: ``int.from_bytes`` of a bytearray slice
copies it twice (the slice, then to bytes)."""
_FROM_BYTES = int.from_bytes
# Offsets of IPv4 header fields within an Ethernet frame.
_VIHL = HEADER_LEN
_LEN = HEADER_LEN + 2
_TTL = HEADER_LEN + 8
_PROTO = HEADER_LEN + 9
_CSUM = HEADER_LEN + 10
_SRC = HEADER_LEN + 12
_DST = HEADER_LEN + 16
_OPTIONS = HEADER_LEN + 20
_NO_FIT = 1 << 30
"""A segment size no MTU holds."""
_FRAG = HEADER_LEN + 6


_FIELDS = {f"ip_{f.name}": f.name for f in fields(IpStats)}
"""The ipstat field of each drop reason (``ip_X`` -> ``X``), made once: a name made per
drop would be kept by the interpreter's type attribute cache (``getattr``/``setattr`` by
name), hundreds of new strings scattered over the heap, each holding its allocator arena
after vnets are destroyed."""


def _count(ifp: Ifnet, stats: IpStats, reason: str, error: bool = False) -> None:
    """Count a dropped packet on the interface and in the vnet's ipstat."""
    field_name = _FIELDS.get(reason, reason)  # a reason without a counter: AttributeError
    setattr(stats, field_name, getattr(stats, field_name) + 1)
    ifp.drop(reason, error)


def _martian_source(src: bytes) -> bool:
    first = src[0]
    return first >= 224 or first == 127 or src == LIMITED_BROADCAST


def input(ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
    """Process one IPv4 packet in an Ethernet frame received on ``ifp``.

    The common case is forwarded here, in this one function (a call less per
    frame than a separate fast path), checked as :func:`_input` and
    :func:`_forward` check it; anything else is left to :func:`_input`, the
    full path.  The common case: no IP options, a valid header, unicast in
    and out, no firewall or a flow its flow cache holds
    (:mod:`vrouter.firewall.flow`, asked last, as it tracks the packet), TTL
    left, a cached destination (:mod:`vrouter.route.dest`) whose neighbour
    is reachable, and a packet that fits the egress MTU.  ``frame`` is
    bytes, or an offload buffer (a partial L4 checksum, as a TAP with
    offloads hands over every frame, or a TCP super-frame whose segments
    must fit the MTU), which is rewritten in place and travels on with its
    header.  The egress's :meth:`~vrouter.link.ifnet.Ifnet.output` is done
    here too where it has nothing to do but transmit and count (the
    interface up, no capture, no offload work to finish).
    """
    vnet = ifp.vnet
    inet = vnet.inet
    inet.stats.total += 1
    if len(frame) < _OPTIONS or frame[_VIHL] != 0x45 or frame[0] & 1 or not inet.forwarding:
        _input(vnet, ifp, frame, now)
        return
    if frame.__class__ is bytes:
        segment = 0
    elif frame.__class__ is OffloadBuffer:
        # A TCP super-frame fits if the segments it stands for do.
        segment = _segment_size(frame) if frame.raw[1] else 0
    else:
        _input(vnet, ifp, frame, now)
        return
    flows = None
    if inet.pfil is not None:
        flows = inet.flows
        if flows is None:
            _input(vnet, ifp, frame, now)
            return
    total, ttl, csum, dst = _FIELDS_AT(frame, HEADER_LEN)
    if (
        not 20 <= total <= len(frame) - HEADER_LEN
        or ttl <= 1
        or _FROM_BYTES(_HEADER_AT(frame, HEADER_LEN)[0]) % 0xFFFF  # RFC 1071: sums to 0xFFFF
    ):
        _input(vnet, ifp, frame, now)
        return
    dest = inet.dests.entries.get(dst)
    if dest is None:
        if not _unresolvable(vnet, frame, dst, now):
            _input(vnet, ifp, frame, now)
        return
    neighbours = inet.arp
    if dest.generation != vnet.route.fib.generation + neighbours.generation:
        _input(vnet, ifp, frame, now)
        return
    paths = dest.paths
    if paths is not None:  # ECMP: this flow's path
        dest = paths[flow4(frame) % len(paths)]
    nhop = dest.nhop
    out = dest.out
    entry = dest.neighbour
    first = frame[_SRC]
    if (
        nhop.type != UNICAST
        or out is None
        or (segment or total) > out.mtu
        or entry is None
        or entry.state != REACHABLE
        or now - entry.confirmed > neighbours.reachable_time
        or first >= 224
        or first == 127
        or not first
        or dst in inet.local
        or dst in inet.broadcasts
    ):
        _input(vnet, ifp, frame, now)
        return
    if flows is not None:
        verdict = flows.admit4(ifp, frame, HEADER_LEN, 2, now)
        if verdict != 1:
            if verdict:  # refused by the flow's state
                _count(ifp, inet.stats, "ip_filtered")
            else:
                _input(vnet, ifp, frame, now)
            return
    end = HEADER_LEN + total
    if frame.__class__ is bytes:
        buf = bytearray(frame[:end]) if end < len(frame) else bytearray(frame)
    else:  # ours to rewrite
        buf = frame if end == len(frame) else carry(frame, total)  # type: ignore[assignment]
    put_header(buf, 0, dest.header)
    # The TTL word drops by 0x0100, so the checksum grows by it, one's complement:
    # what update16 (RFC 1624 eqn. 3) gives, for every checksum.
    csum += 0x100
    if csum >= 0xFFFF:
        csum -= 0xFFFF
    buf[_TTL] = ttl - 1
    buf[_CSUM] = csum >> 8
    buf[_CSUM + 1] = csum & 0xFF
    nhop.use += 1
    if paths is not None:
        dest.hop.use += 1  # type: ignore[union-attr]  # set on every path's entry
    inet.stats.forward += 1
    entry.used = now
    # out.output(buf) where it would only transmit and count: one call less.
    if out.up and not out.captures and (out.offload or buf.__class__ is bytearray):
        counters = out.counters
        try:
            out.transmit(buf)
        except OSError:
            counters.tx_errors += 1
            return
        counters.tx_packets += 1
        counters.tx_bytes += len(buf)
    else:
        out.output(buf)


def _input(vnet: Vnet, ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
    """The full path of :func:`input` (the packet already counted in ``total``)."""
    inet = vnet.inet
    stats = inet.stats
    packet = memoryview(frame)[HEADER_LEN:]
    try:
        hlen, total = check(packet)
    except WireError as err:
        _count(ifp, stats, err.reason, error=True)
        return
    if total != len(packet):
        packet = packet[:total]  # Ethernet padding
    src = bytes(frame[_SRC : _SRC + 4])
    if _martian_source(src):
        _count(ifp, stats, "ip_badsrc", error=True)
        return
    pfil = inet.pfil
    if pfil is not None:
        if frame.__class__ is bytes:  # the filter may rewrite it (NAT)
            frame = bytearray(frame)
            packet = memoryview(frame)[HEADER_LEN : HEADER_LEN + total]
        if not pfil(ifp, packet, IN, now):
            _count(ifp, stats, "ip_filtered")
            return
    dst = bytes(frame[_DST : _DST + 4])
    if dst in inet.local:
        # Errors about a link-layer broadcast are never sent (RFC 1122 3.2.2).
        _deliver(vnet, ifp, packet, hlen, not frame[0] & 1, now)
    elif dst == LIMITED_BROADCAST or dst in inet.broadcasts or 224 <= dst[0] < 240:
        _deliver(vnet, ifp, packet, hlen, False, now)
    elif frame[0] & 1:
        _count(ifp, stats, "ip_l2bcast")
    elif not inet.forwarding:
        _count(ifp, stats, "ip_cantforward")
    elif src == b"\x00\x00\x00\x00":
        _count(ifp, stats, "ip_badsrc", error=True)
    elif dst[0] in (0, 127) or dst[0] >= 240:
        _count(ifp, stats, "ip_martian_dst")  # RFC 1812 4.2.3.1, 5.3.7
    else:
        _forward(vnet, ifp, frame, packet, total, dst, now)


def _segment_size(frame: OffloadBuffer) -> int:
    """Return the IP length of the segments a TCP super-frame (IPv4 without options)
    stands for, as :func:`~vrouter.link.offload.segment_length` computes it from the
    header bytes as they came; for another kind of super-frame, a length no MTU
    holds (the full path deals with it)."""
    raw = frame.raw
    if raw[1] & ~GSO_ECN != GSO_TCPV4 or frame[_PROTO] != 6 or len(frame) < _OPTIONS + 20:
        return _NO_FIT
    return 20 + (frame[_OPTIONS + 12] >> 4) * 4 + (raw[4] | raw[5] << 8)


def _unresolvable(vnet: Vnet, frame: bytes | bytearray, dst: bytes, now: float) -> bool:
    """Drop a packet :func:`input`'s fast path checked (no destination cached) whose
    on-link destination the neighbour table would refuse to resolve now, as
    :func:`_forward` would after copying it; False to leave it to the full path.

    A scan of an on-link prefix (RFC 6583) sends each packet to a new
    address: this keeps its cost at a route lookup and a table probe, and the
    destination cache free of addresses that never answer."""
    inet = vnet.inet
    if inet.pfil is not None:
        return False  # the filter sees every packet it did not pass already
    first = frame[_SRC]
    if first >= 224 or first == 127 or not first or dst in inet.local or dst in inet.broadcasts:
        return False
    nhop = vnet.route.fib.lookup_nhop(dst)
    if nhop is None or nhop.type != UNICAST or nhop.gateway is not None or nhop.nexthops:
        return False
    out = nhop.ifnet
    if out is None or not arp.refuse_early(vnet, out, dst, now):
        return False
    nhop.use += 1
    inet.stats.forward += 1  # as _forward counts a packet arp.output drops
    return True


def _deliver(
    vnet: Vnet, ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float
) -> None:
    stats = vnet.inet.stats
    vhdr = vhdr_of(packet.obj)
    if vhdr is not None:
        take = (
            vnet.inet.offload_protocols.get(packet[9])
            if vhdr.flags & F_NEEDS_CSUM and vnet.inet.punt is None
            else None
        )
        if take is not None and not (packet[6] << 8 | packet[7]) & (FLAG_MF | OFFSET_MASK):
            stats.delivered += 1  # the protocol takes it as it is
            take(ifp, packet, hlen, unicast, now)
            return
        # Ours to read: complete the checksum, cut super-frames.
        for piece in resolve(packet.obj, vhdr):  # type: ignore[arg-type]
            view = memoryview(bytes(piece))[HEADER_LEN:]
            _deliver(vnet, ifp, view[: (view[2] << 8) | view[3]], hlen, unicast, now)
        return
    if (packet[6] << 8 | packet[7]) & (FLAG_MF | OFFSET_MASK):
        whole = ipv4_input(vnet.inet.reass, packet, now)
        _arm_reassembly(vnet)
        if whole is None:
            return
        stats.reassembled += 1
        packet = memoryview(whole)
        hlen = (whole[0] & 0x0F) << 2
    punt = vnet.inet.punt
    if punt is not None and punt(ifp, packet, hlen, unicast, now):
        return
    handler = vnet.inet.protocols.get(packet[9])
    if handler is None:
        _count(ifp, stats, "ip_noproto")
        if unicast:
            send_error(vnet, ifp, packet, icmp4.DEST_UNREACH, icmp4.UNREACH_PROTOCOL, now)
        return
    stats.delivered += 1
    handler(ifp, packet, hlen, unicast, now)


def _arm_reassembly(vnet: Vnet) -> None:
    """Make sure a deadline runs when the oldest datagram being reassembled expires."""
    vnet.inet.reass_deadline.arm(
        vnet.timers, vnet.inet.reass.next_deadline(), lambda t: _expire_reassembly(vnet, t)
    )


def _expire_reassembly(vnet: Vnet, now: float) -> None:
    for first in vnet.inet.reass.expire(now):
        send_error(vnet, None, memoryview(first), icmp4.TIME_EXCEEDED, icmp4.EXC_REASS, now)
    _arm_reassembly(vnet)


def _forward(
    vnet: Vnet,
    ifp: Ifnet,
    frame: bytes | bytearray,
    packet: memoryview,
    total: int,
    dst: bytes,
    now: float,
) -> None:
    inet = vnet.inet
    stats = inet.stats
    ttl = frame[_TTL]
    if ttl <= 1:
        _count(ifp, stats, "ip_ttl_exceeded")
        send_error(vnet, ifp, packet, icmp4.TIME_EXCEEDED, icmp4.EXC_TTL, now)
        return
    fib = vnet.route.fib
    neighbours = inet.arp
    generation = fib.generation + neighbours.generation
    dest = inet.dests.entries.get(dst)
    if dest is None or dest.generation != generation:
        found = fib.lookup_nhop(dst)
        if found is None:
            _count(ifp, stats, "ip_noroute")
            send_error(vnet, ifp, packet, icmp4.DEST_UNREACH, icmp4.UNREACH_NET, now)
            return
        dest = inet.dests.build(dst, found, generation, neighbours)
    paths = dest.paths
    if paths is not None:  # ECMP: this flow's path
        dest = paths[flow4(frame) % len(paths)]
    nhop = dest.nhop
    if nhop.type != UNICAST:
        if nhop.type == BLACKHOLE:
            _count(ifp, stats, "ip_blackhole")
        else:
            _count(ifp, stats, "ip_reject")
            send_error(vnet, ifp, packet, icmp4.DEST_UNREACH, icmp4.UNREACH_HOST, now)
        return
    out = dest.out
    assert out is not None
    vhdr = vhdr_of(frame)
    # A TCP super-frame fits if the segments it stands for do.
    size = total if vhdr is None or not vhdr.is_gso else segment_length(frame, vhdr)
    if size > out.mtu and frame[_FRAG] << 8 & FLAG_DF:
        _count(ifp, stats, "ip_toolong")
        send_error(vnet, ifp, packet, icmp4.DEST_UNREACH, icmp4.UNREACH_NEEDFRAG, now, out.mtu)
        return
    # After the MTU check: the error must quote the packet as its sender sent it,
    # before the filter translates its source (NAT).
    pfil = inet.pfil
    if pfil is not None and not pfil(out, packet, OUT, now):
        _count(ifp, stats, "ip_filtered_out")
        return
    buf = bytearray(frame[: HEADER_LEN + total]) if vhdr is None else carry(frame, total)
    proto = buf[_PROTO]
    buf[_TTL] = ttl - 1
    old_csum = (buf[_CSUM] << 8) | buf[_CSUM + 1]
    csum = update16(old_csum, (ttl << 8) | proto, ((ttl - 1) << 8) | proto)
    buf[_CSUM] = csum >> 8
    buf[_CSUM + 1] = csum & 0xFF
    nhop.use += 1
    if paths is not None:
        dest.hop.use += 1  # type: ignore[union-attr]  # set on every path's entry
    stats.forward += 1
    nexthop = dest.nexthop
    if size <= out.mtu:
        if not dest.send(buf, now, neighbours.reachable_time):
            arp.output(vnet, out, nexthop, buf, now)
            dest.learn(neighbours.reachable(out, nexthop))
    elif vhdr is None:
        _send_fragments(vnet, out, nexthop, buf, now)
    else:  # finish the offload work before fragmenting what is left too large
        for piece in resolve(buf, vhdr):
            if len(piece) - HEADER_LEN > out.mtu:
                _send_fragments(vnet, out, nexthop, piece, now)
            else:
                arp.output(vnet, out, nexthop, piece, now)


def _send_fragments(vnet: Vnet, out: Ifnet, nexthop: bytes, frame: bytearray, now: float) -> None:
    """Fragment the IPv4 packet in ``frame`` (DF clear) to ``out``'s MTU and send the pieces."""
    stats = vnet.inet.stats
    stats.fragmented += 1
    for piece in fragment_ipv4(memoryview(frame)[HEADER_LEN:], out.mtu):
        stats.ofragments += 1
        piece_frame = bytearray(HEADER_LEN + len(piece))
        piece_frame[HEADER_LEN:] = piece
        HEADER.pack_into(piece_frame, 0, BROADCAST, out.mac, ETHERTYPE_IPV4)
        arp.output(vnet, out, nexthop, piece_frame, now)


def output(vnet: Vnet, packet: bytes, now: float, vhdr: VirtioHdr | None = None) -> bool:
    """Route and send an IPv4 packet this vnet originated; False if it had no route.

    ``vhdr``: the packet is a TCP super-segment (TSO) with this offload work
    left; it leaves whole where the interface takes offloads, else in segments.
    """
    frame = bytearray(HEADER_LEN) if vhdr is None else OffloadBuffer(HEADER_LEN)
    frame += packet
    return output_frame(vnet, frame, now, vhdr)


def output_frame(
    vnet: Vnet, frame: bytearray, now: float, vhdr: VirtioHdr | None = None
) -> bool:
    """:func:`output` for a packet already in its frame: ``frame`` holds the packet after
    ``HEADER_LEN`` bytes kept for the Ethernet header (filled here), and goes on as it
    is (an :class:`OffloadBuffer` when ``vhdr`` is given), so the packet is not copied."""
    inet = vnet.inet
    if vhdr is not None:
        frame.vhdr = vhdr  # type: ignore[attr-defined]  # before the filter: NAT reads it
    dst = bytes(frame[_DST : _DST + 4])
    local_ifp = inet.local.get(dst)
    if local_ifp is not None:  # to ourselves: loop back, never onto a link
        inet.stats.localout += 1
        hlen = (frame[_VIHL] & 0x0F) << 2
        pieces = [frame] if vhdr is None else resolve(frame, vhdr)
        for piece in pieces:
            _deliver(vnet, local_ifp, memoryview(piece)[HEADER_LEN:], hlen, True, now)
        return True
    # The route comes from the destination cache (vrouter.route.dest), as a forwarded
    # packet's does: one dict probe instead of a lookup, and, while the neighbour is
    # reachable, its MACs without the neighbour table.
    fib = vnet.route.fib
    neighbours = inet.arp
    generation = fib.generation + neighbours.generation
    dest = inet.dests.entries.get(dst)
    if dest is None or dest.generation != generation:
        found = fib.lookup_nhop(dst)
        if found is None:
            inet.stats.noroute_out += 1
            return False
        dest = inet.dests.build(dst, found, generation, neighbours)
    nhop = dest.nhop
    if nhop.type != UNICAST or nhop.ifnet is None:
        inet.stats.noroute_out += 1
        return False
    out = nhop.ifnet
    if inet.pfil is not None and not inet.pfil(out, memoryview(frame)[HEADER_LEN:], OUT, now):
        inet.stats.filtered_out += 1  # the filter may rewrite the packet in place (NAT)
        out.counters.tx_drops["ip_filtered_out"] += 1
        return False
    inet.stats.localout += 1
    nhop.use += 1
    HEADER.pack_into(frame, 0, BROADCAST, out.mac, ETHERTYPE_IPV4)
    size = len(frame) - HEADER_LEN
    if vhdr is not None:
        size = segment_length(frame, vhdr)  # the segments it stands for must fit
    if dst == LIMITED_BROADCAST or dst in inet.broadcasts:
        out.output(frame)
    elif size > out.mtu:
        if frame[_FRAG] << 8 & FLAG_DF:
            inet.stats.toolong += 1
            return False
        _send_fragments(vnet, out, nhop.gateway or dst, frame, now)
    elif dest.paths is not None or dest.out is not out:  # multipath: the route's interface
        arp.output(vnet, out, nhop.gateway or dst, frame, now)
    elif not dest.send(frame, now, neighbours.reachable_time):
        nexthop = dest.nexthop
        arp.output(vnet, out, nexthop, frame, now)
        dest.learn(neighbours.reachable(out, nexthop))
    return True


def output_on(vnet: Vnet, out: Ifnet, packet: bytes, now: float) -> bool:
    """Send a packet this vnet originated out of ``out`` (multicast, broadcast, bound sockets).

    Multicast goes to its group MAC (RFC 1112 6.4), broadcast to ff:ff:ff:ff:ff:ff;
    unicast to the destination when it is on ``out``'s networks, else to the
    gateway of the route if that route leaves by ``out``.
    """
    inet = vnet.inet
    dst = packet[ip_wire.DST]
    if inet.pfil is not None:
        writable = bytearray(packet)  # the filter may rewrite it (NAT)
        if not inet.pfil(out, memoryview(writable), OUT, now):
            inet.stats.filtered_out += 1
            out.counters.tx_drops["ip_filtered_out"] += 1
            return False
        packet = bytes(writable)
    frame = bytearray(HEADER_LEN + len(packet))
    frame[HEADER_LEN:] = packet
    if 224 <= dst[0] < 240:
        group_mac = bytes((0x01, 0x00, 0x5E, dst[1] & 0x7F, dst[2], dst[3]))
        HEADER.pack_into(frame, 0, group_mac, out.mac, ETHERTYPE_IPV4)
        inet.stats.localout += 1
        out.output(frame)
        return True
    HEADER.pack_into(frame, 0, BROADCAST, out.mac, ETHERTYPE_IPV4)
    if dst == LIMITED_BROADCAST or dst in inet.broadcasts:
        inet.stats.localout += 1
        out.output(frame)
        return True
    target = ipaddress.IPv4Address(dst)
    nexthop: bytes | None = dst if any(target in a.network for a in out.addresses) else None
    if nexthop is None:
        nhop = vnet.route.fib.lookup_nhop(dst)
        if nhop is None or nhop.ifnet is not out or nhop.type != UNICAST:
            inet.stats.noroute_out += 1
            return False
        nexthop = nhop.gateway or dst
    inet.stats.localout += 1
    if len(packet) > out.mtu:
        if packet[6] << 8 & FLAG_DF:
            inet.stats.toolong += 1
            return False
        _send_fragments(vnet, out, nexthop, frame, now)
    else:
        arp.output(vnet, out, nexthop, frame, now)
    return True


def send_error(
    vnet: Vnet,
    ifp: Ifnet | None,
    packet: memoryview,
    type_: int,
    code: int,
    now: float,
    rest: int = 0,
) -> None:
    """Send the ICMP error :func:`vrouter.inet.icmp.error` builds about ``packet``, if any."""
    message = icmp.error(vnet, ifp, packet, type_, code, now, rest)
    if message is not None and output(vnet, message, now):
        vnet.inet.icmp.out_errors += 1


def bridged_too_big(ifp: Ifnet, packet: memoryview, mtu: int, now: float) -> bytes | None:
    """Return the "fragmentation needed" error about a bridged ``packet`` over ``mtu``
    (:mod:`vrouter.link.bridge`), sourced from bridge interface ``ifp``; None without DF
    (the frame is only dropped: a bridge does not fragment) or where no error may go."""
    df = ((packet[6] << 8) & ip_wire.FLAG_DF) if len(packet) >= ip_wire.HEADER_LEN else 0
    if not df or packet[0] >> 4 != 4:
        return None
    vnet = ifp.vnet
    message = icmp.error(
        vnet, ifp, packet, icmp4.DEST_UNREACH, icmp4.UNREACH_NEEDFRAG, now, mtu
    )
    if message is not None:
        vnet.inet.icmp.out_errors += 1
    return message


def host_unreachable(vnet: Vnet, packet: memoryview, now: float) -> None:
    """Answer a packet whose next hop did not resolve (RFC 1812 4.3.3.1)."""
    send_error(vnet, None, packet, icmp4.DEST_UNREACH, icmp4.UNREACH_HOST, now)


def icmp_input(ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float) -> None:
    """Deliver an ICMP message to :func:`vrouter.inet.icmp.input` and send its reply."""
    reply = icmp.input(ifp, packet, hlen, unicast, now)
    if reply is not None and output(ifp.vnet, reply, now):
        ifp.vnet.inet.icmp.out_echo_reply += 1


def add_address(vnet: Vnet, ifp: Ifnet, address: ipaddress.IPv4Interface, now: float) -> None:
    """Configure ``address`` on ``ifp``: local address, connected route, announcement."""
    inet = vnet.inet
    packed = address.ip.packed
    if packed in inet.local:
        raise ValueError(f"address {address.ip} is already configured in vnet {vnet.name}")
    ifp.addresses.append(address)
    inet.local[packed] = ifp
    if address.network.prefixlen < 31:
        inet.broadcasts.add(address.network.broadcast_address.packed)
    add_connected(vnet, ifp, address)
    if ifp.up:
        arp.announce(vnet, ifp, packed)
    if vnet.listened:
        vnet.emit({"type": "RTM_NEWADDR", "interface": ifp.name, "address": str(address)})


def remove_address(vnet: Vnet, ifp: Ifnet, address: ipaddress.IPv4Interface) -> None:
    """Remove ``address`` from ``ifp`` with its connected route."""
    inet = vnet.inet
    ifp.addresses.remove(address)
    inet.local.pop(address.ip.packed, None)
    inet.broadcasts = {
        a.network.broadcast_address.packed
        for i in vnet.link.interfaces.values()
        for a in i.addresses
        if a.network.prefixlen < 31
    }
    remove_connected(vnet, ifp, address)
    inet.arp.flush_interface(ifp)
    if vnet.listened:
        vnet.emit({"type": "RTM_DELADDR", "interface": ifp.name, "address": str(address)})


def set_up(vnet: Vnet, ifp: Ifnet, now: float) -> None:
    """Bring ``ifp`` up and announce its addresses with gratuitous ARP."""
    if ifp.up:
        return
    ifp.up = True
    vnet.route.fib.touch()  # an ECMP path out of it is usable now
    vnet.route.fib6.touch()
    for address in ifp.addresses:
        arp.announce(vnet, ifp, address.ip.packed)
    if vnet.listened:
        vnet.emit({"type": "RTM_IFINFO", "interface": ifp.name, "up": True})


def announce(ifp: Ifnet, now: float) -> None:
    """Announce ``ifp``'s addresses again with gratuitous ARP (a bridge whose paths moved)."""
    for address in ifp.addresses:
        arp.announce(ifp.vnet, ifp, address.ip.packed)


def port_unreachable(vnet: Vnet, ifp: Ifnet, packet: memoryview, now: float) -> None:
    """Answer a UDP datagram to a port nobody holds (RFC 1122 4.1.3.1)."""
    send_error(vnet, ifp, packet, icmp4.DEST_UNREACH, icmp4.UNREACH_PORT, now)


def serve_udp(vnet: Vnet, port: int, handler: UdpService | None) -> None:
    """Serve UDP ``port`` in the daemon itself with ``handler`` (None: stop serving it)."""
    if handler is None:
        vnet.inet.udp_services.pop(port, None)
    else:
        vnet.inet.udp_services[port] = handler


def udp_service_input(ifp: Ifnet, packet: memoryview, hlen: int, now: float) -> bool:
    """Hand a datagram to the daemon's own service on its port; False if none serves it."""
    datagram = packet[hlen:]
    if len(datagram) < 8:
        return False
    service = ifp.vnet.inet.udp_services.get(datagram[2] << 8 | datagram[3])
    if service is None:
        return False
    src, dst = bytes(packet[ip_wire.SRC]), bytes(packet[ip_wire.DST])
    try:
        header = udp_wire.UdpHeader.parse(datagram)
    except WireError as err:
        ifp.drop(err.reason, error=True)
        return True
    datagram = datagram[: header.length]
    if not udp_wire.verify(src, dst, datagram):
        ifp.drop("udp_badsum", error=True)
        return True
    service(ifp, src, dst, header.src_port, bytes(datagram[8:]), now)
    return True


def _udp_input(ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float) -> None:
    """UDP for this vnet without the socket layer: the daemon's own services, else closed."""
    if udp_service_input(ifp, packet, hlen, now):
        return
    src, dst = bytes(packet[ip_wire.SRC]), bytes(packet[ip_wire.DST])
    if closed.udp_input(ifp, src, dst, packet[hlen:]) and unicast:
        port_unreachable(ifp.vnet, ifp, packet, now)


def _tcp_input(ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float) -> None:
    """TCP for this vnet: no listeners exist yet, so every port answers with a reset."""
    vnet = ifp.vnet
    src, dst = bytes(packet[ip_wire.SRC]), bytes(packet[ip_wire.DST])
    reset = closed.tcp_input(ifp, src, dst, packet[hlen:], unicast)
    if reset is not None:
        ttl, ident = vnet.inet.ttl, next_ident(vnet)
        output(vnet, ip_wire.build(dst, src, PROTO_TCP, reset, ttl=ttl, ident=ident), now)


BUILTIN_PROTOCOLS: dict[int, ProtoHandler] = {
    PROTO_ICMP: icmp_input,
    PROTO_UDP: _udp_input,
    PROTO_TCP: _tcp_input,
}
"""Local delivery handlers every vnet starts with (the stateless ``ip_init`` table)."""
