"""A connection's send and receive buffers (4.4BSD's ``so_snd`` and ``so_rcv``).

:class:`SendBuffer` holds what the program queued and the peer has not yet
acknowledged, unsent bytes included, and knows the sequence number of its
first byte: the output code finds a segment's bytes by sequence number, and
an ACK drops bytes from the front.  :class:`ReceiveBuffer` holds in-order
data the program has not read yet; out-of-order data waits in the
:class:`~vrouter.transport.tcp.sack.ReassemblyQueue` instead.

The send buffer is a queue of immutable chunks, the buffers the program's
data came in (a ``recv`` from its socket): queuing copies nothing, and a
segment is a list of views of them, which stay valid however the queue
changes until the segment is copied into its frame (once, by the IP layer).
Small writes are merged into the last chunk, so a program writing a byte at
a time does not make a chunk per byte.  The receive buffer is a byte queue
read from the front: a ``head`` offset moves instead of the bytes, and the
front is cut off only when the queue empties or the consumed part passes
64 KiB and half the queue, so taking a segment's worth never moves the
megabyte behind it.  Neither enforces a size: the connection decides what
fits (``sndbuf`` and the advertised window).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from vrouter.transport.tcp import seq

COMPACT_AFTER = 65536
"""Consumed bytes at the front that may be cut off (when they are also half the queue)."""
MERGE_BELOW = 16384
"""A write this small is merged into the last chunk while that one is this small too."""

Piece = bytes | memoryview
"""An immutable buffer: ``bytes``, or a view of one."""


def _frozen(data: bytes | bytearray | memoryview) -> Piece:
    """Return ``data`` itself if nobody can change it later, else a copy."""
    if data.__class__ is bytes:
        return data
    if isinstance(data, memoryview) and data.obj.__class__ is bytes and data.c_contiguous:
        return data if data.format == "B" else data.cast("B")
    return bytes(data)


class SendBuffer:
    """Bytes queued for sending, from the first unacknowledged one; ``len()`` is their count."""

    __slots__ = ("chunks", "head", "seq", "size")

    def __init__(self, seq_no: int) -> None:
        self.chunks: deque[Piece] = deque()
        """The queued buffers, oldest first; ``chunks[0]`` holds acknowledged bytes
        before ``head``."""
        self.head = 0
        """Offset in ``chunks[0]`` of the first byte held."""
        self.seq = seq_no
        """Sequence number of the first byte held."""
        self.size = 0
        """Bytes held."""

    def __len__(self) -> int:
        return self.size

    def end(self) -> int:
        """Return the sequence number after the last byte queued (where a FIN goes)."""
        return seq.add(self.seq, self.size)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` behind what is held (kept as it is when it is immutable)."""
        n = len(data)
        if not n:
            return
        chunks = self.chunks
        if n < MERGE_BELOW and chunks and len(chunks[-1]) < MERGE_BELOW:
            chunks[-1] = b"".join((chunks[-1], data))
        else:
            chunks.append(_frozen(data))
        self.size += n

    def pieces(self, offset: int, length: int) -> list[Piece]:
        """Return views of ``length`` bytes from ``offset`` (bytes after the first held)."""
        out: list[Piece] = []
        at = self.head + offset
        for chunk in self.chunks:
            size = len(chunk)
            if at >= size:
                at -= size
                continue
            take = min(size - at, length)
            out.append(chunk if take == size else memoryview(chunk)[at : at + take])
            length -= take
            if not length:
                break
            at = 0
        return out

    def acknowledge(self, ack: int) -> None:
        """Drop the bytes before sequence number ``ack`` (those the peer acknowledged)."""
        acked = min(max(seq.diff(ack, self.seq), 0), self.size)
        if not acked:
            return
        self.seq = seq.add(self.seq, acked)
        self.size -= acked
        chunks = self.chunks
        at = self.head + acked
        while chunks and at >= len(chunks[0]):
            at -= len(chunks.popleft())
        self.head = at if chunks else 0

    def clear(self) -> None:
        """Forget every byte held (the connection closed); ``seq`` stays where it was."""
        self.chunks.clear()
        self.head = 0
        self.size = 0


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
        self._consume(n)
        return data

    def read_with(self, take: Callable[[memoryview], int], max_bytes: int) -> int:
        """Offer up to ``max_bytes`` from the front to ``take``, which returns how many
        it used (a socket's ``send``); remove those and return their count.

        ``take`` sees a view of the buffer itself (no copy), released before this
        returns, also when ``take`` raises.
        """
        start = self.head
        n = min(max_bytes, len(self.data) - start)
        if n <= 0:
            return 0
        with memoryview(self.data) as whole, whole[start : start + n] as view:
            used = take(view)
        self._consume(used)
        return used

    def _consume(self, n: int) -> None:
        """Drop ``n`` bytes from the front; cut the consumed part off when it is time."""
        self.head += n
        if self.head == len(self.data):
            self.data.clear()
            self.head = 0
        elif self.head > COMPACT_AFTER and self.head * 2 > len(self.data):
            del self.data[: self.head]
            self.head = 0
