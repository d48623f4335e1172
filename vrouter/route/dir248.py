"""A DIR-24-8 index over an IPv4 :class:`~vrouter.route.fib.Fib`'s tables.

DIR-24-8 (Gupta, Lin, McKeown, "Routing lookups in hardware at memory access
speeds", INFOCOM 1998): a 2^24-entry table indexed by the top 24 bits of the
destination, and for the /24s that hold longer prefixes a 256-entry block
indexed by the last byte.  An entry holds the most specific route covering
it as a *code* of its prefix length and next hop
(:class:`~vrouter.route.entry.Nhop`): the index numbers each (length, next
hop) pair its routes have, and keeps per code the next hop (:attr:`Dir248.hops`)
and the length (:attr:`Dir248.plens`).  Code 0 is "no route but the default
one", :data:`BLOCK` "see the /24's block".  Two routes never share an entry
value where it matters: within a route's span, an entry of its length can
only be its own.  A lookup is one or two array reads and one read of the
list of next hops by code, a few objects however many routes there are: the
data path's :meth:`lookup_nhop`, with no route object read; :meth:`lookup`
goes on to the route with one dict probe of the entry's length.  The default
route is kept out of the entries (``hops[0]`` is its next hop), so changing
it writes nothing here.  No route holds a number of its own.

A table's pairs are few (some lengths times its next hops), so the top table
holds 16-bit codes: 32 MiB, in huge pages where the kernel gives them, half
of what 32-bit entries take, and a random lookup finds it in the CPU's cache
more often.  Should a table have more than :data:`CODES_16` pairs, the top
table is widened to 32 bits, once (:meth:`Dir248._widen`).  A block is 256
32-bit codes (1 KiB).  The codes of a next hop are given back when the Fib
forgets it (:meth:`Dir248.forget`): no route, so no entry, goes there any more.

Every add and delete patches the index in place, in time proportional to the
prefix's span, not to the routes under it.  Inside a prefix P every shorter
route covers all of P, so every entry of P's span that is not taken by a
longer prefix holds the same route: Q, the longest shorter route covering P
(the caller finds it in its dicts).  Adding P turns Q's code into P's
across the span, deleting P turns it back, and a route replacing P with
another next hop turns P's code into the new one (a no-op when the next
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

NONE = 0
"""The code of an entry no route but the default one covers."""
BLOCK = 1
"""The code of a top-table entry that sends the lookup to the /24's block."""
_BLOCK_PLEN = 64
"""What :attr:`Dir248.plens` gives for :data:`BLOCK` (no route's length)."""
CODES_16 = 1 << 16
"""Codes a 16-bit top table holds; a table with more pairs widens it to 32 bits."""
PLEN = 24
"""How far an entry's prefix length is shifted in :func:`value` (tests, views)."""

_SCALAR_SPAN = 8
"""Spans of up to this many entries are patched without numpy."""
_SPREAD = 256
"""Prefixes of up to this many top-table entries (/16 and longer) are written all
lengths at once when the index is built; shorter ones, few in any table, one by one."""
TOP_ENTRIES = 1 << 24

Covering = Callable[[int, int], "Route | None"]
"""``(net, plen) -> the longest route shorter than plen covering net, or None``."""


def _top_table(itemsize: int) -> tuple[memoryview, np.ndarray]:
    """Return a zeroed top table of ``itemsize``-byte entries (2 or 4): item by item
    (``memoryview`` of ``H`` or ``I``) and as numpy sees it.

    Private anonymous memory advised to live in huge pages where the kernel
    allows it (transparent huge pages ``always`` or ``madvise``): a lookup of a
    random destination then misses the TLB less (measured in bench/RESULTS.md).
    """
    memory = mmap.mmap(-1, itemsize * TOP_ENTRIES, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        memory.madvise(mmap.MADV_HUGEPAGE)
    dtype = np.uint16 if itemsize == 2 else np.uint32
    return memoryview(memory).cast("H" if itemsize == 2 else "I"), np.frombuffer(memory, dtype)


def value(route: Route | None) -> int:
    """Return ``plen << 24 | next hop id`` of ``route`` (0 for none or the default
    route): what an entry's code stands for, as :meth:`Dir248.values` gives it."""
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
        whose next hops are ``nhops`` (the Fib's list, by id, slot 0 the default
        route's; both kept, not copied); with ``fill`` false, leave it empty
        (:class:`Build` fills it)."""
        self.top, self._top = _top_table(2)
        self.blocks: dict[int, array[int]] = {}
        """Blocks of the /24s (by top-table slot) that hold longer prefixes."""
        self.tables = tables
        self.nhops = nhops
        self.hops: list[Nhop | None] = [nhops[0], None]
        """The next hop of each code (None where free); ``hops[0]`` the default
        route's, kept so by the Fib."""
        self.plens = [0, _BLOCK_PLEN]
        """The prefix length of each code."""
        self._codes: dict[Nhop, dict[int, int]] = {}
        """The codes of each next hop, by prefix length."""
        self._free: list[int] = []
        self.lookup, self.lookup_nhop, self._retop = self._lookup_functions()
        for plen in sorted(tables) if fill else ():  # shortest first: a longer one overwrites
            table = tables[plen]
            self.fill(table.values(), table.keys(), plen)

    def code(self, route: Route | None) -> int:
        """Return the code of ``route``'s entries (0 for none or the default route),
        numbering its pair if it has none yet."""
        if route is None or not route.plen:
            return NONE
        nhop = route.nhop
        codes = self._codes.get(nhop)
        if codes is not None:
            code = codes.get(route.plen)
            if code is not None:
                return code
        return self._number(route.plen, nhop)

    def _number(self, plen: int, nhop: Nhop) -> int:
        """Give ``plen`` and ``nhop`` a code (widening the top table if it is full)."""
        if self._free:
            code = self._free.pop()
            self.hops[code] = nhop
            self.plens[code] = plen
        else:
            code = len(self.hops)
            if code == CODES_16 and self.top.itemsize == 2:
                self._widen()
            self.hops.append(nhop)
            self.plens.append(plen)
        self._codes.setdefault(nhop, {})[plen] = code
        return code

    def _widen(self) -> None:
        """Move the top table to 32-bit entries: the table has more pairs than 16 bits number."""
        top, wide = _top_table(4)
        wide[:] = self._top
        self.top, self._top = top, wide
        self._retop(top)

    def forget(self, nhop: Nhop) -> None:
        """Give back the codes of ``nhop``, which the Fib just forgot: no route goes
        there, so no entry holds them."""
        for code in self._codes.pop(nhop, {}).values():
            self.hops[code] = None
            self.plens[code] = 0
            self._free.append(code)

    def fill(self, routes: Collection[Route], nets: Collection[int], plen: int) -> None:
        """Write ``routes`` (all /``plen``, networks ``nets``) into the entries.

        Entries of their spans are overwritten, not compared: what holds them
        must be shorter (a longer prefix inside is written after them), or the
        route itself (written again, the same code).
        """
        if not plen:
            return  # the default route is hops[0]
        if plen <= 24:
            self._fill_top(routes, nets, plen)
        else:
            self._fill_blocks(routes, plen)

    def _fill_top(self, routes: Collection[Route], nets: Collection[int], plen: int) -> None:
        """Point the top-table spans of ``nets`` (all /``plen``) at ``routes``."""
        if not routes:
            return
        slots = np.fromiter(nets, dtype=np.uint32, count=len(nets)) >> 8
        ids = np.fromiter((route.nhop.id for route in routes), dtype=np.uint32,
                          count=len(routes))  # fmt: skip
        codes = np.zeros(int(ids.max()) + 1, dtype=np.uint32)  # by next hop id
        nhops = self.nhops
        for ident in np.flatnonzero(np.bincount(ids)).tolist():
            nhop = nhops[ident]
            assert nhop is not None  # a route of the table goes there
            known = self._codes.get(nhop)
            code = known.get(plen) if known is not None else None
            codes[ident] = code if code is not None else self._number(plen, nhop)
        numbers = codes[ids]
        top = self._top  # read after numbering: it may have widened
        span = 1 << (24 - plen)
        if span <= _SPREAD:  # one vectorized assignment: every entry of every span
            spans = slots[:, np.newaxis] + np.arange(span, dtype=np.uint32)
            top[spans.ravel()] = np.repeat(numbers, span)
            return
        for slot, number in zip(slots.tolist(), numbers.tolist(), strict=True):
            top[slot : slot + span] = number

    def _fill_blocks(self, routes: Iterable[Route], plen: int) -> None:
        """Write ``routes`` (all /``plen``, longer than /24) into blocks."""
        count = 1 << (32 - plen)
        code = self.code
        for route in routes:
            net = route.net
            number = code(route)
            block = self._block(net >> 8)
            first = net & 0xFF
            block[first : first + count] = array("I", [number]) * count

    def _lookup_functions(
        self,
    ) -> tuple[
        Callable[[bytes], Route | None],
        Callable[[bytes], Nhop | None],
        Callable[[memoryview], None],
    ]:
        top, blocks, hops, plens, tables = self.top, self.blocks, self.hops, self.plens, self.tables
        from_bytes = int.from_bytes
        masks = [((1 << 32) - 1) << (32 - plen) & 0xFFFF_FFFF for plen in range(33)]
        block = BLOCK  # read from the closure, not the module's globals

        def lookup(dst: bytes) -> Route | None:
            """Return the most specific route covering ``dst`` (packed), or None."""
            addr = from_bytes(dst)  # big-endian, the default
            code = top[addr >> 8]
            if code == block:
                code = blocks[addr >> 8][addr & 0xFF]
            plen = plens[code]
            table = tables.get(plen)
            return table.get(addr & masks[plen]) if table is not None else None

        def lookup_nhop(dst: bytes) -> Nhop | None:
            """Return the next hop of the most specific route covering ``dst`` (packed)."""
            code = top[from_bytes(dst) >> 8]  # big-endian, the default
            if code == block:  # 0.15 % of random destinations in a full table
                addr = from_bytes(dst)
                code = blocks[addr >> 8][addr & 0xFF]
            return hops[code]

        def retop(wide: memoryview) -> None:
            """Point both lookups at the widened top table (the Fib and its callers
            hold these functions)."""
            nonlocal top
            top = wide

        return lookup, lookup_nhop, retop

    def add(self, route: Route, net: int, plen: int, covering: Covering) -> None:
        """Index ``route``, just added to the Fib for ``net``/``plen``.

        ``covering(net, plen)`` returns the longest route shorter than ``plen``
        covering ``net`` (from the Fib's dicts); asked only when the index
        cannot tell: the route an address of the span has now is that one
        unless it is longer than ``plen``.
        """
        if not plen:
            return  # the default route is hops[0]
        slot = net >> 8
        old = self.top[slot]
        if old == BLOCK:
            old = self.blocks[slot][net & 0xFF]
        if self.plens[old] >= plen:  # the route of net's address is longer
            old = self.code(covering(net, plen))
        # else it covers all of the span
        number = self.code(route)
        top = self.top  # read after numbering: it may have widened
        if plen == 24 and top[slot] == old:  # most of a full table
            top[slot] = number
        else:
            self._replace(net, plen, old, number)

    def delete(self, route: Route, net: int, plen: int, covering: Covering) -> None:
        """Unindex ``route``, just deleted from the Fib (arguments as for :meth:`add`)."""
        if not plen:
            return
        self._replace(net, plen, self.code(route), self.code(covering(net, plen)))
        if plen > 24:
            self._merge(net >> 8)

    def _merge(self, slot: int) -> None:
        """Give back the block of ``slot`` if all of it holds one route of /24 or shorter."""
        block = self.blocks.get(slot)
        if block is None:
            return
        first = block[0]
        if self.plens[first] <= 24 and block.count(first) == 256:
            self.top[slot] = first
            del self.blocks[slot]

    def swap(self, old: Route, new: Route) -> None:
        """Write ``new``, just installed in place of ``old`` (same prefix), where ``old``
        was: nothing to do when they share a next hop."""
        was, now = self.code(old), self.code(new)
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

    def values(self) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Return the top table and the blocks with each code as what it stands for,
        ``plen << 24 | next hop id`` (:func:`value`; :data:`BLOCK` as 0xFFFFFFFF):
        entries that do not depend on the order codes were given in."""
        meaning = np.array(
            [plen << PLEN | nhop.id if plen and nhop is not None else 0
             for plen, nhop in zip(self.plens, self.hops, strict=True)],
            dtype=np.uint32,
        )  # fmt: skip
        meaning[BLOCK] = 0xFFFF_FFFF
        blocks = self.blocks.items()
        return meaning[self._top], {s: meaning[np.frombuffer(b, np.uint32)] for s, b in blocks}

    def memory(self) -> int:
        """Return the bytes held by the top table and the blocks."""
        return self.top.nbytes + 1024 * len(self.blocks)


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
