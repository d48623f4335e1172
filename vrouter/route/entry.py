"""A route and its next hop: what a :class:`~vrouter.route.fib.Fib` holds.

A :class:`Route` is a prefix (two integers) pointing to a :class:`Nhop`, the
next hop as the data path uses it (type, gateway, interface, multipath paths,
source, packet counter), which a table shares among its routes that go the
same way.  :class:`Nexthop` is one path of a multipath next hop.
"""

from __future__ import annotations

import functools
import ipaddress
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.route.source import STATIC, Source

if TYPE_CHECKING:
    from vrouter.link.ifnet import Ifnet

UNICAST = "unicast"
BLACKHOLE = "blackhole"
REJECT = "reject"

Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network


def _no_nhop() -> None:
    return None


_last: Callable[[], Nhop | None] = _no_nhop
"""The next hop :meth:`Route.of` made last, while a route holds it (a weak reference)."""


def _masks(bits: int) -> list[int]:
    full = (1 << bits) - 1
    return [(full << (bits - n)) & full for n in range(bits + 1)]


_MASKS = {32: _masks(32), 128: _masks(128)}


class RouteError(Exception):
    """A route cannot be added or removed as asked."""


@dataclass(slots=True)
class Nexthop:
    """One path of a multipath (ECMP) route: a gateway (None: on-link) out of ``ifnet``."""

    gateway: bytes | None
    ifnet: Ifnet
    weight: int = 1
    """Its share of the route's flows (:mod:`vrouter.route.weight`)."""
    use: int = field(default=0, compare=False)
    """Packets forwarded by this path."""

    def same_path(self, other: Nexthop) -> bool:
        """Whether ``other`` goes the same way (gateway and interface), whatever its weight."""
        return self.gateway == other.gateway and self.ifnet is other.ifnet

    def describe(self) -> dict[str, object]:
        """Return the path as plain data for the API."""
        return {
            "gateway": str(ipaddress.ip_address(self.gateway)) if self.gateway else None,
            "interface": self.ifnet.name,
            "weight": self.weight,
            "use": self.use,
        }


_NETWORKS: dict[int, type[ipaddress.IPv4Network] | type[ipaddress.IPv6Network]] = {
    32: ipaddress.IPv4Network,
    128: ipaddress.IPv6Network,
}
_ADDRESSES: dict[int, type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]] = {
    32: ipaddress.IPv4Address,
    128: ipaddress.IPv6Address,
}


@functools.lru_cache(maxsize=4096)
def shared_gateway(gateway: bytes) -> bytes:
    """Return the one object of this value that routes share (the first one given).

    A table of a million routes learnt from a routing daemon names a few next
    hops over and over; made from messages, each route would otherwise hold its
    own copy (48 bytes for an IPv4 address, 56 for IPv6).
    """
    return gateway


class Nhop:
    """A next hop as the data path uses it: what to do with a packet and where it goes.

    As FreeBSD 13's ``struct nhop_object``: a :class:`~vrouter.route.fib.Fib` keeps one object per
    distinct next hop (type, gateway, interface and, for a multipath route, its
    paths) and every route of the table that goes that way points to it
    (:attr:`Route.nhop`).  A table of a million routes learnt from a few peers
    holds a few next hops, so the data path, which reads the next hop and not
    the route, touches a few hot objects instead of one per route, and a route
    is four small fields.  The packet counter ``use`` is the next hop's: every
    route sharing it counts into it (``route show`` gives it as each route's
    ``use``, as FreeBSD 13's ``netstat -r`` does).

    A route made outside a table has a next hop of its own; :meth:`~vrouter.route.fib.Fib.add`
    swaps it for the table's shared one (``owner`` is that table's token, ``refs`` the
    routes of it pointing here, ``id`` its number there, which the IPv4 index
    stores).  The table forgets a next hop no route uses any more.
    """

    __slots__ = ("__weakref__", "bits", "gateway", "id", "ifnet", "nexthops", "owner", "refs",
                 "source", "type", "use")  # fmt: skip

    def __init__(
        self,
        bits: int,
        type: str = UNICAST,
        gateway: bytes | None = None,
        ifnet: Ifnet | None = None,
        nexthops: tuple[Nexthop, ...] = (),
        use: int = 0,
        source: Source = STATIC,
    ) -> None:
        self.bits = bits
        """32 for IPv4, 128 for IPv6."""
        self.source = source
        """Who added the routes going here (``connected``, ``static``, ``rip`` …) and their
        administrative distance: kept here rather than in each route (a table holds
        few sources), so routes of two sources to one gateway have two next hops."""
        self.type = type
        """``unicast``, ``blackhole`` (drop silently) or ``reject`` (drop, ICMP unreachable)."""
        self.gateway = shared_gateway(gateway) if gateway is not None else None
        """Next hop address (4 or 16 bytes); None means the destination is on-link."""
        self.ifnet = ifnet
        """Egress interface of a unicast route."""
        self.nexthops = nexthops
        """Every path of a multipath (ECMP) next hop, the first one being ``gateway`` and
        ``ifnet``; empty for one path.  A flow keeps to one path (:mod:`vrouter.route.dest`)."""
        self.use = use
        """Packets forwarded by this next hop (by every route sharing it)."""
        self.refs = 0
        """Routes of :attr:`owner` pointing here."""
        self.id = 0
        """Its number in :attr:`owner` (``Fib.nhops``); 0 while it has no owner."""
        self.owner: object = None
        """The token of the table that shares it (:attr:`Fib.token`: not the table, so
        that a table and its next hops make no reference cycle), or None."""

    def key(self) -> tuple[object, ...]:
        """What makes two next hops the same (their counters aside).  Interfaces are
        told apart by identity (``id``: the next hop keeps its interface alive as
        long as a table holds the key)."""
        paths = tuple((n.gateway, id(n.ifnet), n.weight) for n in self.nexthops)
        return self.type, self.gateway, id(self.ifnet), paths, self.source

    def copy(self) -> Nhop:
        """Return a next hop going the same way, with counters of its own (no owner)."""
        paths = tuple(Nexthop(n.gateway, n.ifnet, n.weight) for n in self.nexthops)
        return Nhop(self.bits, self.type, self.gateway, self.ifnet, paths, source=self.source)

    def __repr__(self) -> str:
        return (
            f"Nhop({self.type}, gateway={self.gateway!r}, ifnet={self.ifnet!r}, "
            f"paths={len(self.nexthops)}, use={self.use}, refs={self.refs})"
        )


class Route:
    """One entry: where packets for ``prefix`` go.

    A route keeps its prefix as two integers (``net``, ``plen``) and builds
    the :mod:`ipaddress` network only when ``prefix`` is read: a table of a
    million routes would otherwise hold a million network objects (some 160
    bytes each, more than the route itself).  Where its packets go, and its
    source, are its :class:`Nhop`, shared with the table's other routes that go
    the same way; ``type``, ``gateway``, ``ifnet``, ``nexthops``, ``use`` and
    ``source`` read it.
    Routes compare by identity.
    """

    __slots__ = ("net", "nhop", "number", "plen")

    def __init__(
        self,
        prefix: Prefix,
        type: str = UNICAST,
        gateway: bytes | None = None,
        ifnet: Ifnet | None = None,
        source: Source = STATIC,
        use: int = 0,
        nexthops: tuple[Nexthop, ...] = (),
    ) -> None:
        self.net = int(prefix.network_address)
        """The network's address as an integer."""
        self.plen = prefix.prefixlen
        """The prefix length."""
        self.nhop = Nhop(prefix.max_prefixlen, type, gateway, ifnet, nexthops, use, source)
        """Where its packets go (shared with the table's routes that go the same way)."""
        self.number = 0
        """Its number in an IPv6 Fib's index, if the Fib has one (else 0; -1 for a
        route the index holds without a number, :data:`~vrouter.route.dir6.UNNUMBERED`)."""

    @classmethod
    def of(
        cls,
        net: int,
        plen: int,
        bits: int = 32,
        type: str = UNICAST,
        gateway: bytes | None = None,
        ifnet: Ifnet | None = None,
        source: Source = STATIC,
        nexthops: tuple[Nexthop, ...] = (),
        nhop: Nhop | None = None,
    ) -> Route:
        """Return a route to ``net``/``plen`` (integers; ``bits`` 32 or 128) without
        building an :mod:`ipaddress` network: what loading a large table wants.

        Given ``nhop``, the route goes there (``type``, ``gateway``, ``ifnet`` and
        ``nexthops`` are then not read): a loader that makes many routes to the
        same next hop saves making one each.  Without it, a route going where the
        previous one made here went (one path) is given that one's next hop while
        some route holds it: a table takes it over with one check instead of
        finding its own by value, and a million routes are not a million next hops
        until then.
        RouteError if the prefix is not one (length out of range, host bits set).
        """
        masks = _MASKS.get(bits)
        if masks is None or not 0 <= plen <= bits or net & masks[plen] != net:
            raise RouteError(
                f"{net:#x}/{plen} is not a {bits}-bit prefix (length 0..{bits}, no host bits)"
            )
        route = cls.__new__(cls)
        route.net, route.plen, route.number = net, plen, 0
        if nhop is None:
            global _last
            nhop = _last()
            if (
                nhop is None
                or nhop.gateway != gateway
                or nhop.ifnet is not ifnet
                or nhop.type != type
                or nhop.source is not source
                or nhop.bits != bits
                or nexthops
                or nhop.nexthops
            ):
                nhop = Nhop(bits, type, gateway, ifnet, nexthops, source=source)
                _last = weakref.ref(nhop)
        elif nhop.bits != bits:
            raise RouteError(f"a {bits}-bit prefix given a {nhop.bits}-bit next hop")
        elif nhop.source is not source:
            raise RouteError(f"a {source.name} route given a {nhop.source.name} next hop")
        route.nhop = nhop
        return route

    @property
    def bits(self) -> int:
        """32 for IPv4, 128 for IPv6."""
        return self.nhop.bits

    @property
    def source(self) -> Source:
        """Who added it (``connected``, ``static``, ``rip`` …) and its administrative distance."""
        return self.nhop.source

    @property
    def type(self) -> str:
        """``unicast``, ``blackhole`` (drop silently) or ``reject`` (drop, ICMP unreachable)."""
        return self.nhop.type

    @property
    def gateway(self) -> bytes | None:
        """Next hop address (4 or 16 bytes); None means the destination is on-link."""
        return self.nhop.gateway

    @property
    def ifnet(self) -> Ifnet | None:
        """Egress interface of a unicast route."""
        return self.nhop.ifnet

    @property
    def nexthops(self) -> tuple[Nexthop, ...]:
        """Every path of a multipath (ECMP) route, the first one being ``gateway`` and
        ``ifnet``; empty for a route of one path."""
        return self.nhop.nexthops

    @property
    def use(self) -> int:
        """Packets forwarded by the route's next hop (shared by the routes going there)."""
        return self.nhop.use

    @property
    def prefix(self) -> Prefix:
        """The destination network (built anew on every read)."""
        return _NETWORKS[self.bits]((self.net, self.plen))

    @property
    def version(self) -> int:
        """4 or 6: the IP version of the prefix."""
        return 4 if self.nhop.bits == 32 else 6

    @property
    def key(self) -> tuple[int, int]:
        """``(plen, net)``: the prefix as a Fib keys it."""
        return self.plen, self.net

    def prefix_text(self) -> str:
        """Return the prefix as text (``198.51.100.0/24``), as ``str(prefix)`` does."""
        return f"{_ADDRESSES[self.bits](self.net)}/{self.plen}"

    def __repr__(self) -> str:
        return (
            f"Route({self.prefix_text()}, {self.type}, gateway={self.gateway!r}, "
            f"ifnet={self.ifnet!r}, source={self.source}, use={self.use})"
        )

    def describe(self, state: str | None = None) -> dict[str, object]:
        """Return the route as plain data for the API (with its ``state`` if given).

        ``use`` is its next hop's count, shared with the routes going the same way.
        """
        nhop = self.nhop
        gateway = nhop.gateway
        out: dict[str, object] = {
            "prefix": self.prefix_text(),
            "type": nhop.type,
            "gateway": str(ipaddress.ip_address(gateway)) if gateway else None,
            "interface": nhop.ifnet.name if nhop.ifnet is not None else None,
            "source": self.source.name,
            "distance": self.source.distance,
            "use": nhop.use,
        }
        if nhop.nexthops:
            out["nexthops"] = [nexthop.describe() for nexthop in nhop.nexthops]
        if state is not None:
            out["state"] = state
        return out
