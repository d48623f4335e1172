"""ICMPv6 (RFC 4443): messages, checksum over the pseudo-header, errors.

Error messages quote as much of the offending packet as fits in the IPv6
minimum MTU of 1280 bytes (RFC 4443 section 2.4 (c)).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.checksum import checksum, pseudo_header_sum
from vrouter.wire.errors import IntegrityError
from vrouter.wire.ipv6 import HEADER_LEN as IPV6_HEADER_LEN
from vrouter.wire.ipv6 import NH_ICMPV6

HEADER = struct.Struct("!BBHI")
_CHECKSUM = struct.Struct("!H")
HEADER_LEN = 8

DEST_UNREACH = 1
PACKET_TOO_BIG = 2
TIME_EXCEEDED = 3
PARAM_PROBLEM = 4
ECHO_REQUEST = 128
ECHO_REPLY = 129
ROUTER_SOLICIT = 133
ROUTER_ADVERT = 134
NEIGHBOR_SOLICIT = 135
NEIGHBOR_ADVERT = 136
REDIRECT = 137

# Destination unreachable codes.
UNREACH_NOROUTE = 0
UNREACH_ADMIN = 1
UNREACH_BEYOND_SCOPE = 2
UNREACH_ADDR = 3
UNREACH_PORT = 4
UNREACH_REJECT = 6
# Time exceeded codes.
EXC_HOPLIMIT = 0
EXC_REASS = 1
# Parameter problem codes.
PARAM_HEADER = 0
PARAM_NEXTHEADER = 1
PARAM_OPTION = 2

MIN_MTU = 1280
MAX_QUOTE = MIN_MTU - IPV6_HEADER_LEN - HEADER_LEN


def is_error(type_: int) -> bool:
    """Return True for error messages (types below 128)."""
    return type_ < 128


@dataclass(frozen=True, slots=True)
class Icmp6Message:
    """An ICMPv6 message: type, code, the 4-byte rest-of-header and the body."""

    type: int
    code: int
    rest: int
    body: bytes

    @classmethod
    def parse(cls, src: bytes, dst: bytes, data: bytes | memoryview) -> Icmp6Message:
        """Parse a message, verifying its checksum against the pseudo-header."""
        if len(data) < HEADER_LEN:
            raise IntegrityError("icmp6_tooshort", f"{len(data)} bytes")
        if checksum(data, pseudo_header_sum(src, dst, NH_ICMPV6, len(data))) != 0:
            raise IntegrityError("icmp6_badsum")
        type_, code, _, rest = HEADER.unpack_from(data)
        return cls(type_, code, rest, bytes(data[HEADER_LEN:]))

    @property
    def data(self) -> bytes:
        """Return everything after type/code/checksum (what ND parsers take)."""
        return self.rest.to_bytes(4, "big") + self.body

    def emit(self, src: bytes, dst: bytes) -> bytes:
        """Return the message bytes with the checksum for ``src`` -> ``dst``."""
        raw = bytearray(HEADER.pack(self.type, self.code, 0, self.rest) + self.body)
        csum = checksum(raw, pseudo_header_sum(src, dst, NH_ICMPV6, len(raw)))
        _CHECKSUM.pack_into(raw, 2, csum)
        return bytes(raw)


def build(type_: int, code: int, data: bytes, src: bytes, dst: bytes) -> bytes:
    """Return a message whose bytes after type/code/checksum are ``data``.

    ND messages (``vrouter.wire.ndp``) produce ``data`` with ``emit_body``.
    """
    raw = bytearray(HEADER.pack(type_, code, 0, 0)[:4] + data)
    _CHECKSUM.pack_into(raw, 2, checksum(raw, pseudo_header_sum(src, dst, NH_ICMPV6, len(raw))))
    return bytes(raw)


def echo_reply(request: Icmp6Message, src: bytes, dst: bytes) -> bytes:
    """Return the reply to an echo request (same identifier, sequence and data)."""
    return Icmp6Message(ECHO_REPLY, 0, request.rest, request.body).emit(src, dst)


def error(
    type_: int, code: int, offending: bytes | memoryview, src: bytes, dst: bytes, rest: int = 0
) -> bytes:
    """Return an error message quoting ``offending`` (an IPv6 packet)."""
    return Icmp6Message(type_, code, rest, bytes(offending[:MAX_QUOTE])).emit(src, dst)
