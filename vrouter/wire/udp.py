"""UDP header (RFC 768)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.checksum import checksum, pseudo_header_sum
from vrouter.wire.errors import IntegrityError

HEADER = struct.Struct("!HHHH")
HEADER_LEN = 8
PROTO = 17


@dataclass(frozen=True, slots=True)
class UdpHeader:
    """A UDP header; ``length`` covers header and payload."""

    src_port: int
    dst_port: int
    length: int
    checksum: int

    @classmethod
    def parse(cls, data: bytes | memoryview) -> UdpHeader:
        """Parse the header; check the length field against ``data``."""
        if len(data) < HEADER_LEN:
            raise IntegrityError("udp_tooshort", f"{len(data)} bytes")
        src, dst, length, csum = HEADER.unpack_from(data)
        if length < HEADER_LEN or length > len(data):
            raise IntegrityError("udp_badlen", f"length {length}, {len(data)} bytes")
        return cls(src, dst, length, csum)


def verify(src: bytes, dst: bytes, datagram: bytes | memoryview) -> bool:
    """Return True if the checksum is absent (IPv4 only) or correct."""
    if len(src) == 4 and datagram[6] == 0 and datagram[7] == 0:
        return True
    return checksum(datagram, pseudo_header_sum(src, dst, PROTO, len(datagram))) == 0


def build(src: bytes, dst: bytes, src_port: int, dst_port: int, payload: bytes) -> bytes:
    """Return a UDP datagram with its checksum over the pseudo-header."""
    length = HEADER_LEN + len(payload)
    raw = bytearray(HEADER.pack(src_port, dst_port, length, 0) + payload)
    csum = checksum(raw, pseudo_header_sum(src, dst, PROTO, length)) or 0xFFFF
    struct.pack_into("!H", raw, 6, csum)
    return bytes(raw)
