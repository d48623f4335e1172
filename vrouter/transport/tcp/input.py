"""Receiving (4.4BSD ``tcp_input``): one arriving segment, checked in RFC 9293 3.10.7's order.

:meth:`TcpInput.receive` handles SYN-SENT (3.10.7.3), a closed connection
(3.10.7.1, answered by a RST) and the synchronized states (3.10.7.4):
timestamps and PAWS (RFC 7323), the acceptability test, RST and SYN with
RFC 5961's challenge ACKs, the ACK (RTT samples, congestion control,
duplicate ACKs and fast retransmit, the SACK scoreboard, the send window,
judging a tail loss probe), the text (trimmed to the window, out-of-order
data to the reassembly queue, delayed ACKs) and the FIN.  What the segment
triggers goes through the state table (``_fire``); what it makes the
connection send goes out through :mod:`~vrouter.transport.tcp.output`
before ``receive`` returns.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, cast

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.events import Output, PeerClosed, Transmit, Writable
from vrouter.transport.tcp.output import TcpOutput
from vrouter.transport.tcp.segment import ACK, FIN, RST, SYN, URG, Segment, reset_for
from vrouter.transport.tcp.state import RECEIVING, State, Trigger

if TYPE_CHECKING:
    from vrouter.transport.tcp.conn import Connection

MASK = seq.MASK
HALF = seq.HALF
_PREDICT_FLAGS = ACK | SYN | FIN | RST | URG
"""The flags header prediction looks at: of these, only ACK may be set."""

PAWS_IDLE = 24 * 24 * 3600.0
"""TS.Recent older than this is no longer used for PAWS (RFC 7323 5.5)."""


class TcpInput(TcpOutput):
    """Receiving: segment processing of RFC 9293 3.10.7."""

    def receive(self, seg: Segment, payload: bytes | memoryview, now: float) -> list[Output]:
        """Process one arriving segment (RFC 9293 3.10.7); return the outputs."""
        state = self.state
        if state is State.ESTABLISHED and self.predict and self._predicted(seg, payload, now):
            pass
        elif state == State.SYN_SENT:
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

    def _predicted(self, seg: Segment, payload: bytes | memoryview, now: float) -> bool:
        """Header prediction (4.4BSD ``tcp_input``, Linux ``tcp_rcv_established``):
        take the two common segments of an ESTABLISHED connection the short way, or
        return False, having changed nothing, to leave the segment to the full path.

        The common segments: ACK (and maybe PSH) alone among the flags, the expected
        sequence number, no SACK blocks, timestamps (if in use) that pass PAWS;
        either a pure ACK of new data, or in-order data that fits the window with
        nothing waiting in the reassembly queue (acknowledging nothing new or new
        data).  Unlike 4.4BSD's, the window may change: the update is the full
        path's few lines (a receiver that reads as data arrives changes its window
        with nearly every ACK, which would leave most ACKs to the full path).  The
        connection is in none of the situations the full path treats apart
        (zero-window probing, a tail loss probe out, our FIN sent, the program gone).
        What the short way does is exactly what :meth:`_rcv_synchronized` does with
        such a segment (the tests compare both: state, buffers and segments sent);
        it only skips the checks that cannot apply, and calls :meth:`_ack_new` as
        the full path does.
        """
        flags = seg.flags
        if flags & _PREDICT_FLAGS != ACK or seg.seq != self.rcv_nxt:
            return False
        window = seg.window << self.snd_wscale
        opts = seg.options
        if opts.sack or self._tlp_high is not None or self._persist or self._fin_sent:
            return False
        ts = opts.ts
        if self.ts_enabled and (ts is None or 0 < ((self.ts_recent - ts[0]) & MASK) < HALF):
            return False  # no timestamps, or older ones (PAWS)
        ack = seg.ack
        una = self.snd_una
        acked = (ack - una) & MASK
        plen = len(payload)
        if plen:
            if self._reass or self._peer_fin_seq is not None or self.app_closed:
                return False
            if plen > max(seq.diff(self.rcv_adv, self.rcv_nxt), 0):  # to be trimmed
                return False
        elif not acked:  # a duplicate ACK or a window probe's answer: the full path
            return False
        if acked and (acked >= HALF or acked > ((self.snd_max - una) & MASK)):
            return False  # older than SND.UNA, or beyond SND.MAX
        # From here on the segment is the full path's, without the checks that fail.
        seg_seq = seg.seq
        self._last_rcv = now
        self._keep_probes = 0
        if ts is not None and self.ts_enabled and ((self.last_ack_sent - seg_seq) & MASK) < HALF:
            self.ts_recent = ts[0]
            self.ts_recent_age = now
        if acked:
            self._ack_new(ack, seg, now)
            self._tlp_rearm = True
        wl1 = self.snd_wl1
        if 0 < ((seg_seq - wl1) & MASK) < HALF or (
            wl1 == seg_seq and ((ack - self.snd_wl2) & MASK) < HALF
        ):
            if window != self.snd_wnd:
                if not plen and ack == self.snd_wl2:
                    self.stats.rcvwinupd += 1
                self.snd_wnd = window
            if window > self.max_sndwnd:
                self.max_sndwnd = window
            self.snd_wl1 = seg_seq
            self.snd_wl2 = ack
            self._probes_unanswered = 0
        if plen:
            self._rcv_in_order(payload, plen, now)
            self.stats.preddat += 1
        else:
            self.stats.predack += 1
        return True

    def _rcv_in_order(self, payload: bytes | memoryview, plen: int, now: float) -> None:
        """:meth:`_rcv_text` for data at RCV.NXT that fits the window, nothing queued."""
        stats = self.stats
        if plen > self._rcv_mss:
            self._rcv_mss = min(plen, self.local_mss)
        self._recv_buf.append(payload)
        self.rcv_nxt = (self.rcv_nxt + plen) & MASK
        stats.rcvpack += 1
        stats.rcvbyte += plen
        unacked = self._unacked_bytes = self._unacked_bytes + plen
        self._readable_pending = True
        if unacked >= 2 * self._rcv_mss:
            self._ack_now = True
        elif self._delack_at is None:
            self._delack_at = now + self.options.delack

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
            self._out.append(Writable(cast("Connection", self)))

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
        self._out.append(PeerClosed(cast("Connection", self)))
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
