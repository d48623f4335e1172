"""Tests for vrouter.link.tso: a super-frame cut into the datagrams of one UDP_SEGMENT send,
and gro.join_train, which joins such datagrams back (both with numpy and without)."""

from __future__ import annotations

import struct

import dpkt
import pytest

from vrouter.link import gro, tso
from vrouter.link.offload import OffloadBuffer, resolve, tcp_offset, tcp_super_header
from vrouter.wire import checksum as checksum_
from vrouter.wire import vxlan as wire

PREFIX = wire.header(42)
MSS = 1398
SRC4, DST4 = bytes([198, 51, 100, 3]), bytes([198, 51, 100, 2])
SRC6 = bytes.fromhex("20010db8000000000000000000000003")
DST6 = bytes.fromhex("20010db8000000000000000000000002")


@pytest.fixture(params=["numpy", "loop"])
def vectorised(request, monkeypatch) -> bool:
    """Run a test with numpy and with the one-by-one code that runs without it."""
    if request.param == "loop":
        monkeypatch.setattr(checksum_, "_NUMPY", [None])
    return request.param == "numpy"


def payload_of(length: int) -> bytes:
    return bytes((i * 7 + i // 251) & 0xFF for i in range(length))


def super_frame(
    length: int,
    v6: bool = False,
    flags: int = 0x18,
    seq: int = 1000,
    ident: int = 0xFFFE,
    mss: int = MSS,
) -> OffloadBuffer:
    """A TSO super-frame as a TAP hands it over: TCP with timestamps, the checksum field
    holding the pseudo-header sum (as the kernel leaves it)."""
    options = b"\x01\x01\x08\x0a" + bytes(range(8))
    tcp = struct.pack("!HHIIBBHHH", 40000, 5201, seq, 77, 8 << 4, flags, 500, 0, 0) + options
    l4 = len(tcp) + length
    if v6:
        eth_type = b"\x86\xdd"
        ip = struct.pack("!IHBB16s16s", 0x60000000, l4, 6, 64, SRC6, DST6)
        pseudo = checksum_.ones_sum(SRC6 + DST6, 6 + l4)
    else:
        eth_type = b"\x08\x00"
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + l4, ident, 0x4000, 64, 6, 0, SRC4, DST4)
        pseudo = checksum_.ones_sum(SRC4 + DST4, 6 + l4)
    tcp = tcp[:16] + pseudo.to_bytes(2, "big") + tcp[18:]
    frame = OffloadBuffer(bytes.fromhex("02000000000b02000000000a") + eth_type + ip + tcp)
    frame += payload_of(length)
    frame.vhdr = tcp_super_header(not v6, 40 if v6 else 20, 32, mss)
    return frame


def cut(big: OffloadBuffer, prefix: bytes) -> tso.Train:
    return tso.cut(big, tcp_offset(big, big.vhdr), big.vhdr.gso_size, prefix)


def datagrams(train: tso.Train) -> list[bytes]:
    data = bytes(train.data)
    return [data[at : at + train.size] for at in range(0, len(data), train.size)]


def tcp_checksum_right(segment: bytes, v6: bool) -> bool:
    """The straightforward check: the one's complement sum over the pseudo-header and
    the whole TCP segment is 0xFFFF."""
    if v6:
        addresses, tcp = segment[14 + 8 : 14 + 40], segment[14 + 40 :]
    else:
        addresses, tcp = segment[14 + 12 : 14 + 20], segment[14 + 20 :]
    return checksum_.ones_sum(addresses + tcp, 6 + len(tcp)) == 0xFFFF


@pytest.mark.parametrize(
    ("length", "v6", "flags", "seq"),
    [
        (MSS * 46, False, 0x18, 1000),  # a full 64 KiB burst
        (MSS * 10 + 77, False, 0x80 | 0x19, 0xFFFFFF00),  # CWR, FIN, PSH; sequence wraps
        (MSS * 3, True, 0x18, 5),
        (MSS * 2 + 1, True, 0x10, 5),  # an odd last segment
        (500, False, 0x18, 5),  # shorter than one segment
    ],
)
def test_every_datagram_is_the_header_and_a_valid_segment(
    vectorised, length: int, v6: bool, flags: int, seq: int
) -> None:
    big = super_frame(length, v6, flags, seq)
    train = cut(big, PREFIX)
    out = datagrams(train)
    count = -(-length // MSS)
    assert train.datagrams == len(out) == count
    assert all(len(d) == train.size for d in out[:-1]) and len(out[-1]) <= train.size
    payload = b""
    for i, datagram in enumerate(out):
        assert datagram[:8] == PREFIX
        segment = datagram[8:]
        eth = dpkt.ethernet.Ethernet(segment)
        ip = eth.data
        tcp = ip.data
        assert tcp.seq == (seq + i * MSS) & 0xFFFFFFFF
        assert tcp.flags & 0x80 == (flags & 0x80 if i == 0 else 0)  # CWR on the first
        assert tcp.flags & 0x09 == (flags & 0x09 if i == count - 1 else 0)  # FIN, PSH on the last
        assert tcp_checksum_right(segment, v6)
        if not v6:
            assert ip.id == (0xFFFE + i) & 0xFFFF
            assert ip.len == len(segment) - 14
            assert checksum_.ones_sum(segment[14:34]) == 0xFFFF
        else:
            assert ip.plen == len(segment) - 54
        payload += bytes(tcp.data)
    assert payload == payload_of(length)


def test_the_segments_are_those_resolve_makes(vectorised) -> None:
    big = super_frame(MSS * 5 + 3)
    assert datagrams(cut(big, b"")) == [bytes(s) for s in resolve(big, big.vhdr)]


def train_bytes(length: int, flags: int = 0x18, mss: int = MSS) -> tuple[bytes, int, OffloadBuffer]:
    big = super_frame(length, flags=flags, mss=mss)
    train = cut(big, PREFIX)
    return bytes(train.data), train.size, big


def test_a_train_of_one_flow_joins_back_into_the_super_frame(vectorised) -> None:
    data, size, big = train_bytes(MSS * 20 + 100)
    joined = gro.join_train(data, size, 8)
    if not vectorised:
        assert joined is None  # without numpy the datagrams go through coalesce
        return
    assert joined is not None
    frame, used = joined
    assert used == len(data)
    assert frame.vhdr.gso_size == MSS and frame.vhdr.gso_type == big.vhdr.gso_type
    assert bytes(frame[34 + 32 :]) == bytes(big[34 + 32 :])
    inner = [d[8:] for d in datagrams_of(data, size)]
    assert [bytes(s) for s in resolve(frame, frame.vhdr)] == inner
    by_coalesce = gro.coalesce([d[8:] for d in datagrams_of(data, size)])
    assert len(by_coalesce) == 1 and bytes(by_coalesce[0]) == bytes(frame)


def datagrams_of(data: bytes, size: int) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


@pytest.mark.parametrize("change", ["seq", "mac", "ttl"])
def test_a_last_datagram_that_does_not_continue_is_left_to_the_caller(change: str) -> None:
    data, size, _ = train_bytes(MSS * 8 + 100)
    tail = bytearray(data[size * 8 :])
    if change == "seq":
        tail[8 + 34 + 4 : 8 + 34 + 8] = (12345).to_bytes(4, "big")  # another sequence number
    elif change == "mac":
        tail[8 + 5] ^= 1  # the same flow to another MAC
    else:
        tail[8 + 14 + 8] -= 1  # another TTL (the IPv4 checksum made right again)
        tail[8 + 14 + 10 : 8 + 14 + 12] = b"\0\0"
        tail[8 + 14 + 10 : 8 + 14 + 12] = checksum_.checksum(bytes(tail[22:42])).to_bytes(2, "big")
    joined = gro.join_train(data[: size * 8] + bytes(tail), size, 8)
    assert joined is not None
    frame, used = joined
    assert used == size * 8
    assert len(frame) == 14 + 20 + 32 + MSS * 8


@pytest.mark.parametrize(
    "spoil",
    [
        "tcp_checksum",  # one segment's payload changed in flight
        "ip_checksum",
        "gap",  # a segment missing
        "vni",  # another tunnel header
        "push",  # PSH inside the run
        "port",  # another flow
    ],
)
def test_a_train_with_any_flaw_is_not_joined(spoil: str) -> None:
    data, size, _ = train_bytes(MSS * 6, flags=0x10)
    spoilt = bytearray(data)
    third = size * 2
    if spoil == "tcp_checksum":
        spoilt[third + size - 1] ^= 0x40
    elif spoil == "ip_checksum":
        spoilt[third + 8 + 14 + 8] -= 1  # TTL: the header checksum no longer fits
    elif spoil == "gap":
        del spoilt[third : third + size]
    elif spoil == "vni":
        spoilt[third + 6] ^= 1
    elif spoil == "push":
        spoilt[third + 8 + 34 + 13] = 0x18
    elif spoil == "port":
        spoilt[third + 8 + 34 + 1] ^= 1
    assert gro.join_train(bytes(spoilt), size, 8) is None


@pytest.mark.parametrize("spoil", ["none", "tcp_checksum", "ip_checksum"])
def test_a_train_of_odd_sized_segments_is_checked_the_same(spoil: str) -> None:
    data, size, big = train_bytes(1397 * 5, flags=0x10, mss=1397)  # odd: summed apart
    assert (size - 8 - 14) % 2 == 1
    spoilt = bytearray(data)
    if spoil == "tcp_checksum":
        spoilt[size * 3 - 1] ^= 0x01
    elif spoil == "ip_checksum":
        spoilt[size * 3 + 8 + 14 + 8] -= 1
    joined = gro.join_train(bytes(spoilt), size, 8)
    if spoil != "none":
        assert joined is None
        return
    assert joined is not None
    assert bytes(joined[0][34 + 32 :]) == bytes(big[34 + 32 :])


def test_two_segments_whose_errors_cancel_in_a_total_are_still_refused() -> None:
    """Each segment's own checksum is tested, not the train's total: a word moved from
    one segment's payload to another's leaves the total as it was."""
    data, size, _ = train_bytes(MSS * 6, flags=0x10)
    spoilt = bytearray(data)
    a, b = size * 1 + size - 20, size * 4 + size - 20  # the same offset in two segments
    spoilt[a : a + 2], spoilt[b : b + 2] = b"\x12\x34", b"\x00\x00"
    spoilt[a + 2 : a + 4], spoilt[b + 2 : b + 4] = data[b : b + 2], data[a : a + 2]
    total = checksum_.ones_sum(bytes(spoilt)) == checksum_.ones_sum(data)
    assert gro.join_train(bytes(spoilt), size, 8) is None, total


def test_ones_sums_and_sums_valid_match_the_one_by_one_sums(vectorised) -> None:
    data, size, _ = train_bytes(MSS * 7 + 5)
    for start, length in ((0, size), (3, size - 3), (8 + 14, 20), (8 + 34, size - 42), (1, 5)):
        count = (len(data) - start - length) // size + 1
        starts = range(start, start + count * size, size)
        want = [checksum_.ones_sum(data[at : at + length]) for at in starts]
        assert checksum_.ones_sums(data, start, size, length, count) == want
    assert checksum_.sums_valid(data, 8 + 14, size, 20, len(data) // size)
    assert not checksum_.sums_valid(data, 8 + 15, size, 20, len(data) // size)
    with pytest.raises(ValueError, match="past the end"):
        checksum_.ones_sums(data, 0, size, size, len(data) // size + 2)
