"""Tests for vrouter.wire.ethernet: header parse/emit, MAC helpers."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.wire import ethernet
from vrouter.wire.errors import IntegrityError
from vrouter.wire.ethernet import EthernetHeader

# Frames captured from Linux 6.18 with tcpdump on one end of a veth pair
# between two netns: wcap-a (veth MAC 00:00:5e:00:53:01, 192.0.2.1/24) and
# wcap-b (00:00:5e:00:53:02, 192.0.2.2/24). Commands, run in wcap-a:
#   ping -c1 192.0.2.2                      -> ARP request/reply, echo request/reply
#   python3 -c 'socket ... bind(("192.0.2.1", 40000));
#       sendto(b"vrouter wire test\n", ("192.0.2.2", 33434))'
#                                           -> UDP datagram, ICMP port unreachable
# and, with arp_notify=1 in wcap-b, `ip link set VB address 00:00:5e:00:53:03`
#                                           -> gratuitous ARP request.
# The UDP/ICMP pair comes from a second run with `ethtool -K <veth> tx off` on
# both ends: with veth's TX checksum offload on, the captured UDP checksum
# field holds only the pseudo-header sum, left for "hardware" to complete.
ARP_REQUEST = bytes.fromhex(
    "ffffffffffff 00005e005301 0806 "
    "0001 0800 06 04 0001 00005e005301 c0000201 000000000000 c0000202"
)
ARP_REPLY = bytes.fromhex(
    "00005e005301 00005e005302 0806 "
    "0001 0800 06 04 0002 00005e005302 c0000202 00005e005301 c0000201"
)
ARP_GRATUITOUS = bytes.fromhex(
    "ffffffffffff 00005e005303 0806 "
    "0001 0800 06 04 0001 00005e005303 c0000202 000000000000 c0000202"
)
ECHO_REQUEST = bytes.fromhex(
    "00005e00530200005e0053010800450000542433400040019272c0000201c000"
    "020208008c2f0dd10001bbb2076b00000000d50d070000000000101112131415"
    "161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435"
    "3637"
)
ECHO_REPLY = bytes.fromhex(
    "00005e00530100005e0053020800450000543b6400004001bb41c0000202c000"
    "02010000942f0dd10001bbb2076b00000000d50d070000000000101112131415"
    "161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435"
    "3637"
)
UDP_DATAGRAM = bytes.fromhex(
    "00005e00530200005e00530108004500002edeaf40004011d80bc0000201c000"
    "02029c40829a001aacac76726f75746572207769726520746573740a"
)
PORT_UNREACHABLE = bytes.fromhex(
    "00005e00530100005e005302080045c0004a029a00004001f355c0000202c000"
    "02010303812c000000004500002edeaf40004011d80bc0000201c00002029c40"
    "829a001aacac76726f75746572207769726520746573740a"
)

MAC_A = bytes.fromhex("00005e005301")
MAC_B = bytes.fromhex("00005e005302")
MAC_B2 = bytes.fromhex("00005e005303")
BCAST = b"\xff" * 6

CAPTURED = [
    pytest.param(ARP_REQUEST, BCAST, MAC_A, 0x0806, id="arp-request"),
    pytest.param(ARP_REPLY, MAC_A, MAC_B, 0x0806, id="arp-reply"),
    pytest.param(ARP_GRATUITOUS, BCAST, MAC_B2, 0x0806, id="arp-gratuitous"),
    pytest.param(ECHO_REQUEST, MAC_B, MAC_A, 0x0800, id="echo-request"),
    pytest.param(ECHO_REPLY, MAC_A, MAC_B, 0x0800, id="echo-reply"),
    pytest.param(UDP_DATAGRAM, MAC_B, MAC_A, 0x0800, id="udp"),
    pytest.param(PORT_UNREACHABLE, MAC_A, MAC_B, 0x0800, id="port-unreachable"),
]


def test_constants() -> None:
    assert ethernet.HEADER_LEN == ethernet.HEADER.size == 14
    assert ethernet.ETHERTYPE_IPV4 == 0x0800
    assert ethernet.ETHERTYPE_ARP == 0x0806
    assert ethernet.ETHERTYPE_VLAN == 0x8100
    assert ethernet.ETHERTYPE_IPV6 == 0x86DD
    assert ethernet.BROADCAST == BCAST
    assert bytes(6) == ethernet.ZERO


@pytest.mark.parametrize(("frame", "dst", "src", "ethertype"), CAPTURED)
def test_parse_captured(frame: bytes, dst: bytes, src: bytes, ethertype: int) -> None:
    hdr = EthernetHeader.parse(frame)
    assert hdr == EthernetHeader(dst, src, ethertype)
    assert type(hdr.dst) is bytes and type(hdr.src) is bytes


@pytest.mark.parametrize(("frame", "dst", "src", "ethertype"), CAPTURED)
def test_parse_memoryview_and_bytearray(
    frame: bytes, dst: bytes, src: bytes, ethertype: int
) -> None:
    expected = EthernetHeader(dst, src, ethertype)
    assert EthernetHeader.parse(memoryview(frame)) == expected
    assert EthernetHeader.parse(bytearray(frame)) == expected


@pytest.mark.parametrize(("frame", "dst", "src", "ethertype"), CAPTURED)
def test_fixed_offsets_agree_with_parse(
    frame: bytes, dst: bytes, src: bytes, ethertype: int
) -> None:
    # The data path reads these offsets directly instead of calling parse.
    assert frame[ethernet.DST] == dst
    assert frame[ethernet.SRC] == src
    assert struct.unpack_from("!H", frame, ethernet.ETHERTYPE)[0] == ethertype


@pytest.mark.parametrize(("frame", "dst", "src", "ethertype"), CAPTURED)
def test_emit_gives_captured_header(frame: bytes, dst: bytes, src: bytes, ethertype: int) -> None:
    assert EthernetHeader(dst, src, ethertype).emit() == frame[:14]
    assert EthernetHeader.parse(frame).emit() == frame[:14]


@pytest.mark.parametrize(("frame", "dst", "src", "ethertype"), CAPTURED)
def test_build_gives_captured_frame(frame: bytes, dst: bytes, src: bytes, ethertype: int) -> None:
    assert ethernet.build(dst, src, ethertype, frame[14:]) == frame
    assert ethernet.build(dst, src, ethertype, memoryview(frame)[14:]) == frame


def test_build_does_not_pad() -> None:
    # The TAP does not need the 60-byte minimum, so none is added.
    assert ethernet.build(BCAST, MAC_A, 0x0806, b"") == BCAST + MAC_A + b"\x08\x06"


@pytest.mark.parametrize("length", range(14))
def test_truncated_frame(length: int) -> None:
    with pytest.raises(IntegrityError) as exc:
        EthernetHeader.parse(ECHO_REQUEST[:length])
    assert exc.value.reason == "eth_truncated"


def test_header_only_frame_parses() -> None:
    assert EthernetHeader.parse(ECHO_REQUEST[:14]) == EthernetHeader(MAC_B, MAC_A, 0x0800)


@given(st.binary(max_size=40))
def test_parse_any_bytes(data: bytes) -> None:
    if len(data) < 14:
        with pytest.raises(IntegrityError):
            EthernetHeader.parse(data)
    else:
        hdr = EthernetHeader.parse(data)
        assert hdr.emit() == data[:14]


@given(st.binary(min_size=6, max_size=6), st.binary(min_size=6, max_size=6), st.integers(0, 0xFFFF))
def test_emit_parse_round_trip(dst: bytes, src: bytes, ethertype: int) -> None:
    hdr = EthernetHeader(dst, src, ethertype)
    assert EthernetHeader.parse(hdr.emit()) == hdr


# --- MAC helpers ------------------------------------------------------------------------

MAC_STRINGS = [
    (MAC_A, "00:00:5e:00:53:01"),
    (BCAST, "ff:ff:ff:ff:ff:ff"),
    (bytes(6), "00:00:00:00:00:00"),
    (bytes.fromhex("0a1b2c3d4e5f"), "0a:1b:2c:3d:4e:5f"),
]


@pytest.mark.parametrize(("mac", "text"), MAC_STRINGS)
def test_mac_to_str(mac: bytes, text: str) -> None:
    assert ethernet.mac_to_str(mac) == text


@pytest.mark.parametrize(("mac", "text"), MAC_STRINGS)
def test_mac_from_str(mac: bytes, text: str) -> None:
    assert ethernet.mac_from_str(text) == mac


@given(st.binary(min_size=6, max_size=6))
def test_mac_str_round_trip(mac: bytes) -> None:
    assert ethernet.mac_from_str(ethernet.mac_to_str(mac)) == mac


@pytest.mark.parametrize(
    "text",
    [
        "",
        "00:00:5e:00:53",  # five groups
        "00:00:5e:00:53:01:02",  # seven groups
        "00:00:5e:00:53:01:",
        "0:0:5e:0:53:1",  # single-digit groups
        "000:00:5e:00:53:01",
        "00-00-5e-00-53-01",  # wrong separator
        "00005e005301",
        "zz:00:5e:00:53:01",  # not hex
        "0x:00:5e:00:53:01",
        "-1:00:5e:00:53:01",
        # Two characters that int(..., 16) happens to accept are not two hex
        # digits either: a sign, surrounding whitespace, non-ASCII digits.
        "+1:00:5e:00:53:01",
        " 1:00:5e:00:53:01",
        "1 :00:5e:00:53:01",
        "\u0661\u0662:00:5e:00:53:01",  # ARABIC-INDIC DIGIT ONE, TWO
    ],
)
def test_mac_from_str_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        ethernet.mac_from_str(text)


@pytest.mark.parametrize(
    ("mac", "expected"),
    [
        (BCAST, True),
        (bytes.fromhex("01005e000001"), True),  # IPv4 multicast 224.0.0.1
        (bytes.fromhex("333300000001"), True),  # IPv6 multicast ff02::1
        (bytes.fromhex("0180c2000000"), True),  # STP
        (MAC_A, False),
        (bytes(6), False),
        (bytes.fromhex("020000000001"), False),  # locally administered unicast
        (bytes.fromhex("fe0000000001"), False),  # only the I/G bit (lsb of octet 0) counts
    ],
)
def test_is_multicast(mac: bytes, expected: bool) -> None:
    assert ethernet.is_multicast(mac) is expected
