"""Tests for vrouter.wire.udp: header parse, checksum verify and build (RFC 768)."""

from __future__ import annotations

import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.wire import ipv4, udp
from vrouter.wire.checksum import checksum, pseudo_header_sum
from vrouter.wire.errors import IntegrityError, WireError
from vrouter.wire.udp import UdpHeader

# Captured from Linux 6.18 with tcpdump on a veth pair between two netns,
# wcap-a (192.0.2.1/24) and wcap-b (192.0.2.2/24), by running in wcap-a:
#   python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);
#       s.bind(("192.0.2.1", 40000));
#       s.sendto(b"vrouter wire test\n", ("192.0.2.2", 33434))'
# TX checksum offload was turned off first (`ethtool -K <veth> tx off` on both
# ends) so that the kernel computed the checksum in software; see
# OFFLOADED_DATAGRAM below for what is captured otherwise.
# The whole IPv4 packet; the UDP datagram starts at byte 20.
UDP_IP = bytes.fromhex(
    "4500 002e deaf 4000 4011 d80b c0000201 c0000202"
    "9c40 829a 001a acac 76726f75746572207769726520746573740a"
)
DATAGRAM = UDP_IP[20:]
SRC = bytes.fromhex("c0000201")  # 192.0.2.1
DST = bytes.fromhex("c0000202")  # 192.0.2.2
PAYLOAD = b"vrouter wire test\n"

# The same sendto() captured with veth's TX checksum offload on (the default):
# the kernel leaves CHECKSUM_PARTIAL work for the "hardware", so the checksum
# field holds the folded pseudo-header sum (0x842f), not the checksum.
OFFLOADED_DATAGRAM = bytes.fromhex("9c40829a001a842f76726f75746572207769726520746573740a")

V6_SRC = bytes.fromhex("20010db8000000000000000000000001")  # 2001:db8::1
V6_DST = bytes.fromhex("20010db8000000000000000000000002")  # 2001:db8::2


def test_constants() -> None:
    assert udp.HEADER_LEN == udp.HEADER.size == 8
    assert udp.PROTO == 17


def test_captured_fixture_is_what_the_kernel_sent() -> None:
    # Guard the fixture itself with an independent parser.
    ref = dpkt.ip.IP(UDP_IP)
    assert isinstance(ref.data, dpkt.udp.UDP)
    assert (ref.data.sport, ref.data.dport, ref.data.ulen, ref.data.sum) == (
        40000,
        33434,
        26,
        0xACAC,
    )
    assert ref.data.data == PAYLOAD


def test_parse_captured() -> None:
    hdr = UdpHeader.parse(DATAGRAM)
    assert hdr == UdpHeader(src_port=40000, dst_port=33434, length=26, checksum=0xACAC)
    assert UdpHeader.parse(memoryview(DATAGRAM)) == hdr
    assert UdpHeader.parse(bytearray(DATAGRAM)) == hdr
    assert DATAGRAM[udp.HEADER_LEN : hdr.length] == PAYLOAD


def test_parse_quoted_in_port_unreachable() -> None:
    # The same datagram as quoted back by the kernel's ICMP port unreachable.
    unreachable_icmp = bytes.fromhex(
        "0303812c00000000"
        "4500002edeaf40004011d80bc0000201c0000202"
        "9c40829a001aacac76726f75746572207769726520746573740a"
    )
    assert UdpHeader.parse(memoryview(unreachable_icmp)[28:]) == UdpHeader(40000, 33434, 26, 0xACAC)


def test_parse_accepts_trailing_bytes() -> None:
    # Ethernet padding after the datagram: the length field wins.
    hdr = UdpHeader.parse(DATAGRAM + bytes(10))
    assert hdr.length == 26


# --- verify ---------------------------------------------------------------------------


def test_verify_captured() -> None:
    assert udp.verify(SRC, DST, DATAGRAM) is True
    assert udp.verify(SRC, DST, memoryview(DATAGRAM)) is True
    assert udp.verify(SRC, DST, bytearray(DATAGRAM)) is True


@pytest.mark.parametrize("offset", range(8, len(DATAGRAM)))
def test_verify_fails_after_flipping_a_payload_byte(offset: int) -> None:
    raw = bytearray(DATAGRAM)
    raw[offset] ^= 0x20
    assert udp.verify(SRC, DST, raw) is False


@pytest.mark.parametrize("offset", range(6))
def test_verify_fails_after_flipping_a_header_byte(offset: int) -> None:
    raw = bytearray(DATAGRAM)
    raw[offset] ^= 0x01
    assert udp.verify(SRC, DST, raw) is False


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        pytest.param(SRC, bytes.fromhex("c0000203"), False, id="other-dst"),
        pytest.param(bytes.fromhex("c6336401"), DST, False, id="other-src"),
        pytest.param(SRC, SRC, False, id="dst-equals-src"),
        # Swapping the addresses is invisible to a one's complement sum.
        pytest.param(DST, SRC, True, id="swapped"),
    ],
)
def test_verify_covers_pseudo_header(src: bytes, dst: bytes, expected: bool) -> None:
    assert udp.verify(src, dst, DATAGRAM) is expected


def test_verify_rejects_offload_placeholder() -> None:
    # What a TAP/veth reader sees before the checksum is completed must not verify.
    assert struct.unpack_from("!H", OFFLOADED_DATAGRAM, 6)[0] == pseudo_header_sum(SRC, DST, 17, 26)
    assert udp.verify(SRC, DST, OFFLOADED_DATAGRAM) is False
    assert UdpHeader.parse(OFFLOADED_DATAGRAM).length == 26


def test_verify_zero_checksum_ipv4() -> None:
    # RFC 768: an all-zero checksum means "not computed"; accepted for IPv4.
    raw = bytearray(DATAGRAM)
    raw[6:8] = b"\x00\x00"
    raw[8] ^= 0xFF  # even with a damaged payload nothing can be checked
    assert udp.verify(SRC, DST, raw) is True


def test_verify_zero_checksum_ipv6_rejected() -> None:
    # RFC 8200 section 8.1: a zero UDP checksum over IPv6 must be discarded.
    raw = bytearray(udp.build(V6_SRC, V6_DST, 40000, 33434, PAYLOAD))
    assert udp.verify(V6_SRC, V6_DST, raw) is True
    raw[6:8] = b"\x00\x00"
    assert udp.verify(V6_SRC, V6_DST, raw) is False


def test_verify_accepts_ffff_for_computed_zero() -> None:
    # A datagram whose checksum computes to 0 is sent with 0xffff (RFC 768).
    payload = _payload_with_zero_checksum(SRC, DST)
    raw = udp.build(SRC, DST, 1, 2, payload)
    assert raw[6:8] == b"\xff\xff"
    assert udp.verify(SRC, DST, raw) is True


# --- build ----------------------------------------------------------------------------


def test_build_gives_captured_bytes() -> None:
    assert udp.build(SRC, DST, 40000, 33434, PAYLOAD) == DATAGRAM


def test_build_in_ipv4_gives_captured_packet() -> None:
    datagram = udp.build(SRC, DST, 40000, 33434, PAYLOAD)
    assert ipv4.build(SRC, DST, udp.PROTO, datagram, ident=0xDEAF, df=True) == UDP_IP


def _payload_with_zero_checksum(src: bytes, dst: bytes) -> bytes:
    """Return a 2-byte payload that makes the datagram 1 -> 2 sum to 0xffff."""
    length = 10
    partial = checksum(
        struct.pack("!HHHH", 1, 2, length, 0), pseudo_header_sum(src, dst, 17, length)
    )
    # Adding the word ``partial`` (= ~sum) brings the sum to 0xffff, checksum 0.
    return struct.pack("!H", partial)


@pytest.mark.parametrize(
    ("src", "dst"), [pytest.param(SRC, DST, id="ipv4"), pytest.param(V6_SRC, V6_DST, id="ipv6")]
)
def test_build_never_emits_zero_checksum(src: bytes, dst: bytes) -> None:
    payload = _payload_with_zero_checksum(src, dst)
    raw = udp.build(src, dst, 1, 2, payload)
    assert checksum(raw[:6] + b"\x00\x00" + raw[8:], pseudo_header_sum(src, dst, 17, 10)) == 0
    assert raw[6:8] == b"\xff\xff"


def test_build_empty_payload() -> None:
    raw = udp.build(SRC, DST, 53, 53, b"")
    assert len(raw) == 8
    assert UdpHeader.parse(raw).length == 8
    assert udp.verify(SRC, DST, raw)


def test_build_ipv6_agrees_with_dpkt() -> None:
    raw = udp.build(V6_SRC, V6_DST, 546, 547, b"dhcpv6")
    ip6 = dpkt.ip6.IP6(src=V6_SRC, dst=V6_DST, nxt=17, hlim=64, plen=len(raw))
    ip6.data = dpkt.udp.UDP(sport=546, dport=547, data=b"dhcpv6")
    ip6.data.ulen = 14
    # dpkt fills in the UDP checksum over the IPv6 pseudo-header when packing.
    ref = bytes(dpkt.ip6.IP6(bytes(ip6)).data)
    assert raw == ref


@given(
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=4, max_size=4),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.binary(max_size=600),
)
def test_build_verifies_and_agrees_with_dpkt(
    src: bytes, dst: bytes, sport: int, dport: int, payload: bytes
) -> None:
    raw = udp.build(src, dst, sport, dport, payload)
    assert udp.verify(src, dst, raw)
    assert UdpHeader.parse(raw) == UdpHeader(sport, dport, 8 + len(payload), raw[6] << 8 | raw[7])
    assert raw[8:] == payload
    # dpkt computes the checksum itself when packing an IP packet with sum 0.
    ip = dpkt.ip.IP(
        src=src, dst=dst, p=17, data=dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    )
    ip.data.ulen = len(raw)
    ip.len = 20 + len(raw)
    assert bytes(ip)[20:] == raw


# --- malformed ------------------------------------------------------------------------


@pytest.mark.parametrize("length", range(8))
def test_too_short(length: int) -> None:
    with pytest.raises(IntegrityError) as exc:
        UdpHeader.parse(DATAGRAM[:length])
    assert exc.value.reason == "udp_tooshort"


def _with_length(value: int, data: bytes = DATAGRAM) -> bytes:
    return data[:4] + struct.pack("!H", value) + data[6:]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_with_length(0), id="length-0"),
        pytest.param(_with_length(7), id="length-7"),
        pytest.param(_with_length(27), id="length-27-in-26"),
        pytest.param(_with_length(0xFFFF), id="length-max"),
        pytest.param(DATAGRAM[:25], id="truncated-by-1"),
        pytest.param(DATAGRAM[:8], id="header-only"),
    ],
)
def test_bad_length(data: bytes) -> None:
    with pytest.raises(IntegrityError) as exc:
        UdpHeader.parse(data)
    assert exc.value.reason == "udp_badlen"


@pytest.mark.parametrize("length", [8, 9, 25, 26])
def test_length_within_buffer_accepted(length: int) -> None:
    assert UdpHeader.parse(_with_length(length)).length == length


@given(st.binary(max_size=40))
def test_random_bytes_parse_or_raise_wire_error(data: bytes) -> None:
    try:
        hdr = UdpHeader.parse(data)
    except WireError as exc:
        assert exc.reason in {"udp_tooshort", "udp_badlen"}
        return
    assert 8 <= hdr.length <= len(data)
    assert udp.HEADER.pack(hdr.src_port, hdr.dst_port, hdr.length, hdr.checksum) == data[:8]
