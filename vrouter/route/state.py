"""The route subsystem's per-vnet state and its operations.

Connected routes follow interface addresses; static routes and the routes
of other sources (route-socket clients) are resolved to an egress interface
when added (the next hop must be on a connected network), like a kernel
refusing ``route add`` with an unreachable gateway.  Each source adds and
removes only its own routes; which one forwards is the table's choice
(:mod:`vrouter.route.source`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core.registry import Subsystem
from vrouter.core.sysctl import field_knob
from vrouter.route.fib import CONNECTED, STATIC, UNICAST, Fib, Nexthop, Prefix, Route, RouteError
from vrouter.route.source import Source

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet


MultipathKey = tuple[int, int, int, str]
"""A multipath route's prefix (address bits, length, network) and source name."""


@dataclass(slots=True)
class RouteState:
    """Per-vnet routing state (FreeBSD's ``V_rt_tables``)."""

    fib: Fib = field(default_factory=Fib)
    """The IPv4 forwarding table."""
    fib6: Fib = field(default_factory=lambda: Fib(128))
    """The IPv6 forwarding table (link-local destinations never appear in it)."""
    client_grace: float = 0.0
    """Seconds a protocol's routes stay (stale) after its last route socket closed."""
    sessions: dict[str, int] = field(default_factory=dict)
    """Open route sockets speaking for each protocol source."""
    stale: dict[str, set[Prefix]] = field(default_factory=dict)
    """Each protocol's routes kept after its last route socket closed, not yet refreshed."""
    multipath: dict[MultipathKey, Route] = field(default_factory=dict)
    """The multipath (ECMP) routes by prefix and source, installed or held: what the
    metrics read the per-path counters of, without walking the tables."""
    vnet: Vnet | None = field(default=None, repr=False, compare=False)
    """The vnet whose route-socket listeners hear of every change (None: nobody)."""

    def changed(self, kind: str, route: Route) -> None:
        """Follow a change of either table: multipath routes, route-socket listeners."""
        if route.nexthops or self.multipath:
            _track_multipath(self.multipath, kind, route)
        vnet = self.vnet
        if vnet is not None and vnet.listeners:
            fib = self.table(route.version)
            status = None if kind == "delete" else fib.state(route)
            vnet.emit({"type": _EVENTS[kind], "route": route.describe(status)})

    def table(self, version: int) -> Fib:
        """Return the table of IP version ``version``."""
        return self.fib if version == 4 else self.fib6


Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface

KNOBS = (
    field_knob(
        "net.route.client_grace",
        float,
        "Seconds a routing protocol's routes stay, stale, after the last route socket "
        "speaking for it closed (0: removed at once); a restarted daemon refreshes them",
        "route.client_grace",
        0,
        86_400,
    ),
)


def add_connected(vnet: Vnet, ifp: Ifnet, address: Address) -> None:
    """Install the connected route of ``address`` on ``ifp`` (not for link-local)."""
    if address.is_link_local and address.version == 6:
        return
    fib = vnet.route.table(address.version)
    if fib.get(address.network, CONNECTED.name) is None:
        fib.add(Route(address.network, UNICAST, None, ifp, CONNECTED))


def remove_connected(vnet: Vnet, ifp: Ifnet, address: Address) -> None:
    """Remove the connected route of ``address`` if ``ifp`` owns it."""
    fib = vnet.route.table(address.version)
    route = fib.get(address.network, CONNECTED.name)
    if route is not None and route.ifnet is ifp:
        fib.delete(address.network, CONNECTED.name)


def remove_interface_routes(vnet: Vnet, ifp: Ifnet) -> list[Route]:
    """Remove every route of ``vnet`` out of ``ifp`` (of every source); return them.

    A multipath route with paths left keeps them (it is replaced, not returned).
    """
    removed = []
    for fib in (vnet.route.fib, vnet.route.fib6):
        for route in [r for r in fib if r.ifnet is ifp or _uses(r, ifp)]:
            left = [n for n in route.nexthops if n.ifnet is not ifp]
            if left:
                fib.replace(_with_paths(route, left))
            else:
                removed.append(fib.delete(route.prefix, route.source.name))
    return removed


def _uses(route: Route, ifp: Ifnet) -> bool:
    return any(nexthop.ifnet is ifp for nexthop in route.nexthops)


def _with_paths(route: Route, paths: list[Nexthop]) -> Route:
    """Return ``route`` with only ``paths`` (one path: a plain route)."""
    first = paths[0]
    nexthops = tuple(paths) if len(paths) > 1 else ()
    return Route(route.prefix, route.type, first.gateway, first.ifnet, route.source,
                 nexthops=nexthops)  # fmt: skip


def like(route: Route, prefix: Prefix) -> Route:
    """Return a route as ``route`` (type, next hops, source) to ``prefix`` instead, with
    a next hop of its own (until a table shares it)."""
    nexthops = tuple(Nexthop(n.gateway, n.ifnet, n.weight) for n in route.nexthops)
    return Route(prefix, route.type, route.gateway, route.ifnet, route.source,
                 nexthops=nexthops)  # fmt: skip


def like_at(route: Route, bits: int, net: int, plen: int) -> Route:
    """Return a route as ``route`` to the network (``bits``, ``net``, ``plen``) as
    integers (:meth:`Route.of`: no :mod:`ipaddress` network built), going to
    ``route``'s own next hop (a feed's routes made from one share it, as the table
    would make them); RouteError if it is not one."""
    return Route.of(net, plen, bits, source=route.source, nhop=route.nhop)


def describe(vnet: Vnet, route: Route) -> dict[str, object]:
    """Return ``route`` as plain data with its state in ``vnet`` (installed, held, gone)."""
    return route.describe(vnet.route.table(route.version).state(route))


def add_static(
    vnet: Vnet,
    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network,
    type_: str = UNICAST,
    via: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
    ifp: Ifnet | None = None,
    source: Source = STATIC,
) -> Route:
    """Add a route of ``source``; a next hop must be on one of the vnet's connected networks.

    An IPv6 link-local next hop is on the link of the interface named with it.
    The route may end up held (another source's route to the prefix is preferred).
    """
    route = resolve(vnet, prefix, type_, via, ifp, source)
    vnet.route.table(prefix.version).add(route)
    return route


def resolve(
    vnet: Vnet,
    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network,
    type_: str = UNICAST,
    via: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
    ifp: Ifnet | None = None,
    source: Source = STATIC,
) -> Route:
    """Return the route ``add_static`` would add, without adding it (RouteError if it cannot)."""
    gateway = None
    if via is not None:
        if via.version != prefix.version:
            raise RouteError(f"next hop {via} is not of the family of {prefix}")
        gateway = via.packed
        if via.version == 6 and via.is_link_local:
            if ifp is None:
                raise RouteError(f"link-local next hop {via} needs an interface")
            egress: Ifnet | None = ifp
        else:
            egress = _connected_interface(vnet, via, ifp)
        if egress is None:
            raise RouteError(
                f"next hop {via} is not on a connected network of vnet {vnet.name}"
                + (f" via {ifp.name}" if ifp is not None else "")
            )
        ifp = egress
    if type_ == UNICAST and ifp is None:
        raise RouteError(f"route to {prefix} needs a next hop or an interface")
    return Route(prefix, type_, gateway, ifp, source)


def resolve_multipath(
    vnet: Vnet,
    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network,
    paths: Sequence[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address | None, Ifnet | None]],
    source: Source = STATIC,
    weights: Sequence[int] = (),
) -> Route:
    """Return a unicast route by every one of ``paths`` (next hop, interface), ECMP.

    Each path is checked as :func:`resolve` checks one; a path given twice is
    refused.  ``weights``, one per path, share the flows unequally
    (:mod:`vrouter.route.weight`; none: equally).  One path makes a plain route.
    """
    if not paths:
        raise RouteError(f"route to {prefix} needs a next hop or an interface")
    if weights and len(weights) != len(paths):
        raise RouteError(f"route to {prefix}: {len(weights)} weights for {len(paths)} paths")
    hops: list[Nexthop] = []
    for at, (via, ifp) in enumerate(paths):
        one = resolve(vnet, prefix, UNICAST, via, ifp, source)
        assert one.ifnet is not None  # a unicast route has one
        hop = Nexthop(one.gateway, one.ifnet, weights[at] if weights else 1)
        if any(hop.same_path(other) for other in hops):
            where = via if via is not None else one.ifnet.name
            raise RouteError(f"route to {prefix}: path {where} given twice")
        hops.append(hop)
    return _with_paths(Route(prefix, UNICAST, source=source), hops)


def _connected_interface(
    vnet: Vnet, address: ipaddress.IPv4Address | ipaddress.IPv6Address, only: Ifnet | None
) -> Ifnet | None:
    """Return the interface whose most specific connected network holds ``address``.

    Only interface addresses count: a static route covering the next hop
    must not hide the connected network it lies on.
    """
    best: tuple[int, Ifnet] | None = None
    for ifp in vnet.link.interfaces.values():
        if only is not None and ifp is not only:
            continue
        for iface in ifp.all_addresses():
            if (
                iface.version == address.version
                and address in iface.network
                and (best is None or iface.network.prefixlen > best[0])
            ):
                best = (iface.network.prefixlen, ifp)
    return best[1] if best is not None else None


_EVENTS = {"add": "RTM_ADD", "delete": "RTM_DELETE", "change": "RTM_CHANGE"}


def _track_multipath(multipath: dict[MultipathKey, Route], kind: str, route: Route) -> None:
    """Keep ``multipath`` (:attr:`RouteState.multipath`) up to date with one change.

    Keyed by integers, not the ``ipaddress`` prefix: with a multipath route in the
    vnet, every route change passes here, a million of them to load a full table.
    """
    key = (route.bits, route.plen, route.net, route.source.name)
    if kind != "delete" and route.nexthops:
        multipath[key] = route
    elif kind != "delete" or multipath.get(key) is route:
        multipath.pop(key, None)


def _attach(vnet: Vnet) -> RouteState:
    state = RouteState(vnet=vnet)
    state.fib.on_change = state.fib6.on_change = state.changed
    state.fib.schedule = vnet.timers.schedule  # a large table indexes a turn at a time
    state.fib6.schedule = vnet.timers.schedule
    return state


def _detach(vnet: Vnet) -> None:
    """Undo the tables' references back to the state and the vnet: the state is freed as
    soon as the vnet lets it go, not only when the cyclic collector finds it."""
    state = vnet.route
    for fib in (state.fib, state.fib6):
        fib.on_change = None
        fib.schedule = None  # an index a turn at a time stops at its next turn
    state.vnet = None


SUBSYSTEM = Subsystem("route", _attach, _detach, depends=("link",), knobs=KNOBS)
