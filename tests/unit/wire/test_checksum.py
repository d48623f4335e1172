"""Tests for vrouter.wire.checksum: RFC 1071 sum, RFC 1624 update, pseudo-header."""

from __future__ import annotations

import array
import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.wire.checksum import (
    checksum,
    ones_sum,
    ones_sum_pieces,
    pseudo_header_sum,
    update16,
)
from vrouter.wire.ipv4 import Ipv4Header

# IPv4 header of an ICMP echo request, captured from Linux 6.18 on a veth
# between two netns (192.0.2.1/24 <-> 192.0.2.2/24): ping -c1 192.0.2.2.
# Its checksum field (bytes 10-11) is 0x9272.
ECHO_REQUEST_IP_HEADER = bytes.fromhex("450000542433400040019272c0000201c0000202")


def ref_ones_sum(data: bytes, start: int = 0) -> int:
    """Slow RFC 1071 reference: big-endian 16-bit words, end-around carry."""
    total = start
    for i in range(0, len(data), 2):
        word = data[i] << 8
        if i + 1 < len(data):
            word |= data[i + 1]
        total += word
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ref_checksum(data: bytes, start: int = 0) -> int:
    return ~ref_ones_sum(data, start) & 0xFFFF


# --- RFC 1071 and hand-computed values ------------------------------------------------

# (data, folded one's complement sum). Odd lengths pad a zero low byte.
SUM_TABLE = [
    # RFC 1071 section 3, "Numerical Examples": 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    (bytes.fromhex("0001f203f4f5f6f7"), 0xDDF2),
    (b"", 0x0000),
    (b"\x00", 0x0000),
    (b"\x01", 0x0100),
    (b"\xff", 0xFF00),
    (b"\x12\x34", 0x1234),
    (b"\x12\x34\x56", 0x1234 + 0x5600),
    (b"\xab\xcd\xef", 0x9ACE),  # abcd + ef00 = 1_9acd -> 9ace
    (b"\xff\xff", 0xFFFF),
    (b"\xff\xff\xff\xff", 0xFFFF),  # end-around carry: 1_fffe -> ffff
    (b"\xff\xff\xff", 0xFF00),  # ffff + ff00 = 1_feff -> ff00
    (b"\x80\x00\x80\x00", 0x0001),  # 8000 + 8000 = 1_0000 -> 0001
    (bytes.fromhex("0001f203f4f5f6f7ff"), 0xDCF3),  # ddf2 + ff00 = 1_dcf2 -> dcf3
]


@pytest.mark.parametrize(
    ("data", "expected"), SUM_TABLE, ids=lambda v: v.hex() if isinstance(v, bytes) else None
)
def test_ones_sum_known_values(data: bytes, expected: int) -> None:
    assert ones_sum(data) == expected
    assert ref_ones_sum(data) == expected  # the reference agrees with the table too


@pytest.mark.parametrize(
    ("data", "expected"), SUM_TABLE, ids=lambda v: v.hex() if isinstance(v, bytes) else None
)
def test_checksum_is_complement_of_sum(data: bytes, expected: int) -> None:
    assert checksum(data) == ~expected & 0xFFFF


def test_rfc1071_example_checksum() -> None:
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_rfc1071_byte_order_independence() -> None:
    # RFC 1071 section 2(B): swapping the bytes of every word swaps the sum.
    data = bytes.fromhex("0001f203f4f5f6f7")
    swapped = bytes(b for i in range(0, len(data), 2) for b in (data[i + 1], data[i]))
    assert ones_sum(swapped) == 0xF2DD


def test_captured_ipv4_header_checksum() -> None:
    zeroed = ECHO_REQUEST_IP_HEADER[:10] + b"\x00\x00" + ECHO_REQUEST_IP_HEADER[12:]
    assert checksum(zeroed) == 0x9272
    # A correct header sums to 0xffff, i.e. its checksum is 0.
    assert ones_sum(ECHO_REQUEST_IP_HEADER) == 0xFFFF
    assert checksum(ECHO_REQUEST_IP_HEADER) == 0


@pytest.mark.parametrize(
    ("data", "start", "expected"),
    [
        (b"", 0x1234, 0x1234),
        (b"\x00\x01", 0xFFFF, 0x0001),  # 1_0000 folds to 0001
        (b"\xff\xff", 0x0001, 0x0001),
        (b"\x01", 0x0001, 0x0101),
        (b"\x12\x34", 0x3_0000, 0x1237),  # a start wider than 16 bits folds too
    ],
)
def test_ones_sum_with_start(data: bytes, start: int, expected: int) -> None:
    assert ones_sum(data, start) == expected


def test_checksum_accepts_bytearray_and_memoryview() -> None:
    data = bytes.fromhex("0001f203f4f5f6f7ff")
    assert checksum(bytearray(data)) == checksum(data) == ref_checksum(data)
    assert checksum(memoryview(data)) == ref_checksum(data)
    # A slice at an odd offset: the words must still be read big-endian.
    assert checksum(memoryview(b"\xaa" + data)[1:]) == ref_checksum(data)


def test_checksum_of_wide_item_memoryview() -> None:
    # A memoryview whose items are not bytes is summed over its raw bytes.
    arr = array.array("H", [0x0102, 0x0304, 0xFFFF])
    assert ones_sum(memoryview(arr)) == ref_ones_sum(arr.tobytes())


@pytest.mark.parametrize("fmt", ["B", "b", "c"])
def test_checksum_of_byte_format_memoryview_odd_length(fmt: str) -> None:
    # Any 1-byte memoryview format must give the same sum as the raw bytes;
    # the last byte of an odd-length buffer (0x83 here) must not be read as
    # signed ('b') or as a bytes object ('c').
    data = b"\x01\x02\x83"
    assert ones_sum(memoryview(data).cast(fmt)) == ref_ones_sum(data) == 0x8402


@given(st.binary(max_size=300))
def test_checksum_matches_reference(data: bytes) -> None:
    assert ones_sum(data) == ref_ones_sum(data)
    assert checksum(data) == ref_checksum(data)


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=0x3_FFFF))
def test_checksum_with_start_matches_reference(data: bytes, start: int) -> None:
    assert ones_sum(data, start) == ref_ones_sum(data, start)
    assert checksum(data, start) == ref_checksum(data, start)


@given(st.binary(max_size=100), st.binary(max_size=100))
def test_checksum_of_concatenation_via_start(a: bytes, b: bytes) -> None:
    # Summing in two steps (as the pseudo-header path does) equals one pass,
    # provided the first part has even length.
    a = a[: len(a) & ~1]
    assert ones_sum(b, ones_sum(a)) == ones_sum(a + b)


@given(st.binary(min_size=2, max_size=300).map(lambda d: d[: len(d) & ~1]))
def test_inserting_checksum_makes_data_verify(data: bytes) -> None:
    # The sender's rule: appending checksum(data) makes the whole sum to 0xffff.
    packet = data + struct.pack("!H", checksum(data))
    assert checksum(packet) == 0


# --- RFC 1624 incremental update -----------------------------------------------------


def test_update16_rfc1624_example() -> None:
    # RFC 1624 section 3: other octets sum to cd7a; m = 5555 changes to 3285.
    # HC = ~(cd7a + 5555) = dd2f; the correct new checksum is ~(cd7a + 3285) = 0000.
    # RFC 1141's HC + m + ~m' wrongly gives ffff here; eqn. 3 must give 0000.
    assert update16(0xDD2F, 0x5555, 0x3285) == 0x0000


def test_update16_rfc1624_example_reversed() -> None:
    # The reverse change, starting from a checksum of 0x0000.
    assert update16(0x0000, 0x3285, 0x5555) == 0xDD2F


def test_update16_no_change_is_identity() -> None:
    assert update16(0x9272, 0x4001, 0x4001) == 0x9272


def _ttl_word(header: bytes) -> int:
    return struct.unpack_from("!H", header, 8)[0]


def _with_ttl_word(header: bytes, word: int) -> bytes:
    """Return ``header`` with the TTL/protocol word replaced and a fresh checksum."""
    raw = bytearray(header)
    struct.pack_into("!HH", raw, 8, word, 0)
    struct.pack_into("!H", raw, 10, checksum(raw))
    return bytes(raw)


def test_update16_ttl_decrement_on_captured_header() -> None:
    old_word = _ttl_word(ECHO_REQUEST_IP_HEADER)  # ttl 64, proto 1
    new_word = old_word - 0x0100  # ttl 63
    new = update16(0x9272, old_word, new_word)
    assert new == 0x9372  # checksum rises by 0x0100 when TTL falls by one
    assert new == struct.unpack_from("!H", _with_ttl_word(ECHO_REQUEST_IP_HEADER, new_word), 10)[0]


def _header_with_checksum(target: int, ttl: int) -> bytes:
    """Return a 20-byte IPv4 header (ttl ``ttl``, ICMP) whose checksum is ``target``.

    The identification field is chosen to make the sum come out right.
    """
    base = Ipv4Header(0, 84, 0, 0, ttl, 1, bytes.fromhex("c0000201"), bytes.fromhex("c0000202"))
    raw = bytearray(base.emit())
    struct.pack_into("!H", raw, 10, 0)
    # Want ~(S + ident) == target, i.e. ident == ~target - S in one's complement.
    rest = ones_sum(raw)
    ident = ones_sum(struct.pack("!H", ~target & 0xFFFF), ~rest & 0xFFFF)
    struct.pack_into("!H", raw, 4, ident)
    struct.pack_into("!H", raw, 10, checksum(raw))
    assert struct.unpack_from("!H", raw, 10)[0] == target
    return bytes(raw)


def test_update16_ttl_decrement_to_zero_checksum() -> None:
    # The RFC 1624 corner case on a real header: after the TTL decrement the
    # recomputed checksum is 0x0000, and the update must say 0x0000, not 0xffff.
    after = _header_with_checksum(0x0000, ttl=63)
    before = _with_ttl_word(after, _ttl_word(after) + 0x0100)
    old_check = struct.unpack_from("!H", before, 10)[0]
    new_check = update16(old_check, _ttl_word(before), _ttl_word(after))
    assert new_check == 0x0000
    updated = before[:8] + after[8:10] + struct.pack("!H", new_check) + before[12:]
    assert updated == after
    assert ones_sum(updated) == 0xFFFF


def test_update16_ttl_decrement_from_zero_checksum() -> None:
    before = _header_with_checksum(0x0000, ttl=64)
    after = _with_ttl_word(before, _ttl_word(before) - 0x0100)
    new_check = update16(0x0000, _ttl_word(before), _ttl_word(after))
    assert new_check == struct.unpack_from("!H", after, 10)[0] == 0x0100


def test_update16_to_all_ones_checksum_value() -> None:
    # Recomputed checksum 0xfffe (sum 0x0001) is reached correctly too.
    after = _header_with_checksum(0xFFFE, ttl=63)
    before = _with_ttl_word(after, _ttl_word(after) + 0x0100)
    old_check = struct.unpack_from("!H", before, 10)[0]
    assert update16(old_check, _ttl_word(before), _ttl_word(after)) == 0xFFFE


ipv4_headers = st.builds(
    Ipv4Header,
    tos=st.integers(0, 255),
    total_length=st.integers(20, 0xFFFF),
    ident=st.integers(0, 0xFFFF),
    flags_frag=st.integers(0, 0xFFFF),
    ttl=st.integers(0, 255),
    proto=st.integers(0, 255),
    src=st.binary(min_size=4, max_size=4),
    dst=st.binary(min_size=4, max_size=4),
)


@given(ipv4_headers, st.integers(0, 255), st.integers(0, 255))
def test_update16_matches_recompute_for_ttl_proto_word(
    hdr: Ipv4Header, ttl: int, proto: int
) -> None:
    before = hdr.emit()
    new_word = (ttl << 8) | proto
    after = _with_ttl_word(before, new_word)
    old_check = struct.unpack_from("!H", before, 10)[0]
    assert (
        update16(old_check, _ttl_word(before), new_word) == struct.unpack_from("!H", after, 10)[0]
    )


@given(ipv4_headers, st.integers(0, 9), st.integers(0, 0xFFFF))
def test_update16_matches_recompute_for_any_header_word(
    hdr: Ipv4Header, index: int, new_word: int
) -> None:
    if index == 5:  # the checksum word itself is not a field one updates
        index = 4
    before = hdr.emit()
    raw = bytearray(before)
    old_word = struct.unpack_from("!H", raw, 2 * index)[0]
    struct.pack_into("!H", raw, 2 * index, new_word)
    struct.pack_into("!H", raw, 10, 0)
    expected = checksum(raw)
    old_check = struct.unpack_from("!H", before, 10)[0]
    assert update16(old_check, old_word, new_word) == expected


# --- pseudo-header --------------------------------------------------------------------


def test_pseudo_header_sum_captured_udp() -> None:
    # UDP 192.0.2.1:40000 -> 192.0.2.2:33434, 18-byte payload, length 26:
    # c000 + 0201 + c000 + 0202 + 0011 + 001a = 1_842e -> 842f.
    src, dst = bytes.fromhex("c0000201"), bytes.fromhex("c0000202")
    assert pseudo_header_sum(src, dst, 17, 26) == 0x842F


def _ref_pseudo(src: bytes, dst: bytes, proto: int, length: int) -> int:
    # RFC 8200 section 8.1 layout (32-bit length, 24 zero bits, next header);
    # for IPv4 (RFC 768) the 16-bit length/zero/proto layout has the same sum.
    return ref_ones_sum(src + dst + length.to_bytes(4, "big") + b"\x00\x00\x00" + bytes([proto]))


def test_pseudo_header_sum_ipv4_layout() -> None:
    src, dst = bytes.fromhex("c0000201"), bytes.fromhex("c0000202")
    rfc768 = src + dst + b"\x00" + bytes([17]) + (26).to_bytes(2, "big")
    assert pseudo_header_sum(src, dst, 17, 26) == ref_ones_sum(rfc768)


@given(
    st.sampled_from([4, 16]).flatmap(
        lambda n: st.tuples(st.binary(min_size=n, max_size=n), st.binary(min_size=n, max_size=n))
    ),
    st.integers(0, 255),
    st.integers(0, 0xFFFF_FFFF),
)
def test_pseudo_header_sum_matches_reference(
    addrs: tuple[bytes, bytes], proto: int, length: int
) -> None:
    src, dst = addrs
    if len(src) == 4:
        length &= 0xFFFF
    assert pseudo_header_sum(src, dst, proto, length) == _ref_pseudo(src, dst, proto, length)


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=4),
       st.integers(min_value=0, max_value=0x3_FFFF))  # fmt: skip
def test_sum_of_pieces_is_the_sum_of_them_joined(data: bytes, cuts: list[int], start: int) -> None:
    # Pieces of odd length put the next one at an odd offset: its sum is byte-swapped.
    edges = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    pieces = [memoryview(data)[a:b] for a, b in itertools.pairwise(edges)]
    assert ones_sum_pieces(pieces, start) == ref_ones_sum(data, start)
