"""Sending (4.4BSD ``tcp_output``): which segments go out now, and the timers sending arms.

:class:`TcpOutput` turns the send buffer, the windows and a pending ACK into
segments.  ``_transmit`` sends what the state, Nagle's algorithm, the
windows, congestion control and SACK recovery allow (new data leaves as one
super-segment of up to :data:`TSO_MAX` bytes when the interface segments
TCP); ``_retransmit`` resends from a sequence number; ``_emit`` adds the
usual options (timestamps, SACK blocks) and the advertised window, which
never shrinks; :meth:`TcpOutput.output` is the entry point after a
program's call.  Arming the timers that sending starts is here too
(retransmission, tail loss probe, persist, keepalive), as 4.4BSD keeps
``tcp_setpersist`` in ``tcp_output.c``; what happens when they expire is
:mod:`~vrouter.transport.tcp.timers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.buffers import Piece
from vrouter.transport.tcp.events import Output, Readable, Transmit
from vrouter.transport.tcp.segment import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    header_from,
    sack_option,
    syn_options,
    ts_option,
)
from vrouter.transport.tcp.state import FIN_STATES, KEEPALIVE, PROBING, SENDING, SYNCHRONIZED, State
from vrouter.transport.tcp.tcb import Tcb

if TYPE_CHECKING:
    from vrouter.transport.tcp.conn import Connection

MASK = seq.MASK
TSO_MAX = 64000
"""Payload of the largest super-segment: with IP and TCP headers below 65535 bytes."""
WORST_DELACK = 0.2
"""Longest a peer may delay an ACK, added to a tail probe's timeout (RFC 8985 WCDelAckT)."""
PERSIST_MIN = 0.2
PERSIST_MAX = 60.0


class TcpOutput(Tcb):
    """Sending: segments from the send buffer and the windows, and the timers that arms."""

    # --- the entry point ---------------------------------------------------------------------

    def output(self, now: float) -> list[Output]:
        """Send what can be sent now and return every pending output (segments, events)."""
        if self.state in SENDING or self.state in SYNCHRONIZED:
            self._transmit(now)
        self._refresh_keepalive(now)
        return self._drain()

    # --- timers that sending arms ------------------------------------------------------------

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
        self._push(self.iss, ack, flags, opts, (), window, now)
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
        payload: Sequence[Piece],
        window: int,
        now: float,
        gso_size: int = 0,
    ) -> None:
        head = header_from(
            self._addr_sum,
            self.local_port,
            self.remote_port,
            seq_no,
            ack,
            flags,
            window,
            options,
            payload,
            gso_size > 0,
        )
        self._out.append(
            Transmit(
                self.local_addr,
                self.remote_addr,
                self.local_port,
                self.remote_port,
                head,
                payload,
                gso_size,
            )
        )
        self.stats.sndtotal += 1
        self._last_send = now

    def _emit(
        self,
        seq_no: int,
        ack: int,
        flags: int,
        payload: Sequence[Piece],
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
        self._emit(self.snd_max, self.rcv_nxt, ACK, (), now)
        self.stats.sndacks += 1

    def _emit_rst(self, seq_no: int, ack: int, now: float) -> None:
        flags = RST | ACK if ack else RST
        self._emit(seq_no, ack, flags, (), now, window=0)
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
        self._emit(start, self.rcv_nxt, flags, sb.pieces(off, length), now)
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
            self._out.append(Readable(cast("Connection", self)))

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
        gso_size = cap if length > cap else 0
        self._emit(snd_nxt, self.rcv_nxt, flags, sb.pieces(off, length), now, gso_size=gso_size)
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
