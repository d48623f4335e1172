"""IPv6 header (RFC 8200), extension-header walk, addresses and multicast MACs.

``check`` validates the fixed header at fixed offsets for the data path.
``walk`` follows the extension-header chain and returns where the upper
layer starts, raising with a counter name (and, where RFC 8200 asks for a
Parameter Problem, the offending offset) when the chain is malformed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.errors import IntegrityError, SanityError

HEADER = struct.Struct("!IHBB16s16s")
HEADER_LEN = 40
PAYLOAD_LENGTH = 4
NEXT_HEADER = 6
HOP_LIMIT = 7
SRC = slice(8, 24)
DST = slice(24, 40)

NH_HOPOPTS = 0
NH_TCP = 6
NH_UDP = 17
NH_ROUTING = 43
NH_FRAGMENT = 44
NH_ESP = 50
NH_AH = 51
NH_ICMPV6 = 58
NH_NONE = 59
NH_DSTOPTS = 60

UNSPECIFIED = bytes(16)
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")
LINK_LOCAL_PREFIX = bytes.fromhex("fe80000000000000")

FRAGMENT = struct.Struct("!BBHI")
FRAG_OFFSET_MASK = 0xFFF8
FRAG_MORE = 0x0001


class ParameterProblem(SanityError):
    """A malformed header that RFC 8200 answers with ICMPv6 Parameter Problem."""

    def __init__(self, reason: str, code: int, pointer: int, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.code = code
        self.pointer = pointer


def check(packet: bytes | bytearray | memoryview) -> int:
    """Validate the fixed header of ``packet``; return the length to use (40 + payload).

    Raises IntegrityError (``ip6_tooshort``) or SanityError (``ip6_badvers``).
    """
    n = len(packet)
    if n < HEADER_LEN:
        raise IntegrityError("ip6_tooshort", f"{n} bytes")
    if packet[0] >> 4 != 6:
        raise SanityError("ip6_badvers", f"version {packet[0] >> 4}")
    plen = (packet[4] << 8) | packet[5]
    if plen == 0 and packet[6] == NH_HOPOPTS:
        raise SanityError("ip6_jumbogram", "jumbo payloads are not supported")
    total = HEADER_LEN + plen
    if total > n:
        raise IntegrityError("ip6_tooshort", f"payload length {plen} > {n - HEADER_LEN} bytes")
    return total


@dataclass(frozen=True, slots=True)
class Ipv6Header:
    """The meaning of the fixed IPv6 header; addresses are 16 raw bytes."""

    traffic_class: int
    flow_label: int
    payload_length: int
    next_header: int
    hop_limit: int
    src: bytes
    dst: bytes

    @classmethod
    def parse(cls, packet: bytes | bytearray | memoryview) -> Ipv6Header:
        """Validate and parse the fixed header."""
        check(packet)
        vtf, plen, nh, hlim, src, dst = HEADER.unpack_from(packet)
        return cls((vtf >> 20) & 0xFF, vtf & 0xFFFFF, plen, nh, hlim, src, dst)

    def emit(self) -> bytes:
        """Return the 40 header bytes."""
        vtf = (6 << 28) | (self.traffic_class << 20) | self.flow_label
        return HEADER.pack(
            vtf, self.payload_length, self.next_header, self.hop_limit, self.src, self.dst
        )


def build(
    src: bytes,
    dst: bytes,
    next_header: int,
    payload: bytes | memoryview,
    *,
    hop_limit: int = 64,
    traffic_class: int = 0,
    flow_label: int = 0,
) -> bytes:
    """Return a complete IPv6 packet carrying ``payload``."""
    vtf = (6 << 28) | (traffic_class << 20) | flow_label
    return HEADER.pack(vtf, len(payload), next_header, hop_limit, src, dst) + bytes(payload)


@dataclass(frozen=True, slots=True)
class Chain:
    """Where the upper layer starts, and what the chain said on the way."""

    proto: int
    """Upper-layer protocol (``NH_NONE`` if the chain ends there)."""
    offset: int
    """Offset of the upper-layer header from the start of the IPv6 packet."""
    fragment_offset: int = -1
    """Offset of the Fragment header, or -1 if the packet is not a fragment.

    When set, ``proto`` is the Fragment header's Next Header and ``offset``
    the start of the fragment's data."""
    hopopts: bool = False
    """A Hop-by-Hop Options header was present."""
    router_alert: bool = False
    """The Hop-by-Hop header carried a Router Alert option (RFC 2711)."""
    proto_field: int = NEXT_HEADER
    """Offset of the Next Header field that names ``proto`` (for Parameter Problem)."""


_EXT = frozenset({NH_HOPOPTS, NH_ROUTING, NH_DSTOPTS, NH_FRAGMENT})
MAX_EXTENSIONS = 16
"""Extension headers walked before the chain is declared abusive."""


def _options(packet: bytes | bytearray | memoryview, start: int, end: int) -> bool:
    """Check TLV options in [start, end); return True if a Router Alert is present.

    An unknown option whose type says "discard and send Parameter Problem"
    (high bits 10 or 11) raises; "skip" (00) is skipped; "discard" (01)
    raises a plain SanityError.  (RFC 8200 section 4.2.)
    """
    alert = False
    i = start
    while i < end:
        opt = packet[i]
        if opt == 0:  # Pad1
            i += 1
            continue
        if i + 1 >= end:
            raise IntegrityError("ip6_badopt", "option runs past its header")
        length = packet[i + 1]
        if i + 2 + length > end:
            raise IntegrityError("ip6_badopt", "option runs past its header")
        if opt == 1:  # PadN
            pass
        elif opt == 5:  # Router Alert
            alert = True
        else:
            action = opt >> 6
            if action == 1:
                raise SanityError("ip6_unknownopt", f"option {opt:#x}")
            if action >= 2:
                raise ParameterProblem("ip6_unknownopt", 2, i, f"option {opt:#x}")
        i += 2 + length
    return alert


def walk(packet: bytes | bytearray | memoryview, total: int, *, local: bool) -> Chain:
    """Follow the extension headers of a checked packet of ``total`` bytes.

    ``local`` says the packet is for this node: only then are Destination
    Options and Routing headers processed (a forwarded packet's chain is
    examined only up to Hop-by-Hop, RFC 8200 section 4).  The walk stops at
    a Fragment header: what follows it is only known after reassembly, so
    the returned ``proto``/``offset`` then describe the fragment's payload.
    Routing type 0 and every other routing type with segments left are
    refused (RFC 5095; none is implemented).
    """
    nh = packet[NEXT_HEADER]
    offset = HEADER_LEN
    prev_nh_field = NEXT_HEADER
    hopopts = False
    alert = False
    for count in range(MAX_EXTENSIONS + 1):
        if nh not in _EXT:
            return Chain(nh, offset, -1, hopopts, alert, prev_nh_field)
        if count == MAX_EXTENSIONS:
            raise SanityError("ip6_toomanyext", f"more than {MAX_EXTENSIONS} extension headers")
        if nh == NH_HOPOPTS and offset != HEADER_LEN:
            # Hop-by-Hop only right after the fixed header (RFC 8200 4.1).
            raise ParameterProblem("ip6_badhopopts", 1, prev_nh_field)
        if nh != NH_HOPOPTS and not local:
            # A forwarding node looks no further than Hop-by-Hop.
            return Chain(nh, offset, -1, hopopts, alert, prev_nh_field)
        if offset + 8 > total:
            raise IntegrityError("ip6_exttooshort", f"extension header {nh} truncated")
        if nh == NH_FRAGMENT:
            return Chain(packet[offset], offset + 8, offset, hopopts, alert, offset)
        hdr_len = (packet[offset + 1] + 1) * 8
        if offset + hdr_len > total:
            raise IntegrityError("ip6_exttooshort", f"extension header {nh} truncated")
        if nh == NH_HOPOPTS:
            hopopts = True
            alert = _options(packet, offset + 2, offset + hdr_len)
        elif nh == NH_DSTOPTS:
            _options(packet, offset + 2, offset + hdr_len)
        elif packet[offset + 3] != 0:  # Routing header with segments left
            raise ParameterProblem(
                "ip6_badrouting", 0, offset + 2, f"routing type {packet[offset + 2]}"
            )
        prev_nh_field = offset
        nh = packet[offset]
        offset += hdr_len
    raise AssertionError("unreachable")


def is_multicast(address: bytes) -> bool:
    """Return True for ff00::/8."""
    return address[0] == 0xFF


def is_link_local(address: bytes) -> bool:
    """Return True for fe80::/10."""
    return address[0] == 0xFE and address[1] & 0xC0 == 0x80


def solicited_node(address: bytes) -> bytes:
    """Return the solicited-node multicast address of ``address`` (RFC 4291 2.7.1)."""
    return bytes.fromhex("ff0200000000000000000001ff") + address[13:16]


def multicast_mac(group: bytes) -> bytes:
    """Return the Ethernet address of an IPv6 multicast group (RFC 2464 section 7)."""
    return b"\x33\x33" + group[12:16]


def eui64_interface_id(mac: bytes) -> bytes:
    """Return the modified EUI-64 interface identifier of ``mac`` (RFC 4291 appendix A)."""
    return bytes([mac[0] ^ 0x02, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]])


def link_local_from_mac(mac: bytes) -> bytes:
    """Return fe80::/64 with the EUI-64 identifier of ``mac``."""
    return LINK_LOCAL_PREFIX + eui64_interface_id(mac)
