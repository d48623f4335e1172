"""Sparse flows first: a queue that lets small frames pass bulk ones.

A TCP sender hands a TAP super-frames of up to 64 KiB, and each costs the
daemon tens of microseconds to forward; a ping or an ACK of another flow
that arrives behind a dozen of them waits for all of them.  Like fq_codel's
new flows, the TAP reader (:mod:`vrouter.io.tap`) and the epair
(:mod:`vrouter.link.epair`) hold bulk frames in a :class:`BulkQueue` and let
the small frames of other flows go first.  A flow's frames stay in order:
once one of its frames waits as bulk, its small frames wait behind it
(:func:`flow_key` tells flows apart).  The queue holds only while bulk is
waiting, so a flood of small frames costs one length test each.  An epair's
turn that delivered small frames stops before its bulk, and the driver reads
the quiet TAPs then (:meth:`vrouter.io.driver.Driver._read_answers`): the
answer to a small frame (a ping's reply) is often already waiting there.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

BULK_LEN = 2048
"""An Ethernet frame longer than this (a super-frame) is bulk."""

_IP = 14
_KEY4 = struct.Struct("!B2x8s4s").unpack_from
"""Protocol, addresses and ports of an IPv4 header without options, read from its byte 9."""
_KEY6 = struct.Struct("!Bx32s4s").unpack_from
"""Next header, addresses and ports of an IPv6 header, read from its byte 6."""


def flow_key(frame: bytes | bytearray, at: int = 0) -> Hashable:
    """Return what tells the flow of the Ethernet frame at offset ``at`` of ``frame``
    apart: protocol, addresses and ports of IPv4 and IPv6 (the first 4 bytes after
    the IP header, read as they are), else its MAC addresses and EtherType.

    An IP flow's key is the tuple (protocol, addresses, ports), read with one
    unpack where the frame holds them all (a key is made for every bulk frame
    and every frame that meets bulk, twice per vnet crossed)."""
    ip = at + _IP
    end = len(frame)
    if frame[ip - 2 : ip] == b"\x08\x00" and end > ip:
        ports = ip + (frame[ip] & 0x0F) * 4
        if ports == ip + 20 and end >= ip + 24:
            return _KEY4(frame, ip + 9)
        proto = frame[ip + 9] if end > ip + 9 else -1
        return proto, bytes(frame[ip + 12 : ip + 20]), bytes(frame[ports : ports + 4])
    if frame[ip - 2 : ip] == b"\x86\xdd":
        if end >= ip + 44:
            return _KEY6(frame, ip + 6)
        proto = frame[ip + 6] if end > ip + 6 else -1
        return proto, bytes(frame[ip + 8 : ip + 40]), bytes(frame[ip + 40 : ip + 44])
    return bytes(frame[at:ip])


class BulkQueue(Generic[T]):
    """Bulk frames (any item the owner keeps per frame), oldest first, with the count
    held of each flow."""

    __slots__ = ("items", "_flows")

    def __init__(self) -> None:
        self.items: deque[tuple[Hashable, T]] = deque()
        """(flow key, item), oldest first: read it, change it through the methods.  A
        per-frame test of whether anything is held reads this deque's truth (done in
        C) rather than ``len()`` of the queue (a call of Python code)."""
        self._flows: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def holds(self, key: Hashable) -> bool:
        """Return True if a frame of flow ``key`` waits (its next ones must too)."""
        return key in self._flows

    def push(self, key: Hashable, item: T) -> None:
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
