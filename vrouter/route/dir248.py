"""A DIR-24-8 index over an IPv4 :class:`~vrouter.route.fib.Fib`'s tables.

DIR-24-8 (Gupta, Lin, McKeown, "Routing lookups in hardware at memory access
speeds", INFOCOM 1998): a 2^24-entry table indexed by the top 24 bits of the
destination, and for the /24s that hold longer prefixes a 256-entry block
indexed by the last byte.  An entry holds the most specific route covering
it as its prefix length and the number of its next hop in the Fib
(:class:`~vrouter.route.fib.Nhop`, :attr:`~vrouter.route.fib.Fib.nhops`):
``plen << 24 | nhop.id`` (0: no route but the default one; :data:`BLOCK` in
the top table: see the block).  Two routes never share an entry value where
it matters: within a route's span, an entry of its length can only be its
own.  A lookup is one or two array reads and one read of the next hops'
list, a few objects however many routes there are: the data path's
:meth:`lookup_nhop`, with no route object read; :meth:`lookup` goes on to
the route with one dict probe of the entry's length.  The default route is
kept out of the entries (``nhops[0]`` is its next hop), so changing it
writes nothing here.  No route holds a number of its own.  The top table is
64 MiB of 32-bit entries (in huge pages where the kernel gives them), a
block 1 KiB.

Every add and delete patches the index in place, in time proportional to the
prefix's span, not to the routes under it.  Inside a prefix P every shorter
route covers all of P, so every entry of P's span that is not taken by a
longer prefix holds the same route: Q, the longest shorter route covering P
(the caller finds it in its dicts).  Adding P turns Q's entry value into P's
across the span, deleting P turns it back, and a route replacing P with
another next hop turns P's value into the new one (a no-op when the next
hop is the same): one vectorized compare-and-assign
over the span (numpy, over the arrays' own buffers) and over the blocks in
it.  A block is made when a /25../32 arrives in a plain /24 and given back
when all its entries hold the same route of length <= 24 again.  The answers
are exactly those of probing the Fib's dicts longest first.
"""

from __future__ import annotations

import mmap
from array import array
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np  # imported only with the first index: see vrouter.route.fib

if TYPE_CHECKING:
    from vrouter.route.entry import Nhop, Route

BLOCK = 0xFFFF_FFFF
"""A top-table entry that sends the lookup to the /24's block."""
ID = 0xFF_FFFF
"""The low 24 bits of an entry: the number of the route's next hop."""
PLEN = 24
"""An entry's prefix length is shifted this far."""

_SCALAR_SPAN = 8
"""Spans of up to this many entries are patched without numpy."""
_SPREAD = 256
"""Prefixes of up to this many top-table entries (/16 and longer) are written all
lengths at once when the index is built; shorter ones, few in any table, one by one."""
TOP_BYTES = 4 << 24

Covering = Callable[[int, int], "Route | None"]
"""``(net, plen) -> the longest route shorter than plen covering net, or None``."""


def _top_table() -> tuple[memoryview, np.ndarray]:
    """Return a zeroed top table: item by item (``memoryview`` of ``I``) and as numpy sees it.

    Private anonymous memory advised to live in huge pages where the kernel
    allows it (transparent huge pages ``always`` or ``madvise``): a lookup of a
    random destination then misses the TLB less (measured in bench/RESULTS.md).
    """
    memory = mmap.mmap(-1, TOP_BYTES, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        memory.madvise(mmap.MADV_HUGEPAGE)
    return memoryview(memory).cast("I"), np.frombuffer(memory, dtype=np.uint32)


def value(route: Route | None) -> int:
    """Return the entry value of ``route`` (0 for none or the default route)."""
    if route is None or not route.plen:
        return 0
    return route.plen << PLEN | route.nhop.id


class Dir248:
    """The index of one IPv4 Fib; ``lookup`` answers as the Fib's dict probes would."""

    def __init__(
        self,
        tables: Mapping[int, Mapping[int, Route]],
        nhops: list[Nhop | None],
        fill: bool = True,
    ) -> None:
        """Build the index of ``tables`` (the Fib's dicts: length -> network -> route)
        whose next hops are ``nhops`` (the Fib's list, by id; both kept, not copied);
        with ``fill`` false, leave it empty (:class:`Build` fills it)."""
        self.top, self._top = _top_table()
        self.blocks: dict[int, array[int]] = {}
        """Blocks of the /24s (by top-table slot) that hold longer prefixes."""
        self.tables = tables
        self.nhops = nhops
        for plen in sorted(tables) if fill else ():  # shortest first: a longer one overwrites
            table = tables[plen]
            self.fill(table.values(), table.keys(), plen)
        self.lookup, self.lookup_nhop = self._lookup_functions()

    def fill(self, routes: Collection[Route], nets: Collection[int], plen: int) -> None:
        """Write ``routes`` (all /``plen``, networks ``nets``) into the entries.

        Entries of their spans are overwritten, not compared: what holds them
        must be shorter (a longer prefix inside is written after them), or the
        route itself (written again, the same value).
        """
        if not plen:
            return  # the default route is nhops[0]
        if plen <= 24:
            self._fill_top(routes, nets, plen)
        else:
            self._fill_blocks(routes, plen)

    def _fill_top(self, routes: Collection[Route], nets: Collection[int], plen: int) -> None:
        """Point the top-table spans of ``nets`` (all /``plen``) at ``routes``."""
        slots = np.fromiter(nets, dtype=np.uint32, count=len(nets)) >> 8
        numbers = np.fromiter((route.nhop.id for route in routes), dtype=np.uint32,
                              count=len(routes))  # fmt: skip
        numbers |= np.uint32(plen << PLEN)
        span = 1 << (24 - plen)
        if span <= _SPREAD:  # one vectorized assignment: every entry of every span
            spans = slots[:, np.newaxis] + np.arange(span, dtype=np.uint32)
            self._top[spans.ravel()] = np.repeat(numbers, span)
            return
        for slot, number in zip(slots.tolist(), numbers.tolist(), strict=True):
            self._top[slot : slot + span] = number

    def _fill_blocks(self, routes: Iterable[Route], plen: int) -> None:
        """Write ``routes`` (all /``plen``, longer than /24) into blocks."""
        count = 1 << (32 - plen)
        high = plen << PLEN
        for route in routes:
            net = route.net
            block = self._block(net >> 8)
            first = net & 0xFF
            block[first : first + count] = array("I", [high | route.nhop.id]) * count

    def _lookup_functions(
        self,
    ) -> tuple[Callable[[bytes], Route | None], Callable[[bytes], Nhop | None]]:
        top, blocks, nhops, tables = self.top, self.blocks, self.nhops, self.tables
        from_bytes = int.from_bytes
        masks = [((1 << 32) - 1) << (32 - plen) & 0xFFFF_FFFF for plen in range(33)]
        block, ident = BLOCK, ID  # read from the closure, not the module's globals

        def lookup(dst: bytes) -> Route | None:
            """Return the most specific route covering ``dst`` (packed), or None."""
            addr = from_bytes(dst)  # big-endian, the default
            entry = top[addr >> 8]
            if entry == block:
                entry = blocks[addr >> 8][addr & 0xFF]
            plen = entry >> PLEN
            table = tables.get(plen)
            return table.get(addr & masks[plen]) if table is not None else None

        def lookup_nhop(dst: bytes) -> Nhop | None:
            """Return the next hop of the most specific route covering ``dst`` (packed)."""
            addr = from_bytes(dst)  # big-endian, the default
            entry = top[addr >> 8]
            if entry == block:
                entry = blocks[addr >> 8][addr & 0xFF]
            return nhops[entry & ident]

        return lookup, lookup_nhop

    def add(self, route: Route, net: int, plen: int, covering: Covering) -> None:
        """Index ``route``, just added to the Fib for ``net``/``plen``.

        ``covering(net, plen)`` returns the longest route shorter than ``plen``
        covering ``net`` (from the Fib's dicts); asked only when the index
        cannot tell: the route an address of the span has now is that one
        unless it is longer than ``plen``.
        """
        if not plen:
            return  # the default route is nhops[0]
        slot = net >> 8
        top = self.top
        old = top[slot]
        if old == BLOCK:
            old = self.blocks[slot][net & 0xFF]
        if old >> PLEN >= plen:  # the route of net's address is longer
            old = value(covering(net, plen))
        # else it covers all of the span
        number = plen << PLEN | route.nhop.id
        if plen == 24 and top[slot] == old:  # most of a full table
            top[slot] = number
        else:
            self._replace(net, plen, old, number)

    def delete(self, route: Route, net: int, plen: int, covering: Covering) -> None:
        """Unindex ``route``, just deleted from the Fib (arguments as for :meth:`add`)."""
        if not plen:
            return
        self._replace(net, plen, value(route), value(covering(net, plen)))
        if plen > 24:
            self._merge(net >> 8)

    def _merge(self, slot: int) -> None:
        """Give back the block of ``slot`` if all of it holds one route of /24 or shorter."""
        block = self.blocks.get(slot)
        if block is None:
            return
        first = block[0]
        if first >> PLEN <= 24 and block.count(first) == 256:
            self.top[slot] = first
            del self.blocks[slot]

    def swap(self, old: Route, new: Route) -> None:
        """Write ``new``, just installed in place of ``old`` (same prefix), where ``old``
        was: nothing to do when they share a next hop."""
        was, now = value(old), value(new)
        if was != now:
            self._replace(new.net, new.plen, was, now)
            if new.plen > 24:
                self._merge(new.net >> 8)

    def _block(self, slot: int) -> array[int]:
        """Return the block of ``slot``, made from its top-table entry if need be."""
        block = self.blocks.get(slot)
        if block is None:
            block = self.blocks[slot] = array("I", [self.top[slot]]) * 256
            self.top[slot] = BLOCK
        return block

    def _replace(self, net: int, plen: int, old: int, new: int) -> None:
        """Turn ``old`` into ``new`` in every entry of the span of ``net``/``plen``."""
        slot = net >> 8
        if plen > 24:
            block = self._block(slot)
            first = net & 0xFF
            count = 1 << (32 - plen)
            if count <= _SCALAR_SPAN:
                for at in range(first, first + count):
                    if block[at] == old:
                        block[at] = new
                return
            span = np.frombuffer(block, dtype=np.uint32)[first : first + count]
            span[span == old] = new
            return
        end = slot + (1 << (24 - plen))
        top, blocks = self.top, self.blocks
        if end - slot <= _SCALAR_SPAN:
            for at in range(slot, end):
                value = top[at]
                if value == old:
                    top[at] = new
                elif value == BLOCK:
                    whole = np.frombuffer(blocks[at], dtype=np.uint32)
                    whole[whole == old] = new
            return
        span = self._top[slot:end]
        span[span == old] = new
        for at in np.flatnonzero(span == BLOCK).tolist():
            whole = np.frombuffer(blocks[slot + at], dtype=np.uint32)
            whole[whole == old] = new

    def memory(self) -> int:
        """Return the bytes held by the top table and the blocks."""
        return 4 * (len(self.top) + 256 * len(self.blocks))


class Build:
    """A :class:`Dir248` filled a slice at a time while its table keeps changing.

    Lengths are filled shortest first, as :class:`Dir248` does at once; the
    networks of a length are read when its turn comes and filled a slice a
    step.  Meanwhile the table goes on answering from its dicts, and patches
    the index for every change to a route of a length already reached
    (:meth:`reached`): the index then holds exactly the routes shorter than
    :attr:`plen` and those of :attr:`plen` written so far, so the rest are
    written over it as the one-go build would.  A route of :attr:`plen` added
    meanwhile is written at once (and again, the same value, if its slice
    comes later); one deleted before its slice is not found in the table then
    and skipped (its delete found none of its value to patch); one replaced is
    found as its replacement.
    """

    def __init__(self, tables: Mapping[int, Mapping[int, Route]], nhops: list[Nhop | None]) -> None:
        self.index = Dir248(tables, nhops, fill=False)
        self._tables = tables
        self.plen = -1
        """The length being filled: shorter ones are complete."""
        self._nets: list[int] = []
        """The networks of :attr:`plen` not filled yet (as they were when its turn came)."""

    def reached(self, plen: int) -> bool:
        """Whether a change to a /``plen`` route is patched into the index now."""
        return plen <= self.plen

    def step(self, count: int) -> bool:
        """Fill up to ``count`` more routes; return whether the index is complete."""
        while count > 0:
            if not self._nets and not self._next_length():
                return True
            nets = self._nets[-count:]
            del self._nets[-count:]
            count -= len(nets)
            table = self._tables.get(self.plen, {})
            routes = [r for r in map(table.get, nets) if r is not None]
            self.index.fill(routes, [route.net for route in routes], self.plen)
        return not self._nets and not any(plen > self.plen for plen in self._tables)

    def _next_length(self) -> bool:
        """Move on to the next length present; return False when there is none."""
        longer = [plen for plen in self._tables if plen > self.plen]
        if not longer:
            return False
        self.plen = min(longer)
        self._nets = list(self._tables[self.plen])
        return True
