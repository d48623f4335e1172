"""A forwarding table with longest-prefix match, for IPv4 or IPv6.

Routes are kept in one dict per prefix length, keyed by the masked network
as an integer; a lookup tries the lengths in use from longest to shortest,
so it costs at most one dict probe per distinct prefix length present.
``generation`` increases on every change so caches can tell they are stale.

Those dicts hold the *installed* route of each prefix, the only ones a
lookup, the index and the destination caches see.  Several sources may hold
one prefix (:mod:`vrouter.route.source`): the others are *held* beside the
dicts, best first, and the best held one is installed when the installed one
goes.  ``generation`` moves only when the installed route of a prefix
changes; holding and dropping held routes leaves it alone.

The dicts stay the source of truth.  An IPv4 table that grows to
:data:`INDEX_AT` routes also gets a DIR-24-8 index (:mod:`vrouter.route.dir248`,
32 MiB plus 1 KiB per /24 holding longer prefixes), patched on every add and
delete, and from then on a lookup is one or two array reads and a list read
whatever the lengths present (:meth:`Fib.lookup_nhop`, the data path's, reads
the list of the table's next hops; :meth:`Fib.lookup` goes on to the route
with one dict probe); the index is dropped when the table shrinks
below :data:`UNINDEX_BELOW`.  An IPv6 table
that grows to :data:`INDEX6_AT` routes gets its own index
(:mod:`vrouter.route.dir6`, a table of the top 24 bits and per /32 the lengths
of the longer routes there), dropped below :data:`UNINDEX6_BELOW`.  Small
tables, a vnet's usual few connected and static routes, never pay for it.
A vnet's table builds the index on the vnet's timers (:attr:`Fib.schedule`),
:data:`INDEX_TURN` a turn, answering from its dicts until it is complete:
built in one go it would hold the event loop, and forwarding, for 0.3-0.5 s
in the middle of a route feed.

A large table is loaded with :meth:`Fib.add_many`: the index is then built
once, after the last route, and the routes are best made as they are taken
(a generator of :meth:`Route.of`, which needs no :mod:`ipaddress` object).
A million IPv4 routes load so in about 2.5-3.5 s and hold some 126 MiB with the
index (bench/RESULTS.md, section ``scale``).

Routes going the same way share one next hop (:class:`~vrouter.route.entry.Nhop`,
FreeBSD 13's ``nhop_object``): the table interns them (:attr:`Fib.nhops`),
counting the routes of each, and forgets one when its last route goes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import TYPE_CHECKING

from vrouter.core import gcpause
from vrouter.route import dir6
from vrouter.route.entry import _MASKS
from vrouter.route.entry import BLACKHOLE as BLACKHOLE
from vrouter.route.entry import REJECT as REJECT
from vrouter.route.entry import UNICAST as UNICAST
from vrouter.route.entry import Nexthop as Nexthop
from vrouter.route.entry import Nhop as Nhop
from vrouter.route.entry import Prefix as Prefix
from vrouter.route.entry import Route as Route
from vrouter.route.entry import RouteError as RouteError
from vrouter.route.entry import shared_gateway as shared_gateway
from vrouter.route.source import CONNECTED as CONNECTED
from vrouter.route.source import MAX_DISTANCE
from vrouter.route.source import STATIC as STATIC

if TYPE_CHECKING:
    from vrouter.route.dir248 import Build, Dir248

    Index = Dir248 | dir6.Dir6
    Building = Build | dir6.Build

log = logging.getLogger("vrouter.route")


INSTALLED = "installed"
"""A route the table forwards by."""
HELD = "held"
"""A route kept while another source's route to its prefix is installed."""
GONE = "gone"


INDEX_AT = 262_144
"""IPv4 routes at which a Fib builds its DIR-24-8 index: about where the
routes themselves (some 270 bytes each with their dict entries) weigh as much
as a 64 MiB top table, so the index at most doubles a table's memory (its top
table is 32 MiB, 64 MiB only in a table of more than 65,534 pairs of length and
next hop)."""
_index_missing: str | None = None
"""Why the index cannot be built (numpy not installed), once that is known."""
UNINDEX_BELOW = 65_536
"""IPv4 routes below which an indexed Fib drops its index again (a quarter of
:data:`INDEX_AT`, so a table moving around the threshold is not rebuilt
back and forth)."""


INDEX6_AT = 65_536
"""IPv6 routes at which a Fib builds its index on the top 32 bits (:mod:`vrouter.route.dir6`):
a random destination then costs an array read instead of a dict probe per length
present (some 24 in a full table).  Its top table holds memory only where
written (some 8 MiB for routes spread over 2000::/3) and each /32 holding a route
longer than /24 a dict entry (about 80 bytes)."""
UNINDEX6_BELOW = 16_384
"""IPv6 routes below which an indexed Fib drops its index again."""


REINDEX_AT = 131_072
"""Routes added at once (:meth:`Fib.add_many`) from which an indexed table drops
its index and builds it anew after them rather than patch it per route (a build
at a million routes costs about what patching this many does)."""


INDEX_SLICE = 512
"""Routes an index built a turn at a time (:attr:`Fib.schedule`) fills between two
looks at the clock."""
INDEX_TURN = 0.002
"""Seconds of one such turn: a million-route build then never holds the event
loop longer than about this (a build in one go takes 0.3-0.5 s at :data:`INDEX_AT`)."""
_NEXT_TURN = 1e-6
"""After a turn, the next one is due this much after the clock the turn was given:
later than now, so the timers run it only at their next run."""

Schedule = Callable[[float, Callable[[float], None]], object]
"""``(deadline, callback)``: run ``callback(now)`` once ``now >= deadline`` (a vnet's timers)."""


class Fib:
    """A longest-prefix-match table of :class:`Route` for one address family.

    Each prefix has at most one route per source; of those the one with the
    lowest distance is installed, the rest held.
    """

    _index: Index | None = None
    """The index of a large table (its ``lookup`` shadows the method): DIR-24-8 for
    IPv4, :mod:`vrouter.route.dir6` for IPv6."""
    _loading = False
    """Within :meth:`add_many`: the index waits for the last route."""
    _build: Building | None = None
    _unindexable = False
    """The table outgrew what its index can number (:class:`~vrouter.route.dir6.IndexFull`)."""
    """The index being built a turn at a time, until it is complete."""

    def __init__(self, bits: int = 32) -> None:
        self.bits = bits
        self._masks = _MASKS[bits]
        self._by_len: dict[int, dict[int, Route]] = {}
        self._lens: list[int] = []
        """The prefix lengths present, longest first."""
        self._probes: list[tuple[int, Callable[[int], Route | None]]] = []
        """``(mask, get)`` of each length present, longest first: what a lookup
        without the index tries in turn."""
        self._count = 0
        """Installed routes."""
        self._held: dict[tuple[int, int], list[Route]] = {}
        """The held routes of each prefix that has some, best first."""
        self._held_count = 0
        self._installed_by: dict[str, int] = {}
        """Installed routes per source name."""
        self._held_by: dict[str, int] = {}
        """Held routes per source name."""
        self.nhops: list[Nhop | None] = [None]
        """The table's next hops by :attr:`Nhop.id` (None where free).  Slot 0 is
        the default route's (None without one): what the IPv4 index answers for
        an address no longer route covers (its ``hops[0]``, kept the same)."""
        self._nhop_of: dict[tuple[object, ...], Nhop] = {}
        """The table's next hops by :meth:`Nhop.key`."""
        self._free_ids: list[int] = []
        self.token = object()
        """What this table's next hops have as :attr:`Nhop.owner`."""
        self.generation = 0
        self.schedule: Schedule | None = None
        """Where the table builds its index a turn at a time (:data:`INDEX_TURN` each,
        lookups answered from the dicts meanwhile); None: at once, in the add
        that reaches :data:`INDEX_AT`."""
        self.on_change: Callable[[str, Route], None] | None = None
        """Told ``(kind, route)`` after every change (route-socket monitors): ``add`` and
        ``delete`` for a route of any source, ``change`` when a route was replaced
        or became installed or held."""

    @property
    def _index_at(self) -> int:
        return INDEX_AT if self.bits == 32 else INDEX6_AT

    @property
    def _unindex_below(self) -> int:
        return UNINDEX_BELOW if self.bits == 32 else UNINDEX6_BELOW

    def touch(self) -> None:
        """Make destination caches rebuild (what they read besides routes changed)."""
        self.generation += 1

    def _lengths_changed(self) -> None:
        self._lens = sorted(self._by_len, reverse=True)
        self._probes = [(self._masks[plen], self._by_len[plen].get) for plen in self._lens]
        index = self._index if self._build is None else self._build.index
        if isinstance(index, dir6.Dir6):
            index.relength()

    def _check_family(self, route: Route) -> None:
        if route.bits != self.bits:
            raise RouteError(
                f"{route.prefix_text()} is not an IPv{4 if self.bits == 32 else 6} prefix"
            )

    def _tell(self, kind: str, route: Route) -> None:
        if self.on_change is not None:
            self.on_change(kind, route)

    def _take(self, route: Route) -> None:
        """Point ``route``, coming into the table, to the table's next hop going its way."""
        nhop = route.nhop
        if nhop.owner is not self.token:
            key = nhop.key()
            shared = self._nhop_of.get(key)
            if shared is None:
                shared = nhop if nhop.owner is None else nhop.copy()
                shared.owner = self.token
                if self._free_ids:
                    shared.id = self._free_ids.pop()
                    self.nhops[shared.id] = shared
                else:
                    shared.id = len(self.nhops)
                    self.nhops.append(shared)
                self._nhop_of[key] = shared
            route.nhop = nhop = shared
        nhop.refs += 1

    def _release(self, route: Route) -> None:
        """``route`` left the table: forget its next hop if no other route uses it."""
        nhop = route.nhop
        if nhop.owner is not self.token:
            return
        nhop.refs -= 1
        if not nhop.refs:
            del self._nhop_of[nhop.key()]
            self.nhops[nhop.id] = None
            self._free_ids.append(nhop.id)
            nhop.owner, nhop.id = None, 0
            index = self._ipv4_index()
            if index is not None:
                index.forget(nhop)

    def _set_default(self, route: Route | None) -> None:
        nhop = route.nhop if route is not None else None
        self.nhops[0] = nhop
        index = self._ipv4_index()
        if index is not None:
            index.hops[0] = nhop

    def _ipv4_index(self) -> Dir248 | None:
        """Return the DIR-24-8 index, complete or being built, if the table has one."""
        if self.bits != 32:
            return None
        index = self._index if self._build is None else self._build.index
        return index  # type: ignore[return-value]

    def add(self, route: Route) -> bool:
        """Insert ``route``; return True if it is installed, False if held.

        Its source must not hold a route to the prefix already.  It is held
        when a route of a lower (or the same) distance is installed.
        """
        nhop = route.nhop
        if nhop.owner is self.token:  # most of a feed: its routes share a next hop
            nhop.refs += 1
        else:
            self._check_family(route)
            self._take(route)
            nhop = route.nhop
        plen = route.plen
        key = route.net
        table = self._by_len.get(plen)
        if table is None:
            table = self._by_len[plen] = {}
            self._lengths_changed()
        current = table.get(key)
        if current is not None:
            try:
                return self._add_contender(table, key, current, route)
            except RouteError:
                self._release(route)
                raise
        table[key] = route
        if not plen:
            self._set_default(route)
        self._count += 1
        name = nhop.source.name
        self._installed_by[name] = self._installed_by.get(name, 0) + 1
        if self._index is not None or self._build is not None:
            index = self._patched(plen)
            if index is not None:
                self._index_add(index, route, key, plen)
        elif not self._loading and self._count >= self._index_at // 2:
            # not while loading: add_many builds the index after the last route
            self._near_index()
        self.generation += 1
        if self.on_change is not None:
            self.on_change("add", route)
        return True

    def _index_add(self, index: Index, route: Route, key: int, plen: int) -> None:
        try:
            index.add(route, key, plen, self._covering)
        except dir6.IndexFull as err:
            self._give_up_index(err)

    def add_many(self, routes: Iterable[Route]) -> int:
        """Add each of ``routes`` in turn as :meth:`add` does; return how many are installed.

        What loading a large table wants: an IPv4 table's DIR-24-8 index is
        built once, after the last route, instead of being patched route by
        route (an indexed table is unindexed for it when at least
        :data:`REINDEX_AT` routes come).  The cyclic garbage collector is
        paused meanwhile: given a generator that makes the routes, it would
        otherwise scan the growing heap of new routes again and again (about
        twice the cost of making them).  On a RouteError the routes before the
        bad one stay added, and indexed.
        """
        with gcpause.held():
            if self._build is not None:  # built at once after the batch instead
                self._drop_index()
            indexed = self._index is not None
            batch = routes
            if indexed:
                # Counted first (a generator taken whole); an unindexed table takes
                # a generator's routes one at a time, holding none it has not added.
                batch = routes if isinstance(routes, Collection) else list(routes)
                if len(batch) < REINDEX_AT:
                    return sum(self.add(route) for route in batch)
                self._drop_index()
            self._loading = True
            try:
                return sum(self.add(route) for route in batch)
            finally:
                self._loading = False
                threshold = self._unindex_below if indexed else self._index_at
                if self._count >= threshold and self._indexable():
                    self._build_index()

    def _indexable(self) -> bool:
        if self.bits == 128:
            return not self._unindexable
        return _index_missing is None

    def _near_index(self) -> None:
        """Start the index at :data:`INDEX_AT` routes; halfway there, where it is to be
        built a turn at a time, have its module imported meanwhile."""
        if self._wants_index():
            self._start_index()
        elif self.schedule is not None and self.bits == 32 and self._indexable():
            _import_index_aside()

    def _wants_index(self) -> bool:
        return (
            self._count >= self._index_at
            and self._index is None
            and self._build is None
            and not self._loading
            and self._indexable()
        )

    def _patched(self, plen: int) -> Index | None:
        """Return the index that a change to a /``plen`` route is patched into now, if any."""
        if self._index is not None:
            return self._index
        build = self._build
        return build.index if build is not None and build.reached(plen) else None

    def _add_contender(
        self, table: dict[int, Route], key: int, current: Route, route: Route
    ) -> bool:
        """Add ``route`` to a prefix that has an installed route, ``current``."""
        name = route.source.name
        if current.source.name == name or self._held_of(route.key, name) is not None:
            raise RouteError(f"a {name} route to {route.prefix_text()} already exists")
        if route.source.distance < current.source.distance:
            self._swap(table, key, current, route)
            self._tally(route.source.name, 1, 0)
            self._tally(current.source.name, -1, 1)
            self._hold(current)
            self._tell("add", route)
            self._tell("change", current)
            return True
        self._hold(route)
        self._tally(name, 0, 1)
        self._tell("add", route)
        return False

    def _tally(self, name: str, installed: int, held: int) -> None:
        for counts, delta in ((self._installed_by, installed), (self._held_by, held)):
            if delta:
                left = counts.get(name, 0) + delta
                if left:
                    counts[name] = left
                else:
                    del counts[name]

    def _hold(self, route: Route) -> None:
        """Put ``route`` among its prefix's held routes, after those of its distance."""
        held = self._held.setdefault(route.key, [])
        distance = route.source.distance
        at = len(held)
        while at and held[at - 1].source.distance > distance:
            at -= 1
        held.insert(at, route)
        self._held_count += 1

    def _unhold(self, route: Route) -> None:
        held = self._held[route.key]
        held.remove(route)
        if not held:
            del self._held[route.key]
        self._held_count -= 1

    def _held_of(self, key: tuple[int, int], name: str) -> Route | None:
        for route in self._held.get(key, ()):
            if route.source.name == name:
                return route
        return None

    def _swap(self, table: dict[int, Route], key: int, old: Route, new: Route) -> None:
        """Install ``new`` in place of ``old`` for the same prefix."""
        table[key] = new
        if not new.plen:
            self._set_default(new)
        index = self._patched(new.plen)
        if index is not None and (self.bits == 32 or old.number):
            index.swap(old, new)
        self.generation += 1

    def delete(self, prefix: Prefix, source: str = STATIC.name) -> Route:
        """Remove and return the route of ``source`` (a name) for exactly ``prefix``.

        When it was installed, the best held route of the prefix takes over.
        """
        plen = prefix.prefixlen
        key = int(prefix.network_address)
        table = self._by_len.get(plen)
        current = table.get(key) if table is not None else None
        if current is None:
            raise RouteError(f"no route to {prefix}")
        if current.source.name != source:
            route = self._held_of((plen, key), source)
            if route is None:
                raise RouteError(f"no {source} route to {prefix}")
            self._unhold(route)
            self._tally(source, 0, -1)
            self._release(route)
            self._tell("delete", route)
            return route
        assert table is not None
        held = self._held.get((plen, key))
        if held:
            successor = held[0]
            self._unhold(successor)
            self._swap(table, key, current, successor)
            self._tally(source, -1, 0)
            self._tally(successor.source.name, 1, -1)
            self._release(current)
            self._tell("delete", current)
            self._tell("change", successor)
            return current
        route = table.pop(key)
        if not plen:
            self._set_default(None)
        if not table:
            del self._by_len[plen]
            self._lengths_changed()
        self._count -= 1
        self._tally(source, -1, 0)
        index = self._patched(plen)
        if self._count < self._unindex_below and (
            self._index is not None or self._build is not None
        ):
            self._drop_index()
        elif index is not None and (self.bits == 32 or route.number):
            index.delete(route, key, plen, self._covering)  # IPv6: not yet numbered, skipped
        self.generation += 1
        self._release(route)
        self._tell("delete", route)
        return route

    def replace(self, route: Route) -> Route:
        """Put ``route`` in place of its source's route to the prefix; return that one.

        The installed route is changed in place when ``route`` is still the
        best; otherwise the old one goes and ``route`` is added as new.
        """
        self._check_family(route)
        name = route.source.name
        old = self._get(route.key, name)
        if old is None:
            raise RouteError(f"no {name} route to {route.prefix_text()}")
        held = self._held.get(route.key)
        current = self._get(route.key)
        best_held = held[0].source.distance if held else MAX_DISTANCE + 1
        if current is old and route.source.distance <= best_held:
            self._take(route)
            self._swap(self._by_len[route.plen], route.net, old, route)
            self._release(old)
            self._tell("change", route)
            return old
        assert current is not None  # old is held, so some route is installed
        if current is not old and route.source.distance >= current.source.distance:
            assert held is not None
            self._take(route)
            held[held.index(old)] = route
            held.sort(key=_distance)  # stable: equal distances keep their order
            self._release(old)
            self._tell("change", route)
            return old
        self.delete(route.prefix, name)
        self.add(route)
        return old

    def _get(self, key: tuple[int, int], source: str | None = None) -> Route | None:
        plen, net = key
        table = self._by_len.get(plen)
        route = table.get(net) if table is not None else None
        if source is None or route is None or route.source.name == source:
            return route
        return self._held_of(key, source)

    def get(self, prefix: Prefix, source: str | None = None) -> Route | None:
        """Return the installed route for exactly ``prefix`` (or ``source``'s, if named)."""
        return self._get((prefix.prefixlen, int(prefix.network_address)), source)

    def routes(self, prefix: Prefix) -> list[Route]:
        """Return every source's route for exactly ``prefix``, the installed one first."""
        key = prefix.prefixlen, int(prefix.network_address)
        route = self._get(key)
        if route is None:
            return []
        return [route, *self._held.get(key, ())]

    def state(self, route: Route) -> str:
        """Return ``installed``, ``held`` or ``gone`` (not in this table)."""
        if route.bits != self.bits:
            return GONE
        if self._get(route.key) is route:
            return INSTALLED
        if any(held is route for held in self._held.get(route.key, ())):
            return HELD
        return GONE

    def counts(self) -> dict[str, tuple[int, int]]:
        """Return (installed, held) routes per source name."""
        names = sorted(self._installed_by.keys() | self._held_by.keys())
        return {n: (self._installed_by.get(n, 0), self._held_by.get(n, 0)) for n in names}

    def _covering(self, key: int, plen: int) -> Route | None:
        """Return the longest route shorter than ``plen`` covering ``key``, if any."""
        by_len = self._by_len
        masks = self._masks
        for shorter in self._lens:
            if shorter < plen:
                route = by_len[shorter].get(key & masks[shorter])
                if route is not None:
                    return route
        return None

    def _start_index(self) -> None:
        """Build the index: at once, or a turn at a time where :attr:`schedule` says."""
        if self.schedule is None:
            self._build_index()
            return
        build: Building
        if self.bits == 128:
            build = dir6.Build(self._by_len, self._covering)
        else:
            try:
                from vrouter.route.dir248 import Build
            except ImportError as err:
                _missing_numpy(err)
                return
            build = Build(self._by_len, self.nhops)
        self._build = build
        self.schedule(0.0, functools.partial(self._index_turn, build))

    def _index_turn(self, build: Building, now: float) -> None:
        """Fill ``build`` for :data:`INDEX_TURN`; schedule the next turn."""
        if self._build is not build or self.schedule is None:
            return  # dropped meanwhile
        end = time.perf_counter() + INDEX_TURN
        while True:
            try:
                if build.step(INDEX_SLICE):
                    break
            except dir6.IndexFull as err:
                self._give_up_index(err)
                return
            if time.perf_counter() >= end:
                self.schedule(now + _NEXT_TURN, functools.partial(self._index_turn, build))
                return
        del self._build
        self._use_index(build.index)

    def _give_up_index(self, err: dir6.IndexFull) -> None:
        """Drop the index for good: the table has more routes than it can number."""
        self._unindexable = True
        log.warning("an IPv6 table goes unindexed: %s", err)
        if self._index is not None or self._build is not None:
            self._drop_index()
        else:  # being built at once
            for table in self._by_len.values():
                for route in table.values():
                    route.number = 0

    def _use_index(self, index: Index) -> None:
        self._index = index
        self.lookup = index.lookup  # type: ignore[method-assign,assignment]
        self.lookup_nhop = index.lookup_nhop  # type: ignore[method-assign,assignment]

    def _build_index(self) -> None:
        # Imported here: numpy costs a daemon whose tables stay small some
        # 12 MiB and its import time for nothing; and it is optional (the
        # ``fib`` extra): without it, lookups stay route-length by route-length.
        if self.bits == 128:
            index = dir6.Dir6(self._by_len)
            try:
                index.fill([r for t in self._by_len.values() for r in t.values()], self._covering)
            except dir6.IndexFull as err:
                self._give_up_index(err)
                return
            self._use_index(index)
            return
        try:
            from vrouter.route.dir248 import Dir248
        except ImportError as err:
            _missing_numpy(err)
            return
        self._use_index(Dir248(self._by_len, self.nhops))

    def _drop_index(self) -> None:
        """Forget the index, complete or being built."""
        if self.bits == 128:
            for table in self._by_len.values():
                for route in table.values():
                    route.number = 0
        if self._build is not None:
            del self._build  # a turn still scheduled finds none and stops
            return
        del self._index
        del self.lookup
        del self.lookup_nhop

    @property
    def indexed(self) -> bool:
        """Whether lookups go through the index (DIR-24-8 for IPv4, :mod:`~vrouter.route.dir6`)."""
        return self._index is not None

    @property
    def installed(self) -> int:
        """Return how many routes are installed (one per prefix)."""
        return self._count

    def lookup(self, dst: bytes) -> Route | None:
        """Return the most specific installed route covering ``dst`` (packed), or None."""
        addr = int.from_bytes(dst, "big")
        for mask, get in self._probes:
            route = get(addr & mask)
            if route is not None:
                return route
        return None

    def lookup_nhop(self, dst: bytes) -> Nhop | None:
        """Return the next hop of the most specific installed route covering ``dst``
        (packed), or None: what the data path needs, without reading the route
        (the IPv4 index answers it from its entries and :attr:`nhops`)."""
        addr = int.from_bytes(dst, "big")
        for mask, get in self._probes:
            route = get(addr & mask)
            if route is not None:
                return route.nhop
        return None

    def __iter__(self) -> Iterator[Route]:
        """Yield every route, installed and held: by prefix, the installed one first."""
        held = self._held
        for plen in self._lens:
            table = self._by_len.get(plen)
            if table is None:
                continue  # emptied since (an iterator read a slice at a time)
            for key in sorted(table):  # the network's number: by prefix, in C
                route = table.get(key)
                if route is None:
                    continue  # gone since (an iterator read a slice at a time)
                yield route
                if held:
                    yield from held.get((plen, key), ())

    def __len__(self) -> int:
        """Return the routes of every source, installed and held (what limits count)."""
        return self._count + self._held_count


_importing: threading.Thread | None = None
"""The thread importing the index's module (:func:`_import_index_aside`), once started."""


def _import_index_aside() -> None:
    """Import :mod:`vrouter.route.dir248` on a thread, once a process.

    Importing numpy takes some 0.12 s: in the add that reaches :data:`INDEX_AT`,
    one turn of the event loop.  Imported on a thread while the table grows, it
    takes the loop only a switch interval (5 ms) at a time.
    """
    global _importing
    if _importing is None:
        _importing = threading.Thread(target=_import_index, name="fib-index", daemon=True)
        _importing.start()


def _import_index() -> None:
    with contextlib.suppress(ImportError):  # told by the import that needs the index
        importlib.import_module("vrouter.route.dir248")


def _missing_numpy(err: ImportError) -> None:
    global _index_missing
    _index_missing = str(err)
    log.warning(
        "an IPv4 table passed %d routes, but without numpy it gets no DIR-24-8 "
        "index (%s; pip install 'vrouter[fib]')", INDEX_AT, err,
    )  # fmt: skip


def _distance(route: Route) -> int:
    return route.source.distance
