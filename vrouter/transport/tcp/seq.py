"""32-bit sequence number arithmetic (RFC 9293 section 3.4, RFC 1982 serial numbers).

Sequence numbers live on a circle of 2**32; ``a < b`` means ``b`` is less than
2**31 ahead of ``a``.  Every comparison of sequence numbers, acknowledgment
numbers and timestamps in the TCP code goes through these helpers, never
through the plain integer operators.
"""

from __future__ import annotations

MOD = 1 << 32
MASK = MOD - 1
HALF = 1 << 31


def add(a: int, n: int) -> int:
    """Return ``a + n`` on the circle."""
    return (a + n) & MASK


def sub(a: int, b: int) -> int:
    """Return how far ``a`` is ahead of ``b`` (``a - b`` on the circle, 0..2**32-1)."""
    return (a - b) & MASK


def diff(a: int, b: int) -> int:
    """Return the signed distance ``a - b`` (-2**31..2**31-1)."""
    d = (a - b) & MASK
    return d - MOD if d >= HALF else d


def lt(a: int, b: int) -> bool:
    """Return True if ``a`` comes before ``b``."""
    return 0 < ((b - a) & MASK) < HALF


def le(a: int, b: int) -> bool:
    """Return True if ``a`` comes before ``b`` or equals it."""
    return ((b - a) & MASK) < HALF


def gt(a: int, b: int) -> bool:
    """Return True if ``a`` comes after ``b``."""
    return 0 < ((a - b) & MASK) < HALF


def ge(a: int, b: int) -> bool:
    """Return True if ``a`` comes after ``b`` or equals it."""
    return ((a - b) & MASK) < HALF


def between(low: int, x: int, high: int) -> bool:
    """Return True if ``low <= x < high`` on the circle (an empty range holds nothing)."""
    return ((x - low) & MASK) < ((high - low) & MASK)


def max_(a: int, b: int) -> int:
    """Return the later of ``a`` and ``b``."""
    return b if lt(a, b) else a


def min_(a: int, b: int) -> int:
    """Return the earlier of ``a`` and ``b``."""
    return a if lt(a, b) else b
