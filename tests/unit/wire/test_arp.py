"""Tests for vrouter.wire.arp: Ethernet/IPv4 ARP packets (RFC 826)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.wire import arp
from vrouter.wire.arp import ArpPacket
from vrouter.wire.errors import IntegrityError, SanityError, WireError

# ARP packets (the Ethernet payload, 28 bytes) captured from Linux 6.18 with
# tcpdump on a veth pair between two netns: wcap-a (00:00:5e:00:53:01,
# 192.0.2.1/24) and wcap-b (00:00:5e:00:53:02, 192.0.2.2/24).
# `ping -c1 192.0.2.2` in wcap-a, from a cold neighbour cache, produced:
ARP_REQUEST = bytes.fromhex(  # who-has 192.0.2.2 tell 192.0.2.1
    "0001 0800 06 04 0001 00005e005301 c0000201 000000000000 c0000202"
)
ARP_REPLY = bytes.fromhex(  # 192.0.2.2 is-at 00:00:5e:00:53:02
    "0001 0800 06 04 0002 00005e005302 c0000202 00005e005301 c0000201"
)
# With net.ipv4.conf.*.arp_notify=1 in wcap-b, `ip link set VB address
# 00:00:5e:00:53:03` made the kernel announce itself:
ARP_GRATUITOUS = bytes.fromhex(  # who-has 192.0.2.2 tell 192.0.2.2
    "0001 0800 06 04 0001 00005e005303 c0000202 000000000000 c0000202"
)

MAC_A = bytes.fromhex("00005e005301")
MAC_B = bytes.fromhex("00005e005302")
MAC_B2 = bytes.fromhex("00005e005303")
IP_A = bytes.fromhex("c0000201")
IP_B = bytes.fromhex("c0000202")
BCAST = b"\xff" * 6

REQUEST = ArpPacket(1, MAC_A, IP_A, bytes(6), IP_B)
REPLY = ArpPacket(2, MAC_B, IP_B, MAC_A, IP_A)
GRATUITOUS = ArpPacket(1, MAC_B2, IP_B, bytes(6), IP_B)

CAPTURED = [
    pytest.param(ARP_REQUEST, REQUEST, id="request"),
    pytest.param(ARP_REPLY, REPLY, id="reply"),
    pytest.param(ARP_GRATUITOUS, GRATUITOUS, id="gratuitous"),
]


def test_constants() -> None:
    assert arp.PACKET_LEN == arp.PACKET.size == 28
    assert (arp.HTYPE_ETHERNET, arp.PTYPE_IPV4, arp.OP_REQUEST, arp.OP_REPLY) == (1, 0x0800, 1, 2)


@pytest.mark.parametrize(("data", "expected"), CAPTURED)
def test_parse_captured(data: bytes, expected: ArpPacket) -> None:
    pkt = ArpPacket.parse(data)
    assert pkt == expected
    assert all(type(f) is bytes for f in (pkt.sha, pkt.spa, pkt.tha, pkt.tpa))


@pytest.mark.parametrize(("data", "expected"), CAPTURED)
def test_parse_memoryview_and_bytearray(data: bytes, expected: ArpPacket) -> None:
    assert ArpPacket.parse(memoryview(data)) == expected
    assert ArpPacket.parse(bytearray(data)) == expected


@pytest.mark.parametrize(("data", "expected"), CAPTURED)
def test_parse_ignores_ethernet_padding(data: bytes, expected: ArpPacket) -> None:
    # On a real wire the 28 bytes are padded to the 46-byte minimum payload.
    assert ArpPacket.parse(data + bytes(18)) == expected


@pytest.mark.parametrize(("data", "expected"), CAPTURED)
def test_emit_gives_captured_bytes(data: bytes, expected: ArpPacket) -> None:
    assert expected.emit() == data
    assert ArpPacket.parse(data).emit() == data


def test_parse_inside_captured_frame() -> None:
    # The whole captured frame, as tcpdump wrote it; ARP starts after 14 bytes.
    frame = bytes.fromhex(
        "ffffffffffff 00005e005301 0806 "
        "0001 0800 06 04 0001 00005e005301 c0000201 000000000000 c0000202"
    )
    assert ArpPacket.parse(memoryview(frame)[14:]) == REQUEST


@pytest.mark.parametrize("length", range(28))
def test_truncated(length: int) -> None:
    with pytest.raises(IntegrityError) as exc:
        ArpPacket.parse(ARP_REQUEST[:length])
    assert exc.value.reason == "arp_truncated"


def _patched(fmt: str, offset: int, value: int) -> bytes:
    raw = bytearray(ARP_REQUEST)
    struct.pack_into(fmt, raw, offset, value)
    return bytes(raw)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_patched("!H", 0, 6), id="htype-ieee802"),
        pytest.param(_patched("!H", 0, 0), id="htype-0"),
        pytest.param(_patched("!H", 2, 0x86DD), id="ptype-ipv6"),
        pytest.param(_patched("!H", 2, 0x0806), id="ptype-arp"),
        pytest.param(_patched("!B", 4, 8), id="hlen-8"),
        pytest.param(_patched("!B", 4, 0), id="hlen-0"),
        pytest.param(_patched("!B", 5, 16), id="plen-16"),
        pytest.param(_patched("!B", 5, 0), id="plen-0"),
        # A bad format wins over a bad op.
        pytest.param(_patched("!B", 5, 16)[:6] + b"\x00\x03" + ARP_REQUEST[8:], id="plen-and-op"),
    ],
)
def test_bad_format(data: bytes) -> None:
    with pytest.raises(SanityError) as exc:
        ArpPacket.parse(data)
    assert type(exc.value) is SanityError
    assert exc.value.reason == "arp_bad_format"


@pytest.mark.parametrize("op", [0, 3, 4, 8, 9, 0x0100, 0xFFFF])  # 3/4 RARP, 8/9 InARP
def test_bad_op(op: int) -> None:
    with pytest.raises(SanityError) as exc:
        ArpPacket.parse(_patched("!H", 6, op))
    assert type(exc.value) is SanityError
    assert exc.value.reason == "arp_bad_op"


@pytest.mark.parametrize(
    ("pkt", "expected"),
    [
        pytest.param(REQUEST, False, id="captured-request"),
        pytest.param(REPLY, False, id="captured-reply"),
        pytest.param(GRATUITOUS, True, id="captured-gratuitous-request"),
        pytest.param(ArpPacket(2, MAC_B, IP_B, BCAST, IP_B), True, id="gratuitous-reply"),
        # RFC 5227 probe: sender 0.0.0.0, target the address being probed.
        pytest.param(ArpPacket(1, MAC_A, bytes(4), bytes(6), IP_A), False, id="probe"),
        # RFC 5227 announcement: sender and target both the claimed address.
        pytest.param(ArpPacket(1, MAC_A, IP_A, bytes(6), IP_A), True, id="announcement"),
        pytest.param(ArpPacket(1, BCAST, IP_A, bytes(6), IP_B), False, id="other"),
    ],
)
def test_is_gratuitous(pkt: ArpPacket, expected: bool) -> None:
    assert pkt.is_gratuitous is expected


@given(
    st.sampled_from([1, 2]),
    st.binary(min_size=6, max_size=6),
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=6, max_size=6),
    st.binary(min_size=4, max_size=4),
)
def test_emit_parse_round_trip(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> None:
    pkt = ArpPacket(op, sha, spa, tha, tpa)
    raw = pkt.emit()
    assert len(raw) == 28
    assert ArpPacket.parse(raw) == pkt


@given(st.binary(max_size=40))
def test_parse_any_bytes_raises_only_wire_errors(data: bytes) -> None:
    try:
        pkt = ArpPacket.parse(data)
    except WireError:
        return
    assert pkt.emit() == data[:28]


@given(st.binary(min_size=20, max_size=20))
def test_parse_well_formed_prefix(tail: bytes) -> None:
    # Any addresses behind a valid fixed part parse and re-emit unchanged.
    data = ARP_REQUEST[:8] + tail
    assert ArpPacket.parse(data).emit() == data
