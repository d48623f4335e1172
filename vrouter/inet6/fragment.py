"""IPv6 reassembly and source fragmentation (RFC 8200 section 4.5).

``ipv6_input`` feeds the family-neutral ``vrouter.inet.fragment.Reassembly``
with fragments keyed by (source, destination, identification).  The
reassembled packet is the offset-0 fragment's unfragmentable part with the
Fragment header removed, the Next Header that pointed at it rewritten and the
Payload Length fixed.  Errors that RFC 8200 answers with ICMPv6 Parameter
Problem raise ``ParameterProblem`` (the caller sends it); every drop is
counted in the table's ``ReassStats``.  Atomic fragments (offset 0, M clear,
RFC 6946) are returned at once without touching the table.

``fragment_ipv6`` splits a packet this node originates (routers never
fragment in transit).  Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import struct

from vrouter.inet.fragment import Reassembly
from vrouter.wire.ipv6 import (
    FRAG_MORE,
    FRAG_OFFSET_MASK,
    FRAGMENT,
    HEADER_LEN,
    MAX_EXTENSIONS,
    NEXT_HEADER,
    NH_DSTOPTS,
    NH_FRAGMENT,
    NH_HOPOPTS,
    NH_ROUTING,
    PAYLOAD_LENGTH,
    ParameterProblem,
)

MIN_MTU = 1280
"""Every IPv6 link carries 1280 bytes (RFC 8200 section 5)."""
MAX_PAYLOAD = 65535
"""Largest Payload Length without a jumbogram."""
FRAGMENT_LEN = 8
"""Length of the Fragment header."""
PP_HEADER = 0
"""Parameter Problem code 0: erroneous header field encountered."""
PP_CHAIN = 3
"""Parameter Problem code 3: first fragment has an incomplete header chain (RFC 7112)."""

_U16 = struct.Struct("!H")
_OPTION_HEADERS = frozenset({NH_HOPOPTS, NH_ROUTING, NH_DSTOPTS})


def _next_header_field(packet: bytes | bytearray | memoryview, frag: int) -> int:
    """Return the offset of the Next Header field that names the header at ``frag``.

    That is the fixed header's byte 6, or the first byte of the extension
    header just before (only Hop-by-Hop, Routing and Destination Options
    headers can precede a Fragment header, as ``walk`` returns it).
    """
    field = NEXT_HEADER
    offset = HEADER_LEN
    while offset < frag:
        if packet[field] not in _OPTION_HEADERS:
            break
        field = offset
        offset += (packet[offset + 1] + 1) * 8
    if offset != frag:
        raise ValueError(f"no extension header chain leads to offset {frag}")
    return field


def _unfragment(head: bytes | bytearray | memoryview, frag: int, payload: bytes) -> bytes:
    """Return ``head`` (through the Fragment header at ``frag``) joined to ``payload``.

    The Fragment header is removed, the Next Header that named it takes its
    Next Header, and the Payload Length is set.
    """
    out = bytearray(head[:frag])
    out[_next_header_field(head, frag)] = head[frag]
    _U16.pack_into(out, PAYLOAD_LENGTH, len(out) - HEADER_LEN + len(payload))
    return bytes(out) + payload


def _chain_complete(packet: bytes | memoryview, nh: int, start: int) -> bool:
    """Return True if the extension headers from ``start`` end within the packet.

    Follows Hop-by-Hop, Routing, Destination Options and Fragment headers;
    whatever follows is the upper layer, whose own length is not checked.
    """
    n = len(packet)
    for _ in range(MAX_EXTENSIONS):
        if nh not in _OPTION_HEADERS and nh != NH_FRAGMENT:
            return start <= n
        if start + 2 > n:
            return False
        length = FRAGMENT_LEN if nh == NH_FRAGMENT else (packet[start + 1] + 1) * 8
        nh = packet[start]
        start += length
        if start > n:
            return False
    return True  # too many headers: for the upper layer's input to refuse


def ipv6_input(
    table: Reassembly, packet: bytes | memoryview, frag: int, now: float
) -> bytes | None:
    """Add one IPv6 fragment whose Fragment header is at ``frag``; return the packet once whole.

    ``packet`` has passed ``vrouter.wire.ipv6.check`` and is trimmed to
    40 + Payload Length; ``frag`` comes from ``walk(...).fragment_offset``.
    Raises ``ParameterProblem`` (RFC 8200 4.5): code 0 pointing at Payload
    Length for a non-final fragment whose length is not a multiple of 8
    (``badlen``); code 0 pointing at Fragment Offset when the reassembled
    Payload Length would exceed 65535 (``toolong``); code 3, pointer 0
    (RFC 7112) for an offset-0 fragment whose extension-header chain does not
    end within it (``badlen``).  An empty non-final fragment is dropped and
    counted ``badlen`` without an error message.
    """
    nh, _, offset_more, ident = FRAGMENT.unpack_from(packet, frag)
    offset = offset_more & FRAG_OFFSET_MASK
    more = bool(offset_more & FRAG_MORE)
    start = frag + FRAGMENT_LEN
    if offset == 0 and not more:
        return _unfragment(packet, frag, bytes(packet[start:]))  # atomic (RFC 6946)
    stats = table.stats
    stats.fragments += 1
    length = len(packet) - start
    if more and length & 7:
        stats.badlen += 1
        raise ParameterProblem(
            "ip6_fragbadlen", PP_HEADER, PAYLOAD_LENGTH, f"{length} bytes, not a multiple of 8"
        )
    if more and length == 0:
        stats.badlen += 1
        return None
    if (frag - HEADER_LEN) + offset + length > MAX_PAYLOAD:
        stats.toolong += 1
        raise ParameterProblem(
            "ip6_fragtoolong", PP_HEADER, frag + 2, f"offset {offset} + {length} bytes"
        )
    if offset == 0 and not _chain_complete(packet, nh, start):
        stats.badlen += 1
        raise ParameterProblem("ip6_fragchain", PP_CHAIN, 0, "header chain cut by fragmentation")
    key = (bytes(packet[8:40]), ident)
    # Reassembled length = head - Fragment header + data <= 40 + 65535.
    limit = HEADER_LEN + MAX_PAYLOAD + FRAGMENT_LEN
    done = table.add(
        key, offset=offset, more=more, packet=packet, start=start, now=now, limit=limit
    )
    if done is None:
        return None
    return _unfragment(done.head, len(done.head) - FRAGMENT_LEN, done.payload)


def unfragmentable_length(packet: bytes | memoryview) -> tuple[int, int]:
    """Return ``(length, field)`` of the unfragmentable part of a whole packet.

    The unfragmentable part is the fixed header plus Hop-by-Hop, Routing and
    any Destination Options before a Routing header (RFC 8200 4.5); ``field``
    is the offset of the Next Header field that names the first fragmentable
    header.  Raises ValueError on a truncated chain or an existing Fragment header.
    """
    total = len(packet)
    nh = packet[NEXT_HEADER]
    offset = HEADER_LEN
    end, end_field = HEADER_LEN, NEXT_HEADER
    for _ in range(MAX_EXTENSIONS):
        if nh == NH_FRAGMENT:
            raise ValueError("the packet already has a Fragment header")
        if nh not in _OPTION_HEADERS:
            return end, end_field
        if offset + 2 > total:
            raise ValueError(f"extension header {nh} truncated")
        length = (packet[offset + 1] + 1) * 8
        if offset + length > total:
            raise ValueError(f"extension header {nh} truncated")
        if nh != NH_DSTOPTS:
            # Destination Options join the unfragmentable part only before a Routing header.
            end, end_field = offset + length, offset
        nh = packet[offset]
        offset += length
    raise ValueError(f"more than {MAX_EXTENSIONS} extension headers")


def fragment_ipv6(packet: bytes | memoryview, mtu: int, ident: int) -> list[bytes]:
    """Split a packet this node originates into fragments of at most ``mtu`` bytes.

    A packet that fits is returned as it is (one piece).  Otherwise each
    piece is the unfragmentable part, a Fragment header with ``ident``, and
    data in multiples of 8 except in the last piece.  Raises ValueError if
    ``mtu`` is below 1280, or the unfragmentable part leaves no room for data.
    """
    if mtu < MIN_MTU:
        raise ValueError(f"MTU {mtu} is below the IPv6 minimum of {MIN_MTU}")
    total = HEADER_LEN + ((packet[PAYLOAD_LENGTH] << 8) | packet[PAYLOAD_LENGTH + 1])
    packet = packet[:total]
    if total <= mtu:
        return [bytes(packet)]
    unfrag_len, field = unfragmentable_length(packet)
    head = bytearray(packet[:unfrag_len])
    nh = head[field]
    head[field] = NH_FRAGMENT
    room = (mtu - unfrag_len - FRAGMENT_LEN) & ~7
    if room < 8:
        raise ValueError(f"MTU {mtu} leaves no room for data after {unfrag_len} header bytes")
    data = memoryview(bytes(packet[unfrag_len:]))
    pieces: list[bytes] = []
    for pos in range(0, len(data), room):
        chunk = data[pos : pos + room]
        more = FRAG_MORE if pos + len(chunk) < len(data) else 0
        _U16.pack_into(head, PAYLOAD_LENGTH, unfrag_len - HEADER_LEN + FRAGMENT_LEN + len(chunk))
        pieces.append(bytes(head) + FRAGMENT.pack(nh, 0, pos | more, ident) + bytes(chunk))
    return pieces
