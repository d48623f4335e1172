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
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.buffers import ReceiveBuffer, SendBuffer
from vrouter.transport.tcp.congestion import NewReno
from vrouter.transport.tcp.events import (
    Closed,
    Connected,
    Output,
    PeerClosed,
    Readable,
    Reset,
    Transmit,
    Writable,
)
from vrouter.transport.tcp.options import TcpOptions, window_shift
from vrouter.transport.tcp.rto import RttEstimator
from vrouter.transport.tcp.sack import ReassemblyQueue, Scoreboard
from vrouter.transport.tcp.segment import (
    ACK,
    FIN,
    HEADER_LEN,
    PSH,
    RST,
    SYN,
    Segment,
    build,
    reset_for,
    sack_option,
    syn_options,
    ts_option,
)
from vrouter.transport.tcp.state import (
    CAN_QUEUE,
    FIN_STATES,
    KEEPALIVE,
    PROBING,
    RECEIVING,
    SENDING,
    SYNCHRONIZED,
    TRANSITIONS,
    State,
    Trigger,
)
from vrouter.transport.tcp.stats import TcpStats

__all__ = ["TSO_MAX", "Connection", "State", "TcpError", "TcpOptions", "window_shift"]

MASK = seq.MASK
PAWS_IDLE = 24 * 24 * 3600.0
"""TS.Recent older than this is no longer used for PAWS (RFC 7323 5.5)."""
DEFAULT_MSS = {4: 536, 6: 1220}
"""Send MSS when the peer's SYN has no MSS option (RFC 9293 3.7.1, RFC 8200 5)."""
TSO_MAX = 64000
"""Payload of the largest super-segment: with IP and TCP headers below 65535 bytes."""
WORST_DELACK = 0.2
"""Longest a peer may delay an ACK, added to a tail probe's timeout (RFC 8985 WCDelAckT)."""
PERSIST_MIN = 0.2
PERSIST_MAX = 60.0

Endpoint = tuple[bytes, int]
"""An address (4 or 16 bytes) and a port."""


class TcpError(Exception):
    """A call the connection cannot do in its state; ``errno`` says why (EPIPE, ENOTCONN…)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.errno = code


class Connection:
    """One TCP connection between ``local`` and ``remote`` (addresses of 4 or 16 bytes)."""

    def __init__(
        self,
        local: Endpoint,
        remote: Endpoint,
        options: TcpOptions | None = None,
        *,
        iss: int = 0,
        mtu: int = 1500,
        stats: TcpStats | None = None,
        ts_offset: int = 0,
    ) -> None:
        self.local_addr, self.local_port = local
        self.remote_addr, self.remote_port = remote
        if len(self.local_addr) != len(self.remote_addr) or len(self.local_addr) not in (4, 16):
            raise ValueError("local and remote addresses must both be IPv4 or both IPv6")
        self.family = 4 if len(self.local_addr) == 4 else 6
        self.options = options if options is not None else TcpOptions()
        self.stats = stats if stats is not None else TcpStats()
        """Counters (the vnet's, shared by its connections)."""
        self.state = State.CLOSED
        self.passive = False
        """Opened by a SYN to a listener (not by connect)."""
        self.listener: object | None = None
        """The listener that created this connection (passive open), until accepted."""
        self.on_dirty: Callable[[Connection], None] | None = None
        """Called when a program call left output to collect (set by the table)."""
        self.challenge_allowed: Callable[[float], bool] = lambda now: True
        """Rate limit of challenge ACKs (RFC 5961 7), set by the table to its per-vnet one."""
        self.error = 0
        """The errno that ended the connection (0: none)."""
        self.scheduled: float | None = None
        """The deadline the table's timer heap holds for this connection."""
        self.user: object = None
        """Free for the socket layer (its socket object, say)."""
        self.created = 0.0
        # Sequence space (RFC 9293 3.3.1).
        self.iss = iss & MASK
        self.irs = 0
        self.snd_una = self.iss
        self.snd_nxt = self.iss
        self.snd_max = self.iss
        """Highest sequence number sent plus one (SND.NXT may be pulled back to resend)."""
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_sndwnd = 0
        self.snd_wscale = 0
        """Shift applied to the windows the peer advertises."""
        self.rcv_wscale = 0
        """Shift applied to the windows we advertise."""
        self.rcv_nxt = 0
        self.rcv_adv = 0
        """Right edge of the window we advertised (never moves left)."""
        self.last_ack_sent = 0
        # Segment sizes.
        ip_hdr = 20 if self.family == 4 else 40
        self.mtu = mtu
        self.local_mss = self._clamp_mss(mtu - ip_hdr - HEADER_LEN)
        """MSS we advertise: the interface MTU minus IP and TCP headers (and TCP_MAXSEG)."""
        self.peer_mss = DEFAULT_MSS[self.family]
        self._mss_base = min(self.peer_mss, self.local_mss)
        """Largest payload of a segment without options."""
        self._rcv_mss = min(self.local_mss, 536)
        """Largest payload the peer has sent (for the every-second-segment ACK rule)."""
        self.tso_size = 0
        """Largest payload of one segment of new data handed to the IP layer when the
        interface segments TCP itself (TSO), 0 for none: above one MSS it leaves as a
        super-segment that stands for full-sized segments (set by the stack)."""
        # Negotiated options.
        self.ws_enabled = False
        self.ts_enabled = False
        self.sack_enabled = False
        self.ts_recent = 0
        self.ts_recent_age = 0.0
        self._ts_offset = ts_offset & MASK
        self._ts_last: int | None = None
        """The latest TSval sent: TSval never goes back (RFC 7323 5.4), even when the
        callers' ``now`` does (a batch of received frames shares the time it began)."""
        # Buffers.
        self._send_buf = SendBuffer(seq.add(self.iss, 1))
        self._fin_queued = False
        self._fin_sent = False
        self.fin_acked = False
        self._recv_buf = ReceiveBuffer()
        self._reass = ReassemblyQueue()
        self._peer_fin_seq: int | None = None
        """Sequence number of a FIN that arrived out of order."""
        self.fin_received = False
        self.app_closed = False
        """The program called close(): nothing reads any more (an orphan connection)."""
        self._close_pending = False
        """shutdown_write() before ESTABLISHED: send the FIN once established."""
        # Timing and congestion.
        self.rtt = RttEstimator(
            min_rto=self.options.min_rto,
            max_rto=self.options.max_rto,
            initial_rto=self.options.initial_rto,
        )
        self._rtt_seq: int | None = None
        self._rtt_time = 0.0
        self.cc = NewReno(smss=self._mss_base, recover=self.iss)
        self.scoreboard = Scoreboard()
        self._high_rxt = self.iss
        self._rxt_log: list[tuple[int, int, int]] = []
        """Holes resent in this recovery: (start, end, SND.MAX when resent)."""
        self._rxtshift = 0
        """Consecutive expiries of the retransmission (or persist) timer."""
        self._syn_timed_out = False
        self._persist = False
        self._rexmt_at: float | None = None
        self._probe_at: float | None = None
        """When a tail loss probe goes out (RFC 8985 7.2), if armed."""
        self._tlp_high: int | None = None
        """SND.MAX when the last tail loss probe went out, until an ACK covers it."""
        self._tlp_dsack = False
        """A D-SACK came back since that probe: it resent what had arrived."""
        self._tlp_flight = 0
        """Bytes outstanding when the probe went out."""
        self._tlp_rearm = False
        """New data went out or SND.UNA moved: the probe's timeout starts again."""
        self._persist_at: float | None = None
        self._delack_at: float | None = None
        self._keep_at: float | None = None
        self._close_at: float | None = None
        self._keep_probes = 0
        self._keep_deferred = 0.0
        self._probes_unanswered = 0
        self._last_send = 0.0
        self._last_rcv = 0.0
        self._synack_sent_at = -1.0
        # Pending work.
        self._ack_now = False
        self._win_update = False
        self._unacked_bytes = 0
        self._want_writable = False
        self._readable_pending = False
        self._out: list[Output] = []

    # --- construction ---------------------------------------------------------------------

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

    def _clamp_mss(self, mss: int) -> int:
        if self.options.mss:
            mss = min(mss, self.options.mss)
        return max(mss, 64)

    def _rcv_wscale_choose(self) -> None:
        self.rcv_wscale = window_shift(self.options)

    def _take_syn(self, syn: Segment, now: float, ours_offered: bool) -> None:
        """Learn the peer's ISN and options from its SYN (or SYN-ACK)."""
        opts = syn.options
        self.irs = syn.seq
        self.rcv_nxt = seq.add(syn.seq, 1)
        self.rcv_adv = seq.add(self.rcv_nxt, min(self.options.rcvbuf, 0xFFFF))  # our SYN's
        self.last_ack_sent = self.rcv_nxt
        if opts.mss is not None and opts.mss > 0:
            self.peer_mss = opts.mss
        o = self.options
        # An option is in use when we offer it (or, passive, would) and the peer's SYN has it.
        self.ws_enabled = o.window_scaling and opts.wscale is not None
        if self.ws_enabled and opts.wscale is not None:
            if not ours_offered:
                self._rcv_wscale_choose()
            self.snd_wscale = opts.wscale
        else:
            self.rcv_wscale = self.snd_wscale = 0
        self.sack_enabled = o.sack and opts.sack_permitted
        self.cc.sack = self.sack_enabled
        self.ts_enabled = o.timestamps and opts.ts is not None
        if self.ts_enabled and opts.ts is not None:
            self.ts_recent = opts.ts[0]
            self.ts_recent_age = now
        self.snd_wnd = syn.window  # never scaled in a SYN (RFC 7323 2.2)
        self.max_sndwnd = max(self.max_sndwnd, self.snd_wnd)
        self.snd_wl1 = syn.seq
        self.snd_wl2 = syn.ack
        self._update_mss()
        self._last_rcv = now

    def _update_mss(self) -> None:
        ip_hdr = 20 if self.family == 4 else 40
        self._mss_base = max(
            min(self.peer_mss, self._clamp_mss(self.mtu - ip_hdr - HEADER_LEN)), 64
        )
        self.cc.set_smss(self.mss)

    @property
    def mss(self) -> int:
        """Return the sender MSS: payload of a full segment carrying the usual options."""
        return self._mss_base - (12 if self.ts_enabled else 0)

    def set_mtu(self, mtu: int) -> None:
        """Use a new path MTU (smaller after a Packet Too Big / Fragmentation Needed)."""
        self.mtu = mtu
        self._update_mss()

    # --- the program's side -----------------------------------------------------------------

    @property
    def readable(self) -> int:
        """Return how many bytes ``recv`` can return now."""
        return len(self._recv_buf)

    @property
    def at_eof(self) -> bool:
        """Return True once the peer's FIN arrived and every byte before it was read."""
        return self.fin_received and self.readable == 0

    @property
    def send_queued(self) -> int:
        """Return the bytes in the send buffer (unacknowledged plus unsent)."""
        return len(self._send_buf)

    @property
    def writable(self) -> int:
        """Return how many bytes ``send`` would accept now."""
        if self._fin_queued or self.state not in CAN_QUEUE:
            return 0
        return max(self.options.sndbuf - self.send_queued, 0)

    @property
    def unsent(self) -> int:
        """Return the bytes queued and never sent."""
        return max(seq.diff(self._send_buf.end(), self.snd_max), 0)

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

        Reading makes room in the receive buffer; when the window can open by
        at least two segments or half the buffer, a window update is sent at
        the next ``output(now)``.
        """
        data = self._recv_buf.read(max_bytes)
        if not data:
            return b""
        if self.state in RECEIVING:
            current = max(seq.diff(self.rcv_adv, self.rcv_nxt), 0)
            opening = self._window_space() - current
            step = min(self.options.rcvbuf // 2, self._rcv_mss)
            if (
                opening >= 2 * self._rcv_mss
                or 2 * opening >= self.options.rcvbuf
                or (current < self._rcv_mss and opening >= step)
            ):
                self._win_update = True
                self._dirty()
        return data

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

    # --- output and timers -------------------------------------------------------------------

    def output(self, now: float) -> list[Output]:
        """Send what can be sent now and return every pending output (segments, events)."""
        if self.state in SENDING or self.state in SYNCHRONIZED:
            self._transmit(now)
        self._refresh_keepalive(now)
        return self._drain()

    def poll_at(self) -> float | None:
        """Return when :meth:`on_timer` must next run (None: no timer armed)."""
        best: float | None = None
        for at in (
            self._rexmt_at,
            self._probe_at,
            self._persist_at,
            self._delack_at,
            self._keep_at,
            self._close_at,
        ):
            if at is not None and (best is None or at < best):
                best = at
        return best

    def on_timer(self, now: float) -> list[Output]:
        """Run every timer that is due; return the outputs."""
        if self._close_at is not None and now >= self._close_at:
            self._close_at = None
            if self.state == State.FIN_WAIT_2:
                self.stats.finwait2_drops += 1
            self._fire(Trigger.TIMEOUT, now)
            return self._drain()
        if self._rexmt_at is not None and now >= self._rexmt_at:
            self._rexmt_at = self._probe_at = None
            self._on_rexmt(now)
        if self._probe_at is not None and now >= self._probe_at:
            self._probe_at = None
            self._on_tail_probe(now)
        if self._persist_at is not None and now >= self._persist_at:
            self._persist_at = None
            self._on_persist(now)
        if self._keep_at is not None and now >= self._keep_at:
            self._keep_at = None
            self._on_keepalive(now)
        if self._delack_at is not None and now >= self._delack_at:
            self._delack_at = None
            if self.state != State.CLOSED:
                self._ack_now = True
                self.stats.delack += 1
        return self.output(now) if self.state != State.CLOSED else self._drain()

    # --- receiving ---------------------------------------------------------------------------

    def receive(self, seg: Segment, payload: bytes | memoryview, now: float) -> list[Output]:
        """Process one arriving segment (RFC 9293 3.10.7); return the outputs."""
        state = self.state
        if state == State.SYN_SENT:
            self._rcv_syn_sent(seg, payload, now)
        elif state == State.CLOSED:
            self._reply_rst(seg, len(payload), now)
        else:
            self._rcv_synchronized(seg, payload, now)
        if self.state != State.CLOSED:
            self._transmit(now)
            if self.options.keepalive:
                self._refresh_keepalive(now)
        return self._drain()

    def _rcv_syn_sent(self, seg: Segment, payload: bytes | memoryview, now: float) -> None:
        """RFC 9293 3.10.7.3, SYN-SENT."""
        flags = seg.flags
        if flags & ACK and (
            seq.le(seg.ack, self.iss) or seq.gt(seg.ack, self.snd_max)
        ):  # not for our SYN
            if not flags & RST:
                self._emit_rst(seg.ack, 0, now)
            self.stats.rst_ignored += bool(flags & RST)
            return
        if flags & RST:
            if flags & ACK:  # acceptable ACK: the peer refused (RFC 5961 3.2 for SYN-SENT)
                self.stats.refused += 1
                self.stats.rst_accepted += 1
                self._drop(errno.ECONNREFUSED, now)
            else:
                self.stats.rst_ignored += 1
            return
        if not flags & SYN:
            return
        self._take_syn(seg, now, ours_offered=True)
        if flags & ACK:
            self._on_ack_of_syn(seg.ack, now)
            self._fire(Trigger.RCV_SYN_ACK, now)
            self._ack_now = True
            if payload:  # data on a SYN-ACK: take it as in ESTABLISHED
                self._rcv_text(seq.add(seg.seq, 1), payload, bool(flags & FIN), now)
            elif flags & FIN:
                self._rcv_fin(now)
        else:  # simultaneous open (RFC 9293 3.5 figure 8)
            self._fire(Trigger.RCV_SYN, now)
            self._send_syn(now)

    def _on_ack_of_syn(self, ack: int, now: float) -> None:
        """SND.UNA moves past our SYN: take the RTT sample of the handshake."""
        self.snd_una = ack
        if seq.lt(self.snd_nxt, ack):
            self.snd_nxt = ack
        self._rexmt_at = None
        if self._rxtshift == 0 and self._rtt_seq is not None:
            self._rtt_sample(now - self._rtt_time)
        self._rtt_seq = None
        self._rxtshift = 0
        if self._syn_timed_out:
            self.rtt.after_syn_timeout()

    def _rcv_synchronized(self, seg: Segment, payload: bytes | memoryview, now: float) -> None:
        """RFC 9293 3.10.7.4, every state from SYN-RECEIVED on."""
        flags = seg.flags
        seg_seq = seg.seq
        plen = len(payload)
        opts = seg.options
        stats = self.stats
        # Timestamps and PAWS (RFC 7323 3.2, 5.3) come before the sequence check.
        if self.ts_enabled:
            ts = opts.ts
            if ts is None:
                if not flags & RST:
                    stats.ts_missing += 1
                    return
            elif not flags & RST and seq.lt(ts[0], self.ts_recent):
                if now - self.ts_recent_age > PAWS_IDLE:
                    self.ts_recent = ts[0]
                else:
                    stats.paws_drops += 1
                    self._ack_now = True
                    return
        # A duplicate of the peer's SYN (our SYN-ACK or ACK was lost): drop the SYN
        # bit and go on with the rest of the segment (4.4BSD).
        if flags & SYN and seg_seq == self.irs:
            if self.state == State.SYN_RECEIVED and not flags & ACK:
                self._resend_synack(now)
                return
            flags &= ~SYN
            seg_seq = seq.add(seg_seq, 1)
        # First: is the segment acceptable (RFC 9293 3.10.7.4 table)?
        rcv_wnd = max(seq.diff(self.rcv_adv, self.rcv_nxt), 0)
        seg_len = plen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        if not self._acceptable(seg_seq, seg_len, rcv_wnd):
            if flags & RST:
                stats.rst_ignored += 1
                return
            if plen and seq.le(seq.add(seg_seq, plen), self.rcv_nxt):
                stats.rcvduppack += 1
                stats.rcvdupbyte += plen
            elif rcv_wnd == 0 and seg_seq == self.rcv_nxt and plen:
                stats.rcvwinprobe += 1
            else:
                stats.rcvunacceptable += 1
            if self.state == State.TIME_WAIT and flags & FIN:
                self._close_at = now + 2 * self.options.msl  # a retransmitted FIN
            self._ack_now = True
            return
        self._last_rcv = now
        self._keep_probes = 0
        # Second: RST (RFC 5961 3.2).
        if flags & RST:
            if seg_seq == self.rcv_nxt:
                stats.rst_accepted += 1
                quiet = self.state in (State.CLOSING, State.LAST_ACK, State.TIME_WAIT)
                if self.state == State.SYN_RECEIVED and not self.passive:
                    code = errno.ECONNREFUSED
                else:
                    code = 0 if quiet else errno.ECONNRESET
                self._drop(code, now)
            else:
                self._challenge_ack(now)
            return
        # Fourth: a SYN in a synchronized state (RFC 5961 4.2).
        if flags & SYN:
            self._challenge_ack(now)
            return
        # Fifth: ACK.
        if not flags & ACK:
            stats.rcvnoack += 1
            return
        if (
            self.ts_enabled
            and opts.ts is not None
            and seq.le(seg_seq, self.last_ack_sent)
            and seq.ge(opts.ts[0], self.ts_recent)
        ):
            self.ts_recent = opts.ts[0]
            self.ts_recent_age = now
        if self.state == State.SYN_RECEIVED:
            if not (seq.lt(self.snd_una, seg.ack) and seq.le(seg.ack, self.snd_max)):
                self._emit_rst(seg.ack, 0, now)
                return
            self._on_ack_of_syn(seg.ack, now)
            self.snd_wnd = seg.window << self.snd_wscale
            self.max_sndwnd = max(self.max_sndwnd, self.snd_wnd)
            self.snd_wl1 = seg_seq
            self.snd_wl2 = seg.ack
            self._fire(Trigger.RCV_ACK_OF_SYN, now)
        if not self._rcv_ack(seg, seg_seq, plen, flags, now):
            return
        if self.state == State.CLOSED:
            return
        # Seventh: segment text.
        fin = bool(flags & FIN)
        if plen:
            if self.state in RECEIVING:
                if self.app_closed:  # nobody will read it (RFC 9293 3.10.7.4, 4.2.2.13)
                    stats.rcvafterclose += 1
                    stats.aborted += 1
                    self._emit_rst(self.snd_max, 0, now)
                    self._drop(errno.ECONNRESET, now)
                    return
                fin = self._rcv_text(seg_seq, payload, fin, now)
            else:
                fin = fin and seq.add(seg_seq, plen) == self.rcv_nxt
        elif fin and seg_seq != self.rcv_nxt:  # a FIN alone, out of order
            if self.state in RECEIVING:
                self._peer_fin_seq = seg_seq
                self._ack_now = True
            fin = False
        # Eighth: FIN.
        if fin:
            self._rcv_fin(now)

    def _acceptable(self, seg_seq: int, seg_len: int, rcv_wnd: int) -> bool:
        """RFC 9293 3.10.7.4, first check: the four cases of segment acceptability."""
        rcv_nxt = self.rcv_nxt
        if seg_len == 0:
            if rcv_wnd == 0:
                return seg_seq == rcv_nxt
            return seq.between(rcv_nxt, seg_seq, seq.add(rcv_nxt, rcv_wnd))
        if rcv_wnd == 0:
            return False
        end = seq.add(rcv_nxt, rcv_wnd)
        return seq.between(rcv_nxt, seg_seq, end) or seq.between(
            rcv_nxt, seq.add(seg_seq, seg_len - 1), end
        )

    def _challenge_ack(self, now: float) -> None:
        if self.challenge_allowed(now):
            self.stats.challenge_ack += 1
            self._emit_ack(now)
        else:
            self.stats.challenge_ack_limited += 1

    def _rcv_ack(self, seg: Segment, seg_seq: int, plen: int, flags: int, now: float) -> bool:
        """RFC 9293 3.10.7.4 fifth check for synchronized states; False: drop the segment."""
        ack = seg.ack
        stats = self.stats
        if seq.gt(ack, self.snd_max):  # acknowledges what was never sent
            stats.rcvacktoomuch += 1
            self._ack_now = True
            return False
        if seq.lt(ack, seq.sub(self.snd_una, self.max_sndwnd)):  # RFC 5961 5.2
            self._challenge_ack(now)
            return False
        window = seg.window << self.snd_wscale
        new_sack = 0
        if self.sack_enabled and seg.options.sack:
            stats.rcvsackblocks += len(seg.options.sack)
            if self._tlp_high is not None and seq.le(seg.options.sack[0][1], seg.ack):
                self._tlp_dsack = True  # RFC 2883: a duplicate arrived
            new_sack = self.scoreboard.update(seg.options.sack, self.snd_una, self.snd_max)
            if self._rxt_log and self.cc.in_recovery:
                self._find_lost_retransmissions()
        advanced = seq.gt(ack, self.snd_una)
        if advanced:
            self._ack_new(ack, seg, now)
            self._tlp_rearm = True
        elif (
            ack == self.snd_una
            and plen == 0
            and not flags & (SYN | FIN)
            and (window == self.snd_wnd or new_sack)  # RFC 5681 2, RFC 6675 2 (new SACK info)
            and self.snd_max != self.snd_una
        ):
            self._dupack(ack, now)
        if self._tlp_high is not None and seq.ge(ack, self._tlp_high):
            self._tail_probe_judged(ack, advanced or bool(new_sack))
        # Window update (SND.WL1/SND.WL2 rule).
        if seq.lt(self.snd_wl1, seg_seq) or (self.snd_wl1 == seg_seq and seq.le(self.snd_wl2, ack)):
            if window != self.snd_wnd and plen == 0 and ack == self.snd_wl2:
                stats.rcvwinupd += 1
            self.snd_wnd = window
            self.snd_wl1 = seg_seq
            self.snd_wl2 = ack
            if window > self.max_sndwnd:
                self.max_sndwnd = window
            self._probes_unanswered = 0
            if window > 0 and self._persist:
                self._leave_persist(now)
        # Our FIN acknowledged?
        if self._fin_sent and not self.fin_acked and seq.gt(ack, self._fin_seq()):
            self.fin_acked = True
            state = self.state
            self._fire(Trigger.RCV_ACK_OF_FIN, now)
            if state == State.FIN_WAIT_1 and self.app_closed:
                self._close_at = now + self.options.fin_wait2_timeout
            if self.state == State.CLOSED:
                return False
        return True

    def _fin_seq(self) -> int:
        return self._send_buf.end()

    def _ack_new(self, ack: int, seg: Segment, now: float) -> None:
        """An ACK of new data (SND.UNA < SEG.ACK <= SND.MAX)."""
        stats = self.stats
        acked = seq.sub(ack, self.snd_una)
        stats.rcvackpack += 1
        stats.rcvackbyte += acked
        self._send_buf.acknowledge(ack)
        self.snd_una = ack
        if seq.lt(self.snd_nxt, ack):
            self.snd_nxt = ack
        if self.scoreboard:
            self.scoreboard.prune(ack)
        if seq.lt(self._high_rxt, ack):
            self._high_rxt = ack
        # RTT: from the timestamp echo, else from the one timed segment (Karn).
        ts = seg.options.ts
        if self.ts_enabled and ts is not None and ts[1]:
            r_ms = seq.sub(self._tsval(now), ts[1])
            if r_ms <= self.options.max_rto * 1000:  # else not an echo of ours
                self._rtt_sample(r_ms / 1000)
        elif self._rtt_seq is not None and seq.ge(ack, self._rtt_seq):
            self._rtt_sample(now - self._rtt_time)
            self._rtt_seq = None
        self._rxtshift = 0
        flight = seq.sub(self.snd_max, ack)
        if self.cc.on_ack(ack, acked, flight):
            stats.partialacks += 1
            if not self.sack_enabled or not self.scoreboard:  # NewReno: resend the next hole
                sent = self._retransmit(ack, now)
                self._high_rxt = seq.max_(self._high_rxt, seq.add(ack, sent))
        if self.snd_una == self.snd_max:
            self._rexmt_at = None
        elif not self._persist and not (self.cc.in_recovery and self.cc.partial_acks > 1):
            self._rexmt_at = now + self.rtt.rto
        if self._want_writable and self.writable * 2 >= self.options.sndbuf:
            self._want_writable = False
            self._out.append(Writable(self))

    def _find_lost_retransmissions(self) -> None:
        """Resend holes whose retransmission was lost (4.4BSD/Linux lost-retransmit check).

        A hole resent when SND.MAX was M is taken as lost again once more than
        DupThresh segments sent after M have been SACKed while the hole has not.
        """
        sb = self.scoreboard
        una = self.snd_una
        highest = sb.highest(una)
        keep = []
        for start, end, mark in self._rxt_log:
            if seq.le(end, una):
                continue
            if seq.diff(highest, mark) > 3 * self.mss and not sb.is_sacked(
                una, seq.max_(start, una)
            ):
                self.stats.rexmit_lost += 1
                if seq.lt(seq.max_(start, una), self._high_rxt):
                    self._high_rxt = seq.max_(start, una)
                continue
            keep.append((start, end, mark))
        self._rxt_log = keep

    def _rtt_sample(self, r: float) -> None:
        self.rtt.sample(r)
        self.stats.rttupdated += 1

    def _dupack(self, ack: int, now: float) -> None:
        self.stats.rcvdupack += 1
        flight = seq.sub(self.snd_max, self.snd_una)
        lost = False
        if self.sack_enabled and self.scoreboard:
            lost = seq.gt(self.scoreboard.lost_below(self.snd_una, self.mss), self.snd_una)
        if self.cc.on_dupack(ack, self.snd_max, flight, lost):
            self.stats.fastrexmit += 1
            self._tlp_high = self._probe_at = None  # recovery takes over from the probe
            self._rtt_seq = None  # Karn: the timed segment may be the one resent
            sent = self._retransmit(self.snd_una, now)
            self._high_rxt = seq.add(self.snd_una, sent)
            self._rxt_log = [(self.snd_una, self._high_rxt, self.snd_max)]
            self._rexmt_at = now + self.rtt.rto

    def _rcv_text(self, seg_seq: int, payload: bytes | memoryview, fin: bool, now: float) -> bool:
        """Take segment data (RFC 9293 3.10.7.4 seventh); return True if a FIN is now in order."""
        stats = self.stats
        rcv_nxt = self.rcv_nxt
        plen = len(payload)
        # Trim what we already have and what lies beyond the window.
        before = seq.diff(rcv_nxt, seg_seq)
        if before > 0:
            stats.rcvpartduppack += 1
            stats.rcvdupbyte += before
            payload = payload[before:]
            seg_seq = rcv_nxt
            plen -= before
        room = max(seq.diff(self.rcv_adv, seg_seq), 0)
        if plen > room:
            stats.rcvpackafterwin += 1
            stats.rcvbyteafterwin += plen - room
            payload = payload[:room]
            plen = room
            fin = False
        if plen > self._rcv_mss:
            self._rcv_mss = min(plen, self.local_mss)
        if seg_seq != rcv_nxt:  # out of order: keep it, ACK at once with SACK blocks
            if self._reass.size + plen > self.options.rcvbuf:
                stats.rcvmemdrop += 1
            else:
                self._reass.insert(rcv_nxt, seg_seq, payload)
                stats.rcvoopack += 1
                stats.rcvoobyte += plen
            if fin:
                self._peer_fin_seq = seq.add(seg_seq, plen)
            self._ack_now = True
            return False
        if plen:
            self._recv_buf.append(payload)
            rcv_nxt = seq.add(rcv_nxt, plen)
            stats.rcvpack += 1
            stats.rcvbyte += plen
            self._unacked_bytes += plen
        if self._reass:
            while True:
                chunk = self._reass.pop(rcv_nxt)
                if chunk is None:
                    break
                self._recv_buf.append(chunk)
                rcv_nxt = seq.add(rcv_nxt, len(chunk))
            self._ack_now = True  # a hole filled (RFC 5681 4.2)
        self.rcv_nxt = rcv_nxt
        if plen:
            self._readable_pending = True
        if self._peer_fin_seq is not None and self._peer_fin_seq == rcv_nxt:
            fin = True
        if self._unacked_bytes >= 2 * self._rcv_mss:
            self._ack_now = True
        elif self._delack_at is None and self._unacked_bytes:
            self._delack_at = now + self.options.delack
        return fin

    def _rcv_fin(self, now: float) -> None:
        """Eighth check: the peer's FIN, in order."""
        if self.fin_received:
            if self.state == State.TIME_WAIT:
                self._close_at = now + 2 * self.options.msl
            self._ack_now = True
            return
        self.fin_received = True
        self._peer_fin_seq = None
        self.rcv_nxt = seq.add(self.rcv_nxt, 1)
        self._ack_now = True
        self._out.append(PeerClosed(self))
        self._fire(Trigger.RCV_FIN, now)

    def _reply_rst(self, seg: Segment, plen: int, now: float) -> None:
        """A segment for a CLOSED connection (RFC 9293 3.10.7.1)."""
        data = reset_for(self.local_addr, self.remote_addr, seg, plen)
        if data is not None:
            self._out.append(
                Transmit(self.local_addr, self.remote_addr, self.local_port, self.remote_port, data)
            )
            self.stats.sndrst += 1
            self.stats.sndtotal += 1

    # --- state changes -----------------------------------------------------------------------

    def _fire(self, trigger: Trigger, now: float) -> None:
        """Apply ``trigger`` through :data:`TRANSITIONS` and run the entry actions."""
        old = self.state
        if trigger == Trigger.RESET:
            new = State.CLOSED
        else:
            found = TRANSITIONS[old].get(trigger)
            if found is None:
                return
            new = found
        self.state = new
        if new == old:
            return
        if new == State.ESTABLISHED:
            self.stats.connects += 1
            if self.passive:
                self.stats.accepts += 1
            self._out.append(Connected(self))
            if self._close_pending:
                self._close_pending = False
                self._fire(Trigger.CLOSE, now)
        elif new == State.TIME_WAIT:
            self._rexmt_at = self._persist_at = self._keep_at = self._probe_at = None
            self._persist = False
            self._close_at = now + 2 * self.options.msl
            self._send_buf.clear()
            self._reass.clear()
        elif new == State.FIN_WAIT_2 and self.app_closed:
            self._close_at = now + self.options.fin_wait2_timeout
        elif new == State.CLOSED:
            self._rexmt_at = self._persist_at = self._delack_at = self._probe_at = None
            self._keep_at = self._close_at = None
            self._persist = False
            self.stats.closed += 1
            self._send_buf.clear()
            self._reass.clear()
            self._out.append(Closed(self))

    def _drop(self, code: int, now: float) -> None:
        """End the connection (reset, timeout, abort); ``code`` is the errno for the program."""
        if self.state == State.CLOSED:
            return
        if self.state in SYNCHRONIZED and self.state != State.TIME_WAIT:
            self.stats.drops += 1
        elif self.state in (State.SYN_SENT, State.SYN_RECEIVED):
            self.stats.conndrops += 1
        if code:
            self.error = code
            self._out.append(Reset(self, code))
        self._fire(Trigger.RESET, now)

    # --- timers ------------------------------------------------------------------------------

    def _arm_tail_probe(self, now: float) -> None:
        """Arm the tail loss probe (RFC 8985 7.2) if one may go out; else disarm it.

        PTO = 2*SRTT, plus the longest delayed ACK when one segment is out
        (RFC 8985's WCDelAckT), and never later than the retransmission timer.
        """
        self._probe_at = None
        srtt = self.rtt.srtt
        if (
            not self.options.tail_probe
            or not self.sack_enabled
            or srtt is None
            or self._tlp_high is not None
            or self.cc.in_recovery
            or self._rxtshift
            or self._persist
            or self.state not in PROBING
            or self.snd_una == self.snd_max
        ):
            return
        pto = 2 * srtt
        if seq.sub(self.snd_max, self.snd_una) <= self.mss:
            pto += WORST_DELACK  # the one ACK may be a delayed one
        at = now + pto
        if self._rexmt_at is None or at < self._rexmt_at:
            self._probe_at = at

    def _on_tail_probe(self, now: float) -> None:
        """Send the last segment again (RFC 8985 7.3) and restart the retransmission timer."""
        if self.snd_una == self.snd_max or self.cc.in_recovery or self._persist:
            return
        cap = self._mss_base - self._options_len()
        end = self._fin_seq() if self._fin_sent else self.snd_max
        start = seq.max_(self.snd_una, seq.sub(end, cap))
        if self._retransmit(start, now):
            self.stats.tailprobes += 1
            self._tlp_high = self.snd_max
            self._tlp_dsack = False
            self._tlp_flight = seq.sub(self.snd_max, self.snd_una)
            self._rexmt_at = now + self.rtt.rto

    def _tail_probe_judged(self, ack: int, news: bool) -> None:
        """Decide, from an ACK at or beyond the last probe, whether it repaired a loss
        (RFC 8985 7.4.2, as Linux does without RACK).

        A D-SACK since the probe, or a pure duplicate ACK of everything up to
        it, means the original and the probe both arrived: no loss.  An ACK
        beyond it (of data sent after the probe) with neither means the probe
        filled a hole: reduce the window as fast recovery would.  An ACK that
        just reaches it decides nothing yet.
        """
        if self._tlp_dsack or not news:
            self._tlp_high = None
        elif seq.gt(ack, self._tlp_high or ack):
            self.stats.tailprobe_recoveries += 1
            if not self.cc.in_recovery:
                self.cc.after_repair(self._tlp_flight)
            self._tlp_high = None

    def _on_rexmt(self, now: float) -> None:
        """The retransmission timer expired (RFC 6298 5.4-5.6)."""
        stats = self.stats
        stats.rexmttimeo += 1
        self._tlp_high = None
        o = self.options
        if self.state in (State.SYN_SENT, State.SYN_RECEIVED):
            limit = o.syn_retries if self.state == State.SYN_SENT else o.synack_retries
            if self._rxtshift >= limit:
                if self.state == State.SYN_RECEIVED and self.passive:
                    stats.synack_drops += 1
                stats.timeoutdrop += 1
                self._drop(errno.ETIMEDOUT, now)
                return
            self._rxtshift += 1
            self.rtt.on_timeout()
            self._syn_timed_out = True
            self._rtt_seq = None
            self._send_syn(now)
            return
        if self.snd_una == self.snd_max:
            return
        if self._rxtshift >= o.max_retries:
            stats.timeoutdrop += 1
            self._emit_rst(self.snd_max, 0, now)
            self._drop(errno.ETIMEDOUT, now)
            return
        flight = seq.sub(self.snd_max, self.snd_una)
        self.cc.on_timeout(self.snd_max, flight, first=self._rxtshift == 0)
        self._rxtshift += 1
        self.rtt.on_timeout()
        self._rtt_seq = None
        self.scoreboard.clear()  # RFC 2018 8: the receiver may have reneged
        self._high_rxt = self.snd_una
        self._rxt_log = []
        self.snd_nxt = self.snd_una  # go back N
        if self.snd_wnd == 0:
            self._enter_persist(now)
            self._probe(now)
        else:
            self._transmit(now)
            if self._rexmt_at is None:
                self._rexmt_at = now + self.rtt.rto

    def _enter_persist(self, now: float) -> None:
        self._persist = True
        self._rexmt_at = self._probe_at = None
        self._persist_at = now + self._persist_interval()

    def _leave_persist(self, now: float) -> None:
        self._persist = False
        self._persist_at = None
        self._rxtshift = 0
        self.snd_nxt = self.snd_una  # a probe the zero window dropped goes again
        if self.snd_una != self.snd_max:
            self._rexmt_at = now + self.rtt.rto

    def _persist_interval(self) -> float:
        base = max(self.rtt.base, PERSIST_MIN)
        return min(base * (1 << min(self._rxtshift, 16)), PERSIST_MAX)

    def _on_persist(self, now: float) -> None:
        """The persist timer expired: probe the zero window (RFC 9293 3.8.6.1)."""
        self.stats.persisttimeo += 1
        if not self._persist:
            return
        if self._probes_unanswered >= self.options.max_retries:
            self.stats.timeoutdrop += 1
            self._emit_rst(self.snd_max, 0, now)
            self._drop(errno.ETIMEDOUT, now)
            return
        self._rxtshift += 1
        self._probes_unanswered += 1
        self._probe(now)

    def _probe(self, now: float) -> None:
        """Probe the window from SND.UNA and re-arm the persist timer.

        A zero window gets one byte (RFC 9293 3.8.6.1); a window that silly
        window avoidance kept us from filling gets what fits in it (the
        override timeout of RFC 9293 3.8.6.2.1).
        """
        self._persist_at = now + self._persist_interval()
        if self.send_queued == 0:
            if self._fin_queued and self.state in FIN_STATES:
                self._retransmit(self.snd_una, now)
            return
        sb = self._send_buf
        off = max(seq.diff(self.snd_una, sb.seq), 0)
        size = min(max(self.snd_wnd, 1), self._mss_base - self._options_len())
        size = min(size, len(sb) - off)
        if size <= 0:
            return
        start = sb.head + off
        payload = sb.data[start : start + size]
        self._emit(self.snd_una, self.rcv_nxt, ACK | PSH, payload, now)
        self.stats.sndprobe += 1
        end = seq.add(self.snd_una, size)
        if seq.lt(self.snd_nxt, end):
            self.snd_nxt = end
        if seq.lt(self.snd_max, end):
            self.snd_max = end

    def _on_keepalive(self, now: float) -> None:
        """The keepalive timer expired (RFC 9293 3.8.4, RFC 1122 4.2.3.6)."""
        o = self.options
        if not o.keepalive or self.state not in KEEPALIVE:
            return
        self.stats.keeptimeo += 1
        if self.snd_una != self.snd_max or self.unsent:
            self._keep_deferred = now  # data in flight: the RTO watches the peer
            self._keep_at = now + o.keepidle
            return
        if self._keep_probes >= o.keepcnt:
            self.stats.keepdrops += 1
            self._emit_rst(self.snd_max, 0, now)
            self._drop(errno.ETIMEDOUT, now)
            return
        self._keep_probes += 1
        self.stats.keepprobe += 1
        self._emit(seq.sub(self.snd_una, 1), self.rcv_nxt, ACK, b"", now)
        self._keep_at = now + o.keepintvl

    def _refresh_keepalive(self, now: float) -> None:
        o = self.options
        if not o.keepalive or self.state not in KEEPALIVE:
            self._keep_at = None
        elif self._keep_probes == 0:
            self._keep_at = max(self._last_rcv, self._keep_deferred) + o.keepidle
        elif self._keep_at is None:
            self._keep_at = now + o.keepintvl

    # --- sending -----------------------------------------------------------------------------

    def _send_syn(self, now: float) -> None:
        """Send (or resend) our SYN, or SYN-ACK in SYN-RECEIVED."""
        o = self.options
        ts = (self._tsval(now), 0) if o.timestamps else None
        if self.state == State.SYN_SENT:
            opts = syn_options(
                self.local_mss,
                self.rcv_wscale if o.window_scaling else None,
                o.sack,
                ts,
            )
            flags = SYN
            ack = 0
        else:
            ts = (self._tsval(now), self.ts_recent) if self.ts_enabled else None
            opts = syn_options(
                self.local_mss,
                self.rcv_wscale if self.ws_enabled else None,
                self.sack_enabled,
                ts,
            )
            flags = SYN | ACK
            ack = self.rcv_nxt
            self._synack_sent_at = now
        if self._rexmt_at is None and self._rxtshift == 0:
            self._rtt_seq = seq.add(self.iss, 1)
            self._rtt_time = now
        window = min(self.options.rcvbuf, 0xFFFF)
        if flags & ACK:
            self.rcv_adv = seq.max_(self.rcv_adv, seq.add(self.rcv_nxt, window))
            self.last_ack_sent = self.rcv_nxt
        self._push(self.iss, ack, flags, opts, b"", window, now)
        self.stats.sndctrl += 1
        if self._rxtshift:
            self.stats.sndrexmitpack += 1
        self.snd_nxt = seq.add(self.iss, 1)
        self.snd_max = seq.max_(self.snd_max, self.snd_nxt)
        self._rexmt_at = now + self.rtt.rto

    def _resend_synack(self, now: float) -> None:
        if now - self._synack_sent_at >= 0.05:
            self.stats.sndrexmitpack += 1
            self._send_syn(now)

    def _tsval(self, now: float) -> int:
        value = (int(now * 1000) + self._ts_offset) & MASK
        last = self._ts_last
        if last is not None and seq.lt(value, last):
            return last  # a peer drops a segment whose TSval went back (PAWS)
        self._ts_last = value
        return value

    def _window_space(self) -> int:
        """Bytes of the receive buffer not taken by readable data."""
        return max(self.options.rcvbuf - self.readable, 0)

    def _window_field(self) -> int:
        """Return the (scaled) window to advertise and move RCV.ADV (RFC 9293 3.8.6.2.2)."""
        space = self._window_space()
        current = max(seq.diff(self.rcv_adv, self.rcv_nxt), 0)
        if space - current < min(self.options.rcvbuf // 2, self._rcv_mss):
            space = current  # never shrink; open only in steps of an MSS (receiver SWS)
        field = min(space >> self.rcv_wscale, 0xFFFF)
        edge = seq.add(self.rcv_nxt, field << self.rcv_wscale)
        if seq.gt(edge, self.rcv_adv):
            self.rcv_adv = edge
        return field

    def _options_len(self) -> int:
        n = 12 if self.ts_enabled else 0
        if self.sack_enabled and self._reass:
            n += 4 + 8 * min(len(self._reass), 3 if self.ts_enabled else 4)
        return n

    def _push(
        self,
        seq_no: int,
        ack: int,
        flags: int,
        options: bytes,
        payload: bytes | bytearray | memoryview,
        window: int,
        now: float,
        gso_size: int = 0,
    ) -> None:
        data = build(
            self.local_addr,
            self.remote_addr,
            self.local_port,
            self.remote_port,
            seq_no,
            ack,
            flags,
            window,
            options,
            payload,
            partial=gso_size > 0,
        )
        self._out.append(
            Transmit(
                self.local_addr, self.remote_addr, self.local_port, self.remote_port, data, gso_size
            )
        )
        self.stats.sndtotal += 1
        self._last_send = now

    def _emit(
        self,
        seq_no: int,
        ack: int,
        flags: int,
        payload: bytes | bytearray | memoryview,
        now: float,
        window: int | None = None,
        gso_size: int = 0,
    ) -> None:
        """Build and queue one non-SYN segment with the usual options (a super-segment
        of ``gso_size`` segments if set)."""
        opts = b""
        if flags & RST:
            window = 0 if window is None else window
        else:
            if self.ts_enabled:
                opts = ts_option(self._tsval(now), self.ts_recent)
            if self.sack_enabled and self._reass and flags & ACK:
                blocks = self._reass.sack_blocks(self.rcv_nxt, 3 if self.ts_enabled else 4)
                if blocks:
                    opts += sack_option(blocks)
                    self.stats.sndsack += 1
        if window is None:
            window = self._window_field()
            if window == 0:
                self.stats.sndzerowin += 1
        if flags & ACK and not flags & RST:
            self.last_ack_sent = ack
            self._ack_now = False
            self._win_update = False
            self._delack_at = None
            self._unacked_bytes = 0
        self._push(seq_no, ack, flags, opts, payload, window, now, gso_size)

    def _emit_ack(self, now: float) -> None:
        self._emit(self.snd_max, self.rcv_nxt, ACK, b"", now)
        self.stats.sndacks += 1

    def _emit_rst(self, seq_no: int, ack: int, now: float) -> None:
        flags = RST | ACK if ack else RST
        self._emit(seq_no, ack, flags, b"", now, window=0)
        self.stats.sndrst += 1
        self.stats.sndctrl += 1

    def _retransmit(self, start: int, now: float) -> int:
        """Resend one segment from ``start`` (a hole, SND.UNA); return its sequence length."""
        sb = self._send_buf
        data_end = sb.end()
        off = seq.diff(start, sb.seq)
        if off < 0:
            return 0
        cap = self._mss_base - self._options_len()
        length = max(min(cap, seq.diff(data_end, start)), 0)
        if self.scoreboard:  # stop at the next SACKed block
            hole = self.scoreboard.next_hole(self.snd_una, start, seq.add(start, length))
            if hole is not None and hole[0] == start:
                length = seq.sub(hole[1], start)
        fin = (
            self._fin_sent
            and self._fin_queued
            and seq.add(start, length) == data_end
            and seq.lt(data_end, self.snd_max)
        )
        if length == 0 and not fin:
            return 0
        flags = ACK | (FIN if fin else 0) | (PSH if fin or length < cap else 0)
        begin = sb.head + off
        self._emit(start, self.rcv_nxt, flags, sb.data[begin : begin + length], now)
        self.stats.sndrexmitpack += 1
        self.stats.sndrexmitbyte += length
        if self._rexmt_at is None and not self._persist:
            self._rexmt_at = now + self.rtt.rto
        return length + fin

    def _transmit(self, now: float) -> None:
        """Send whatever the windows, Nagle and the state allow (4.4BSD ``tcp_output``)."""
        state = self.state
        sent = False
        if state in SENDING and not self._persist:
            if (
                self.snd_una == self.snd_max
                and self._last_send
                and now - self._last_send > self.rtt.rto
                and self.send_queued
            ):
                self.cc.after_idle()  # RFC 5681 4.1
            if self.cc.in_recovery and self.sack_enabled:
                sent = self._sack_recovery(now)
            else:
                while self._send_new(now, None):
                    sent = True
            if (
                not self._persist
                and self.snd_una == self.snd_max
                and self.unsent
                and self._rexmt_at is None
            ):
                self._enter_persist(now)  # zero window, or a window too small to fill
        if not sent and (self._ack_now or self._win_update) and state != State.CLOSED:
            if self._win_update and not self._ack_now:
                self.stats.sndwinup += 1
            self._emit_ack(now)
        if self._tlp_rearm:
            self._tlp_rearm = False
            self._arm_tail_probe(now)
        if self._readable_pending:
            self._readable_pending = False
            self._out.append(Readable(self))

    def _send_new(self, now: float, budget: int | None) -> bool:
        """Send one segment of new data (or the FIN) at SND.NXT if allowed; True if sent."""
        sb = self._send_buf
        fin_seq = sb.end()
        snd_nxt = self.snd_nxt
        avail = seq.diff(fin_seq, snd_nxt)  # data at and after SND.NXT
        can_fin = (
            self._fin_queued
            and self.state in FIN_STATES
            and not (self._fin_sent and seq.gt(snd_nxt, fin_seq))
        )
        if avail <= 0 and not (can_fin and avail == 0):
            return False
        off = seq.diff(snd_nxt, sb.seq)
        if off < 0:
            return False
        cc = self.cc
        if budget is None:
            wnd = min(self.snd_wnd, cc.cwnd + cc.limited_transmit())
            usable = seq.diff(seq.add(self.snd_una, wnd), snd_nxt)
        else:
            usable = min(budget, seq.diff(seq.add(self.snd_una, self.snd_wnd), snd_nxt))
        cap = self._mss_base - self._options_len()
        retransmit = seq.lt(snd_nxt, self.snd_max)
        most = cap if retransmit or self.tso_size <= cap else self.tso_size
        length = max(min(avail, usable, most), 0)
        if length > cap and length % cap and not (length == avail and snd_nxt == self.snd_una):
            # A super-segment stands for full segments only; a short tail goes on its
            # own below, under Nagle's rule, unless it ends what is queued on an idle
            # connection (when one segment would go anyway).
            length -= length % cap
        fin = can_fin and length == avail
        if length == 0 and not fin:
            return False
        if length < cap and not fin and not retransmit:
            # Nagle (RFC 9293 3.7.4) and sender SWS avoidance (3.8.6.2.1).
            idle = self.snd_una == self.snd_max
            all_queued = length == avail
            if not (
                (all_queued and (idle or self.options.nodelay))
                or (self.max_sndwnd and length * 2 >= self.max_sndwnd)
            ):
                return False
        limited = (
            budget is None
            and cc.limited_transmit()
            and usable > seq.diff(seq.add(self.snd_una, min(self.snd_wnd, cc.cwnd)), snd_nxt)
        )
        flags = ACK
        if fin:
            flags |= FIN
        if length and length == avail:
            flags |= PSH
        begin = sb.head + off
        gso_size = cap if length > cap else 0
        with memoryview(sb.data) as sbuf:  # the segment is built from a view: one copy
            self._emit(snd_nxt, self.rcv_nxt, flags, sbuf[begin : begin + length], now,
                       gso_size=gso_size)  # fmt: skip
        end = seq.add(snd_nxt, length + fin)
        stats = self.stats
        if retransmit:
            stats.sndrexmitpack += 1
            stats.sndrexmitbyte += min(length, seq.diff(self.snd_max, snd_nxt))
        else:
            if length or fin:
                self._tlp_rearm = True
            if length:
                stats.sndpack += -(-length // cap) if gso_size else 1
                stats.sndbyte += length
                stats.sndsuper += 1 if gso_size else 0
            else:
                stats.sndctrl += 1
            if limited:
                stats.limited_transmit += 1
            if self._rtt_seq is None and not self.ts_enabled and length:
                self._rtt_seq = end
                self._rtt_time = now
        if fin:
            self._fin_sent = True
        self.snd_nxt = end
        if seq.gt(end, self.snd_max):
            self.snd_max = end
        if self._rexmt_at is None:
            self._rexmt_at = now + self.rtt.rto
        return True

    def _sack_recovery(self, now: float) -> bool:
        """Send during SACK-based recovery while pipe < cwnd (RFC 6675 5 and NextSeg)."""
        sb = self.scoreboard
        smss = self.mss
        sent = False
        for _ in range(1024):
            una = self.snd_una
            pipe = sb.pipe(una, self.snd_max, self._high_rxt, smss)
            room = self.cc.cwnd - pipe
            if room < smss:
                break
            start = seq.max_(self._high_rxt, una)
            lost_edge = sb.lost_below(una, smss)
            hole = sb.next_hole(una, start, lost_edge)
            if hole is None and self._send_new(now, room):  # rule 2: new data
                sent = True
                continue
            if hole is None:  # rule 3: any hole below the highest SACK
                hole = sb.next_hole(una, start, sb.highest(una))
            if hole is None:
                break
            length = self._retransmit(hole[0], now)
            if not length:
                break
            self.stats.sack_rexmits += 1
            self._high_rxt = seq.add(hole[0], length)
            self._rxt_log.append((hole[0], self._high_rxt, self.snd_max))
            sent = True
        return sent

    # --- results -----------------------------------------------------------------------------

    def _dirty(self) -> None:
        if self.on_dirty is not None:
            self.on_dirty(self)

    def _drain(self) -> list[Output]:
        out = self._out
        self._out = []
        return out

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
