"""The timers' expiry (4.4BSD ``tcp_timer``): what a connection does when a deadline passes.

A connection keeps one deadline per timer as a time or None: retransmission,
tail loss probe, persist, keepalive, delayed ACK, and the close after 2*MSL
or the FIN-WAIT-2 timeout.  :meth:`TcpTimers.poll_at` reports the earliest;
:meth:`TcpTimers.on_timer` runs every one that is due: it resends (RFC 6298
5.4-5.6, go-back-N), probes a zero window (RFC 9293 3.8.6.1), sends a tail
loss probe (RFC 8985 7.3) or a keepalive probe (RFC 1122 4.2.3.6), and drops
the connection when the retries run out.  Nothing sleeps: the table keeps
the deadlines in its heap and calls ``on_timer`` with the time.  Arming the
timers is :mod:`~vrouter.transport.tcp.output`'s.
"""

from __future__ import annotations

import errno

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.events import Output
from vrouter.transport.tcp.output import TcpOutput
from vrouter.transport.tcp.segment import ACK, PSH
from vrouter.transport.tcp.state import FIN_STATES, KEEPALIVE, State, Trigger


class TcpTimers(TcpOutput):
    """What each timer does when it expires."""

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
        self._emit(self.snd_una, self.rcv_nxt, ACK | PSH, sb.pieces(off, size), now)
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
        self._emit(seq.sub(self.snd_una, 1), self.rcv_nxt, ACK, (), now)
        self._keep_at = now + o.keepintvl
