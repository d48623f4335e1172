"""A connection's send and receive buffers (4.4BSD's ``so_snd`` and ``so_rcv``).

:class:`SendBuffer` holds what the program queued and the peer has not yet
acknowledged, unsent bytes included, and knows the sequence number of its
first byte: the output code finds a segment's bytes by sequence number, and
an ACK drops bytes from the front.  :class:`ReceiveBuffer` holds in-order
data the program has not read yet; out-of-order data waits in the
:class:`~vrouter.transport.tcp.sack.ReassemblyQueue` instead.

Both are byte queues read from the front: a ``head`` offset moves instead of
the bytes, and the front is cut off only when the queue empties or the
consumed part passes 64 KiB and half the queue, so taking a segment's worth
never moves the megabyte behind it.  Neither enforces a size: the connection
decides what fits (``sndbuf`` and the advertised window).
"""

from __future__ import annotations

from vrouter.transport.tcp import seq

COMPACT_AFTER = 65536
"""Consumed bytes at the front that may be cut off (when they are also half the queue)."""


class SendBuffer:
    """Bytes queued for sending, from the first unacknowledged one; ``len()`` is their count."""

    __slots__ = ("data", "head", "seq")

    def __init__(self, seq_no: int) -> None:
        self.data = bytearray()
        """The bytes; those before ``head`` are acknowledged and wait to be cut off."""
        self.head = 0
        """Offset in ``data`` of the first byte held."""
        self.seq = seq_no
        """Sequence number of the first byte held."""

    def __len__(self) -> int:
        return len(self.data) - self.head

    def end(self) -> int:
        """Return the sequence number after the last byte queued (where a FIN goes)."""
        return seq.add(self.seq, len(self.data) - self.head)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` behind what is held."""
        self.data += data

    def acknowledge(self, ack: int) -> None:
        """Drop the bytes before sequence number ``ack`` (those the peer acknowledged)."""
        acked = min(max(seq.diff(ack, self.seq), 0), len(self.data) - self.head)
        if acked:
            self.head += acked
            self.seq = seq.add(self.seq, acked)
            if self.head == len(self.data):
                self.data.clear()
                self.head = 0
            elif self.head > COMPACT_AFTER and self.head * 2 > len(self.data):
                del self.data[: self.head]
                self.head = 0

    def clear(self) -> None:
        """Forget every byte held (the connection closed); ``seq`` stays where it was."""
        self.data = bytearray()
        self.head = 0


class ReceiveBuffer:
    """In-order received bytes the program has not read; ``len()`` is their count."""

    __slots__ = ("data", "head")

    def __init__(self) -> None:
        self.data = bytearray()
        """The bytes; those before ``head`` were read and wait to be cut off."""
        self.head = 0
        """Offset in ``data`` of the first unread byte."""

    def __len__(self) -> int:
        return len(self.data) - self.head

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Add in-order ``data`` behind what is held."""
        self.data += data

    def read(self, max_bytes: int) -> bytes:
        """Remove and return up to ``max_bytes`` from the front (b"" when none)."""
        start = self.head
        n = min(max_bytes, len(self.data) - start)
        if n <= 0:
            return b""
        with memoryview(self.data) as view:
            data = bytes(view[start : start + n])  # one copy (a bytearray slice is another)
        self.head = start + n
        if self.head == len(self.data):
            self.data.clear()
            self.head = 0
        elif self.head > COMPACT_AFTER and self.head * 2 > len(self.data):
            del self.data[: self.head]
            self.head = 0
        return data
