"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624)."""

from __future__ import annotations

from collections.abc import Iterable


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
