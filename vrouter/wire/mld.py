"""Multicast Listener Discovery messages: MLDv2 (RFC 3810) and MLDv1 (RFC 2710).

Queries are parsed from the bytes after the ICMPv6 type/code/checksum;
reports are built whole, as IPv6 packets with the Hop-by-Hop Router Alert
option (RFC 2711) and hop limit 1 that MLD requires.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire import icmp6
from vrouter.wire.errors import IntegrityError, SanityError
from vrouter.wire.ipv6 import NH_HOPOPTS, NH_ICMPV6, build

QUERY = 130
V1_REPORT = 131
V1_DONE = 132
V2_REPORT = 143
ALL_MLDV2_ROUTERS = bytes.fromhex("ff020000000000000000000000000016")
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")

MODE_IS_INCLUDE = 1
MODE_IS_EXCLUDE = 2
CHANGE_TO_INCLUDE = 3
CHANGE_TO_EXCLUDE = 4

_HOP_BY_HOP = bytes([NH_ICMPV6, 0, 5, 2, 0, 0, 1, 0])
"""Hop-by-Hop: Router Alert (value 0, MLD) and a PadN of 2 bytes."""
_COUNT = struct.Struct("!HH")
"""A report's reserved field and record count (also an MLDv1 report's reserved fields)."""
_RECORD = struct.Struct("!BBH")
"""A report record's type, aux data length and source count."""


@dataclass(frozen=True, slots=True)
class Query:
    """A Multicast Listener Query: general (group ``::``) or for one group."""

    max_delay: float
    """Maximum Response Delay in seconds."""
    group: bytes
    version: int
    """1 for an MLDv1 query (24 bytes), 2 for MLDv2 (at least 28)."""

    @property
    def general(self) -> bool:
        """Return whether it asks about every group."""
        return self.group == bytes(16)

    @classmethod
    def parse(cls, data: bytes) -> Query:
        """Parse a query body (after type, code and checksum)."""
        if len(data) < 20:
            raise IntegrityError("mld_tooshort", f"query of {len(data) + 4} bytes")
        code = struct.unpack_from("!H", data)[0]
        group = bytes(data[4:20])
        if group != bytes(16) and group[0] != 0xFF:
            raise SanityError("mld_badgroup", "query for a unicast address")
        if len(data) == 20:
            return cls(code / 1000, group, 1)
        if len(data) < 24:
            raise IntegrityError("mld_tooshort", "MLDv2 query")
        sources = struct.unpack_from("!H", data, 22)[0]
        if len(data) < 24 + 16 * sources:
            raise IntegrityError("mld_tooshort", "MLDv2 query sources run past the message")
        # Maximum Response Code (RFC 3810 5.1.3): exponential above 32768.
        delay = code if code < 32768 else ((code & 0x0FFF) | 0x1000) << (((code >> 12) & 7) + 3)
        return cls(delay / 1000, group, 2)


def _packet(src: bytes, dst: bytes, type_: int, data: bytes) -> bytes:
    message = icmp6.build(type_, 0, data, src, dst)
    return build(src, dst, NH_HOPOPTS, _HOP_BY_HOP + message, hop_limit=1)


def v2_report(src: bytes, records: list[tuple[int, bytes]]) -> bytes:
    """Return an MLDv2 Report packet to ff02::16 with (record type, group) records."""
    body = _COUNT.pack(0, len(records)) + b"".join(
        _RECORD.pack(kind, 0, 0) + group for kind, group in records
    )
    return _packet(src, ALL_MLDV2_ROUTERS, V2_REPORT, body)


def v1_report(src: bytes, group: bytes) -> bytes:
    """Return an MLDv1 Report packet for ``group``, sent to the group itself."""
    return _packet(src, group, V1_REPORT, _COUNT.pack(0, 0) + group)


def reported(group: bytes) -> bool:
    """Return whether a host reports ``group``: not ff02::1, not scopes 0 and 1 (RFC 3810 6)."""
    return group != ALL_NODES and group[1] & 0x0F > 1
