"""An index over a large IPv6 :class:`~vrouter.route.fib.Fib`'s tables, on the top 32 bits.

Without it, a lookup probes the Fib's dicts longest length first: a random
destination that only the default route covers costs one probe per length
present (some 24 in a full table).  With it, most lookups cost an array read:

- The **top table**, indexed by the top 24 bits of the destination (2^24
  entries of 32 bits: 64 MiB of address space, but only the pages written hold
  memory, some 8 MiB for routes spread over all of 2000::/3), holds per /24
  the number of the longest route of length :data:`SHORTEST`..24 covering it
  (0: none) and how many of its /32s are *cells*.
- A **cell** is a /32 that a route longer than /24 lies in or covers.  A dict
  by /32 gives it the ``(mask, dict.get)`` probes of those lengths, longest
  first, over the Fib's own dicts (real tables have a few per /32, most
  /32 to /48); the probes are shared by every cell of the same lengths.
- Routes shorter than :data:`SHORTEST` (the default route above all, but also
  ``::/1``, ``2000::/3`` or a /8) are kept out of the arrays: a lookup the top table
  does not answer probes their lengths (none but ``/0`` in most tables: the
  default route is read from ``routes[0]``).  Changing such a route touches
  nothing here, so a default route's change costs what it costs without the
  index.

A lookup: the top table's entry; if the /24 has cells, the /32's probes
(most random destinations find none); then the entry's route, else the short
routes.  The answers are exactly those of probing the Fib's dicts longest
first.

Every add and delete patches the index: a route of 12..24 turns, across its
span of the top table, the entries of the route it shadows into its own (as
:mod:`vrouter.route.dir248` does; at most 4,096 entries, for a /12); a longer
route adds its length to the one cell it lies in (or the cells of the /32s
it covers, for /25../31); the index does not depend on the order routes
came in, so it can be filled a slice at a time while the table changes
(:class:`Build`).  Pure Python: no numpy.
"""

from __future__ import annotations

import mmap
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vrouter.route.entry import Nhop, Route

SHORTEST = 12
"""Routes shorter than this stay out of the top table (a /12 spans 4,096 of its entries,
a change of it about 0.4 ms; a /8 would span 65,536, some 7 ms)."""
TOP_BITS = 24
CELL_BITS = 32
_NUMBER = (1 << 23) - 1
"""The low 23 bits of a top-table entry: the route's number."""
_CELL = 1 << 23
"""A top-table entry counts its /24's cells from this bit on (at most 256)."""
MAX_NUMBER = _NUMBER
"""Routes of :data:`SHORTEST`..24 the index can number."""
UNNUMBERED = -1
"""``route.number`` of a route the index holds without a number of its own (all but
those of :data:`SHORTEST`..24)."""
_FULL = (1 << 128) - 1

Covering = Callable[[int, int], "Route | None"]
"""``(net, plen) -> the longest route shorter than plen covering net, or None``."""
Probe = tuple[int, Callable[[int], "Route | None"]]


class IndexFull(Exception):
    """More routes of :data:`SHORTEST`..24 than an entry can number."""


def _top_table() -> memoryview:
    """Return a zeroed top table in private anonymous memory (pages held once written)."""
    memory = mmap.mmap(-1, 4 << TOP_BITS, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return memoryview(memory).cast("I")


def _mask(plen: int) -> int:
    return (_FULL << (128 - plen)) & _FULL


class Dir6:
    """The index of one IPv6 Fib; ``lookup`` answers as the Fib's dict probes would."""

    def __init__(self, tables: Mapping[int, Mapping[int, Route]]) -> None:
        """Make an empty index over ``tables`` (the Fib's dicts: length -> network -> route).

        Routes are put in with :meth:`add` (or :class:`Build`); ``tables`` is
        read for the dicts the probes use.
        """
        self.top = _top_table()
        self._tables = tables
        self.routes: list[Route | None] = [None]
        """Routes of SHORTEST..24 by number; ``routes[0]`` is the default route (or None)."""
        self.lengths = bytearray(1)
        """Indexed by number: the route's prefix length (0 for no route)."""
        self._free: list[int] = []
        self.cells: dict[int, tuple[Probe, ...]] = {}
        """The probes of each cell (by /32: the address's top 32 bits)."""
        self._many: dict[int, int] = {}
        """``(cell << 8) | plen`` -> routes of that length (> 32) in the cell, where there
        are two or more (one, the usual, is not written down)."""
        self._shapes: dict[tuple[int, ...], tuple[Probe, ...]] = {}
        """The probes of each set of lengths (longest first), shared by the cells."""
        self.short: list[Probe] = []
        """The probes of the lengths 1..SHORTEST-1 present, longest first."""
        self.relength()
        self.lookup = self._lookup_function()
        self.lookup_nhop = self._lookup_nhop_function()

    def relength(self) -> None:
        """Take the lengths present anew (the Fib made or dropped a length's dict)."""
        self._shapes.clear()  # their probes may name a dropped dict
        tables = self._tables
        self.short[:] = [
            (_mask(plen), tables[plen].get)
            for plen in sorted(tables, reverse=True)
            if 0 < plen < SHORTEST
        ]
        default = tables.get(0)
        self.routes[0] = default.get(0) if default is not None else None

    def _lookup_function(self) -> Callable[[bytes], Route | None]:
        top, cells_get, routes, short = self.top, self.cells.get, self.routes, self.short
        from_bytes = int.from_bytes

        def lookup(dst: bytes) -> Route | None:
            """Return the most specific route covering ``dst`` (packed), or None."""
            addr = from_bytes(dst, "big")
            entry = top[addr >> 104]
            if entry > _NUMBER:  # the /24 has cells
                probes = cells_get(addr >> 96)
                if probes is not None:
                    for mask, get in probes:
                        route = get(addr & mask)
                        if route is not None:
                            return route
                entry &= _NUMBER
            if entry or not short:
                return routes[entry]
            for mask, get in short:
                route = get(addr & mask)
                if route is not None:
                    return route
            return routes[0]

        return lookup

    def _lookup_nhop_function(self) -> Callable[[bytes], Nhop | None]:
        top, cells_get, routes, short = self.top, self.cells.get, self.routes, self.short
        from_bytes = int.from_bytes

        def lookup_nhop(dst: bytes) -> Nhop | None:
            """Return the next hop of the most specific route covering ``dst`` (packed):
            :meth:`lookup`'s steps, not a call of it (a call costs a quarter of it)."""
            addr = from_bytes(dst)  # big-endian, the default
            entry = top[addr >> 104]
            if entry > _NUMBER:  # the /24 has cells
                probes = cells_get(addr >> 96)
                if probes is not None:
                    for mask, get in probes:
                        route = get(addr & mask)
                        if route is not None:
                            return route.nhop
                entry &= _NUMBER
            if entry or not short:
                route = routes[entry]
                return route.nhop if route is not None else None
            for mask, get in short:
                route = get(addr & mask)
                if route is not None:
                    return route.nhop
            route = routes[0]
            return route.nhop if route is not None else None

        return lookup_nhop

    # ------------------------------------------------------------------ changes

    def add(self, route: Route, net: int, plen: int, covering: Covering) -> None:
        """Index ``route``, just added to the Fib for ``net``/``plen``.

        ``covering(net, plen)`` returns the longest route shorter than ``plen``
        covering ``net`` (from the Fib's dicts), asked only when the top table
        cannot tell.
        """
        if plen > TOP_BITS:
            self._add_cells(net, plen)
            route.number = UNNUMBERED
            return
        if plen < SHORTEST:
            route.number = UNNUMBERED
            if plen == 0:
                self.routes[0] = route
            return
        slot = net >> 104
        old = self.top[slot] & _NUMBER
        if old and self.lengths[old] >= plen:  # a longer route holds net's entry
            old = self._number(covering(net, plen))
        # else the route of net's entry covers all of the span
        number = self._take(route, plen)
        self._replace(slot, plen, old, number)

    def delete(self, route: Route, net: int, plen: int, covering: Covering) -> None:
        """Unindex ``route``, just deleted from the Fib (arguments as for :meth:`add`)."""
        number = route.number
        route.number = 0
        if plen > TOP_BITS:
            self._delete_cells(net, plen)
            return
        if plen < SHORTEST:
            if plen == 0:
                self.routes[0] = None
            return
        self._replace(net >> 104, plen, number, self._number(covering(net, plen)))
        self.routes[number] = None
        self.lengths[number] = 0
        self._free.append(number)

    def swap(self, old: Route, new: Route) -> None:
        """Give ``new``, just installed in place of ``old`` (same prefix), ``old``'s place."""
        number = new.number = old.number
        old.number = 0
        if number > 0:
            self.routes[number] = new
        elif new.plen == 0:
            self.routes[0] = new

    def _number(self, route: Route | None) -> int:
        """The number of ``route`` in the top table (0: none, or not numbered yet)."""
        if route is None or route.plen < SHORTEST:
            return 0
        return max(route.number, 0)

    def _take(self, route: Route, plen: int) -> int:
        """Give ``route`` a number."""
        if self._free:
            number = route.number = self._free.pop()
            self.routes[number] = route
            self.lengths[number] = plen
            return number
        number = len(self.routes)
        if number > MAX_NUMBER:
            raise IndexFull(f"more than {MAX_NUMBER} routes of /{SHORTEST}../{TOP_BITS}")
        route.number = number
        self.routes.append(route)
        self.lengths.append(plen)
        return number

    def _replace(self, slot: int, plen: int, old: int, new: int) -> None:
        """Turn ``old`` into ``new`` in every top-table entry of the span from ``slot``."""
        top = self.top
        count = 1 << (TOP_BITS - plen)
        if count == 1:
            entry = top[slot]
            if entry & _NUMBER == old:
                top[slot] = entry - old + new
            return
        end = slot + count
        keep = ~_NUMBER
        top[slot:end] = array(
            "I",
            [
                (entry & keep) | new if entry & _NUMBER == old else entry
                for entry in top[slot:end].tolist()
            ],
        )

    def _span(self, net: int, plen: int) -> Sequence[int]:
        """The cells a route longer than /24 lies in (or covers, if shorter than /32)."""
        first = net >> 96
        return range(first, first + (1 << (CELL_BITS - plen))) if plen < CELL_BITS else (first,)

    def _add_cells(self, net: int, plen: int) -> None:
        cells, top = self.cells, self.top
        for cell in self._span(net, plen):
            probes = cells.get(cell)
            if probes is None:
                cells[cell] = self._shape((plen,))
                top[cell >> 8] += _CELL
                continue
            lengths = _lengths(probes)
            if plen in lengths:  # another route of this length (> 32) in the cell
                key = (cell << 8) | plen
                self._many[key] = self._many.get(key, 1) + 1
                continue
            cells[cell] = self._shape(tuple(sorted((*lengths, plen), reverse=True)))

    def _delete_cells(self, net: int, plen: int) -> None:
        cells, top, many = self.cells, self.top, self._many
        for cell in self._span(net, plen):
            if plen > CELL_BITS and many:
                key = (cell << 8) | plen
                count = many.get(key)
                if count is not None:  # others of this length stay in the cell
                    if count > 2:
                        many[key] = count - 1
                    else:
                        del many[key]
                    continue
            probes = cells[cell]
            if len(probes) == 1:  # the route's length alone
                del cells[cell]
                top[cell >> 8] -= _CELL
            else:
                cells[cell] = self._shape(tuple(n for n in _lengths(probes) if n != plen))

    def _shape(self, lengths: tuple[int, ...]) -> tuple[Probe, ...]:
        """Return the shared probes of ``lengths`` (longest first)."""
        probes = self._shapes.get(lengths)
        if probes is None:
            tables = self._tables
            probes = self._shapes[lengths] = tuple(
                (_mask(plen), tables[plen].get) for plen in lengths
            )
        return probes

    def fill(self, routes: Iterable[Route], covering: Covering) -> None:
        """Index ``routes`` (in the Fib, not indexed yet), in any order."""
        add = self.add
        for route in routes:
            add(route, route.net, route.plen, covering)


def _lengths(probes: Sequence[Probe]) -> tuple[int, ...]:
    """The lengths of ``probes`` (a mask's bits are its length)."""
    return tuple([mask.bit_count() for mask, _ in probes])


class Build:
    """A :class:`Dir6` filled a slice at a time while its table keeps changing.

    The index does not depend on the order routes come in, so every change
    made meanwhile is patched into it at once (:meth:`reached` is always
    true) and the slices skip the routes already numbered; a route deleted
    before its slice is not found in the table then and skipped.
    """

    def __init__(self, tables: Mapping[int, Mapping[int, Route]], covering: Covering) -> None:
        self.index = Dir6(tables)
        self._tables = tables
        self._covering = covering
        self._todo = [(plen, list(tables[plen])) for plen in sorted(tables)]

    def reached(self, plen: int) -> bool:
        """Whether a change to a /``plen`` route is patched into the index now (always)."""
        return True

    def step(self, count: int) -> bool:
        """Fill up to ``count`` more routes; return whether the index is complete."""
        todo = self._todo
        while count > 0 and todo:
            plen, nets = todo[-1]
            part = nets[-count:]
            del nets[-count:]
            if not nets:
                todo.pop()
            count -= len(part)
            table = self._tables.get(plen, {})
            found = [r for r in map(table.get, part) if r is not None and not r.number]
            self.index.fill(found, self._covering)
        return not todo
