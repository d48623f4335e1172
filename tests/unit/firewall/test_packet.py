"""vrouter.firewall.packet: PacketInfo from IPv4/IPv6 bytes and from ICMP-quoted packets.

Packets are built with dpkt (an independent implementation) or the
``vrouter.wire`` builders; addresses are documentation ones.
"""

from __future__ import annotations

import struct

import dpkt
import pytest

from vrouter.firewall import packet
from vrouter.firewall.packet import PacketInfo, parse, quoted
from vrouter.wire import icmp4, icmp6, ipv4, ipv6, tcp, udp
from vrouter.wire.errors import IntegrityError, SanityError

A4 = bytes([192, 0, 2, 10])
B4 = bytes([198, 51, 100, 20])
R4 = bytes([203, 0, 113, 1])
A6 = bytes.fromhex("20010db8000100000000000000000010")
B6 = bytes.fromhex("20010db8000200000000000000000020")
R6 = bytes.fromhex("20010db8000300000000000000000001")
LL6 = bytes.fromhex("fe800000000000000000000000000001")


def tcp_segment(
    flags: int,
    seq: int = 1000,
    ack: int = 0,
    win: int = 64240,
    data: bytes = b"",
    opts: bytes = b"",
    sport: int = 40000,
    dport: int = 8080,
) -> bytes:
    seg = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=win)
    seg.opts = opts
    seg.off = 5 + len(opts) // 4
    seg.data = data
    return bytes(seg)


def ip4(proto: int, payload: bytes, src: bytes = A4, dst: bytes = B4, frag: int = 0) -> bytes:
    """An IPv4 packet; ``frag`` is the flags/fragment-offset field (MF | offset / 8)."""
    header = ipv4.Ipv4Header(0, 20 + len(payload), 1, frag, 64, proto, src, dst)
    return header.emit() + payload


def ip6(nh: int, payload: bytes, src: bytes = A6, dst: bytes = B6) -> bytes:
    return ipv6.build(src, dst, nh, payload)


WSCALE7 = b"\x01\x03\x03\x07"  # NOP, window scale 7


# -- IPv4 ------------------------------------------------------------------------


def test_ipv4_tcp_syn_fields_and_window_scale() -> None:
    raw = ip4(6, tcp_segment(tcp.SYN, seq=0xFFFFFFF0, opts=b"\x02\x04\x05\xb4" + WSCALE7))
    info = parse(raw)
    assert info == PacketInfo(
        family=4,
        proto=6,
        src=A4,
        dst=B4,
        length=len(raw),
        sport=40000,
        dport=8080,
        tcp_flags=tcp.SYN,
        seq=0xFFFFFFF0,
        ack=0,
        window=64240,
        wscale=7,
        payload_len=0,
    )


def test_ipv4_tcp_data_length_and_no_wscale_outside_syn() -> None:
    raw = ip4(6, tcp_segment(tcp.ACK | tcp.PSH, ack=77, data=b"hello", opts=WSCALE7))
    info = parse(raw)
    assert (info.tcp_flags, info.ack, info.payload_len, info.wscale) == (0x18, 77, 5, -1)


@pytest.mark.parametrize(("shift", "expected"), [(0, 0), (14, 14), (15, 14), (200, 14)])
def test_wscale_is_clamped_to_14(shift: int, expected: int) -> None:
    raw = ip4(6, tcp_segment(tcp.SYN, opts=bytes([1, 3, 3, shift])))
    assert parse(raw).wscale == expected


def test_syn_without_wscale_and_with_broken_options() -> None:
    assert parse(ip4(6, tcp_segment(tcp.SYN))).wscale == -1
    # An option length running past the header ends the walk quietly.
    assert parse(ip4(6, tcp_segment(tcp.SYN, opts=b"\x02\x09\x05\xb4"))).wscale == -1
    # End-of-options before the window scale.
    assert parse(ip4(6, tcp_segment(tcp.SYN, opts=b"\x00\x03\x03\x07"))).wscale == -1


def test_ipv4_udp_built_by_vrouter_wire() -> None:
    raw = ipv4.build(A4, B4, udp.PROTO, udp.build(A4, B4, 5353, 53, b"query"))
    info = parse(raw)
    assert (info.proto, info.sport, info.dport, info.length) == (17, 5353, 53, 33)
    assert not info.malformed and not info.fragment


@pytest.mark.parametrize(
    ("icmp_type", "echo"), [(icmp4.ECHO_REQUEST, True), (icmp4.ECHO_REPLY, True), (13, False)]
)
def test_ipv4_icmp_echo_id_in_both_ports(icmp_type: int, echo: bool) -> None:
    msg = icmp4.IcmpMessage(icmp_type, 0, (0x1234 << 16) | 7, b"ping").emit()
    info = parse(ipv4.build(A4, B4, ipv4.PROTO_ICMP, msg))
    assert (info.icmp_type, info.icmp_code) == (icmp_type, 0)
    assert (info.sport, info.dport) == ((0x1234, 0x1234) if echo else (0, 0))


def test_ipv4_other_protocol_has_no_transport_fields() -> None:
    info = parse(ipv4.build(A4, B4, 47, b"\x00" * 4))  # GRE
    assert (info.proto, info.sport, info.icmp_type, info.malformed) == (47, 0, -1, False)


def test_ipv4_options_are_skipped() -> None:
    payload = udp.build(A4, B4, 1, 2, b"")
    header = ipv4.Ipv4Header(0, 24 + len(payload), 0, 0, 64, 17, A4, B4, b"\x01\x01\x01\x00")
    info = parse(header.emit() + payload)
    assert (info.sport, info.dport, info.length) == (1, 2, 32)


def test_ipv4_fragments() -> None:
    seg = tcp_segment(tcp.SYN)
    first = parse(ip4(6, seg, frag=ipv4.FLAG_MF))
    assert not first.fragment and first.sport == 40000
    later = parse(ip4(6, seg[:8], frag=ipv4.FLAG_MF | 3))
    assert later.fragment and later.proto == 6
    assert (later.sport, later.dport, later.tcp_flags, later.malformed) == (0, 0, 0, False)
    udp_first = parse(ip4(17, udp.build(A4, B4, 4000, 53, b"x" * 64)[:24], frag=ipv4.FLAG_MF))
    assert (udp_first.first_fragment, udp_first.malformed) == (True, False)
    assert (udp_first.sport, udp_first.dport) == (4000, 53)


@pytest.mark.parametrize(
    "raw",
    [
        ip4(6, tcp_segment(tcp.SYN)[:12]),  # shorter than 20 bytes
        ip4(6, b"\x9c\x40\x1f\x90" + b"\x00" * 8 + b"\xf0" + b"\x00" * 7),  # data offset 60
        ip4(6, tcp_segment(tcp.SYN)[:8], frag=ipv4.FLAG_MF),  # tiny first fragment
        ip4(17, b"\x00\x35\x00\x35"),  # 4 bytes of UDP
        ip4(17, b"\x00\x35\x00\x35\x00\x20\x00\x00"),  # UDP length past the packet
        ip4(17, b"\x00\x35\x00\x35", frag=ipv4.FLAG_MF),  # tiny UDP first fragment
        ip4(1, b"\x08\x00\x00\x00"),  # 4 bytes of ICMP
    ],
)
def test_truncated_transport_is_malformed(raw: bytes) -> None:
    assert parse(raw).malformed


@pytest.mark.parametrize(
    ("raw", "error", "reason"),
    [
        (b"", IntegrityError, "ip_tooshort"),
        (b"\x45" + b"\x00" * 10, IntegrityError, "ip_tooshort"),
        (b"\x46" + b"\x00" * 19, IntegrityError, "ip_badhlen"),
        (b"\x45\x00\x00\x40" + b"\x00" * 16, IntegrityError, "ip_tooshort"),
        (b"\x60" + b"\x00" * 20, IntegrityError, "ip6_tooshort"),
        (b"\x50" + b"\x00" * 39, SanityError, "ip_badvers"),
    ],
)
def test_unreadable_ip_header_raises(raw: bytes, error: type[Exception], reason: str) -> None:
    with pytest.raises(error) as info:
        parse(raw)
    assert getattr(info.value, "reason", None) == reason


def test_memoryview_input() -> None:
    raw = ip4(6, tcp_segment(tcp.SYN))
    assert parse(memoryview(raw)) == parse(raw)


# -- IPv6 ------------------------------------------------------------------------


def _ext(nh: int, body_len_8: int = 0, routing: bool = False) -> bytes:
    """An extension header of (1 + body_len_8) * 8 bytes whose next header is ``nh``."""
    if routing:  # type 4 (SRH-like), segments left 1: ipv6.walk would refuse it
        return bytes([nh, body_len_8, 4, 1]) + b"\x00" * (4 + 8 * body_len_8)
    return bytes([nh, body_len_8, 1, 4 + 8 * body_len_8]) + b"\x00" * (4 + 8 * body_len_8)


def test_ipv6_tcp_behind_extension_headers() -> None:
    seg = tcp_segment(tcp.SYN, opts=WSCALE7, sport=50000, dport=443)
    chain = _ext(ipv6.NH_DSTOPTS) + _ext(ipv6.NH_ROUTING, 1) + _ext(ipv6.NH_TCP, 2, routing=True)
    raw = ip6(ipv6.NH_HOPOPTS, chain + seg)
    info = parse(raw)
    assert (info.family, info.proto, info.src, info.dst) == (6, 6, A6, B6)
    assert (info.sport, info.dport, info.wscale, info.length) == (50000, 443, 7, len(raw))


def test_ipv6_udp_and_icmpv6_echo_and_nd() -> None:
    udp6 = parse(ip6(ipv6.NH_UDP, udp.build(A6, B6, 546, 547, b"x")))
    assert (udp6.proto, udp6.sport, udp6.dport) == (17, 546, 547)
    echo = icmp6.Icmp6Message(icmp6.ECHO_REQUEST, 0, (0x4242 << 16) | 1, b"p").emit(A6, B6)
    info = parse(ip6(ipv6.NH_ICMPV6, echo))
    assert (info.proto, info.icmp_type, info.sport, info.dport) == (58, 128, 0x4242, 0x4242)
    ns = icmp6.build(icmp6.NEIGHBOR_SOLICIT, 0, bytes(4) + B6, LL6, B6)
    nd = parse(ip6(ipv6.NH_ICMPV6, ns, src=LL6))
    assert (nd.icmp_type, nd.sport) == (135, 0)


def test_ipv6_fragments() -> None:
    seg = udp.build(A6, B6, 4000, 53, b"0123456789abcdef")
    first = ip6(ipv6.NH_FRAGMENT, struct.pack("!BBHI", ipv6.NH_UDP, 0, 0x0001, 9) + seg[:16])
    info = parse(first)
    # The UDP length (24) covers the datagram, not this fragment's 16 bytes.
    assert (info.fragment, info.first_fragment, info.malformed) == (False, True, False)
    assert (info.sport, info.dport) == (4000, 53)
    whole_first = ip6(ipv6.NH_FRAGMENT, struct.pack("!BBHI", ipv6.NH_UDP, 0, 0x0001, 9) + seg)
    info = parse(whole_first)
    assert (info.fragment, info.proto, info.sport, info.dport) == (False, 17, 4000, 53)
    later = ip6(ipv6.NH_FRAGMENT, struct.pack("!BBHI", ipv6.NH_UDP, 0, 16 << 3, 9) + seg[16:])
    info = parse(later)
    assert (info.fragment, info.proto, info.sport, info.malformed) == (True, 17, 0, False)


def test_ipv6_fragment_then_destination_options() -> None:
    seg = tcp_segment(tcp.ACK, sport=1, dport=2)
    payload = struct.pack("!BBHI", ipv6.NH_DSTOPTS, 0, 0, 1) + _ext(ipv6.NH_TCP) + seg
    info = parse(ip6(ipv6.NH_FRAGMENT, payload))
    assert (info.proto, info.sport, info.dport, info.fragment) == (6, 1, 2, False)


@pytest.mark.parametrize(
    "payload",
    [
        _ext(ipv6.NH_TCP)[:6],  # extension header cut short
        _ext(ipv6.NH_TCP, 3),  # announces 32 bytes, the packet has 32: TCP missing
        b"".join(_ext(ipv6.NH_DSTOPTS) for _ in range(ipv6.MAX_EXTENSIONS + 1)),
    ],
)
def test_ipv6_broken_chain_is_malformed(payload: bytes) -> None:
    info = parse(ip6(ipv6.NH_DSTOPTS, payload))
    assert info.malformed


def test_ipv6_no_next_header_and_esp() -> None:
    assert parse(ip6(ipv6.NH_NONE, b"")).proto == ipv6.NH_NONE
    info = parse(ip6(ipv6.NH_HOPOPTS, _ext(ipv6.NH_ESP) + b"\x00" * 16))
    assert (info.proto, info.malformed) == (ipv6.NH_ESP, False)


# -- quoted packets ------------------------------------------------------------------


def _icmp4_error(type_: int, code: int, offending: bytes, src: bytes = B4) -> bytes:
    return ipv4.build(src, A4, ipv4.PROTO_ICMP, icmp4.error(type_, code, offending))


def test_quoted_udp_in_port_unreachable() -> None:
    offending = ipv4.build(A4, B4, udp.PROTO, udp.build(A4, B4, 33434, 33435, b"probe"))
    raw = _icmp4_error(icmp4.DEST_UNREACH, icmp4.UNREACH_PORT, offending)
    outer = parse(raw)
    assert packet.is_icmp_error(outer)
    inner = quoted(outer, raw)
    assert inner is not None
    assert (inner.family, inner.proto, inner.src, inner.dst) == (4, 17, A4, B4)
    assert (inner.sport, inner.dport, inner.length) == (33434, 33435, len(offending))


def test_quoted_tcp_with_only_eight_bytes() -> None:
    offending = ip4(6, tcp_segment(tcp.SYN, seq=0xDEADBEEF))
    raw = _icmp4_error(icmp4.TIME_EXCEEDED, 0, offending[:28], src=R4)
    inner = quoted(parse(raw), raw)
    assert inner is not None
    assert (inner.proto, inner.sport, inner.dport, inner.seq) == (6, 40000, 8080, 0xDEADBEEF)
    assert (inner.tcp_flags, inner.malformed, inner.length) == (0, False, len(offending))


def test_quoted_echo_request_in_time_exceeded() -> None:
    echo = icmp4.IcmpMessage(icmp4.ECHO_REQUEST, 0, (77 << 16) | 1, b"x" * 32).emit()
    offending = ipv4.build(A4, B4, ipv4.PROTO_ICMP, echo)
    raw = _icmp4_error(icmp4.TIME_EXCEEDED, 0, offending, src=R4)
    inner = quoted(parse(raw), raw)
    assert inner is not None and (inner.icmp_type, inner.sport, inner.dport) == (8, 77, 77)


def test_quoted_ipv6_in_packet_too_big() -> None:
    seg = tcp_segment(tcp.ACK, seq=5, data=b"y" * 1400)
    offending = ip6(ipv6.NH_TCP, seg)
    body = icmp6.error(icmp6.PACKET_TOO_BIG, 0, offending, R6, A6, rest=1280)
    raw = ip6(ipv6.NH_ICMPV6, body, src=R6, dst=A6)
    outer = parse(raw)
    inner = quoted(outer, raw)
    assert inner is not None
    assert (inner.family, inner.src, inner.dst, inner.sport, inner.seq) == (6, A6, B6, 40000, 5)
    assert inner.length == len(offending) and len(raw) < inner.length + 48


@pytest.mark.parametrize(
    "raw",
    [
        # not an error: echo request
        ipv4.build(A4, B4, 1, icmp4.IcmpMessage(8, 0, 1, b"").emit()),
        # a redirect is not an error the filter relates
        _icmp4_error(5, 1, ipv4.build(A4, B4, 17, udp.build(A4, B4, 1, 2, b""))),
        # the quote is IPv6 inside ICMP for IPv4
        _icmp4_error(3, 3, ip6(ipv6.NH_UDP, udp.build(A6, B6, 1, 2, b""))),
        # fewer than 8 transport bytes quoted
        _icmp4_error(3, 3, ipv4.build(A4, B4, 17, udp.build(A4, B4, 1, 2, b""))[:26]),
        # quoted non-first fragment
        _icmp4_error(11, 1, ip4(17, b"\x00" * 16, frag=5)),
        # garbage quote
        _icmp4_error(3, 3, b"\x45\x00"),
        # the error itself too short to quote anything
        ipv4.build(B4, A4, 1, b"\x03\x03\x00\x00\x00\x00\x00\x00"),
    ],
)
def test_quoted_none(raw: bytes) -> None:
    assert quoted(parse(raw), raw) is None


def test_quoted_other_protocol_has_addresses_only() -> None:
    raw = _icmp4_error(3, 2, ipv4.build(A4, B4, 47, b"\x00" * 8))
    inner = quoted(parse(raw), raw)
    assert inner is not None and (inner.proto, inner.sport, inner.src) == (47, 0, A4)
