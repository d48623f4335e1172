"""The socket service's message format: one datagram per message, each way.

Every message on a socket's SOCK_SEQPACKET descriptor starts with a 44-byte
header (network byte order)::

    kind u8 | family u8 | ttl u8 | flags u8 | sport u16 | dport u16 |
    ifindex u32 | src 16 bytes | dst 16 bytes | payload...

``kind``: ``DATA`` (1) carries a datagram; ``CTRL`` (2) carries a JSON
request from the client (``bind``, ``connect``, ``setsockopt`` …), answered
by ``REPLY`` (3, JSON ``{"ok": …}``); ``ERROR`` (4) reports an asynchronous
error (JSON, e.g. ``ECONNREFUSED`` after an ICMP port unreachable on a
connected socket).  IPv4 addresses sit in the first 4 of the 16 bytes.

Daemon → client DATA: ``src``/``sport`` the sender, ``dst``/``dport`` the
address the datagram was sent to (IP_PKTINFO), ``ifindex`` the arrival
interface, ``ttl`` the received TTL or hop limit.  Client → daemon DATA:
``dst``/``dport`` the destination (if ``flags & TO``; else the connected
peer), ``src`` a source address to use (if ``flags & FROM``), ``ifindex``
an interface to send on (0: by route), ``ttl`` (0: the socket's default).
Raw sockets carry the IP payload, not the IP header; route sockets carry a
JSON route message as the payload and use no address fields.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

HEADER = struct.Struct("!BBBBHHI16s16s")
HEADER_LEN = HEADER.size  # 44

DATA = 1
CTRL = 2
REPLY = 3
ERROR = 4

TO = 0x01
"""The client gives a destination (sendto rather than send)."""
FROM = 0x02
"""The client gives a source address."""

MAX_MESSAGE = 65536 + HEADER_LEN


class MessageError(ValueError):
    """A message that cannot be understood."""


def _pad(address: bytes) -> bytes:
    return address.ljust(16, b"\0")


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the socket service."""

    kind: int
    family: int = 0
    ttl: int = 0
    flags: int = 0
    sport: int = 0
    dport: int = 0
    ifindex: int = 0
    src: bytes = b""
    dst: bytes = b""
    payload: bytes = b""

    def emit(self) -> bytes:
        """Return the message bytes."""
        return (
            HEADER.pack(
                self.kind,
                self.family,
                self.ttl,
                self.flags,
                self.sport,
                self.dport,
                self.ifindex,
                _pad(self.src),
                _pad(self.dst),
            )
            + self.payload
        )

    @classmethod
    def parse(cls, data: bytes) -> Message:
        """Parse one received message."""
        if len(data) < HEADER_LEN:
            raise MessageError(f"message of {len(data)} bytes is shorter than the header")
        kind, family, ttl, flags, sport, dport, ifindex, src, dst = HEADER.unpack_from(data)
        if kind not in (DATA, CTRL, REPLY, ERROR):
            raise MessageError(f"unknown message kind {kind}")
        width = 4 if family == 4 else 16
        return cls(
            kind,
            family,
            ttl,
            flags,
            sport,
            dport,
            ifindex,
            src[:width],
            dst[:width],
            data[HEADER_LEN:],
        )

    def json(self) -> Any:
        """Return the JSON payload of a CTRL/REPLY/ERROR message."""
        try:
            return json.loads(self.payload)
        except ValueError as err:
            raise MessageError(f"payload is not JSON: {err}") from None


def control(kind: int, body: object) -> bytes:
    """Return a CTRL/REPLY/ERROR message carrying ``body`` as JSON."""
    return Message(kind, payload=json.dumps(body, separators=(",", ":")).encode()).emit()
