"""Tests for vrouter.wire.ipv4: check, Ipv4Header parse/emit, build (RFC 791)."""

from __future__ import annotations

import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.wire import ipv4
from vrouter.wire.checksum import checksum, ones_sum
from vrouter.wire.errors import IntegrityError, SanityError, WireError
from vrouter.wire.ipv4 import Ipv4Header

# IPv4 packets (Ethernet payloads) captured from Linux 6.18 with tcpdump on a
# veth pair between two netns, wcap-a (192.0.2.1/24) and wcap-b (192.0.2.2/24).
# Commands run in wcap-a:
#   ping -c1 192.0.2.2               -> ECHO_REQUEST, ECHO_REPLY
#   python3 -c 'socket ... bind(("192.0.2.1", 40000));
#       sendto(b"vrouter wire test\n", ("192.0.2.2", 33434))'
#                                    -> UDP_DATAGRAM, PORT_UNREACHABLE (tos 0xc0)
#                                       (with `ethtool -K <veth> tx off` on both
#                                       ends, else the UDP checksum is left partial)
#   ping -c1 -R 192.0.2.2            -> RR_REQUEST, RR_REPLY (40 bytes of options:
#                                       NOP + Record Route; RR + EOL in the reply)
ECHO_REQUEST = bytes.fromhex(
    "450000542433400040019272c0000201c0000202"
    "08008c2f0dd10001bbb2076b00000000d50d070000000000101112131415"
    "161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435"
    "3637"
)
ECHO_REPLY = bytes.fromhex(
    "450000543b6400004001bb41c0000202c0000201"
    "0000942f0dd10001bbb2076b00000000d50d070000000000101112131415"
    "161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435"
    "3637"
)
UDP_DATAGRAM = bytes.fromhex(
    "4500 002e deaf 4000 4011 d80b c0000201 c0000202"
    "9c40 829a 001a acac 76726f75746572207769726520746573740a"
)
PORT_UNREACHABLE = bytes.fromhex(
    "45c0004a029a00004001f355c0000202c0000201"
    "0303812c00000000"
    "4500002edeaf40004011d80bc0000201c0000202"
    "9c40829a001aacac76726f75746572207769726520746573740a"
)
RR_REQUEST = bytes.fromhex(
    "4f00007c8d0040004001356cc0000201c0000202"
    "01072708c000020100000000000000000000000000000000000000000000"
    "00000000000000000000"
    "0800b79e0ef70001e3b2076b000000007c780b000000"
    "0000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d"
    "2e2f3031323334353637"
)
RR_REPLY = bytes.fromhex(
    "4f00007c66ab000040016765c0000202c0000201"
    "072710c0000201c0000202c0000202000000000000000000000000000000"
    "00000000000000000000"
    "0000bf9e0ef70001e3b2076b000000007c780b000000"
    "0000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d"
    "2e2f3031323334353637"
)

IP_A = bytes.fromhex("c0000201")
IP_B = bytes.fromhex("c0000202")
RR_REQUEST_OPTIONS = bytes.fromhex("01072708c0000201") + bytes(32)
RR_REPLY_OPTIONS = bytes.fromhex("072710c0000201c0000202c0000202") + bytes(25)

# (packet, expected header value)
CAPTURED = [
    pytest.param(
        ECHO_REQUEST, Ipv4Header(0, 84, 0x2433, 0x4000, 64, 1, IP_A, IP_B), id="echo-request"
    ),
    pytest.param(ECHO_REPLY, Ipv4Header(0, 84, 0x3B64, 0, 64, 1, IP_B, IP_A), id="echo-reply"),
    pytest.param(UDP_DATAGRAM, Ipv4Header(0, 46, 0xDEAF, 0x4000, 64, 17, IP_A, IP_B), id="udp"),
    pytest.param(
        PORT_UNREACHABLE, Ipv4Header(0xC0, 74, 0x029A, 0, 64, 1, IP_B, IP_A), id="port-unreachable"
    ),
    pytest.param(
        PORT_UNREACHABLE[28:],
        Ipv4Header(0, 46, 0xDEAF, 0x4000, 64, 17, IP_A, IP_B),
        id="quoted-in-unreachable",
    ),
    pytest.param(
        RR_REQUEST,
        Ipv4Header(0, 124, 0x8D00, 0x4000, 64, 1, IP_A, IP_B, RR_REQUEST_OPTIONS),
        id="rr-request",
    ),
    pytest.param(
        RR_REPLY,
        Ipv4Header(0, 124, 0x66AB, 0, 64, 1, IP_B, IP_A, RR_REPLY_OPTIONS),
        id="rr-reply",
    ),
]


def test_constants() -> None:
    assert ipv4.HEADER_LEN == ipv4.HEADER.size == 20
    assert (ipv4.PROTO_ICMP, ipv4.PROTO_TCP, ipv4.PROTO_UDP) == (1, 6, 17)
    assert (ipv4.FLAG_DF, ipv4.FLAG_MF, ipv4.OFFSET_MASK) == (0x4000, 0x2000, 0x1FFF)


# --- captured packets ----------------------------------------------------------------


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_check_captured(packet: bytes, expected: Ipv4Header) -> None:
    assert ipv4.check(packet) == (expected.header_len, len(packet))
    assert ipv4.check(memoryview(packet)) == (expected.header_len, len(packet))
    assert ipv4.check(bytearray(packet)) == (expected.header_len, len(packet))


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_parse_captured(packet: bytes, expected: Ipv4Header) -> None:
    hdr = Ipv4Header.parse(packet)
    assert hdr == expected
    assert type(hdr.src) is bytes and type(hdr.dst) is bytes and type(hdr.options) is bytes
    assert Ipv4Header.parse(memoryview(packet)) == expected
    assert Ipv4Header.parse(bytearray(packet)) == expected


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_parse_agrees_with_dpkt(packet: bytes, expected: Ipv4Header) -> None:
    ref = dpkt.ip.IP(packet)
    hdr = Ipv4Header.parse(packet)
    assert (hdr.tos, hdr.total_length, hdr.ident, hdr.ttl, hdr.proto) == (
        ref.tos,
        ref.len,
        ref.id,
        ref.ttl,
        ref.p,
    )
    assert (hdr.src, hdr.dst, hdr.options) == (ref.src, ref.dst, ref.opts)
    assert hdr.dont_fragment == bool(ref.df)
    assert hdr.is_fragment == bool(ref.mf or ref.offset)
    assert hdr.header_len == ref.hl * 4


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_fixed_offsets_agree_with_parse(packet: bytes, expected: Ipv4Header) -> None:
    # The data path reads these offsets directly.
    assert struct.unpack_from("!H", packet, ipv4.TOTAL_LENGTH)[0] == expected.total_length
    assert struct.unpack_from("!H", packet, ipv4.IDENT)[0] == expected.ident
    assert struct.unpack_from("!H", packet, ipv4.FLAGS_FRAG)[0] == expected.flags_frag
    assert packet[ipv4.TTL] == expected.ttl
    assert packet[ipv4.PROTO] == expected.proto
    assert packet[ipv4.SRC] == expected.src
    assert packet[ipv4.DST] == expected.dst
    assert struct.unpack_from("!H", packet, ipv4.CHECKSUM)[0] == checksum(
        packet[:10] + b"\x00\x00" + packet[12 : expected.header_len]
    )


@pytest.mark.parametrize(("packet", "expected"), CAPTURED)
def test_emit_gives_captured_header(packet: bytes, expected: Ipv4Header) -> None:
    assert expected.emit() == packet[: expected.header_len]
    assert Ipv4Header.parse(packet).emit() == packet[: expected.header_len]


def test_flags_of_captured() -> None:
    assert Ipv4Header.parse(ECHO_REQUEST).dont_fragment is True  # Linux sets DF (PMTUD)
    assert Ipv4Header.parse(ECHO_REPLY).dont_fragment is False
    assert Ipv4Header.parse(ECHO_REQUEST).is_fragment is False


@pytest.mark.parametrize(
    ("flags_frag", "df", "fragment"),
    [
        (0x0000, False, False),
        (0x4000, True, False),  # DF only
        (0x2000, False, True),  # MF, first fragment
        (0x0001, False, True),  # last fragment, offset 8
        (0x2001, False, True),  # middle fragment
        (0x1FFF, False, True),  # largest offset
        (0x4001, True, True),  # DF with an offset (odd, but a fragment)
        (0x8000, False, False),  # the reserved bit is neither
    ],
)
def test_flag_properties(flags_frag: int, df: bool, fragment: bool) -> None:
    hdr = Ipv4Header(0, 20, 0, flags_frag, 64, 17, IP_A, IP_B)
    assert hdr.dont_fragment is df
    assert hdr.is_fragment is fragment


def test_check_ignores_trailing_padding() -> None:
    # Ethernet pads short frames; the IP total length says where the packet ends.
    assert ipv4.check(UDP_DATAGRAM + bytes(14)) == (20, 46)
    assert Ipv4Header.parse(UDP_DATAGRAM + bytes(14)).total_length == 46


# --- build ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "kwargs"),
    [
        pytest.param(ECHO_REQUEST, {"ident": 0x2433, "df": True}, id="echo-request"),
        pytest.param(ECHO_REPLY, {"ident": 0x3B64}, id="echo-reply"),
        pytest.param(UDP_DATAGRAM, {"ident": 0xDEAF, "df": True}, id="udp"),
        pytest.param(PORT_UNREACHABLE, {"ident": 0x029A, "tos": 0xC0}, id="port-unreachable"),
    ],
)
def test_build_gives_kernel_bytes(packet: bytes, kwargs: dict[str, int]) -> None:
    # With the same fields, build() must produce byte-for-byte what Linux sent.
    src, dst, proto = packet[12:16], packet[16:20], packet[9]
    assert ipv4.build(src, dst, proto, packet[20:], **kwargs) == packet
    assert ipv4.build(src, dst, proto, memoryview(packet)[20:], **kwargs) == packet


def test_build_defaults() -> None:
    pkt = ipv4.build(IP_A, IP_B, 17, b"abc")
    assert pkt[:10] == bytes.fromhex("45000017000000004011")
    assert ipv4.check(pkt) == (20, 23)
    assert pkt[20:] == b"abc"


@given(
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=4, max_size=4),
    st.integers(0, 255),
    st.binary(max_size=1500),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.integers(0, 255),
    st.booleans(),
)
def test_build_is_accepted_by_dpkt_and_check(
    src: bytes, dst: bytes, proto: int, payload: bytes, ttl: int, ident: int, tos: int, df: bool
) -> None:
    pkt = ipv4.build(src, dst, proto, payload, ttl=ttl, ident=ident, tos=tos, df=df)
    assert len(pkt) == 20 + len(payload)
    assert ipv4.check(pkt) == (20, len(pkt))
    assert dpkt.in_cksum(pkt[:20]) == 0
    ref = dpkt.ip.IP(pkt)
    assert (ref.v, ref.hl, ref.len, ref.id, ref.ttl, ref.p, ref.tos) == (
        4,
        5,
        len(pkt),
        ident,
        ttl,
        proto,
        tos,
    )
    assert (ref.src, ref.dst) == (src, dst)
    assert pkt[20:] == payload
    assert bool(ref.df) is df and ref.mf == 0 and ref.offset == 0
    # dpkt, building the same packet from fields, fills in length and checksum
    # itself and must arrive at the same bytes.
    built = dpkt.ip.IP(src=src, dst=dst, p=proto, ttl=ttl, id=ident, tos=tos, df=int(df))
    built.data = payload
    built.len = len(pkt)
    assert bytes(built) == pkt


# --- malformed headers ---------------------------------------------------------------


def _fix_sum(raw: bytearray | bytes, hlen: int = 20) -> bytes:
    raw = bytearray(raw)
    struct.pack_into("!H", raw, 10, 0)
    struct.pack_into("!H", raw, 10, checksum(raw[:hlen]))
    return bytes(raw)


def _with(packet: bytes, offset: int, fmt: str, value: int, *, fix: bool = True) -> bytes:
    """Return ``packet`` with one field overwritten (checksum fixed unless ``fix`` is False)."""
    raw = bytearray(packet)
    struct.pack_into(fmt, raw, offset, value)
    if not fix:
        return bytes(raw)
    hlen = max(20, min((raw[0] & 0x0F) * 4, len(raw)))
    return _fix_sum(raw, hlen)


MALFORMED = [
    # Too short to hold a header at all.
    pytest.param(b"", IntegrityError, "ip_tooshort", id="empty"),
    pytest.param(ECHO_REQUEST[:1], IntegrityError, "ip_tooshort", id="1-byte"),
    pytest.param(ECHO_REQUEST[:19], IntegrityError, "ip_tooshort", id="19-bytes"),
    # Version is not 4: a SanityError, checked before the header length.
    pytest.param(_with(ECHO_REQUEST, 0, "!B", 0x65), SanityError, "ip_badvers", id="version-6"),
    pytest.param(_with(ECHO_REQUEST, 0, "!B", 0x05), SanityError, "ip_badvers", id="version-0"),
    pytest.param(_with(ECHO_REQUEST, 0, "!B", 0xF5), SanityError, "ip_badvers", id="version-15"),
    pytest.param(_with(ECHO_REQUEST, 0, "!B", 0x60), SanityError, "ip_badvers", id="v6-and-ihl-0"),
    # A real IPv6 header (version 6) of 40 bytes.
    pytest.param(
        bytes.fromhex("6000000000083a40") + bytes(32), SanityError, "ip_badvers", id="ipv6"
    ),
    # IHL below 5.
    pytest.param(_with(ECHO_REQUEST, 0, "!B", 0x40), IntegrityError, "ip_badhlen", id="ihl-0"),
    pytest.param(_with(ECHO_REQUEST, 0, "!B", 0x44), IntegrityError, "ip_badhlen", id="ihl-4"),
    # IHL beyond the buffer: 60-byte header in a 46-byte packet, 24 in 20.
    pytest.param(
        _with(UDP_DATAGRAM, 0, "!B", 0x4F), IntegrityError, "ip_badhlen", id="ihl-15-in-46"
    ),
    pytest.param(
        _with(UDP_DATAGRAM[:20], 0, "!B", 0x46), IntegrityError, "ip_badhlen", id="ihl-6-in-20"
    ),
    pytest.param(RR_REQUEST[:59], IntegrityError, "ip_badhlen", id="rr-options-cut"),
    # Total length shorter than the header.
    pytest.param(_with(ECHO_REQUEST, 2, "!H", 0), IntegrityError, "ip_badlen", id="total-0"),
    pytest.param(_with(ECHO_REQUEST, 2, "!H", 19), IntegrityError, "ip_badlen", id="total-19"),
    pytest.param(_with(RR_REQUEST, 2, "!H", 59), IntegrityError, "ip_badlen", id="total-59-ihl-15"),
    # Total length longer than the buffer.
    pytest.param(ECHO_REQUEST[:-1], IntegrityError, "ip_tooshort", id="truncated-by-1"),
    pytest.param(ECHO_REQUEST[:20], IntegrityError, "ip_tooshort", id="header-only"),
    pytest.param(
        _with(ECHO_REQUEST, 2, "!H", 0xFFFF), IntegrityError, "ip_tooshort", id="total-max"
    ),
    # Bad checksum.
    pytest.param(
        _with(ECHO_REQUEST, 10, "!H", 0x9273, fix=False),
        IntegrityError,
        "ip_badsum",
        id="sum-off-by-one",
    ),
    pytest.param(
        _with(ECHO_REQUEST, 10, "!H", 0, fix=False), IntegrityError, "ip_badsum", id="sum-zeroed"
    ),
    pytest.param(
        _with(ECHO_REQUEST, 8, "!B", 63, fix=False), IntegrityError, "ip_badsum", id="ttl-changed"
    ),
    pytest.param(
        _with(ECHO_REQUEST, 19, "!B", 3, fix=False), IntegrityError, "ip_badsum", id="dst-changed"
    ),
    pytest.param(
        _with(RR_REQUEST, 40, "!B", 1, fix=False),
        IntegrityError,
        "ip_badsum",
        id="option-byte-changed",
    ),
]


@pytest.mark.parametrize(("packet", "exc_type", "reason"), MALFORMED)
def test_check_malformed(packet: bytes, exc_type: type[WireError], reason: str) -> None:
    with pytest.raises(WireError) as exc:
        ipv4.check(packet)
    assert type(exc.value) is exc_type
    assert exc.value.reason == reason


@pytest.mark.parametrize(("packet", "exc_type", "reason"), MALFORMED)
def test_parse_malformed(packet: bytes, exc_type: type[WireError], reason: str) -> None:
    with pytest.raises(WireError) as exc:
        Ipv4Header.parse(memoryview(packet))
    assert type(exc.value) is exc_type
    assert exc.value.reason == reason


def test_malformed_cases_differ_from_a_good_packet_only_where_intended() -> None:
    # Guard the table: with the checksum fixed again, a "bad sum" packet is valid.
    for param in MALFORMED:
        packet, _, reason = param.values
        if reason == "ip_badsum":
            assert isinstance(packet, bytes)
            hlen = (packet[0] & 0x0F) * 4
            assert ipv4.check(_fix_sum(packet, hlen)) == (hlen, len(packet))


def test_check_accepts_either_zero_checksum_representation() -> None:
    # A header whose sum (without the checksum) is 0xffff has checksum 0x0000;
    # a sender may also write 0xffff (-0) there; both verify in one's complement.
    raw = bytearray(ipv4.build(IP_A, IP_B, 17, b"", ident=0))
    struct.pack_into("!H", raw, 10, 0)
    struct.pack_into("!H", raw, 4, ~ones_sum(raw) & 0xFFFF)  # make the sum 0xffff
    assert checksum(raw) == 0
    assert ipv4.check(raw) == (20, 20)
    struct.pack_into("!H", raw, 10, 0xFFFF)
    assert ipv4.check(raw) == (20, 20)


# --- options -------------------------------------------------------------------------

OPTIONS = [
    pytest.param(bytes.fromhex("94040000"), id="router-alert"),
    pytest.param(bytes.fromhex("01010100"), id="nops-eol"),
    pytest.param(RR_REQUEST_OPTIONS, id="record-route-40"),
    pytest.param(bytes.fromhex("44 0c 05 00") + bytes(8), id="timestamp"),
    pytest.param(bytes(range(1, 41)), id="opaque-40"),
]


@pytest.mark.parametrize("options", OPTIONS)
def test_options_round_trip(options: bytes) -> None:
    payload = b"\x08\x00\xf7\xff\x00\x00\x00\x00"
    hlen = 20 + len(options)
    hdr = Ipv4Header(0, hlen + len(payload), 7, 0x4000, 1, 1, IP_A, IP_B, options)
    assert hdr.header_len == hlen
    raw = hdr.emit()
    assert len(raw) == hlen
    assert raw[0] == 0x40 | (hlen // 4)
    assert raw[20:] == options
    packet = raw + payload
    assert ipv4.check(packet) == (hlen, len(packet))
    assert Ipv4Header.parse(packet) == hdr
    assert dpkt.ip.IP(packet).opts == options


@pytest.mark.parametrize("length", [1, 2, 3, 5, 39, 41, 44, 60])
def test_emit_rejects_bad_option_length(length: int) -> None:
    hdr = Ipv4Header(0, 20 + length, 0, 0, 64, 1, IP_A, IP_B, bytes(length))
    with pytest.raises(ValueError, match="options"):
        hdr.emit()


# --- properties ----------------------------------------------------------------------

headers = st.builds(
    Ipv4Header,
    tos=st.integers(0, 255),
    total_length=st.integers(60, 0xFFFF),
    ident=st.integers(0, 0xFFFF),
    flags_frag=st.integers(0, 0xFFFF),
    ttl=st.integers(0, 255),
    proto=st.integers(0, 255),
    src=st.binary(min_size=4, max_size=4),
    dst=st.binary(min_size=4, max_size=4),
    options=st.integers(0, 10).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
)


@given(headers)
def test_emit_parse_round_trip(hdr: Ipv4Header) -> None:
    raw = hdr.emit()
    packet = raw + bytes(hdr.total_length - len(raw))
    assert ipv4.check(packet) == (hdr.header_len, hdr.total_length)
    assert Ipv4Header.parse(packet) == hdr


@given(st.binary(max_size=80))
def test_random_bytes_parse_or_raise_wire_error(data: bytes) -> None:
    try:
        hdr = Ipv4Header.parse(data)
    except WireError as exc:
        assert type(exc) in (IntegrityError, SanityError)
        assert exc.reason in {"ip_tooshort", "ip_badvers", "ip_badhlen", "ip_badlen", "ip_badsum"}
        return
    assert hdr.emit() == data[: hdr.header_len]


@given(st.binary(min_size=20, max_size=80))
def test_random_v4_headers_parse_or_raise_wire_error(data: bytes) -> None:
    # Same, but with version 4 and a valid checksum so the later checks run.
    raw = bytearray(data)
    raw[0] = 0x40 | (raw[0] & 0x0F)
    hlen = (raw[0] & 0x0F) * 4
    if 20 <= hlen <= len(raw):
        raw = bytearray(_fix_sum(raw, hlen))
    try:
        hlen_, total = ipv4.check(raw)
    except WireError as exc:
        assert exc.reason in {"ip_badhlen", "ip_badlen", "ip_tooshort"}
        return
    assert 20 <= hlen_ <= total <= len(raw)
    assert Ipv4Header.parse(raw).total_length == total
