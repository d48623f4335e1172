"""Tests for vrouter.wire.ipv6: check, Ipv6Header, build, walk, addresses (RFC 8200, 4291)."""

from __future__ import annotations

import hashlib
import ipaddress
import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.wire import ipv6
from vrouter.wire.errors import IntegrityError, SanityError, WireError
from vrouter.wire.ipv6 import Chain, Ipv6Header, ParameterProblem

# IPv6 packets (Ethernet payloads) captured from Linux 6.18 with tcpdump -w in netns
# w6a, on a veth pair between two netns (documentation addresses, `nodad`, MTU 1500,
# `ethtool -K <veth> tx off` on both ends so UDP checksums are complete):
#   w6a  va  00:00:5e:00:53:01  2001:db8:1::1/64  (kernel link-local fe80::200:5eff:fe00:5301)
#   w6b  vb  00:00:5e:00:53:02  2001:db8:1::2/64  (kernel link-local fe80::200:5eff:fe00:5302)
# and a third netns w6r (net.ipv6.conf.all.forwarding=1) on a second veth pair:
#   w6a  va2 00:00:5e:00:53:11  2001:db8:2::1/64, route 2001:db8:3::/64 via 2001:db8:2::2
#   w6r  vr  00:00:5e:00:53:12  2001:db8:2::2/64, route 2001:db8:3::/64 via 2001:db8:2::1
# Commands run in w6a:
#   ping -6 -c1 2001:db8:1::2          -> NS, NA, ECHO_REQUEST, ECHO_REPLY
#   python3 -c 'socket ... bind(("2001:db8:1::1", 40000));
#       sendto(b"vrouter wire test\n", ("2001:db8:1::2", 33434))'
#                                      -> UDP_DATAGRAM, PORT_UNREACHABLE
#   ping -6 -s 3000 -c1 2001:db8:1::2  -> FRAG_1, FRAG_2, FRAG_3 (Fragment header, id e2cb1658)
#   ping -6 -t 1 -c1 2001:db8:3::99    -> ECHO_HL1 on va2, TIME_EXCEEDED from w6r
#   hand-made frames written to va with an AF_PACKET socket: echo requests (id 0x7601,
#   seq 1..9, data b"vrouter ext test") behind extension headers -> DSTOPT_*, HBH_SECOND,
#   RH0_*, UNKNOWN_NH*; w6b answered seq 1 and 7 with echo replies, dropped seq 2 silently
#   and answered the others with the Parameter Problems in *_PP (net.ipv6.icmp.ratelimit=0).
# The kernel of w6b sent MLD_REPORT on its own (MLDv2, Hop-by-Hop with Router Alert + PadN).
MLD_REPORT = bytes.fromhex(
    "6000000000380001fe8000000000000002005efffe005302ff020000000000000000000000000016"
    "3a00050200000100"  # Hop-by-Hop: next 58, len 0, Router Alert (MLD), PadN(0)
    "8f0069e800000002"
    "04000000ff0200000000000000000001ff00530204000000ff0200000000000000000001ff000002"
)
NS = bytes.fromhex(  # 2001:db8:1::1 -> ff02::1:ff00:2, who has 2001:db8:1::2
    "6000000000203aff20010db8000100000000000000000001ff0200000000000000000001ff000002"
    "87006d240000000020010db8000100000000000000000002"
    "010100005e005301"
)
ECHO_REQUEST = bytes.fromhex(
    "600aba5200403a4020010db800010000000000000000000120010db8000100000000000000000002"
    "80003552722a0001"
    "fdb6076b00000000b59b030000000000101112131415161718191a1b1c1d1e1f2021222324252627"
    "28292a2b2c2d2e2f3031323334353637"
)
ECHO_REPLY = bytes.fromhex(
    "600aa89600403a4020010db800010000000000000000000220010db8000100000000000000000001"
    "81003452722a0001"
    "fdb6076b00000000b59b030000000000101112131415161718191a1b1c1d1e1f2021222324252627"
    "28292a2b2c2d2e2f3031323334353637"
)
UDP_DATAGRAM = bytes.fromhex(
    "60066794001a114020010db800010000000000000000000120010db8000100000000000000000002"
    "9c40829a001ad539"
    "76726f75746572207769726520746573740a"
)
PORT_UNREACHABLE = bytes.fromhex(
    "600a65ec004a3a4020010db800010000000000000000000220010db8000100000000000000000001"
    "0104ca3600000000"
    "60066794001a114020010db800010000000000000000000120010db8000100000000000000000002"
    "9c40829a001ad539"
    "76726f75746572207769726520746573740a"
)
ECHO_HL1 = bytes.fromhex(  # hop limit 1, captured on va2
    "6006bf3300403a0120010db800020000000000000000000120010db8000300000000000000000099"
    "8000667f738c0001"
    "02b7076b0000000074720c0000000000101112131415161718191a1b1c1d1e1f2021222324252627"
    "28292a2b2c2d2e2f3031323334353637"
)
TIME_EXCEEDED = bytes.fromhex(  # from w6r (2001:db8:2::2), hop limit exceeded in transit
    "600647dd00703a4020010db800020000000000000000000220010db8000200000000000000000001"
    "030047db00000000"
    "6006bf3300403a0120010db800020000000000000000000120010db8000300000000000000000099"
    "8000667f738c0001"
    "02b7076b0000000074720c0000000000101112131415161718191a1b1c1d1e1f2021222324252627"
    "28292a2b2c2d2e2f3031323334353637"
)
# The 3008-byte echo request of `ping -6 -s 3000`: its captured ICMPv6 header and
# timestamp, then ping's fill pattern (byte i of the data is i & 0xff).  The kernel
# sent it as three fragments, rebuilt here and pinned by the SHA-256 of the capture.
BIG_ECHO_ICMP = bytes.fromhex("8000b3817380000102b7076b0000000003bb040000000000") + bytes(
    i & 0xFF for i in range(16, 3000)
)
FRAG_1 = (
    bytes.fromhex(
        "600aba5205b02c4020010db800010000000000000000000120010db8000100000000000000000002"
        "3a000001e2cb1658"  # Fragment: next 58, offset 0, M=1, id 0xe2cb1658
    )
    + BIG_ECHO_ICMP[:1448]
)
FRAG_2 = (
    bytes.fromhex(
        "600aba5205b02c4020010db800010000000000000000000120010db8000100000000000000000002"
        "3a0005a9e2cb1658"  # offset 1448, M=1
    )
    + BIG_ECHO_ICMP[1448:2896]
)
FRAG_3 = bytes.fromhex(
    "600aba5200782c4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a000b50e2cb1658"  # offset 2896, M=0
    "48494a4b4c4d4e4f"
    "505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071727374757677"
    "78797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7"
)
FRAG_SHA256 = {
    "FRAG_1": "0df63c27f5b4f424d179fa272c9f18c0331bb786688da178d4f093ea484a1ad7",
    "FRAG_2": "cc435ae1b932e974f470bba78de956969fb8c2a2af6dfc3178b27051a9d7c9e3",
    "FRAG_3": "de2502c958f72e9eebe5bb56341c1c5facda643355a7ae56abd90e2bf8e55bb0",
}

# Hand-made packets and the kernel's verdict on them.
DSTOPT_00 = bytes.fromhex(  # Destination Options, unknown option 0x1e (action 00) -> reply
    "6000000000203c4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a001e0400000000"
    "8000205376010001"
    "76726f75746572206578742074657374"
)
DSTOPT_01 = bytes.fromhex(  # unknown option 0x5e (action 01) -> dropped silently
    "6000000000203c4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a005e0400000000"
    "8000205276010002"
    "76726f75746572206578742074657374"
)
DSTOPT_10 = bytes.fromhex(  # unknown option 0x9e (action 10)
    "6000000000203c4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a009e0400000000"
    "8000205176010003"
    "76726f75746572206578742074657374"
)
DSTOPT_10_PP = (
    bytes.fromhex(  # Parameter Problem code 2, pointer 42
        "600427bc00503a4020010db800010000000000000000000220010db8000100000000000000000001"
        "04022bbf0000002a"
    )
    + DSTOPT_10
)
DSTOPT_11 = bytes.fromhex(  # unknown option 0xde (action 11), unicast destination
    "6000000000203c4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a00de0400000000"
    "8000205076010004"
    "76726f75746572206578742074657374"
)
DSTOPT_11_PP = (
    bytes.fromhex(  # Parameter Problem code 2, pointer 42
        "600427bc00503a4020010db800010000000000000000000220010db8000100000000000000000001"
        "0402ebbe0000002a"
    )
    + DSTOPT_11
)
HBH_SECOND = bytes.fromhex(  # Destination Options (PadN), then Hop-by-Hop (PadN)
    "6000000000283c4020010db800010000000000000000000120010db8000100000000000000000002"
    "0000010400000000"
    "3a00010400000000"
    "8000204f76010005"
    "76726f75746572206578742074657374"
)
HBH_SECOND_PP = (
    bytes.fromhex(  # Parameter Problem code 1, pointer 40
        "6008dea700583a4020010db800010000000000000000000220010db8000100000000000000000001"
        "0401c7ae00000028"
    )
    + HBH_SECOND
)
RH0_SL1 = bytes.fromhex(  # Routing header type 0, segments left 1
    "6000000000302b4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a0200010000000020010db8000100000000000000000002"
    "8000204e76010006"
    "76726f75746572206578742074657374"
)
RH0_SL1_PP = (
    bytes.fromhex(  # Parameter Problem code 0, pointer 42 (the routing type)
        "600f260600603a4020010db800010000000000000000000220010db8000100000000000000000001"
        "0400ace60000002a"
    )
    + RH0_SL1
)
RH0_SL0 = bytes.fromhex(  # Routing header type 0, segments left 0 -> ignored, reply
    "6000000000302b4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a0200000000000020010db8000100000000000000000002"
    "8000204d76010007"
    "76726f75746572206578742074657374"
)
UNKNOWN_NH = bytes.fromhex(  # Next Header 253 (RFC 3692 experiment)
    "600000000018fd4020010db800010000000000000000000120010db8000100000000000000000002"
    "8000204c7601000876726f75746572206578742074657374"
)
UNKNOWN_NH_PP = (
    bytes.fromhex(  # Parameter Problem code 1, pointer 6
        "6008dea700483a4020010db800010000000000000000000220010db8000100000000000000000001"
        "040142f800000006"
    )
    + UNKNOWN_NH
)
UNKNOWN_NH_DST = bytes.fromhex(  # Destination Options (PadN) naming Next Header 253
    "6000000000203c4020010db800010000000000000000000120010db8000100000000000000000002"
    "fd00010400000000"
    "8000204b7601000976726f75746572206578742074657374"
)
UNKNOWN_NH_DST_PP = (
    bytes.fromhex(  # Parameter Problem code 1, pointer 40
        "6008dea700503a4020010db800010000000000000000000220010db8000100000000000000000001"
        "040105c200000028"
    )
    + UNKNOWN_NH_DST
)

A = bytes.fromhex("20010db8000100000000000000000001")
B = bytes.fromhex("20010db8000100000000000000000002")
MAC_A = bytes.fromhex("00005e005301")
MAC_B = bytes.fromhex("00005e005302")
MAC_A2 = bytes.fromhex("00005e005311")
MAC_R = bytes.fromhex("00005e005312")
# `ip -6 addr show` in w6a / w6b after the links came up (addr_gen_mode eui64):
LL_A = ipaddress.IPv6Address("fe80::200:5eff:fe00:5301").packed
LL_B = ipaddress.IPv6Address("fe80::200:5eff:fe00:5302").packed


def _ip(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def _fields(chain: Chain) -> tuple[int, int, int, bool, bool]:
    """The documented results of ``walk`` (new fields may be added to Chain)."""
    return (chain.proto, chain.offset, chain.fragment_offset, chain.hopopts, chain.router_alert)


def _walk(packet: bytes, *, local: bool = True) -> Chain:
    return ipv6.walk(packet, ipv6.check(packet), local=local)


def _pkt(next_header: int, payload: bytes, *, hop_limit: int = 64) -> bytes:
    return ipv6.build(A, B, next_header, payload, hop_limit=hop_limit)


def _ext(next_header: int, options: bytes) -> bytes:
    """Return a Hop-by-Hop/Destination Options header holding ``options`` (padded)."""
    body = bytes([next_header, 0]) + options
    body += bytes([1, (-len(body) % 8) - 2]) if -len(body) % 8 >= 2 else bytes(-len(body) % 8)
    assert len(body) % 8 == 0
    return bytes([next_header, len(body) // 8 - 1]) + body[2:]


ECHO = bytes.fromhex("8000000076010001")  # an ICMPv6 upper layer for synthetic chains


def test_constants() -> None:
    assert ipv6.HEADER_LEN == ipv6.HEADER.size == 40
    assert (ipv6.PAYLOAD_LENGTH, ipv6.NEXT_HEADER, ipv6.HOP_LIMIT) == (4, 6, 7)
    assert (slice(8, 24), slice(24, 40)) == (ipv6.SRC, ipv6.DST)
    assert (ipv6.NH_HOPOPTS, ipv6.NH_TCP, ipv6.NH_UDP, ipv6.NH_ROUTING) == (0, 6, 17, 43)
    assert (ipv6.NH_FRAGMENT, ipv6.NH_ESP, ipv6.NH_AH, ipv6.NH_ICMPV6) == (44, 50, 51, 58)
    assert (ipv6.NH_NONE, ipv6.NH_DSTOPTS) == (59, 60)
    assert _ip("::") == ipv6.UNSPECIFIED
    assert _ip("ff02::1") == ipv6.ALL_NODES
    assert _ip("ff02::2") == ipv6.ALL_ROUTERS
    assert _ip("fe80::")[:8] == ipv6.LINK_LOCAL_PREFIX
    assert ipv6.FRAGMENT.size == 8
    assert (ipv6.FRAG_OFFSET_MASK, ipv6.FRAG_MORE) == (0xFFF8, 0x0001)
    assert ipv6.MAX_EXTENSIONS == 16


@pytest.mark.parametrize("name", sorted(FRAG_SHA256))
def test_rebuilt_fragments_are_the_captured_bytes(name: str) -> None:
    assert hashlib.sha256(globals()[name]).hexdigest() == FRAG_SHA256[name]


# --- check / Ipv6Header on captured packets --------------------------------------------

# (packet, expected header value)
CAPTURED = [
    pytest.param(MLD_REPORT, Ipv6Header(0, 0, 56, 0, 1, LL_B, _ip("ff02::16")), id="mld-report"),
    pytest.param(NS, Ipv6Header(0, 0, 32, 58, 255, A, _ip("ff02::1:ff00:2")), id="ns"),
    pytest.param(ECHO_REQUEST, Ipv6Header(0, 0xABA52, 64, 58, 64, A, B), id="echo-request"),
    pytest.param(ECHO_REPLY, Ipv6Header(0, 0xAA896, 64, 58, 64, B, A), id="echo-reply"),
    pytest.param(UDP_DATAGRAM, Ipv6Header(0, 0x66794, 26, 17, 64, A, B), id="udp"),
    pytest.param(PORT_UNREACHABLE, Ipv6Header(0, 0xA65EC, 74, 58, 64, B, A), id="port-unreachable"),
    pytest.param(
        PORT_UNREACHABLE[48:],
        Ipv6Header(0, 0x66794, 26, 17, 64, A, B),
        id="quoted-in-unreachable",
    ),
    pytest.param(
        ECHO_HL1,
        Ipv6Header(0, 0x6BF33, 64, 58, 1, _ip("2001:db8:2::1"), _ip("2001:db8:3::99")),
        id="echo-hop-limit-1",
    ),
    pytest.param(
        TIME_EXCEEDED,
        Ipv6Header(0, 0x647DD, 112, 58, 64, _ip("2001:db8:2::2"), _ip("2001:db8:2::1")),
        id="time-exceeded",
    ),
    pytest.param(FRAG_1, Ipv6Header(0, 0xABA52, 1456, 44, 64, A, B), id="fragment-1"),
    pytest.param(FRAG_2, Ipv6Header(0, 0xABA52, 1456, 44, 64, A, B), id="fragment-2"),
    pytest.param(FRAG_3, Ipv6Header(0, 0xABA52, 120, 44, 64, A, B), id="fragment-3"),
    pytest.param(DSTOPT_00, Ipv6Header(0, 0, 32, 60, 64, A, B), id="dstopts"),
    pytest.param(HBH_SECOND, Ipv6Header(0, 0, 40, 60, 64, A, B), id="dstopts-hbh"),
    pytest.param(RH0_SL1, Ipv6Header(0, 0, 48, 43, 64, A, B), id="routing-0"),
    pytest.param(UNKNOWN_NH, Ipv6Header(0, 0, 24, 253, 64, A, B), id="next-header-253"),
    pytest.param(RH0_SL1_PP, Ipv6Header(0, 0xF2606, 96, 58, 64, B, A), id="parameter-problem"),
]


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_check_captured(packet: bytes, expected: Ipv6Header) -> None:
    assert ipv6.check(packet) == len(packet) == 40 + expected.payload_length
    assert ipv6.check(memoryview(packet)) == len(packet)
    assert ipv6.check(bytearray(packet)) == len(packet)


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_parse_captured(packet: bytes, expected: Ipv6Header) -> None:
    hdr = Ipv6Header.parse(packet)
    assert hdr == expected
    assert type(hdr.src) is bytes and type(hdr.dst) is bytes
    assert Ipv6Header.parse(memoryview(packet)) == expected
    assert Ipv6Header.parse(bytearray(packet)) == expected


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_parse_agrees_with_dpkt(packet: bytes, expected: Ipv6Header) -> None:
    ref = dpkt.ip6.IP6(packet)
    hdr = Ipv6Header.parse(packet)
    assert ref.v == 6
    assert (hdr.traffic_class, hdr.flow_label, hdr.payload_length) == (ref.fc, ref.flow, ref.plen)
    assert (hdr.next_header, hdr.hop_limit, hdr.src, hdr.dst) == (
        ref.nxt,
        ref.hlim,
        ref.src,
        ref.dst,
    )


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_fixed_offsets_agree_with_parse(packet: bytes, expected: Ipv6Header) -> None:
    # The data path reads these offsets directly.
    assert struct.unpack_from("!H", packet, ipv6.PAYLOAD_LENGTH)[0] == expected.payload_length
    assert packet[ipv6.NEXT_HEADER] == expected.next_header
    assert packet[ipv6.HOP_LIMIT] == expected.hop_limit
    assert packet[ipv6.SRC] == expected.src
    assert packet[ipv6.DST] == expected.dst


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_emit_gives_captured_header(packet: bytes, expected: Ipv6Header) -> None:
    assert expected.emit() == packet[:40]
    assert Ipv6Header.parse(packet).emit() == packet[:40]


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_build_gives_kernel_bytes(packet: bytes, expected: Ipv6Header) -> None:
    # With the same fields, build() produces byte for byte what Linux sent.
    kwargs = {
        "hop_limit": expected.hop_limit,
        "traffic_class": expected.traffic_class,
        "flow_label": expected.flow_label,
    }
    args = (expected.src, expected.dst, expected.next_header)
    assert ipv6.build(*args, packet[40:], **kwargs) == packet
    assert ipv6.build(*args, memoryview(packet)[40:], **kwargs) == packet


def test_check_ignores_trailing_padding() -> None:
    # The payload length says where the packet ends, not the buffer.
    assert ipv6.check(ECHO_REQUEST + bytes(20)) == len(ECHO_REQUEST)
    assert Ipv6Header.parse(ECHO_REQUEST + bytes(20)).payload_length == 64


def test_build_defaults() -> None:
    pkt = ipv6.build(A, B, 59, b"")
    assert pkt == bytes.fromhex("60000000") + bytes.fromhex("00003b40") + A + B
    assert ipv6.check(pkt) == 40
    assert Ipv6Header.parse(pkt) == Ipv6Header(0, 0, 0, 59, 64, A, B)


@pytest.mark.parametrize(
    ("traffic_class", "flow_label", "first_word"),
    [
        (0, 0, "60000000"),
        (0xFF, 0, "6ff00000"),
        (0, 0xFFFFF, "600fffff"),
        (0xB8, 0x12345, "6b812345"),  # EF (DSCP 46), as `ping -Q 0xb8` would set
        (0x01, 0x80000, "60180000"),  # ECN bit next to the flow label's top bit
    ],
)
def test_traffic_class_and_flow_label_layout(
    traffic_class: int, flow_label: int, first_word: str
) -> None:
    hdr = Ipv6Header(traffic_class, flow_label, 0, 59, 64, A, B)
    raw = hdr.emit()
    assert raw[:4] == bytes.fromhex(first_word)
    assert Ipv6Header.parse(raw) == hdr
    pkt = ipv6.build(A, B, 59, b"", traffic_class=traffic_class, flow_label=flow_label)
    assert pkt == raw
    ref = dpkt.ip6.IP6(raw)
    assert (ref.fc, ref.flow) == (traffic_class, flow_label)


# --- malformed fixed headers -----------------------------------------------------------


def _with(packet: bytes, offset: int, fmt: str, value: int) -> bytes:
    raw = bytearray(packet)
    struct.pack_into(fmt, raw, offset, value)
    return bytes(raw)


MALFORMED = [
    # Shorter than the 40-byte fixed header.
    pytest.param(b"", IntegrityError, "ip6_tooshort", id="empty"),
    pytest.param(ECHO_REQUEST[:1], IntegrityError, "ip6_tooshort", id="1-byte"),
    pytest.param(ECHO_REQUEST[:39], IntegrityError, "ip6_tooshort", id="39-bytes"),
    pytest.param(UDP_DATAGRAM[:20], IntegrityError, "ip6_tooshort", id="20-bytes"),
    # Short and the wrong version: length is checked first.
    pytest.param(bytes.fromhex("4500001c") + bytes(24), IntegrityError, "ip6_tooshort", id="v4-28"),
    # Version is not 6.
    pytest.param(_with(ECHO_REQUEST, 0, "!B", 0x40), SanityError, "ip6_badvers", id="version-4"),
    pytest.param(_with(ECHO_REQUEST, 0, "!B", 0x00), SanityError, "ip6_badvers", id="version-0"),
    pytest.param(_with(ECHO_REQUEST, 0, "!B", 0xF0), SanityError, "ip6_badvers", id="version-15"),
    pytest.param(_with(ECHO_REQUEST, 0, "!B", 0x70), SanityError, "ip6_badvers", id="version-7"),
    pytest.param(  # a real IPv4 echo request of 84 bytes
        bytes.fromhex("450000542433400040019272c0000201c0000202") + bytes(64),
        SanityError,
        "ip6_badvers",
        id="ipv4-packet",
    ),
    # Payload length beyond the buffer.
    pytest.param(ECHO_REQUEST[:-1], IntegrityError, "ip6_tooshort", id="truncated-by-1"),
    pytest.param(ECHO_REQUEST[:40], IntegrityError, "ip6_tooshort", id="header-only"),
    pytest.param(FRAG_1[:1400], IntegrityError, "ip6_tooshort", id="fragment-cut"),
    pytest.param(
        _with(ECHO_REQUEST, 4, "!H", 0xFFFF), IntegrityError, "ip6_tooshort", id="plen-max"
    ),
    pytest.param(_with(UDP_DATAGRAM, 4, "!H", 27), IntegrityError, "ip6_tooshort", id="plen+1"),
    # Payload length 0 with a Hop-by-Hop header: the RFC 2675 jumbogram marker.
    pytest.param(_with(MLD_REPORT, 4, "!H", 0), SanityError, "ip6_jumbogram", id="jumbo-mld"),
    pytest.param(
        ipv6.build(A, B, 0, b"")
        + bytes.fromhex("3a00c204000186a0")  # Hop-by-Hop with a Jumbo Payload option
        + bytes(100_000 - 8),
        SanityError,
        "ip6_jumbogram",
        id="jumbo-option",
    ),
]


@pytest.mark.parametrize(("packet", "exc_type", "reason"), MALFORMED)
def test_check_malformed(packet: bytes, exc_type: type[WireError], reason: str) -> None:
    with pytest.raises(WireError) as exc:
        ipv6.check(packet)
    assert type(exc.value) is exc_type
    assert exc.value.reason == reason


@pytest.mark.parametrize(("packet", "exc_type", "reason"), MALFORMED)
def test_parse_malformed(packet: bytes, exc_type: type[WireError], reason: str) -> None:
    with pytest.raises(WireError) as exc:
        Ipv6Header.parse(memoryview(packet))
    assert type(exc.value) is exc_type
    assert exc.value.reason == reason


@pytest.mark.parametrize("next_header", [58, 59, 60, 17])
def test_empty_payload_is_not_a_jumbogram(next_header: int) -> None:
    # Payload length 0 is only the jumbo marker when a Hop-by-Hop header follows.
    assert ipv6.check(ipv6.build(A, B, next_header, b"")) == 40


# --- walk: packets the kernel judged ---------------------------------------------------

# (packet, walk fields with local=True, offset of the Next Header field naming proto)
WALKED = [
    pytest.param(ECHO_REQUEST, (58, 40, -1, False, False), 6, id="echo-request"),
    pytest.param(UDP_DATAGRAM, (17, 40, -1, False, False), 6, id="udp"),
    pytest.param(NS, (58, 40, -1, False, False), 6, id="ns"),
    pytest.param(TIME_EXCEEDED, (58, 40, -1, False, False), 6, id="time-exceeded"),
    pytest.param(MLD_REPORT, (58, 48, -1, True, True), 40, id="hbh-router-alert-padn"),
    pytest.param(DSTOPT_00, (58, 48, -1, False, False), 40, id="dstopt-unknown-00-skipped"),
    pytest.param(RH0_SL0, (58, 64, -1, False, False), 40, id="routing-0-segments-left-0"),
    pytest.param(UNKNOWN_NH, (253, 40, -1, False, False), 6, id="next-header-253"),
    pytest.param(UNKNOWN_NH_DST, (253, 48, -1, False, False), 40, id="dstopts-then-253"),
    pytest.param(FRAG_1, (58, 48, 40, False, False), 40, id="fragment-first"),
    pytest.param(FRAG_2, (58, 48, 40, False, False), 40, id="fragment-middle"),
    pytest.param(FRAG_3, (58, 48, 40, False, False), 40, id="fragment-last"),
]


@pytest.mark.parametrize(("packet", "expected", "proto_field"), WALKED)
def test_walk_captured(
    packet: bytes, expected: tuple[int, int, int, bool, bool], proto_field: int
) -> None:
    chain = _walk(packet)
    assert _fields(chain) == expected
    assert ipv6.walk(memoryview(packet), len(packet), local=True) == chain
    assert ipv6.walk(bytearray(packet), len(packet), local=True) == chain
    assert chain.offset <= len(packet)


@pytest.mark.parametrize(("packet", "expected", "proto_field"), WALKED)
def test_walk_proto_field_names_the_next_header(
    packet: bytes, expected: tuple[int, int, int, bool, bool], proto_field: int
) -> None:
    chain = _walk(packet)
    assert chain.proto_field == proto_field
    assert packet[chain.proto_field] == chain.proto


@pytest.mark.parametrize(
    ("packet", "reply"),
    [
        pytest.param(UNKNOWN_NH, UNKNOWN_NH_PP, id="in-fixed-header"),
        pytest.param(UNKNOWN_NH_DST, UNKNOWN_NH_DST_PP, id="in-destination-options"),
    ],
)
def test_unknown_next_header_pointer_agrees_with_linux(packet: bytes, reply: bytes) -> None:
    # Linux answered an unknown upper layer with Parameter Problem code 1 pointing at
    # the Next Header field that named it; proto_field must give the same pointer.
    assert reply[40:42] == bytes([4, 1])
    assert reply[48:] == packet
    pointer = struct.unpack_from("!I", reply, 44)[0]
    assert _walk(packet).proto_field == pointer


@pytest.mark.parametrize(
    ("packet", "reply"),
    [
        pytest.param(DSTOPT_10, DSTOPT_10_PP, id="dstopt-unknown-10"),
        pytest.param(DSTOPT_11, DSTOPT_11_PP, id="dstopt-unknown-11"),
        pytest.param(HBH_SECOND, HBH_SECOND_PP, id="hop-by-hop-not-first"),
        pytest.param(RH0_SL1, RH0_SL1_PP, id="routing-0-segments-left-1"),
    ],
)
def test_parameter_problem_agrees_with_linux(packet: bytes, reply: bytes) -> None:
    # The kernel's answer: ICMPv6 type 4, its code, the pointer, and the packet quoted.
    assert reply[ipv6.NEXT_HEADER] == ipv6.NH_ICMPV6 and reply[40] == 4
    assert reply[48:] == packet
    code, pointer = reply[41], struct.unpack_from("!I", reply, 44)[0]
    with pytest.raises(ParameterProblem) as exc:
        _walk(packet)
    assert (exc.value.code, exc.value.pointer) == (code, pointer)
    assert isinstance(exc.value, SanityError)


def test_parameter_problem_reasons_of_captured() -> None:
    reasons = {}
    for name, packet in [
        ("dstopt-10", DSTOPT_10),
        ("dstopt-11", DSTOPT_11),
        ("hbh-second", HBH_SECOND),
        ("rh0", RH0_SL1),
    ]:
        with pytest.raises(ParameterProblem) as exc:
            _walk(packet)
        reasons[name] = exc.value.reason
    assert reasons == {
        "dstopt-10": "ip6_unknownopt",
        "dstopt-11": "ip6_unknownopt",
        "hbh-second": "ip6_badhopopts",
        "rh0": "ip6_badrouting",
    }


def test_unknown_option_action_01_is_a_plain_sanity_error() -> None:
    # Linux dropped DSTOPT_01 without a word: not a ParameterProblem.
    with pytest.raises(SanityError) as exc:
        _walk(DSTOPT_01)
    assert type(exc.value) is SanityError
    assert exc.value.reason == "ip6_unknownopt"


def test_fragment_header_fields_of_captured() -> None:
    # walk points at the Fragment header; its fields are read with FRAGMENT.
    seen = []
    for frag in (FRAG_1, FRAG_2, FRAG_3):
        chain = _walk(frag)
        nh, reserved, off_flags, ident = ipv6.FRAGMENT.unpack_from(frag, chain.fragment_offset)
        assert (nh, reserved, ident) == (chain.proto, 0, 0xE2CB1658)
        seen.append((off_flags & ipv6.FRAG_OFFSET_MASK, off_flags & ipv6.FRAG_MORE))
        ref = dpkt.ip6.IP6(frag).extension_hdrs[ipv6.NH_FRAGMENT]
        assert (ref.frag_off * 8, ref.m_flag, ref.id, ref.nxt) == (*seen[-1], ident, nh)
    assert seen == [(0, 1), (1448, 1), (2896, 0)]
    # The fragments' data, in order, is the 3008-byte echo request.
    whole = b"".join(f[_walk(f).offset :] for f in (FRAG_1, FRAG_2, FRAG_3))
    assert whole == BIG_ECHO_ICMP


# --- walk: synthetic chains ------------------------------------------------------------

HBH_RA_PADN = _ext(58, bytes.fromhex("05020000") + bytes.fromhex("0100"))


@pytest.mark.parametrize(
    ("payload", "first", "expected"),
    [
        pytest.param(ECHO, 58, (58, 40, -1, False, False), id="no-extension"),
        pytest.param(b"", 59, (59, 40, -1, False, False), id="no-next-header"),
        pytest.param(HBH_RA_PADN + ECHO, 0, (58, 48, -1, True, True), id="hbh-ra-padn"),
        pytest.param(
            bytes.fromhex("3a00000005020001") + ECHO,  # Pad1, Router Alert (RSVP), Pad1
            0,
            (58, 48, -1, True, True),
            id="hbh-pad1-ra",
        ),
        pytest.param(
            bytes.fromhex("3a00010400000000") + ECHO, 0, (58, 48, -1, True, False), id="hbh-padn"
        ),
        pytest.param(
            bytes.fromhex("3a00000000000000") + ECHO, 0, (58, 48, -1, True, False), id="hbh-pad1x6"
        ),
        pytest.param(
            bytes.fromhex("3a01") + bytes.fromhex("010c") + bytes(12) + ECHO,
            0,
            (58, 56, -1, True, False),
            id="hbh-16-bytes",
        ),
        pytest.param(
            bytes.fromhex("3c00010400000000") + bytes.fromhex("3a00010400000000") + ECHO,
            0,
            (58, 56, -1, True, False),
            id="hbh-then-dstopts",
        ),
        pytest.param(
            bytes.fromhex("2c00050200000100") + bytes.fromhex("3a00000100000001"),
            0,
            (58, 56, 48, True, True),
            id="hbh-then-fragment",
        ),
        pytest.param(
            bytes.fromhex("2c00010400000000") + bytes.fromhex("3a00001900000001"),
            60,
            (58, 56, 48, False, False),
            id="dstopts-then-fragment",
        ),
        pytest.param(
            bytes.fromhex("3c00010400000000") + bytes.fromhex("3a00010400000000") + ECHO,
            60,
            (58, 56, -1, False, False),
            id="two-dstopts",
        ),
        pytest.param(
            bytes.fromhex("3a00050200000100") + ECHO,  # Router Alert in Destination Options
            60,
            (58, 48, -1, False, False),
            id="ra-outside-hbh-is-no-alert",
        ),
        pytest.param(
            bytes.fromhex("3a001e0400000000") + ECHO, 60, (58, 48, -1, False, False), id="00-skip"
        ),
        pytest.param(
            bytes.fromhex("3a003f0400000000") + ECHO, 60, (58, 48, -1, False, False), id="3f-skip"
        ),
        pytest.param(
            bytes.fromhex("3a001e00001e0000") + ECHO,  # two empty unknown 00 options
            60,
            (58, 48, -1, False, False),
            id="00-skip-twice",
        ),
        pytest.param(
            bytes.fromhex("3a00001e03000000") + ECHO, 0, (58, 48, -1, True, False), id="hbh-00"
        ),
        pytest.param(
            bytes.fromhex("3b02040000000000") + bytes(16),
            43,
            (59, 64, -1, False, False),
            id="routing-4-segments-left-0",
        ),
        pytest.param(
            bytes.fromhex("3a02020000000000") + B + ECHO,
            43,
            (58, 64, -1, False, False),
            id="routing-2-segments-left-0",
        ),
        pytest.param(
            bytes.fromhex("3a00000100000001") + ECHO,
            44,
            (58, 48, 40, False, False),
            id="fragment-first",
        ),
        pytest.param(
            bytes.fromhex("1100000000000001") + bytes(8),
            44,
            (17, 48, 40, False, False),
            id="atomic-fragment",
        ),
        pytest.param(
            bytes.fromhex("3c000b5000000001"),  # a later fragment, what follows unknown
            44,
            (60, 48, 40, False, False),
            id="fragment-naming-dstopts",
        ),
        pytest.param(
            bytes.fromhex("3a00000100000001"),  # the fragment holds no data at all
            44,
            (58, 48, 40, False, False),
            id="fragment-without-data",
        ),
    ],
)
def test_walk_synthetic(
    payload: bytes, first: int, expected: tuple[int, int, int, bool, bool]
) -> None:
    assert _fields(_walk(_pkt(first, payload))) == expected


@pytest.mark.parametrize(
    ("payload", "first", "pointer"),
    [
        pytest.param(bytes.fromhex("3a009e0400000000") + ECHO, 60, 42, id="dstopts-10"),
        pytest.param(bytes.fromhex("3a00de0400000000") + ECHO, 60, 42, id="dstopts-11"),
        pytest.param(
            bytes.fromhex("3a0001028000c200") + ECHO,  # PadN (0x80 is data), Jumbo (0xc2)
            60,
            46,
            id="dstopts-jumbo-option",
        ),
        pytest.param(bytes.fromhex("3a00000000008000") + ECHO, 60, 46, id="after-pad1s"),
        pytest.param(bytes.fromhex("3a00800400000000") + ECHO, 0, 42, id="hbh-10"),
        pytest.param(bytes.fromhex("3a00c10400000000") + ECHO, 0, 42, id="hbh-11"),
        pytest.param(
            bytes.fromhex("3c00010400000000") + bytes.fromhex("3a00ff0400000000") + ECHO,
            0,
            50,
            id="second-header",
        ),
    ],
)
def test_walk_unknown_option_parameter_problem(payload: bytes, first: int, pointer: int) -> None:
    # Action 10/11: Parameter Problem code 2 pointing at the option type (RFC 8200 4.2).
    packet = _pkt(first, payload)
    with pytest.raises(ParameterProblem) as exc:
        _walk(packet)
    assert (exc.value.reason, exc.value.code, exc.value.pointer) == ("ip6_unknownopt", 2, pointer)
    assert packet[pointer] >> 6 >= 2


@pytest.mark.parametrize(
    ("payload", "first"),
    [
        pytest.param(bytes.fromhex("3a00400400000000") + ECHO, 60, id="dstopts-40"),
        pytest.param(bytes.fromhex("3a007f0400000000") + ECHO, 60, id="dstopts-7f"),
        pytest.param(bytes.fromhex("3a005e0400000000") + ECHO, 0, id="hbh-5e"),
    ],
)
def test_walk_unknown_option_discard(payload: bytes, first: int) -> None:
    with pytest.raises(SanityError) as exc:
        _walk(_pkt(first, payload))
    assert type(exc.value) is SanityError
    assert exc.value.reason == "ip6_unknownopt"


@pytest.mark.parametrize(
    ("payload", "first", "pointer"),
    [
        pytest.param(
            bytes.fromhex("0000010400000000") + bytes.fromhex("3a00010400000000") + ECHO,
            0,
            40,
            id="hbh-after-hbh",
        ),
        pytest.param(
            bytes.fromhex("0000010400000000") + bytes.fromhex("3a00010400000000") + ECHO,
            60,
            40,
            id="hbh-after-dstopts",
        ),
        pytest.param(
            bytes.fromhex("2b00010400000000")
            + bytes.fromhex("0002000000000000")
            + B
            + bytes.fromhex("3a00010400000000")
            + ECHO,
            60,
            48,
            id="hbh-after-routing",
        ),
    ],
)
def test_walk_hop_by_hop_not_first(payload: bytes, first: int, pointer: int) -> None:
    # Code 1 (unrecognized Next Header), pointing at the Next Header field naming it.
    packet = _pkt(first, payload)
    with pytest.raises(ParameterProblem) as exc:
        _walk(packet)
    assert (exc.value.reason, exc.value.code, exc.value.pointer) == ("ip6_badhopopts", 1, pointer)
    assert packet[pointer] == ipv6.NH_HOPOPTS


@pytest.mark.parametrize(
    ("routing", "pointer"),
    [
        pytest.param(bytes.fromhex("3a02000100000000") + B, 42, id="type-0"),
        pytest.param(bytes.fromhex("3a020003") + bytes(4) + B, 42, id="type-0-left-3"),
        pytest.param(bytes.fromhex("3a020201") + bytes(4) + B, 42, id="type-2"),
        pytest.param(bytes.fromhex("3a020401") + bytes(4) + B, 42, id="type-4-srh"),
        pytest.param(bytes.fromhex("3a0200ff") + bytes(4) + B, 42, id="left-255"),
    ],
)
def test_walk_routing_with_segments_left(routing: bytes, pointer: int) -> None:
    # RFC 5095: type 0 with segments left is answered with code 0 at the routing type;
    # vrouter implements no routing type, so every type with segments left is refused.
    packet = _pkt(43, routing + ECHO)
    with pytest.raises(ParameterProblem) as exc:
        _walk(packet)
    assert (exc.value.reason, exc.value.code, exc.value.pointer) == ("ip6_badrouting", 0, pointer)


def test_walk_routing_after_dstopts_points_at_its_type() -> None:
    packet = _pkt(60, bytes.fromhex("2b00010400000000") + bytes.fromhex("3a02000100000000") + B)
    with pytest.raises(ParameterProblem) as exc:
        _walk(packet)
    assert (exc.value.code, exc.value.pointer) == (0, 50)


@pytest.mark.parametrize(
    ("payload", "first", "reason"),
    [
        # Fewer than 8 bytes left for an extension header.
        pytest.param(bytes(4), 0, "ip6_exttooshort", id="hbh-4-bytes"),
        pytest.param(bytes(4), 60, "ip6_exttooshort", id="dstopts-4-bytes"),
        pytest.param(bytes.fromhex("3a000001000000"), 44, "ip6_exttooshort", id="fragment-7"),
        pytest.param(bytes.fromhex("3a0200"), 43, "ip6_exttooshort", id="routing-3"),
        # The header's length field runs past the packet.
        pytest.param(bytes.fromhex("3a01010400000000"), 0, "ip6_exttooshort", id="hbh-len-1"),
        pytest.param(
            bytes.fromhex("3a02000000000000") + bytes(8), 43, "ip6_exttooshort", id="routing-len-2"
        ),
        pytest.param(
            bytes.fromhex("3aff") + bytes(14), 60, "ip6_exttooshort", id="dstopts-len-255"
        ),
        pytest.param(
            bytes.fromhex("3c00010400000000") + bytes.fromhex("3a01"),
            0,
            "ip6_exttooshort",
            id="second-header-cut",
        ),
        # An option runs past the end of its header.
        pytest.param(bytes.fromhex("3a00010500000000"), 60, "ip6_badopt", id="padn-too-long"),
        pytest.param(bytes.fromhex("3a0001030000001e"), 60, "ip6_badopt", id="type-at-end"),
        pytest.param(bytes.fromhex("3a00050500000000"), 0, "ip6_badopt", id="ra-too-long"),
    ],
)
def test_walk_truncated(payload: bytes, first: int, reason: str) -> None:
    with pytest.raises(IntegrityError) as exc:
        _walk(_pkt(first, payload))
    assert exc.value.reason == reason


def test_walk_uses_total_not_the_buffer() -> None:
    # A header that fits the buffer but not the payload length is truncated.
    packet = _pkt(60, bytes.fromhex("3a01010c00000000"))  # says 16 bytes, has 8
    padded = packet + bytes(8)
    assert ipv6.check(padded) == 48
    with pytest.raises(IntegrityError) as exc:
        ipv6.walk(padded, 48, local=True)
    assert exc.value.reason == "ip6_exttooshort"
    assert _fields(ipv6.walk(padded, 56, local=True)) == (58, 56, -1, False, False)


def _dstopts_chain(n: int) -> bytes:
    """``n`` Destination Options headers (PadN) ending in No Next Header."""
    headers = [bytes([60, 0, 1, 4, 0, 0, 0, 0]) for _ in range(n - 1)]
    headers.append(bytes([59, 0, 1, 4, 0, 0, 0, 0]))
    return _pkt(60, b"".join(headers))


@pytest.mark.parametrize("n", [1, 2, 15, 16])
def test_walk_up_to_sixteen_extension_headers(n: int) -> None:
    assert _fields(_walk(_dstopts_chain(n))) == (59, 40 + 8 * n, -1, False, False)


@pytest.mark.parametrize("n", [17, 18, 100])
def test_walk_too_many_extension_headers(n: int) -> None:
    with pytest.raises(SanityError) as exc:
        _walk(_dstopts_chain(n))
    assert type(exc.value) is SanityError
    assert exc.value.reason == "ip6_toomanyext"


def test_walk_hbh_plus_sixteen_more_is_too_many() -> None:
    packet = _pkt(0, bytes([60, 0, 1, 4, 0, 0, 0, 0]) + _dstopts_chain(16)[40:])
    with pytest.raises(SanityError) as exc:
        _walk(packet)
    assert exc.value.reason == "ip6_toomanyext"


# --- walk: forwarding mode -------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        pytest.param(ECHO_REQUEST, (58, 40, -1, False, False), id="no-extension"),
        pytest.param(MLD_REPORT, (58, 48, -1, True, True), id="hbh-router-alert"),
        # Not examined on the way: these reach the destination unchanged.
        pytest.param(DSTOPT_01, (60, 40, -1, False, False), id="dstopt-01"),
        pytest.param(DSTOPT_10, (60, 40, -1, False, False), id="dstopt-10"),
        pytest.param(DSTOPT_11, (60, 40, -1, False, False), id="dstopt-11"),
        pytest.param(RH0_SL1, (43, 40, -1, False, False), id="routing-0-segments-left"),
        pytest.param(HBH_SECOND, (60, 40, -1, False, False), id="hbh-behind-dstopts"),
        pytest.param(_dstopts_chain(40), (60, 40, -1, False, False), id="40-dstopts"),
        pytest.param(
            _pkt(0, bytes.fromhex("3c00050200000100") + bytes.fromhex("3a00de0400000000") + ECHO),
            (60, 48, -1, True, True),
            id="hbh-then-bad-dstopts",
        ),
        # A Fragment header is not examined either: a router forwards fragments.
        pytest.param(FRAG_1, (44, 40, -1, False, False), id="fragment-first"),
        pytest.param(FRAG_3, (44, 40, -1, False, False), id="fragment-last"),
        pytest.param(
            _pkt(0, bytes.fromhex("2c00050200000100") + bytes.fromhex("3a00000100000001")),
            (44, 48, -1, True, True),
            id="hbh-then-fragment",
        ),
    ],
)
def test_walk_forwarding_stops_after_hop_by_hop(
    packet: bytes, expected: tuple[int, int, int, bool, bool]
) -> None:
    chain = _walk(packet, local=False)
    assert _fields(chain) == expected
    assert packet[chain.proto_field] == chain.proto


def test_walk_forwarding_still_checks_hop_by_hop() -> None:
    # Hop-by-Hop is examined by every node (RFC 8200 4.3).
    packet = _pkt(0, bytes.fromhex("3a00800400000000") + ECHO)
    with pytest.raises(ParameterProblem) as exc:
        _walk(packet, local=False)
    assert (exc.value.code, exc.value.pointer) == (2, 42)
    with pytest.raises(IntegrityError) as exc2:
        _walk(_pkt(0, bytes.fromhex("3a01010400000000")), local=False)
    assert exc2.value.reason == "ip6_exttooshort"


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        # A forwarding node does not examine headers after Hop-by-Hop, so it cannot
        # find them truncated either; the destination decides (RFC 8200 section 4).
        pytest.param(_pkt(60, b""), (60, 40, -1, False, False), id="dstopts-absent"),
        pytest.param(
            _pkt(60, bytes.fromhex("3a01010c00000000")),
            (60, 40, -1, False, False),
            id="dstopts-length-past-end",
        ),
        pytest.param(
            _pkt(0, bytes.fromhex("2b00010400000000") + bytes.fromhex("3a020001")),
            (43, 48, -1, True, False),
            id="hbh-then-routing-cut",
        ),
    ],
)
def test_walk_forwarding_ignores_truncated_later_headers(
    packet: bytes, expected: tuple[int, int, int, bool, bool]
) -> None:
    assert _fields(_walk(packet, local=False)) == expected


# --- addresses -------------------------------------------------------------------------

# Ethernet destinations of the captured frames (the 14-byte headers tcpdump wrote).
FRAME_DESTINATIONS = [
    pytest.param(_ip("ff02::16"), "333300000016", id="mld-routers"),  # MLD_REPORT
    pytest.param(_ip("ff02::1:ff00:2"), "3333ff000002", id="solicited-node-b"),  # NS
    pytest.param(_ip("ff02::1:ff00:5301"), "3333ff005301", id="solicited-node-ll-a"),
    pytest.param(_ip("ff02::1"), "333300000001", id="all-nodes"),  # unsolicited RA
    pytest.param(_ip("ff02::2"), "333300000002", id="all-routers"),  # RS
]


@pytest.mark.parametrize(("group", "mac"), FRAME_DESTINATIONS)
def test_multicast_mac_of_captured_frames(group: bytes, mac: str) -> None:
    assert ipv6.multicast_mac(group) == bytes.fromhex(mac)


def test_multicast_mac_uses_the_low_32_bits() -> None:
    group = _ip("ff05::1:3")
    assert ipv6.multicast_mac(group) == bytes.fromhex("333300010003")
    assert ipv6.multicast_mac(_ip("ff0e:1234:5678::9abc:def0")) == bytes.fromhex("33339abcdef0")


@pytest.mark.parametrize(
    ("address", "group"),
    [
        pytest.param(B, "ff02::1:ff00:2", id="captured-ns-target"),  # NS dst
        pytest.param(LL_A, "ff02::1:ff00:5301", id="captured-ll"),
        pytest.param(_ip("2001:db8::abcd:ef12:3456"), "ff02::1:ff12:3456", id="low-24-bits"),
        pytest.param(_ip("::"), "ff02::1:ff00:0", id="unspecified"),
    ],
)
def test_solicited_node(address: bytes, group: str) -> None:
    assert ipv6.solicited_node(address) == _ip(group)


def test_solicited_node_of_captured_ns() -> None:
    target = NS[48:64]
    assert target == B
    assert ipv6.solicited_node(target) == NS[ipv6.DST]


@pytest.mark.parametrize(
    ("mac", "interface_id", "link_local"),
    [
        # The kernel's own link-local addresses for the captured veth MACs.
        pytest.param(MAC_A, "02005efffe005301", LL_A, id="va"),
        pytest.param(MAC_B, "02005efffe005302", LL_B, id="vb"),
        pytest.param(MAC_A2, "02005efffe005311", _ip("fe80::200:5eff:fe00:5311"), id="va2"),
        pytest.param(MAC_R, "02005efffe005312", _ip("fe80::200:5eff:fe00:5312"), id="vr"),
        # The universal/local bit is inverted, not set (RFC 4291 appendix A).
        pytest.param(
            bytes.fromhex("02005e005301"),
            "00005efffe005301",
            _ip("fe80::5eff:fe00:5301"),
            id="local-bit-set",
        ),
        pytest.param(
            bytes.fromhex("ffffffffffff"),
            "fdfffffffeffffff",
            _ip("fe80::fdff:ffff:feff:ffff"),
            id="all-ones",
        ),
    ],
)
def test_eui64_and_link_local(mac: bytes, interface_id: str, link_local: bytes) -> None:
    assert ipv6.eui64_interface_id(mac) == bytes.fromhex(interface_id)
    assert ipv6.link_local_from_mac(mac) == link_local
    assert len(link_local) == 16


def test_link_local_sources_of_captured_packets() -> None:
    # w6b sent MLD_REPORT from the link-local address the kernel derived from MAC_B.
    assert MLD_REPORT[ipv6.SRC] == ipv6.link_local_from_mac(MAC_B)


@pytest.mark.parametrize(
    ("address", "link_local", "multicast"),
    [
        ("fe80::200:5eff:fe00:5301", True, False),
        ("fe80::", True, False),
        ("febf:ffff::1", True, False),  # the top of fe80::/10
        ("fec0::1", False, False),  # old site-local, outside /10
        ("fe40::1", False, False),
        ("fd00::1", False, False),
        ("2001:db8:1::1", False, False),
        ("::", False, False),
        ("::1", False, False),
        ("ff02::1", False, True),
        ("ff02::1:ff00:2", False, True),
        ("ff05::2", False, True),
        ("ff00::", False, True),
        ("ff02::16", False, True),
    ],
)
def test_is_link_local_and_is_multicast(address: str, link_local: bool, multicast: bool) -> None:
    raw = _ip(address)
    assert ipv6.is_link_local(raw) is link_local
    assert ipv6.is_multicast(raw) is multicast


@given(st.binary(min_size=16, max_size=16))
def test_address_predicates_agree_with_ipaddress(raw: bytes) -> None:
    ref = ipaddress.IPv6Address(raw)
    assert ipv6.is_link_local(raw) is ref.is_link_local
    assert ipv6.is_multicast(raw) is ref.is_multicast
    group = ipaddress.IPv6Address(ipv6.solicited_node(raw))
    assert group in ipaddress.IPv6Network("ff02::1:ff00:0/104")
    assert int(group) & 0xFFFFFF == int(ref) & 0xFFFFFF
    mac = ipv6.multicast_mac(raw)
    assert mac[:2] == b"\x33\x33" and mac[2:] == raw[12:]


@given(st.binary(min_size=6, max_size=6))
def test_link_local_from_any_mac(mac: bytes) -> None:
    ll = ipaddress.IPv6Address(ipv6.link_local_from_mac(mac))
    assert ll.is_link_local
    iid = ipv6.eui64_interface_id(mac)
    assert ll.packed[8:] == iid
    assert iid[3:5] == b"\xff\xfe"
    # Undoing the EUI-64 transform gives the MAC back.
    assert bytes([iid[0] ^ 0x02]) + iid[1:3] + iid[5:] == mac


# --- properties ------------------------------------------------------------------------

headers = st.builds(
    Ipv6Header,
    traffic_class=st.integers(0, 0xFF),
    flow_label=st.integers(0, 0xFFFFF),
    payload_length=st.integers(1, 0xFFFF),
    next_header=st.integers(0, 255),
    hop_limit=st.integers(0, 255),
    src=st.binary(min_size=16, max_size=16),
    dst=st.binary(min_size=16, max_size=16),
)


@given(headers)
def test_emit_parse_round_trip(hdr: Ipv6Header) -> None:
    raw = hdr.emit()
    assert len(raw) == 40 and raw[0] >> 4 == 6
    packet = raw + bytes(hdr.payload_length)
    assert ipv6.check(packet) == 40 + hdr.payload_length
    assert Ipv6Header.parse(packet) == hdr


@given(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 255).filter(lambda nh: nh not in dpkt.ip6.EXT_HDRS),
    st.binary(max_size=1500),
    st.integers(0, 255),
    st.integers(0, 0xFF),
    st.integers(0, 0xFFFFF),
)
def test_build_is_accepted_by_dpkt_and_check(
    src: bytes, dst: bytes, nh: int, payload: bytes, hlim: int, tc: int, flow: int
) -> None:
    pkt = ipv6.build(src, dst, nh, payload, hop_limit=hlim, traffic_class=tc, flow_label=flow)
    assert len(pkt) == 40 + len(payload)
    assert pkt[40:] == payload
    assert ipv6.check(pkt) == len(pkt)
    ref = dpkt.ip6.IP6(pkt)
    assert (ref.v, ref.fc, ref.flow, ref.plen, ref.nxt, ref.hlim) == (
        6,
        tc,
        flow,
        len(payload),
        nh,
        hlim,
    )
    assert (ref.src, ref.dst) == (src, dst)


CHECK_REASONS = {"ip6_tooshort", "ip6_badvers", "ip6_jumbogram"}
WALK_REASONS = {
    "ip6_exttooshort",
    "ip6_badopt",
    "ip6_unknownopt",
    "ip6_badhopopts",
    "ip6_badrouting",
    "ip6_toomanyext",
}


def _check_walk(data: bytes | bytearray) -> None:
    try:
        total = ipv6.check(data)
    except WireError as exc:
        assert type(exc) in (IntegrityError, SanityError)
        assert exc.reason in CHECK_REASONS
        return
    assert 40 <= total <= len(data)
    assert Ipv6Header.parse(data).emit() == bytes(data[:40])
    for local in (True, False):
        try:
            chain = ipv6.walk(data, total, local=local)
        except ParameterProblem as exc:
            assert exc.reason in WALK_REASONS
            assert exc.code in (0, 1, 2)
            assert 0 <= exc.pointer < total
            continue
        except WireError as exc:
            assert type(exc) in (IntegrityError, SanityError)
            assert exc.reason in WALK_REASONS
            continue
        assert 40 <= chain.offset <= total
        assert chain.fragment_offset == -1 or 40 <= chain.fragment_offset < chain.offset
        assert 0 <= chain.proto <= 255


@given(st.binary(max_size=120))
def test_random_bytes_pass_or_raise_wire_error(data: bytes) -> None:
    _check_walk(data)


@given(
    st.sampled_from([0, 43, 44, 60, 58, 59]),
    st.lists(
        st.tuples(
            st.sampled_from([0, 43, 44, 60, 58, 59, 17]),
            st.integers(0, 3),
            st.binary(max_size=40),
        ),
        max_size=20,
    ),
    st.binary(max_size=16),
)
def test_random_extension_chains_pass_or_raise_wire_error(
    first: int, chain: list[tuple[int, int, bytes]], tail: bytes
) -> None:
    # Chains of plausible extension headers with random contents and lengths.
    payload = b"".join(bytes([nh, length]) + body for nh, length, body in chain) + tail
    _check_walk(_pkt(first, payload))
