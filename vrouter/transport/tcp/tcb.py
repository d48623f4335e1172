"""The transmission control block: every variable of one connection, and its state change.

:class:`Tcb` is the bottom layer of a
:class:`~vrouter.transport.tcp.conn.Connection`, 4.4BSD's ``struct tcpcb``:
the sequence space of RFC 9293 3.3.1, the negotiated options, the buffers,
the congestion and RTT state, the timer deadlines and the outputs waiting
to be collected.  Every attribute is set in ``__init__``.  The layers above
it, each a class of methods on the same object, call only downwards:

* :mod:`~vrouter.transport.tcp.output` (``tcp_output``) builds and sends
  segments and arms the timers that sending starts;
* :mod:`~vrouter.transport.tcp.input` (``tcp_input``) and
  :mod:`~vrouter.transport.tcp.timers` (``tcp_timer``) call output, never
  each other;
* :mod:`~vrouter.transport.tcp.conn` (``tcp_usrreq``) joins the two and
  adds the program's calls.

As methods of one object, the layers add nothing per segment: a call
between them is the method call it was before the split, and the variables
stay plain instance attributes.  The state change (:meth:`Tcb._fire`,
:meth:`Tcb._drop`) lives here because every layer needs it.  A layer is never
instantiated alone, so the events it creates name ``self`` as the
:class:`~vrouter.transport.tcp.conn.Connection` it is (a ``cast`` for the
type checker).  ``tests/unit/transport/tcp/test_layers.py`` checks that each
layer imports and calls only the layers below it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.buffers import ReceiveBuffer, SendBuffer
from vrouter.transport.tcp.congestion import NewReno
from vrouter.transport.tcp.events import Closed, Connected, Output, Reset
from vrouter.transport.tcp.options import TcpOptions, window_shift
from vrouter.transport.tcp.rto import RttEstimator
from vrouter.transport.tcp.sack import ReassemblyQueue, Scoreboard
from vrouter.transport.tcp.segment import HEADER_LEN, addresses_sum
from vrouter.transport.tcp.state import CAN_QUEUE, SYNCHRONIZED, TRANSITIONS, State, Trigger
from vrouter.transport.tcp.stats import TcpStats

if TYPE_CHECKING:
    from vrouter.transport.tcp.conn import Connection

MASK = seq.MASK
DEFAULT_MSS = {4: 536, 6: 1220}
"""Send MSS when the peer's SYN has no MSS option (RFC 9293 3.7.1, RFC 8200 5)."""

Endpoint = tuple[bytes, int]
"""An address (4 or 16 bytes) and a port."""


class Tcb:
    """The variables of one TCP connection (``local`` to ``remote``) and its state change."""

    predict = True
    """Header prediction (:meth:`~vrouter.transport.tcp.input.TcpInput._predicted`) on;
    a class attribute, so the tests can compare it with the full path, per connection
    or for every connection."""

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
        self._addr_sum = addresses_sum(self.local_addr, self.remote_addr)
        """The addresses' share of every segment's pseudo-header checksum."""
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

    # --- segment sizes -----------------------------------------------------------------------

    def _clamp_mss(self, mss: int) -> int:
        if self.options.mss:
            mss = min(mss, self.options.mss)
        return max(mss, 64)

    def _rcv_wscale_choose(self) -> None:
        self.rcv_wscale = window_shift(self.options)

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

    # --- queues ------------------------------------------------------------------------------

    @property
    def readable(self) -> int:
        """Return how many bytes ``recv`` can return now."""
        return len(self._recv_buf)

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

    def _fin_seq(self) -> int:
        return self._send_buf.end()

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
            self._out.append(Connected(cast("Connection", self)))
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
            self._out.append(Closed(cast("Connection", self)))

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
            self._out.append(Reset(cast("Connection", self), code))
        self._fire(Trigger.RESET, now)

    # --- results -----------------------------------------------------------------------------

    def _drain(self) -> list[Output]:
        out = self._out
        self._out = []
        return out
