"""IGMP messages: IGMPv3 (RFC 3376) and IGMPv2 (RFC 2236) queries and reports.

Queries are parsed from the IGMP message (the IPv4 payload); reports are
built whole, as IPv4 packets with TTL 1 and the Router Alert option
(RFC 2113) that IGMP requires.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.checksum import checksum
from vrouter.wire.errors import IntegrityError, SanityError

PROTO = 2
QUERY = 0x11
V1_REPORT = 0x12
V2_REPORT = 0x16
V2_LEAVE = 0x17
V3_REPORT = 0x22
ALL_SYSTEMS = bytes((224, 0, 0, 1))
ALL_ROUTERS = bytes((224, 0, 0, 2))
ALL_IGMPV3_ROUTERS = bytes((224, 0, 0, 22))

MODE_IS_EXCLUDE = 2
CHANGE_TO_INCLUDE = 3
CHANGE_TO_EXCLUDE = 4

_ROUTER_ALERT = bytes((0x94, 0x04, 0x00, 0x00))


@dataclass(frozen=True, slots=True)
class Query:
    """A Membership Query: general (group 0.0.0.0) or for one group."""

    max_delay: float
    """Maximum Response Time in seconds (10 s for an IGMPv1 query)."""
    group: bytes
    version: int
    """1, 2 (8 bytes, Max Resp Code 0 or not) or 3 (at least 12 bytes)."""

    @property
    def general(self) -> bool:
        """Return whether it asks about every group."""
        return self.group == bytes(4)

    @classmethod
    def parse(cls, data: bytes | memoryview) -> Query:
        """Parse a query (the whole IGMP message, checksum checked)."""
        if len(data) < 8:
            raise IntegrityError("igmp_tooshort", f"{len(data)} bytes")
        if checksum(data) != 0:
            raise IntegrityError("igmp_badsum")
        code = data[1]
        group = bytes(data[4:8])
        if group != bytes(4) and not 224 <= group[0] < 240:
            raise SanityError("igmp_badgroup", "query for a unicast address")
        if len(data) == 8:
            return cls(code / 10 if code else 10.0, group, 2 if code else 1)
        if len(data) < 12:
            raise IntegrityError("igmp_tooshort", "IGMPv3 query")
        sources = struct.unpack_from("!H", data, 10)[0]
        if len(data) < 12 + 4 * sources:
            raise IntegrityError("igmp_tooshort", "IGMPv3 query sources run past the message")
        # Max Resp Code (RFC 3376 4.1.1): exponential from 128.
        delay = code if code < 128 else ((code & 0x0F) | 0x10) << (((code >> 4) & 7) + 3)
        return cls(delay / 10, group, 3)


def _packet(src: bytes, dst: bytes, message: bytearray) -> bytes:
    struct.pack_into("!H", message, 2, checksum(message))
    total = 24 + len(message)
    header = bytearray(
        struct.pack("!BBHHHBBH4s4s", 0x46, 0xC0, total, 0, 0, 1, PROTO, 0, src, dst)
        + _ROUTER_ALERT
    )
    struct.pack_into("!H", header, 10, checksum(header))
    return bytes(header) + bytes(message)


def v3_report(src: bytes, records: list[tuple[int, bytes]]) -> bytes:
    """Return an IGMPv3 Membership Report packet to 224.0.0.22 with (type, group) records."""
    message = bytearray(struct.pack("!BBHHH", V3_REPORT, 0, 0, 0, len(records)))
    for kind, group in records:
        message += struct.pack("!BBH", kind, 0, 0) + group
    return _packet(src, ALL_IGMPV3_ROUTERS, message)


def v2_report(src: bytes, group: bytes) -> bytes:
    """Return an IGMPv2 Membership Report packet for ``group``, sent to the group."""
    return _packet(src, group, bytearray(struct.pack("!BBH4s", V2_REPORT, 0, 0, group)))


def reported(group: bytes) -> bool:
    """Return whether a host reports ``group``: every group but 224.0.0.1 (RFC 3376 5)."""
    return group != ALL_SYSTEMS
