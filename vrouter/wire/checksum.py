"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def ones_sum(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """Return the folded 16-bit one's complement sum of ``data`` plus ``start``.

    Because 2**16 is 1 modulo 0xFFFF, the buffer read as one big-endian
    integer is congruent to the sum of its 16-bit words, so a single
    ``int.from_bytes`` and a modulo (both in C) give the sum; 0 maps back to
    0xFFFF unless everything was zero ("negative zero", RFC 1071).
    """
    if data.__class__ is memoryview and (data.format != "B" or data.ndim != 1):
        data = data.cast("B")
    total = int.from_bytes(data, "big")
    if len(data) & 1:
        total <<= 8  # the last byte is the high half of a word padded with zero
    total += start
    if total == 0:
        return 0
    return total % 0xFFFF or 0xFFFF


def ones_sum_pieces(pieces: Iterable[bytes | bytearray | memoryview], start: int = 0) -> int:
    """Return :func:`ones_sum` of the pieces joined, without joining them.

    Each piece is summed on its own; one that begins at an odd offset of the
    whole is byte-swapped first (RFC 1071 2(B): the sum does not depend on
    byte order, so a swapped sum is the sum of the bytes paired the other way).
    """
    total = start
    odd = False
    for piece in pieces:
        part = ones_sum(piece)
        if odd:
            part = ((part & 0xFF) << 8) | (part >> 8)
        total += part
        odd ^= len(piece) & 1 == 1
    if total == 0:
        return 0
    return total % 0xFFFF or 0xFFFF


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


def ones_sums(
    data: bytes | bytearray | memoryview, start: int, stride: int, length: int, count: int
) -> list[int]:
    """Return :func:`ones_sum` of ``count`` regions of ``data``, each ``length`` bytes,
    the first at ``start`` and each next ``stride`` bytes further.

    The segments of one super-frame and the datagrams of one GRO read are
    such regions.  With numpy (the ``fib`` extra) every region is summed in
    one vectorised pass over the buffer, which costs a tenth of summing them
    one by one; without it they are summed one by one.
    """
    if count <= 0:
        return []
    if start < 0 or length < 0 or stride <= 0 or start + (count - 1) * stride + length > len(data):
        raise ValueError("regions reach past the end of the buffer")
    np = optional_numpy()
    if np is None or length < 4:
        view = memoryview(data)
        starts = range(start, start + count * stride, stride)
        return [ones_sum(view[at : at + length]) for at in starts]
    return _ones_sums_numpy(np, data, start, stride, length, count)


def sums_valid(
    data: bytes | bytearray | memoryview,
    start: int,
    stride: int,
    length: int,
    count: int,
    pseudo: int = 0,
) -> bool:
    """Return True if each region :func:`ones_sums` would sum, plus ``pseudo``, sums to
    0xFFFF: every region's checksum (over it and ``pseudo``) is right.

    With numpy the test itself is vectorised too: a byte swap of a 16-bit
    value is a multiplication by 256 modulo 0xFFFF, so the regions' swapped
    totals are tested against ``pseudo`` swapped, without folding each.
    """
    np = optional_numpy()
    if np is None or length < 4 or count <= 0:
        return all(
            (s + pseudo) % 0xFFFF == 0 for s in ones_sums(data, start, stride, length, count)
        )
    if start < 0 or stride <= 0 or start + (count - 1) * stride + length > len(data):
        raise ValueError("regions reach past the end of the buffer")
    swapped = ((pseudo & 0xFF) << 8) | (pseudo >> 8)
    totals = swapped_totals(np, data, start, stride, length, count) + swapped
    return bool((totals % 0xFFFF == 0).all()) and bool(totals.all())


def swapped_totals(
    np: Any, data: bytes | bytearray | memoryview, start: int, stride: int, length: int, count: int
) -> Any:
    """Return each region's sum of little-endian 16-bit words (numpy array, unfolded)."""
    words = length // 2
    rows = np.ndarray((count, words), "<u2", data, start, (stride, 2))
    wide = np.uint32 if words <= 0xFFFF else np.uint64
    totals = rows.sum(axis=1, dtype=wide)
    if length & 1:
        totals = totals + np.ndarray((count,), np.uint8, data, start + length - 1, (stride,))
    return totals


def _ones_sums_numpy(
    np: Any, data: bytes | bytearray | memoryview, start: int, stride: int, length: int, count: int
) -> list[int]:
    """The numpy half of :func:`ones_sums`.

    Each region is read as little-endian 16-bit words summed into 32 bits
    (exact below 65,536 words a region plus a pseudo-header; numpy sums 16
    into 32 bits several times faster than into 64): the byte-swapped sum,
    which folds to the byte-swapped one's complement sum (RFC 1071 2(B)).
    An odd last byte is added after.
    """
    out: list[int] = []
    for total in swapped_totals(np, data, start, stride, length, count).tolist():
        folded = total % 0xFFFF
        if folded == 0:
            folded = 0xFFFF if total else 0
        out.append(((folded & 0xFF) << 8) | (folded >> 8))
    return out


_NUMPY: list[Any] = []
"""numpy once imported (or None without it): imported on first use, not by every import."""


def optional_numpy() -> Any:
    """Return the numpy module, None when it is not installed."""
    if not _NUMPY:
        try:
            import numpy  # imported on first use: see _NUMPY
        except ImportError:
            _NUMPY.append(None)
        else:
            _NUMPY.append(numpy)
    return _NUMPY[0]
