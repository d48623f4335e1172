"""Tests for vrouter.inet.fragment: the reassembly engine, IPv4 reassembly and fragmentation.

Round trips go both ways (fragment_ipv4 then ipv4_input, in any order);
every fragment is checked by ``vrouter.wire.ipv4.check`` and decoded by dpkt;
and Linux's own fragments of one UDP datagram, captured from a real kernel,
must be reassembled and reproduced byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from ipaddress import IPv4Address

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrouter.inet.fragment import (
    DEAD_LIMIT,
    FRAGMENT_COST,
    Reassembly,
    copied_options,
    fragment_ipv4,
    ipv4_input,
)
from vrouter.wire import ipv4
from vrouter.wire.ipv4 import FLAG_DF, FLAG_MF, OFFSET_MASK, Ipv4Header

SRC = IPv4Address("192.0.2.1").packed
DST = IPv4Address("198.51.100.2").packed
TIMEOUT = 30.0

# Record Route (not copied) + NOP + an LSRR-shaped option (copied, 0x83) + EOL.
RR = bytes([0x07, 7, 4, 0, 0, 0, 0])
LSRR = bytes([0x83, 7, 4]) + IPv4Address("203.0.113.9").packed
OPTIONS = RR + b"\x01" + LSRR + b"\x00"

# Linux 6.18 sending one 4000-byte UDP datagram (3992 bytes of data, byte i
# is i & 0xff) from 192.0.2.1:40000 to 192.0.2.2:33434 over a 1500-byte veth
# between two netns (`ethtool -K <veth> tx off`), captured with tcpdump:
# 3 fragments of 1480, 1480 and 1040 data bytes.  Headers as captured:
LINUX_HEADERS = [
    bytes.fromhex("450005dca8312000401128dcc0000201c0000202"),
    bytes.fromhex("450005dca83120b940112823c0000201c0000202"),
    bytes.fromhex("45000424a831017240114922c0000201c0000202"),
]
LINUX_UDP = bytes.fromhex("9c40829a0fa09f6c") + bytes(i & 0xFF for i in range(3992))


def linux_fragments() -> list[bytes]:
    """Return the three captured fragments, header plus data."""
    out = []
    for header in LINUX_HEADERS:
        offset = ((header[6] << 8 | header[7]) & OFFSET_MASK) * 8
        length = (header[2] << 8 | header[3]) - 20
        out.append(header + LINUX_UDP[offset : offset + length])
    return out


def payload(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def packet(
    n: int,
    *,
    options: bytes = b"",
    ident: int = 0x1234,
    flags: int = 0,
    proto: int = ipv4.PROTO_UDP,
    src: bytes = SRC,
    seed: int = 0,
) -> bytes:
    """Return an IPv4 packet with ``n`` bytes of random payload."""
    header = Ipv4Header(0, 20 + len(options) + n, ident, flags, 64, proto, src, DST, options)
    return header.emit() + payload(n, seed)


def frag(
    data: bytes, offset: int, more: bool, *, options: bytes = b"", ident: int = 7, df: bool = False
) -> bytes:
    """Return a hand-made fragment: ``data`` at byte ``offset``."""
    assert offset % 8 == 0
    flags = (FLAG_MF if more else 0) | (FLAG_DF if df else 0) | offset >> 3
    header = Ipv4Header(0, 20 + len(options) + len(data), ident, flags, 64, 17, SRC, DST, options)
    return header.emit() + data


def feed(table: Reassembly, pieces: Sequence[bytes | memoryview], now: float = 0.0) -> list[bytes]:
    """Feed every piece; return what came out."""
    out = []
    for piece in pieces:
        result = ipv4_input(table, piece, now)
        if result is not None:
            out.append(result)
    return out


def assert_fragment(piece: bytes, mtu: int) -> dpkt.ip.IP:
    """Check one produced fragment with vrouter's validator and dpkt; return dpkt's view."""
    assert len(piece) <= mtu
    hlen, total = ipv4.check(piece)
    assert total == len(piece)
    parsed = dpkt.ip.IP(piece)
    assert parsed.len == len(piece)
    assert parsed.hl * 4 == hlen
    return parsed


# --- Linux comparison -------------------------------------------------------


def test_linux_fragments_reassemble_and_are_reproduced_byte_exact() -> None:
    pieces = linux_fragments()
    assert [len(p) - 20 for p in pieces] == [1480, 1480, 1040]
    table = Reassembly(timeout=TIMEOUT)
    (whole,) = feed(table, pieces)
    assert len(whole) == 4020
    assert whole[20:] == LINUX_UDP
    header = Ipv4Header.parse(whole)
    assert header.flags_frag == 0
    assert header.ident == 0xA831
    assert dpkt.ip.IP(whole).udp.dport == 33434
    assert fragment_ipv4(whole, 1500) == pieces
    assert (table.stats.fragments, table.stats.reassembled) == (3, 1)
    assert len(table) == 0
    assert table.memory() == 0


def test_4000_byte_ping_at_1500() -> None:
    echo = dpkt.icmp.ICMP(type=8, code=0, data=dpkt.icmp.ICMP.Echo(id=1, seq=1, data=bytes(3992)))
    body = bytes(echo)
    assert len(body) == 4000
    whole = ipv4.build(SRC, DST, ipv4.PROTO_ICMP, body, ident=0xBEEF)
    pieces = fragment_ipv4(whole, 1500)
    parsed = [assert_fragment(p, 1500) for p in pieces]
    assert [len(p.data) for p in parsed] == [1480, 1480, 1040]
    assert [p.offset for p in parsed] == [0, 185, 370]  # 8-byte units: 0, 1480, 2960
    assert [p.mf for p in parsed] == [1, 1, 0]
    assert {p.id for p in parsed} == {0xBEEF}
    assert feed(Reassembly(timeout=TIMEOUT), pieces) == [whole]


# --- round trips ------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(0, 12000),
    mtu=st.integers(68, 9000),
    with_options=st.booleans(),
    order=st.sampled_from(["in order", "reversed", "shuffled"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip(size: int, mtu: int, with_options: bool, order: str, seed: int) -> None:
    options = OPTIONS if with_options else b""
    whole = packet(size, options=options, seed=seed)
    pieces = fragment_ipv4(whole, mtu)
    hlen = 20 + len(options)
    if len(whole) <= mtu:
        assert pieces == [whole]
        return
    later_hlen = 20 + len(copied_options(options))
    for i, piece in enumerate(pieces):
        parsed = assert_fragment(piece, mtu)
        assert parsed.id == 0x1234
        assert parsed.df == 0
        assert parsed.mf == (i < len(pieces) - 1)
        assert len(piece) - parsed.hl * 4 == len(parsed.data)
        if i < len(pieces) - 1:
            assert len(parsed.data) % 8 == 0
            assert len(parsed.data) > 0
        assert parsed.hl * 4 == (hlen if i == 0 else later_hlen)
    assert sum(len(p) - (p[0] & 15) * 4 for p in pieces) == size
    if order == "reversed":
        pieces.reverse()
    elif order == "shuffled":
        random.Random(seed).shuffle(pieces)
    table = Reassembly(timeout=TIMEOUT, max_fragments=1 << 13)
    out = feed(table, pieces)
    assert out == [whole]
    assert table.stats.reassembled == 1
    assert table.stats.fragments == len(pieces)
    assert len(table) == 0
    assert table.memory() == 0


def test_largest_datagram_at_smallest_mtu() -> None:
    whole = packet(65535 - 20)
    pieces = fragment_ipv4(whole, 68)
    assert len(pieces) == -(-(65535 - 20) // 48)
    assert all(len(p) <= 68 for p in pieces)
    random.Random(1).shuffle(pieces)
    assert feed(Reassembly(timeout=TIMEOUT, max_fragments=1 << 13), pieces) == [whole]


@settings(max_examples=50, deadline=None)
@given(size=st.integers(1500, 6000), mtu1=st.integers(1000, 1500), mtu2=st.integers(68, 999))
def test_refragmenting_a_fragment(size: int, mtu1: int, mtu2: int) -> None:
    whole = packet(size, options=OPTIONS)
    first, *rest = fragment_ipv4(whole, mtu1)
    again = fragment_ipv4(first, mtu2)
    assert all(len(p) <= mtu2 for p in again)
    parsed = [assert_fragment(p, mtu2) for p in again]
    assert all(p.mf for p in parsed)  # the last piece keeps the first fragment's MF
    middle = rest[0]
    deeper = fragment_ipv4(middle, mtu2)
    base = dpkt.ip.IP(middle).offset
    assert dpkt.ip.IP(deeper[0]).offset == base
    pieces = again + deeper + rest[1:]
    random.Random(size).shuffle(pieces)
    assert feed(Reassembly(timeout=TIMEOUT, max_fragments=1024), pieces) == [whole]


def test_interleaved_datagrams() -> None:
    a = packet(3000, ident=1, seed=1)
    b = packet(3000, ident=2, seed=2)
    c = packet(3000, ident=1, src=IPv4Address("192.0.2.99").packed, seed=3)
    d = packet(3000, ident=1, proto=ipv4.PROTO_TCP, seed=4)
    split = [fragment_ipv4(x, 576) for x in (a, b, c, d)]
    mixed = [p for group in zip(*split, strict=True) for p in group]
    table = Reassembly(timeout=TIMEOUT)
    assert sorted(feed(table, mixed)) == sorted([a, b, c, d])


def test_df_of_the_first_fragment_kept() -> None:
    data = payload(24)
    pieces = [frag(data[:16], 0, True, df=True), frag(data[16:], 16, False)]
    (whole,) = feed(Reassembly(timeout=TIMEOUT), pieces[::-1])
    header = Ipv4Header.parse(whole)
    assert header.flags_frag == FLAG_DF
    assert header.total_length == 44
    assert whole[20:] == data


# --- options ----------------------------------------------------------------


def test_options_copied_only_when_the_copied_bit_is_set() -> None:
    whole = packet(200, options=OPTIONS)
    pieces = fragment_ipv4(whole, 100)
    first = Ipv4Header.parse(pieces[0])
    assert first.options == OPTIONS
    for piece in pieces[1:]:
        options = Ipv4Header.parse(piece).options
        assert options == b"\x01" + LSRR
        assert RR not in options
    assert feed(Reassembly(timeout=TIMEOUT), pieces[::-1]) == [whole]


@pytest.mark.parametrize(
    ("options", "copied"),
    [
        (b"", b""),
        (RR + b"\x00", b""),
        (LSRR + b"\x00", LSRR + b"\x00"),
        (b"\x01" * 3 + LSRR + b"\x01" * 2, b"\x01" * 3 + LSRR + b"\x00" * 2),
        (RR + b"\x01" + LSRR + b"\x00", b"\x01" + LSRR),
        (b"\x01\x01\x01\x01", b""),
        (LSRR + b"\x00" + RR, LSRR + b"\x00"),  # nothing after EOL counts
        (LSRR + b"\x88\x01\x00\x00", LSRR + b"\x00"),  # malformed length: stop
        (bytes([0x94, 4, 0, 0]), bytes([0x94, 4, 0, 0])),  # Router Alert is copied
        (bytes([0x44, 4, 5, 0]), b""),  # Timestamp is not
    ],
)
def test_copied_options(options: bytes, copied: bytes) -> None:
    assert copied_options(options) == copied
    assert len(copied) % 4 == 0


def test_fragments_without_copied_options_have_a_20_byte_header() -> None:
    whole = packet(600, options=RR + b"\x00")
    pieces = fragment_ipv4(whole, 300)
    assert [p[0] & 15 for p in pieces] == [7, 5, 5]


# --- fragment_ipv4 refusals -------------------------------------------------


def test_fragment_refusals() -> None:
    with pytest.raises(ValueError, match="DF"):
        fragment_ipv4(packet(2000, flags=FLAG_DF), 1500)
    with pytest.raises(ValueError, match="minimum"):
        fragment_ipv4(packet(2000), 67)
    small = packet(100, flags=FLAG_DF)
    assert fragment_ipv4(small, 1500) == [small]
    assert fragment_ipv4(small + b"padding", 1500) == [small]


def test_60_byte_header_at_68() -> None:
    options = LSRR + b"\x01" * 32 + b"\x00"
    whole = packet(100, options=options)
    assert len(options) == 40
    pieces = fragment_ipv4(whole, 68)
    assert len(pieces[0]) == 68  # 60 + 8
    assert feed(Reassembly(timeout=TIMEOUT), pieces) == [whole]


# --- the reassembly policy ---------------------------------------------------


def test_duplicates_ignored_and_datagram_still_completes() -> None:
    whole = packet(4000)
    pieces = fragment_ipv4(whole, 1500)
    table = Reassembly(timeout=TIMEOUT)
    stream = [pieces[1], pieces[1], pieces[0], pieces[0], pieces[1], pieces[2]]
    assert feed(table, stream) == [whole]
    assert table.stats.duplicate == 3
    assert table.stats.reassembled == 1


def test_partial_overlap_drops_the_datagram_and_marks_it_dead() -> None:
    data = payload(48)
    table = Reassembly(timeout=TIMEOUT)
    assert ipv4_input(table, frag(data[:16], 0, True), 1.0) is None
    assert ipv4_input(table, frag(data[8:24], 8, True), 2.0) is None
    assert table.stats.overlap == 1
    assert len(table) == 0
    assert table.memory() == 0
    assert table.next_deadline() == 1.0 + TIMEOUT
    # The rest of the datagram is ignored, even fragments that would have fitted.
    assert ipv4_input(table, frag(data[16:], 16, False), 3.0) is None
    assert ipv4_input(table, frag(data[:16], 0, True), 3.0) is None
    assert table.stats.dead == 2
    assert len(table) == 0
    # At its deadline the key is forgotten (no ICMP for a dead datagram).
    assert table.expire(1.0 + TIMEOUT) == []
    assert table.stats.timeout == 0
    assert table.next_deadline() is None
    now = 2 + TIMEOUT
    assert feed(table, [frag(data[:16], 0, True), frag(data[16:], 16, False)], now) != []


@pytest.mark.parametrize(
    "second",
    [
        (0, 8, True),  # inside the first
        (8, 24, True),  # straddling the end of the first
        (0, 24, True),  # covering the first and more
        (16, 40, False),  # straddling the start of the third
        (24, 32, True),  # inside the third
    ],
)
def test_overlaps(second: tuple[int, int, bool]) -> None:
    data = payload(64)
    table = Reassembly(timeout=TIMEOUT)
    feed(table, [frag(data[0:16], 0, True), frag(data[24:40], 24, True)])
    start, end, more = second
    assert ipv4_input(table, frag(data[start:end], start, more), 0.0) is None
    assert table.stats.overlap == 1
    assert len(table) == 0


def test_contradicting_ends_drop_the_datagram() -> None:
    data = payload(64)
    for pieces in (
        [frag(data[:16], 0, True), frag(data[32:40], 32, False), frag(data[40:48], 40, True)],
        [frag(data[32:40], 32, False), frag(data[16:24], 16, False)],
        [frag(data[32:40], 32, True), frag(data[16:24], 16, False)],
    ):
        table = Reassembly(timeout=TIMEOUT)
        assert feed(table, pieces) == []
        assert table.stats.overlap == 1, pieces
        assert len(table) == 0


def test_empty_last_fragment() -> None:
    data = payload(16)
    table = Reassembly(timeout=TIMEOUT)
    pieces = [frag(b"", 16, False), frag(data, 0, True), frag(b"", 16, False)]
    (whole,) = feed(table, pieces[:2])
    assert whole[20:] == data
    assert Ipv4Header.parse(whole).flags_frag == 0


def test_timeout_returns_the_first_fragment() -> None:
    whole = packet(4000)
    first, middle, last = fragment_ipv4(whole, 1500)
    table = Reassembly(timeout=TIMEOUT)
    assert ipv4_input(table, last, 10.0) is None
    assert ipv4_input(table, first, 11.0) is None
    assert table.next_deadline() == 10.0 + TIMEOUT  # from the first fragment to arrive
    assert table.expire(10.0 + TIMEOUT - 0.001) == []
    assert len(table) == 1
    assert table.expire(10.0 + TIMEOUT) == [first]
    assert table.stats.timeout == 1
    assert len(table) == 0
    assert table.memory() == 0
    assert table.next_deadline() is None
    # A new datagram with the same key starts afresh.
    assert feed(table, [middle, first, last], 50.0) == [whole]


def test_timeout_without_the_first_fragment_returns_nothing() -> None:
    _, middle, last = fragment_ipv4(packet(4000), 1500)
    table = Reassembly(timeout=TIMEOUT)
    feed(table, [middle, last], 0.0)
    assert table.expire(100.0) == []
    assert table.stats.timeout == 1


def test_timeout_is_tunable_and_deadlines_keep_their_order() -> None:
    table = Reassembly(timeout=60.0)
    a = fragment_ipv4(packet(2000, ident=1), 1500)
    b = fragment_ipv4(packet(2000, ident=2), 1500)
    ipv4_input(table, a[0], 0.0)
    table.timeout = 5.0
    ipv4_input(table, b[0], 1.0)
    assert table.next_deadline() == 6.0
    assert table.expire(6.0) == [b[0]]
    assert table.next_deadline() == 60.0
    assert table.expire(60.0) == [a[0]]


def test_memory_limit_evicts_the_oldest() -> None:
    pieces = [fragment_ipv4(packet(4000, ident=i), 1500) for i in range(3)]
    one = FRAGMENT_COST + 1500
    table = Reassembly(timeout=TIMEOUT, memory_limit=2 * one + 100)
    ipv4_input(table, pieces[0][0], 0.0)
    ipv4_input(table, pieces[1][0], 1.0)
    assert table.memory() == 2 * one
    ipv4_input(table, pieces[2][0], 2.0)  # evicts datagram 0
    assert table.stats.memory == 1
    assert len(table) == 2
    assert table.memory() == 2 * one
    assert table.expire(1e9) == [pieces[1][0], pieces[2][0]]


def test_datagram_outgrowing_the_limit_is_dropped() -> None:
    pieces = fragment_ipv4(packet(4000), 1500)
    table = Reassembly(timeout=TIMEOUT, memory_limit=2 * (FRAGMENT_COST + 1500))
    assert feed(table, pieces) == []
    assert table.stats.memory == 1
    assert len(table) == 0  # the datagram went, and the fragment that did not fit
    assert table.memory() == 0


def test_fragment_larger_than_the_limit_is_dropped() -> None:
    small = fragment_ipv4(packet(400, ident=1), 200)
    big = fragment_ipv4(packet(4000, ident=2), 1500)
    table = Reassembly(timeout=TIMEOUT, memory_limit=1000)
    ipv4_input(table, small[0], 0.0)
    ipv4_input(table, big[0], 0.0)
    assert table.stats.memory == 1
    assert len(table) == 1  # the small datagram stays
    assert table.memory_limit == 1000
    table.memory_limit = 1 << 20  # tunable at run time
    assert feed(table, big) == [packet(4000, ident=2)]


def test_too_many_fragments() -> None:
    pieces = fragment_ipv4(packet(1000), 68)
    table = Reassembly(timeout=TIMEOUT, max_fragments=8)
    assert feed(table, pieces) == []
    assert table.stats.toomany == 1
    assert table.stats.dead == len(pieces) - 9
    assert len(table) == 0


def test_badlen() -> None:
    table = Reassembly(timeout=TIMEOUT)
    assert ipv4_input(table, frag(payload(12), 0, True), 0.0) is None
    assert ipv4_input(table, frag(b"", 8, True), 0.0) is None
    assert table.stats.badlen == 2
    assert table.stats.fragments == 2
    assert len(table) == 0
    # A final fragment may have any length.
    assert ipv4_input(table, frag(payload(13), 8, False), 0.0) is None
    assert len(table) == 1


def test_toolong() -> None:
    table = Reassembly(timeout=TIMEOUT)
    last_offset = 65528  # the largest offset the 13-bit field can say
    assert ipv4_input(table, frag(payload(8), last_offset, False), 0.0) is None
    assert table.stats.toolong == 1
    assert ipv4_input(table, frag(payload(8), 65504, False), 0.0) is None  # 65504 + 8 + 20 fits
    assert table.stats.toolong == 1
    assert len(table) == 1


def test_toolong_when_the_first_header_is_longer() -> None:
    # Each fragment fits on its own, but the 60-byte header of the first
    # fragment makes the whole datagram longer than 65535 bytes.
    options = LSRR + b"\x01" * 32 + b"\x00"
    data = payload(65515)
    table = Reassembly(timeout=TIMEOUT, max_fragments=4)
    assert ipv4_input(table, frag(data[:8], 0, True, options=options), 0.0) is None
    assert ipv4_input(table, frag(data[8:], 8, False), 0.0) is None
    assert table.stats.toolong == 1
    assert table.stats.reassembled == 0
    assert len(table) == 0
    assert table.memory() == 0


def test_dead_keys_are_bounded() -> None:
    table = Reassembly(timeout=TIMEOUT)
    for ident in range(DEAD_LIMIT + 10):
        feed(
            table, [frag(payload(16), 0, True, ident=ident), frag(payload(8), 8, True, ident=ident)]
        )
    assert table.stats.overlap == DEAD_LIMIT + 10
    # The oldest dead keys were forgotten: fragment 0 starts a datagram again.
    ipv4_input(table, frag(payload(8), 8, True, ident=0), 1.0)
    assert len(table) == 1
    ipv4_input(table, frag(payload(8), 8, True, ident=DEAD_LIMIT + 9), 1.0)
    assert table.stats.dead == 1


def test_heap_stays_bounded_under_churn() -> None:
    table = Reassembly(timeout=TIMEOUT)
    for ident in range(5000):
        feed(table, fragment_ipv4(packet(200, ident=ident), 100))
    assert table.stats.reassembled == 5000
    assert table.next_deadline() is None
    assert len(table._heap) < 100


def test_clear() -> None:
    table = Reassembly(timeout=TIMEOUT)
    feed(table, fragment_ipv4(packet(4000), 1500)[:2])
    feed(table, [frag(payload(16), 0, True), frag(payload(8), 8, True)])
    assert len(table) == 1
    table.clear()
    assert len(table) == 0
    assert table.memory() == 0
    assert table.next_deadline() is None
    assert table.expire(1e9) == []


def test_input_accepts_memoryview() -> None:
    whole = packet(3000)
    table = Reassembly(timeout=TIMEOUT)
    pieces = [memoryview(bytearray(p)) for p in fragment_ipv4(memoryview(whole), 1000)]
    assert feed(table, pieces) == [whole]
    for p in pieces:
        p[20:] = bytes(len(p) - 20)  # the caller reuses its buffers
    assert table.expire(1e9) == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 12), st.integers(0, 4), st.booleans()),
        max_size=40,
    ),
    st.integers(200, 3000),
)
def test_random_fragment_streams_keep_the_books(
    stream: list[tuple[int, int, int, bool]], memory_limit: int
) -> None:
    # Fragments cut from three datagrams at arbitrary 8-byte boundaries, with
    # overlaps, gaps, duplicates and contradicting ends: whatever completes is
    # right, and the memory accounting always adds up.
    data = [payload(200, seed=i) for i in range(3)]
    table = Reassembly(timeout=TIMEOUT, memory_limit=memory_limit, max_fragments=6)
    now = 0.0
    for ident, start, blocks, more in stream:
        offset = start * 8
        chunk = data[ident][offset : offset + blocks * 8 if more else None]
        if more and not chunk:
            continue
        now += 0.5
        whole = ipv4_input(table, frag(chunk, offset, more, ident=ident), now)
        if whole is not None:
            assert whole[20:] == data[ident][: len(whole) - 20]
            assert Ipv4Header.parse(whole).ident == ident
        assert 0 <= table.memory() <= memory_limit
        assert len(table) <= 3
    held = table.memory()
    assert (held == 0) == (len(table) == 0)
    table.expire(now + TIMEOUT)
    assert table.memory() == 0
    assert len(table) == 0
    assert table.next_deadline() is None
    stats = table.stats
    outcomes = stats.badlen + stats.toolong + stats.duplicate + stats.dead
    assert stats.fragments >= outcomes


def test_tables_that_hold_nothing_share_nothing_they_could_change() -> None:
    busy, idle = Reassembly(timeout=TIMEOUT), Reassembly(timeout=TIMEOUT)
    idle.clear()
    assert idle.expire(1e9) == [] and idle.next_deadline() is None
    pieces = linux_fragments()
    assert feed(busy, pieces[:2]) == []  # two of three held
    assert len(busy) == 1 and busy.next_deadline() is not None
    assert len(idle) == 0 and idle.next_deadline() is None and idle.memory() == 0
    assert len(Reassembly(timeout=TIMEOUT)) == 0
    assert len(busy.expire(1e9)) == 1 and len(busy) == 0
