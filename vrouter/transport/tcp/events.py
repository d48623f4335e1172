"""What TCP hands back to its caller: segments to send and events for the socket layer.

Every entry point of a connection (and of the per-vnet table) returns a list
of outputs, oldest first.  A :class:`Transmit` is a finished segment (header,
options, checksum over the pseudo-header, and the payload as views) for the IP
layer to wrap and route; the other outputs are events that tell the socket layer to wake
the program (h11's and aioquic's events, frozen dataclasses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from vrouter.transport.tcp.conn import Connection
    from vrouter.transport.tcp.table import Listener


class Transmit(NamedTuple):
    """One segment to send: IP source, destination, the TCP header and the payload.

    A tuple, not a frozen dataclass: one is made per segment, and a tuple is
    immutable too and several times cheaper to build.
    """

    src: bytes
    dst: bytes
    sport: int
    dport: int
    header: bytes
    """TCP header and options, checksum filled in over the header and the payload
    (only the pseudo-header sum when ``gso_size`` is set: the device finishes it)."""
    payload: Sequence[bytes | memoryview] = ()
    """The payload, in pieces (views of the send buffer, never copied until the IP
    layer puts them in a frame)."""
    gso_size: int = 0
    """0: one segment.  Else a super-segment (TSO): the payload is to be cut into
    segments of ``gso_size`` bytes, each with its own headers and checksum, by the
    interface (a TAP with offloads hands it to the host whole) or by software."""

    @property
    def family(self) -> int:
        """Return 4 or 6, from the address length."""
        return 4 if len(self.dst) == 4 else 6

    @property
    def length(self) -> int:
        """Return the segment's length: header and payload."""
        return len(self.header) + sum(len(piece) for piece in self.payload)

    @property
    def data(self) -> bytes:
        """Return the whole segment as one buffer (a copy: for tests and slow paths)."""
        return b"".join((self.header, *self.payload))


@dataclass(frozen=True, slots=True, eq=False)
class Connected:
    """The handshake completed: the connection is ESTABLISHED (connect succeeded)."""

    conn: Connection


@dataclass(frozen=True, slots=True, eq=False)
class Readable:
    """New in-order data can be read with ``conn.recv()``."""

    conn: Connection


@dataclass(frozen=True, slots=True, eq=False)
class Writable:
    """The send buffer drained after a short ``send()``: the program may write again."""

    conn: Connection


@dataclass(frozen=True, slots=True, eq=False)
class PeerClosed:
    """The peer's FIN arrived in order: after the buffered data, reads see end of file."""

    conn: Connection


@dataclass(frozen=True, slots=True, eq=False)
class Reset:
    """The connection failed; ``error`` is the errno a socket call would report.

    ``ECONNREFUSED`` (RST answering our SYN), ``ECONNRESET`` (RST from the
    peer, or data arriving after ``close()``), ``ETIMEDOUT`` (retransmissions,
    SYN retries or keepalive probes exhausted).  A :class:`Closed` follows.
    ``abort()``, asked for by the program, reports only :class:`Closed`.
    """

    conn: Connection
    error: int


@dataclass(frozen=True, slots=True, eq=False)
class Closed:
    """The connection reached CLOSED (TIME-WAIT over, LAST-ACK acknowledged, or reset).

    Nothing more will come from it; the table has forgotten it.
    """

    conn: Connection


@dataclass(frozen=True, slots=True, eq=False)
class Acceptable:
    """A connection completed its handshake on ``listener`` and waits in its accept queue."""

    listener: Listener


Event = Connected | Readable | Writable | PeerClosed | Reset | Closed | Acceptable
Output = Transmit | Event
