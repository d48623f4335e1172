"""IEEE 802.1Q VLAN tags: four bytes between the source MAC and the EtherType.

A tagged frame is ``dst(6) src(6) 0x8100 TCI(2) EtherType(2) payload``; the
TCI holds the priority (PCP, 3 bits), the drop-eligible bit (DEI) and the
VLAN ID (12 bits).  VID 0 means "priority-tagged, no VLAN"; 4095 is
reserved.  ``strip`` and ``insert`` copy: a frame is never edited in place
here (the caller may share it with a capture or a flood).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.errors import IntegrityError, SanityError

TPID = 0x8100
"""The EtherType that announces a C-tag."""
TAG_LEN = 4
TAGGED_HEADER_LEN = 18
"""Destination, source, TPID, TCI and the inner EtherType."""
VID_MASK = 0x0FFF
VID_MIN = 1
VID_MAX = 4094
TCI = struct.Struct("!H")
_TAG_AT = 12


@dataclass(frozen=True, slots=True)
class VlanTag:
    """The meaning of one tag (the TPID is always :data:`TPID` here)."""

    vid: int
    pcp: int = 0
    dei: bool = False

    @classmethod
    def from_tci(cls, tci: int) -> VlanTag:
        """Return the tag a TCI stands for."""
        return cls(tci & VID_MASK, tci >> 13, bool(tci & 0x1000))

    @property
    def tci(self) -> int:
        """Return the 16-bit TCI."""
        return (self.pcp << 13) | (0x1000 if self.dei else 0) | self.vid

    @classmethod
    def parse(cls, frame: bytes | bytearray | memoryview) -> VlanTag:
        """Parse the tag of a tagged frame (IntegrityError: too short; SanityError: VID 4095)."""
        if len(frame) < TAGGED_HEADER_LEN:
            raise IntegrityError("vlan_truncated", f"{len(frame)} bytes")
        tag = cls.from_tci(TCI.unpack_from(frame, _TAG_AT + 2)[0])
        if tag.vid == 4095:
            raise SanityError("vlan_reserved_vid", "VID 4095")
        return tag


def is_tagged(frame: bytes | bytearray | memoryview) -> bool:
    """Return True if the frame's EtherType is the 802.1Q TPID."""
    return frame[12] == 0x81 and frame[13] == 0x00


def tci_of(frame: bytes | bytearray | memoryview) -> int:
    """Return the TCI of a tagged frame whose length was checked."""
    return (frame[14] << 8) | frame[15]


def strip(frame: bytes | bytearray | memoryview) -> bytearray:
    """Return a copy of a tagged frame (length checked) without its tag."""
    out = bytearray(frame[:_TAG_AT])
    out += frame[_TAG_AT + TAG_LEN :]
    return out


def insert(frame: bytes | bytearray | memoryview, tci: int) -> bytearray:
    """Return a copy of ``frame`` with a tag carrying ``tci`` after the source MAC."""
    out = bytearray(frame[:_TAG_AT])
    out += b"\x81\x00"
    out += TCI.pack(tci)
    out += frame[_TAG_AT:]
    return out
