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

from vrouter.core import tables
from vrouter.core.membership import Listener
from vrouter.core.ratelimit import TokenBucket
from vrouter.core.timers import Deadline, Timer
from vrouter.route.dest import DestCache

if TYPE_CHECKING:
    from vrouter.inet.fragment import Reassembly
    from vrouter.inet.state import FlowFilter, Pfil
    from vrouter.inet6.dhcp6 import Dhcp6Settings
    from vrouter.inet6.nd import NdTable, RaState
    from vrouter.link.ifnet import Ifnet
    from vrouter.wire.ndp import RouterAdvertisement

Proto6Handler = Callable[["Ifnet", memoryview, int, bool, float], None]
"""Local delivery of one protocol: (ifp, IPv6 packet, upper-layer offset, unicast, now)."""
Punt6 = Callable[["Ifnet", memoryview, int, int, bool, float], bool]
"""The mirror's punt hook: (ifp, packet, upper-layer offset, protocol, unicast, now)."""
RaInput = Callable[["Ifnet", bytes, "RouterAdvertisement", bytes, float], None]
"""A host's use of a valid RA: (ifp, the router's link-local, the RA, its options, now)."""
UdpService = Callable[["Ifnet", memoryview, int, bool, float], bool]
"""A service of the vnet itself on a UDP port: (ifp, IPv6 packet, UDP offset, unicast,
now); False if it does not serve ``ifp`` (the datagram goes on to the sockets)."""
GroupChanged = Callable[["Ifnet", bytes, bool], None]
"""Told when an interface joins (True) or leaves (False) a multicast group."""
LinkLocalReady = Callable[["Ifnet", float], None]
"""Called when an interface's link-local address passes DAD."""

TENTATIVE = "tentative"
PREFERRED = "preferred"
DUPLICATED = "duplicated"


SYSTEM_RNG = random.SystemRandom()
"""Draws from the kernel's generator: shared by the vnets without a generator of their own."""


@dataclass(slots=True)
class Addr6:
    """One IPv6 address of an interface and its DAD state (RFC 4862)."""

    address: bytes
    prefixlen: int
    ifnet: Ifnet
    state: str = TENTATIVE
    probes: int = 0
    timer: Timer | None = None
    deprecated: bool = False
    """Its preferred lifetime (from a router advertisement) has passed: still
    valid, no longer chosen as the source of new traffic (RFC 4862 5.5.4)."""

    @property
    def usable(self) -> bool:
        """Return True once DAD has passed."""
        return self.state == PREFERRED

    @property
    def link_local(self) -> bool:
        """Return True for fe80::/10."""
        return self.address[0] == 0xFE and self.address[1] & 0xC0 == 0x80


@dataclass(slots=True)
class Learnt:
    """One thing a host took from router advertisements, until ``expires``."""

    ifnet: Ifnet
    value: bytes | str
    """A router's or DNS server's address, an autoconfigured address, a search domain."""
    expires: float
    """When it goes (``inf``: never)."""
    timer: Timer | None = None
    preferred: float = float("inf")
    """For an address: when it becomes deprecated."""

    def cancel(self) -> None:
        """Cancel its timer."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


@dataclass(slots=True)
class HostRa:
    """What a host vnet learnt from router advertisements (RFC 4861 6.3.4, RFC 8106).

    Every table is keyed by (interface name, value); order is arrival order.
    """

    routers: dict[tuple[str, bytes], Learnt] = field(default_factory=dict)
    """The default router list: routers by link-local address."""
    addresses: dict[tuple[str, bytes], Learnt] = field(default_factory=dict)
    """Addresses formed from prefixes with the A flag (SLAAC)."""
    dns: dict[tuple[str, bytes], Learnt] = field(default_factory=dict)
    """Recursive DNS servers (RDNSS)."""
    search: dict[tuple[str, str], Learnt] = field(default_factory=dict)
    """DNS search domains (DNSSL)."""
    mtu: dict[str, int] = field(default_factory=dict)
    """The link MTU an interface's routers advertise, where it is below the interface's."""
    solicit: dict[str, Timer] = field(default_factory=dict)
    """Interfaces still sending router solicitations, with the timer of the next one."""

    def entries(self) -> list[Learnt]:
        """Return every learnt entry."""
        return [
            *self.routers.values(),
            *self.addresses.values(),
            *self.dns.values(),
            *self.search.values(),
        ]


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
    out_rs: int = 0
    """Router Solicitations sent (a host bringing an interface up)."""
    in_mld_queries: int = 0
    """Multicast Listener Queries received (MLDv1 and MLDv2)."""
    out_mld_reports: int = 0
    """Multicast Listener Reports sent (state changes and answers to queries)."""
    mld_bad: int = 0
    """Multicast Listener Queries dropped: malformed, or not from a link-local source with
    hop limit 1 (RFC 3810 5.1.14)."""
    ra_ignored: int = 0
    """Router Advertisements not acted on: forwarding on or accept_rtadv off."""
    ra_badopt: int = 0
    """Options of accepted Router Advertisements ignored as invalid or unusable
    (RFC 4862 5.5.3, RFC 8106)."""
    ra_limit: int = 0
    """Routers, prefixes or DNS entries not learnt: the interface's limit was reached."""
    ra_routers: int = 0
    """Default routers learnt."""
    ra_router_expired: int = 0
    """Default routers gone: their lifetime ran out or was advertised as 0."""
    slaac_addresses: int = 0
    """Addresses autoconfigured from prefix information (SLAAC)."""
    slaac_expired: int = 0
    """Autoconfigured addresses removed because their valid lifetime ran out."""


@dataclass(slots=True)
class Dhcp6Stats:
    """Counters of the vnet's stateless DHCPv6 servers (:mod:`vrouter.inet6.dhcp6`)."""

    received: int = 0
    """Datagrams to port 547 on a serving interface."""
    information_requests: int = 0
    """Information-requests answered."""
    replies: int = 0
    """Replies sent."""
    bad: int = 0
    """Dropped: malformed (length, checksum, options) or invalid (RFC 8415 16.12)."""
    ignored: int = 0
    """Dropped: a message type a stateless server does not answer (Solicit, Request …)."""


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
    accept_rtadv: bool = False
    """``net.inet6.ip6.accept_rtadv``: a host (forwarding off) configures itself from
    router advertisements."""
    max_prefixes: int = 16
    """``net.inet6.ip6.maxifprefixes``: autoconfigured addresses per interface."""
    max_routers: int = 16
    """``net.inet6.ip6.maxifdefrouters``: default routers per interface."""
    dhcp6: dict[str, Dhcp6Settings] = field(default_factory=dict)
    """Interfaces with a stateless DHCPv6 server, and what it hands out."""
    dhcp6_stats: Dhcp6Stats = field(default_factory=Dhcp6Stats)
    udp_services: dict[int, UdpService] = field(default_factory=dict)
    """The vnet's own services by UDP port (DHCPv6), ahead of programs' sockets."""
    mld: dict[str, Listener] = field(default_factory=dict)
    """MLD listener state per interface (:mod:`vrouter.inet6.mld`)."""
    group_changed: GroupChanged | None = None
    """Told of every group joined or left (MLD reports it)."""
    learnt: HostRa | None = None
    """What this vnet learnt from router advertisements as a host, None until it
    first needs the tables (:attr:`host_ra`): a router never does."""
    ra_input: RaInput | None = None
    """The host's use of router advertisements (:mod:`vrouter.inet6.slaac`)."""
    linklocal_ready: LinkLocalReady | None = None
    """Told when an interface's link-local address passes DAD (a host solicits routers)."""
    local: dict[bytes, Addr6] = field(default_factory=dict)
    """Global (non-link-local) addresses."""
    linklocal: dict[tuple[str, bytes], Addr6] = field(default_factory=dict)
    """Link-local addresses by (interface name, address)."""
    anycast: dict[bytes, Addr6] = field(default_factory=dict)
    """Subnet-Router anycast addresses (RFC 4291 2.6.1) of the global prefixes up to /126,
    each with the address it comes from; answered while the vnet forwards."""
    groups: dict[str, dict[bytes, None]] = field(default_factory=dict)
    """Multicast groups joined, per interface name (a dict as a set: the five groups of
    an interface with an address take 224 bytes, in a set 728)."""
    ra: dict[str, RaState] = field(default_factory=dict)
    """Router advertisement state of interfaces that advertise."""
    protocols: dict[int, Proto6Handler] = field(default_factory=tables.empty)
    """Local delivery by next header."""
    offload_protocols: dict[int, Proto6Handler] = field(default_factory=tables.empty)
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
    own_rng: random.Random | None = None
    """A generator of this vnet's own (tests set a seeded one), None: :data:`SYSTEM_RNG`."""

    @property
    def host_ra(self) -> HostRa:
        """What this vnet learnt from router advertisements as a host (made when first used)."""
        if self.learnt is None:
            self.learnt = HostRa()
        return self.learnt

    def ra_mtu(self, ifp: Ifnet) -> int:
        """Return the MTU of ``ifp``: its own, or lower if its routers advertise so."""
        learnt = self.learnt
        return ifp.mtu if learnt is None else learnt.mtu.get(ifp.name, ifp.mtu)

    @property
    def rng(self) -> random.Random:
        """This vnet's source of the RFC 4861/3810 jitter (ReachableTime, RA intervals
        and delays, report delays): its own generator if it was given one, else the
        system's, which keeps no state here (a generator of its own would be 2.5 KiB
        per vnet)."""
        return SYSTEM_RNG if self.own_rng is None else self.own_rng

    @rng.setter
    def rng(self, rng: random.Random) -> None:
        self.own_rng = rng

    def addrs_of(self, ifp: Ifnet) -> list[Addr6]:
        """Return the addresses of ``ifp``, link-local first."""
        found = [a for (name, _), a in self.linklocal.items() if name == ifp.name]
        found.extend(a for a in self.local.values() if a.ifnet is ifp)
        return found
