"""Per-vnet TCP counters, in the spirit of FreeBSD's ``struct tcpstat``.

One :class:`TcpStats` lives in each vnet's TCP table; every connection of
that vnet counts into it.  Plain integers, read by ``netstat``/metrics at
scrape time; every early return in the TCP code bumps one of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class TcpStats:
    """TCP counters of one vnet."""

    # connections
    connattempt: int = 0
    """Active opens: SYNs sent for ``connect()`` (tcps_connattempt)."""
    accepts: int = 0
    """Passive opens: connections that completed the handshake on a listener (tcps_accepts)."""
    connects: int = 0
    """Connections that reached ESTABLISHED, active or passive (tcps_connects)."""
    drops: int = 0
    """Established connections that ended by a reset or a timeout (tcps_drops)."""
    conndrops: int = 0
    """Connections dropped before reaching ESTABLISHED (tcps_conndrops)."""
    closed: int = 0
    """Connections that reached CLOSED, however (tcps_closed)."""
    refused: int = 0
    """Active opens answered by a RST (ECONNREFUSED)."""
    timeoutdrop: int = 0
    """Connections dropped because retransmissions were exhausted (tcps_timeoutdrop)."""
    keepdrops: int = 0
    """Connections dropped because keepalive probes went unanswered (tcps_keepdrops)."""
    aborted: int = 0
    """Connections aborted locally: ``abort()``, close with unread data, data after close."""

    # sent
    sndtotal: int = 0
    """Segments sent (tcps_sndtotal)."""
    sndpack: int = 0
    """Segments with new data sent (tcps_sndpack)."""
    sndbyte: int = 0
    """New data bytes sent (tcps_sndbyte)."""
    sndsuper: int = 0
    """Super-segments of new data handed to the IP layer (TSO); ``sndpack`` counts the
    segments they stand for."""
    sndrexmitpack: int = 0
    """Segments retransmitted, by timeout, fast retransmit or recovery (tcps_sndrexmitpack)."""
    sndrexmitbyte: int = 0
    """Data bytes retransmitted (tcps_sndrexmitbyte)."""
    sndacks: int = 0
    """Pure ACKs sent (tcps_sndacks)."""
    delack: int = 0
    """ACKs sent because the delayed-ACK timer expired (tcps_delack)."""
    sndprobe: int = 0
    """Zero-window probes sent (tcps_sndprobe)."""
    sndwinup: int = 0
    """Window updates sent after the program read data (tcps_sndwinup)."""
    sndctrl: int = 0
    """Control segments sent: SYN, SYN-ACK, FIN without data, RST (tcps_sndctrl)."""
    sndrst: int = 0
    """RSTs sent, by connections or for segments no connection wanted."""
    sndsack: int = 0
    """Segments sent carrying SACK blocks."""
    sndzerowin: int = 0
    """Segments advertising a zero window (a slow reader)."""

    # received
    rcvtotal: int = 0
    """Segments received for this vnet's TCP (tcps_rcvtotal)."""
    rcvbadsum: int = 0
    """Segments with a bad checksum (tcps_rcvbadsum)."""
    rcvbadoff: int = 0
    """Segments with a bad data offset (tcps_rcvbadoff)."""
    rcvshort: int = 0
    """Segments too short for a TCP header (tcps_rcvshort)."""
    rcvpack: int = 0
    """In-sequence data segments (tcps_rcvpack)."""
    rcvbyte: int = 0
    """In-sequence data bytes (tcps_rcvbyte)."""
    rcvduppack: int = 0
    """Wholly duplicate data segments (tcps_rcvduppack)."""
    rcvdupbyte: int = 0
    """Duplicate data bytes (tcps_rcvdupbyte)."""
    rcvpartduppack: int = 0
    """Segments partly duplicate (tcps_rcvpartduppack)."""
    rcvoopack: int = 0
    """Out-of-order data segments queued for reassembly (tcps_rcvoopack)."""
    rcvoobyte: int = 0
    """Out-of-order data bytes queued (tcps_rcvoobyte)."""
    rcvpackafterwin: int = 0
    """Segments with data beyond the window, trimmed or dropped (tcps_rcvpackafterwin)."""
    rcvbyteafterwin: int = 0
    """Bytes beyond the window dropped (tcps_rcvbyteafterwin)."""
    rcvwinprobe: int = 0
    """Zero-window probes received (tcps_rcvwinprobe)."""
    rcvdupack: int = 0
    """Duplicate ACKs received (tcps_rcvdupack)."""
    rcvacktoomuch: int = 0
    """ACKs for data not yet sent (tcps_rcvacktoomuch)."""
    rcvackpack: int = 0
    """ACKs that acknowledged new data (tcps_rcvackpack)."""
    rcvackbyte: int = 0
    """Bytes acknowledged by received ACKs (tcps_rcvackbyte)."""
    rcvwinupd: int = 0
    """Window updates received (tcps_rcvwinupd)."""
    predack: int = 0
    """Pure ACKs of new data taken by header prediction (tcps_predack)."""
    preddat: int = 0
    """In-order data segments taken by header prediction (tcps_preddat)."""
    rcvafterclose: int = 0
    """Data segments that arrived after the program closed (answered by RST)."""
    rcvunacceptable: int = 0
    """Segments outside the receive window (answered by an ACK, RFC 9293 3.10.7.4)."""
    rcvnoack: int = 0
    """Segments without ACK in a synchronized state (dropped)."""
    rcvsackblocks: int = 0
    """SACK blocks received."""
    rcvmemdrop: int = 0
    """Data dropped because the reassembly queue would exceed the receive buffer."""

    # timers
    rexmttimeo: int = 0
    """Retransmission timer expiries (tcps_rexmttimeo)."""
    persisttimeo: int = 0
    """Persist timer expiries (tcps_persisttimeo)."""
    keeptimeo: int = 0
    """Keepalive timer expiries (tcps_keeptimeo)."""
    keepprobe: int = 0
    """Keepalive probes sent (tcps_keepprobe)."""
    rttupdated: int = 0
    """RTT samples taken (tcps_rttupdated)."""
    finwait2_drops: int = 0
    """Orphaned FIN-WAIT-2 connections closed by their timeout (tcps_finwait2_drops)."""

    # recovery
    tailprobes: int = 0
    """Tail loss probes sent (RFC 8985 7; Linux TCPLossProbes)."""
    tailprobe_recoveries: int = 0
    """Probes whose answer showed they repaired a loss (no D-SACK; Linux TCPLossProbeRecovery)."""
    fastrexmit: int = 0
    """Fast retransmits on duplicate ACKs (tcps_sack_recovery_episode + NewReno)."""
    partialacks: int = 0
    """Partial ACKs in recovery, each retransmitting the next hole."""
    sack_rexmits: int = 0
    """Segments retransmitted from the SACK scoreboard (tcps_sack_rexmits)."""
    rexmit_lost: int = 0
    """Retransmissions found lost by later SACKs and resent without waiting for the timer."""
    limited_transmit: int = 0
    """Segments sent by limited transmit (RFC 3042)."""

    # RFC 5961, RFC 7323
    challenge_ack: int = 0
    """Challenge ACKs sent for an in-window RST, a SYN or an old ACK (RFC 5961)."""
    challenge_ack_limited: int = 0
    """Challenge ACKs suppressed by the per-vnet rate limit (RFC 5961 7)."""
    rst_accepted: int = 0
    """RSTs that reset a connection (exact sequence number)."""
    rst_ignored: int = 0
    """RSTs dropped: outside the window, or not acknowledging our SYN."""
    paws_drops: int = 0
    """Segments dropped by PAWS: timestamp older than TS.Recent (RFC 7323 5)."""
    ts_missing: int = 0
    """Segments dropped for lacking timestamps once negotiated (RFC 7323 3.2)."""

    # listeners and tables
    listen_overflows: int = 0
    """SYNs (or handshake ACKs) dropped because a listener's accept queue was full."""
    syn_queue_overflows: int = 0
    """SYNs dropped because the vnet's half-open (SYN) queue was full (SYN flood)."""
    syncookies_sent: int = 0
    """SYN-ACKs sent with a SYN cookie because the SYN queue was full."""
    syncookies_recv: int = 0
    """ACKs with a valid SYN cookie that became connections."""
    syncookies_failed: int = 0
    """ACKs to a listener whose cookie did not check (answered by RST)."""
    synack_drops: int = 0
    """Half-open connections given up after their SYN-ACK retries."""
    noport: int = 0
    """Segments for no connection or listener (answered by RST; tcps_noport)."""
    badsyn: int = 0
    """Bogus segments to a listener (SYN with RST/FIN, or a broadcast) dropped."""
    tw_recycled: int = 0
    """TIME-WAIT connections ended early by an acceptable new SYN (RFC 6191)."""
    tw_evicted: int = 0
    """TIME-WAIT connections dropped because the vnet's TIME-WAIT table was full."""
    tw_expired: int = 0
    """TIME-WAIT connections that ran their 2*MSL."""
    port_exhausted: int = 0
    """Connects that found no free ephemeral port."""

    def as_dict(self) -> dict[str, int]:
        """Return the counters by name (netstat, metrics)."""
        return asdict(self)
