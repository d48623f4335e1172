"""One TCP connection: the RFC 9293 state machine, sans-IO.

A :class:`Connection` never touches a socket, a clock or a timer.  It takes
segments (:meth:`Connection.receive`), the program's calls (:meth:`send`,
:meth:`recv`, :meth:`shutdown_write`, :meth:`close`, :meth:`abort`) and the
time, and hands back outputs: segments to send and events for the socket
layer (:mod:`vrouter.transport.tcp.events`).  It reports when it next needs
to run (:meth:`poll_at`) and does its timed work in :meth:`on_timer`.

State changes follow the table :data:`~vrouter.transport.tcp.state.TRANSITIONS`
(h11 style): the segment processing of RFC 9293 3.10.7 decides *which*
trigger happened and the table alone decides the next state.

What the connection implements, by RFC:

* RFC 9293: the three-way handshake (active, passive and simultaneous
  open), data transfer, FIN handling in every state (simultaneous close
  through CLOSING), TIME-WAIT for 2*MSL, the segment acceptability test and
  trimming to the window, delayed ACKs (an ACK for every second full segment,
  at most ``delack`` seconds late, at once for out-of-order data, hole
  fills and FINs), Nagle's algorithm (off with ``nodelay``), sender and
  receiver silly-window avoidance, zero-window probing with a 1-byte probe
  on the persist timer, keepalive (when enabled), and never shrinking the
  advertised window.
* RFC 5961: a RST resets only with the exact expected sequence number; an
  in-window RST, any SYN in a synchronized state and an ACK older than the
  window get a (rate-limited) challenge ACK; out-of-window RSTs are dropped.
* RFC 6298 retransmission timer with Karn's algorithm and exponential
  backoff (:mod:`~vrouter.transport.tcp.rto`); go-back-N after a timeout.
* RFC 8985 7 tail loss probes (without RACK): after 2*SRTT without an ACK
  while data is outstanding, the last segment is sent again, so a lost ACK
  or a lost tail is repaired, or shows as a SACK hole, before the RTO; a
  probe that repaired a loss (its ACK brings no D-SACK) reduces the
  congestion window as fast recovery would.
* RFC 5681/6582 NewReno, limited transmit (RFC 3042), and SACK-based loss
  recovery (RFC 6675 "pipe") when SACK was negotiated
  (:mod:`~vrouter.transport.tcp.congestion`, :mod:`~vrouter.transport.tcp.sack`).
* RFC 7323 window scaling and timestamps (RTT samples from TSecr, PAWS).
* RFC 2018 SACK blocks as receiver; SACK scoreboard as sender.

Buffers are bounded: ``send`` accepts at most ``sndbuf`` bytes of unacknowledged
plus unsent data and returns how much it took (back-pressure, then a
:class:`~vrouter.transport.tcp.events.Writable` event); received data waits
in a buffer of ``rcvbuf`` bytes and the advertised window is what is left of
it, so a slow reader closes the window instead of growing memory.

The connection is built in layers, as 4.4BSD splits ``tcp_input``,
``tcp_output``, ``tcp_timer`` and ``tcp_usrreq``; each is a class of methods
on the one object, and each calls only the layers below it:

=====================================  ==================================================
:mod:`~vrouter.transport.tcp.tcb`      every variable of the connection, the state change
:mod:`~vrouter.transport.tcp.output`   sending, and arming the timers sending starts
:mod:`~vrouter.transport.tcp.input`    one arriving segment (RFC 9293 3.10.7)
:mod:`~vrouter.transport.tcp.timers`   what each timer does when it expires
this module                            construction and the program's calls
=====================================  ==================================================

The state table is :mod:`~vrouter.transport.tcp.state`, the settings
:mod:`~vrouter.transport.tcp.options`, the buffers
:mod:`~vrouter.transport.tcp.buffers`.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.events import Output
from vrouter.transport.tcp.input import TcpInput
from vrouter.transport.tcp.options import TcpOptions
from vrouter.transport.tcp.segment import Segment
from vrouter.transport.tcp.state import CAN_QUEUE, RECEIVING, State, Trigger
from vrouter.transport.tcp.stats import TcpStats
from vrouter.transport.tcp.tcb import Endpoint
from vrouter.transport.tcp.timers import TcpTimers

__all__ = ["Connection", "State", "TcpError", "TcpOptions"]
"""State and TcpOptions are re-exported: a connection is made with one and reports the other."""


class TcpError(Exception):
    """A call the connection cannot do in its state; ``errno`` says why (EPIPE, ENOTCONN…)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.errno = code


class Connection(TcpInput, TcpTimers):
    """One TCP connection between ``local`` and ``remote`` (addresses of 4 or 16 bytes)."""

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def open_active(
        cls,
        local: Endpoint,
        remote: Endpoint,
        now: float,
        options: TcpOptions | None = None,
        *,
        iss: int = 0,
        mtu: int = 1500,
        stats: TcpStats | None = None,
        ts_offset: int = 0,
    ) -> Connection:
        """Return a connection in SYN-SENT; its SYN is the first output of ``output(now)``."""
        conn = cls(local, remote, options, iss=iss, mtu=mtu, stats=stats, ts_offset=ts_offset)
        conn.created = now
        conn._rcv_wscale_choose()
        conn._fire(Trigger.ACTIVE_OPEN, now)
        conn.stats.connattempt += 1
        conn._send_syn(now)
        return conn

    @classmethod
    def open_passive(
        cls,
        local: Endpoint,
        remote: Endpoint,
        syn: Segment,
        now: float,
        options: TcpOptions | None = None,
        *,
        iss: int = 0,
        mtu: int = 1500,
        stats: TcpStats | None = None,
        ts_offset: int = 0,
    ) -> Connection:
        """Return a connection in SYN-RECEIVED answering ``syn`` (its SYN-ACK is queued)."""
        conn = cls(local, remote, options, iss=iss, mtu=mtu, stats=stats, ts_offset=ts_offset)
        conn.created = now
        conn.passive = True
        conn._take_syn(syn, now, ours_offered=False)
        conn._fire(Trigger.PASSIVE_OPEN, now)
        conn._send_syn(now)
        return conn

    def set_mtu(self, mtu: int) -> None:
        """Use a new path MTU (smaller after a Packet Too Big / Fragmentation Needed)."""
        self.mtu = mtu
        self._update_mss()

    # --- the program's side ------------------------------------------------------------------

    @property
    def at_eof(self) -> bool:
        """Return True once the peer's FIN arrived and every byte before it was read."""
        return self.fin_received and self.readable == 0

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue ``data``; return how many bytes were accepted (0 when the buffer is full).

        Raises :class:`TcpError` EPIPE after ``shutdown_write``/``close``,
        ENOTCONN when the connection is closed (ECONNRESET/ETIMEDOUT if it
        failed).  Call ``output(now)`` (or let the table do it) to send.
        """
        if self._fin_queued or self.app_closed:
            raise TcpError(errno.EPIPE, "the connection was shut down for writing")
        if self.state not in CAN_QUEUE:
            code = self.error or errno.ENOTCONN
            raise TcpError(code, f"cannot send in state {self.state.value}")
        room = self.options.sndbuf - self.send_queued
        n = max(min(room, len(data)), 0)
        if n < len(data):
            self._want_writable = True
        if n:
            self._send_buf.append(data[:n] if n < len(data) else data)
            self._dirty()
        return n

    def recv(self, max_bytes: int = 1 << 20) -> bytes:
        """Return up to ``max_bytes`` of received data (b"" when none; see ``at_eof``).

        Reading makes room in the receive buffer; when the window has shrunk to
        half the buffer or less and can at least double, a window update is
        sent at the next ``output(now)``.
        """
        data = self._recv_buf.read(max_bytes)
        if data:
            self._after_read()
        return data

    def recv_with(self, take: Callable[[memoryview], int], max_bytes: int = 1 << 20) -> int:
        """Offer up to ``max_bytes`` of received data to ``take`` (a socket's ``send``):
        it gets a view of the receive buffer, returns how many bytes it used, and
        those are read.  Return that count; what ``take`` raises is raised (nothing
        read).  As :meth:`recv` without a copy of the data."""
        used = self._recv_buf.read_with(take, max_bytes)
        if used:
            self._after_read()
        return used

    def _after_read(self) -> None:
        """Ask for a window update if reading opened the window far enough.

        As Linux does (``tcp_cleanup_rbuf``): only when what the peer may still
        send has fallen to half the buffer or less and the new window at least
        doubles it, by at least receiver SWS avoidance's step (RFC 9293
        3.8.6.2.2).  Otherwise the peer has room to go on, and the ACK of what
        it sends next carries the new window: a read of every segment does not
        cost an update of its own besides the segment's ACK.  A delayed ACK goes
        at once when the program has read everything (Linux again): the peer
        may be waiting for it to send its next small segment (Nagle).
        """
        if self.state not in RECEIVING:
            return
        current = max(seq.diff(self.rcv_adv, self.rcv_nxt), 0)
        opening = self._window_space() - current
        step = min(self.options.rcvbuf // 2, self._rcv_mss)
        if 2 * current <= self.options.rcvbuf and opening >= max(current, step):
            self._win_update = True
            self._dirty()
        elif self._delack_at is not None and not self.readable:
            self._ack_now = True
            self._dirty()

    def shutdown_write(self) -> None:
        """Send a FIN after the queued data (half-close; RFC 9293 3.10.4 CLOSE)."""
        if self._fin_queued or self.state in (State.CLOSED, State.TIME_WAIT):
            return
        self._fin_queued = True
        if self.state in (State.SYN_SENT, State.SYN_RECEIVED):
            self._close_pending = True  # the FIN follows the handshake
        elif self.state in (State.ESTABLISHED, State.CLOSE_WAIT):
            self._fire(Trigger.CLOSE, 0.0)
        self._dirty()

    def close(self) -> None:
        """Close both directions: the program will neither read nor write.

        Unread received data makes this an abort (RST, RFC 9293 3.10.4 /
        RFC 1122 4.2.2.13); otherwise the FIN follows the queued data and
        the connection finishes on its own (an orphan, bounded by the
        FIN-WAIT-2 timeout and TIME-WAIT).
        """
        if self.app_closed:
            return
        self.app_closed = True
        if self.state == State.CLOSED:
            return
        if self.state == State.SYN_SENT:
            self._fire(Trigger.CLOSE, 0.0)
            self._dirty()
            return
        if self.readable or self._reass:
            self.stats.aborted += 1
            self.abort()
            return
        self.shutdown_write()
        if self.state == State.FIN_WAIT_2 and self._close_at is None:
            self._close_at = self._last_rcv + self.options.fin_wait2_timeout
        self._dirty()

    def discard(self, now: float) -> list[Output]:
        """Forget the connection without a word to the peer (TIME-WAIT eviction, teardown)."""
        self.app_closed = True
        self._drop(0, now)
        return self._drain()

    def abort(self) -> None:
        """Reset the connection now (RST to the peer in synchronized states, RFC 9293 ABORT)."""
        if self.state == State.CLOSED:
            return
        if self.state != State.TIME_WAIT and self.state != State.SYN_SENT:
            self._emit_rst(self.snd_max, 0, 0.0)
        self.app_closed = True
        self._drop(0, 0.0)
        self._dirty()

    # --- results -----------------------------------------------------------------------------

    def _dirty(self) -> None:
        if self.on_dirty is not None:
            self.on_dirty(self)

    def info(self) -> dict[str, object]:
        """Return the connection's state and queues as plain data (sockstat)."""
        return {
            "state": self.state.value,
            "send_queue": self.send_queued,
            "recv_queue": self.readable,
            "reassembly": self._reass.size,
            "snd_wnd": self.snd_wnd,
            "rcv_wnd": max(seq.diff(self.rcv_adv, self.rcv_nxt), 0),
            "cwnd": self.cc.cwnd,
            "ssthresh": self.cc.ssthresh,
            "mss": self.mss,
            "rto": round(self.rtt.rto, 4),
            "srtt": None if self.rtt.srtt is None else round(self.rtt.srtt, 6),
            "wscale": (self.snd_wscale, self.rcv_wscale),
            "timestamps": self.ts_enabled,
            "sack": self.sack_enabled,
            "retransmits": self._rxtshift,
        }

    def __repr__(self) -> str:
        return (
            f"<Connection {self.local_port}->{self.remote_port} {self.state.value}"
            f" una={self.snd_una} nxt={self.snd_nxt} rcv={self.rcv_nxt}>"
        )
