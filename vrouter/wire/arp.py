"""ARP for IPv4 over Ethernet (RFC 826).

Only the Ethernet/IPv4 combination (htype 1, ptype 0x0800, hlen 6, plen 4)
is accepted; anything else is a SanityError so it is counted, not guessed at.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.errors import IntegrityError, SanityError

PACKET = struct.Struct("!HHBBH6s4s6s4s")
PACKET_LEN = 28

HTYPE_ETHERNET = 1
PTYPE_IPV4 = 0x0800
OP_REQUEST = 1
OP_REPLY = 2


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """An Ethernet/IPv4 ARP packet; addresses are raw bytes."""

    op: int
    sha: bytes
    spa: bytes
    tha: bytes
    tpa: bytes

    @classmethod
    def parse(cls, data: bytes | memoryview) -> ArpPacket:
        """Parse ``data`` (the Ethernet payload)."""
        if len(data) < PACKET_LEN:
            raise IntegrityError("arp_truncated", f"{len(data)} bytes")
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = PACKET.unpack_from(data)
        if htype != HTYPE_ETHERNET or ptype != PTYPE_IPV4 or hlen != 6 or plen != 4:
            raise SanityError("arp_bad_format", f"htype {htype} ptype {ptype:#06x}")
        if op not in (OP_REQUEST, OP_REPLY):
            raise SanityError("arp_bad_op", f"op {op}")
        return cls(op, sha, spa, tha, tpa)

    def emit(self) -> bytes:
        """Return the 28 packet bytes."""
        return PACKET.pack(
            HTYPE_ETHERNET, PTYPE_IPV4, 6, 4, self.op, self.sha, self.spa, self.tha, self.tpa
        )

    @property
    def is_gratuitous(self) -> bool:
        """True for an announcement (sender and target protocol address equal)."""
        return self.spa == self.tpa
