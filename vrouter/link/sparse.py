"""Sparse flows first: a queue that lets small frames pass bulk ones.

A TCP sender hands a TAP super-frames of up to 64 KiB, and each costs the
daemon tens of microseconds to forward; a ping or an ACK of another flow
that arrives behind a dozen of them waits for all of them.  Like fq_codel's
new flows, the TAP reader (:mod:`vrouter.io.tap`) and the epair
(:mod:`vrouter.link.epair`) hold bulk frames in a :class:`BulkQueue` and let
the small frames of other flows go first.  A flow's frames stay in order:
once one of its frames waits as bulk, its small frames wait behind it
(:func:`flow_key` tells flows apart).  The queue holds only while bulk is
waiting, so a flood of small frames costs one length test each.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

BULK_LEN = 2048
"""An Ethernet frame longer than this (a super-frame) is bulk."""

_TYPE = 12
_IP = 14


def flow_key(frame: bytes | bytearray, at: int = 0) -> bytes:
    """Return what tells the flow of the Ethernet frame at offset ``at`` of ``frame``
    apart: protocol, addresses and ports of IPv4 and IPv6 (the first 4 bytes after
    the IP header, read as they are), else its MAC addresses and EtherType."""
    kind = frame[at + _TYPE : at + _IP]
    ip = at + _IP
    if kind == b"\x08\x00":
        ports = ip + (frame[ip] & 0x0F) * 4
        return bytes(frame[ip + 9 : ip + 10] + frame[ip + 12 : ip + 20] + frame[ports : ports + 4])
    if kind == b"\x86\xdd":
        return bytes(frame[ip + 6 : ip + 7] + frame[ip + 8 : ip + 44])
    return bytes(frame[at:ip])


class BulkQueue(Generic[T]):
    """Bulk frames (any item the owner keeps per frame), oldest first, with the count
    held of each flow."""

    __slots__ = ("items", "_flows")

    def __init__(self) -> None:
        self.items: deque[tuple[bytes, T]] = deque()
        """(flow key, item), oldest first: read it, change it through the methods.  A
        per-frame test of whether anything is held reads this deque's truth (done in
        C) rather than ``len()`` of the queue (a call of Python code)."""
        self._flows: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def holds(self, key: bytes) -> bool:
        """Return True if a frame of flow ``key`` waits (its next ones must too)."""
        return key in self._flows

    def push(self, key: bytes, item: T) -> None:
        """Hold ``item``, a frame of flow ``key``."""
        flows = self._flows
        flows[key] = flows.get(key, 0) + 1
        self.items.append((key, item))

    def first(self) -> T:
        """Return the oldest item, left held (IndexError if there is none)."""
        return self.items[0][1]

    def pop(self) -> T:
        """Return the oldest item (IndexError if there is none)."""
        key, item = self.items.popleft()
        flows = self._flows
        left = flows[key] - 1
        if left:
            flows[key] = left
        else:
            del flows[key]
        return item

    def clear(self) -> None:
        """Drop everything held."""
        self.items.clear()
        self._flows.clear()
