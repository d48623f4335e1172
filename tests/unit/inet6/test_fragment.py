"""Tests for vrouter.inet6.fragment: IPv6 reassembly and source fragmentation (RFC 8200 4.5).

Round trips go both ways, with and without a Hop-by-Hop header before the
Fragment header; every fragment is decoded by dpkt; and Linux's own fragments
of one UDP datagram, captured from a real kernel, must be reassembled and
reproduced byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from ipaddress import IPv6Address

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrouter.inet.fragment import FRAGMENT_COST, Reassembly
from vrouter.inet6.fragment import (
    PP_CHAIN,
    PP_HEADER,
    fragment_ipv6,
    ipv6_input,
    unfragmentable_length,
)
from vrouter.wire import ipv6
from vrouter.wire.ipv6 import (
    FRAGMENT,
    NH_DSTOPTS,
    NH_FRAGMENT,
    NH_HOPOPTS,
    NH_ROUTING,
    NH_UDP,
    ParameterProblem,
)

SRC = IPv6Address("2001:db8::1").packed
DST = IPv6Address("2001:db8:1::2").packed
TIMEOUT = 60.0

# Linux 6.18 sending one UDP datagram (3992 bytes of data, byte i is i & 0xff)
# from [2001:db8::1]:40000 to [2001:db8::2]:33434 over a 1500-byte veth
# between two netns (`ethtool -K <veth> tx off`), captured with tcpdump:
# 3 fragments of 1448, 1448 and 1104 data bytes.  Fixed + Fragment headers:
LINUX_HEADERS = [
    bytes.fromhex(
        "6001543e05b02c4020010db8000000000000000000000001"
        "20010db8000000000000000000000002" + "11000001e80af0c5"
    ),
    bytes.fromhex(
        "6001543e05b02c4020010db8000000000000000000000001"
        "20010db8000000000000000000000002" + "110005a9e80af0c5"
    ),
    bytes.fromhex(
        "6001543e04582c4020010db8000000000000000000000001"
        "20010db8000000000000000000000002" + "11000b50e80af0c5"
    ),
]
LINUX_UDP = bytes.fromhex("9c40829a0fa0c7fb") + bytes(i & 0xFF for i in range(3992))
LINUX_IDENT = 0xE80AF0C5

HOPOPTS_PAD = bytes([NH_UDP, 0, 1, 4, 0, 0, 0, 0])  # PadN only
HOPOPTS_ALERT = bytes([NH_UDP, 0, 5, 2, 0, 0, 1, 0])  # Router Alert + PadN


def linux_fragments() -> list[bytes]:
    """Return the three captured fragments, headers plus data."""
    out = []
    for header in LINUX_HEADERS:
        offset = (header[42] << 8 | header[43]) & 0xFFF8
        length = (header[4] << 8 | header[5]) - 8
        out.append(header + LINUX_UDP[offset : offset + length])
    return out


def packet(n: int, *, hopopts: bytes = b"", seed: int = 0, src: bytes = SRC) -> bytes:
    """Return a UDP-in-IPv6 packet (UDP header included in ``n``), optionally with Hop-by-Hop."""
    body = random.Random(seed).randbytes(n)
    if hopopts:
        return ipv6.build(src, DST, NH_HOPOPTS, hopopts + body)
    return ipv6.build(src, DST, NH_UDP, body)


def frag(
    data: bytes,
    offset: int,
    more: bool,
    *,
    ident: int = 7,
    nh: int = NH_UDP,
    hopopts: bytes = b"",
    src: bytes = SRC,
) -> bytes:
    """Return a hand-made fragment: ``data`` at byte ``offset``."""
    fh = FRAGMENT.pack(nh, 0, offset | int(more), ident)
    if hopopts:
        hop = bytes([NH_FRAGMENT]) + hopopts[1:]
        return ipv6.build(src, DST, NH_HOPOPTS, hop + fh + data)
    return ipv6.build(src, DST, NH_FRAGMENT, fh + data)


def frag_offset(piece: bytes | memoryview) -> int:
    """Return where the Fragment header is, as the IPv6 input path finds it."""
    return ipv6.walk(piece, ipv6.check(piece), local=True).fragment_offset


def feed(table: Reassembly, pieces: Sequence[bytes | memoryview], now: float = 0.0) -> list[bytes]:
    out = []
    for piece in pieces:
        result = ipv6_input(table, piece, frag_offset(piece), now)
        if result is not None:
            out.append(result)
    return out


def assert_fragment(piece: bytes, mtu: int, ident: int) -> dpkt.ip6.IP6FragmentHeader:
    """Check one produced fragment with vrouter's walk and dpkt; return dpkt's Fragment header."""
    assert len(piece) <= mtu
    assert ipv6.check(piece) == len(piece)
    parsed = dpkt.ip6.IP6(piece)
    assert parsed.plen == len(piece) - 40
    fh = parsed.extension_hdrs[NH_FRAGMENT]
    assert fh.id == ident
    return fh


# --- Linux comparison -------------------------------------------------------


def test_linux_fragments_reassemble_and_are_reproduced_byte_exact() -> None:
    pieces = linux_fragments()
    assert [len(p) - 48 for p in pieces] == [1448, 1448, 1104]
    assert [len(p) for p in pieces] == [1496, 1496, 1152]
    table = Reassembly(timeout=TIMEOUT)
    (whole,) = feed(table, pieces)
    assert len(whole) == 40 + 4000
    assert whole[6] == NH_UDP
    assert whole[40:] == LINUX_UDP
    assert whole[:4] == pieces[0][:4]  # traffic class and flow label kept
    assert dpkt.ip6.IP6(whole).udp.dport == 33434
    assert fragment_ipv6(whole, 1500, LINUX_IDENT) == pieces
    assert (table.stats.fragments, table.stats.reassembled) == (3, 1)
    assert len(table) == 0
    assert table.memory() == 0


# --- round trips ------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(8, 30000),
    mtu=st.integers(1280, 9000),
    hopopts=st.sampled_from([b"", HOPOPTS_PAD, HOPOPTS_ALERT]),
    order=st.sampled_from(["in order", "reversed", "shuffled"]),
    ident=st.integers(0, 2**32 - 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip(size: int, mtu: int, hopopts: bytes, order: str, ident: int, seed: int) -> None:
    whole = packet(size, hopopts=hopopts, seed=seed)
    pieces = fragment_ipv6(whole, mtu, ident)
    if len(whole) <= mtu:
        assert pieces == [whole]
        return
    unfrag = 40 + len(hopopts)
    data = 0
    for i, piece in enumerate(pieces):
        fh = assert_fragment(piece, mtu, ident)
        assert piece[:4] == whole[:4]  # version, traffic class, flow label
        assert piece[7:40] == whole[7:40]  # hop limit, addresses
        assert frag_offset(piece) == unfrag
        assert fh.nxt == NH_UDP
        assert fh.frag_off * 8 == data
        assert fh.m_flag == (i < len(pieces) - 1)
        length = len(piece) - unfrag - 8
        if i < len(pieces) - 1:
            assert length % 8 == 0
            assert length > 0
        data += length
        if hopopts:
            assert piece[6] == NH_HOPOPTS
            assert piece[40] == NH_FRAGMENT
            assert piece[41:48] == hopopts[1:]
        else:
            assert piece[6] == NH_FRAGMENT
    assert data == size
    if order == "reversed":
        pieces.reverse()
    elif order == "shuffled":
        random.Random(seed).shuffle(pieces)
    table = Reassembly(timeout=TIMEOUT)
    assert feed(table, pieces) == [whole]
    assert table.stats.reassembled == 1
    assert len(table) == 0
    assert table.memory() == 0


def test_largest_packet_at_1280() -> None:
    whole = packet(65535 - 8, hopopts=HOPOPTS_PAD)
    pieces = fragment_ipv6(whole, 1280, 1)
    assert all(len(p) <= 1280 for p in pieces)
    assert all(len(p) - 56 == 1224 for p in pieces[:-1])  # (1280 - 40 - 8 - 8) & ~7
    random.Random(2).shuffle(pieces)
    assert feed(Reassembly(timeout=TIMEOUT), pieces) == [whole]


def test_interleaved_packets_by_source_and_ident() -> None:
    a = packet(3000, seed=1)
    b = packet(3000, seed=2)
    c = packet(3000, seed=3, src=IPv6Address("2001:db8::99").packed)
    split = [fragment_ipv6(a, 1280, 1), fragment_ipv6(b, 1280, 2), fragment_ipv6(c, 1280, 1)]
    mixed = [p for group in zip(*split, strict=True) for p in group]
    assert sorted(feed(Reassembly(timeout=TIMEOUT), mixed)) == sorted([a, b, c])


def test_only_the_first_fragments_next_header_counts() -> None:
    data = bytes(range(24))
    pieces = [frag(data[:16], 0, True, nh=NH_UDP), frag(data[16:], 16, False, nh=99)]
    (whole,) = feed(Reassembly(timeout=TIMEOUT), pieces[::-1])
    assert whole == ipv6.build(SRC, DST, NH_UDP, data)


# --- the unfragmentable part -------------------------------------------------


def ext(nh: int, length: int = 8) -> bytes:
    """Return an options header of ``length`` bytes padded with Pad1."""
    return bytes([nh, length // 8 - 1]) + bytes(length - 2)


def chain(*headers: tuple[int, bytes], upper: bytes = bytes(2000)) -> bytes:
    """Return a packet with the given (type, bytes) extension headers, then UDP ``upper``."""
    types = [t for t, _ in headers] + [NH_UDP]
    body = b"".join(bytes([types[i + 1]]) + h[1:] for i, (_, h) in enumerate(headers))
    return ipv6.build(SRC, DST, types[0], body + upper)


ROUTING = bytes([0, 0, 4, 0, 0, 0, 0, 0])  # type 4, segments left 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((), (40, 6)),
        (((NH_HOPOPTS, ext(0)),), (48, 40)),
        (((NH_DSTOPTS, ext(0)),), (40, 6)),  # final destination options: fragmentable
        (((NH_HOPOPTS, ext(0)), (NH_DSTOPTS, ext(0, 16))), (48, 40)),
        (((NH_HOPOPTS, ext(0)), (NH_ROUTING, ROUTING)), (56, 48)),
        (((NH_DSTOPTS, ext(0)), (NH_ROUTING, ROUTING)), (56, 48)),
        (((NH_HOPOPTS, ext(0)), (NH_DSTOPTS, ext(0)), (NH_ROUTING, ROUTING)), (64, 56)),
        (((NH_ROUTING, ROUTING), (NH_DSTOPTS, ext(0))), (48, 40)),
    ],
)
def test_unfragmentable_part(
    headers: tuple[tuple[int, bytes], ...], expected: tuple[int, int]
) -> None:
    whole = chain(*headers)
    assert unfragmentable_length(whole) == expected
    pieces = fragment_ipv6(whole, 1280, 5)
    unfrag, field = expected
    head = bytearray(whole[:unfrag])
    head[field] = NH_FRAGMENT
    for piece in pieces:
        assert frag_offset(piece) == unfrag
        assert piece[:4] + piece[6:unfrag] == head[:4] + head[6:]
        assert piece[unfrag] == whole[field]  # the Fragment header's Next Header
    assert feed(Reassembly(timeout=TIMEOUT), pieces[::-1]) == [whole]


def test_fragment_refusals() -> None:
    with pytest.raises(ValueError, match="minimum"):
        fragment_ipv6(packet(3000), 1279, 1)
    small = packet(1000)
    assert fragment_ipv6(small, 1280, 1) == [small]
    assert fragment_ipv6(small + b"trailer", 1280, 1) == [small]
    with pytest.raises(ValueError, match="Fragment header"):
        fragment_ipv6(frag(bytes(2000), 0, True), 1280, 1)
    truncated = bytearray(chain((NH_HOPOPTS, ext(0))))
    truncated[41] = 255  # a Hop-by-Hop header longer than the packet
    with pytest.raises(ValueError, match="truncated"):
        fragment_ipv6(bytes(truncated), 1280, 1)
    big_unfrag = chain((NH_HOPOPTS, ext(0, 1240)))
    with pytest.raises(ValueError, match="no room"):
        fragment_ipv6(big_unfrag, 1280, 1)


# --- atomic fragments ----------------------------------------------------------


@pytest.mark.parametrize("hopopts", [b"", HOPOPTS_ALERT])
def test_atomic_fragment_returned_at_once(hopopts: bytes) -> None:
    table = Reassembly(timeout=TIMEOUT)
    piece = frag(b"atomic!!", 0, False, hopopts=hopopts, ident=99)
    whole = ipv6_input(table, piece, frag_offset(piece), 0.0)
    expected = packet(0, hopopts=hopopts)[: 40 + len(hopopts)]
    expected = bytearray(expected + b"atomic!!")
    expected[5] += 8
    assert whole == bytes(expected)
    assert len(table) == 0
    assert table.next_deadline() is None
    assert table.stats == type(table.stats)()


def test_atomic_fragment_does_not_disturb_a_datagram_in_progress() -> None:
    data = bytes(range(32))
    table = Reassembly(timeout=TIMEOUT)
    assert ipv6_input(table, frag(data[:16], 0, True), 40, 0.0) is None
    assert ipv6_input(table, frag(b"x" * 8, 0, False), 40, 0.0) is not None
    assert feed(table, [frag(data[16:], 16, False)]) == [ipv6.build(SRC, DST, NH_UDP, data)]


# --- RFC 8200 4.5 Parameter Problems ----------------------------------------------


@pytest.mark.parametrize("hopopts", [b"", HOPOPTS_PAD])
def test_non_final_fragment_not_a_multiple_of_8(hopopts: bytes) -> None:
    table = Reassembly(timeout=TIMEOUT)
    piece = frag(bytes(12), 8, True, hopopts=hopopts)
    with pytest.raises(ParameterProblem) as info:
        ipv6_input(table, piece, frag_offset(piece), 0.0)
    assert (info.value.code, info.value.pointer) == (PP_HEADER, 4)
    assert info.value.reason == "ip6_fragbadlen"
    assert table.stats.badlen == 1
    assert len(table) == 0


def test_empty_non_final_fragment_dropped_quietly() -> None:
    table = Reassembly(timeout=TIMEOUT)
    assert ipv6_input(table, frag(b"", 8, True), 40, 0.0) is None
    assert table.stats.badlen == 1
    assert len(table) == 0


@pytest.mark.parametrize("hopopts", [b"", HOPOPTS_PAD])
def test_reassembled_payload_longer_than_65535(hopopts: bytes) -> None:
    table = Reassembly(timeout=TIMEOUT)
    fits = 65535 - len(hopopts) - 16
    piece = frag(bytes(16), fits, False, hopopts=hopopts)
    assert ipv6_input(table, piece, frag_offset(piece), 0.0) is None
    piece = frag(bytes(16), fits + 8, False, hopopts=hopopts, ident=8)
    with pytest.raises(ParameterProblem) as info:
        ipv6_input(table, piece, frag_offset(piece), 0.0)
    fh = 40 + len(hopopts)
    assert (info.value.code, info.value.pointer) == (PP_HEADER, fh + 2)
    assert piece[info.value.pointer : info.value.pointer + 2] == (fits + 8).to_bytes(2, "big")
    assert table.stats.toolong == 1
    assert len(table) == 1


def test_toolong_when_the_first_fragment_has_more_headers() -> None:
    # Each fragment fits on its own, but the Hop-by-Hop header of the first
    # makes the reassembled payload longer than 65535 bytes.
    table = Reassembly(timeout=TIMEOUT, max_fragments=4)
    assert ipv6_input(table, frag(bytes(8), 0, True, hopopts=HOPOPTS_PAD), 48, 0.0) is None
    assert ipv6_input(table, frag(bytes(65520), 8, False), 40, 0.0) is None
    assert table.stats.toolong == 1
    assert table.stats.reassembled == 0
    assert len(table) == 0


def test_first_fragment_with_a_cut_header_chain() -> None:
    # The first fragment starts with a 64-byte Destination Options header but
    # carries only 16 bytes of it (RFC 8200 4.5, RFC 7112: code 3, pointer 0).
    dstopts = bytes([NH_UDP, 7, 1, 60]) + bytes(60)
    table = Reassembly(timeout=TIMEOUT)
    piece = frag(dstopts[:16], 0, True, nh=NH_DSTOPTS)
    with pytest.raises(ParameterProblem) as info:
        ipv6_input(table, piece, 40, 0.0)
    assert (info.value.code, info.value.pointer) == (PP_CHAIN, 0)
    assert table.stats.badlen == 1
    assert len(table) == 0
    # Whole, the same header is fine, and it reassembles.
    rest = bytes(range(16))
    pieces = [frag(dstopts + b"udp hdr!", 0, True, nh=NH_DSTOPTS), frag(rest, 72, False)]
    (whole,) = feed(table, pieces)
    assert whole == ipv6.build(SRC, DST, NH_DSTOPTS, dstopts + b"udp hdr!" + rest)


# --- the reassembly policy ---------------------------------------------------------


def test_duplicates_ignored_and_packet_still_completes() -> None:
    whole = packet(4000, hopopts=HOPOPTS_ALERT)
    pieces = fragment_ipv6(whole, 1500, 3)
    table = Reassembly(timeout=TIMEOUT)
    assert feed(table, [pieces[2], pieces[0], pieces[2], pieces[0], pieces[1]]) == [whole]
    assert table.stats.duplicate == 2


def test_overlap_drops_the_packet_and_marks_it_dead() -> None:
    data = bytes(range(48))
    table = Reassembly(timeout=TIMEOUT)
    assert feed(table, [frag(data[:16], 0, True), frag(data[8:24], 8, True)], 5.0) == []
    assert table.stats.overlap == 1
    assert len(table) == 0
    assert feed(table, [frag(data[16:], 16, False), frag(data[:16], 0, True)], 6.0) == []
    assert table.stats.dead == 2
    assert table.next_deadline() == 5.0 + TIMEOUT
    assert table.expire(5.0 + TIMEOUT) == []
    assert table.stats.timeout == 0
    pieces = [frag(data[16:], 16, False), frag(data[:16], 0, True)]
    assert feed(table, pieces, 70.0) == [ipv6.build(SRC, DST, NH_UDP, data)]


def test_timeout_returns_the_first_fragment() -> None:
    pieces = fragment_ipv6(packet(4000, hopopts=HOPOPTS_PAD), 1500, 4)
    table = Reassembly(timeout=TIMEOUT)
    assert feed(table, [pieces[0], pieces[2]], 1.0) == []
    assert table.next_deadline() == 1.0 + TIMEOUT
    assert table.expire(TIMEOUT) == []
    assert table.expire(1.0 + TIMEOUT) == [pieces[0]]
    assert table.stats.timeout == 1
    assert table.memory() == 0
    # Without the first fragment there is nothing to answer with.
    feed(table, [pieces[1]], 100.0)
    assert table.expire(200.0) == []
    assert table.stats.timeout == 2


def test_memory_limit_evicts_the_oldest() -> None:
    pieces = [fragment_ipv6(packet(4000, seed=i), 1500, i) for i in range(3)]
    one = FRAGMENT_COST + len(pieces[0][0])
    table = Reassembly(timeout=TIMEOUT, memory_limit=2 * one + 10)
    for i in range(3):
        feed(table, [pieces[i][0]], float(i))
    assert table.stats.memory == 1
    assert table.expire(1e9) == [pieces[1][0], pieces[2][0]]
    big = Reassembly(timeout=TIMEOUT, memory_limit=1000)
    feed(big, [pieces[0][1]])
    assert big.stats.memory == 1
    assert len(big) == 0


def test_memoryview_input() -> None:
    whole = packet(5000, hopopts=HOPOPTS_PAD)
    pieces = [memoryview(bytearray(p)) for p in fragment_ipv6(memoryview(whole), 1280, 1)]
    assert feed(Reassembly(timeout=TIMEOUT), pieces) == [whole]
