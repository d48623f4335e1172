"""Tests for vrouter.wire.ndp: Neighbor Discovery messages and options (RFC 4861, 8106)."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.wire import icmp6, ipv6, ndp
from vrouter.wire.errors import IntegrityError, SanityError, WireError
from vrouter.wire.icmp6 import Icmp6Message
from vrouter.wire.ndp import (
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInfo,
    RouterAdvertisement,
    RouterSolicitation,
)

# IPv6 packets captured from Linux 6.18 with tcpdump -w in netns w6a, on a veth pair
# between w6a (va, 00:00:5e:00:53:01, 2001:db8:1::1/64 nodad) and w6b (vb,
# 00:00:5e:00:53:02, 2001:db8:1::2/64 nodad); a third netns w6r (vr,
# 00:00:5e:00:53:12, 2001:db8:2::2/64, net.ipv6.conf.all.forwarding=1) on a second
# veth from w6a (va2, 00:00:5e:00:53:11, 2001:db8:2::1/64).
#   ping -6 -c1 2001:db8:1::2 (in w6a)       -> NS, NA
#   ping -6 -t 1 -c1 2001:db8:3::99 (w6a)    -> NS_ROUTER, NA_ROUTER (w6r is a router)
#   `ip link set va2 up` (accept_ra=1)       -> RS_KERNEL (the kernel's own RS)
#   w6b's kernel, checking w6a was still there -> NS_NUD, NA_NUD (unicast, no option)
#   radvd 2.19 in w6b (forwarding=1), radvd.conf:
#       interface vb { AdvSendAdvert on; MinRtrAdvInterval 30; MaxRtrAdvInterval 100;
#           AdvLinkMTU 1500;
#           prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; };
#           RDNSS 2001:db8:1::53 { }; };
#                                            -> RA_MULTICAST (unsolicited, to ff02::1)
#   rdisc6 -1 va (in w6a)                    -> RS_RDISC6, NS_LL, NA_LL, RA_UNICAST
# rdisc6 printed for the RA: hop limit 64, M/O no, router lifetime 300, reachable and
# retransmit unspecified, prefix 2001:db8:1::/64 on-link and autonomous, valid 86400,
# preferred 14400, RDNSS 2001:db8:1::53 lifetime 100, MTU 1500, source 00:00:5E:00:53:02.
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
NS_ROUTER = bytes.fromhex(
    "6000000000203aff20010db8000200000000000000000001ff0200000000000000000001ff000002"
    "87006d120000000020010db8000200000000000000000002"
    "010100005e005311"
)
NA_ROUTER = bytes.fromhex(  # R, S and O set
    "6000000000203aff20010db800020000000000000000000220010db8000200000000000000000001"
    "88005b5ae000000020010db8000200000000000000000002"
    "020100005e005312"
)
RS_RDISC6 = bytes.fromhex(
    "6003aa5000083afffe8000000000000002005efffe005301ff020000000000000000000000000002"
    "8500cb3500000000"
)
RS_KERNEL = bytes.fromhex(
    "6000000000103afffe8000000000000002005efffe005311ff020000000000000000000000000002"
    "8500190b00000000"
    "010100005e005311"
)
RA_MULTICAST = bytes.fromhex(
    "6005e2ac00583afffe8000000000000002005efffe005302ff020000000000000000000000000001"
    "860089244000012c0000000000000000"
    "030440c000015180000038400000000020010db8000100000000000000000000"
    "190300000000006420010db8000100000000000000000053"
    "05010000000005dc"
    "010100005e005302"
)
RA_UNICAST = bytes.fromhex(
    "6006b88300583afffe8000000000000002005efffe005302fe8000000000000002005efffe005301"
    "8600d7a54000012c0000000000000000"
    "030440c000015180000038400000000020010db8000100000000000000000000"
    "190300000000006420010db8000100000000000000000053"
    "05010000000005dc"
    "010100005e005302"
)

A = bytes.fromhex("20010db8000100000000000000000001")
B = bytes.fromhex("20010db8000100000000000000000002")
R = bytes.fromhex("20010db8000200000000000000000002")
MAC_A = bytes.fromhex("00005e005301")
MAC_B = bytes.fromhex("00005e005302")
MAC_A2 = bytes.fromhex("00005e005311")
MAC_R = bytes.fromhex("00005e005312")
LL_A = bytes.fromhex("fe8000000000000002005efffe005301")
PREFIX = bytes.fromhex("20010db8000100000000000000000000")
RDNSS = bytes.fromhex("20010db8000100000000000000000053")

RADVD_RA = RouterAdvertisement(
    hop_limit=64,
    managed=False,
    other=False,
    lifetime=300,
    reachable_time=0,
    retrans_timer=0,
    source_mac=MAC_B,
    mtu=1500,
    prefixes=(PrefixInfo(PREFIX, 64, True, True, 86400, 14400),),
    rdnss=(RDNSS,),
    rdnss_lifetime=100,
)


def _body(packet: bytes) -> bytes:
    """Return the ND body (after type/code/checksum), checksum verified."""
    assert packet[ipv6.NEXT_HEADER] == ipv6.NH_ICMPV6 and packet[ipv6.HOP_LIMIT] == 255
    msg = Icmp6Message.parse(packet[ipv6.SRC], packet[ipv6.DST], packet[40:])
    assert msg.code == 0
    return msg.data


def test_constants() -> None:
    assert (ndp.OPT_SOURCE_LLADDR, ndp.OPT_TARGET_LLADDR, ndp.OPT_PREFIX_INFO) == (1, 2, 3)
    assert (ndp.OPT_REDIRECTED, ndp.OPT_MTU, ndp.OPT_RDNSS) == (4, 5, 25)
    assert (ndp.NA_ROUTER, ndp.NA_SOLICITED, ndp.NA_OVERRIDE) == (1 << 31, 1 << 30, 1 << 29)
    assert (ndp.RA_MANAGED, ndp.RA_OTHER) == (0x80, 0x40)
    assert (ndp.PREFIX_ONLINK, ndp.PREFIX_AUTONOMOUS, ndp.INFINITY) == (0x80, 0x40, 0xFFFFFFFF)


# --- Neighbor Solicitation -------------------------------------------------------------

NS_CAPTURED = [
    pytest.param(NS, NeighborSolicitation(B, MAC_A), id="address-resolution"),
    pytest.param(NS_NUD, NeighborSolicitation(A, MAC_B), id="unicast-nud"),
    pytest.param(NS_LL, NeighborSolicitation(LL_A, MAC_B), id="link-local"),
    pytest.param(NS_ROUTER, NeighborSolicitation(R, MAC_A2), id="for-router"),
]


@pytest.mark.parametrize(("packet", "expected"), NS_CAPTURED)
def test_ns_parse_captured(packet: bytes, expected: NeighborSolicitation) -> None:
    body = _body(packet)
    ns = NeighborSolicitation.parse(body)
    assert ns == expected
    assert type(ns.target) is bytes and type(ns.source_mac) is bytes
    assert NeighborSolicitation.parse(memoryview(body)) == expected
    assert packet[40] == icmp6.NEIGHBOR_SOLICIT


@pytest.mark.parametrize(("packet", "expected"), NS_CAPTURED)
def test_ns_emit_body_gives_captured_bytes(packet: bytes, expected: NeighborSolicitation) -> None:
    assert expected.emit_body() == _body(packet)
    assert NeighborSolicitation.parse(_body(packet)).emit_body() == _body(packet)


def test_ns_multicast_destination_is_the_targets_solicited_node_group() -> None:
    ns = NeighborSolicitation.parse(_body(NS))
    assert NS[ipv6.DST] == ipv6.solicited_node(ns.target)
    ns = NeighborSolicitation.parse(_body(NS_LL))
    assert NS_LL[ipv6.DST] == ipv6.solicited_node(ns.target)


def test_ns_without_option() -> None:
    # A DAD probe (from ::) carries no source link-layer option (RFC 4861 7.1.1).
    ns = NeighborSolicitation(A)
    body = ns.emit_body()
    assert body == bytes(4) + A
    assert NeighborSolicitation.parse(body) == ns
    assert NeighborSolicitation.parse(body).source_mac is None


# --- Neighbor Advertisement ------------------------------------------------------------

NA_CAPTURED = [
    pytest.param(NA, NeighborAdvertisement(B, False, True, True, MAC_B), id="solicited"),
    pytest.param(NA_NUD, NeighborAdvertisement(A, False, True, False, None), id="nud-no-option"),
    pytest.param(NA_LL, NeighborAdvertisement(LL_A, False, True, True, MAC_A), id="link-local"),
    pytest.param(NA_ROUTER, NeighborAdvertisement(R, True, True, True, MAC_R), id="router"),
]


@pytest.mark.parametrize(("packet", "expected"), NA_CAPTURED)
def test_na_parse_captured(packet: bytes, expected: NeighborAdvertisement) -> None:
    body = _body(packet)
    na = NeighborAdvertisement.parse(body)
    assert na == expected
    assert NeighborAdvertisement.parse(memoryview(body)) == expected
    assert packet[40] == icmp6.NEIGHBOR_ADVERT


@pytest.mark.parametrize(("packet", "expected"), NA_CAPTURED)
def test_na_emit_body_gives_captured_bytes(packet: bytes, expected: NeighborAdvertisement) -> None:
    assert expected.emit_body() == _body(packet)
    assert NeighborAdvertisement.parse(_body(packet)).emit_body() == _body(packet)


@pytest.mark.parametrize(
    ("flags", "router", "solicited", "override"),
    [
        (0x00000000, False, False, False),
        (0x80000000, True, False, False),
        (0x40000000, False, True, False),
        (0x20000000, False, False, True),
        (0xE0000000, True, True, True),
        (0x1FFFFFFF, False, False, False),  # reserved bits are not flags
    ],
)
def test_na_flags(flags: int, router: bool, solicited: bool, override: bool) -> None:
    body = struct.pack("!I", flags) + A
    na = NeighborAdvertisement.parse(body)
    assert (na.router, na.solicited, na.override) == (router, solicited, override)
    assert NeighborAdvertisement(A, router, solicited, override).emit_body()[:4] == struct.pack(
        "!I", flags & 0xE0000000
    )


def test_na_ignores_source_link_layer_option() -> None:
    # An NA's link-layer address is the *target* option (type 2), not type 1.
    body = NeighborAdvertisement(A, solicited=True).emit_body() + bytes.fromhex("010100005e005302")
    assert NeighborAdvertisement.parse(body).target_mac is None


def test_ns_ignores_target_link_layer_option() -> None:
    body = NeighborSolicitation(A).emit_body() + bytes.fromhex("020100005e005302")
    assert NeighborSolicitation.parse(body).source_mac is None


# --- Router Solicitation ---------------------------------------------------------------

RS_CAPTURED = [
    pytest.param(RS_RDISC6, RouterSolicitation(None), id="rdisc6-no-option"),
    pytest.param(RS_KERNEL, RouterSolicitation(MAC_A2), id="kernel"),
]


@pytest.mark.parametrize(("packet", "expected"), RS_CAPTURED)
def test_rs_parse_captured(packet: bytes, expected: RouterSolicitation) -> None:
    assert RouterSolicitation.parse(_body(packet)) == expected
    assert RouterSolicitation.parse(memoryview(_body(packet))) == expected
    assert packet[ipv6.DST] == ipv6.ALL_ROUTERS
    assert packet[40] == icmp6.ROUTER_SOLICIT


@pytest.mark.parametrize(("packet", "expected"), RS_CAPTURED)
def test_rs_emit_body_gives_captured_bytes(packet: bytes, expected: RouterSolicitation) -> None:
    assert expected.emit_body() == _body(packet)


# --- Router Advertisement --------------------------------------------------------------


@pytest.mark.parametrize("packet", [RA_MULTICAST, RA_UNICAST], ids=["multicast", "unicast"])
def test_ra_parse_captured(packet: bytes) -> None:
    body = _body(packet)
    ra = RouterAdvertisement.parse(body)
    assert ra == RADVD_RA
    assert RouterAdvertisement.parse(memoryview(body)) == RADVD_RA
    prefix = ra.prefixes[0]
    assert (prefix.prefix, prefix.length, prefix.onlink, prefix.autonomous) == (
        PREFIX,
        64,
        True,
        True,
    )
    assert (prefix.valid_lifetime, prefix.preferred_lifetime) == (86400, 14400)
    assert (ra.mtu, ra.rdnss, ra.rdnss_lifetime, ra.source_mac) == (1500, (RDNSS,), 100, MAC_B)
    assert packet[40] == icmp6.ROUTER_ADVERT
    assert ipv6.is_link_local(packet[ipv6.SRC])  # RFC 4861 6.1.2


def test_ra_options_of_captured() -> None:
    # radvd writes Prefix Information, RDNSS, MTU, then the source link-layer address.
    assert ndp.parse_options(_body(RA_MULTICAST)[12:]) == [
        (
            ndp.OPT_PREFIX_INFO,
            bytes.fromhex("40c000015180000038400000000020010db8000100000000000000000000"),
        ),
        (ndp.OPT_RDNSS, bytes.fromhex("00000000006420010db8000100000000000000000053")),
        (ndp.OPT_MTU, bytes.fromhex("0000000005dc")),
        (ndp.OPT_SOURCE_LLADDR, MAC_B),
    ]


def test_ra_emit_body_gives_captured_fields_and_options() -> None:
    # Same fields, same option bytes; vrouter only writes the options in another order
    # (source link-layer address, MTU, prefixes, RDNSS), which RFC 4861 leaves free.
    captured = _body(RA_MULTICAST)
    emitted = RADVD_RA.emit_body()
    assert emitted[:12] == captured[:12]
    assert len(emitted) == len(captured)
    by_type = {type_: value for type_, value in ndp.parse_options(captured[12:])}
    raw = {}
    i = 12
    while i < len(captured):
        raw[captured[i]] = captured[i : i + captured[i + 1] * 8]
        i += captured[i + 1] * 8
    assert emitted[12:] == (
        raw[ndp.OPT_SOURCE_LLADDR]
        + raw[ndp.OPT_MTU]
        + raw[ndp.OPT_PREFIX_INFO]
        + raw[ndp.OPT_RDNSS]
    )
    assert sorted(ndp.parse_options(emitted[12:])) == sorted(by_type.items())
    assert RouterAdvertisement.parse(emitted) == RADVD_RA


def test_prefix_info_emit_gives_captured_option() -> None:
    captured = _body(RA_MULTICAST)[12:44]
    assert RADVD_RA.prefixes[0].emit() == captured
    assert PrefixInfo.parse(captured[2:]) == RADVD_RA.prefixes[0]


def test_ra_flags_and_lifetimes() -> None:
    ra = RouterAdvertisement(
        hop_limit=255,
        managed=True,
        other=True,
        lifetime=0xFFFF,
        reachable_time=30000,
        retrans_timer=1000,
    )
    body = ra.emit_body()
    assert body == bytes.fromhex("ffc0ffff00007530000003e8")
    assert RouterAdvertisement.parse(body) == ra
    # Router preference and the other reserved bits are not M or O.
    flags_only = bytearray(body)
    flags_only[1] = 0x3F
    parsed = RouterAdvertisement.parse(bytes(flags_only))
    assert (parsed.managed, parsed.other) == (False, False)


def test_ra_minimal_and_defaults() -> None:
    ra = RouterAdvertisement()
    body = ra.emit_body()
    assert body == bytes.fromhex("400007080000000000000000")  # 64, lifetime 1800
    assert RouterAdvertisement.parse(body) == ra
    assert (ra.mtu, ra.source_mac, ra.prefixes, ra.rdnss) == (None, None, (), ())


def test_ra_several_prefixes_and_rdnss_servers() -> None:
    prefixes = (
        PrefixInfo(PREFIX, 64),
        PrefixInfo(bytes.fromhex("20010db8000200000000000000000000"), 48, False, False, 0, 0),
        PrefixInfo(bytes(16), 0, True, False, ndp.INFINITY, ndp.INFINITY),
        PrefixInfo(A, 128, False, True, 1, 1),
    )
    servers = (RDNSS, bytes.fromhex("20010db8000100000000000000000054"))
    ra = RouterAdvertisement(
        source_mac=MAC_B, mtu=9000, prefixes=prefixes, rdnss=servers, rdnss_lifetime=600
    )
    body = ra.emit_body()
    assert len(body) == 12 + 8 + 8 + 4 * 32 + 8 + 2 * 16
    assert RouterAdvertisement.parse(body) == ra
    options = ndp.parse_options(body[12:])
    assert [t for t, _ in options] == [1, 5, 3, 3, 3, 3, 25]
    assert options[-1][1][:6] == bytes.fromhex("000000000258")


def test_prefix_info_defaults() -> None:
    # RFC 4861 6.2.1 defaults: 30 days valid, 7 days preferred, both flags set.
    info = PrefixInfo(PREFIX, 64)
    assert (info.onlink, info.autonomous) == (True, True)
    assert (info.valid_lifetime, info.preferred_lifetime) == (2592000, 604800)
    raw = info.emit()
    assert raw == bytes.fromhex("030440c000278d0000093a8000000000") + PREFIX
    assert PrefixInfo.parse(raw[2:]) == info


def test_ra_ignores_unusable_options() -> None:
    base = RouterAdvertisement().emit_body()
    body = (
        base
        + bytes.fromhex("0502000000000578" + "0000000000000000")  # MTU of length 2
        + bytes.fromhex("1901000000000064")  # RDNSS without an address
        + bytes.fromhex("1f01000000000000")  # DNSSL-like unknown option
        + bytes.fromhex("0101")
        + bytes(6)  # source link-layer address 00:..:00
    )
    ra = RouterAdvertisement.parse(body)
    assert (ra.mtu, ra.rdnss, ra.rdnss_lifetime) == (None, (), 0)
    assert ra.source_mac == bytes(6)


# --- malformed -------------------------------------------------------------------------

_NS_BODY = _body(NS)
_NA_BODY = _body(NA)
_RS_BODY = _body(RS_KERNEL)
_RA_BODY = _body(RA_MULTICAST)


def _set(body: bytes, offset: int, value: int) -> bytes:
    raw = bytearray(body)
    raw[offset] = value
    return bytes(raw)


MALFORMED = [
    # Shorter than the fixed part.
    *(
        pytest.param(
            NeighborSolicitation, _NS_BODY[:n], IntegrityError, "nd_tooshort", id=f"ns-{n}"
        )
        for n in (0, 4, 19)
    ),
    *(
        pytest.param(
            NeighborAdvertisement, _NA_BODY[:n], IntegrityError, "nd_tooshort", id=f"na-{n}"
        )
        for n in (0, 4, 19)
    ),
    *(
        pytest.param(RouterSolicitation, _RS_BODY[:n], IntegrityError, "nd_tooshort", id=f"rs-{n}")
        for n in (0, 3)
    ),
    *(
        pytest.param(RouterAdvertisement, _RA_BODY[:n], IntegrityError, "nd_tooshort", id=f"ra-{n}")
        for n in (0, 4, 11)
    ),
    # Option length 0 (RFC 4861 4.6: the node must silently discard the packet).
    pytest.param(
        NeighborSolicitation, _set(_NS_BODY, 21, 0), IntegrityError, "nd_badopt", id="ns-len0"
    ),
    pytest.param(
        NeighborAdvertisement, _set(_NA_BODY, 21, 0), IntegrityError, "nd_badopt", id="na-len0"
    ),
    pytest.param(
        RouterSolicitation, _set(_RS_BODY, 5, 0), IntegrityError, "nd_badopt", id="rs-len0"
    ),
    pytest.param(
        RouterAdvertisement, _set(_RA_BODY, 13, 0), IntegrityError, "nd_badopt", id="ra-len0"
    ),
    pytest.param(
        RouterAdvertisement,
        _set(_RA_BODY, 13 + 32 + 24 + 8, 0),
        IntegrityError,
        "nd_badopt",
        id="ra-last-len0",
    ),
    # Options that run past the message.
    pytest.param(NeighborSolicitation, _NS_BODY[:-1], IntegrityError, "nd_badopt", id="ns-cut"),
    pytest.param(
        NeighborSolicitation, _NS_BODY[:21], IntegrityError, "nd_badopt", id="ns-type-only"
    ),
    pytest.param(
        NeighborAdvertisement, _set(_NA_BODY, 21, 2), IntegrityError, "nd_badopt", id="na-len2"
    ),
    pytest.param(RouterAdvertisement, _RA_BODY[:-1], IntegrityError, "nd_badopt", id="ra-cut"),
    pytest.param(RouterAdvertisement, _RA_BODY[:13], IntegrityError, "nd_badopt", id="ra-1-byte"),
    pytest.param(
        RouterAdvertisement, _set(_RA_BODY, 13, 5), IntegrityError, "nd_badopt", id="ra-pi-len5"
    ),
    pytest.param(
        RouterSolicitation, _RS_BODY + b"\x01", IntegrityError, "nd_badopt", id="rs-trailing"
    ),
    # A Prefix Information option that is not 32 bytes.
    pytest.param(
        RouterAdvertisement,
        _RA_BODY[:12] + bytes.fromhex("0303") + _RA_BODY[14:36],
        IntegrityError,
        "nd_badopt",
        id="pi-len3",
    ),
    pytest.param(
        RouterAdvertisement,
        _RA_BODY[:12] + bytes.fromhex("0305") + _RA_BODY[14:44] + bytes(8),
        IntegrityError,
        "nd_badopt",
        id="pi-len5",
    ),
    # Prefix length beyond 128.
    *(
        pytest.param(
            RouterAdvertisement, _set(_RA_BODY, 14, n), SanityError, "nd_badopt", id=f"prefix-/{n}"
        )
        for n in (129, 200, 255)
    ),
    # Multicast target (RFC 4861 7.1.1, 7.1.2).
    *(
        pytest.param(
            cls,
            body[:4] + bytes.fromhex(target) + body[20:],
            SanityError,
            "nd_badtarget",
            id=f"{name}-{target[:4]}",
        )
        for cls, body, name in (
            (NeighborSolicitation, _NS_BODY, "ns"),
            (NeighborAdvertisement, _NA_BODY, "na"),
        )
        for target in (
            "ff020000000000000000000000000001",
            "ff0200000000000000000001ff000002",
            "ff0e0000000000000000000000000101",
        )
    ),
]


@pytest.mark.parametrize(("cls", "body", "exc_type", "reason"), MALFORMED)
def test_parse_malformed(
    cls: type[
        NeighborSolicitation | NeighborAdvertisement | RouterSolicitation | RouterAdvertisement
    ],
    body: bytes,
    exc_type: type[WireError],
    reason: str,
) -> None:
    with pytest.raises(WireError) as exc:
        cls.parse(body)
    assert type(exc.value) is exc_type
    assert exc.value.reason == reason
    with pytest.raises(exc_type):
        cls.parse(memoryview(body))


@pytest.mark.parametrize("length", [0, 64, 127, 128])
def test_prefix_length_up_to_128_is_accepted(length: int) -> None:
    info = PrefixInfo.parse(_set(_RA_BODY, 14, length)[14:44])
    assert info.length == length


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", []),
        (bytes.fromhex("0101") + MAC_A, [(1, MAC_A)]),
        (bytes.fromhex("0e01") + bytes(6), [(14, bytes(6))]),  # nonce (RFC 3971)
        (
            bytes.fromhex("0101") + MAC_A + bytes.fromhex("0202") + bytes(14),
            [(1, MAC_A), (2, bytes(14))],
        ),
    ],
)
def test_parse_options(data: bytes, expected: list[tuple[int, bytes]]) -> None:
    assert ndp.parse_options(data) == expected
    assert ndp.parse_options(memoryview(data)) == expected


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("01"),
        bytes.fromhex("0100") + MAC_A,
        bytes.fromhex("0102") + MAC_A,
        bytes.fromhex("0101") + MAC_A + bytes.fromhex("00"),
        bytes.fromhex("0101") + MAC_A + bytes.fromhex("0000"),
    ],
)
def test_parse_options_malformed(data: bytes) -> None:
    with pytest.raises(IntegrityError) as exc:
        ndp.parse_options(data)
    assert exc.value.reason == "nd_badopt"


def test_unknown_options_are_skipped() -> None:
    # RFC 4861 4.6: unrecognized options are ignored, and parsing goes on.
    body = (
        NeighborSolicitation(A).emit_body()
        + bytes.fromhex("0e01")
        + bytes(6)
        + (bytes.fromhex("0101") + MAC_B)
    )
    assert NeighborSolicitation.parse(body) == NeighborSolicitation(A, MAC_B)


# --- properties ------------------------------------------------------------------------

macs = st.binary(min_size=6, max_size=6)
unicast = st.binary(min_size=16, max_size=16).filter(lambda a: a[0] != 0xFF)
prefixes = st.builds(
    PrefixInfo,
    prefix=st.binary(min_size=16, max_size=16),
    length=st.integers(0, 128),
    onlink=st.booleans(),
    autonomous=st.booleans(),
    valid_lifetime=st.integers(0, 0xFFFFFFFF),
    preferred_lifetime=st.integers(0, 0xFFFFFFFF),
)
nd_messages = st.one_of(
    st.builds(NeighborSolicitation, target=unicast, source_mac=st.none() | macs),
    st.builds(
        NeighborAdvertisement,
        target=unicast,
        router=st.booleans(),
        solicited=st.booleans(),
        override=st.booleans(),
        target_mac=st.none() | macs,
    ),
    st.builds(RouterSolicitation, source_mac=st.none() | macs),
    st.builds(
        RouterAdvertisement,
        hop_limit=st.integers(0, 255),
        managed=st.booleans(),
        other=st.booleans(),
        lifetime=st.integers(0, 0xFFFF),
        reachable_time=st.integers(0, 0xFFFFFFFF),
        retrans_timer=st.integers(0, 0xFFFFFFFF),
        source_mac=st.none() | macs,
        mtu=st.none() | st.integers(0, 0xFFFFFFFF),
        prefixes=st.lists(prefixes, max_size=4).map(tuple),
        rdnss=st.lists(st.binary(min_size=16, max_size=16), max_size=4).map(tuple),
        rdnss_lifetime=st.integers(0, 0xFFFFFFFF),
    ),
)


FIXED_LEN = {
    NeighborSolicitation: 20,
    NeighborAdvertisement: 20,
    RouterSolicitation: 4,
    RouterAdvertisement: 12,
}
ICMP_TYPE = {
    RouterSolicitation: icmp6.ROUTER_SOLICIT,
    RouterAdvertisement: icmp6.ROUTER_ADVERT,
    NeighborSolicitation: icmp6.NEIGHBOR_SOLICIT,
    NeighborAdvertisement: icmp6.NEIGHBOR_ADVERT,
}


@given(nd_messages)
def test_emit_parse_round_trip(
    msg: NeighborSolicitation | NeighborAdvertisement | RouterSolicitation | RouterAdvertisement,
) -> None:
    body = msg.emit_body()
    expected = msg
    if isinstance(msg, RouterAdvertisement) and not msg.rdnss:
        # Without servers no RDNSS option is sent, so its lifetime does not travel.
        expected = dataclasses.replace(msg, rdnss_lifetime=0)
    assert type(msg).parse(body) == expected
    # Options are whole 8-byte units after the fixed part.
    fixed = FIXED_LEN[type(msg)]
    assert (len(body) - fixed) % 8 == 0
    assert all(len(value) % 8 == 6 for _, value in ndp.parse_options(body[fixed:]))
    # And the body goes through ICMPv6 intact.
    raw = icmp6.build(ICMP_TYPE[type(msg)], 0, body, LL_A, ipv6.ALL_NODES)
    assert Icmp6Message.parse(LL_A, ipv6.ALL_NODES, raw).data == body


@given(
    st.sampled_from(
        [NeighborSolicitation, NeighborAdvertisement, RouterSolicitation, RouterAdvertisement]
    ),
    st.binary(max_size=120),
)
def test_random_bodies_parse_or_raise_wire_error(
    cls: type[
        NeighborSolicitation | NeighborAdvertisement | RouterSolicitation | RouterAdvertisement
    ],
    body: bytes,
) -> None:
    try:
        cls.parse(body)
    except WireError as exc:
        assert type(exc) in (IntegrityError, SanityError)
        assert exc.reason in ("nd_tooshort", "nd_badopt", "nd_badtarget")
