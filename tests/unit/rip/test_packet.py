"""Tests for vrouter.rip.packet: RIPv2/RIPng parse and build against BIRD's own bytes.

Every fixture below is the UDP payload of a packet BIRD 2.0.12 (Debian
``bird2``) sent on Linux 6.18, captured by ``tests/unit/rip/capture_bird.sh``:

    sh tests/unit/rip/capture_bird.sh /tmp/ripcap

which joins two fresh network namespaces (A and B) with four veth pairs, runs
BIRD in each, tcpdumps A's ends for 8 s, and deletes the namespaces.  BIRD A
exports static routes (config in the script):
  link 1  192.0.2.1/28 (A) <-> .2 (B), RIPv2, 198.51.100.0/25 with route
          tag 7, 198.51.100.128/26 via 192.0.2.3 (a next hop on the link),
          198.51.100.192/27, and 198.51.100.224/28 with rip_metric 5;
  link 2  192.0.2.17/28, RIPv2 ``authentication plaintext; password "vrouter-plain"``;
  link 3  192.0.2.33/28, RIPv2 ``authentication cryptographic;
          password "vrouter-md5" { id 1; algorithm keyed md5; }``;
  link 4  RIPng, 2001:db8:100::/48 with tag 9, 2001:db8:200::/56 via fe80::3
          (a link-local next hop on the link), 2001:db8:300::/64.
RIPv2 went to 224.0.0.9 with TTL 1, RIPng to ff02::9 from A's link-local
address with hop limit 255.

The ``FRR_*`` fixtures are what FRR's ripd 8.4.4 (Debian ``frr``) sent,
captured by ``tests/unit/rip/capture_frr.sh``: ripd in a fresh namespace with
keyed MD5 (``ip rip authentication string vrouter-md5``, so key id 1) on two
links, ``auth-length rfc`` on 192.0.2.49/28 and ``auth-length old-ripd`` on
192.0.2.65/28, advertising the RIP route 198.51.100.0/25 and, split
horizon, the other link's network.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.rip import packet as rip
from vrouter.rip.packet import REQUEST, RESPONSE, Auth, AuthError, Entry
from vrouter.wire.errors import IntegrityError, SanityError, WireError

# -- the captures ---------------------------------------------------------------------

# Link 1, 192.0.2.1:520 -> 224.0.0.9:520: BIRD's whole-table request on start.
REQUEST_V2 = bytes.fromhex("0102 0000 0000 0000 00000000 00000000 00000000 00000010")
# Link 1, 192.0.2.1:520 -> 224.0.0.9:520: a regular update with four routes.
RESPONSE_V2 = bytes.fromhex(
    "0202 0000"
    "0002 0007 c6336400 ffffff80 00000000 00000001"  # 198.51.100.0/25 tag 7
    "0002 0000 c63364c0 ffffffe0 00000000 00000001"  # 198.51.100.192/27
    "0002 0000 c6336480 ffffffc0 c0000203 00000001"  # 198.51.100.128/26 next hop 192.0.2.3
    "0002 0000 c63364e0 fffffff0 00000000 00000005"  # 198.51.100.224/28 metric 5
)
# Link 2, 192.0.2.17:520 -> 224.0.0.9:520: plaintext authentication.
PLAIN_PASSWORD = b"vrouter-plain"
REQUEST_PLAIN = bytes.fromhex(
    "0102 0000"
    "ffff 0002 76726f757465722d706c61696e000000"  # "vrouter-plain", zero padded
    "0000 0000 00000000 00000000 00000000 00000010"
)
RESPONSE_PLAIN = bytes.fromhex(
    "0202 0000"
    "ffff 0002 76726f757465722d706c61696e000000"
    "0002 0000 c6336400 ffffff80 00000000 00000001"
)
# Link 3, 192.0.2.33:520 -> 224.0.0.9:520: keyed MD5 (RFC 4822), key id 1.
MD5_PASSWORD = b"vrouter-md5"
REQUEST_MD5 = bytes.fromhex(
    "0102 0000"
    "ffff 0003 002c 01 14 00000000 0000000000000000"  # length 44, key 1, 20 bytes, seq 0
    "0000 0000 00000000 00000000 00000000 00000010"
    "ffff 0001 28f957e55fc1d859c7bb40a203a13152"  # trailer: the digest
)
RESPONSE_MD5 = bytes.fromhex(
    "0202 0000"
    "ffff 0003 002c 01 14 6b07c6cd 0000000000000000"  # sequence 0x6b07c6cd
    "0002 0000 c6336400 ffffff80 00000000 00000001"
    "ffff 0001 11b3ae00ceeb9004bb4f875c75e60e50"
)
# The next regular update on link 3 (2.7 s later; BIRD's sequence follows the clock).
RESPONSE_MD5_NEXT = bytes.fromhex(
    "0202 0000"
    "ffff 0003 002c 01 14 6b07c6ce 0000000000000000"
    "0002 0000 c6336400 ffffff80 00000000 00000001"
    "ffff 0001 69b2e03c838f4fb295751f5653a0658d"
)
# FRR, 192.0.2.49:520 -> 224.0.0.9:520, ``auth-length rfc``: Auth Data Len 16, the
# digest alone, though the trailer is the same 20 bytes.  (Its whole-table request on
# start carries no authentication at all.)
FRR_REQUEST = bytes.fromhex("0102 0000 0000 0000 00000000 00000000 00000000 00000010")
FRR_RESPONSE_RFC = bytes.fromhex(
    "0202 0000"
    "ffff 0003 0040 01 10 00000001 0000000000000000"  # length 64, key 1, 16 bytes, seq 1
    "0002 0000 c0000240 fffffff0 00000000 00000001"  # 192.0.2.64/28
    "0002 0000 c6336400 ffffff80 00000000 00000001"  # 198.51.100.0/25
    "ffff 0001 50b990d609af0df41e4775a309d9070d"
)
# FRR, 192.0.2.65:520 -> 224.0.0.9:520, ``auth-length old-ripd`` (its default): 20.
FRR_RESPONSE_OLD = bytes.fromhex(
    "0202 0000"
    "ffff 0003 0040 01 14 00000002 0000000000000000"  # 20 bytes, seq 2 (one counter)
    "0002 0000 c0000230 fffffff0 00000000 00000001"  # 192.0.2.48/28
    "0002 0000 c6336400 ffffff80 00000000 00000001"
    "ffff 0001 80266ad084292c98a48f9cc980dd4de4"
)
# Link 4, fe80::78b8:51ff:fe2e:ca78:521 -> ff02::9:521, hop limit 255.
REQUEST_NG = bytes.fromhex("0101 0000 00000000000000000000000000000000 0000 00 10")
RESPONSE_NG = bytes.fromhex(
    "0201 0000"
    "20010db8010000000000000000000000 0009 30 01"  # 2001:db8:100::/48 tag 9
    "fe800000000000000000000000000003 0000 00 ff"  # next hop fe80::3
    "20010db8020000000000000000000000 0000 38 01"  # 2001:db8:200::/56
    "00000000000000000000000000000000 0000 00 ff"  # next hop :: (the sender again)
    "20010db8030000000000000000000000 0000 40 01"  # 2001:db8:300::/64
)

V4 = ipaddress.IPv4Network
V6 = ipaddress.IPv6Network
RESPONSE_V2_ENTRIES = (
    Entry(V4("198.51.100.0/25"), 1, None, 7),
    Entry(V4("198.51.100.192/27"), 1),
    Entry(V4("198.51.100.128/26"), 1, ipaddress.IPv4Address("192.0.2.3")),
    Entry(V4("198.51.100.224/28"), 5),
)
ONE_ROUTE = (Entry(V4("198.51.100.0/25"), 1),)
WHOLE_V2 = (Entry(V4("0.0.0.0/0"), 16),)
WHOLE_NG = (Entry(V6("::/0"), 16),)
RESPONSE_NG_ENTRIES = (
    Entry(V6("2001:db8:100::/48"), 1, None, 9),
    Entry(V6("2001:db8:200::/56"), 1, ipaddress.IPv6Address("fe80::3")),
    Entry(V6("2001:db8:300::/64"), 1),
)
PLAIN = Auth("plain", PLAIN_PASSWORD)
MD5 = Auth("md5", MD5_PASSWORD, 1)
MD5_RFC = Auth("md5", MD5_PASSWORD, 1, auth_length=16)
FRR_RFC_ENTRIES = (Entry(V4("192.0.2.64/28"), 1), Entry(V4("198.51.100.0/25"), 1))
FRR_OLD_ENTRIES = (Entry(V4("192.0.2.48/28"), 1), Entry(V4("198.51.100.0/25"), 1))


def test_the_fixtures_are_what_an_independent_parser_reads() -> None:
    ref = dpkt.rip.RIP(RESPONSE_V2)
    assert (ref.cmd, ref.v) == (RESPONSE, 2)
    assert [(r.family, r.route_tag, r.next_hop, r.metric) for r in ref.rtes] == [
        (2, 7, 0, 1),
        (2, 0, 0, 1),
        (2, 0, 0xC0000203, 1),
        (2, 0, 0, 5),
    ]
    assert dpkt.rip.RIP(RESPONSE_PLAIN).auth.auth[:13] == PLAIN_PASSWORD
    # RFC 4822 keyed MD5: MD5 over the packet up to the trailer's header, then the
    # key zero-padded to 16 bytes; BIRD's and FRR's digests check out with the password.
    md5_packets = (REQUEST_MD5, RESPONSE_MD5, RESPONSE_MD5_NEXT, FRR_RESPONSE_RFC, FRR_RESPONSE_OLD)
    for packet in md5_packets:
        key = MD5_PASSWORD.ljust(16, b"\0")
        assert hashlib.md5(packet[:-16] + key).digest() == packet[-16:]


# -- RIPv2 ---------------------------------------------------------------------------


def test_parse_birds_whole_table_request() -> None:
    pkt = rip.parse_v2(REQUEST_V2)
    assert (pkt.command, pkt.version, pkt.auth) == (REQUEST, 2, None)
    assert pkt.entries == WHOLE_V2
    assert pkt.whole_table_request


def test_parse_birds_response_with_tag_next_hop_and_metrics() -> None:
    pkt = rip.parse_v2(RESPONSE_V2)
    assert (pkt.command, pkt.version, pkt.auth, pkt.ignored) == (RESPONSE, 2, None, 0)
    assert pkt.entries == RESPONSE_V2_ENTRIES
    assert not pkt.whole_table_request


def test_build_v2_reproduces_birds_bytes() -> None:
    assert rip.build_v2(REQUEST, WHOLE_V2) == REQUEST_V2
    assert rip.build_v2(RESPONSE, RESPONSE_V2_ENTRIES) == RESPONSE_V2
    assert rip.build_v2(RESPONSE, RESPONSE_V2_ENTRIES, Auth()) == RESPONSE_V2


def test_parse_plaintext_authentication() -> None:
    pkt = rip.parse_v2(RESPONSE_PLAIN)
    assert pkt.entries == ONE_ROUTE
    assert pkt.auth is not None
    assert pkt.auth.type == rip.AUTH_PLAIN
    assert pkt.auth.password == PLAIN_PASSWORD + b"\0\0\0"
    rip.check_auth(pkt, PLAIN)
    request = rip.parse_v2(REQUEST_PLAIN)
    assert request.whole_table_request
    rip.check_auth(request, PLAIN)


def test_build_plaintext_reproduces_birds_bytes() -> None:
    assert rip.build_v2(RESPONSE, ONE_ROUTE, PLAIN) == RESPONSE_PLAIN
    assert rip.build_v2(REQUEST, WHOLE_V2, PLAIN) == REQUEST_PLAIN


def test_parse_md5_authentication() -> None:
    pkt = rip.parse_v2(RESPONSE_MD5)
    assert pkt.entries == ONE_ROUTE  # the trailer is not an entry
    auth = pkt.auth
    assert auth is not None
    assert (auth.type, auth.key_id, auth.sequence) == (rip.AUTH_MD5, 1, 0x6B07C6CD)
    assert auth.digest == RESPONSE_MD5[-16:]
    assert auth.signed == RESPONSE_MD5[:-16]
    rip.check_auth(pkt, MD5)
    rip.check_auth(rip.parse_v2(RESPONSE_MD5_NEXT), MD5)
    request = rip.parse_v2(REQUEST_MD5)
    assert request.whole_table_request
    assert request.auth is not None and request.auth.sequence == 0
    rip.check_auth(request, MD5)


def test_build_md5_reproduces_birds_bytes() -> None:
    assert rip.build_v2(RESPONSE, ONE_ROUTE, MD5, 0x6B07C6CD) == RESPONSE_MD5
    assert rip.build_v2(RESPONSE, ONE_ROUTE, MD5, 0x6B07C6CE) == RESPONSE_MD5_NEXT
    assert rip.build_v2(REQUEST, WHOLE_V2, MD5, 0) == REQUEST_MD5


@pytest.mark.parametrize(
    ("packet", "length", "sequence", "entries"),
    [
        (FRR_RESPONSE_RFC, 16, 1, FRR_RFC_ENTRIES),
        (FRR_RESPONSE_OLD, 20, 2, FRR_OLD_ENTRIES),
        (RESPONSE_MD5, 20, 0x6B07C6CD, ONE_ROUTE),
    ],
)
def test_md5_with_either_auth_data_length_is_accepted(
    packet: bytes, length: int, sequence: int, entries: tuple[Entry, ...]
) -> None:
    pkt = rip.parse_v2(packet)
    assert pkt.entries == entries
    auth = pkt.auth
    assert auth is not None
    assert (auth.key_id, auth.sequence, auth.auth_length) == (1, sequence, length)
    # The trailer is 20 bytes whatever the field says: the whole digest is read.
    assert auth.digest == packet[-16:]
    assert auth.signed == packet[:-16]
    rip.check_auth(pkt, MD5)
    rip.check_auth(pkt, MD5_RFC)  # what we send does not restrict what we accept
    with pytest.raises(AuthError) as info:
        rip.check_auth(pkt, Auth("md5", b"wrong-key", 1))
    assert info.value.reason == "rip_auth_digest"


def test_build_md5_reproduces_frrs_bytes_in_both_lengths() -> None:
    assert rip.build_v2(RESPONSE, FRR_RFC_ENTRIES, MD5_RFC, 1) == FRR_RESPONSE_RFC
    assert rip.build_v2(RESPONSE, FRR_OLD_ENTRIES, MD5, 2) == FRR_RESPONSE_OLD
    assert MD5.auth_length == 20  # the default: what BIRD sends, and FRR unless told


def test_frrs_unauthenticated_request_is_refused_by_md5() -> None:
    pkt = rip.parse_v2(FRR_REQUEST)
    assert pkt.whole_table_request and pkt.auth is None
    with pytest.raises(AuthError) as info:
        rip.check_auth(pkt, MD5)
    assert info.value.reason == "rip_auth_missing"


@pytest.mark.parametrize(
    ("packet", "auth", "reason"),
    [
        (RESPONSE_PLAIN, Auth("plain", b"other"), "rip_auth_password"),
        (RESPONSE_PLAIN, Auth(), "rip_auth_unexpected"),
        (RESPONSE_PLAIN, MD5, "rip_auth_type"),
        (RESPONSE_MD5, PLAIN, "rip_auth_type"),
        (RESPONSE_MD5, Auth("md5", b"other", 1), "rip_auth_digest"),
        (RESPONSE_MD5, Auth("md5", MD5_PASSWORD, 2), "rip_auth_keyid"),
        (RESPONSE_MD5, Auth(), "rip_auth_unexpected"),
        (RESPONSE_V2, PLAIN, "rip_auth_missing"),
        (RESPONSE_V2, MD5, "rip_auth_missing"),
    ],
)
def test_check_auth_refuses_with_a_reason(packet: bytes, auth: Auth, reason: str) -> None:
    with pytest.raises(AuthError) as info:
        rip.check_auth(rip.parse_v2(packet), auth)
    assert info.value.reason == reason


@pytest.mark.parametrize("at", [6, 10, 20, 30, 40, 47])
def test_a_changed_byte_breaks_the_md5_digest(at: int) -> None:
    tampered = bytearray(RESPONSE_MD5)
    tampered[at] ^= 0x01
    try:
        pkt = rip.parse_v2(bytes(tampered))
    except WireError:
        return  # the length field itself was hit: refused before the digest
    with pytest.raises(AuthError) as info:
        rip.check_auth(pkt, MD5)
    assert info.value.reason in ("rip_auth_digest", "rip_auth_keyid")


def test_md5_digest_is_over_the_packet_then_the_padded_key() -> None:
    signed = RESPONSE_MD5[:-16]
    assert rip.md5_digest(signed, MD5_PASSWORD) == RESPONSE_MD5[-16:]
    assert rip.key_bytes(b"k") == b"k" + bytes(15)


def test_auth_config_is_checked() -> None:
    with pytest.raises(ValueError, match="none, plain or md5"):
        Auth("sha1", b"x")
    with pytest.raises(ValueError, match="at most 16"):
        Auth("md5", b"x" * 17)
    with pytest.raises(ValueError, match="needs a password"):
        Auth("plain")
    with pytest.raises(ValueError, match=r"0\.\.255"):
        Auth("md5", b"x", 256)
    with pytest.raises(ValueError, match="16 or 20"):
        Auth("md5", b"x", 1, auth_length=36)
    assert rip.max_entries(Auth()) == 25
    assert rip.max_entries(PLAIN) == rip.max_entries(MD5) == 24


def _v2(command: int, version: int, *entries: tuple[int, int, str, str, str, int]) -> bytes:
    raw = struct.pack("!BBH", command, version, 0)
    for afi, tag, address, mask, hop, metric in entries:
        raw += rip.ENTRY_V2.pack(
            afi,
            tag,
            ipaddress.IPv4Address(address).packed,
            ipaddress.IPv4Address(mask).packed,
            ipaddress.IPv4Address(hop).packed,
            metric,
        )
    return raw


def _route(metric: int, address: str = "198.51.100.0", mask: str = "255.255.255.128") -> bytes:
    return _v2(RESPONSE, 2, (2, 0, address, mask, "0.0.0.0", metric))


@pytest.mark.parametrize(
    ("data", "error", "reason"),
    [
        (b"", IntegrityError, "rip_short"),
        (RESPONSE_V2[:3], IntegrityError, "rip_short"),
        (RESPONSE_V2[:-1], IntegrityError, "rip_badlen"),
        (RESPONSE_V2 + b"\0", IntegrityError, "rip_badlen"),
        (RESPONSE_PLAIN[:-4], IntegrityError, "rip_badlen"),
        (b"\x02\x00" + RESPONSE_V2[2:], SanityError, "rip_badversion"),
        (b"\x02\x03" + RESPONSE_V2[2:], SanityError, "rip_badversion"),
        (b"\x03\x02" + RESPONSE_V2[2:], SanityError, "rip_badcommand"),
        (b"\x00\x02" + RESPONSE_V2[2:], SanityError, "rip_badcommand"),
        (_route(0), SanityError, "rip_badmetric"),
        (_route(17), SanityError, "rip_badmetric"),
        (_route(1, mask="255.0.255.0"), SanityError, "rip_badprefix"),
        (_route(1, address="198.51.100.1"), SanityError, "rip_badprefix"),
        (RESPONSE_MD5[:-1], IntegrityError, "rip_badauthlen"),
        (RESPONSE_MD5[:8] + b"\x00\x30" + RESPONSE_MD5[10:], IntegrityError, "rip_badauthlen"),
        (RESPONSE_MD5[:8] + b"\x00\x10" + RESPONSE_MD5[10:], IntegrityError, "rip_badauthlen"),
        (RESPONSE_MD5[:46] + b"\x00\x02" + RESPONSE_MD5[48:], IntegrityError, "rip_badtrailer"),
        # Auth Data Len neither 16 nor 20 (12: what the old parser took of FRR's 16).
        (RESPONSE_MD5[:11] + b"\x0c" + RESPONSE_MD5[12:], IntegrityError, "rip_badauthlen"),
        (FRR_RESPONSE_RFC[:11] + b"\x24" + FRR_RESPONSE_RFC[12:], IntegrityError, "rip_badauthlen"),
        # A 16 that announces the digest alone still needs the trailer's 20 bytes.
        (FRR_RESPONSE_RFC[:-4], IntegrityError, "rip_badauthlen"),
        (RESPONSE_PLAIN[:6] + b"\x00\x07" + RESPONSE_PLAIN[8:], AuthError, "rip_auth_type"),
    ],
)
def test_malformed_v2_packets_raise_with_a_reason(
    data: bytes, error: type[WireError], reason: str
) -> None:
    with pytest.raises(error) as info:
        rip.parse_v2(data)
    assert info.value.reason == reason


def test_metrics_1_to_16_are_legal_and_other_families_are_skipped() -> None:
    assert rip.parse_v2(_route(1)).entries[0].metric == 1
    assert rip.parse_v2(_route(16)).entries[0].metric == 16
    mixed = _v2(
        RESPONSE,
        2,
        (10, 0, "192.0.2.0", "0.0.0.0", "0.0.0.0", 99),  # an unknown family
        (2, 0, "198.51.100.0", "255.255.255.0", "0.0.0.0", 3),
    )
    pkt = rip.parse_v2(mixed)
    assert pkt.entries == (Entry(V4("198.51.100.0/24"), 3),)
    assert pkt.ignored == 1


def test_request_entries_carry_no_metric_check() -> None:
    # A specific request's metrics mean nothing (RFC 2453 3.9.1): 0 is fine.
    pkt = rip.parse_v2(_v2(REQUEST, 2, (2, 0, "198.51.100.0", "255.255.255.0", "0.0.0.0", 0)))
    assert pkt.entries == (Entry(V4("198.51.100.0/24"), 0),)
    assert not pkt.whole_table_request


def test_ripv1_entries_get_the_natural_mask() -> None:
    pkt = rip.parse_v2(_v2(RESPONSE, 1, (2, 9, "198.51.100.0", "0.0.0.0", "0.0.0.0", 2)))
    assert pkt.version == 1
    assert pkt.entries == (Entry(V4("198.51.100.0/24"), 2),)  # class C, no tag in v1


# -- RIPng ---------------------------------------------------------------------------


def test_parse_birds_ripng_request() -> None:
    pkt = rip.parse_ng(REQUEST_NG)
    assert (pkt.command, pkt.version) == (REQUEST, 1)
    assert pkt.entries == WHOLE_NG
    assert pkt.whole_table_request


def test_parse_birds_ripng_response_with_next_hop_entries() -> None:
    pkt = rip.parse_ng(RESPONSE_NG)
    assert (pkt.command, pkt.version, pkt.auth) == (RESPONSE, 1, None)
    assert pkt.entries == RESPONSE_NG_ENTRIES


def test_build_ng_reproduces_birds_bytes() -> None:
    assert rip.build_ng(REQUEST, WHOLE_NG) == REQUEST_NG
    assert rip.build_ng(RESPONSE, RESPONSE_NG_ENTRIES) == RESPONSE_NG


def test_ripng_global_next_hop_counts_as_the_sender() -> None:
    # RFC 2080 2.1.1: a next hop that is not link-local is taken as ::.
    raw = rip.HEADER.pack(RESPONSE, 1, 0)
    raw += rip.ENTRY_NG.pack(ipaddress.IPv6Address("2001:db8::9").packed, 0, 0, 0xFF)
    raw += rip.ENTRY_NG.pack(ipaddress.IPv6Address("2001:db8:1::").packed, 0, 64, 2)
    assert rip.parse_ng(raw).entries == (Entry(V6("2001:db8:1::/64"), 2),)


def _ng(command: int, version: int, prefix: str, plen: int, metric: int) -> bytes:
    return rip.HEADER.pack(command, version, 0) + rip.ENTRY_NG.pack(
        ipaddress.IPv6Address(prefix).packed, 0, plen, metric
    )


@pytest.mark.parametrize(
    ("data", "error", "reason"),
    [
        (b"\x02\x01", IntegrityError, "rip_short"),
        (RESPONSE_NG[:-1], IntegrityError, "rip_badlen"),
        (_ng(RESPONSE, 2, "2001:db8::", 32, 1), SanityError, "rip_badversion"),
        (_ng(RESPONSE, 0, "2001:db8::", 32, 1), SanityError, "rip_badversion"),
        (_ng(5, 1, "2001:db8::", 32, 1), SanityError, "rip_badcommand"),
        (_ng(RESPONSE, 1, "2001:db8::", 129, 1), SanityError, "rip_badprefixlen"),
        (_ng(RESPONSE, 1, "2001:db8::", 255 - 1, 1), SanityError, "rip_badprefixlen"),
        (_ng(RESPONSE, 1, "2001:db8::", 32, 0), SanityError, "rip_badmetric"),
        (_ng(RESPONSE, 1, "2001:db8::", 32, 17), SanityError, "rip_badmetric"),
        (_ng(RESPONSE, 1, "2001:db8::1", 32, 1), SanityError, "rip_badprefix"),
    ],
)
def test_malformed_ripng_packets_raise_with_a_reason(
    data: bytes, error: type[WireError], reason: str
) -> None:
    with pytest.raises(error) as info:
        rip.parse_ng(data)
    assert info.value.reason == reason


# -- round trips -----------------------------------------------------------------------

v4_entries = st.builds(
    lambda net, plen, metric, tag, hop: Entry(
        V4((net, plen), strict=False),
        metric,
        None if hop == 0 else ipaddress.IPv4Address(hop),
        tag,
    ),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
    st.integers(1, 16),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
)
v6_entries = st.builds(
    lambda net, plen, metric, tag, hop: Entry(
        V6((net, plen), strict=False),
        metric,
        None if hop is None else ipaddress.IPv6Address(0xFE80 << 112 | hop),
        tag,
    ),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
    st.integers(1, 16),
    st.integers(0, 0xFFFF),
    st.none() | st.integers(1, 2**64 - 1),
)


@given(st.lists(v4_entries, max_size=24), st.sampled_from([Auth(), PLAIN, MD5]))
def test_v2_build_then_parse_gives_the_entries_back(entries: list[Entry], auth: Auth) -> None:
    data = rip.build_v2(RESPONSE, entries, auth, 12345)
    pkt = rip.parse_v2(data)
    assert pkt.entries == tuple(entries)
    rip.check_auth(pkt, auth)
    if auth.kind == "md5":
        assert pkt.auth is not None and pkt.auth.sequence == 12345


@given(st.lists(v6_entries, max_size=25))
def test_ng_build_then_parse_gives_the_entries_back(entries: list[Entry]) -> None:
    assert rip.parse_ng(rip.build_ng(RESPONSE, entries)).entries == tuple(entries)
