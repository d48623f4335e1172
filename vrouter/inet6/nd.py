"""Neighbor Discovery (RFC 4861), DAD (RFC 4862) and router advertisements.

The IPv6 resolver of the vnet's neighbour table, with NUD.  The table
(entries, hold queue, sweeping) is the shared
:class:`~vrouter.link.lltable.NeighbourTable` at ``inet6.nd``; this module
speaks ND and drives its entries through their states: ``incomplete`` (multicast NS sent, packets
held), ``reachable`` (confirmed within ReachableTime), ``stale`` (used as
is; the first use moves it to ``delay``), ``delay`` (waiting
DELAY_FIRST_PROBE_TIME for an upper-layer hint, which a router never gets),
``probe`` (unicast NS every RetransTimer, up to MAX_UNICAST_SOLICIT).
Resolution failure hands held packets to the table's ``unresolved`` hook,
where the IP layer answers them with ICMPv6 address unreachable.  Against a
scan of an on-link /64 (RFC 6583) the table refuses new resolutions beyond
``net.inet6.nd6.max_incomplete`` entries resolving or
``net.inet6.nd6.solicit_rate`` multicast solicitations a second on the
interface (a retry the rate refuses ends the resolution), and holds at most
``net.inet6.nd6.hold_maxbytes`` of packets; each refusal is counted.

Every new address is tentative until DAD passes; a conflict is logged and
the address marked duplicated.  Interfaces configured to advertise send
RAs from their link-local address once it is preferred: the first three
at most 16 s apart, then every MinRtrAdvInterval..MaxRtrAdvInterval, and
in answer to a Router Solicitation after a random delay of at most 0.5 s,
never closer than 3 s to the previous one (RFC 4861 6.2.4, 6.2.6).
"""

from __future__ import annotations

import ipaddress
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vrouter.core.timers import Timer
from vrouter.inet6.state import DUPLICATED, PREFERRED, TENTATIVE, Addr6
from vrouter.link.lltable import (
    DELAY,
    HOLD_FULL,
    INCOMPLETE,
    INCOMPLETE_FULL,
    PROBE,
    RATELIMITED,
    REACHABLE,
    STALE,
    Neighbour,
    NeighbourTable,
)
from vrouter.wire import icmp6, ndp
from vrouter.wire.errors import WireError
from vrouter.wire.ethernet import DST as ETH_DST
from vrouter.wire.ethernet import ETHERTYPE_IPV6, HEADER, HEADER_LEN
from vrouter.wire.ethernet import SRC as ETH_SRC
from vrouter.wire.ipv6 import (
    ALL_NODES,
    ALL_ROUTERS,
    DST,
    NH_ICMPV6,
    SRC,
    UNSPECIFIED,
    build,
    is_link_local,
    multicast_mac,
    solicited_node,
)

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.nd")

STATES = (INCOMPLETE, REACHABLE, STALE, DELAY, PROBE)
"""The states an ND entry takes (RFC 4861 7.3.2)."""

MAX_MULTICAST_SOLICIT = 3
MAX_UNICAST_SOLICIT = 3
DELAY_FIRST_PROBE_TIME = 5.0
MAX_INITIAL_RTR_ADVERTISEMENTS = 3
MAX_INITIAL_RTR_ADVERT_INTERVAL = 16.0
MIN_DELAY_BETWEEN_RAS = 3.0
MAX_RA_DELAY_TIME = 0.5
ND_HOP_LIMIT = 255


def _fmt(address: bytes) -> str:
    return str(ipaddress.IPv6Address(address))


@dataclass(slots=True)
class NdTable(NeighbourTable):
    """A vnet's IPv6 neighbour table and the ND knobs."""

    name: str = "nd"
    base_reachable_time: float = 30.0
    """BaseReachableTime (RFC 4861 10); ReachableTime is 0.5..1.5 times it."""
    retrans_timer: float = 1.0
    """RetransTimer: seconds between solicitations."""
    reachable_time: float = 30.0
    """ReachableTime, drawn by :meth:`draw_reachable_time`."""

    def draw_reachable_time(self, rng: random.Random) -> None:
        """Set ReachableTime to BaseReachableTime times 0.5..1.5 (RFC 4861 6.3.2)."""
        self.reachable_time = self.base_reachable_time * rng.uniform(0.5, 1.5)


@dataclass(frozen=True, slots=True)
class RaSettings:
    """What an interface advertises (RFC 4861 6.2.1 AdvXxx variables)."""

    interval: float = 200.0
    """MaxRtrAdvInterval; MinRtrAdvInterval is a third of it."""
    lifetime: int = 1800
    hop_limit: int = 64
    managed: bool = False
    other: bool = False
    mtu: bool = True
    prefixes: tuple[ndp.PrefixInfo, ...] = ()
    rdnss: tuple[bytes, ...] = ()
    rdnss_lifetime: int = 600


@dataclass(slots=True)
class RaState:
    """An advertising interface's schedule."""

    ifnet: Ifnet
    settings: RaSettings
    sent: int = 0
    last_sent: float = -1e9
    timer: Timer | None = None
    ready: bool = False

    def stop(self) -> None:
        """Cancel the next advertisement."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


# --- sending -------------------------------------------------------------------


def _send_icmp6(
    vnet: Vnet, ifp: Ifnet, src: bytes, dst: bytes, dst_mac: bytes, type_: int, body: bytes
) -> None:
    """Send an ND message (hop limit 255) straight onto ``ifp``."""
    message = icmp6.build(type_, 0, body, src, dst)
    packet = build(src, dst, NH_ICMPV6, message, hop_limit=ND_HOP_LIMIT)
    ifp.output(HEADER.pack(dst_mac, ifp.mac, ETHERTYPE_IPV6) + packet)


def link_source(vnet: Vnet, ifp: Ifnet) -> bytes | None:
    """Return a usable address of ``ifp`` to send ND from: link-local first."""
    for addr in vnet.inet6.addrs_of(ifp):
        if addr.usable:
            return addr.address
    return None


def send_ns(vnet: Vnet, ifp: Ifnet, target: bytes, unicast_mac: bytes | None = None) -> None:
    """Solicit ``target``: multicast to its solicited-node group, or unicast (NUD probe)."""
    src = link_source(vnet, ifp)
    if src is None:
        return
    body = ndp.NeighborSolicitation(target, ifp.mac).emit_body()
    vnet.inet6.icmp.out_ns += 1
    if unicast_mac is not None:
        _send_icmp6(vnet, ifp, src, target, unicast_mac, icmp6.NEIGHBOR_SOLICIT, body)
    else:
        group = solicited_node(target)
        _send_icmp6(vnet, ifp, src, group, multicast_mac(group), icmp6.NEIGHBOR_SOLICIT, body)


def send_rs(vnet: Vnet, ifp: Ifnet) -> bool:
    """Solicit routers on ``ifp`` from its link-local address (RFC 4861 6.3.7)."""
    src = next((a.address for a in vnet.inet6.addrs_of(ifp) if a.link_local and a.usable), None)
    if src is None or not ifp.up:
        return False
    body = ndp.RouterSolicitation(ifp.mac).emit_body()
    vnet.inet6.icmp.out_rs += 1
    _send_icmp6(vnet, ifp, src, ALL_ROUTERS, multicast_mac(ALL_ROUTERS), icmp6.ROUTER_SOLICIT, body)
    return True


def _send_na(
    vnet: Vnet,
    ifp: Ifnet,
    target: bytes,
    dst: bytes,
    dst_mac: bytes,
    solicited: bool,
    override: bool = True,
) -> None:
    body = ndp.NeighborAdvertisement(
        target,
        router=vnet.inet6.forwarding,
        solicited=solicited,
        override=override,
        target_mac=ifp.mac,
    ).emit_body()
    vnet.inet6.icmp.out_na += 1
    _send_icmp6(vnet, ifp, target, dst, dst_mac, icmp6.NEIGHBOR_ADVERT, body)


# --- resolution and NUD ----------------------------------------------------------


def output(vnet: Vnet, ifp: Ifnet, nexthop: bytes, frame: bytearray, now: float) -> None:
    """Send ``frame`` (an Ethernet frame whose header is to be filled) to ``nexthop``."""
    if nexthop[0] == 0xFF:
        frame[ETH_DST] = multicast_mac(nexthop)
        frame[ETH_SRC] = ifp.mac
        ifp.output(frame)
        return
    table = vnet.inet6.nd
    entry = table.entries.get((ifp.name, nexthop))
    if entry is not None and entry.state != INCOMPLETE:
        table.send(entry, frame, now)
        if entry.state == STALE:
            entry.state = DELAY
            _arm(vnet, entry, now + DELAY_FIRST_PROBE_TIME)
        return
    stat = vnet.inet6.icmp
    if entry is None:
        started = table.resolve(vnet.timers, ifp, nexthop, now)
        if isinstance(started, str):
            _refused(vnet, ifp, started)
            return
        entry = started
        entry.probes = 1
        send_ns(vnet, ifp, nexthop)
        _arm(vnet, entry, now + table.retrans_timer)
    dropped = table.hold(entry, frame)
    if dropped == HOLD_FULL:
        stat.nd_hold_full += 1
    elif dropped is not None:
        stat.nd_queue_overflow += 1


def refuse_early(vnet: Vnet, ifp: Ifnet, nexthop: bytes, now: float) -> bool:
    """Drop and count a packet to ``nexthop`` on ``ifp`` (no entry yet) if its
    resolution would be refused; False if it would start (send the packet on).

    Under a scan of an on-link prefix this is the whole cost of each packet:
    no copy, no destination cache entry."""
    reason = vnet.inet6.nd.refusal(ifp, nexthop, now)
    if reason is None:
        return False
    _refused(vnet, ifp, reason)
    return True


def _refused(vnet: Vnet, ifp: Ifnet, reason: str) -> None:
    """Count a resolution the table refused, and the packet dropped with it."""
    stat = vnet.inet6.icmp
    if reason == INCOMPLETE_FULL:
        stat.nd_incomplete_full += 1
    elif reason == RATELIMITED:
        stat.nd_ratelimited += 1
    else:
        stat.nd_table_full += 1
    ifp.counters.tx_drops[f"nd_{reason}"] += 1


def _new_entry(vnet: Vnet, ifp: Ifnet, ip: bytes, state: str, now: float) -> Neighbour | None:
    entry = vnet.inet6.nd.add(vnet.timers, ifp, ip, state, now)
    if entry is None:
        vnet.inet6.icmp.nd_table_full += 1
    return entry


def _arm(vnet: Vnet, entry: Neighbour, deadline: float) -> None:
    if entry.timer is not None:
        entry.timer.cancel()
    entry.timer = vnet.timers.schedule(deadline, lambda t: _tick(vnet, entry, t))


def _tick(vnet: Vnet, entry: Neighbour, now: float) -> None:
    table = vnet.inet6.nd
    entry.timer = None
    if table.entries.get((entry.ifnet.name, entry.ip)) is not entry:
        return
    if entry.state == INCOMPLETE:
        if entry.probes < MAX_MULTICAST_SOLICIT and not table.may_solicit(entry.ifnet, now):
            vnet.inet6.icmp.nd_ratelimited += 1  # under a scan: give up now
            table.fail(vnet, entry, now)
        elif entry.probes < MAX_MULTICAST_SOLICIT:
            entry.probes += 1
            send_ns(vnet, entry.ifnet, entry.ip)
            _arm(vnet, entry, now + table.retrans_timer)
        else:
            vnet.inet6.icmp.nd_timeouts += 1
            table.fail(vnet, entry, now)
    elif entry.state == DELAY:
        entry.state = PROBE
        entry.probes = 1
        send_ns(vnet, entry.ifnet, entry.ip, entry.mac)
        _arm(vnet, entry, now + table.retrans_timer)
    elif entry.state == PROBE:
        if entry.probes < MAX_UNICAST_SOLICIT:
            entry.probes += 1
            send_ns(vnet, entry.ifnet, entry.ip, entry.mac)
            _arm(vnet, entry, now + table.retrans_timer)
        else:
            table.remove(entry, now)


def _confirm(vnet: Vnet, entry: Neighbour, mac: bytes, state: str, now: float) -> None:
    """Record ``mac`` for ``entry`` in ``state`` and release its held packets."""
    if vnet.inet6.nd.confirm(entry, mac, state, now) and state == STALE:
        # sending on a stale entry starts NUD
        entry.state = DELAY
        _arm(vnet, entry, now + DELAY_FIRST_PROBE_TIME)


def _learn(vnet: Vnet, ifp: Ifnet, ip: bytes, mac: bytes, now: float) -> None:
    """Apply a link-layer address option from a solicitation (RFC 4861 7.2.3)."""
    entry = vnet.inet6.nd.entries.get((ifp.name, ip))
    if entry is None:
        entry = _new_entry(vnet, ifp, ip, STALE, now)
        if entry is not None:
            entry.mac = mac
            entry.confirmed = now
    elif entry.state == INCOMPLETE or entry.mac != mac:
        _confirm(vnet, entry, mac, STALE, now)


# --- receiving -------------------------------------------------------------------


def _our_address(vnet: Vnet, ifp: Ifnet, target: bytes) -> Addr6 | None:
    inet6 = vnet.inet6
    addr = inet6.linklocal.get((ifp.name, target))
    if addr is None:
        addr = inet6.local.get(target)
        if addr is not None and addr.ifnet is not ifp:
            return None
    return addr


def _valid(vnet: Vnet, ifp: Ifnet, packet: memoryview, code: int) -> bool:
    if packet[7] != ND_HOP_LIMIT or code != 0:
        vnet.inet6.icmp.nd_bad += 1
        ifp.drop("nd_invalid", error=True)
        return False
    return True


def ns_input(ifp: Ifnet, packet: memoryview, message: icmp6.Icmp6Message, now: float) -> None:
    """Process a Neighbor Solicitation (RFC 4861 7.2.3, RFC 4862 5.4.3)."""
    vnet = ifp.vnet
    stat = vnet.inet6.icmp
    stat.in_ns += 1
    if not _valid(vnet, ifp, packet, message.code):
        return
    try:
        ns = ndp.NeighborSolicitation.parse(message.data)
    except WireError as err:
        stat.nd_bad += 1
        ifp.drop(err.reason, error=True)
        return
    src = bytes(packet[SRC])
    dst = bytes(packet[DST])
    from_dad = src == UNSPECIFIED
    if from_dad and (dst != solicited_node(ns.target) or ns.source_mac is not None):
        stat.nd_bad += 1
        ifp.drop("nd_invalid", error=True)
        return
    addr = _our_address(vnet, ifp, ns.target)
    override = True
    if addr is None and not from_dad and vnet.inet6.forwarding:
        # A Subnet-Router anycast address: answered, but without the override flag
        # (RFC 4861 7.2.4), so a unicast owner of the address would win.
        addr = vnet.inet6.anycast.get(ns.target)
        override = False
        if addr is not None and addr.ifnet is not ifp:
            return
    if addr is None or addr.state == DUPLICATED:
        return
    if addr.state == TENTATIVE:
        if from_dad:
            duplicate(vnet, addr, "another node is claiming it (DAD)")
        return
    if from_dad:
        _send_na(vnet, ifp, ns.target, ALL_NODES, multicast_mac(ALL_NODES), solicited=False)
        return
    if ns.source_mac is not None:
        _learn(vnet, ifp, src, ns.source_mac, now)
    entry = vnet.inet6.nd.entries.get((ifp.name, src))
    if entry is not None and entry.state != INCOMPLETE:
        _send_na(vnet, ifp, ns.target, src, entry.mac, solicited=True, override=override)
    else:  # no link-layer address given: resolve the asker first
        body = ndp.NeighborAdvertisement(
            ns.target,
            router=vnet.inet6.forwarding,
            solicited=True,
            override=override,
            target_mac=ifp.mac,
        ).emit_body()
        message_bytes = icmp6.build(icmp6.NEIGHBOR_ADVERT, 0, body, ns.target, src)
        frame = bytearray(HEADER_LEN) + build(
            ns.target, src, NH_ICMPV6, message_bytes, hop_limit=ND_HOP_LIMIT
        )
        HEADER.pack_into(frame, 0, b"\0" * 6, ifp.mac, ETHERTYPE_IPV6)
        stat.out_na += 1
        output(vnet, ifp, src, frame, now)


def na_input(ifp: Ifnet, packet: memoryview, message: icmp6.Icmp6Message, now: float) -> None:
    """Process a Neighbor Advertisement (RFC 4861 7.2.5)."""
    vnet = ifp.vnet
    stat = vnet.inet6.icmp
    stat.in_na += 1
    if not _valid(vnet, ifp, packet, message.code):
        return
    try:
        na = ndp.NeighborAdvertisement.parse(message.data)
    except WireError as err:
        stat.nd_bad += 1
        ifp.drop(err.reason, error=True)
        return
    if packet[24] == 0xFF and na.solicited:
        stat.nd_bad += 1
        ifp.drop("nd_invalid", error=True)
        return
    addr = _our_address(vnet, ifp, na.target)
    if addr is not None:
        if addr.state == TENTATIVE:
            duplicate(vnet, addr, f"{(na.target_mac or b'').hex(':')} advertises it")
        else:
            ifp.drop("nd_dupaddr")
            log.warning(
                "vnet %s: %s: station %s advertises our address %s",
                vnet.name,
                ifp.name,
                (na.target_mac or b"").hex(":"),
                _fmt(na.target),
            )
        return
    entry = vnet.inet6.nd.entries.get((ifp.name, na.target))
    if entry is None:
        return
    if entry.state == INCOMPLETE:
        if na.target_mac is not None:
            entry.router = na.router
            _confirm(vnet, entry, na.target_mac, REACHABLE if na.solicited else STALE, now)
        return
    differs = na.target_mac is not None and na.target_mac != entry.mac
    if not na.override and differs:
        # RFC 4861 7.2.5: at most mark it stale; update nothing else.
        if entry.state == REACHABLE:
            entry.state = STALE
        return
    entry.router = na.router
    if na.solicited:
        _confirm(vnet, entry, na.target_mac or entry.mac, REACHABLE, now)
    elif differs and na.target_mac is not None:
        _confirm(vnet, entry, na.target_mac, STALE, now)


def rs_input(ifp: Ifnet, packet: memoryview, message: icmp6.Icmp6Message, now: float) -> None:
    """Answer a Router Solicitation on an advertising interface (RFC 4861 6.2.6)."""
    vnet = ifp.vnet
    stat = vnet.inet6.icmp
    stat.in_rs += 1
    if not _valid(vnet, ifp, packet, message.code):
        return
    try:
        rs = ndp.RouterSolicitation.parse(message.data)
    except WireError as err:
        stat.nd_bad += 1
        ifp.drop(err.reason, error=True)
        return
    src = bytes(packet[SRC])
    if src == UNSPECIFIED and rs.source_mac is not None:
        stat.nd_bad += 1
        ifp.drop("nd_invalid", error=True)
        return
    if rs.source_mac is not None:
        _learn(vnet, ifp, src, rs.source_mac, now)
    ra = vnet.inet6.ra.get(ifp.name)
    if ra is None or not ra.ready:
        return
    # RFC 4861 6.2.6: a random delay, counted from the last multicast RA
    # plus MIN_DELAY_BETWEEN_RAS if that was recent.
    delay = vnet.inet6.rng.uniform(0, MAX_RA_DELAY_TIME)
    when = max(now, ra.last_sent + MIN_DELAY_BETWEEN_RAS) + delay
    if ra.timer is None or ra.timer.deadline > when:
        ra.stop()
        ra.timer = vnet.timers.schedule(when, lambda t: _advertise(vnet, ra, t))


def ra_input(ifp: Ifnet, packet: memoryview, message: icmp6.Icmp6Message, now: float) -> None:
    """Validate and count a Router Advertisement from another router.

    The vnet learns the sender's link-layer address and notes that it is a
    router.  A host (forwarding off) with ``net.inet6.ip6.accept_rtadv`` on
    also configures itself from it (:mod:`vrouter.inet6.slaac`).
    """
    vnet = ifp.vnet
    stat = vnet.inet6.icmp
    stat.in_ra += 1
    if not _valid(vnet, ifp, packet, message.code):
        return
    if not is_link_local(bytes(packet[SRC])):  # RFC 4861 6.1.2
        stat.nd_bad += 1
        ifp.drop("nd_invalid", error=True)
        return
    try:
        ra = ndp.RouterAdvertisement.parse(message.data)
    except WireError as err:
        stat.nd_bad += 1
        ifp.drop(err.reason, error=True)
        return
    src = bytes(packet[SRC])
    if ra.source_mac is not None:
        _learn(vnet, ifp, src, ra.source_mac, now)
    entry = vnet.inet6.nd.entries.get((ifp.name, src))
    if entry is not None:
        entry.router = True
    inet6 = vnet.inet6
    if inet6.ra_input is None or inet6.forwarding or not inet6.accept_rtadv:
        stat.ra_ignored += 1
        return
    inet6.ra_input(ifp, src, ra, bytes(message.data[12:]), now)


# --- addresses: DAD ---------------------------------------------------------------


def join(vnet: Vnet, ifp: Ifnet, group: bytes) -> None:
    """Join multicast ``group`` on ``ifp`` (MLD reports a new one)."""
    groups = vnet.inet6.groups.setdefault(ifp.name, {})
    if group not in groups:
        groups[group] = None
        if vnet.inet6.group_changed is not None:
            vnet.inet6.group_changed(ifp, group, True)


def leave(vnet: Vnet, ifp: Ifnet, group: bytes) -> None:
    """Leave multicast ``group`` on ``ifp`` (MLD reports it)."""
    groups = vnet.inet6.groups.get(ifp.name)
    if groups is not None and group in groups:
        del groups[group]
        if vnet.inet6.group_changed is not None:
            vnet.inet6.group_changed(ifp, group, False)


def start_dad(vnet: Vnet, addr: Addr6, now: float) -> None:
    """Begin Duplicate Address Detection for a tentative address (RFC 4862 5.4)."""
    join(vnet, addr.ifnet, solicited_node(addr.address))
    for anycast, owner in vnet.inet6.anycast.items():
        if owner is addr:  # a router listens for its Subnet-Router anycast address too
            join(vnet, addr.ifnet, solicited_node(anycast))
    if vnet.inet6.dad_transmits <= 0:
        _preferred(vnet, addr, now)
        return
    addr.state = TENTATIVE
    addr.probes = 0
    # The first probe goes when the vnet's timers next run, not inside the caller:
    # a daemon bringing up 100,000 vnets answers its control socket first.
    addr.timer = vnet.timers.schedule(now, lambda t: _dad_probe(vnet, addr, t))


def _dad_probe(vnet: Vnet, addr: Addr6, now: float) -> None:
    addr.timer = None
    if addr.state != TENTATIVE:
        return
    if addr.probes >= vnet.inet6.dad_transmits:
        _preferred(vnet, addr, now)
        return
    addr.probes += 1
    ifp = addr.ifnet
    group = solicited_node(addr.address)
    body = ndp.NeighborSolicitation(addr.address).emit_body()
    vnet.inet6.icmp.out_ns += 1
    _send_icmp6(vnet, ifp, UNSPECIFIED, group, multicast_mac(group), icmp6.NEIGHBOR_SOLICIT, body)
    addr.timer = vnet.timers.schedule(
        now + vnet.inet6.nd.retrans_timer, lambda t: _dad_probe(vnet, addr, t)
    )


def _preferred(vnet: Vnet, addr: Addr6, now: float) -> None:
    addr.state = PREFERRED
    ifp = addr.ifnet
    log.info(
        "vnet %s: %s: %s/%d is preferred", vnet.name, ifp.name, _fmt(addr.address), addr.prefixlen
    )
    ra = vnet.inet6.ra.get(ifp.name)
    if addr.link_local and ra is not None and not ra.ready:
        ra.ready = True
        ra.timer = vnet.timers.schedule(now, lambda t: _advertise(vnet, ra, t))
    ready = vnet.inet6.linklocal_ready
    if addr.link_local and ready is not None:
        ready(ifp, now)


def duplicate(vnet: Vnet, addr: Addr6, why: str) -> None:
    """Mark ``addr`` duplicated: it is never used (RFC 4862 5.4.5)."""
    if addr.timer is not None:
        addr.timer.cancel()
        addr.timer = None
    addr.state = DUPLICATED
    vnet.inet6.icmp.dad_duplicates += 1
    log.warning(
        "vnet %s: %s: duplicate address %s/%d detected, address disabled: %s",
        vnet.name,
        addr.ifnet.name,
        _fmt(addr.address),
        addr.prefixlen,
        why,
    )


# --- router advertisements -----------------------------------------------------------


def enable_ra(vnet: Vnet, ifp: Ifnet, settings: RaSettings, now: float) -> RaState:
    """Make ``ifp`` advertise ``settings``; it starts once its link-local is preferred."""
    state = RaState(ifp, settings)
    vnet.inet6.ra[ifp.name] = state
    join(vnet, ifp, ALL_ROUTERS)
    ll = next((a for a in vnet.inet6.addrs_of(ifp) if a.link_local and a.usable), None)
    if ll is not None:
        state.ready = True
        state.timer = vnet.timers.schedule(now, lambda t: _advertise(vnet, state, t))
    return state


def advertisement(vnet: Vnet, ra: RaState, lifetime: int | None = None) -> bytes:
    """Return the RA body ``ra``'s interface sends now."""
    s = ra.settings
    return ndp.RouterAdvertisement(
        hop_limit=s.hop_limit,
        managed=s.managed,
        other=s.other,
        lifetime=s.lifetime if lifetime is None else lifetime,
        source_mac=ra.ifnet.mac,
        mtu=ra.ifnet.mtu if s.mtu else None,
        prefixes=s.prefixes,
        rdnss=s.rdnss,
        rdnss_lifetime=s.rdnss_lifetime,
    ).emit_body()


def send_ra(vnet: Vnet, ra: RaState, now: float, lifetime: int | None = None) -> bool:
    """Send one RA to all-nodes; False if the interface has no usable link-local yet."""
    ifp = ra.ifnet
    src = next((a.address for a in vnet.inet6.addrs_of(ifp) if a.link_local and a.usable), None)
    if src is None or not ifp.up:
        return False
    _send_icmp6(
        vnet,
        ifp,
        src,
        ALL_NODES,
        multicast_mac(ALL_NODES),
        icmp6.ROUTER_ADVERT,
        advertisement(vnet, ra, lifetime),
    )
    vnet.inet6.icmp.out_ra += 1
    ra.sent += 1
    ra.last_sent = now
    return True


def _advertise(vnet: Vnet, ra: RaState, now: float) -> None:
    ra.timer = None
    if vnet.inet6.ra.get(ra.ifnet.name) is not ra:
        return
    if not ra.ready:
        return
    send_ra(vnet, ra, now)
    max_interval = ra.settings.interval
    # MinRtrAdvInterval: a third of the maximum, which for short intervals
    # (below 9 s) would fall under the 3 s floor, so then the maximum itself
    # (RFC 4861 6.2.1).
    min_interval = max_interval / 3 if max_interval >= 9 else max_interval
    delay = vnet.inet6.rng.uniform(min_interval, max_interval)
    if ra.sent <= MAX_INITIAL_RTR_ADVERTISEMENTS:
        delay = min(delay, MAX_INITIAL_RTR_ADVERT_INTERVAL)
    ra.timer = vnet.timers.schedule(now + delay, lambda t: _advertise(vnet, ra, t))


def disable_ra(vnet: Vnet, ifp: Ifnet, now: float) -> RaSettings | None:
    """Stop advertising on ``ifp``, with a final RA of router lifetime 0 (RFC 4861 6.2.5).

    Return the settings it advertised, None if it was not advertising.
    """
    ra = vnet.inet6.ra.pop(ifp.name, None)
    if ra is None:
        return None
    ra.stop()
    if ra.ready:
        send_ra(vnet, ra, now, lifetime=0)
    ra.ready = False
    return ra.settings


def cease(vnet: Vnet, now: float) -> None:
    """Send a final RA with router lifetime 0 on every advertising interface (RFC 4861 6.2.5)."""
    for name, ra in list(vnet.inet6.ra.items()):
        ra.stop()
        if ra.ready:
            send_ra(vnet, ra, now, lifetime=0)
        ra.ready = False
        del vnet.inet6.ra[name]
