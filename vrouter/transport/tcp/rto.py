"""The retransmission timeout (RFC 6298), with exponential backoff.

:class:`RttEstimator` keeps SRTT and RTTVAR from round-trip samples and
computes RTO (section 2); :meth:`RttEstimator.on_timeout` doubles it (5.5)
up to ``max_rto``.  Which samples are valid is the caller's business:
without timestamps the connection times one segment at a time and never a
retransmitted one (Karn's algorithm, section 3); with timestamps (RFC 7323
section 4) every ACK that advances SND.UNA gives a sample from its TSecr.

Defaults are the RFC's (``min_rto`` 1 s, initial RTO 1 s, ``max_rto``
60 s, ``alpha`` 1/8, ``beta`` 1/4, ``K`` 4).  The connection passes its own
``min_rto`` (see :class:`~vrouter.transport.tcp.options.TcpOptions`).
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHA = 1 / 8
BETA = 1 / 4
K = 4
SYN_TIMEOUT_RTO = 3.0
"""RFC 6298 5.7: the RTO once data flows after a SYN or SYN-ACK timed out."""


@dataclass(slots=True)
class RttEstimator:
    """SRTT, RTTVAR and the RTO of one connection (all in seconds)."""

    min_rto: float = 1.0
    """Lower bound of RTO (RFC 6298 2.4: SHOULD be 1 s; Linux uses 0.2 s)."""
    max_rto: float = 60.0
    """Upper bound of RTO, backed off or not (RFC 6298 2.5 allows at least 60 s)."""
    initial_rto: float = 1.0
    """RTO before any sample (RFC 6298 2.1)."""
    granularity: float = 0.001
    """Clock granularity G (RFC 6298 2.3)."""
    srtt: float | None = None
    """Smoothed round-trip time; None until the first sample."""
    rttvar: float = 0.0
    """Round-trip time variation."""
    base: float = 0.0
    """RTO before backoff (set from ``initial_rto`` on first use)."""
    backoff: int = 0
    """How many times the timer has expired since the last valid sample."""
    samples: int = 0
    """Valid samples taken."""

    def __post_init__(self) -> None:
        self.base = self.initial_rto

    @property
    def rto(self) -> float:
        """Return the current RTO, backoff applied and clamped to ``max_rto``."""
        return min(self.base * (1 << min(self.backoff, 30)), self.max_rto)

    def sample(self, r: float) -> None:
        """Take a round-trip measurement ``r`` (RFC 6298 2.2 and 2.3); ends any backoff."""
        r = max(r, 0.0)
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r / 2
        else:
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - r)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * r
        self.base = min(
            max(self.min_rto, self.srtt + max(self.granularity, K * self.rttvar)), self.max_rto
        )
        self.backoff = 0
        self.samples += 1

    def on_timeout(self) -> None:
        """Back the timer off after it expired (RFC 6298 5.5): RTO doubles, up to the max."""
        if self.rto < self.max_rto:
            self.backoff += 1

    def after_syn_timeout(self) -> None:
        """Restart from RTO = 3 s once data flows after a timed-out SYN (RFC 6298 5.7)."""
        self.srtt = None
        self.rttvar = 0.0
        self.base = max(SYN_TIMEOUT_RTO, self.min_rto)
        self.backoff = 0
