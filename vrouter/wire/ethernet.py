"""Ethernet II framing (IEEE 802.3 with an EtherType), MAC address helpers.

``parse`` checks the length once; the hot path reads the EtherType at the
fixed offset ``ETHERTYPE`` with ``HEADER.unpack_from`` instead.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from vrouter.wire.errors import IntegrityError

HEADER = struct.Struct("!6s6sH")
HEADER_LEN = 14
DST = slice(0, 6)
SRC = slice(6, 12)
ETHERTYPE = 12

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_IPV6 = 0x86DD

_MAC_TEXT = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")

BROADCAST = b"\xff" * 6
ZERO = b"\x00" * 6


def is_multicast(mac: bytes) -> bool:
    """Return True for group (multicast or broadcast) addresses."""
    return bool(mac[0] & 1)


def mac_to_str(mac: bytes) -> str:
    """Return ``mac`` as ``aa:bb:cc:dd:ee:ff``."""
    return mac.hex(":")


def mac_from_str(text: str) -> bytes:
    """Parse ``aa:bb:cc:dd:ee:ff``; raise ValueError otherwise."""
    if not _MAC_TEXT.fullmatch(text):
        raise ValueError(f"{text!r} is not a MAC address (want aa:bb:cc:dd:ee:ff)")
    return bytes.fromhex(text.replace(":", ""))


@dataclass(frozen=True, slots=True)
class EthernetHeader:
    """An Ethernet II header."""

    dst: bytes
    src: bytes
    ethertype: int

    @classmethod
    def parse(cls, frame: bytes | memoryview) -> EthernetHeader:
        """Parse the header of ``frame``; raise IntegrityError if truncated."""
        if len(frame) < HEADER_LEN:
            raise IntegrityError("eth_truncated", f"{len(frame)} bytes")
        dst, src, ethertype = HEADER.unpack_from(frame)
        return cls(dst, src, ethertype)

    def emit(self) -> bytes:
        """Return the 14 header bytes."""
        return HEADER.pack(self.dst, self.src, self.ethertype)


def build(dst: bytes, src: bytes, ethertype: int, payload: bytes | memoryview) -> bytes:
    """Return a frame carrying ``payload`` (no padding: the TAP does not need it)."""
    return HEADER.pack(dst, src, ethertype) + bytes(payload)
