"""Congestion control: NewReno (RFC 5681 with RFC 6582 fast recovery).

Why NewReno and not CUBIC: it is the standard's baseline, its window
evolution is exact and checkable step by step in tests, and on the paths a
vnet serves (LAN, TAP to the host, tens of milliseconds) CUBIC's advantage
(long fat pipes) does not show.  The class owns the numbers (``cwnd``,
``ssthresh``, the duplicate-ACK count and the recovery point); the
connection tells it what arrived and does the sending it asks for.

* Initial window: RFC 6928, ``min(10*SMSS, max(2*SMSS, 14600))``.
* Slow start: ``cwnd += min(N, L*SMSS)`` per ACK of N new bytes, L = 2
  (RFC 3465 appropriate byte counting, which RFC 5681 3.1 permits).
* Congestion avoidance: byte counting (RFC 5681 3.1 / RFC 3465): once a
  full ``cwnd`` of bytes has been acknowledged, ``cwnd += SMSS``.
* Fast retransmit on the third duplicate ACK, only if the ACK covers more
  than ``recover`` (RFC 6582 3.2 step 2; not with SACK, RFC 6675 5): ``ssthresh = max(FlightSize/2,
  2*SMSS)``, ``cwnd = ssthresh + 3*SMSS``; each further duplicate inflates
  ``cwnd`` by SMSS; a partial ACK retransmits the next hole and deflates
  ``cwnd`` by the bytes it acknowledged (plus SMSS back if that was at least
  SMSS); a full ACK sets ``cwnd = min(ssthresh, max(FlightSize, SMSS) +
  SMSS)``.  The retransmit timer is reset on the first partial ACK only (the
  "impatient" variant, RFC 6582 4).
* Limited transmit (RFC 3042): on the first two duplicate ACKs one new
  segment each may go beyond ``cwnd``.
* With SACK (the peer and we agreed to it), recovery is driven by the
  scoreboard instead of window inflation (RFC 6675's "pipe"): ``cwnd =
  ssthresh`` on entry, no inflation or deflation, the connection keeps
  ``pipe`` below ``cwnd``.  Entering also happens when the scoreboard
  shows the first unacknowledged segment lost (RFC 6675 5 "IsLost").
* Timeout (RFC 5681 3.1 eqn 4, RFC 6582 4): ``ssthresh = max(FlightSize/2,
  2*SMSS)`` on the first expiry only, ``cwnd = 1*SMSS``, ``recover =
  SND.MAX - 1``.
* Restart after idle (RFC 5681 4.1): after more than one RTO without
  sending, ``cwnd`` falls back to the initial window.
"""

from __future__ import annotations

from dataclasses import dataclass

from vrouter.transport.tcp import seq

DUPTHRESH = 3
"""Duplicate ACKs that trigger fast retransmit (RFC 5681 3.2)."""
ABC_LIMIT = 2
"""L of RFC 3465: at most L*SMSS of growth per ACK in slow start."""
INFINITE_SSTHRESH = 1 << 30


def initial_window(smss: int) -> int:
    """Return the initial congestion window for ``smss`` (RFC 6928)."""
    return min(10 * smss, max(2 * smss, 14600))


@dataclass(slots=True)
class NewReno:
    """The congestion state of one connection's sending side."""

    smss: int
    """Sender maximum segment size (payload bytes of a full segment)."""
    cwnd: int = 0
    """Congestion window in bytes (0: set to the initial window)."""
    ssthresh: int = INFINITE_SSTHRESH
    """Slow-start threshold in bytes."""
    sack: bool = False
    """SACK-driven recovery (the connection keeps pipe < cwnd) instead of inflation."""
    dupacks: int = 0
    """Consecutive duplicate ACKs."""
    in_recovery: bool = False
    """In fast recovery."""
    recover: int = 0
    """Highest sequence number sent when recovery (or the last timeout) began."""
    guarding: bool = False
    """``recover`` still holds back fast retransmit (no ACK has gone beyond it yet).

    Once an ACK covers more than ``recover`` the guard is off, so a long
    loss-free run can never wrap the 32-bit comparison against a stale value.
    """
    partial_acks: int = 0
    """Partial ACKs seen in the current recovery."""
    bytes_acked: int = 0
    """Bytes acknowledged in congestion avoidance since ``cwnd`` last grew."""
    recoveries: int = 0
    """Fast recoveries entered."""

    def __post_init__(self) -> None:
        if self.cwnd <= 0:
            self.cwnd = initial_window(self.smss)

    @property
    def slow_start(self) -> bool:
        """Return True while ``cwnd < ssthresh``."""
        return self.cwnd < self.ssthresh

    def set_smss(self, smss: int) -> None:
        """Change SMSS (MSS learnt at the handshake, or a smaller path MTU)."""
        if smss == self.smss:
            return
        scale = self.cwnd / self.smss
        self.smss = smss
        self.cwnd = max(smss, int(scale * smss))

    def limited_transmit(self) -> int:
        """Return the bytes beyond ``cwnd`` that may be sent now (RFC 3042)."""
        if self.in_recovery or not 0 < self.dupacks < DUPTHRESH:
            return 0
        return self.dupacks * self.smss

    def on_ack(self, ack: int, acked: int, flight: int) -> bool:
        """Account an ACK of ``acked`` new bytes; ``flight`` is what stays outstanding.

        Return True if it is a partial ACK in recovery, after which the
        connection retransmits the first unacknowledged segment.
        """
        self.dupacks = 0
        if self.guarding and not self.in_recovery and seq.gt(seq.sub(ack, 1), self.recover):
            self.guarding = False
        if self.in_recovery:
            if seq.gt(ack, self.recover):  # full ACK: covers recover (RFC 6582 3.2 step 3)
                self.in_recovery = False
                self.cwnd = min(self.ssthresh, max(flight, self.smss) + self.smss)
                self.bytes_acked = 0
                return False
            self.partial_acks += 1
            if not self.sack:  # RFC 6582 3.2 step 3 (partial ACK): deflate
                self.cwnd = max(self.cwnd - acked, 0)
                if acked >= self.smss:
                    self.cwnd += self.smss
                self.cwnd = max(self.cwnd, self.smss)
            return True
        if self.cwnd < self.ssthresh:
            self.cwnd += min(acked, ABC_LIMIT * self.smss)
        else:
            self.bytes_acked += acked
            if self.bytes_acked >= self.cwnd:
                self.bytes_acked -= self.cwnd
                self.cwnd += self.smss
        return False

    def on_dupack(self, ack: int, snd_max: int, flight: int, lost: bool = False) -> bool:
        """Account a duplicate ACK; return True if fast retransmit starts now.

        ``lost``: the SACK scoreboard says the first unacknowledged segment
        is lost (enters recovery before the third duplicate).
        """
        self.dupacks += 1
        if self.in_recovery:
            if not self.sack:
                self.cwnd += self.smss  # RFC 6582 3.2 step 4 (inflate)
            return False
        if self.dupacks < DUPTHRESH and not lost:
            return False
        if self.guarding and not self.sack and not seq.gt(seq.sub(ack, 1), self.recover):
            return False  # RFC 6582 3.2 step 2 (RFC 6675 has no such guard)
        self.ssthresh = max(flight // 2, 2 * self.smss)
        self.cwnd = self.ssthresh if self.sack else self.ssthresh + DUPTHRESH * self.smss
        self.recover = seq.sub(snd_max, 1)
        self.guarding = True
        self.in_recovery = True
        self.partial_acks = 0
        self.recoveries += 1
        return True

    def after_repair(self, flight: int) -> None:
        """A loss was repaired outside fast recovery (a tail loss probe, RFC 8985 7.4.2):
        reduce as entering fast recovery would, without entering it."""
        self.ssthresh = max(flight // 2, 2 * self.smss)
        self.cwnd = max(min(self.cwnd, self.ssthresh), self.smss)
        self.bytes_acked = 0

    def on_timeout(self, snd_max: int, flight: int, first: bool) -> None:
        """React to a retransmission timeout (RFC 5681 3.1, RFC 6582 4)."""
        if first:
            self.ssthresh = max(flight // 2, 2 * self.smss)
        self.cwnd = self.smss
        self.bytes_acked = 0
        self.dupacks = 0
        self.in_recovery = False
        self.recover = seq.sub(snd_max, 1)
        self.guarding = True

    def after_idle(self) -> None:
        """Restart from the initial window after an idle period (RFC 5681 4.1)."""
        self.cwnd = min(self.cwnd, initial_window(self.smss))
