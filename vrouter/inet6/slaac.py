"""A host's use of router advertisements: SLAAC, default routers, DNS, MTU.

A vnet with forwarding off and ``net.inet6.ip6.accept_rtadv`` on takes
from the RAs of other routers what FreeBSD's ``accept_rtadv`` takes:

- **addresses** (RFC 4862 5.5.3): a Prefix Information option with the A
  flag and a /64 prefix gives the interface the address of the prefix
  and its EUI-64 interface identifier, tentative until DAD passes.  Its
  preferred lifetime deprecates it (kept, no longer chosen as a source),
  its valid lifetime removes it; a later RA refreshes both, with the
  two-hour rule of 5.5.3 (e) against a spoofed short lifetime.
- **default routers** (RFC 4861 6.3.4): the sender of an RA with a router
  lifetime, until that lifetime runs out; lifetime 0 removes it at once.
  The first router of the list is the vnet's default route, of route
  source ``ra`` (:mod:`vrouter.route.source`), so a configured or
  routing-protocol default route wins over it; when it goes, the next
  router takes over.
- **DNS** (RFC 8106): recursive DNS servers (RDNSS) and search domains
  (DNSSL), each with its lifetime, shown by ``vrouterctl rtadv VNET``.
- **link parameters**: the MTU option (if at least 1280 and not above the
  interface's MTU) caps the packets the vnet sends on the link; a current
  hop limit, reachable time and retransmission timer that are not 0 set
  ``net.inet6.ip6.hlim``, ``net.inet6.nd6.base_reachable_time`` and
  ``net.inet6.nd6.retrans_timer``.

Once an interface's link-local address passes DAD (or ``accept_rtadv`` is
turned on) the host sends up to three Router Solicitations, 4 s apart,
until an RA answers (RFC 4861 6.3.7).  Routers, addresses and DNS entries are bounded per interface
(``maxifdefrouters``, ``maxifprefixes``; at most :data:`MAX_DNS` servers
and domains); what does not fit is counted and ignored.  Turning
``accept_rtadv`` off forgets everything learnt.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

from vrouter.inet6 import ipv6, nd
from vrouter.inet6.state import HostRa, Learnt
from vrouter.route.fib import UNICAST, Route
from vrouter.route.source import RA
from vrouter.wire import ndp
from vrouter.wire.errors import WireError
from vrouter.wire.ipv6 import eui64_interface_id

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.nd")

MAX_RTR_SOLICITATIONS = 3
RTR_SOLICITATION_INTERVAL = 4.0
TWO_HOURS = 7200.0
MIN_MTU = 1280
MAX_DNS = 8
"""RDNSS servers, and DNSSL domains, kept per interface."""
DEFAULT = ipaddress.IPv6Network("::/0")
INFINITY = float("inf")

K = TypeVar("K", bytes, str)


def _fmt(address: bytes) -> str:
    return str(ipaddress.IPv6Address(address))


def _deadline(now: float, lifetime: int) -> float:
    return INFINITY if lifetime == ndp.INFINITY else now + lifetime


def _per_interface(keys: Iterable[tuple[str, object]], ifp: Ifnet) -> int:
    return sum(1 for name, _ in keys if name == ifp.name)


# --- router advertisements in ----------------------------------------------------------


def ra_input(
    ifp: Ifnet, router: bytes, ra: ndp.RouterAdvertisement, opts: bytes, now: float
) -> None:
    """Configure the host from a valid RA of ``router`` (its link-local) on ``ifp``."""
    vnet = ifp.vnet
    inet6 = vnet.inet6
    stop_soliciting(vnet, ifp)
    if ra.hop_limit:
        inet6.hop_limit = ra.hop_limit
    if ra.reachable_time and ra.reachable_time / 1000 != inet6.nd.base_reachable_time:
        inet6.nd.base_reachable_time = min(ra.reachable_time / 1000, 3600.0)
        inet6.nd.draw_reachable_time(inet6.rng)
    if ra.retrans_timer:
        inet6.nd.retrans_timer = min(max(ra.retrans_timer / 1000, 0.1), 60.0)
    _router(vnet, ifp, router, ra.lifetime, now)
    if ra.mtu is not None:
        if MIN_MTU <= ra.mtu <= ifp.mtu:
            if ra.mtu < ifp.mtu:
                inet6.host_ra.mtu[ifp.name] = ra.mtu
            else:
                inet6.host_ra.mtu.pop(ifp.name, None)
        else:
            inet6.icmp.ra_badopt += 1
    for prefix in ra.prefixes:
        if prefix.autonomous:
            _prefix(vnet, ifp, prefix, now)
    # RDNSS and DNSSL, each option with its own lifetime (the RA's own parse
    # keeps one list): read them again here, where a bad one is only ignored.
    for type_, value in ndp.parse_options(opts):
        try:
            if type_ == ndp.OPT_RDNSS:
                lifetime, servers = ndp.parse_rdnss(value)
                for server in servers:
                    _learn(vnet, inet6.host_ra.dns, ifp, server, lifetime, now)
            elif type_ == ndp.OPT_DNSSL:
                lifetime, names = ndp.parse_dnssl(value)
                for name in names:
                    _learn(vnet, inet6.host_ra.search, ifp, name, lifetime, now)
        except WireError:
            inet6.icmp.ra_badopt += 1


# --- default routers ---------------------------------------------------------------------


def _router(vnet: Vnet, ifp: Ifnet, router: bytes, lifetime: int, now: float) -> None:
    """Add, refresh or (lifetime 0) remove ``router`` in the default router list."""
    inet6 = vnet.inet6
    routers = inet6.host_ra.routers
    key = (ifp.name, router)
    entry = routers.get(key)
    if lifetime == 0:
        if entry is not None:
            _router_gone(vnet, entry, "advertised router lifetime 0")
        return
    expires = now + lifetime  # at most 9000 s (RFC 4861 4.2); never infinite
    if entry is None:
        if _per_interface(routers, ifp) >= inet6.max_routers:
            inet6.icmp.ra_limit += 1
            return
        entry = Learnt(ifp, router, expires)
        routers[key] = entry
        inet6.icmp.ra_routers += 1
        log.info(
            "vnet %s: %s: default router %s, lifetime %d s",
            vnet.name,
            ifp.name,
            _fmt(router),
            lifetime,
        )
        select_default(vnet)
    entry.expires = expires
    entry.cancel()
    entry.timer = vnet.timers.schedule(expires, lambda t: _router_gone(vnet, entry, "expired"))


def _router_gone(vnet: Vnet, entry: Learnt, why: str) -> None:
    routers = vnet.inet6.host_ra.routers
    assert isinstance(entry.value, bytes)
    if routers.get((entry.ifnet.name, entry.value)) is not entry:
        return
    entry.cancel()
    del routers[(entry.ifnet.name, entry.value)]
    vnet.inet6.icmp.ra_router_expired += 1
    log.info(
        "vnet %s: %s: default router %s removed (%s)",
        vnet.name,
        entry.ifnet.name,
        _fmt(entry.value),
        why,
    )
    select_default(vnet)


def select_default(vnet: Vnet) -> None:
    """Point the ``ra`` default route at the first router of the list (none: remove it)."""
    fib = vnet.route.fib6
    current = fib.get(DEFAULT, RA.name)
    first = next((r for r in vnet.inet6.host_ra.routers.values() if r.ifnet.up), None)
    if first is None:
        if current is not None:
            fib.delete(DEFAULT, RA.name)
        return
    assert isinstance(first.value, bytes)
    if current is not None and current.gateway == first.value and current.ifnet is first.ifnet:
        return
    route = Route(DEFAULT, UNICAST, first.value, first.ifnet, RA)
    if current is None:
        fib.add(route)
    else:
        fib.replace(route)


# --- addresses (RFC 4862 5.5.3) ----------------------------------------------------------


def _prefix(vnet: Vnet, ifp: Ifnet, prefix: ndp.PrefixInfo, now: float) -> None:
    inet6 = vnet.inet6
    stat = inet6.icmp
    net = prefix.prefix
    if (
        prefix.length != 64  # with a 64-bit interface identifier (RFC 4862 5.5.3 (d))
        or (net[0] == 0xFE and net[1] & 0xC0 == 0x80)  # link-local (5.5.3 (b))
        or net[0] == 0xFF
        or prefix.preferred_lifetime > prefix.valid_lifetime  # (c)
    ):
        stat.ra_badopt += 1
        return
    address = net[:8] + eui64_interface_id(ifp.mac)
    key = (ifp.name, address)
    table = inet6.host_ra.addresses
    entry = table.get(key)
    if entry is None:
        if prefix.valid_lifetime == 0:
            return
        owner = inet6.local.get(address)
        if owner is not None:  # configured by hand, or on another interface: not ours
            return
        if _per_interface(table, ifp) >= inet6.max_prefixes:
            stat.ra_limit += 1
            return
        iface = ipaddress.IPv6Interface((ipaddress.IPv6Address(address), 64))
        ipv6.add_address(vnet, ifp, iface, now)
        entry = Learnt(ifp, address, _deadline(now, prefix.valid_lifetime))
        table[key] = entry
        stat.slaac_addresses += 1
        log.info("vnet %s: %s: address %s autoconfigured", vnet.name, ifp.name, iface)
    else:
        # (e): a valid lifetime above two hours or above what remains is taken;
        # otherwise a short one only lowers it to two hours, never below.
        received = _deadline(now, prefix.valid_lifetime)
        remaining = entry.expires - now
        if prefix.valid_lifetime > TWO_HOURS or received > entry.expires:
            entry.expires = received
        elif remaining > TWO_HOURS:
            entry.expires = now + TWO_HOURS
    entry.preferred = _deadline(now, prefix.preferred_lifetime)
    addr = inet6.local.get(address)
    if addr is not None:
        addr.deprecated = entry.preferred <= now
    _arm_address(vnet, entry, now)


def _arm_address(vnet: Vnet, entry: Learnt, now: float) -> None:
    entry.cancel()
    when = entry.preferred if now < entry.preferred < entry.expires else entry.expires
    if when != INFINITY:
        entry.timer = vnet.timers.schedule(when, lambda t: _address_tick(vnet, entry, t))


def _address_tick(vnet: Vnet, entry: Learnt, now: float) -> None:
    inet6 = vnet.inet6
    assert isinstance(entry.value, bytes)
    entry.timer = None
    if inet6.host_ra.addresses.get((entry.ifnet.name, entry.value)) is not entry:
        return
    addr = inet6.local.get(entry.value)
    if now >= entry.expires:
        del inet6.host_ra.addresses[(entry.ifnet.name, entry.value)]
        inet6.icmp.slaac_expired += 1
        if addr is not None and addr.ifnet is entry.ifnet:
            ipv6.remove_address(vnet, entry.ifnet, _interface(addr.address, addr.prefixlen))
        log.info("vnet %s: %s: address %s expired", vnet.name, entry.ifnet.name, _fmt(entry.value))
        return
    if addr is not None and now >= entry.preferred and not addr.deprecated:
        addr.deprecated = True
        log.info(
            "vnet %s: %s: address %s deprecated", vnet.name, entry.ifnet.name, _fmt(entry.value)
        )
    _arm_address(vnet, entry, now)


def _interface(address: bytes, prefixlen: int) -> ipaddress.IPv6Interface:
    return ipaddress.IPv6Interface((ipaddress.IPv6Address(address), prefixlen))


# --- RDNSS and DNSSL (RFC 8106) -----------------------------------------------------------


def _learn(
    vnet: Vnet,
    entries: dict[tuple[str, K], Learnt],
    ifp: Ifnet,
    value: K,
    lifetime: int,
    now: float,
) -> None:
    key = (ifp.name, value)
    entry = entries.get(key)
    if lifetime == 0:
        if entry is not None:
            entry.cancel()
            del entries[key]
        return
    if entry is None:
        if _per_interface(entries, ifp) >= MAX_DNS:
            vnet.inet6.icmp.ra_limit += 1
            return
        entry = Learnt(ifp, value, 0.0)
        entries[key] = entry
    entry.expires = _deadline(now, lifetime)
    entry.cancel()
    if entry.expires != INFINITY:

        def expire(_: float) -> None:
            if entries.get(key) is entry:
                del entries[key]

        entry.timer = vnet.timers.schedule(entry.expires, expire)


# --- router solicitation ---------------------------------------------------------------


def linklocal_ready(ifp: Ifnet, now: float) -> None:
    """Start soliciting routers on ``ifp`` if the vnet is a host taking RAs."""
    vnet = ifp.vnet
    inet6 = vnet.inet6
    if inet6.forwarding or not inet6.accept_rtadv or ifp.name in inet6.host_ra.solicit:
        return
    _solicit(vnet, ifp, 1, now)


def solicit_all(vnet: Vnet) -> None:
    """Start soliciting routers on every interface whose link-local address is preferred
    (``accept_rtadv`` just turned on), as soon as the vnet's timers run."""

    def start(now: float) -> None:
        for ifp in list(vnet.link.interfaces.values()):
            if any(a.link_local and a.usable for a in vnet.inet6.addrs_of(ifp)):
                linklocal_ready(ifp, now)

    vnet.timers.schedule(0.0, start)


def _solicit(vnet: Vnet, ifp: Ifnet, count: int, now: float) -> None:
    solicit = vnet.inet6.host_ra.solicit
    solicit.pop(ifp.name, None)
    if vnet.link.interfaces.get(ifp.name) is not ifp or not nd.send_rs(vnet, ifp):
        return
    if count < MAX_RTR_SOLICITATIONS:
        solicit[ifp.name] = vnet.timers.schedule(
            now + RTR_SOLICITATION_INTERVAL, lambda t: _solicit(vnet, ifp, count + 1, t)
        )


def stop_soliciting(vnet: Vnet, ifp: Ifnet) -> None:
    """Send no more Router Solicitations on ``ifp``."""
    timer = vnet.inet6.host_ra.solicit.pop(ifp.name, None)
    if timer is not None:
        timer.cancel()


# --- forgetting --------------------------------------------------------------------------


def forget_interface(vnet: Vnet, ifp: Ifnet) -> None:
    """Forget what ``ifp`` learnt: its routers, autoconfigured addresses, DNS, MTU."""
    host = vnet.inet6.host_ra
    stop_soliciting(vnet, ifp)
    host.mtu.pop(ifp.name, None)
    _drop(host.dns, ifp)
    _drop(host.search, ifp)
    for entry in _drop(host.addresses, ifp):
        addr = vnet.inet6.local.get(_address(entry))
        if addr is not None and addr.ifnet is ifp:
            ipv6.remove_address(vnet, ifp, _interface(addr.address, addr.prefixlen))
    if _drop(host.routers, ifp):
        select_default(vnet)


def _drop(table: dict[tuple[str, K], Learnt], ifp: Ifnet) -> list[Learnt]:
    """Remove (and return) the entries of ``ifp`` from ``table``, their timers cancelled."""
    gone = [key for key, entry in table.items() if entry.ifnet is ifp]
    entries = [table.pop(key) for key in gone]
    for entry in entries:
        entry.cancel()
    return entries


def _address(entry: Learnt) -> bytes:
    assert isinstance(entry.value, bytes)
    return entry.value


def forget(vnet: Vnet) -> None:
    """Forget everything learnt from router advertisements, on every interface."""
    for ifp in list(vnet.link.interfaces.values()):
        forget_interface(vnet, ifp)


def clear(host: HostRa) -> None:
    """Cancel every timer of ``host`` and empty it (the subsystem detaching)."""
    for entry in host.entries():
        entry.cancel()
    for timer in host.solicit.values():
        timer.cancel()
    host.routers.clear()
    host.addresses.clear()
    host.dns.clear()
    host.search.clear()
    host.mtu.clear()
    host.solicit.clear()


# --- what the view shows -----------------------------------------------------------------


def describe(vnet: Vnet, now: float) -> dict[str, object]:
    """Return what the vnet learnt from RAs, as plain data (seconds left, None: forever)."""
    host = vnet.inet6.host_ra

    def left(when: float) -> float | None:
        return None if when == INFINITY else round(max(when - now, 0.0), 1)

    def text(value: bytes | str) -> str:
        return value if isinstance(value, str) else _fmt(value)

    default = vnet.route.fib6.get(DEFAULT, RA.name)
    return {
        "accept_rtadv": vnet.inet6.accept_rtadv,
        "forwarding": vnet.inet6.forwarding,
        "routers": [
            {
                "interface": e.ifnet.name,
                "address": text(e.value),
                "expires": left(e.expires),
                "default": default is not None
                and default.gateway == e.value
                and default.ifnet is e.ifnet,
            }
            for e in host.routers.values()
        ],
        "addresses": [
            {
                "interface": e.ifnet.name,
                "address": f"{text(e.value)}/64",
                "state": _state(vnet, e),
                "preferred": left(e.preferred),
                "expires": left(e.expires),
            }
            for e in host.addresses.values()
        ],
        "dns": [
            {"interface": e.ifnet.name, "address": text(e.value), "expires": left(e.expires)}
            for e in host.dns.values()
        ],
        "search": [
            {"interface": e.ifnet.name, "domain": text(e.value), "expires": left(e.expires)}
            for e in host.search.values()
        ],
        "mtu": dict(host.mtu),
    }


def _state(vnet: Vnet, entry: Learnt) -> str:
    addr = vnet.inet6.local.get(_address(entry))
    if addr is None:
        return "gone"
    return "deprecated" if addr.deprecated and addr.usable else addr.state
