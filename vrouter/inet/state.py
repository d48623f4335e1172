"""The inet subsystem's per-vnet state: addresses, knobs, ARP table, counters.

Everything FreeBSD keeps in ``V_ipstat``, ``V_ipforwarding``, ``V_in_ifaddrhead``
and the ARP ``lltable`` lives here, once per vnet.  What attaching the
subsystem sets up is :mod:`vrouter.inet.subsystem`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Protocol

from vrouter.core import tables
from vrouter.core.membership import Listener
from vrouter.core.ratelimit import TokenBucket
from vrouter.core.timers import Deadline
from vrouter.route.dest import DestCache

if TYPE_CHECKING:
    from vrouter.inet.fragment import Reassembly
    from vrouter.link.ifnet import Ifnet
    from vrouter.link.lltable import NeighbourTable

ProtoHandler = Callable[["Ifnet", memoryview, int, bool, float], None]
UdpService = Callable[["Ifnet", bytes, bytes, int, bytes, float], None]
"""A UDP port served in the daemon itself: ``(ifp, src, dst, src_port, payload, now)``."""
"""Local delivery of one protocol: (ifp, IP packet, header length, unicast, now)."""

Punt = Callable[["Ifnet", memoryview, int, bool, float], bool]
"""The mirror's punt hook: (ifp, IP packet, header length, unicast, now) -> taken whole?"""

Pfil = Callable[["Ifnet", memoryview, str, float], bool]
"""A packet filter hook: (interface, IP packet, direction, now) -> pass?"""
IN = "in"
OUT = "out"


class FlowFilter(Protocol):
    """The firewall's flow cache as the fast paths ask it (:mod:`vrouter.firewall.flow`).

    ``admit4``/``admit6`` (interface, buffer, offset of the IP header, legs,
    now) return 1 (the packet's flow is cached and passes), 0 (not cached:
    the full path decides) or -1 (drop it: the flow's state refuses it).
    """

    def admit4(
        self, ifp: Ifnet, buf: bytes | bytearray | memoryview, at: int, legs: int, now: float
    ) -> int: ...

    def admit6(
        self, ifp: Ifnet, buf: bytes | bytearray | memoryview, at: int, legs: int, now: float
    ) -> int: ...
"""Local delivery of one protocol: (ifp, IP packet, header length, unicast, now)."""


@dataclass(slots=True)
class IpStats:
    """IPv4 counters of one vnet, named after FreeBSD's ``struct ipstat``."""

    total: int = 0
    """Packets received."""
    badsum: int = 0
    """Dropped: header checksum wrong."""
    tooshort: int = 0
    """Dropped: shorter than 20 bytes, or than the total length field says."""
    badhlen: int = 0
    """Dropped: IHL below 5 or beyond the packet."""
    badlen: int = 0
    """Dropped: total length smaller than the header."""
    badvers: int = 0
    """Dropped: version field not 4."""
    badsrc: int = 0
    """Dropped: source multicast, broadcast or loopback (a martian)."""
    filtered: int = 0
    """Dropped by the firewall on the way in."""
    filtered_out: int = 0
    """Dropped by the firewall on the way out."""
    delivered: int = 0
    """Delivered to a local protocol."""
    noproto: int = 0
    """Local packets for a protocol nobody handles (protocol unreachable sent)."""
    reassembled: int = 0
    """Datagrams reassembled from fragments addressed to this vnet (details: ``reass``)."""
    forward: int = 0
    """Packets forwarded."""
    martian_dst: int = 0
    """Dropped: destination in 0/8, 127/8 or 240/4, never forwarded (RFC 1812 5.3.7)."""
    cantforward: int = 0
    """Dropped: not for us and forwarding is off."""
    l2bcast: int = 0
    """Dropped: unicast IP in a link-layer broadcast, never forwarded (RFC 1812 5.3.4)."""
    noroute: int = 0
    """Dropped: no route (net unreachable sent)."""
    blackhole: int = 0
    """Dropped by a blackhole route."""
    reject: int = 0
    """Dropped by a reject route (host unreachable sent)."""
    ttl_exceeded: int = 0
    """Dropped: TTL would reach 0 (time exceeded sent)."""
    toolong: int = 0
    """Dropped: larger than the egress MTU with DF set (needfrag sent)."""
    fragmented: int = 0
    """Packets fragmented to fit the egress MTU."""
    ofragments: int = 0
    """Fragments created."""
    localout: int = 0
    """Packets this vnet originated."""
    noroute_out: int = 0
    """Locally originated packets dropped for lack of a route."""


@dataclass(slots=True)
class IcmpStats:
    """ICMP counters of one vnet (FreeBSD ``struct icmpstat``)."""

    in_msgs: int = 0
    """Messages received for this vnet."""
    in_errors: int = 0
    """Messages dropped: too short or bad checksum."""
    in_echo: int = 0
    """Echo requests received."""
    out_echo_reply: int = 0
    """Echo replies sent."""
    in_bcast_echo: int = 0
    """Echo requests to a broadcast address, ignored as Linux and FreeBSD do."""
    out_errors: int = 0
    """Error messages sent (unreachable, time exceeded)."""
    ratelimited: int = 0
    """Error messages suppressed by the rate limit."""
    suppressed: int = 0
    """Error messages not sent by rule: about an error, a fragment, a broadcast."""


@dataclass(slots=True)
class IgmpStats:
    """IGMP counters of one vnet (FreeBSD ``struct igmpstat``)."""

    rcv_queries: int = 0
    """Membership Queries received (IGMPv1, v2 and v3)."""
    rcv_bad: int = 0
    """Queries dropped: malformed (length, checksum, group) or with a TTL other than 1."""
    snd_reports: int = 0
    """Membership Reports sent (state changes and answers to queries)."""


@dataclass(slots=True)
class ArpStats:
    """ARP counters of one vnet."""

    rx_requests: int = 0
    """Requests received."""
    rx_replies: int = 0
    """Replies received."""
    tx_requests: int = 0
    """Requests sent (resolution, refresh and gratuitous)."""
    tx_replies: int = 0
    """Replies sent."""
    rx_dropped: int = 0
    """Received packets dropped (malformed, bogus sender)."""
    dupaddr: int = 0
    """Packets from another station claiming one of our addresses."""
    timeouts: int = 0
    """Resolutions that got no answer; their queued packets were dropped."""
    queue_overflow: int = 0
    """Packets dropped because the per-neighbour hold queue was full."""
    table_full: int = 0
    """Resolutions refused because the table reached its limit."""
    incomplete_full: int = 0
    """Resolutions refused because ``max_incomplete`` entries were resolving (a scan)."""
    ratelimited: int = 0
    """Resolutions refused or given up because the interface's request rate was spent."""
    hold_full: int = 0
    """Packets not held because the held packets reached ``hold_maxbytes``."""


def stats_dict(stats: object) -> dict[str, int]:
    """Return a counters dataclass as a name -> value dict."""
    return {f.name: getattr(stats, f.name) for f in fields(stats)}  # type: ignore[arg-type]


@dataclass(slots=True)
class InetState:
    """Per-vnet IPv4 state."""

    arp: NeighbourTable
    """Neighbour cache and its queues."""
    reass: Reassembly
    """Reassembly of fragments addressed to this vnet."""
    forwarding: bool = True
    """``net.inet.ip.forwarding``: route packets not addressed to this vnet."""
    ttl: int = 64
    """``net.inet.ip.ttl``: TTL of packets this vnet originates."""
    icmp_errrate: int = 200
    """``net.inet.icmp.errratelimit``: ICMP errors per second, 0 = unlimited."""
    local: dict[bytes, Ifnet] = field(default_factory=dict)
    """Our addresses (4 bytes) and the interface each is on."""
    broadcasts: set[bytes] = field(default_factory=set)
    """Directed broadcast addresses of our connected networks."""
    protocols: dict[int, ProtoHandler] = field(default_factory=tables.empty)
    udp_services: dict[int, UdpService] = field(default_factory=dict)
    """UDP ports the daemon serves itself (a DHCP server), by port, ahead of any socket."""
    """Local delivery by IP protocol number."""
    offload_protocols: dict[int, ProtoHandler] = field(default_factory=tables.empty)
    """Local delivery of packets that still carry offload work from the host (a partial
    checksum, a TCP super-frame), for protocols that take them whole: the checksum
    need not be checked (the bytes never crossed a wire), nothing is cut."""
    pfil: Pfil | None = None
    """The packet filter hook (FreeBSD's pfil), None when no firewall is active."""
    flows: FlowFilter | None = None
    """The filter's flow cache, asked by the fast path when ``pfil`` is set; None: the
    fast path leaves every packet to ``pfil``."""
    punt: Punt | None = None
    """The control-plane mirror's share of local traffic (:mod:`vrouter.mirror.punt`),
    None when the vnet has no mirror."""
    stats: IpStats = field(default_factory=IpStats)
    icmp: IcmpStats = field(default_factory=IcmpStats)
    igmp: IgmpStats = field(default_factory=IgmpStats)
    groups: dict[str, set[bytes]] = field(default_factory=dict)
    """IPv4 multicast groups sockets joined, per interface name (IGMP reports them)."""
    listeners: dict[str, Listener] = field(default_factory=dict)
    """IGMP reporting state per interface (:mod:`vrouter.inet.igmp`)."""
    arpstat: ArpStats = field(default_factory=ArpStats)
    ident: int = 0
    """Last IP identification used."""
    reass_deadline: Deadline = field(default_factory=Deadline)
    """The pending reassembly timeout."""
    icmp_bucket: TokenBucket = field(default_factory=TokenBucket)
    """Spent by every ICMP error sent (the rate is the errratelimit knob)."""
    dests: DestCache = field(default_factory=DestCache)
    """Forwarded-to destinations: route, egress, neighbour (:mod:`vrouter.route.dest`)."""
