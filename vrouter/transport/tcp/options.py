"""A connection's settings: socket options and the vnet's TCP tunables."""

from __future__ import annotations

from dataclasses import dataclass

from vrouter.transport.tcp.segment import MAX_WSCALE

WSCALE_ROOM = 4 << 20
"""Receive window the window-scale shift leaves room for (the buffer may grow to it)."""


@dataclass(slots=True)
class TcpOptions:
    """Per-connection settings (socket options and the vnet's TCP tunables).

    A listener's options are copied into every connection it accepts; the
    fields may be changed on a live connection (call ``output(now)`` after).
    """

    nodelay: bool = False
    """TCP_NODELAY: send small segments at once instead of waiting (Nagle off)."""
    keepalive: bool = False
    """SO_KEEPALIVE: probe an idle connection and drop it when the peer is gone."""
    keepidle: float = 7200.0
    """TCP_KEEPIDLE: idle seconds before the first keepalive probe (RFC 1122: >= 2 h)."""
    keepintvl: float = 75.0
    """TCP_KEEPINTVL: seconds between unanswered keepalive probes."""
    keepcnt: int = 9
    """TCP_KEEPCNT: unanswered probes before the connection is dropped."""
    sndbuf: int = 1024 * 1024
    """SO_SNDBUF: bytes of unacknowledged plus unsent data ``send`` accepts.

    Large enough for the bandwidth-delay product of a TAP host at gigabits per
    second, where the delay is mostly the daemon's own turn-around (a fraction
    of a millisecond); a buffer only takes memory as far as it is filled."""
    rcvbuf: int = 1024 * 1024
    """SO_RCVBUF: bytes of received data held (readable plus the window)."""
    mss: int = 0
    """TCP_MAXSEG: upper bound of the MSS advertised and used (0: from the MTU only)."""
    window_scaling: bool = True
    """Offer window scaling (RFC 7323 2)."""
    timestamps: bool = True
    """Offer timestamps (RFC 7323 3)."""
    sack: bool = True
    """Offer SACK (RFC 2018)."""
    min_rto: float = 0.2
    """Lower bound of the RTO (RFC 6298 2.4 says 1 s; 0.2 s is Linux's, fit for LANs)."""
    max_rto: float = 60.0
    """Upper bound of the RTO."""
    initial_rto: float = 1.0
    """RTO before the first RTT sample (RFC 6298 2.1)."""
    delack: float = 0.04
    """Longest an ACK is delayed (RFC 9293 3.8.6.3: < 0.5 s; Linux's 40 ms)."""
    msl: float = 30.0
    """Maximum segment lifetime: TIME-WAIT lasts 2*MSL (Linux: 60 s in all)."""
    syn_retries: int = 6
    """SYN retransmissions before connect fails with ETIMEDOUT."""
    synack_retries: int = 5
    """SYN-ACK retransmissions before a half-open connection is dropped."""
    max_retries: int = 15
    """Retransmissions of data (or probes unanswered) before ETIMEDOUT (Linux tcp_retries2)."""
    tail_probe: bool = True
    """Send tail loss probes (RFC 8985 7) when SACK was negotiated."""
    fin_wait2_timeout: float = 60.0
    """How long a closed (orphaned) connection waits in FIN-WAIT-2 for the peer's FIN."""


def window_shift(options: TcpOptions) -> int:
    """Return the window scale we offer: room for ``rcvbuf`` and at least 4 MiB."""
    shift = 0
    if options.window_scaling:
        room = max(options.rcvbuf, WSCALE_ROOM)
        while shift < MAX_WSCALE and room >> shift > 0xFFFF:
            shift += 1
    return shift
