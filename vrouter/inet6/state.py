"""The inet6 subsystem's per-vnet state: addresses, groups, ND, RA, counters.

Everything FreeBSD keeps in ``V_ip6stat``, ``V_ip6_forwarding``,
``V_in6_ifaddrhead`` and the ND ``lltable`` lives here, once per vnet.  What
attaching the subsystem sets up is :mod:`vrouter.inet6.subsystem`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core.ratelimit import TokenBucket
from vrouter.core.timers import Deadline, Timer
from vrouter.route.dest import DestCache

if TYPE_CHECKING:
    from vrouter.inet.fragment import Reassembly
    from vrouter.inet.state import FlowFilter, Pfil
    from vrouter.inet6.nd import NdTable, RaState
    from vrouter.link.ifnet import Ifnet

Proto6Handler = Callable[["Ifnet", memoryview, int, bool, float], None]
"""Local delivery of one protocol: (ifp, IPv6 packet, upper-layer offset, unicast, now)."""
Punt6 = Callable[["Ifnet", memoryview, int, int, bool, float], bool]
"""The mirror's punt hook: (ifp, packet, upper-layer offset, protocol, unicast, now)."""

TENTATIVE = "tentative"
PREFERRED = "preferred"
DUPLICATED = "duplicated"


@dataclass(slots=True)
class Addr6:
    """One IPv6 address of an interface and its DAD state (RFC 4862)."""

    address: bytes
    prefixlen: int
    ifnet: Ifnet
    state: str = TENTATIVE
    probes: int = 0
    timer: Timer | None = None

    @property
    def usable(self) -> bool:
        """Return True once DAD has passed."""
        return self.state == PREFERRED

    @property
    def link_local(self) -> bool:
        """Return True for fe80::/10."""
        return self.address[0] == 0xFE and self.address[1] & 0xC0 == 0x80


@dataclass(slots=True)
class Ip6Stats:
    """IPv6 counters of one vnet, named after FreeBSD's ``struct ip6stat``."""

    total: int = 0
    """Packets received."""
    tooshort: int = 0
    """Dropped: shorter than 40 bytes or than the payload length says."""
    badvers: int = 0
    """Dropped: version field not 6."""
    jumbogram: int = 0
    """Dropped: jumbo payload (not supported)."""
    badsrc: int = 0
    """Dropped: multicast or loopback source, or unspecified where not allowed."""
    badext: int = 0
    """Dropped: malformed or refused extension header chain (parameter problem sent where due)."""
    notmember: int = 0
    """Dropped: multicast to a group no interface joined."""
    tentative: int = 0
    """Dropped: to one of our addresses that is tentative (DAD running) or duplicated."""
    l2multicast: int = 0
    """Dropped: unicast IPv6 in a link-layer multicast frame, never forwarded."""
    filtered: int = 0
    """Dropped by the firewall on the way in."""
    filtered_out: int = 0
    """Dropped by the firewall on the way out."""
    delivered: int = 0
    """Delivered to a local protocol."""
    noproto: int = 0
    """Local packets for an unknown next header (parameter problem sent)."""
    forward: int = 0
    """Packets forwarded."""
    cantforward: int = 0
    """Dropped: not for us and forwarding is off."""
    badscope: int = 0
    """Dropped: link-local source or destination would leave its link."""
    noroute: int = 0
    """Dropped: no route (destination unreachable sent)."""
    blackhole: int = 0
    """Dropped by a blackhole route."""
    reject: int = 0
    """Dropped by a reject route (destination unreachable code 6 sent)."""
    hoplimit_exceeded: int = 0
    """Dropped: hop limit would reach 0 (time exceeded sent)."""
    toobig: int = 0
    """Dropped: larger than the egress MTU (packet too big sent)."""
    localout: int = 0
    """Packets this vnet originated."""
    noroute_out: int = 0
    """Locally originated packets dropped for lack of a route."""
    fragmented: int = 0
    """Locally originated packets sent in fragments."""


@dataclass(slots=True)
class Icmp6Stats:
    """ICMPv6 and ND counters of one vnet (FreeBSD ``struct icmp6stat``/``nd6``)."""

    in_msgs: int = 0
    """Messages received for this vnet."""
    in_errors: int = 0
    """Messages dropped: too short or bad checksum."""
    in_echo: int = 0
    """Echo requests received."""
    out_echo_reply: int = 0
    """Echo replies sent."""
    in_error_msgs: int = 0
    """Error messages received (unreachable, too big, time exceeded, parameter problem)."""
    in_toobig: int = 0
    """Packet Too Big received (path MTU learnt)."""
    out_errors: int = 0
    """Error messages sent."""
    ratelimited: int = 0
    """Error messages suppressed by the rate limit."""
    suppressed: int = 0
    """Error messages not sent by rule (RFC 4443 2.4 (e))."""
    nd_bad: int = 0
    """ND messages failing RFC 4861 validation (hop limit, code, options)."""
    in_ns: int = 0
    """Neighbor Solicitations received."""
    in_na: int = 0
    """Neighbor Advertisements received."""
    in_rs: int = 0
    """Router Solicitations received."""
    in_ra: int = 0
    """Router Advertisements received."""
    in_redirect: int = 0
    """Redirects received (ignored: this node does not act on them)."""
    out_ns: int = 0
    """Neighbor Solicitations sent (resolution, NUD probes, DAD)."""
    out_na: int = 0
    """Neighbor Advertisements sent."""
    out_ra: int = 0
    """Router Advertisements sent."""
    dad_duplicates: int = 0
    """Addresses found duplicated by DAD."""
    nd_timeouts: int = 0
    """Resolutions that failed; their held packets were dropped."""
    nd_queue_overflow: int = 0
    """Packets dropped because a neighbour's hold queue was full."""
    nd_table_full: int = 0
    """Resolutions refused because the table reached its limit."""
    nd_incomplete_full: int = 0
    """Resolutions refused because ``max_incomplete`` entries were resolving (a scan)."""
    nd_ratelimited: int = 0
    """Resolutions refused or given up because the interface's solicitation rate was spent."""
    nd_hold_full: int = 0
    """Packets not held because the held packets reached ``hold_maxbytes``."""


@dataclass(slots=True)
class Inet6State:
    """Per-vnet IPv6 state."""

    nd: NdTable
    """Neighbour cache with NUD."""
    reass: Reassembly
    """Reassembly of fragments addressed to this vnet."""
    forwarding: bool = True
    """``net.inet6.ip6.forwarding``: route packets not addressed to this vnet."""
    hop_limit: int = 64
    """``net.inet6.ip6.hlim``: hop limit of packets this vnet originates."""
    icmp6_errrate: int = 200
    """``net.inet6.icmp6.errratelimit``: ICMPv6 errors per second, 0 = unlimited."""
    dad_transmits: int = 1
    """``net.inet6.ip6.dad_count``: DAD probes per new address, 0 = no DAD."""
    local: dict[bytes, Addr6] = field(default_factory=dict)
    """Global (non-link-local) addresses."""
    linklocal: dict[tuple[str, bytes], Addr6] = field(default_factory=dict)
    """Link-local addresses by (interface name, address)."""
    groups: dict[str, set[bytes]] = field(default_factory=dict)
    """Multicast groups joined, per interface name."""
    ra: dict[str, RaState] = field(default_factory=dict)
    """Router advertisement state of interfaces that advertise."""
    protocols: dict[int, Proto6Handler] = field(default_factory=dict)
    """Local delivery by next header."""
    offload_protocols: dict[int, Proto6Handler] = field(default_factory=dict)
    """Local delivery of packets that still carry offload work from the host (a partial
    checksum, a TCP super-frame) right after the fixed header, for protocols that take
    them whole: the checksum need not be checked, nothing is cut."""
    pfil: Pfil | None = None
    """The packet filter hook, None when no firewall is active."""
    flows: FlowFilter | None = None
    """The filter's flow cache, asked by the fast path when ``pfil`` is set."""
    punt: Punt6 | None = None
    """The control-plane mirror's share of local traffic (:mod:`vrouter.mirror.punt`),
    None when the vnet has no mirror."""
    pmtu: dict[bytes, tuple[int, float]] = field(default_factory=dict)
    """Path MTU learnt from Packet Too Big: destination -> (mtu, expiry)."""
    dests: DestCache = field(default_factory=DestCache)
    """Forwarded-to destinations: route, egress, neighbour (:mod:`vrouter.route.dest`)."""
    stats: Ip6Stats = field(default_factory=Ip6Stats)
    icmp: Icmp6Stats = field(default_factory=Icmp6Stats)
    frag_ident: int = 0
    reass_deadline: Deadline = field(default_factory=Deadline)
    """The pending reassembly timeout."""
    icmp_bucket: TokenBucket = field(default_factory=TokenBucket)
    """Spent by every ICMP error sent (the rate is the errratelimit knob)."""
    rng: random.Random = field(default_factory=random.Random)
    """This vnet's source of the RFC 4861 jitter (ReachableTime, RA intervals and
    delays), seeded from the system; tests set a seeded one."""

    def addrs_of(self, ifp: Ifnet) -> list[Addr6]:
        """Return the addresses of ``ifp``, link-local first."""
        found = [a for (name, _), a in self.linklocal.items() if name == ifp.name]
        found.extend(a for a in self.local.values() if a.ifnet is ifp)
        return found
