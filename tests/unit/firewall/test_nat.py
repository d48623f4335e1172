"""vrouter.firewall.nat: NAT44 and NPTv6 on literal packets, checksums checked after each rewrite.

The router masquerades 192.0.2.0/24 (inside, ``int0``) behind 198.51.100.1
on ``ext0``; the server S is 203.0.113.5.  The inside web server B is
192.0.2.80, published on the outside address.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from ipaddress import IPv6Network

import pytest

from vrouter.firewall.nat import NatTable, npt_map
from vrouter.firewall.packet import PacketInfo, parse
from vrouter.firewall.ruleparse import parse_ruleset
from vrouter.firewall.rules import Ruleset, RulesetError
from vrouter.firewall.subsystem import KNOBS
from vrouter.link.offload import F_NEEDS_CSUM, GSO_NONE, VirtioHdr, complete_checksum, tag
from vrouter.wire import icmp4, ipv4, tcp, udp
from vrouter.wire import ipv6 as ip6
from vrouter.wire.checksum import checksum, ones_sum

A = bytes([192, 0, 2, 10])
A2 = bytes([192, 0, 2, 11])
B = bytes([192, 0, 2, 80])
R_IN = bytes([192, 0, 2, 1])
X = bytes([198, 51, 100, 1])
X_NEW = bytes([198, 51, 100, 7])
S = bytes([203, 0, 113, 5])
S2 = bytes([203, 0, 113, 6])
HOP = bytes([203, 0, 113, 254])
SYN, ACK, FIN = tcp.SYN, tcp.ACK, tcp.FIN

RULES = """
[[nat]]
action = "nat"
interface = "ext0"
from = "192.0.2.0/24"

[[nat]]
action = "rdr"
interface = "ext0"
proto = "tcp"
to_port = 8080
target = "192.0.2.80"
target_port = 80

[[nat]]
action = "rdr"
interface = "ext0"
proto = "udp"
to_port = "7000-7010"
target = "192.0.2.80"
target_port = 9000
"""


class Host:
    """The vnet as the translation sees it."""

    def __init__(self) -> None:
        self.addresses = {"ext0": X, "int0": R_IN}

    def address_of(self, ifname: str) -> bytes | None:
        return self.addresses.get(ifname)

    def source_toward(self, dst: bytes) -> bytes | None:
        return R_IN if dst[:3] == R_IN[:3] else self.addresses["ext0"]

    def is_local(self, address: bytes) -> bool:
        return address in self.addresses.values()


def ruleset(text: str = RULES) -> Ruleset:
    return parse_ruleset(tomllib.loads(text))


def tcp4(
    src: bytes, sport: int, dst: bytes, dport: int, flags: int = ACK, payload: bytes = b""
) -> bytearray:
    segment = tcp.build(src, dst, sport, dport, 1000, 2000, flags, 65535, payload=payload)
    return bytearray(ipv4.build(src, dst, tcp.PROTO, segment))


def udp4(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes = b"ping") -> bytearray:
    return bytearray(ipv4.build(src, dst, udp.PROTO, udp.build(src, dst, sport, dport, payload)))


def echo4(src: bytes, dst: bytes, ident: int, kind: int = icmp4.ECHO_REQUEST) -> bytearray:
    body = bytes([0, 1]) + b"abcdefgh"
    message = icmp4.IcmpMessage(kind, 0, (ident << 16) | 1, body).emit()
    return bytearray(ipv4.build(src, dst, ipv4.PROTO_ICMP, message))


class Nat:
    """A table, a ruleset and a host, driven like the hook drives them."""

    def __init__(self, text: str = RULES, room: int = 1000) -> None:
        self.table = NatTable()
        self.rules = ruleset(text)
        self.host = Host()
        self.room = room
        self.passed: tuple[bytearray, memoryview] | None = None

    def out(self, packet: bytearray, ifname: str = "ext0", now: float = 0.0) -> PacketInfo | None:
        info = parse(packet)
        # A forwarded packet is one view from the IN hook to the OUT hook.
        view = self.passed[1] if self.passed and self.passed[0] is packet else memoryview(packet)
        if not self.table.translate_out(self.host, self.rules, ifname, info, view, now, self.room):
            return None
        return info

    def into(self, packet: bytearray, ifname: str = "ext0", now: float = 0.0) -> PacketInfo | None:
        info = parse(packet)
        view = memoryview(packet)
        self.passed = (packet, view)
        if not self.table.translate_in(self.host, self.rules, ifname, info, view, now, self.room):
            return None
        return info


def ip_ok(packet: bytes | bytearray) -> bool:
    return checksum(packet[:20]) == 0


def l4_ok(packet: bytes | bytearray) -> bool:
    src, dst = bytes(packet[12:16]), bytes(packet[16:20])
    if packet[9] == tcp.PROTO:
        return tcp.verify(src, dst, bytes(packet[20:]))
    if packet[9] == udp.PROTO:
        return udp.verify(src, dst, bytes(packet[20:]))
    return checksum(packet[20:]) == 0


def ends(packet: bytes | bytearray) -> tuple[bytes, int, bytes, int]:
    info = parse(bytes(packet))
    return info.src, info.sport, info.dst, info.dport


# -- parsing ------------------------------------------------------------------------------


def test_nat_entries_parse_and_describe() -> None:
    rules = ruleset()
    assert [n.action for n in rules.nat] == ["nat", "rdr", "rdr"]
    assert rules.nat_interfaces == frozenset({"ext0"})
    assert rules.nat[0].describe() == (
        "nat on ext0 from 192.0.2.0/24 to any -> (ext0) address-dependent"
    )
    assert rules.nat[1].describe() == (
        "rdr on ext0 proto tcp from any to (ext0) port 8080 -> 192.0.2.80 port 80"
    )


@pytest.mark.parametrize(
    ("entry", "key", "reason"),
    [
        ('action = "nat"', "nat[0].interface", "missing required key 'interface'"),
        ('action = "rdr"\ninterface = "e"\nproto = "icmp"', "nat[0].proto", "rdr translates"),
        ('action = "rdr"\ninterface = "e"\nto_port = 80', "nat[0].target", "missing"),
        (
            'action = "binat"\ninterface = "e"\nfrom = "192.0.2.0/24"\naddress = "198.51.100.0/25"',
            "nat[0].address",
            "differ in length",
        ),
        (
            'action = "nptv6"\ninterface = "e"\nfrom = "2001:db8:1::/48"\naddress = "192.0.2.0/24"',
            "nat[0].address",
            "not an IPv6 prefix",
        ),
        ('action = "nat"\ninterface = "e"\nfrom = "2001:db8::/32"', "nat[0].from", "IPv4"),
        ('action = "nat"\ninterface = "e"\ntarget = "192.0.2.1"', "nat[0].target", "takes no"),
        ('action = "nat"\ninterface = "e"\nport_range = "0-10"', "nat[0].port_range", "port 0"),
        ('action = "nat"\ninterface = "e"\nfiltering = "none"', "nat[0].filtering", "not one"),
        ('action = "snat"\ninterface = "e"', "nat[0].action", "not one of"),
    ],
)
def test_bad_nat_entries_name_key_and_reason(entry: str, key: str, reason: str) -> None:
    with pytest.raises(RulesetError) as caught:
        parse_ruleset(tomllib.loads("[[nat]]\n" + entry), "vnets.red.firewall")
    problems = dict(caught.value.problems)
    assert f"vnets.red.firewall.{key}" in problems, problems
    assert reason in problems[f"vnets.red.firewall.{key}"]


# -- source NAT ------------------------------------------------------------------------------


def test_masquerade_keeps_the_port_and_both_checksums() -> None:
    nat = Nat()
    packet = tcp4(A, 40000, S, 80, SYN)
    info = nat.out(packet)
    assert info is not None and info.src == X and info.sport == 40000
    assert ends(packet) == (X, 40000, S, 80)
    assert ip_ok(packet) and l4_ok(packet)
    reply = tcp4(S, 80, X, 40000, SYN | ACK)
    info = nat.into(reply)
    assert info is not None and (info.dst, info.dport) == (A, 40000)
    assert ends(reply) == (S, 80, A, 40000)
    assert ip_ok(reply) and l4_ok(reply)
    assert nat.table.stats.created == 1 and nat.rules.nat_counters[0].states == 1


def test_two_inside_hosts_with_one_source_port_get_two_outside_ports() -> None:
    nat = Nat()
    first = udp4(A, 5353, S, 53)
    second = udp4(A2, 5353, S, 53)
    nat.out(first)
    nat.out(second)
    (_, port1, _, _), (_, port2, _, _) = ends(first), ends(second)
    assert port1 == 5353 and port2 != port1 and 1024 <= port2 <= 65535
    for port, inside in ((port1, A), (port2, A2)):
        reply = udp4(S, 53, X, port)
        nat.into(reply)
        assert ends(reply) == (S, 53, inside, 5353) and l4_ok(reply)


def test_mapping_is_endpoint_independent() -> None:
    nat = Nat()
    to_s = udp4(A2, 6000, S, 53)
    nat.out(udp4(A, 6000, S, 53))  # A takes 6000: A2's is allocated
    nat.out(to_s)
    to_s2 = udp4(A2, 6000, S2, 123)
    nat.out(to_s2)
    assert ends(to_s)[:2] == ends(to_s2)[:2] != (X, 6000)


def test_address_dependent_filtering_drops_strangers() -> None:
    nat = Nat()
    nat.out(udp4(A, 6000, S, 53))
    assert nat.into(udp4(S2, 53, X, 6000)) is None
    assert nat.table.stats.filtered == 1
    assert nat.into(udp4(S, 9999, X, 6000)) is not None  # any port of a known address


def test_endpoint_independent_filtering_lets_anyone_reach_the_mapping() -> None:
    text = '[[nat]]\naction = "nat"\ninterface = "ext0"\nfiltering = "endpoint-independent"'
    nat = Nat(text)
    nat.out(udp4(A, 6000, S, 53))
    stranger = udp4(S2, 4444, X, 6000)
    assert nat.into(stranger) is not None
    assert ends(stranger) == (S2, 4444, A, 6000)


def test_port_range_and_exhaustion() -> None:
    nat = Nat('[[nat]]\naction = "nat"\ninterface = "ext0"\nport_range = "5000-5001"')
    ports = []
    for host in (A, A2):
        packet = udp4(host, 6000, S, 53)
        assert nat.out(packet) is not None
        ports.append(ends(packet)[1])
    assert sorted(ports) == [5000, 5001]
    assert nat.out(udp4(B, 6000, S, 53)) is None
    assert nat.table.stats.exhausted == 1
    nat.table.expire(1000.0)
    assert nat.out(udp4(B, 6000, S, 53), now=1000.0) is not None


def test_source_port_in_range_is_preserved() -> None:
    nat = Nat('[[nat]]\naction = "nat"\ninterface = "ext0"\nport_range = "5000-6000"')
    packet = udp4(A, 5500, S, 53)
    nat.out(packet)
    assert ends(packet)[1] == 5500


def test_icmp_echo_is_translated_by_id() -> None:
    nat = Nat()
    first = echo4(A, S, 77)
    second = echo4(A2, S, 77)
    nat.out(first)
    nat.out(second)
    assert ends(first) == (X, 77, S, 77)
    ident = ends(second)[1]
    assert ident != 77 and l4_ok(second) and ip_ok(second)
    reply = echo4(S, X, ident, icmp4.ECHO_REPLY)
    info = nat.into(reply)
    assert info is not None and ends(reply) == (S, 77, A2, 77) and l4_ok(reply)
    # An echo request from outside to a mapped id is no reply: untouched.
    request = echo4(S, X, ident)
    nat.into(request)
    assert ends(request)[2] == X


def test_vnet_own_traffic_and_other_interfaces_are_not_translated() -> None:
    nat = Nat()
    own = udp4(X, 6000, S, 53)
    nat.out(own)
    inside = udp4(S, 53, A, 6000)
    nat.out(inside, "int0")
    assert ends(own)[0] == X and ends(inside)[0] == S and len(nat.table) == 0


def test_udp_without_checksum_stays_without() -> None:
    nat = Nat()
    packet = udp4(A, 6000, S, 53)
    packet[26:28] = b"\x00\x00"
    nat.out(packet)
    assert packet[26:28] == b"\x00\x00" and ip_ok(packet)


def test_partial_checksum_frame_gets_only_the_address_change() -> None:
    nat = Nat()
    nat.out(udp4(A, 40000, S, 80))  # A:40000 udp: the TCP port stays 40000 too
    segment = tcp.build(A2, S, 40000, 80, 1, 0, ACK, 512, payload=b"x" * 301, partial=True)
    frame = bytes(14) + ipv4.build(A2, S, tcp.PROTO, segment)
    vhdr = VirtioHdr(F_NEEDS_CSUM, GSO_NONE, 0, 0, 14 + 20, 16)
    buf = tag(frame, vhdr)
    packet = memoryview(buf)[14:]
    info = parse(packet)
    assert nat.table.translate_out(nat.host, nat.rules, "ext0", info, packet, 0.0, 100)
    assert (info.src, info.sport) == (X, 40000)
    assert ip_ok(packet)
    done = complete_checksum(buf, vhdr)[14:]
    assert tcp.verify(X, S, bytes(done[20:]))


def test_partial_checksum_with_a_new_port() -> None:
    nat = Nat()
    nat.out(tcp4(A, 40000, S, 80))
    segment = tcp.build(A2, S, 40000, 80, 1, 0, ACK, 512, payload=b"y" * 1000, partial=True)
    buf = tag(bytes(14) + ipv4.build(A2, S, tcp.PROTO, segment), VirtioHdr(1, 0, 0, 0, 34, 16))
    packet = memoryview(buf)[14:]
    nat.table.translate_out(nat.host, nat.rules, "ext0", parse(packet), packet, 0.0, 100)
    info = parse(packet)
    assert info.src == X and info.sport != 40000
    assert tcp.verify(X, S, bytes(complete_checksum(buf, buf.vhdr)[34:]))


def test_masquerade_follows_a_new_interface_address() -> None:
    nat = Nat()
    nat.out(udp4(A, 6000, S, 53))
    nat.host.addresses["ext0"] = X_NEW
    again = udp4(A, 6000, S, 53)
    nat.out(again, now=1.0)
    assert ends(again)[0] == X_NEW and nat.table.stats.moved == 1 and len(nat.table) == 1
    old_reply = udp4(S, 53, X, 6000)
    nat.into(old_reply)
    assert ends(old_reply)[2] == X  # the old mapping is gone


def test_fixed_address_does_not_follow_the_interface() -> None:
    nat = Nat('[[nat]]\naction = "nat"\ninterface = "ext0"\naddress = "198.51.100.9"')
    packet = udp4(A, 6000, S, 53)
    nat.out(packet)
    assert ends(packet)[0] == bytes([198, 51, 100, 9])


def test_no_room_left_drops_new_mappings() -> None:
    nat = Nat(room=0)
    assert nat.out(udp4(A, 6000, S, 53)) is None
    assert nat.table.stats.limit == 1


# -- timeouts -------------------------------------------------------------------------------


def test_udp_mapping_lives_300_s_after_the_last_packet() -> None:
    nat = Nat()
    nat.out(udp4(A, 6000, S, 53), now=0.0)
    nat.out(udp4(A, 6000, S, 53), now=100.0)
    assert nat.table.expire(399.0) == 0
    reply = udp4(S, 53, X, 6000)
    assert nat.into(reply, now=399.0) is not None and ends(reply)[2] == A  # refreshes: 699
    assert nat.table.expire(698.0) == 0
    assert nat.table.expire(700.0) == 1 and len(nat.table) == 0


def test_tcp_mapping_is_transitory_until_both_sides_spoke_then_2h4m() -> None:
    nat = Nat()
    nat.out(tcp4(A, 40000, S, 80, SYN), now=0.0)
    (binding,) = nat.table.bindings()
    assert binding.expires == 240.0
    nat.into(tcp4(S, 80, X, 40000, SYN | ACK), now=1.0)
    assert binding.expires == 1.0 + 7440.0
    nat.out(tcp4(A, 40000, S, 80, FIN | ACK), now=2.0)
    assert binding.expires == 2.0 + 240.0


def test_icmp_mapping_lives_60_s() -> None:
    nat = Nat()
    nat.out(echo4(A, S, 9), now=5.0)
    assert nat.table.bindings()[0].expires == 65.0


def test_an_expired_mapping_is_not_used_even_before_the_sweep() -> None:
    nat = Nat()
    nat.out(udp4(A, 6000, S, 53), now=0.0)
    late = udp4(S, 53, X, 6000)
    nat.into(late, now=301.0)
    assert ends(late)[2] == X and len(nat.table) == 0


# -- rdr, hairpin, binat ---------------------------------------------------------------


def test_port_forward_and_its_replies() -> None:
    nat = Nat()
    syn = tcp4(S, 5555, X, 8080, SYN)
    info = nat.into(syn)
    assert info is not None and (info.dst, info.dport) == (B, 80)
    assert ends(syn) == (S, 5555, B, 80) and ip_ok(syn) and l4_ok(syn)
    reply = tcp4(B, 80, S, 5555, SYN | ACK)
    nat.out(reply)
    assert ends(reply) == (X, 8080, S, 5555) and l4_ok(reply)
    other = tcp4(B, 80, S2, 5555)  # B talking to someone else: not this flow
    nat.out(other, "int0")
    assert ends(other)[0] == B


def test_port_range_forward_shifts_ports() -> None:
    nat = Nat()
    packet = udp4(S, 1234, X, 7005)
    nat.into(packet)
    assert ends(packet) == (S, 1234, B, 9005)
    outside = udp4(S, 1234, X, 7011)
    nat.into(outside)
    assert ends(outside)[2:] == (X, 7011)


def test_hairpin_rewrites_both_ends_so_the_answer_comes_back() -> None:
    nat = Nat()
    syn = tcp4(A, 41000, X, 8080, SYN)
    nat.into(syn, "int0")  # dst first: the filter sees A -> B:80
    assert ends(syn) == (A, 41000, B, 80)
    nat.out(syn, "int0")  # then the source, on the way back out
    hairpin_src, hairpin_port, _, _ = ends(syn)
    assert hairpin_src == R_IN and l4_ok(syn)
    answer = tcp4(B, 80, R_IN, hairpin_port, SYN | ACK)
    nat.into(answer, "int0")
    assert ends(answer) == (B, 80, A, 41000)
    nat.out(answer, "int0")
    assert ends(answer) == (X, 8080, A, 41000) and l4_ok(answer) and ip_ok(answer)
    assert [r.hairpin for r in nat.table.redirects()] == [R_IN]


def test_nat_hairpin_meets_each_other_at_the_outside_mappings() -> None:
    """RFC 4787 REQ-9: two inside hosts reach each other's outside mappings, and
    each sees the other's outside endpoint as its source (address-dependent
    filtering lets a packet through once the receiver sent to the outside address)."""
    nat = Nat()
    nat.out(udp4(A, 6000, S, 3478))  # A -> X:6000
    nat.out(udp4(B, 7000, S, 3478))  # B -> X:7000
    first = udp4(A, 6000, X, 7000)
    assert nat.into(first, "int0") is None  # B never sent to X: filtered
    assert nat.table.stats.filtered == 1
    punch = udp4(B, 7000, X, 6000)
    info = nat.into(punch, "int0")  # A has sent to X: it passes
    # The filter sees the sender's own address and the receiver's ...
    assert info is not None and (info.src, info.sport, info.dst, info.dport) == (B, 7000, A, 6000)
    nat.out(punch, "int0")  # ... and it leaves from B's outside mapping.
    assert ends(punch) == (X, 7000, A, 6000) and ip_ok(punch) and l4_ok(punch)
    again = udp4(A, 6000, X, 7000)
    assert nat.into(again, "int0") is not None
    nat.out(again, "int0")
    assert ends(again) == (X, 6000, B, 7000) and l4_ok(again)
    direct = udp4(A, 6000, B, 7000)  # A to B's inside address: not hairpinned
    nat.out(direct, "int0")
    assert ends(direct) == (A, 6000, B, 7000)
    assert nat.table.stats.hairpinned == 2
    assert len(nat.table.bindings()) == 2  # the mappings the outside knows, no new ones


def test_nat_hairpin_of_tcp_to_an_endpoint_independent_mapping() -> None:
    text = '[[nat]]\naction = "nat"\ninterface = "ext0"\nfiltering = "endpoint-independent"'
    nat = Nat(text)
    nat.out(tcp4(B, 8443, S, 443, SYN))  # B's mapping X:8443
    syn = tcp4(A, 41000, X, 8443, SYN)
    assert nat.into(syn, "int0") is not None
    nat.out(syn, "int0")
    src, sport, dst, dport = ends(syn)
    assert (src, dst, dport) == (X, B, 8443) and l4_ok(syn) and ip_ok(syn)
    answer = tcp4(B, 8443, X, sport, SYN | ACK)
    assert nat.into(answer, "int0") is not None
    nat.out(answer, "int0")
    assert ends(answer) == (X, 8443, A, 41000) and l4_ok(answer)
    assert not nat.table.touches(nat.rules, "int0")  # nothing hairpinned is on its way


def test_binat_maps_one_to_one_both_ways() -> None:
    text = (
        '[[nat]]\naction = "binat"\ninterface = "ext0"\n'
        'from = "192.0.2.64/26"\naddress = "198.51.100.64/26"'
    )
    nat = Nat(text)
    inside = bytes([192, 0, 2, 70])
    packet = udp4(inside, 1000, S, 53)
    nat.out(packet)
    assert ends(packet) == (bytes([198, 51, 100, 70]), 1000, S, 53) and l4_ok(packet)
    back = udp4(S, 53, bytes([198, 51, 100, 70]), 1000)
    nat.into(back)
    assert ends(back)[2] == inside and l4_ok(back)
    assert len(nat.table) == 0


# -- ICMP errors ------------------------------------------------------------------------------


def _error_about(sent: bytes, to: bytes, kind: int = icmp4.TIME_EXCEEDED) -> bytearray:
    message = icmp4.error(kind, 0, sent[:28])
    return bytearray(ipv4.build(HOP, to, ipv4.PROTO_ICMP, message))


@pytest.mark.parametrize("make", [udp4, lambda a, p, b, q: tcp4(a, p, b, q, SYN)])
def test_time_exceeded_about_a_masqueraded_packet_reaches_the_inside_host(
    make: Callable[[bytes, int, bytes, int], bytearray],
) -> None:
    nat = Nat()
    nat.out(udp4(A, 33434, S, 53))  # the port is taken: A2 gets another
    probe = make(A2, 33434, S, 33434)
    nat.out(probe)
    error = _error_about(bytes(probe), X)
    info = nat.into(error)
    assert info is not None and info.dst == A2
    assert bytes(error[16:20]) == A2 and ip_ok(error)
    assert checksum(error[20:]) == 0  # the ICMP checksum
    inner = error[28:]
    assert bytes(inner[12:16]) == A2 and checksum(inner[:20]) == 0
    assert int.from_bytes(inner[20:22], "big") == 33434
    assert nat.table.stats.errors == 1


def test_time_exceeded_about_a_ping_carries_the_inside_id() -> None:
    nat = Nat()
    nat.out(echo4(A, S, 5))
    probe = echo4(A2, S, 5)
    nat.out(probe)
    error = _error_about(bytes(probe), X)
    nat.into(error)
    inner = error[28:]
    assert bytes(error[16:20]) == A2 and int.from_bytes(inner[24:26], "big") == 5
    assert checksum(error[20:]) == 0 and checksum(inner[:20]) == 0


def test_needfrag_from_the_vnet_about_a_forwarded_packet_shows_the_public_end() -> None:
    nat = Nat()
    syn = tcp4(S, 5555, X, 8080, SYN)
    nat.into(syn)  # now S -> B:80; the vnet cannot forward it and answers S
    message = icmp4.error(icmp4.DEST_UNREACH, icmp4.UNREACH_NEEDFRAG, bytes(syn[:28]), 1280)
    error = bytearray(ipv4.build(X, S, ipv4.PROTO_ICMP, message))
    nat.out(error)
    inner = error[28:]
    assert bytes(inner[16:20]) == X and int.from_bytes(inner[22:24], "big") == 8080
    assert checksum(error[20:]) == 0 and ip_ok(error) and checksum(inner[:20]) == 0


def test_an_error_from_the_server_leaves_with_the_public_address() -> None:
    nat = Nat()
    packet = udp4(S, 1234, X, 7000)
    nat.into(packet)
    unreachable = icmp4.error(icmp4.DEST_UNREACH, icmp4.UNREACH_PORT, bytes(packet))
    error = bytearray(ipv4.build(B, S, ipv4.PROTO_ICMP, unreachable))
    nat.out(error)
    assert bytes(error[12:16]) == X and ip_ok(error) and checksum(error[20:]) == 0
    inner = error[28:]
    assert bytes(inner[16:20]) == X and int.from_bytes(inner[22:24], "big") == 7000
    assert udp.verify(S, X, bytes(inner[20:]))  # the whole datagram was quoted


def test_unrelated_errors_are_left_alone() -> None:
    nat = Nat()
    error = _error_about(bytes(udp4(S2, 1, S, 2)), X)
    before = bytes(error)
    nat.into(error)
    assert bytes(error) == before


# -- NPTv6 ------------------------------------------------------------------------------------


def test_nptv6_rfc6296_example_is_checksum_neutral() -> None:
    inside = IPv6Network("fd01:203:405::/48")
    outside = IPv6Network("2001:db8:1::/48")
    address = bytes.fromhex("fd010203040500010000000000001234")
    mapped = npt_map(inside, outside, address, outward=True)
    assert mapped == bytes.fromhex("20010db80001d5500000000000001234")  # RFC 6296 appendix B
    assert ones_sum(mapped) == ones_sum(address)
    assert npt_map(inside, outside, mapped, outward=False) == address


@pytest.mark.parametrize("length", [48, 56, 64])
def test_nptv6_round_trips_and_keeps_the_sum(length: int) -> None:
    inside = IPv6Network(f"fd00:1234:5678::/{length}")
    outside = IPv6Network(f"2001:db8:ab00::/{length}")
    for tail in (0x1, 0xFFFF_0000_0000_0002, 0xDEAD_BEEF_0000_FFFF):
        address = (int(inside.network_address) | tail).to_bytes(16, "big")
        mapped = npt_map(inside, outside, address, outward=True)
        assert mapped is not None and ones_sum(mapped) == ones_sum(address)
        assert int.from_bytes(mapped, "big") >> (128 - length) == int(outside.network_address) >> (
            128 - length
        )
        assert npt_map(inside, outside, mapped, outward=False) == address


def test_nptv6_refuses_an_all_ones_subnet_word() -> None:
    nat = Nat(
        '[[nat]]\naction = "nptv6"\ninterface = "ext0"\n'
        'from = "fd00:1::/48"\naddress = "2001:db8:5::/48"'
    )
    good = bytearray(ip6.build(bytes.fromhex("fd000001000000070000000000000002"), S * 4, 59, b""))
    bad = bytearray(ip6.build(bytes.fromhex("fd0000010000ffff0000000000000002"), S * 4, 59, b""))
    assert nat.out(good) is not None and bytes(good[8:14]) == bytes.fromhex("20010db80005")
    assert ones_sum(good[8:24]) == ones_sum(bytes.fromhex("fd000001000000070000000000000002"))
    assert nat.out(bad) is None and nat.table.stats.untranslatable == 1


def test_nat_timeouts_are_sysctls_with_the_rfc_minimums() -> None:
    knobs = {k.name: k for k in KNOBS if k.name.startswith("net.pf.nat.timeout.")}
    assert {name: k.minimum for name, k in knobs.items()} == {
        "net.pf.nat.timeout.udp": 120,
        "net.pf.nat.timeout.tcp_established": 7440,
        "net.pf.nat.timeout.tcp_transitory": 240,
        "net.pf.nat.timeout.icmp": 60,
    }


def _fragments(packet: bytes, ident: int) -> list[bytearray]:
    """Cut an IPv4 packet into a first fragment of 24 payload bytes and the rest."""
    payload = packet[20:]
    pieces = []
    for offset, chunk, more in ((0, payload[:24], True), (24, payload[24:], False)):
        header = bytearray(packet[:20])
        header[2:4] = (20 + len(chunk)).to_bytes(2, "big")
        header[4:6] = ident.to_bytes(2, "big")
        header[6:8] = ((0x2000 if more else 0) | offset // 8).to_bytes(2, "big")
        header[10:12] = b"\x00\x00"
        header[10:12] = checksum(header).to_bytes(2, "big")
        pieces.append(header + chunk)
    return pieces


def test_later_fragments_follow_their_first_fragment() -> None:
    nat = Nat()
    nat.out(udp4(A, 6000, S, 53))  # A:6000 keeps 6000: A2 gets another port
    first, rest = _fragments(bytes(udp4(A2, 6000, S, 53, b"z" * 100)), 4242)
    nat.out(first)
    nat.out(rest)
    port = ends(first)[1]
    assert port != 6000
    assert bytes(first[12:16]) == bytes(rest[12:16]) == X
    assert ip_ok(first) and ip_ok(rest)
    whole = first[:20] + first[20:] + rest[20:]
    whole[2:4] = len(whole).to_bytes(2, "big")
    assert udp.verify(X, S, bytes(whole[20:]))  # the reassembled datagram's checksum
    back_first, back_rest = _fragments(bytes(udp4(S, 53, X, port, b"r" * 100)), 99)
    nat.into(back_rest)  # before its first: passes as it is
    assert bytes(back_rest[16:20]) == X
    nat.into(back_first)
    nat.into(back_rest)
    assert bytes(back_first[16:20]) == bytes(back_rest[16:20]) == A2 and ip_ok(back_rest)


def test_a_full_range_is_not_scanned_again_until_a_port_is_freed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nat = Nat('[[nat]]\naction = "nat"\ninterface = "ext0"\nport_range = "5000-5001"')
    assert nat.out(udp4(A, 6000, S, 53)) is not None
    assert nat.out(udp4(A2, 6000, S, 53)) is not None
    from vrouter.firewall.nat import NatTable

    probes = []
    free = NatTable._free

    def counted(table: NatTable, *key: object) -> bool:
        probes.append(key)
        return free(table, *key)  # type: ignore[arg-type]

    monkeypatch.setattr(NatTable, "_free", counted)
    assert nat.out(udp4(B, 6000, S, 53)) is None  # the one scan that finds it full
    scanned = len(probes)
    for port in range(7000, 7050):
        assert nat.out(udp4(B, port, S, 53)) is None
    assert len(probes) == scanned, "a full range costs no scan per packet"
    assert nat.table.stats.exhausted == 51
    nat.table.expire(1000.0)  # ports freed: the range is scanned again
    assert nat.out(udp4(B, 6000, S, 53), now=1000.0) is not None


def test_a_mapping_remembers_a_bounded_number_of_peers() -> None:
    from vrouter.firewall.nat import REMOTES_MAX

    nat = Nat()
    for k in range(REMOTES_MAX + 10):
        peer = bytes([198, 18, k >> 8, k & 0xFF])
        assert nat.out(udp4(A, 6000, peer, 53)) is not None
    binding = next(iter(nat.table._by_inside.values()))
    assert len(binding.remotes) == REMOTES_MAX
    assert nat.table.stats.remotes_forgotten == 10
    assert nat.into(udp4(bytes([198, 18, 0, 0]), 53, X, 6000)) is None, "the oldest forgotten"
    last = REMOTES_MAX + 9
    assert nat.into(udp4(bytes([198, 18, last >> 8, last & 0xFF]), 53, X, 6000)) is not None
