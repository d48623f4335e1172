"""A DIR-24-8 index over an IPv4 :class:`~vrouter.route.fib.Fib`'s tables.

DIR-24-8 (Gupta, Lin, McKeown, "Routing lookups in hardware at memory access
speeds", INFOCOM 1998): a 2^24-entry table indexed by the top 24 bits of the
destination, and for the /24s that hold longer prefixes a 256-entry block
indexed by the last byte.  Here an entry holds no route, only the length of
the longest prefix covering it, as a *code* (length + 1; 0 = no route; 255 in
the top table = "see the block"): the route itself is then one probe of the
Fib's dict for that length.  So the top table is one ``bytearray`` of 16 MiB
and a block 256 bytes, whatever the routes.

Every add and delete patches the index in place, in time proportional to
the prefix's span, not to the routes under it: inside a prefix P of length L
every route shorter than L covers all of P, so

- adding P raises every entry in P's span below code(L) to code(L)
  (entries of longer prefixes are above it and stay), and
- deleting P lowers every entry in P's span equal to code(L) to the code of
  the longest shorter prefix covering P (the fallback, found by the caller),

each one ``bytes.translate`` of the span (C speed) plus the same for the
blocks inside it.  A block is made when a /25../32 arrives in a plain /24 and
given back when the last one goes (all its entries equal again and <= /24).
The answers are exactly those of probing the Fib's dicts longest first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vrouter.route.fib import Route

BLOCK = 255
"""A top-table entry that sends the lookup to the /24's block."""

_BLOCK_BYTE = bytes([BLOCK])
_MASKS = [0, *(((1 << 32) - 1) << (32 - n) & 0xFFFF_FFFF for n in range(33))]
"""Indexed by code: the network mask of length code - 1 (code 0: anything, to 0)."""
_RAISE = [bytes(max(v, code) if v != BLOCK else v for v in range(256)) for code in range(34)]
"""``_RAISE[code]`` maps every code below ``code`` to ``code`` (the block mark stays)."""
_NOWHERE: Mapping[int, Route | None] = {0: None}
"""The table for code 0: every address maps to no route."""


class Dir248:
    """The index of one IPv4 Fib; ``lookup`` answers as the Fib's dict probes would."""

    def __init__(self, tables: Mapping[int, Mapping[int, Route]]) -> None:
        """Build the index of ``tables`` (the Fib's dicts: length -> network -> route)."""
        self.top = bytearray(1 << 24)
        self.blocks: dict[int, bytearray] = {}
        """Blocks of the /24s (by top-table slot) that hold longer prefixes."""
        self.tables: list[Mapping[int, Route | None]] = [_NOWHERE] + [{} for _ in range(33)]
        """Indexed by code: the Fib's dict for that length."""
        top, blocks = self.top, self.blocks
        for plen in sorted(tables):  # shortest first: a longer prefix overwrites
            table = tables[plen]
            self.tables[plen + 1] = table
            code = plen + 1
            if plen <= 24:
                count = 1 << (24 - plen)
                fill = bytes([code]) * count
                for net in table:
                    slot = net >> 8
                    top[slot : slot + count] = fill
                continue
            count = 1 << (32 - plen)
            fill = bytes([code]) * count
            for net in table:
                slot = net >> 8
                block = blocks.get(slot)
                if block is None:
                    block = blocks[slot] = bytearray([top[slot]]) * 256
                    top[slot] = BLOCK
                first = net & 0xFF
                block[first : first + count] = fill
        self.lookup = self._lookup_function()

    def _lookup_function(self) -> Callable[[bytes], Route | None]:
        top, blocks, tables, masks = self.top, self.blocks, self.tables, _MASKS
        from_bytes = int.from_bytes

        def lookup(dst: bytes) -> Route | None:
            """Return the most specific route covering ``dst`` (packed), or None."""
            addr = from_bytes(dst, "big")
            code = top[addr >> 8]
            if code == BLOCK:
                code = blocks[addr >> 8][addr & 0xFF]
            return tables[code][addr & masks[code]]

        return lookup

    def table_added(self, plen: int, table: Mapping[int, Route]) -> None:
        """Note the Fib's new dict for routes of length ``plen``."""
        self.tables[plen + 1] = table

    def add(self, net: int, plen: int) -> None:
        """Index a route just added to the Fib for ``net``/``plen``."""
        self._rewrite(net, plen, _RAISE[plen + 1])

    def delete(self, net: int, plen: int, fallback: int) -> None:
        """Unindex a route just deleted from the Fib for ``net``/``plen``.

        ``fallback`` is the length of the longest remaining route covering it
        (shorter than ``plen``), or -1 if there is none.
        """
        self._rewrite(net, plen, bytes.maketrans(bytes([plen + 1]), bytes([fallback + 1])))
        if plen > 24:
            slot = net >> 8
            block = self.blocks[slot]
            first = block[0]
            if first <= 25 and block.count(first) == 256:
                self.top[slot] = first
                del self.blocks[slot]

    def _rewrite(self, net: int, plen: int, table: bytes) -> None:
        """Translate every entry in the span of ``net``/``plen`` through ``table``."""
        top, blocks = self.top, self.blocks
        slot = net >> 8
        if plen > 24:
            block = blocks.get(slot)
            if block is None:
                block = blocks[slot] = bytearray([top[slot]]) * 256
                top[slot] = BLOCK
            first = net & 0xFF
            end = first + (1 << (32 - plen))
            block[first:end] = block[first:end].translate(table)
            return
        if plen == 24:
            code = top[slot]
            if code == BLOCK:
                block = blocks[slot]
                block[:] = block.translate(table)
            else:
                top[slot] = table[code]
            return
        end = slot + (1 << (24 - plen))
        span = top[slot:end]
        top[slot:end] = span.translate(table)
        at = span.find(_BLOCK_BYTE)
        while at >= 0:
            block = blocks[slot + at]
            block[:] = block.translate(table)
            at = span.find(_BLOCK_BYTE, at + 1)

    def memory(self) -> int:
        """Return the bytes held by the top table and the blocks (not the dict)."""
        return len(self.top) + 256 * len(self.blocks)
