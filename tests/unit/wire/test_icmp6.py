"""Tests for vrouter.wire.icmp6: messages, pseudo-header checksum, echo, errors (RFC 4443)."""

from __future__ import annotations

import hashlib
import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.wire import icmp6, ipv6, ndp
from vrouter.wire.checksum import checksum, pseudo_header_sum
from vrouter.wire.errors import IntegrityError, WireError
from vrouter.wire.icmp6 import Icmp6Message

# IPv6 packets captured from Linux 6.18 with tcpdump -w in netns w6a, on a veth pair
# between w6a (va, 00:00:5e:00:53:01, 2001:db8:1::1/64 nodad) and w6b (vb,
# 00:00:5e:00:53:02, 2001:db8:1::2/64 nodad), MTU 1500, `ethtool -K <veth> tx off` on
# both ends; a third netns w6r (forwarding, 2001:db8:2::2 on vr, 00:00:5e:00:53:12)
# on a second veth from w6a (va2, 00:00:5e:00:53:11, 2001:db8:2::1), routing
# 2001:db8:3::/64 back to w6a.  net.ipv6.icmp.ratelimit=0 in w6b and w6r.
# Commands run in w6a:
#   ping -6 -c1 2001:db8:1::2         -> NS, NA, ECHO_REQUEST, ECHO_REPLY
#   python3 -c 'socket ... bind(("2001:db8:1::1", 40000));
#       sendto(b"vrouter wire test\n", ("2001:db8:1::2", 33434))'
#                                     -> UDP_DATAGRAM, PORT_UNREACHABLE
#   python3 -c 'socket ... bind(("2001:db8:1::1", 40001));
#       sendto(bytes(i % 256 for i in range(2000)), ("2001:db8:1::2", 33435))'
#                                     -> two fragments, and PORT_UNREACHABLE_BIG (1280 bytes)
#   ping -6 -s 3000 -c1 2001:db8:1::2 -> a 3008-byte request and reply, fragmented
#   ping -6 -t 1 -c1 2001:db8:3::99   -> ECHO_HL1 (on va2), TIME_EXCEEDED from w6r
#   hand-made frames on va (AF_PACKET): echo requests id 0x7601 behind extension
#   headers; w6b answered with *_REPLY or the Parameter Problems PP_*
#   rdisc6 -1 va (radvd running in w6b) -> RS_RDISC6, then w6b's NS_LL, w6a's NA_LL
#   and the RA; the kernels sent RS_B, NS_NUD and NA_NUD on their own.
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
# The 2000-byte datagram as w6b reassembled it (the kernel quotes it without the
# Fragment header), and its answer, which Linux cut to the 1280-byte minimum MTU.
BIG_UDP = bytes.fromhex(
    "600992ed07d8114020010db800010000000000000000000120010db8000100000000000000000002"
    "9c41829b07d831c2"
) + bytes(i & 0xFF for i in range(2000))
PORT_UNREACHABLE_BIG = (
    bytes.fromhex(
        "600a65ec04d83a4020010db800010000000000000000000220010db8000100000000000000000001"
        "0104145d00000000"
    )
    + BIG_UDP[:1232]
)
PORT_UNREACHABLE_BIG_SHA256 = "a05e6b13ec2f0117eb169e9fd748e29adb7c4f1c51cdc7f2f9a60a006f8a27c2"
# The 3008-byte echo request and reply of `ping -6 -s 3000`, reassembled from the
# captured fragments (ICMPv6 message only): captured header and timestamp, then
# ping's fill pattern (byte i of the data is i & 0xff).
BIG_ECHO_DATA = bytes.fromhex("02b7076b0000000003bb040000000000") + bytes(
    i & 0xFF for i in range(16, 3000)
)
BIG_ECHO_REQUEST_ICMP = bytes.fromhex("8000b38173800001") + BIG_ECHO_DATA
BIG_ECHO_REPLY_ICMP = bytes.fromhex("8100b28173800001") + BIG_ECHO_DATA
ECHO_HL1 = bytes.fromhex(
    "6006bf3300403a0120010db800020000000000000000000120010db8000300000000000000000099"
    "8000667f738c0001"
    "02b7076b0000000074720c0000000000101112131415161718191a1b1c1d1e1f2021222324252627"
    "28292a2b2c2d2e2f3031323334353637"
)
TIME_EXCEEDED = (
    bytes.fromhex(
        "600647dd00703a4020010db800020000000000000000000220010db8000200000000000000000001"
        "030047db00000000"
    )
    + ECHO_HL1
)
DSTOPT_00 = bytes.fromhex(  # Destination Options with unknown option 0x1e (skip)
    "6000000000203c4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a001e0400000000"
    "8000205376010001"
    "76726f75746572206578742074657374"
)
DSTOPT_00_REPLY = bytes.fromhex(
    "600aa89600183a4020010db800010000000000000000000220010db8000100000000000000000001"
    "81001f5376010001"
    "76726f75746572206578742074657374"
)
RH0_SL0 = bytes.fromhex(  # Routing header type 0 with segments left 0
    "6000000000302b4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a0200000000000020010db8000100000000000000000002"
    "8000204d76010007"
    "76726f75746572206578742074657374"
)
RH0_SL0_REPLY = bytes.fromhex(
    "600aa89600183a4020010db800010000000000000000000220010db8000100000000000000000001"
    "81001f4d76010007"
    "76726f75746572206578742074657374"
)
DSTOPT_10 = bytes.fromhex(  # unknown option 0x9e (action 10)
    "6000000000203c4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a009e0400000000"
    "8000205176010003"
    "76726f75746572206578742074657374"
)
HBH_SECOND = bytes.fromhex(  # Destination Options, then Hop-by-Hop
    "6000000000283c4020010db800010000000000000000000120010db8000100000000000000000002"
    "0000010400000000"
    "3a00010400000000"
    "8000204f76010005"
    "76726f75746572206578742074657374"
)
RH0_SL1 = bytes.fromhex(  # Routing header type 0 with segments left 1
    "6000000000302b4020010db800010000000000000000000120010db8000100000000000000000002"
    "3a0200010000000020010db8000100000000000000000002"
    "8000204e76010006"
    "76726f75746572206578742074657374"
)
UNKNOWN_NH = bytes.fromhex(  # Next Header 253
    "600000000018fd4020010db800010000000000000000000120010db8000100000000000000000002"
    "8000204c7601000876726f75746572206578742074657374"
)
PP_OPTION = (
    bytes.fromhex(  # code 2 (unrecognized option), pointer 42
        "600427bc00503a4020010db800010000000000000000000220010db8000100000000000000000001"
        "04022bbf0000002a"
    )
    + DSTOPT_10
)
PP_NEXTHEADER = (
    bytes.fromhex(  # code 1 (unrecognized Next Header), pointer 40
        "6008dea700583a4020010db800010000000000000000000220010db8000100000000000000000001"
        "0401c7ae00000028"
    )
    + HBH_SECOND
)
PP_HEADER = (
    bytes.fromhex(  # code 0 (erroneous header field), pointer 42
        "600f260600603a4020010db800010000000000000000000220010db8000100000000000000000001"
        "0400ace60000002a"
    )
    + RH0_SL1
)
PP_UNKNOWN_NH = (
    bytes.fromhex(  # code 1, pointer 6
        "6008dea700483a4020010db800010000000000000000000220010db8000100000000000000000001"
        "040142f800000006"
    )
    + UNKNOWN_NH
)
NS = bytes.fromhex(
    "6000000000203aff20010db8000100000000000000000001ff0200000000000000000001ff000002"
    "87006d240000000020010db8000100000000000000000002"
    "010100005e005301"
)
NA = bytes.fromhex(
    "6000000000203aff20010db800010000000000000000000220010db8000100000000000000000001"
    "8800db6d6000000020010db8000100000000000000000002"
    "020100005e005302"
)
NS_NUD = bytes.fromhex(
    "6000000000203afffe8000000000000002005efffe00530220010db8000100000000000000000001"
    "8700baa70000000020010db8000100000000000000000001"
    "010100005e005302"
)
NA_NUD = bytes.fromhex(
    "6000000000183aff20010db8000100000000000000000001fe8000000000000002005efffe005302"
    "88002bb34000000020010db8000100000000000000000001"
)
NS_LL = bytes.fromhex(
    "6000000000203afffe8000000000000002005efffe005302ff0200000000000000000001ff005301"
    "8700149500000000fe8000000000000002005efffe005301"
    "010100005e005302"
)
NA_LL = bytes.fromhex(
    "6000000000203afffe8000000000000002005efffe005301fe8000000000000002005efffe005302"
    "8800531960000000fe8000000000000002005efffe005301"
    "020100005e005301"
)
RS_RDISC6 = bytes.fromhex(
    "6003aa5000083afffe8000000000000002005efffe005301ff020000000000000000000000000002"
    "8500cb3500000000"
)
RS_B = bytes.fromhex(
    "6000000000103afffe8000000000000002005efffe005302ff020000000000000000000000000002"
    "8500192900000000"
    "010100005e005302"
)
RA_UCAST = bytes.fromhex(
    "6006b88300583afffe8000000000000002005efffe005302fe8000000000000002005efffe005301"
    "8600d7a54000012c0000000000000000"
    "030440c000015180000038400000000020010db8000100000000000000000000"
    "190300000000006420010db8000100000000000000000053"
    "05010000000005dc"
    "010100005e005302"
)
MLD_REPORT = bytes.fromhex(  # MLDv2 report behind a Hop-by-Hop header (ICMPv6 at 48)
    "6000000000380001fe8000000000000002005efffe005302ff020000000000000000000000000016"
    "3a00050200000100"
    "8f0069e800000002"
    "04000000ff0200000000000000000001ff00530204000000ff0200000000000000000001ff000002"
)

A = bytes.fromhex("20010db8000100000000000000000001")
B = bytes.fromhex("20010db8000100000000000000000002")
A2 = bytes.fromhex("20010db8000200000000000000000001")
R = bytes.fromhex("20010db8000200000000000000000002")
MAC_A = bytes.fromhex("00005e005301")
MAC_B = bytes.fromhex("00005e005302")


def _icmp(packet: bytes) -> tuple[bytes, bytes, bytes]:
    """Return (src, dst, ICMPv6 message) of a captured packet."""
    chain = ipv6.walk(packet, ipv6.check(packet), local=True)
    assert chain.proto == ipv6.NH_ICMPV6
    return packet[ipv6.SRC], packet[ipv6.DST], packet[chain.offset :]


def test_constants() -> None:
    assert icmp6.HEADER_LEN == icmp6.HEADER.size == 8
    assert (icmp6.DEST_UNREACH, icmp6.PACKET_TOO_BIG, icmp6.TIME_EXCEEDED) == (1, 2, 3)
    assert (icmp6.PARAM_PROBLEM, icmp6.ECHO_REQUEST, icmp6.ECHO_REPLY) == (4, 128, 129)
    assert (icmp6.ROUTER_SOLICIT, icmp6.ROUTER_ADVERT) == (133, 134)
    assert (icmp6.NEIGHBOR_SOLICIT, icmp6.NEIGHBOR_ADVERT, icmp6.REDIRECT) == (135, 136, 137)
    assert (icmp6.UNREACH_NOROUTE, icmp6.UNREACH_ADMIN, icmp6.UNREACH_BEYOND_SCOPE) == (0, 1, 2)
    assert (icmp6.UNREACH_ADDR, icmp6.UNREACH_PORT, icmp6.UNREACH_REJECT) == (3, 4, 6)
    assert (icmp6.EXC_HOPLIMIT, icmp6.EXC_REASS) == (0, 1)
    assert (icmp6.PARAM_HEADER, icmp6.PARAM_NEXTHEADER, icmp6.PARAM_OPTION) == (0, 1, 2)
    assert icmp6.MIN_MTU == 1280
    assert icmp6.MAX_QUOTE == 1280 - 40 - 8 == 1232


def test_rebuilt_big_error_is_the_captured_bytes() -> None:
    assert hashlib.sha256(PORT_UNREACHABLE_BIG).hexdigest() == PORT_UNREACHABLE_BIG_SHA256


# --- parse captured messages -----------------------------------------------------------

# (packet, type, code, rest, body length)
CAPTURED = [
    pytest.param(ECHO_REQUEST, 128, 0, 0x722A0001, 56, id="echo-request"),
    pytest.param(ECHO_REPLY, 129, 0, 0x722A0001, 56, id="echo-reply"),
    pytest.param(DSTOPT_00, 128, 0, 0x76010001, 16, id="echo-behind-dstopts"),
    pytest.param(DSTOPT_00_REPLY, 129, 0, 0x76010001, 16, id="echo-reply-2"),
    pytest.param(RH0_SL0, 128, 0, 0x76010007, 16, id="echo-behind-routing"),
    pytest.param(ECHO_HL1, 128, 0, 0x738C0001, 56, id="echo-hop-limit-1"),
    pytest.param(PORT_UNREACHABLE, 1, 4, 0, 66, id="port-unreachable"),
    pytest.param(PORT_UNREACHABLE_BIG, 1, 4, 0, 1232, id="port-unreachable-1280"),
    pytest.param(TIME_EXCEEDED, 3, 0, 0, 104, id="time-exceeded"),
    pytest.param(PP_OPTION, 4, 2, 42, 72, id="parameter-problem-option"),
    pytest.param(PP_NEXTHEADER, 4, 1, 40, 80, id="parameter-problem-next-header"),
    pytest.param(PP_HEADER, 4, 0, 42, 88, id="parameter-problem-header"),
    pytest.param(PP_UNKNOWN_NH, 4, 1, 6, 64, id="parameter-problem-unknown-nh"),
    pytest.param(NS, 135, 0, 0, 24, id="ns"),
    pytest.param(NA, 136, 0, 0x60000000, 24, id="na"),
    pytest.param(NS_NUD, 135, 0, 0, 24, id="ns-unicast"),
    pytest.param(NA_NUD, 136, 0, 0x40000000, 16, id="na-no-option"),
    pytest.param(NS_LL, 135, 0, 0, 24, id="ns-link-local"),
    pytest.param(NA_LL, 136, 0, 0x60000000, 24, id="na-link-local"),
    pytest.param(RS_RDISC6, 133, 0, 0, 0, id="rs-no-option"),
    pytest.param(RS_B, 133, 0, 0, 8, id="rs"),
    pytest.param(RA_UCAST, 134, 0, 0x4000012C, 80, id="ra"),
    pytest.param(MLD_REPORT, 143, 0, 2, 40, id="mldv2-report"),
]


@pytest.mark.parametrize(("packet", "type_", "code", "rest", "body_len"), CAPTURED)
def test_parse_captured(packet: bytes, type_: int, code: int, rest: int, body_len: int) -> None:
    src, dst, data = _icmp(packet)
    msg = Icmp6Message.parse(src, dst, data)
    assert (msg.type, msg.code, msg.rest, len(msg.body)) == (type_, code, rest, body_len)
    assert msg.body == data[8:]
    assert type(msg.body) is bytes
    assert msg.data == data[4:]
    assert Icmp6Message.parse(src, dst, memoryview(data)) == msg
    assert Icmp6Message.parse(src, dst, bytearray(data)) == msg  # type: ignore[arg-type]


@pytest.mark.parametrize(("packet", "type_", "code", "rest", "body_len"), CAPTURED)
def test_emit_gives_captured_bytes(
    packet: bytes, type_: int, code: int, rest: int, body_len: int
) -> None:
    src, dst, data = _icmp(packet)
    msg = Icmp6Message(type_, code, rest, data[8:])
    assert msg.emit(src, dst) == data
    assert Icmp6Message.parse(src, dst, data).emit(src, dst) == data


@pytest.mark.parametrize(("packet", "type_", "code", "rest", "body_len"), CAPTURED)
def test_build_gives_captured_bytes(
    packet: bytes, type_: int, code: int, rest: int, body_len: int
) -> None:
    src, dst, data = _icmp(packet)
    assert icmp6.build(type_, code, data[4:], src, dst) == data


@pytest.mark.parametrize(("packet", "type_", "code", "rest", "body_len"), CAPTURED)
def test_parse_agrees_with_dpkt(
    packet: bytes, type_: int, code: int, rest: int, body_len: int
) -> None:
    src, dst, data = _icmp(packet)
    ref = dpkt.icmp6.ICMP6(data)
    msg = Icmp6Message.parse(src, dst, data)
    assert (msg.type, msg.code) == (ref.type, ref.code)
    assert struct.unpack_from("!H", data, 2)[0] == ref.sum
    if type_ in (128, 129):
        assert (msg.rest >> 16, msg.rest & 0xFFFF) == (ref.data.id, ref.data.seq)
        assert msg.body == ref.data.data
    elif type_ == 4:
        assert msg.rest == ref.data.ptr
        assert msg.body == bytes(ref.data.ip6)
    elif type_ in (1, 3):
        assert msg.rest == ref.data.pad == 0
        quoted = ref.data.ip6
        assert (quoted.src, quoted.dst) == (msg.body[8:24], msg.body[24:40])


@pytest.mark.parametrize(("packet", "type_", "code", "rest", "body_len"), CAPTURED)
def test_is_error_of_captured(
    packet: bytes, type_: int, code: int, rest: int, body_len: int
) -> None:
    assert icmp6.is_error(type_) is (type_ in (1, 2, 3, 4))


@pytest.mark.parametrize(
    ("type_", "error"),
    [(0, True), (1, True), (4, True), (127, True), (128, False), (143, False), (255, False)],
)
def test_is_error(type_: int, error: bool) -> None:
    assert icmp6.is_error(type_) is error


def test_checksum_covers_the_pseudo_header() -> None:
    src, dst, data = _icmp(ECHO_REQUEST)
    assert checksum(data, pseudo_header_sum(src, dst, 58, len(data))) == 0
    ref = dpkt.ip6.IP6(ECHO_REQUEST)
    ref.data.sum = 0
    assert bytes(ref) == ECHO_REQUEST  # dpkt recomputes the same checksum


# --- malformed -------------------------------------------------------------------------


def _flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    raw = bytearray(data)
    raw[offset] ^= mask
    return bytes(raw)


_ES, _ED, _EDATA = _icmp(ECHO_REQUEST)
_US, _UD, _UDATA = _icmp(PORT_UNREACHABLE)

MALFORMED = [
    pytest.param(_ES, _ED, b"", "icmp6_tooshort", id="empty"),
    pytest.param(_ES, _ED, _EDATA[:1], "icmp6_tooshort", id="1-byte"),
    pytest.param(_ES, _ED, _EDATA[:4], "icmp6_tooshort", id="4-bytes"),
    pytest.param(_ES, _ED, _EDATA[:7], "icmp6_tooshort", id="7-bytes"),
    pytest.param(_ES, _ED, _EDATA[:-1], "icmp6_badsum", id="cut-by-1"),
    pytest.param(_ES, _ED, _EDATA[:8], "icmp6_badsum", id="header-only"),
    pytest.param(_ES, _ED, _EDATA + b"\x00\x00", "icmp6_badsum", id="2-bytes-more"),
    pytest.param(_ES, _ED, _flip(_EDATA, 0), "icmp6_badsum", id="type-changed"),
    pytest.param(_ES, _ED, _flip(_EDATA, 2), "icmp6_badsum", id="sum-changed"),
    pytest.param(_ES, _ED, _flip(_EDATA, 7), "icmp6_badsum", id="seq-changed"),
    pytest.param(_ES, _ED, _flip(_EDATA, 63, 0x80), "icmp6_badsum", id="last-byte"),
    pytest.param(_ES, _ED, _EDATA[:2] + b"\x00\x00" + _EDATA[4:], "icmp6_badsum", id="sum-0"),
    # The pseudo-header: the same bytes between other addresses (swapping src and dst
    # would not show: the one's complement sum does not see the order).
    pytest.param(_ES, _ES, _EDATA, "icmp6_badsum", id="dst-is-src"),
    pytest.param(_ES, _flip(_ED, 15), _EDATA, "icmp6_badsum", id="other-dst"),
    pytest.param(_flip(_ES, 0, 0x80), _ED, _EDATA, "icmp6_badsum", id="other-src"),
    pytest.param(_US, _UD, _flip(_UDATA, 60), "icmp6_badsum", id="quote-changed"),
    pytest.param(_US, _UD, _UDATA[:-1], "icmp6_badsum", id="quote-cut"),
]


@pytest.mark.parametrize(("src", "dst", "data", "reason"), MALFORMED)
def test_parse_malformed(src: bytes, dst: bytes, data: bytes, reason: str) -> None:
    with pytest.raises(IntegrityError) as exc:
        Icmp6Message.parse(src, dst, data)
    assert exc.value.reason == reason
    with pytest.raises(IntegrityError):
        Icmp6Message.parse(src, dst, memoryview(data))


def test_checksum_over_udp_protocol_number_is_wrong() -> None:
    # The pseudo-header carries Next Header 58: a UDP-style sum does not verify.
    raw = bytearray(_EDATA)
    struct.pack_into("!H", raw, 2, 0)
    struct.pack_into("!H", raw, 2, checksum(raw, pseudo_header_sum(_ES, _ED, 17, len(raw))))
    with pytest.raises(IntegrityError) as exc:
        Icmp6Message.parse(_ES, _ED, raw)
    assert exc.value.reason == "icmp6_badsum"


def test_checksum_ffff_is_accepted() -> None:
    # A message whose sum field is 0xffff (negative zero) verifies like 0x0000.
    for rest in range(0x10000):
        raw = Icmp6Message(128, 0, rest, b"").emit(A, B)
        if raw[2:4] == b"\x00\x00":
            break
    else:
        pytest.fail("no message with checksum 0")
    alt = raw[:2] + b"\xff\xff" + raw[4:]
    assert Icmp6Message.parse(A, B, alt) == Icmp6Message(128, 0, rest, b"")


# --- echo ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("echo", "reply"),
    [
        pytest.param(ECHO_REQUEST, ECHO_REPLY, id="ping"),
        pytest.param(DSTOPT_00, DSTOPT_00_REPLY, id="behind-dstopts"),
        pytest.param(RH0_SL0, RH0_SL0_REPLY, id="behind-routing"),
    ],
)
def test_echo_reply_gives_kernel_bytes(echo: bytes, reply: bytes) -> None:
    src, dst, data = _icmp(echo)
    msg = Icmp6Message.parse(src, dst, data)
    assert msg.type == icmp6.ECHO_REQUEST
    rsrc, rdst, rdata = _icmp(reply)
    assert (rsrc, rdst) == (dst, src)
    assert icmp6.echo_reply(msg, dst, src) == rdata


def test_echo_reply_to_reassembled_3000_byte_ping() -> None:
    msg = Icmp6Message.parse(A, B, BIG_ECHO_REQUEST_ICMP)
    assert (msg.rest, len(msg.body)) == (0x73800001, 3000)
    assert icmp6.echo_reply(msg, B, A) == BIG_ECHO_REPLY_ICMP
    assert Icmp6Message.parse(B, A, BIG_ECHO_REPLY_ICMP).body == msg.body


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "offending", "type_", "code", "rest"),
    [
        pytest.param(PORT_UNREACHABLE, UDP_DATAGRAM, 1, 4, 0, id="port-unreachable"),
        pytest.param(PORT_UNREACHABLE_BIG, BIG_UDP, 1, 4, 0, id="port-unreachable-1280"),
        pytest.param(TIME_EXCEEDED, ECHO_HL1, 3, 0, 0, id="time-exceeded"),
        pytest.param(PP_OPTION, DSTOPT_10, 4, 2, 42, id="param-problem-option"),
        pytest.param(PP_NEXTHEADER, HBH_SECOND, 4, 1, 40, id="param-problem-next-header"),
        pytest.param(PP_HEADER, RH0_SL1, 4, 0, 42, id="param-problem-header"),
        pytest.param(PP_UNKNOWN_NH, UNKNOWN_NH, 4, 1, 6, id="param-problem-unknown-nh"),
    ],
)
def test_error_gives_kernel_bytes(
    error: bytes, offending: bytes, type_: int, code: int, rest: int
) -> None:
    src, dst, data = _icmp(error)
    assert (src, dst) == (offending[ipv6.DST] if type_ != 3 else R, offending[ipv6.SRC])
    assert icmp6.error(type_, code, offending, src, dst, rest) == data
    assert icmp6.error(type_, code, memoryview(offending), src, dst, rest) == data


def test_error_quote_is_bounded_like_linux() -> None:
    # Linux answered the 2048-byte datagram with exactly 1280 bytes of IPv6.
    assert len(PORT_UNREACHABLE_BIG) == icmp6.MIN_MTU
    msg = icmp6.error(1, 4, BIG_UDP, B, A)
    assert len(msg) == 8 + icmp6.MAX_QUOTE
    assert len(ipv6.build(B, A, 58, msg)) == icmp6.MIN_MTU
    assert msg[8:] == BIG_UDP[: icmp6.MAX_QUOTE]


@pytest.mark.parametrize("size", [0, 1, 40, 1231, 1232, 1233, 1280, 1500, 9000, 65575])
def test_error_quote_sizes(size: int) -> None:
    offending = bytes(i & 0xFF for i in range(size))
    msg = icmp6.error(icmp6.PACKET_TOO_BIG, 0, offending, A, B, rest=1280)
    assert len(msg) == 8 + min(size, icmp6.MAX_QUOTE)
    assert 40 + len(msg) <= icmp6.MIN_MTU
    parsed = Icmp6Message.parse(A, B, msg)
    assert (parsed.type, parsed.code, parsed.rest) == (2, 0, 1280)
    assert parsed.body == offending[: icmp6.MAX_QUOTE]


@given(
    st.sampled_from([1, 2, 3, 4]),
    st.integers(0, 255),
    st.binary(max_size=2000),
    st.integers(0, 0xFFFFFFFF),
)
def test_error_property(type_: int, code: int, offending: bytes, rest: int) -> None:
    msg = icmp6.error(type_, code, offending, B, A, rest)
    assert 40 + len(msg) <= icmp6.MIN_MTU
    parsed = Icmp6Message.parse(B, A, msg)
    assert parsed == Icmp6Message(type_, code, rest, offending[: icmp6.MAX_QUOTE])
    assert icmp6.is_error(parsed.type)


# --- Neighbor Discovery bodies through build -------------------------------------------


@pytest.mark.parametrize(
    ("packet", "body"),
    [
        pytest.param(NS, ndp.NeighborSolicitation(B, MAC_A), id="ns"),
        pytest.param(NA, ndp.NeighborAdvertisement(B, False, True, True, MAC_B), id="na"),
        pytest.param(NS_NUD, ndp.NeighborSolicitation(A, MAC_B), id="ns-unicast"),
        pytest.param(NA_NUD, ndp.NeighborAdvertisement(A, solicited=True), id="na-no-option"),
        pytest.param(
            NS_LL, ndp.NeighborSolicitation(ipv6.link_local_from_mac(MAC_A), MAC_B), id="ns-ll"
        ),
        pytest.param(
            NA_LL,
            ndp.NeighborAdvertisement(
                ipv6.link_local_from_mac(MAC_A), solicited=True, override=True, target_mac=MAC_A
            ),
            id="na-ll",
        ),
        pytest.param(RS_RDISC6, ndp.RouterSolicitation(), id="rs-no-option"),
        pytest.param(RS_B, ndp.RouterSolicitation(MAC_B), id="rs"),
    ],
)
def test_build_nd_gives_captured_bytes(
    packet: bytes,
    body: ndp.NeighborSolicitation | ndp.NeighborAdvertisement | ndp.RouterSolicitation,
) -> None:
    src, dst, data = _icmp(packet)
    assert icmp6.build(data[0], 0, body.emit_body(), src, dst) == data
    assert packet[ipv6.HOP_LIMIT] == 255  # RFC 4861: ND is only valid with hop limit 255


# --- properties ------------------------------------------------------------------------

messages = st.builds(
    Icmp6Message,
    type=st.integers(0, 255),
    code=st.integers(0, 255),
    rest=st.integers(0, 0xFFFFFFFF),
    body=st.binary(max_size=1500),
)
addresses = st.binary(min_size=16, max_size=16)


@given(messages, addresses, addresses)
def test_emit_parse_round_trip(msg: Icmp6Message, src: bytes, dst: bytes) -> None:
    raw = msg.emit(src, dst)
    assert len(raw) == 8 + len(msg.body)
    assert Icmp6Message.parse(src, dst, raw) == msg
    assert icmp6.build(msg.type, msg.code, msg.data, src, dst) == raw


@given(messages, addresses, addresses)
def test_emit_agrees_with_dpkt(msg: Icmp6Message, src: bytes, dst: bytes) -> None:
    # dpkt, given the same fields, computes the same checksum over the pseudo-header.
    ref = dpkt.icmp6.ICMP6(type=msg.type, code=msg.code, sum=0)
    ref.data = msg.data
    ip = dpkt.ip6.IP6(src=src, dst=dst, nxt=58, hlim=64, plen=len(bytes(ref)))
    ip.data = ref
    assert bytes(ip)[40:] == msg.emit(src, dst)


@given(st.binary(max_size=100), addresses, addresses)
def test_random_bytes_parse_or_raise_wire_error(data: bytes, src: bytes, dst: bytes) -> None:
    try:
        msg = Icmp6Message.parse(src, dst, data)
    except WireError as exc:
        assert type(exc) is IntegrityError
        assert exc.reason in ("icmp6_tooshort", "icmp6_badsum")
        return
    assert msg.emit(src, dst) == data
