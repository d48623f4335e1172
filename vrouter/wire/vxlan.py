"""VXLAN (RFC 7348): an Ethernet frame in a UDP datagram, behind an 8-byte header.

The header is ``flags(1) reserved(3) VNI(3) reserved(1)``; the I flag
(0x08) says the VNI is valid and must be set, the other bits are reserved
(sent as zero, ignored on receipt).  The IANA port is 4789 (Linux's default
without ``dstport`` is the older 8472).

Overhead on the wire, what a VXLAN interface's MTU gives up to its
underlay: the inner Ethernet header (14) + VXLAN (8) + UDP (8) + the outer
IP header (20 for IPv4, 40 for IPv6) = 50 or 70 bytes, plus 4 per 802.1Q
tag the inner frame carries.
"""

from __future__ import annotations

import struct

from vrouter.wire.errors import IntegrityError, SanityError

HEADER_LEN = 8
FLAG_I = 0x08
"""The "VNI present" flag, the only one RFC 7348 defines."""
PORT = 4789
"""IANA's VXLAN port."""
VNI_MAX = (1 << 24) - 1
INNER_ETHERNET = 14
OVERHEAD_V4 = INNER_ETHERNET + HEADER_LEN + 8 + 20
"""Bytes between an IPv4 underlay's MTU and the inner MTU (50)."""
OVERHEAD_V6 = INNER_ETHERNET + HEADER_LEN + 8 + 40
"""Bytes between an IPv6 underlay's MTU and the inner MTU (70)."""
OUTER_V4 = OVERHEAD_V4 - INNER_ETHERNET
"""Bytes an IPv4 underlay adds to a whole inner frame (36): outer IP, UDP, VXLAN."""
OUTER_V6 = OVERHEAD_V6 - INNER_ETHERNET
"""Bytes an IPv6 underlay adds to a whole inner frame (56)."""
_HEADER = struct.Struct("!II")


def header(vni: int) -> bytes:
    """Return the 8-byte VXLAN header for ``vni`` (I flag set)."""
    if not 0 <= vni <= VNI_MAX:
        raise ValueError(f"VNI {vni} is out of range 0..{VNI_MAX}")
    return _HEADER.pack(FLAG_I << 24, vni << 8)


def parse(datagram: bytes | bytearray | memoryview) -> int:
    """Return the VNI of a VXLAN datagram (UDP payload) that carries at least an Ethernet header.

    Raises IntegrityError for a datagram too short for the header and an
    inner Ethernet header, SanityError for one without the I flag.
    """
    if len(datagram) < HEADER_LEN + INNER_ETHERNET:
        raise IntegrityError(f"VXLAN datagram of {len(datagram)} bytes is too short")
    if not datagram[0] & FLAG_I:
        raise SanityError(f"VXLAN flags {datagram[0]:#04x} lack the I bit")
    return (datagram[4] << 16) | (datagram[5] << 8) | datagram[6]
