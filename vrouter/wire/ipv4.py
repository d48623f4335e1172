"""IPv4 header (RFC 791): validation, fixed offsets for the data path, building.

``check`` is the data-path validator: it reads only fixed offsets and returns
the header length and total length, or raises with a counter name as reason.
``Ipv4Header.parse`` gives the full value for slow paths and tests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.checksum import checksum, ones_sum
from vrouter.wire.errors import IntegrityError, SanityError

HEADER = struct.Struct("!BBHHHBBH4s4s")
HEADER_LEN = 20
TOTAL_LENGTH = 2
IDENT = 4
FLAGS_FRAG = 6
TTL = 8
PROTO = 9
CHECKSUM = 10
SRC = slice(12, 16)
DST = slice(16, 20)

FLAG_DF = 0x4000
FLAG_MF = 0x2000
OFFSET_MASK = 0x1FFF

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

_U16 = struct.Struct("!H")


def check(packet: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Validate the header of ``packet``; return ``(header_len, total_len)``.

    Raises IntegrityError (``ip_tooshort``, ``ip_badhlen``, ``ip_badlen``,
    ``ip_badsum``) or SanityError (``ip_badvers``), named as FreeBSD's ipstat.
    """
    n = len(packet)
    if n < HEADER_LEN:
        raise IntegrityError("ip_tooshort", f"{n} bytes")
    vihl = packet[0]
    if vihl >> 4 != 4:
        raise SanityError("ip_badvers", f"version {vihl >> 4}")
    hlen = (vihl & 0x0F) << 2
    if hlen < HEADER_LEN:
        raise IntegrityError("ip_badhlen", f"IHL {hlen >> 2}")
    if hlen > n:
        raise IntegrityError("ip_badhlen", f"header {hlen} > {n} bytes")
    total = (packet[2] << 8) | packet[3]
    if total < hlen:
        raise IntegrityError("ip_badlen", f"total length {total} < header {hlen}")
    if total > n:
        raise IntegrityError("ip_tooshort", f"total length {total} > {n} bytes")
    if ones_sum(packet[:hlen]) != 0xFFFF:
        raise IntegrityError("ip_badsum")
    return hlen, total


@dataclass(frozen=True, slots=True)
class Ipv4Header:
    """The meaning of an IPv4 header; addresses are 4 raw bytes."""

    tos: int
    total_length: int
    ident: int
    flags_frag: int
    ttl: int
    proto: int
    src: bytes
    dst: bytes
    options: bytes = b""

    @property
    def header_len(self) -> int:
        """Return the header length in bytes."""
        return HEADER_LEN + len(self.options)

    @property
    def dont_fragment(self) -> bool:
        """Return the DF flag."""
        return bool(self.flags_frag & FLAG_DF)

    @property
    def is_fragment(self) -> bool:
        """Return True for any fragment (MF set or a non-zero offset)."""
        return bool(self.flags_frag & (FLAG_MF | OFFSET_MASK))

    @classmethod
    def parse(cls, packet: bytes | bytearray | memoryview) -> Ipv4Header:
        """Validate and parse the header of ``packet``."""
        hlen, _ = check(packet)
        _, tos, total, ident, ff, ttl, proto, _, src, dst = HEADER.unpack_from(packet)
        return cls(tos, total, ident, ff, ttl, proto, src, dst, bytes(packet[HEADER_LEN:hlen]))

    def emit(self) -> bytes:
        """Return the header bytes with a correct checksum."""
        hlen = self.header_len
        if hlen % 4 or hlen > 60:
            raise ValueError(f"options must pad the header to a multiple of 4 up to 60, got {hlen}")
        raw = bytearray(
            HEADER.pack(
                0x40 | (hlen >> 2),
                self.tos,
                self.total_length,
                self.ident,
                self.flags_frag,
                self.ttl,
                self.proto,
                0,
                self.src,
                self.dst,
            )
            + self.options
        )
        _U16.pack_into(raw, CHECKSUM, checksum(raw))
        return bytes(raw)


def header(
    src: bytes,
    dst: bytes,
    proto: int,
    payload_len: int,
    *,
    ttl: int = 64,
    ident: int = 0,
    tos: int = 0,
    df: bool = False,
) -> bytes:
    """Return the 20-byte header, checksum filled, of a packet carrying ``payload_len`` bytes."""
    raw = bytearray(
        HEADER.pack(
            0x45, tos, HEADER_LEN + payload_len, ident, FLAG_DF if df else 0, ttl, proto, 0,
            src, dst,
        )
    )  # fmt: skip
    _U16.pack_into(raw, CHECKSUM, checksum(raw))
    return bytes(raw)


def fixed_sum(src: bytes, dst: bytes, proto: int, *, ttl: int = 64, tos: int = 0,
              df: bool = False) -> int:  # fmt: skip
    """Return the sum of the header words that stay the same between the packets of one
    flow (all but the length, the identification and the checksum), for
    :func:`header_from`."""
    flags = FLAG_DF if df else 0
    raw = HEADER.pack(0x45, tos, 0, 0, flags, ttl, proto, 0, src, dst)
    return int.from_bytes(raw, "big") % 0xFFFF


def header_from(
    fixed: int, src: bytes, dst: bytes, proto: int, payload_len: int, *, ttl: int, ident: int,
    tos: int = 0, df: bool = False,
) -> bytes:  # fmt: skip
    """:func:`header` given :func:`fixed_sum` of the same fields: the checksum is that sum
    plus the two words that change (RFC 1071), without summing the header again."""
    total = HEADER_LEN + payload_len
    check = ~((fixed + total + ident) % 0xFFFF or 0xFFFF) & 0xFFFF
    flags = FLAG_DF if df else 0
    return HEADER.pack(0x45, tos, total, ident, flags, ttl, proto, check, src, dst)


def build(
    src: bytes,
    dst: bytes,
    proto: int,
    payload: bytes | memoryview,
    *,
    ttl: int = 64,
    ident: int = 0,
    tos: int = 0,
    df: bool = False,
) -> bytes:
    """Return a complete IPv4 packet (20-byte header) carrying ``payload``."""
    ip = header(src, dst, proto, len(payload), ttl=ttl, ident=ident, tos=tos, df=df)
    return ip + payload  # one copy, whatever buffer the payload is
