"""ICMP for IPv4 (RFC 792): echo, destination unreachable, time exceeded.

Error messages quote as much of the offending datagram as fits in 576 bytes
(RFC 1812 section 4.3.2.3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.checksum import checksum
from vrouter.wire.errors import IntegrityError

HEADER = struct.Struct("!BBHI")
HEADER_LEN = 8

ECHO_REPLY = 0
DEST_UNREACH = 3
ECHO_REQUEST = 8
TIME_EXCEEDED = 11

# Destination unreachable codes (RFC 792, RFC 1812 section 5.2.7.1).
UNREACH_NET = 0
UNREACH_HOST = 1
UNREACH_PROTOCOL = 2
UNREACH_PORT = 3
UNREACH_NEEDFRAG = 4
UNREACH_FILTER_PROHIB = 13
# Time exceeded codes.
EXC_TTL = 0
EXC_REASS = 1

ERROR_TYPES = frozenset({DEST_UNREACH, 4, 5, TIME_EXCEEDED, 12})
MAX_ERROR_LEN = 576 - 20 - HEADER_LEN


@dataclass(frozen=True, slots=True)
class IcmpMessage:
    """An ICMP message: type, code, the 4-byte rest-of-header and the body."""

    type: int
    code: int
    rest: int
    body: bytes

    @classmethod
    def parse(cls, data: bytes | memoryview) -> IcmpMessage:
        """Parse and checksum-verify an ICMP message."""
        if len(data) < HEADER_LEN:
            raise IntegrityError("icmp_tooshort", f"{len(data)} bytes")
        if checksum(data) != 0:
            raise IntegrityError("icmp_badsum")
        type_, code, _, rest = HEADER.unpack_from(data)
        return cls(type_, code, rest, bytes(data[HEADER_LEN:]))

    def emit(self) -> bytes:
        """Return the message bytes with a correct checksum."""
        raw = bytearray(HEADER.pack(self.type, self.code, 0, self.rest) + self.body)
        struct.pack_into("!H", raw, 2, checksum(raw))
        return bytes(raw)

    @property
    def is_error(self) -> bool:
        """Return True for error messages (never answered with an error)."""
        return self.type in ERROR_TYPES


def echo_reply(request: IcmpMessage) -> bytes:
    """Return the reply to an echo request, same identifier, sequence and data."""
    return IcmpMessage(ECHO_REPLY, 0, request.rest, request.body).emit()


def error(type_: int, code: int, offending: bytes | memoryview, rest: int = 0) -> bytes:
    """Return an error message quoting ``offending`` (an IP datagram)."""
    return IcmpMessage(type_, code, rest, bytes(offending[:MAX_ERROR_LEN])).emit()
