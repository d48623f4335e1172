"""What the firewall needs to know about one IP packet, and about the one an ICMP error quotes.

Responsibility: ``parse`` reads an IPv4 or IPv6 packet (the family comes
from the version nibble) into a ``PacketInfo``: addresses, the transport
protocol and, for TCP, UDP, ICMP and ICMPv6, the transport fields that rules
and states look at.  ``quoted`` does the same for the packet quoted inside
an ICMP or ICMPv6 error, of which only the IP header and the first 8
transport bytes are guaranteed (RFC 792; RFC 4443 section 2.4 quotes more,
but a router may truncate): ports, the TCP sequence number and the echo id.

Guarantees:

- The IP header is trusted to have been validated by ``vrouter.wire.ipv4.check``
  or ``vrouter.wire.ipv6.check`` (the IP input and output paths call the
  filter hook after that); its checksum is not verified again.  A buffer too
  short for the IP header it announces, or of another version, still raises
  ``IntegrityError``/``SanityError`` rather than being misread.
- IPv6 extension headers are walked leniently, unlike ``ipv6.walk`` (which
  refuses what a destination must refuse): Hop-by-Hop, Destination Options,
  Routing (whatever its type and segments left) and Fragment headers are
  skipped without looking at their options, so a forwarded packet is
  classified by the header that really carries its ports.  AH, ESP and
  No Next Header end the walk and are the packet's ``proto``.
- A non-first fragment (IPv4 offset or IPv6 Fragment offset not zero) has
  ``fragment`` set and no transport fields: its ports are unknown.  A first
  fragment (``first_fragment``) is read like a whole packet, except that
  its UDP length field, which covers the whole datagram, is not checked
  against the fragment.
- ``malformed`` is set when the transport header the packet announces is cut
  short: TCP shorter than 20 bytes or than its data offset, UDP shorter than
  8 bytes or than its length field, ICMP/ICMPv6 shorter than 8 bytes, or an
  IPv6 extension header chain that runs past the packet (or is longer than
  ``ipv6.MAX_EXTENSIONS``).  Transport checksums are not verified: the
  endpoint does that.
- For ICMP and ICMPv6 echo request/reply the echo identifier is put in both
  ``sport`` and ``dport``, so echo states key like port pairs.
- ``wscale`` is the TCP window scale option of a SYN (clamped to 14, RFC 7323
  section 2.3), -1 when absent or the segment is not a SYN.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire import icmp4, icmp6, ipv4, ipv6, tcp, udp
from vrouter.wire.errors import IntegrityError, SanityError, WireError

__all__ = [
    "ICMP4_ERRORS",
    "ICMP6_ERRORS",
    "ND_TYPES",
    "PROTO_ICMP",
    "PROTO_ICMP6",
    "PROTO_TCP",
    "PROTO_UDP",
    "PacketInfo",
    "echo_request_type",
    "is_echo",
    "is_icmp_error",
    "parse",
    "quoted",
]

PROTO_ICMP = ipv4.PROTO_ICMP
PROTO_TCP = tcp.PROTO
PROTO_UDP = udp.PROTO
PROTO_ICMP6 = ipv6.NH_ICMPV6

ICMP4_SOURCE_QUENCH = 4
ICMP4_PARAM_PROBLEM = 12
ICMP4_ERRORS = frozenset(
    {icmp4.DEST_UNREACH, ICMP4_SOURCE_QUENCH, icmp4.TIME_EXCEEDED, ICMP4_PARAM_PROBLEM}
)
"""ICMP errors whose quoted packet may belong to a state (not redirects)."""
ICMP6_ERRORS = frozenset(
    {icmp6.DEST_UNREACH, icmp6.PACKET_TOO_BIG, icmp6.TIME_EXCEEDED, icmp6.PARAM_PROBLEM}
)
"""ICMPv6 errors whose quoted packet may belong to a state."""
ND_TYPES = frozenset(
    {icmp6.ROUTER_SOLICIT, icmp6.ROUTER_ADVERT, icmp6.NEIGHBOR_SOLICIT, icmp6.NEIGHBOR_ADVERT}
)
"""ICMPv6 Neighbor Discovery types the link needs; the filter always passes them."""

_ECHO4 = (icmp4.ECHO_REQUEST, icmp4.ECHO_REPLY)
_ECHO6 = (icmp6.ECHO_REQUEST, icmp6.ECHO_REPLY)
_ICMP_ID = struct.Struct("!BBHH")
_PORTS_SEQ = struct.Struct("!HHI")
_PORTS = struct.Struct("!HH")
_EXT_SKIP = frozenset({ipv6.NH_HOPOPTS, ipv6.NH_ROUTING, ipv6.NH_DSTOPTS})
_TCP_OPT_WSCALE = 3
_MAX_WSCALE = 14


@dataclass(slots=True)
class PacketInfo:
    """The fields of one IP packet that rules and states look at."""

    family: int
    """4 or 6."""
    proto: int
    """Transport protocol, after the IPv6 extension headers."""
    src: bytes
    """Source address, 4 or 16 bytes."""
    dst: bytes
    """Destination address, 4 or 16 bytes."""
    length: int
    """IP packet length (header included)."""
    sport: int = 0
    """TCP/UDP source port; the echo id for ICMP/ICMPv6 echo request and reply."""
    dport: int = 0
    """TCP/UDP destination port; the echo id for ICMP/ICMPv6 echo request and reply."""
    tcp_flags: int = 0
    """TCP flags byte (``vrouter.wire.tcp.SYN`` ...)."""
    seq: int = 0
    """TCP sequence number."""
    ack: int = 0
    """TCP acknowledgment number."""
    window: int = 0
    """TCP window field, unscaled."""
    wscale: int = -1
    """Window scale option of a SYN (0..14), -1 if absent."""
    payload_len: int = 0
    """TCP data length."""
    icmp_type: int = -1
    """ICMP/ICMPv6 type, -1 for other protocols."""
    icmp_code: int = -1
    """ICMP/ICMPv6 code, -1 for other protocols."""
    fragment: bool = False
    """A non-first fragment: no transport header, ports unknown."""
    first_fragment: bool = False
    """A first fragment (more follow): its transport header, not all its data."""
    malformed: bool = False
    """The transport header is truncated."""


@dataclass(frozen=True, slots=True)
class _Located:
    """Where the transport header of a packet is."""

    info: PacketInfo
    offset: int
    end: int


def is_icmp_error(info: PacketInfo) -> bool:
    """Return True for an ICMP/ICMPv6 error that may quote a tracked packet."""
    if info.family == 4:
        return info.proto == PROTO_ICMP and info.icmp_type in ICMP4_ERRORS
    return info.proto == PROTO_ICMP6 and info.icmp_type in ICMP6_ERRORS


def is_echo(info: PacketInfo) -> bool:
    """Return True for an ICMP/ICMPv6 echo request or reply."""
    if info.family == 4:
        return info.proto == PROTO_ICMP and info.icmp_type in _ECHO4
    return info.proto == PROTO_ICMP6 and info.icmp_type in _ECHO6


def echo_request_type(family: int) -> int:
    """Return the echo request type of ``family``."""
    return icmp4.ECHO_REQUEST if family == 4 else icmp6.ECHO_REQUEST


def _locate(view: memoryview, *, truncated: bool) -> _Located:
    """Read the IP header of ``view`` and find its transport header.

    ``truncated``: the buffer may end before the length the header
    announces (a quoted packet); the walk then stops at the buffer's end.
    """
    n = len(view)
    if n == 0:
        raise IntegrityError("ip_tooshort", "0 bytes")
    version = view[0] >> 4
    if version == 4:
        if n < ipv4.HEADER_LEN:
            raise IntegrityError("ip_tooshort", f"{n} bytes")
        hlen = (view[0] & 0x0F) << 2
        if hlen < ipv4.HEADER_LEN or hlen > n:
            raise IntegrityError("ip_badhlen", f"IHL {hlen >> 2}")
        total = (view[ipv4.TOTAL_LENGTH] << 8) | view[ipv4.TOTAL_LENGTH + 1]
        if total < hlen:
            raise IntegrityError("ip_badlen", f"total length {total} < header {hlen}")
        if total > n and not truncated:
            raise IntegrityError("ip_tooshort", f"total length {total} > {n} bytes")
        flags_frag = (view[ipv4.FLAGS_FRAG] << 8) | view[ipv4.FLAGS_FRAG + 1]
        info = PacketInfo(4, view[ipv4.PROTO], bytes(view[ipv4.SRC]), bytes(view[ipv4.DST]), total)
        info.fragment = bool(flags_frag & ipv4.OFFSET_MASK)
        info.first_fragment = not info.fragment and bool(flags_frag & ipv4.FLAG_MF)
        return _Located(info, hlen, min(total, n))
    if version == 6:
        if n < ipv6.HEADER_LEN:
            raise IntegrityError("ip6_tooshort", f"{n} bytes")
        total = ipv6.HEADER_LEN + ((view[ipv6.PAYLOAD_LENGTH] << 8) | view[ipv6.PAYLOAD_LENGTH + 1])
        if total > n and not truncated:
            raise IntegrityError("ip6_tooshort", f"payload length {total - ipv6.HEADER_LEN}")
        end = min(total, n)
        info = PacketInfo(6, 0, bytes(view[ipv6.SRC]), bytes(view[ipv6.DST]), total)
        offset = _walk6(view, end, info)
        return _Located(info, offset, end)
    raise SanityError("ip_badvers", f"version {version}")


def _walk6(view: memoryview, end: int, info: PacketInfo) -> int:
    """Skip extension headers; set ``info.proto`` (and fragment/malformed); return the offset."""
    nh = view[ipv6.NEXT_HEADER]
    offset = ipv6.HEADER_LEN
    for _ in range(ipv6.MAX_EXTENSIONS + 1):
        if nh in _EXT_SKIP:
            if offset + 8 > end:
                break
            next_offset = offset + (view[offset + 1] + 1) * 8
            if next_offset > end:
                break
            nh = view[offset]
            offset = next_offset
        elif nh == ipv6.NH_FRAGMENT:
            if offset + ipv6.FRAGMENT.size > end:
                break
            nh, _, offlg, _ = ipv6.FRAGMENT.unpack_from(view, offset)
            offset += ipv6.FRAGMENT.size
            if offlg & ipv6.FRAG_OFFSET_MASK:
                info.proto = nh
                info.fragment = True
                return offset
            info.first_fragment = bool(offlg & 1)  # the M flag
        else:
            info.proto = nh
            return offset
    # Chain truncated or too long: the transport header cannot be found.
    info.proto = nh
    info.malformed = True
    return offset


def _wscale(segment: memoryview, hlen: int) -> int:
    """Return the window scale option of a TCP header, -1 if absent."""
    i = tcp.HEADER_LEN
    while i < hlen:
        kind = segment[i]
        if kind == 0:  # End of option list
            break
        if kind == 1:  # No-Operation
            i += 1
            continue
        if i + 1 >= hlen:
            break
        size = segment[i + 1]
        if size < 2 or i + size > hlen:
            break
        if kind == _TCP_OPT_WSCALE and size == 3:
            return min(segment[i + 2], _MAX_WSCALE)
        i += size
    return -1


def _transport(info: PacketInfo, view: memoryview, offset: int, end: int) -> None:
    """Fill the transport fields of a whole (or first-fragment) packet."""
    data = view[offset:end]
    proto = info.proto
    try:
        if proto == PROTO_TCP:
            header = tcp.TcpHeader.parse(data)
            info.sport = header.src_port
            info.dport = header.dst_port
            info.tcp_flags = header.flags
            info.seq = header.seq
            info.ack = header.ack
            info.window = header.window
            info.payload_len = header.payload_len
            if header.flags & tcp.SYN:
                info.wscale = _wscale(data, header.header_len)
        elif proto == PROTO_UDP:
            if info.first_fragment:  # its length field covers the whole datagram
                if len(data) < udp.HEADER_LEN:
                    raise IntegrityError("udp_tooshort", f"{len(data)} bytes")
                info.sport, info.dport = _PORTS.unpack_from(data)
            else:
                datagram = udp.UdpHeader.parse(data)
                info.sport = datagram.src_port
                info.dport = datagram.dst_port
        elif (proto == PROTO_ICMP and info.family == 4) or (
            proto == PROTO_ICMP6 and info.family == 6
        ):
            _icmp(info, data)
    except WireError:
        info.malformed = True


def _icmp(info: PacketInfo, data: memoryview) -> None:
    """Fill type, code and (for echo) the identifier; raise if shorter than 8 bytes."""
    if len(data) < icmp4.HEADER_LEN:
        raise IntegrityError("icmp_tooshort", f"{len(data)} bytes")
    type_, code, _, ident = _ICMP_ID.unpack_from(data)
    info.icmp_type = type_
    info.icmp_code = code
    if is_echo(info):
        info.sport = info.dport = ident


def parse(packet: bytes | memoryview) -> PacketInfo:
    """Return the ``PacketInfo`` of a validated IPv4 or IPv6 packet."""
    view = memoryview(packet)
    located = _locate(view, truncated=False)
    info = located.info
    if not info.fragment and not info.malformed:
        _transport(info, view, located.offset, located.end)
    return info


def quoted(info: PacketInfo, packet: bytes | memoryview) -> PacketInfo | None:
    """Return the packet quoted by the ICMP/ICMPv6 error ``info`` (parsed from ``packet``).

    Only the first 8 transport bytes are read: ports and the TCP sequence
    number (no flags, window or payload length), the type, code and echo id
    of a quoted ICMP message.  ``length`` is the quoted header's length
    field.  Returns None if ``info`` is not such an error or if the quote is
    not an IP packet of the same family with those 8 bytes (a quoted non-first
    fragment included: it has no ports to match).
    """
    if info.fragment or info.malformed or not is_icmp_error(info):
        return None
    view = memoryview(packet)
    try:
        outer = _locate(view, truncated=False)
        start = outer.offset + icmp4.HEADER_LEN
        inner_view = view[start : outer.end]
        inner = _locate(inner_view, truncated=True)
    except WireError:
        return None
    result = inner.info
    if result.family != info.family or result.fragment or result.malformed:
        return None
    data = inner_view[inner.offset : inner.end]
    proto = result.proto
    if proto in (PROTO_TCP, PROTO_UDP):
        if len(data) < _PORTS_SEQ.size:
            return None
        result.sport, result.dport, seq = _PORTS_SEQ.unpack_from(data)
        if proto == PROTO_TCP:
            result.seq = seq
    elif (proto == PROTO_ICMP and result.family == 4) or (
        proto == PROTO_ICMP6 and result.family == 6
    ):
        try:
            _icmp(result, data)
        except WireError:
            return None
    return result
