"""Tests for vrouter.wire.icmp4: ICMP messages, echo replies, errors (RFC 792)."""

from __future__ import annotations

import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.wire import icmp4, ipv4
from vrouter.wire.errors import IntegrityError, WireError
from vrouter.wire.icmp4 import IcmpMessage

# Captured from Linux 6.18 with tcpdump on a veth pair between two netns,
# wcap-a (192.0.2.1/24) and wcap-b (192.0.2.2/24). Commands run in wcap-a:
#   ping -c1 192.0.2.2                -> ECHO_REQUEST_IP, ECHO_REPLY_IP
#   python3 -c 'socket ... bind(("192.0.2.1", 40000));
#       sendto(b"vrouter wire test\n", ("192.0.2.2", 33434))'
#                                     -> UDP_DATAGRAM_IP, PORT_UNREACHABLE_IP
#                                        (with `ethtool -K <veth> tx off` on both
#                                        ends, else the UDP checksum is left partial)
#   ping -c1 -R 192.0.2.2             -> RR_REQUEST_ICMP, RR_REPLY_ICMP (ICMP part)
# The *_IP constants are whole IPv4 packets (20-byte header, no options).
ECHO_REQUEST_IP = bytes.fromhex(
    "450000542433400040019272c0000201c0000202"
    "08008c2f0dd10001bbb2076b00000000d50d070000000000101112131415"
    "161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435"
    "3637"
)
ECHO_REPLY_IP = bytes.fromhex(
    "450000543b6400004001bb41c0000202c0000201"
    "0000942f0dd10001bbb2076b00000000d50d070000000000101112131415"
    "161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435"
    "3637"
)
UDP_DATAGRAM_IP = bytes.fromhex(
    "4500 002e deaf 4000 4011 d80b c0000201 c0000202"
    "9c40 829a 001a acac 76726f75746572207769726520746573740a"
)
PORT_UNREACHABLE_IP = bytes.fromhex(
    "45c0004a029a00004001f355c0000202c0000201"
    "0303812c00000000"
    "4500002edeaf40004011d80bc0000201c0000202"
    "9c40829a001aacac76726f75746572207769726520746573740a"
)
RR_REQUEST_ICMP = bytes.fromhex(
    "0800b79e0ef70001e3b2076b000000007c780b000000"
    "0000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d"
    "2e2f3031323334353637"
)
RR_REPLY_ICMP = bytes.fromhex(
    "0000bf9e0ef70001e3b2076b000000007c780b000000"
    "0000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d"
    "2e2f3031323334353637"
)

ECHO_REQUEST = ECHO_REQUEST_IP[20:]
ECHO_REPLY = ECHO_REPLY_IP[20:]
PORT_UNREACHABLE = PORT_UNREACHABLE_IP[20:]
PING_DATA = ECHO_REQUEST[8:]

CAPTURED = [
    pytest.param(ECHO_REQUEST, IcmpMessage(8, 0, 0x0DD1_0001, PING_DATA), id="echo-request"),
    pytest.param(ECHO_REPLY, IcmpMessage(0, 0, 0x0DD1_0001, PING_DATA), id="echo-reply"),
    pytest.param(PORT_UNREACHABLE, IcmpMessage(3, 3, 0, UDP_DATAGRAM_IP), id="port-unreachable"),
    pytest.param(RR_REQUEST_ICMP, IcmpMessage(8, 0, 0x0EF7_0001, RR_REQUEST_ICMP[8:]), id="rr-req"),
    pytest.param(RR_REPLY_ICMP, IcmpMessage(0, 0, 0x0EF7_0001, RR_REQUEST_ICMP[8:]), id="rr-reply"),
]


def test_constants() -> None:
    assert icmp4.HEADER_LEN == icmp4.HEADER.size == 8
    assert (icmp4.ECHO_REPLY, icmp4.DEST_UNREACH, icmp4.ECHO_REQUEST, icmp4.TIME_EXCEEDED) == (
        0,
        3,
        8,
        11,
    )
    assert (icmp4.UNREACH_PORT, icmp4.UNREACH_NEEDFRAG, icmp4.EXC_TTL) == (3, 4, 0)
    # 576 - IPv4 header - ICMP header (RFC 1812 section 4.3.2.3).
    assert icmp4.MAX_ERROR_LEN == 548


@pytest.mark.parametrize(("data", "expected"), CAPTURED)
def test_parse_captured(data: bytes, expected: IcmpMessage) -> None:
    msg = IcmpMessage.parse(data)
    assert msg == expected
    assert type(msg.body) is bytes
    assert IcmpMessage.parse(memoryview(data)) == expected
    assert IcmpMessage.parse(bytearray(data)) == expected


@pytest.mark.parametrize(("data", "expected"), CAPTURED)
def test_parse_agrees_with_dpkt(data: bytes, expected: IcmpMessage) -> None:
    ref = dpkt.icmp.ICMP(data)
    msg = IcmpMessage.parse(data)
    assert (msg.type, msg.code) == (ref.type, ref.code)
    assert struct.pack("!I", msg.rest) + msg.body == data[4:]


@pytest.mark.parametrize(("data", "expected"), CAPTURED)
def test_emit_gives_captured_bytes(data: bytes, expected: IcmpMessage) -> None:
    assert expected.emit() == data
    assert IcmpMessage.parse(data).emit() == data


def test_echo_id_and_seq_in_rest() -> None:
    msg = IcmpMessage.parse(ECHO_REQUEST)
    assert (msg.rest >> 16, msg.rest & 0xFFFF) == (3537, 1)  # tcpdump: id 3537, seq 1


@pytest.mark.parametrize(
    ("echo", "reply"),
    [
        pytest.param(ECHO_REQUEST, ECHO_REPLY, id="ping"),
        pytest.param(RR_REQUEST_ICMP, RR_REPLY_ICMP, id="ping-R"),
    ],
)
def test_echo_reply_matches_kernel(echo: bytes, reply: bytes) -> None:
    assert icmp4.echo_reply(IcmpMessage.parse(echo)) == reply


def test_echo_reply_in_ipv4_matches_kernel() -> None:
    icmp = icmp4.echo_reply(IcmpMessage.parse(ECHO_REQUEST_IP[20:]))
    assert ipv4.build(ECHO_REQUEST_IP[16:20], ECHO_REQUEST_IP[12:16], 1, icmp, ident=0x3B64) == (
        ECHO_REPLY_IP
    )


@given(st.integers(0, 0xFFFF_FFFF), st.binary(max_size=200))
def test_echo_reply_keeps_id_seq_and_data(rest: int, body: bytes) -> None:
    request = IcmpMessage(icmp4.ECHO_REQUEST, 0, rest, body)
    reply = icmp4.echo_reply(IcmpMessage.parse(request.emit()))
    assert IcmpMessage.parse(reply) == IcmpMessage(icmp4.ECHO_REPLY, 0, rest, body)
    assert dpkt.in_cksum(reply) == 0


@pytest.mark.parametrize(
    ("type_", "expected"),
    [
        (0, False),  # echo reply
        (3, True),  # destination unreachable
        (4, True),  # source quench
        (5, True),  # redirect
        (8, False),  # echo request
        (9, False),  # router advertisement
        (10, False),  # router solicitation
        (11, True),  # time exceeded
        (12, True),  # parameter problem
        (13, False),  # timestamp
        (14, False),  # timestamp reply
        (255, False),
    ],
)
def test_is_error(type_: int, expected: bool) -> None:
    assert IcmpMessage(type_, 0, 0, b"").is_error is expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(ECHO_REQUEST, False, id="echo-request"),
        pytest.param(ECHO_REPLY, False, id="echo-reply"),
        pytest.param(PORT_UNREACHABLE, True, id="port-unreachable"),
    ],
)
def test_is_error_captured(data: bytes, expected: bool) -> None:
    assert IcmpMessage.parse(data).is_error is expected


def test_port_unreachable_quotes_the_udp_datagram() -> None:
    msg = IcmpMessage.parse(PORT_UNREACHABLE)
    assert (msg.type, msg.code) == (icmp4.DEST_UNREACH, icmp4.UNREACH_PORT)
    assert msg.body == UDP_DATAGRAM_IP
    quoted = ipv4.Ipv4Header.parse(msg.body)
    assert (quoted.proto, quoted.src, quoted.dst) == (
        17,
        UDP_DATAGRAM_IP[12:16],
        UDP_DATAGRAM_IP[16:20],
    )
    assert struct.unpack_from("!HH", msg.body, 20) == (40000, 33434)


# --- error() ---------------------------------------------------------------------------


def test_error_matches_kernel_port_unreachable() -> None:
    icmp = icmp4.error(icmp4.DEST_UNREACH, icmp4.UNREACH_PORT, UDP_DATAGRAM_IP)
    assert icmp == PORT_UNREACHABLE
    assert icmp4.error(3, 3, memoryview(UDP_DATAGRAM_IP)) == PORT_UNREACHABLE
    # ...and wrapped in IPv4 the way Linux did (tos 0xc0, internetwork control).
    src, dst = UDP_DATAGRAM_IP[16:20], UDP_DATAGRAM_IP[12:16]
    assert ipv4.build(src, dst, 1, icmp, ident=0x029A, tos=0xC0) == PORT_UNREACHABLE_IP


def _offending(length: int) -> bytes:
    """Return a valid IPv4/UDP datagram of exactly ``length`` bytes (>= 28)."""
    payload = bytes(i & 0xFF for i in range(length - 28))
    udp = struct.pack("!HHHH", 40000, 33434, 8 + len(payload), 0) + payload
    return ipv4.build(bytes.fromhex("c0000201"), bytes.fromhex("c0000202"), 17, udp)


@pytest.mark.parametrize("length", [28, 100, 547, 548, 549, 556, 576, 1500, 9000, 65535])
def test_error_quote_fits_in_576(length: int) -> None:
    offending = _offending(length)
    icmp = icmp4.error(icmp4.TIME_EXCEEDED, icmp4.EXC_TTL, offending)
    quoted = min(length, 548)
    assert len(icmp) == 8 + quoted
    packet = ipv4.build(bytes.fromhex("c0000263"), bytes.fromhex("c0000201"), 1, icmp)
    assert len(packet) <= 576
    if length >= 548:
        assert len(packet) == 576  # as much as fits, not less
    msg = IcmpMessage.parse(icmp)
    assert msg.body == offending[:quoted]
    assert (msg.type, msg.code, msg.rest) == (11, 0, 0)


@given(st.binary(max_size=2000))
def test_error_quote_property(offending: bytes) -> None:
    icmp = icmp4.error(icmp4.DEST_UNREACH, icmp4.UNREACH_HOST, offending)
    assert 20 + len(icmp) <= 576
    assert IcmpMessage.parse(icmp).body == offending[:548]


def test_error_needfrag_carries_mtu_in_rest() -> None:
    # RFC 1191: the next-hop MTU goes in the low 16 bits of the rest-of-header.
    icmp = icmp4.error(icmp4.DEST_UNREACH, icmp4.UNREACH_NEEDFRAG, UDP_DATAGRAM_IP, rest=1400)
    assert icmp[4:8] == b"\x00\x00\x05\x78"
    msg = IcmpMessage.parse(icmp)
    assert (msg.type, msg.code, msg.rest, msg.body) == (3, 4, 1400, UDP_DATAGRAM_IP)
    assert msg.is_error


# --- malformed -------------------------------------------------------------------------


@pytest.mark.parametrize("length", range(8))
def test_too_short(length: int) -> None:
    with pytest.raises(IntegrityError) as exc:
        IcmpMessage.parse(ECHO_REQUEST[:length])
    assert exc.value.reason == "icmp_tooshort"


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 7, 8, 40, len(ECHO_REQUEST) - 1])
def test_bad_checksum(offset: int) -> None:
    raw = bytearray(ECHO_REQUEST)
    raw[offset] ^= 0x01
    with pytest.raises(IntegrityError) as exc:
        IcmpMessage.parse(raw)
    assert exc.value.reason == "icmp_badsum"


def test_truncated_message_fails_checksum() -> None:
    # Dropping the tail of the data breaks the checksum (unless the dropped bytes sum to 0).
    with pytest.raises(IntegrityError) as exc:
        IcmpMessage.parse(ECHO_REQUEST[:-1])
    assert exc.value.reason == "icmp_badsum"


def test_minimal_message_parses() -> None:
    raw = IcmpMessage(icmp4.ECHO_REQUEST, 0, 0, b"").emit()
    assert raw == bytes.fromhex("0800f7ff00000000")
    assert IcmpMessage.parse(raw) == IcmpMessage(8, 0, 0, b"")


@pytest.mark.parametrize("body", [b"\x01", b"abc", bytes(range(255))])
def test_odd_length_body_round_trip(body: bytes) -> None:
    raw = IcmpMessage(icmp4.ECHO_REQUEST, 0, 0x1234_5678, body).emit()
    assert dpkt.in_cksum(raw) == 0
    assert IcmpMessage.parse(raw).body == body


@given(
    st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFF_FFFF), st.binary(max_size=300)
)
def test_emit_parse_round_trip(type_: int, code: int, rest: int, body: bytes) -> None:
    msg = IcmpMessage(type_, code, rest, body)
    raw = msg.emit()
    assert len(raw) == 8 + len(body)
    assert dpkt.in_cksum(raw) == 0
    assert IcmpMessage.parse(raw) == msg


@given(st.binary(max_size=100))
def test_random_bytes_parse_or_raise_wire_error(data: bytes) -> None:
    try:
        msg = IcmpMessage.parse(data)
    except WireError as exc:
        assert exc.reason in {"icmp_tooshort", "icmp_badsum"}
        return
    assert msg.body == data[8:]
