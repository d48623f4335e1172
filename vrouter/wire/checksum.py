"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624)."""

from __future__ import annotations

import sys

_LITTLE = sys.byteorder == "little"


def ones_sum(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """Return the folded 16-bit one's complement sum of ``data`` plus ``start``.

    Sums the buffer as native 16-bit words in C (``memoryview.cast``) and swaps
    the result once, which is what makes it fast enough for the data path.
    """
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    n = len(view)
    total = sum(view[: n & ~1].cast("H"))
    if n & 1:
        last = view[n - 1]
        total += last if _LITTLE else last << 8
    if _LITTLE:
        # Folding commutes with the byte swap, so fold first, swap once.
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        total = ((total & 0xFF) << 8) | (total >> 8)
    total += start
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """Return the Internet checksum of ``data`` (with ``start`` pre-summed)."""
    return ~ones_sum(data, start) & 0xFFFF


def update16(check: int, old: int, new: int) -> int:
    """Return ``check`` updated for one 16-bit word changing ``old`` -> ``new``.

    RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
    """
    total = (~check & 0xFFFF) + (~old & 0xFFFF) + new
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Return the one's complement sum of an IPv4/IPv6 pseudo-header."""
    return ones_sum(src + dst, proto + (length & 0xFFFF) + (length >> 16))
