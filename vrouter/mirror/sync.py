"""Route sync, mirror to vnet: the mirror's kernel routes as vnet routes of their own source.

:class:`RouteSync` is sans-IO: it is fed decoded rtnetlink messages
(:mod:`vrouter.mirror.rtnetlink`), keeps the mirror's main-table routes of
the synced kernel protocols and the nexthop objects they use, and says which
vnet routes (prefix, source) may have changed and what each should now be
(:meth:`RouteSync.want`).  The daemon applies that through ``Ops``.

Kernel route protocols map to sources (:data:`PROTOCOLS`); the distances
are FRR's (:mod:`vrouter.route.source`).  A nexthop object (``RTA_NH_ID``,
as FRR's zebra installs) is followed, including a change of the object
after the route was installed.  A group, and an inline multipath route
(``RTA_MULTIPATH``), becomes a multipath (ECMP) vnet route of every path
that leaves by a representor, with the paths' weights (the group's, or
``rtnh_hops`` + 1).  A nexthop deleted takes its routes with it, as the kernel does
without telling anyone.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from vrouter.mirror.rtnetlink import (
    AF_INET,
    AF_INET6,
    RT_TABLE_MAIN,
    RTN_BLACKHOLE,
    RTN_PROHIBIT,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    End,
    Malformed,
    Message,
    NexthopMsg,
    Path,
    RouteMsg,
    Seen,
)
from vrouter.route.fib import BLACKHOLE, REJECT, UNICAST
from vrouter.route.source import Source, source

Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Protocol:
    """A kernel route protocol the sync knows: its number, its source name and distance."""

    number: int
    name: str
    """As ``ip route`` shows it (``/etc/iproute2/rt_protos``), and as the config names it."""
    source: str
    distance: int | None = None
    """None: the source's default distance."""
    default: bool = True
    """Synced unless the config lists the protocols to sync."""


PROTOCOLS = {
    p.number: p
    for p in (
        Protocol(2, "kernel", "kernel", default=False),
        Protocol(3, "boot", "boot", default=False),
        Protocol(4, "static", "kernel-static", default=False),
        Protocol(11, "zebra", "zebra"),
        Protocol(12, "bird", "bird"),
        Protocol(16, "dhcp", "dhcp", default=False),
        Protocol(42, "babel", "babel"),
        Protocol(186, "bgp", "bgp"),
        Protocol(187, "isis", "isis"),
        Protocol(188, "ospf", "ospf"),
        Protocol(189, "rip", "rip"),
        Protocol(190, "ripng", "ripng"),
        Protocol(191, "nhrp", "nhrp", 10),
        Protocol(192, "eigrp", "eigrp"),
        Protocol(194, "sharp", "sharp"),
        Protocol(196, "frr-static", "frr-static", 2),
        Protocol(197, "openfabric", "openfabric"),
    )
}
"""Kernel route protocols by number.  FRR's staticd installs ``proto 196`` (named
``static`` in FRR's ``rt_protos.d``): its routes are the source ``frr-static`` at
distance 2, so a configured static route (1) always wins."""
BY_NAME = {p.name: p for p in PROTOCOLS.values()}
DEFAULT_SYNC = frozenset(p.number for p in PROTOCOLS.values() if p.default)


def protocol_numbers(names: Iterable[str]) -> frozenset[int]:
    """Return the kernel protocol numbers of ``names``; raise KeyError naming an unknown one."""
    return frozenset(BY_NAME[name].number for name in names)


@functools.lru_cache(maxsize=64)
def _protocols_of(name: str) -> tuple[int, ...]:
    """Return the kernel protocols whose routes may be of source ``name``."""
    return tuple(
        p.number
        for p in PROTOCOLS.values()
        if name == p.source or (name == "ospf6" and p.source == "ospf")
    )


def _ones(members: list[NexthopMsg | None]) -> tuple[int, ...]:
    return (1,) * len(members)


@functools.lru_cache(maxsize=256)
def source_of(protocol: int, family: int) -> Source:
    """Return the vnet source of kernel protocol ``protocol`` routes of ``family`` (4 or 6):
    one shared object (a feed's million routes share it, and ``Ops.put_routes`` checks
    the next hops once per source and translation)."""
    known = PROTOCOLS[protocol]
    name = known.source
    if name == "ospf" and family == 6:
        name = "ospf6"
    return source(name, known.distance)


@dataclass(frozen=True, slots=True)
class Want:
    """What a vnet route should be: type, next hop and interface."""

    type: str
    via: Address | None = None
    interface: str | None = None
    paths: tuple[tuple[Address | None, str], ...] = ()
    """Every path (next hop, interface) of a multipath route, the first being
    ``via`` and ``interface``; empty for a route of one path."""
    weights: tuple[int, ...] = ()
    """The weight of each of ``paths``; empty when all are 1."""


Key = tuple[Prefix, Source]
"""A vnet route: its prefix and its source (one route per source and prefix)."""
KernelKey = tuple[int, bytes, int, int]
"""A kernel route as the sync keys it: family, destination, length, protocol.  It stands
for exactly one vnet route (:meth:`RouteSync.key_of`): each protocol has a source."""
_ByMetric = RouteMsg | dict[int, RouteMsg]
"""A kernel route's entries: one (nearly always), or several by metric."""
_INTERNED = 4096
"""Distinct translations kept to be shared by the routes that have them (a feed of a
million routes has a handful of next hops); past that the cache starts afresh."""


@dataclass(slots=True)
class SyncStats:
    """Counters of one vnet's route sync."""

    messages: int = 0
    """Route and nexthop messages read."""
    ignored: int = 0
    """Route messages of another table, protocol or type (local, broadcast…)."""
    foreign: int = 0
    """Route lookups whose next hop leaves by an interface that is not a representor."""
    unresolved: int = 0
    """Route lookups whose nexthop object is not known (yet)."""
    errors: int = 0
    """Netlink errors answered to a dump."""
    malformed: int = 0
    """Messages that could not be decoded (truncated, lengths that do not add up): dropped."""
    overruns: int = 0
    """Times the kernel dropped events (the socket overran: ``ENOBUFS``), each followed by a
    resync from a dump."""


@dataclass
class RouteSync:
    """The mirror's synced routes and nexthop objects (see the module docstring)."""

    ifname: Callable[[int], str | None]
    """The vnet interface a mirror interface index stands for (None: not a representor)."""
    protocols: frozenset[int] = DEFAULT_SYNC
    routes: dict[KernelKey, _ByMetric] = field(default_factory=dict)
    """Kernel routes by (family, dst, length, protocol), then (if several) by metric."""
    nexthops: dict[int, NexthopMsg] = field(default_factory=dict)
    users: dict[int, set[KernelKey]] = field(default_factory=dict)
    """The kernel routes using each nexthop id."""
    stats: SyncStats = field(default_factory=SyncStats)
    seen: Seen = field(default_factory=Seen, repr=False)
    """Paths the decoder shares between routes and the route message layouts it learnt
    (:func:`vrouter.mirror.rtnetlink.parse`)."""
    _wants: dict[tuple[int, tuple[Path, ...], int], Want | None] = field(
        default_factory=dict, repr=False
    )
    """Translations by type, inline paths and nexthop id, shared by every route that has
    them (see :data:`_INTERNED`); forgotten on any nexthop change or representor change."""

    def take(self, messages: Iterable[Message]) -> set[KernelKey]:
        """Take decoded messages; return the kernel routes whose vnet route may have changed."""
        touched: set[KernelKey] = set()
        stats = self.stats
        for message in messages:
            if type(message) is RouteMsg:
                stats.messages += 1
                self._route(message, touched)
            elif isinstance(message, NexthopMsg):
                stats.messages += 1
                self._nexthop(message, touched)
            elif isinstance(message, Malformed):
                stats.malformed += 1
            elif isinstance(message, End) and message.error < 0:
                stats.errors += 1
        return touched

    def feed(self, messages: Iterable[Message]) -> set[Key]:
        """Take decoded messages; return the vnet routes that may have changed."""
        return {self.key_of(kkey) for kkey in self.take(messages)}

    @staticmethod
    def key_of(kkey: KernelKey) -> Key:
        """Return the vnet route that kernel route ``kkey`` stands for."""
        family, dst, length, protocol = kkey
        # From an integer, host bits cleared: half the time of ``strict=False`` on bytes.
        if family == AF_INET:
            net = int.from_bytes(dst, "big") & _MASKS4[length]
            return ipaddress.IPv4Network((net, length)), source_of(protocol, 4)
        net = int.from_bytes(dst, "big") & _MASKS6[length]
        return ipaddress.IPv6Network((net, length)), source_of(protocol, 6)

    @staticmethod
    def net_of(kkey: KernelKey) -> tuple[tuple[int, int, int], Source]:
        """Return :meth:`key_of` with the network as integers: (bits, address, length)."""
        family, dst, length, protocol = kkey
        if family == AF_INET:
            return (32, int.from_bytes(dst, "big") & _MASKS4[length], length), source_of(
                protocol, 4
            )
        return (128, int.from_bytes(dst, "big") & _MASKS6[length], length), source_of(
            protocol, 6
        )

    def _route(self, msg: RouteMsg, touched: set[KernelKey]) -> None:
        if (
            msg.table != RT_TABLE_MAIN
            or msg.protocol not in self.protocols
            or msg.family not in (AF_INET, AF_INET6)
            or msg.type not in _SYNCED_TYPES
        ):
            self.stats.ignored += 1
            return
        kkey = (msg.family, msg.dst, msg.dst_len, msg.protocol)
        entries = self.routes.get(kkey)
        old = _entry(entries, msg.priority)
        if old is not None and old.nh_id:
            self._unuse(old.nh_id, kkey)
        if msg.deleted:
            if old is not None:
                self._drop(kkey, entries, msg.priority)
        else:
            self._put(kkey, entries, msg)
            if msg.nh_id:
                self.users.setdefault(msg.nh_id, set()).add(kkey)
        touched.add(kkey)

    def _put(self, kkey: KernelKey, entries: _ByMetric | None, msg: RouteMsg) -> None:
        if entries is None or (type(entries) is RouteMsg and entries.priority == msg.priority):
            self.routes[kkey] = msg
        elif type(entries) is RouteMsg:
            self.routes[kkey] = {entries.priority: entries, msg.priority: msg}
        else:
            assert isinstance(entries, dict)
            entries[msg.priority] = msg

    def _drop(self, kkey: KernelKey, entries: _ByMetric | None, priority: int) -> None:
        if not isinstance(entries, dict):
            if entries is not None and entries.priority == priority:
                del self.routes[kkey]
            return
        del entries[priority]
        if len(entries) == 1:
            self.routes[kkey] = next(iter(entries.values()))

    def _unuse(self, nh_id: int, kkey: KernelKey) -> None:
        users = self.users.get(nh_id)
        if users is not None:
            users.discard(kkey)
            if not users:
                del self.users[nh_id]

    def _nexthop(self, msg: NexthopMsg, touched: set[KernelKey]) -> None:
        affected = {msg.id} | {g for g, nh in self.nexthops.items() if msg.id in nh.group}
        if msg.deleted:
            self.nexthops.pop(msg.id, None)
            for kkey in list(self.users.pop(msg.id, ())):
                entries = self.routes.get(kkey)
                for entry in _entries(entries):
                    if entry.nh_id == msg.id:
                        self._drop(kkey, self.routes.get(kkey), entry.priority)
                touched.add(kkey)
        else:
            self.nexthops[msg.id] = msg
        self._wants.clear()
        for nh_id in affected:
            touched.update(self.users.get(nh_id, ()))

    def want(self, key: Key) -> Want | None:
        """Return what the vnet route ``key`` should be now (None: no route)."""
        prefix, src = key
        family = AF_INET if prefix.version == 4 else AF_INET6
        for protocol in _protocols_of(src.name):
            if protocol not in self.protocols or source_of(protocol, prefix.version) != src:
                continue
            kkey = (family, prefix.network_address.packed, prefix.prefixlen, protocol)
            if kkey in self.routes:
                return self.wanted(kkey)
        return None

    def wanted(self, kkey: KernelKey) -> Want | None:
        """Return what the vnet route of kernel route ``kkey`` should be now (None: no route).

        Routes of the same next hops share one answer (the same object)."""
        entries = self.routes.get(kkey)
        if entries is None:
            return None
        best = entries[min(entries)] if isinstance(entries, dict) else entries
        how = (best.type, best.paths, best.nh_id)
        if how in self._wants:
            return self._wants[how]
        if len(self._wants) >= _INTERNED:
            self._wants.clear()
        want = self._wants[how] = self._translate(best, 4 if best.family == AF_INET else 6)
        return want

    def renumbered(self) -> None:
        """Forget the translations: a representor came or went (its index names it)."""
        self._wants.clear()

    def _translate(self, msg: RouteMsg, version: int) -> Want | None:
        if msg.type == RTN_BLACKHOLE:
            return Want(BLACKHOLE)
        if msg.type in (RTN_UNREACHABLE, RTN_PROHIBIT):
            return Want(REJECT)
        paths: tuple[Path, ...] = msg.paths
        if msg.nh_id:
            nexthop = self.nexthops.get(msg.nh_id)
            if nexthop is None:
                self.stats.unresolved += 1
                return None
            if nexthop.blackhole:
                return Want(BLACKHOLE)
            if nexthop.group:
                members = [self.nexthops.get(member) for member in nexthop.group]
                paths = tuple(
                    Path(m.path.gateway, m.path.oif, weight)
                    for m, weight in zip(members, nexthop.weights or _ones(members), strict=True)
                    if m is not None and m.path is not None
                )
                if len(paths) < len(members):
                    self.stats.unresolved += 1
            elif nexthop.path is not None:
                paths = (nexthop.path,)
        hops: list[tuple[Address | None, str]] = []
        weights: list[int] = []
        for path in paths:
            interface = self.ifname(path.oif)
            if interface is None:
                self.stats.foreign += 1
                continue
            via = _ip_address(path.gateway) if path.gateway else None
            if via is not None and via.version != version:
                continue  # an IPv4 route via IPv6 (RFC 5549): not yet
            if (via, interface) not in hops:
                hops.append((via, interface))
                weights.append(path.weight)
        if not hops:
            return None
        via, interface = hops[0]
        if len(hops) == 1:
            return Want(UNICAST, via, interface)
        weighted = tuple(weights) if any(weight != 1 for weight in weights) else ()
        return Want(UNICAST, via, interface, tuple(hops), weighted)

    def keys(self) -> set[Key]:
        """Return every vnet route the mirror's routes stand for."""
        return {self.key_of(kkey) for kkey in self.routes}

    def forget_interface(self, oif: int) -> set[KernelKey]:
        """Drop what leaves by mirror interface ``oif`` (the kernel flushes it with the
        device, telling no one); return the kernel routes whose vnet route may have changed."""
        touched: set[KernelKey] = set()
        for nh_id in [i for i, nh in self.nexthops.items() if nh.path and nh.path.oif == oif]:
            self._nexthop(NexthopMsg(True, nh_id, 0, 0, None), touched)
        for kkey, entries in list(self.routes.items()):
            for entry in _entries(entries):
                if any(p.oif == oif for p in entry.paths):
                    self._drop(kkey, self.routes.get(kkey), entry.priority)
                    touched.add(kkey)
        return touched


_MASKS4 = tuple(((1 << 32) - 1) ^ ((1 << (32 - n)) - 1) for n in range(33))
_MASKS6 = tuple(((1 << 128) - 1) ^ ((1 << (128 - n)) - 1) for n in range(129))
_SYNCED_TYPES = frozenset({RTN_UNICAST, RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT})


def _entry(entries: _ByMetric | None, priority: int) -> RouteMsg | None:
    """Return the entry of metric ``priority`` among ``entries``, if any."""
    if entries is None:
        return None
    if type(entries) is RouteMsg:
        return entries if entries.priority == priority else None
    assert isinstance(entries, dict)
    return entries.get(priority)


def _entries(entries: _ByMetric | None) -> list[RouteMsg]:
    """Return every entry among ``entries``."""
    if entries is None:
        return []
    if type(entries) is RouteMsg:
        return [entries]
    assert isinstance(entries, dict)
    return list(entries.values())


@functools.lru_cache(maxsize=4096)
def _ip_address(packed: bytes) -> Address:
    """Return the address of ``packed`` (4 or 16 bytes; a feed has few next hops)."""
    return ipaddress.ip_address(packed)
