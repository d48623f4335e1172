"""IPv6 input, forwarding and output for one vnet (RFC 8200, RFC 4443).

``input`` validates the fixed header, accepts unicast for our addresses
(link-local ones only on their own interface) and multicast for groups the
interface joined (with a mirror, any group: one the vnet did not join is the
mirror's alone), walks the extension headers of what is ours (Parameter
Problem where RFC 8200 asks for it), reassembles fragments addressed to us
and forwards the rest: hop limit decremented, longest-prefix route, Packet
Too Big instead of fragmenting (routers never fragment IPv6).  Link-local
traffic never leaves its link; multicast is never forwarded.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import fields
from typing import TYPE_CHECKING

from vrouter.inet import closed
from vrouter.inet.state import IN, OUT
from vrouter.inet6 import icmp6 as icmp6_layer
from vrouter.inet6 import nd
from vrouter.inet6.fragment import fragment_ipv6, ipv6_input
from vrouter.inet6.source import packet as packet
from vrouter.inet6.source import source_address as source_address
from vrouter.inet6.state import Addr6, Ip6Stats, Proto6Handler
from vrouter.link.lltable import REACHABLE
from vrouter.link.offload import (
    F_NEEDS_CSUM,
    GSO_ECN,
    GSO_TCPV6,
    OffloadBuffer,
    VirtioHdr,
    carry,
    resolve,
    segment_length,
    vhdr_of,
)
from vrouter.route.dest import flow6, put_header
from vrouter.route.fib import BLACKHOLE, UNICAST
from vrouter.route.state import add_connected, remove_connected
from vrouter.wire import icmp6
from vrouter.wire import ipv6 as ip6_wire
from vrouter.wire.errors import WireError
from vrouter.wire.ethernet import ETHERTYPE_IPV6, HEADER, HEADER_LEN
from vrouter.wire.ipv6 import (
    ALL_NODES,
    ALL_ROUTERS,
    DST,
    NH_ICMPV6,
    NH_NONE,
    NH_TCP,
    NH_UDP,
    SRC,
    UNSPECIFIED,
    ParameterProblem,
    check,
    is_link_local,
    link_local_from_mac,
    solicited_node,
    walk,
)

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

LOOPBACK = bytes(15) + b"\x01"
_PLEN = HEADER_LEN + 4
_NH = HEADER_LEN + 6
_HLIM = HEADER_LEN + 7
_SRC = HEADER_LEN + 8
_DST = HEADER_LEN + 24
_L4 = HEADER_LEN + 40
_NO_FIT = 1 << 30
"""A segment size no MTU holds."""
_ADDRESS_AT = struct.Struct("16s").unpack_from
"""Read an address as bytes in one call (``bytes(frame[a:b])`` makes a slice first)."""
_FAST_ICMP6 = (icmp6.ECHO_REQUEST, icmp6.ECHO_REPLY)
"""The ICMPv6 messages the fast path forwards; errors and the rest take the full path."""


EXTENSION_REASONS = frozenset(
    {
        "ip6_badopt",
        "ip6_unknownopt",
        "ip6_toomanyext",
        "ip6_badhopopts",
        "ip6_exttooshort",
        "ip6_badrouting",
        "ip6_fragbadlen",
        "ip6_fragtoolong",
        "ip6_fragchain",
    }
)
"""Drop reasons of the extension header chain, counted together as ip6stat ``badext``
(each still has its own name among the interface's drops)."""
_FIELDS = {
    **{f"ip6_{f.name}": f.name for f in fields(Ip6Stats)},
    **dict.fromkeys(EXTENSION_REASONS, "badext"),
}
"""The ip6stat field of each drop reason, made once (see ``vrouter.inet.ipv4._FIELDS``)."""


def _count(ifp: Ifnet, stats: Ip6Stats, reason: str, error: bool = False) -> None:
    """Count a dropped packet on the interface and in the vnet's ip6stat.

    A reason with neither a counter of its own nor a place in
    :data:`EXTENSION_REASONS` is a bug: it raises AttributeError.
    """
    field_name = _FIELDS.get(reason, reason)
    setattr(stats, field_name, getattr(stats, field_name) + 1)
    ifp.drop(reason, error)


def _local(vnet: Vnet, ifp: Ifnet, dst: bytes) -> Addr6 | None:
    inet6 = vnet.inet6
    if is_link_local(dst):
        return inet6.linklocal.get((ifp.name, dst))
    return inet6.local.get(dst)


def input(ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
    """Process one IPv6 packet in an Ethernet frame received on ``ifp``.

    The common case is forwarded here, in this one function (a call less per
    frame than a separate fast path), checked as :func:`_input` and
    :func:`_forward` check it; anything else is left to :func:`_input`, the
    full path.  The common case, as IPv4's (:func:`vrouter.inet.ipv4.input`):
    a TCP, UDP or ICMPv6 echo packet right after the fixed header (extension
    headers, ICMPv6 errors and everything else take the full path), unicast
    in and out, global addresses on both ends, no firewall or a flow its
    flow cache holds (asked last, as it tracks the packet), hop limit left,
    a cached destination whose neighbour is reachable, and a packet that
    fits the egress MTU.  ``frame`` is bytes, or an offload buffer (a TCP
    super-frame too, whose segments must fit the MTU), rewritten in place.
    The egress's :meth:`~vrouter.link.ifnet.Ifnet.output` is done here too
    where it has nothing to do but transmit and count (the interface up, no
    capture, no offload work to finish).
    """
    vnet = ifp.vnet
    inet6 = vnet.inet6
    inet6.stats.total += 1
    if len(frame) < _L4 or frame[HEADER_LEN] >> 4 != 6 or frame[0] & 1 or not inet6.forwarding:
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
    if inet6.pfil is not None:
        flows = inet6.flows
        if flows is None:
            _input(vnet, ifp, frame, now)
            return
    total = 40 + (frame[_PLEN] << 8 | frame[_PLEN + 1])
    end = HEADER_LEN + total
    hlim = frame[_HLIM]
    nh = frame[_NH]
    if (
        end > len(frame)
        or hlim <= 1
        or (
            nh != NH_TCP
            and nh != NH_UDP
            and (nh != NH_ICMPV6 or total < 48 or frame[_L4] not in _FAST_ICMP6)
        )
    ):
        _input(vnet, ifp, frame, now)
        return
    dst: bytes = _ADDRESS_AT(frame, _DST)[0]  # bytes without a slice made first
    first = frame[_SRC]
    if (
        dst[0] == 0xFF
        or is_link_local(dst)
        or first == 0xFF
        or (first == 0xFE and frame[_SRC + 1] & 0xC0 == 0x80)
        or (not first and frame[_SRC:_DST] in (UNSPECIFIED, LOOPBACK))
    ):
        _input(vnet, ifp, frame, now)
        return
    dest = inet6.dests.entries.get(dst)
    neighbours = inet6.nd
    if dest is None or dest.generation != vnet.route.fib6.generation + neighbours.generation:
        _input(vnet, ifp, frame, now)
        return
    paths = dest.paths
    if paths is not None:  # ECMP: this flow's path
        dest = paths[flow6(frame) % len(paths)]
    nhop = dest.nhop
    out = dest.out
    entry = dest.neighbour
    if (
        nhop.type != UNICAST
        or out is None
        or (segment or total) > out.mtu
        or entry is None
        or entry.state != REACHABLE
        or now - entry.confirmed > neighbours.reachable_time
        or dst in inet6.local
    ):
        _input(vnet, ifp, frame, now)
        return
    if flows is not None:
        verdict = flows.admit6(ifp, frame, HEADER_LEN, 2, now)
        if verdict != 1:
            if verdict:  # refused by the flow's state
                _count(ifp, inet6.stats, "ip6_filtered")
            else:
                _input(vnet, ifp, frame, now)
            return
    if frame.__class__ is bytes:
        buf = bytearray(frame[:end]) if end < len(frame) else bytearray(frame)
    else:  # ours to rewrite
        buf = frame if end == len(frame) else carry(frame, total)  # type: ignore[assignment]
    put_header(buf, 0, dest.header)
    buf[_HLIM] = hlim - 1
    nhop.use += 1
    if paths is not None:
        dest.hop.use += 1  # type: ignore[union-attr]  # set on every path's entry
    inet6.stats.forward += 1
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
    inet6 = vnet.inet6
    stats = inet6.stats
    packet = memoryview(frame)[HEADER_LEN:]
    try:
        total = check(packet)
    except WireError as err:
        _count(ifp, stats, err.reason, error=True)
        return
    if total != len(packet):
        packet = packet[:total]
    src = bytes(frame[_SRC : _SRC + 16])
    if src[0] == 0xFF or src == LOOPBACK:
        _count(ifp, stats, "ip6_badsrc", error=True)
        return
    pfil = inet6.pfil
    if pfil is not None:
        if frame.__class__ is bytes:  # the filter may rewrite it (NPTv6)
            frame = bytearray(frame)
            packet = memoryview(frame)[HEADER_LEN : HEADER_LEN + total]
        if not pfil(ifp, packet, IN, now):
            _count(ifp, stats, "ip6_filtered")
            return
    dst = bytes(frame[_DST : _DST + 16])
    l2_multicast = bool(frame[0] & 1)
    if dst[0] == 0xFF:
        member = dst in inet6.groups.get(ifp.name, ())
        if not member and inet6.punt is None:
            _count(ifp, stats, "ip6_notmember")
            return
        _deliver(vnet, ifp, packet, False, l2_multicast, now, member)
        return
    addr = _local(vnet, ifp, dst)
    if addr is not None:
        if not addr.usable:
            _count(ifp, stats, "ip6_tentative")
            return
        _deliver(vnet, ifp, packet, not l2_multicast, l2_multicast, now)
    elif l2_multicast:
        _count(ifp, stats, "ip6_l2multicast")
    elif (any_ := inet6.anycast.get(dst)) is not None and inet6.forwarding and any_.usable:
        _deliver(vnet, ifp, packet, True, False, now)  # Subnet-Router anycast
    elif not inet6.forwarding:
        _count(ifp, stats, "ip6_cantforward")
    elif src == UNSPECIFIED:
        _count(ifp, stats, "ip6_badsrc", error=True)
    else:
        _forward(vnet, ifp, frame, packet, total, src, dst, now)


def _segment_size(frame: OffloadBuffer) -> int:
    """Return the IPv6 length of the segments a TCP super-frame (TCP right after the
    fixed header, where its header says the checksum starts) stands for, as
    :func:`~vrouter.link.offload.segment_length` computes it; for another kind
    of super-frame, a length no MTU holds (the full path deals with it)."""
    raw = frame.raw
    if (
        raw[1] & ~GSO_ECN != GSO_TCPV6
        or frame[_NH] != NH_TCP
        or len(frame) < _L4 + 20
        or (raw[0] & F_NEEDS_CSUM and raw[6] | raw[7] << 8 != _L4)
    ):
        return _NO_FIT
    return 40 + (frame[_L4 + 12] >> 4) * 4 + (raw[4] | raw[5] << 8)


def _deliver(
    vnet: Vnet,
    ifp: Ifnet,
    packet: memoryview,
    unicast: bool,
    l2_multicast: bool,
    now: float,
    member: bool = True,
) -> None:
    """Take a packet addressed to the vnet: the mirror's share to the mirror, the rest to its
    protocol.  A multicast group the vnet did not join (``member`` false) is the mirror's
    alone: its kernel keeps what its programs joined (OSPFv3's ff02::5…)."""
    inet6 = vnet.inet6
    stats = inet6.stats
    vhdr = vhdr_of(packet.obj)
    if vhdr is not None:
        take = (
            inet6.offload_protocols.get(packet[6])
            if vhdr.flags & F_NEEDS_CSUM and inet6.punt is None
            else None
        )
        if take is not None:  # no extension headers: the protocol takes it as it is
            stats.delivered += 1
            take(ifp, packet, 40, unicast, now)
            return
        # Ours to read: complete the checksum, cut super-frames.
        for piece in resolve(packet.obj, vhdr):  # type: ignore[arg-type]
            view = memoryview(bytes(piece))[HEADER_LEN:]
            size = 40 + ((view[4] << 8) | view[5])
            _deliver(vnet, ifp, view[:size], unicast, l2_multicast, now, member)
        return
    try:
        chain = walk(packet, len(packet), local=True)
        if chain.fragment_offset >= 0:
            whole = ipv6_input(inet6.reass, packet, chain.fragment_offset, now)
            _arm_reassembly(vnet)
            if whole is None:
                return
            packet = memoryview(whole)
            chain = walk(packet, len(packet), local=True)
    except ParameterProblem as problem:
        _count(ifp, stats, problem.reason, error=True)
        send_error(
            vnet,
            ifp,
            packet,
            icmp6.PARAM_PROBLEM,
            problem.code,
            now,
            problem.pointer,
            l2_multicast=l2_multicast,
            allow_multicast=_unrecognised_option_may_report(problem, packet),
        )
        return
    except WireError as err:
        _count(ifp, stats, err.reason, error=True)
        return
    if chain.proto == NH_NONE:
        stats.delivered += 1
        return
    punt = inet6.punt
    if punt is not None and punt(ifp, packet, chain.offset, chain.proto, unicast, now):
        return
    if not member:
        _count(ifp, stats, "ip6_notmember")
        return
    handler = inet6.protocols.get(chain.proto)
    if handler is None:
        _count(ifp, stats, "ip6_noproto")
        send_error(
            vnet,
            ifp,
            packet,
            icmp6.PARAM_PROBLEM,
            icmp6.PARAM_NEXTHEADER,
            now,
            chain.proto_field,
            l2_multicast=l2_multicast,
        )
        return
    stats.delivered += 1
    handler(ifp, packet, chain.offset, unicast, now)


def _unrecognised_option_may_report(problem: ParameterProblem, packet: memoryview) -> bool:
    """RFC 8200 4.2: an option of action 10 is reported even to a multicast destination."""
    return (
        problem.code == icmp6.PARAM_OPTION
        and problem.pointer < len(packet)
        and packet[problem.pointer] >> 6 == 2
    )


def _arm_reassembly(vnet: Vnet) -> None:
    """Keep one deadline for the earliest reassembly timeout."""
    vnet.inet6.reass_deadline.arm(
        vnet.timers, vnet.inet6.reass.next_deadline(), lambda t: _expire_reassembly(vnet, t)
    )


def _expire_reassembly(vnet: Vnet, now: float) -> None:
    for first in vnet.inet6.reass.expire(now):
        send_error(
            vnet, None, memoryview(first), icmp6.TIME_EXCEEDED, icmp6.EXC_REASS, now
        )
    _arm_reassembly(vnet)


def _forward(
    vnet: Vnet,
    ifp: Ifnet,
    frame: bytes | bytearray,
    packet: memoryview,
    total: int,
    src: bytes,
    dst: bytes,
    now: float,
) -> None:
    stats = vnet.inet6.stats
    if is_link_local(dst) or is_link_local(src):
        _count(ifp, stats, "ip6_badscope")
        if not is_link_local(dst):
            send_error(
                vnet, ifp, packet, icmp6.DEST_UNREACH, icmp6.UNREACH_BEYOND_SCOPE, now
            )
        return
    hlim = frame[_HLIM]
    if hlim <= 1:
        _count(ifp, stats, "ip6_hoplimit_exceeded")
        send_error(vnet, ifp, packet, icmp6.TIME_EXCEEDED, icmp6.EXC_HOPLIMIT, now)
        return
    inet6 = vnet.inet6
    fib = vnet.route.fib6
    neighbours = inet6.nd
    generation = fib.generation + neighbours.generation
    dest = inet6.dests.entries.get(dst)
    if dest is None or dest.generation != generation:
        found = fib.lookup_nhop(dst)
        if found is None:
            _count(ifp, stats, "ip6_noroute")
            send_error(
                vnet, ifp, packet, icmp6.DEST_UNREACH, icmp6.UNREACH_NOROUTE, now
            )
            return
        if (
            dest is None
            and inet6.pfil is None
            and found.type == UNICAST
            and found.gateway is None
            and not found.nexthops
            and found.ifnet is not None
            and nd.refuse_early(vnet, found.ifnet, dst, now)
        ):  # an on-link address not to resolve now (a scan): no copy, no cache entry
            found.use += 1
            stats.forward += 1
            return
        dest = inet6.dests.build(dst, found, generation, neighbours)
    paths = dest.paths
    if paths is not None:  # ECMP: this flow's path
        dest = paths[flow6(frame) % len(paths)]
    nhop = dest.nhop
    if nhop.type != UNICAST:
        if nhop.type == BLACKHOLE:
            _count(ifp, stats, "ip6_blackhole")
        else:
            _count(ifp, stats, "ip6_reject")
            send_error(vnet, ifp, packet, icmp6.DEST_UNREACH, icmp6.UNREACH_REJECT, now)
        return
    out = dest.out
    assert out is not None
    vhdr = vhdr_of(frame)
    # A TCP super-frame fits if the segments it stands for do.
    size = total if vhdr is None or not vhdr.is_gso else segment_length(frame, vhdr)
    if size > out.mtu:
        _count(ifp, stats, "ip6_toobig")
        send_error(
            vnet, ifp, packet, icmp6.PACKET_TOO_BIG, 0, now, out.mtu, allow_multicast=True
        )
        return
    # After the MTU check: the error must quote the packet as its sender sent it,
    # before the filter translates its source (NPTv6).
    pfil = inet6.pfil
    if pfil is not None and not pfil(out, packet, OUT, now):
        _count(ifp, stats, "ip6_filtered_out")
        return
    buf = bytearray(frame[: HEADER_LEN + total]) if vhdr is None else carry(frame, total)
    buf[_HLIM] = hlim - 1
    nhop.use += 1
    if paths is not None:
        dest.hop.use += 1  # type: ignore[union-attr]  # set on every path's entry
    stats.forward += 1
    if not dest.send(buf, now, neighbours.reachable_time):
        nd.output(vnet, out, dest.nexthop, buf, now)
        dest.learn(neighbours.reachable(out, dest.nexthop))


# --- output ------------------------------------------------------------------------


def output(
    vnet: Vnet, pkt: bytes, now: float, ifp: Ifnet | None = None, vhdr: VirtioHdr | None = None
) -> bool:
    """Send an IPv6 packet this vnet originated; False if it could not be routed.

    Link-local and multicast destinations need the interface ``ifp``.
    Packets larger than the path MTU are fragmented at the source.
    ``vhdr``: the packet is a TCP super-segment (TSO) with this offload work
    left; it leaves whole where the interface takes offloads, else in segments.
    """
    inet6 = vnet.inet6
    dst = pkt[DST]
    if dst[0] == 0xFF or is_link_local(dst):
        if ifp is None:
            inet6.stats.noroute_out += 1
            return False
        out, nexthop = ifp, dst
        local = inet6.linklocal.get((ifp.name, dst))
    else:
        local = inet6.local.get(dst)
        nhop = vnet.route.fib6.lookup_nhop(dst)
        if local is None and (nhop is None or nhop.type != UNICAST or nhop.ifnet is None):
            inet6.stats.noroute_out += 1
            return False
        if local is None:
            assert nhop is not None and nhop.ifnet is not None
            nhop.use += 1
            out, nexthop = nhop.ifnet, nhop.gateway or dst
    if local is not None:  # to ourselves: loop back
        inet6.stats.localout += 1
        if vhdr is not None:
            for cut in resolve(bytes(HEADER_LEN) + pkt, vhdr):
                _deliver(vnet, local.ifnet, memoryview(cut)[HEADER_LEN:], True, False, now)
            return True
        _deliver(vnet, local.ifnet, memoryview(pkt), True, False, now)
        return True
    if inet6.pfil is not None:
        translated = bytearray(pkt)  # the filter may rewrite it (NPTv6)
        if not inet6.pfil(out, memoryview(translated), OUT, now):
            inet6.stats.filtered_out += 1
            out.counters.tx_drops["ip6_filtered_out"] += 1
            return False
        pkt = bytes(translated)
    inet6.stats.localout += 1
    mtu = icmp6_layer.path_mtu(vnet, dst, inet6.ra_mtu(out), now)
    packets = [pkt]
    if vhdr is not None:
        whole = OffloadBuffer(HEADER_LEN + len(pkt))
        whole[HEADER_LEN:] = pkt
        whole.vhdr = vhdr
        if segment_length(whole, vhdr) <= mtu:
            HEADER.pack_into(whole, 0, b"\0" * 6, out.mac, ETHERTYPE_IPV6)
            nd.output(vnet, out, nexthop, whole, now)
            return True
        packets = [bytes(p[HEADER_LEN:]) for p in resolve(whole, vhdr)]  # the path MTU shrank
    pieces: list[bytes] = []
    for one in packets:
        if len(one) <= mtu:
            pieces.append(one)
            continue
        inet6.frag_ident = (inet6.frag_ident + 1) & 0xFFFFFFFF
        pieces += fragment_ipv6(one, mtu, inet6.frag_ident)
        inet6.stats.fragmented += 1
    for piece in pieces:
        piece_frame = bytearray(HEADER_LEN + len(piece))
        piece_frame[HEADER_LEN:] = piece
        HEADER.pack_into(piece_frame, 0, b"\0" * 6, out.mac, ETHERTYPE_IPV6)
        nd.output(vnet, out, nexthop, piece_frame, now)
    return True


# --- ICMPv6: built by vrouter.inet6.icmp6, sent from here ------------------------------


def send_error(
    vnet: Vnet,
    ifp: Ifnet | None,
    pkt: memoryview,
    type_: int,
    code: int,
    now: float,
    rest: int = 0,
    *,
    l2_multicast: bool = False,
    allow_multicast: bool = False,
) -> None:
    """Send the ICMPv6 error :func:`vrouter.inet6.icmp6.error` builds about ``pkt``, if any."""
    message = icmp6_layer.error(
        vnet,
        ifp,
        pkt,
        type_,
        code,
        now,
        rest,
        l2_multicast=l2_multicast,
        allow_multicast=allow_multicast,
    )
    if message is not None and output(vnet, message, now, ifp):
        vnet.inet6.icmp.out_errors += 1


def bridged_too_big(ifp: Ifnet, packet: memoryview, mtu: int, now: float) -> bytes | None:
    """Return the Packet Too Big error about a bridged ``packet`` over ``mtu``
    (:mod:`vrouter.link.bridge`), sourced from bridge interface ``ifp`` (None where no
    error may go)."""
    if len(packet) < ip6_wire.HEADER_LEN or packet[0] >> 4 != 6:
        return None
    vnet = ifp.vnet
    message = icmp6_layer.error(
        vnet, ifp, packet, icmp6.PACKET_TOO_BIG, 0, now, mtu, allow_multicast=True
    )
    if message is not None:
        vnet.inet6.icmp.out_errors += 1
    return message


def address_unreachable(vnet: Vnet, pkt: memoryview, now: float) -> None:
    """Answer a packet whose next hop did not resolve (RFC 4861 7.2.2)."""
    send_error(vnet, None, pkt, icmp6.DEST_UNREACH, icmp6.UNREACH_ADDR, now)


def icmp6_input(ifp: Ifnet, pkt: memoryview, offset: int, unicast: bool, now: float) -> None:
    """Deliver an ICMPv6 message to :func:`vrouter.inet6.icmp6.input` and send its reply."""
    reply = icmp6_layer.input(ifp, pkt, offset, unicast, now)
    if reply is not None and output(ifp.vnet, reply, now, ifp):
        ifp.vnet.inet6.icmp.out_echo_reply += 1


# --- configuration -----------------------------------------------------------------


def add_address(vnet: Vnet, ifp: Ifnet, address: ipaddress.IPv6Interface, now: float) -> Addr6:
    """Configure ``address`` on ``ifp``: tentative until DAD passes once ``ifp`` is up."""
    inet6 = vnet.inet6
    packed = address.ip.packed
    addr = Addr6(packed, address.network.prefixlen, ifp)
    if addr.link_local:
        key = (ifp.name, packed)
        if key in inet6.linklocal:
            raise ValueError(f"address {address.ip} is already configured on {ifp.name}")
        inet6.linklocal[key] = addr
        ifp.addresses6.insert(0, address)
    else:
        if packed in inet6.local:
            raise ValueError(f"address {address.ip} is already configured in vnet {vnet.name}")
        inet6.local[packed] = addr
        ifp.addresses6.append(address)
        add_connected(vnet, ifp, address)
        anycast = subnet_router_anycast(address)
        if anycast is not None:
            inet6.anycast.setdefault(anycast, addr)
    if ifp.up:
        nd.start_dad(vnet, addr, now)
    if vnet.listened:
        vnet.emit({"type": "RTM_NEWADDR", "interface": ifp.name, "address": str(address)})
    return addr


def subnet_router_anycast(address: ipaddress.IPv6Interface) -> bytes | None:
    """Return the Subnet-Router anycast address of ``address``'s prefix (RFC 4291 2.6.1).

    None for link-local addresses and for /127 and /128 prefixes, where it
    would be an address of the link's hosts (RFC 6164).
    """
    if address.is_link_local or address.network.prefixlen > 126:
        return None
    return address.network.network_address.packed


def _iface(addr: Addr6) -> ipaddress.IPv6Interface:
    return ipaddress.IPv6Interface((addr.address, addr.prefixlen))  # bytes: parsed at once


def enable(vnet: Vnet, ifp: Ifnet, now: float) -> None:
    """Give ``ifp`` IPv6: its EUI-64 link-local address unless one is configured."""
    if not any(a.is_link_local for a in ifp.addresses6):
        # From the 16 bytes: an IPv6Address argument would be printed and parsed again, twice.
        ll = ipaddress.IPv6Interface((link_local_from_mac(ifp.mac), 64))
        add_address(vnet, ifp, ll, now)


def set_up(vnet: Vnet, ifp: Ifnet, now: float) -> None:
    """Join the interface's groups and start DAD for its addresses."""
    nd.join(vnet, ifp, ALL_NODES)
    if vnet.inet6.forwarding:
        nd.join(vnet, ifp, ALL_ROUTERS)
    for addr in vnet.inet6.addrs_of(ifp):
        nd.start_dad(vnet, addr, now)


def remove_address(vnet: Vnet, ifp: Ifnet, address: ipaddress.IPv6Interface) -> None:
    """Remove ``address`` from ``ifp``: its DAD timer, connected route, group and neighbours."""
    inet6 = vnet.inet6
    packed = address.ip.packed
    ifp.addresses6.remove(address)
    if address.is_link_local:
        addr = inet6.linklocal.pop((ifp.name, packed), None)
    else:
        addr = inet6.local.pop(packed, None)
        remove_connected(vnet, ifp, address)
        anycast = subnet_router_anycast(address)
        if anycast is not None and inet6.anycast.get(anycast) is addr:
            del inet6.anycast[anycast]
            other = next((a for a in inet6.local.values()
                          if a.prefixlen == address.network.prefixlen
                          and subnet_router_anycast(_iface(a)) == anycast), None)
            if other is not None:
                inet6.anycast[anycast] = other
            elif all(solicited_node(a.ip.packed) != solicited_node(anycast)
                     for a in ifp.addresses6):
                nd.leave(vnet, ifp, solicited_node(anycast))
    if addr is not None and addr.timer is not None:
        addr.timer.cancel()
        addr.timer = None
    group = solicited_node(packed)
    if all(solicited_node(a.ip.packed) != group for a in ifp.addresses6):
        nd.leave(vnet, ifp, group)
    inet6.nd.flush_interface(ifp)
    if vnet.listened:
        vnet.emit({"type": "RTM_DELADDR", "interface": ifp.name, "address": str(address)})


# --- transport stand-ins ---------------------------------------------------------------


def port_unreachable(vnet: Vnet, ifp: Ifnet, pkt: memoryview, now: float) -> None:
    """Answer a UDP datagram to a port nobody holds (RFC 4443 3.1)."""
    send_error(vnet, ifp, pkt, icmp6.DEST_UNREACH, icmp6.UNREACH_PORT, now)


def udp_service(ifp: Ifnet, pkt: memoryview, offset: int, unicast: bool, now: float) -> bool:
    """Hand a UDP datagram to the vnet's own service on its port; False if none took it."""
    services = ifp.vnet.inet6.udp_services
    if not services or len(pkt) < offset + 4:
        return False
    service = services.get(int.from_bytes(pkt[offset + 2 : offset + 4], "big"))
    return service is not None and service(ifp, pkt, offset, unicast, now)


def _udp_input(ifp: Ifnet, pkt: memoryview, offset: int, unicast: bool, now: float) -> None:
    """UDP for this vnet: no sockets are bound yet, so every port but its services' is closed."""
    if udp_service(ifp, pkt, offset, unicast, now):
        return
    src, dst = bytes(pkt[SRC]), bytes(pkt[DST])
    if closed.udp_input(ifp, src, dst, pkt[offset:]) and unicast:
        port_unreachable(ifp.vnet, ifp, pkt, now)


def _tcp_input(ifp: Ifnet, pkt: memoryview, offset: int, unicast: bool, now: float) -> None:
    """TCP for this vnet: no listeners exist yet, so every port answers with a reset."""
    src, dst = bytes(pkt[SRC]), bytes(pkt[DST])
    reset = closed.tcp_input(ifp, src, dst, pkt[offset:], unicast)
    if reset is not None:
        output(ifp.vnet, packet(ifp.vnet, dst, src, NH_TCP, reset), now, ifp)


BUILTIN_PROTOCOLS: dict[int, Proto6Handler] = {
    NH_ICMPV6: icmp6_input,
    NH_UDP: _udp_input,
    NH_TCP: _tcp_input,
}
"""Local delivery handlers every vnet starts with."""
