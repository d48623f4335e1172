"""Wires: an epair whose two ends run in different worker processes.

Each end is one end of a Unix stream socket pair.  A frame travels as a
4-byte length (little-endian, of what follows), its virtio-net header
(:data:`~vrouter.link.offload.NO_HEADER` for an ordinary frame, so a GSO
super-frame crosses whole, as on an in-process epair) and the frame.

Frames sent during one pass of the event loop are gathered and written with
one ``send``; a read takes everything waiting (up to :data:`READ_SIZE`) and
delivers each whole frame in it as one batch.  A stream, unlike datagrams,
is not held to ``net.unix.max_dgram_qlen`` (10) frames in flight.  When the
peer does not keep up, at most :data:`OUT_LIMIT` bytes wait; beyond that
frames are dropped and counted (``queue_full``), as on a TAP.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable

from vrouter.link import offload
from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.wire")

LENGTH = struct.Struct("<I")
MAX_RECORD = offload.HEADER_LEN + 65536 + 64
"""Longest record (header and frame) a sender writes; longer means a corrupt stream."""
READ_SIZE = 1 << 20
"""Bytes taken from the socket per readable event."""
OUT_LIMIT = 8 << 20
"""Bytes waiting for the peer before frames are dropped."""
SOCKET_BUFFER = 4 << 20
"""Send and receive buffer asked of the kernel (capped by net.core.[rw]mem_max)."""


def append(out: bytearray, frame: bytes | bytearray) -> None:
    """Add ``frame`` to ``out`` as one record: its length, its virtio-net header, itself."""
    out += LENGTH.pack(offload.HEADER_LEN + len(frame))
    out += offload.header_bytes(frame)
    out += frame


def encode(frame: bytes | bytearray) -> bytes:
    """Return ``frame`` as one record (for one-off sends)."""
    out = bytearray()
    append(out, frame)
    return bytes(out)


def decode(
    data: bytes | bytearray | memoryview,
) -> tuple[list[bytes | bytearray], int, str | None]:
    """Return the whole frames at the start of ``data``, how many bytes they took,
    and why the stream cannot go on (None: it can; the rest waits for more bytes).

    A frame whose header asks for offload work comes back as an
    :class:`~vrouter.link.offload.OffloadBuffer`.
    """
    view = memoryview(data)
    size = len(view)
    frames: list[bytes | bytearray] = []
    offset = 0
    hlen = offload.HEADER_LEN
    while size - offset >= LENGTH.size:
        (length,) = LENGTH.unpack_from(view, offset)
        if not hlen < length <= MAX_RECORD:
            return frames, offset, f"record of {length} bytes"
        end = offset + LENGTH.size + length
        if end > size:
            break
        start = offset + LENGTH.size
        if view[start] & offload.F_NEEDS_CSUM or view[start + 1]:
            frames.append(
                offload.tag_raw(view[start + hlen : end], bytes(view[start : start + hlen]))
            )
        else:
            frames.append(bytes(view[start + hlen : end]))
        offset = end
    return frames, offset, None


class WireDevice:
    """One end of a wire, feeding one interface."""

    def __init__(
        self,
        ifnet: Ifnet,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        receive: Callable[[Ifnet, bytes | bytearray, float], None],
    ) -> None:
        self.ifnet = ifnet
        self.name = ifnet.name
        self.sock = sock
        self._loop = loop
        self._receive = receive
        self._out = bytearray()
        self._in = b""
        self._flushing = False
        self._writing = False
        self._closed = False
        sock.setblocking(False)
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        ifnet.transmit = self.write
        loop.add_reader(sock.fileno(), self._on_readable)

    def write(self, frame: bytes | bytearray) -> None:
        """Queue ``frame`` for the peer; it leaves with this loop pass's others."""
        out = self._out
        if len(out) >= OUT_LIMIT:
            self.ifnet.counters.tx_drops["queue_full"] += 1
            return
        append(out, frame)
        if not self._flushing and not self._writing:
            self._flushing = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        if self._closed or not self._out:
            return
        try:
            sent = self.sock.send(self._out)
        except BlockingIOError:
            sent = 0
        except OSError as err:
            self._lost(f"send failed: {err}")
            return
        del self._out[:sent]
        if self._out and not self._writing:
            self._writing = True
            self._loop.add_writer(self.sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        self._writing = False
        self._loop.remove_writer(self.sock.fileno())
        self._flush()

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError as err:
            self._lost(f"receive failed: {err}")
            return
        if not data:
            self._lost("peer closed")
            return
        if self._in:
            data = self._in + data
        frames, used, bad = decode(data)
        self._in = data[used:]
        now = self._loop.time()
        receive = self._receive
        ifnet = self.ifnet
        for frame in frames:
            receive(ifnet, frame, now)
        if bad is not None:
            ifnet.counters.rx_errors += 1
            self._lost(f"not a vrouter worker's stream: {bad}")

    def _lost(self, why: str) -> None:
        """The peer is gone (its worker stopped): the cable is unplugged."""
        log.warning(
            "vnet %s: %s: wire to the other worker lost: %s", self.ifnet.vnet.name, self.name, why
        )
        self.close()

    def close(self) -> None:
        """Stop reading and writing and close the socket: the cable is unplugged."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self.sock.fileno())
        if self._writing:
            self._loop.remove_writer(self.sock.fileno())
        self._out.clear()
        self.sock.close()
        self.ifnet.transmit = _unplugged


def _unplugged(frame: bytes | bytearray) -> None:
    raise OSError("wire to the other worker lost")
