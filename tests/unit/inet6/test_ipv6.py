"""Tests for vrouter.inet6.ipv6 and the ICMPv6 errors it sends: input, forwarding, scope,
extension headers, reassembly, error policy.

The dual-stack scenario, like the IPv4 one: two router vnets joined by an
epair, a station on each side, interfaces built as vrouterd builds them::

    h1 2001:db8:1::10 --- eth0 [red] ep0 ====== ep0 [blue] eth0 --- h2 2001:db8:2::10
       192.0.2.10   2001:db8:1::1/64  2001:db8:ff::1/64  2001:db8:ff::2/64  2001:db8:2::1/64
                    192.0.2.1/24      198.51.100.1/24    198.51.100.2/24    203.0.113.1/24

red routes 2001:db8:2::/64 via blue (nothing else: 2001:db8:3::/64 has no
route); blue routes 2001:db8:1::/64 via red.  Stations answer Neighbor
Solicitations (and ARP), so ``lab6.settle()`` carries a packet to its end.
Host packets are built with dpkt and struct; what the stack sends is decoded
with dpkt and every ICMPv6 checksum recomputed over the pseudo-header here.
"""

from __future__ import annotations

import inspect
import re
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from types import ModuleType

import dpkt
import pytest

from vrouter.inet6 import fragment, ipv6, nd
from vrouter.inet6.state import Ip6Stats
from vrouter.mirror import punt
from vrouter.mirror.state import state_of
from vrouter.route import state as route_state
from vrouter.route.fib import BLACKHOLE, REJECT
from vrouter.wire import ipv6 as wire_ipv6

ETH_IP6 = dpkt.ethernet.ETH_TYPE_IP6
NH_HOP, NH_TCP, NH_UDP, NH_ROUTING, NH_FRAG, NH_ICMP6, NH_NONE, NH_DST = (
    0, 6, 17, 43, 44, 58, 59, 60,
)  # fmt: skip
ECHO_REQUEST, ECHO_REPLY = 128, 129
UNREACH, TOOBIG, TIMEX, PARAMPROB = 1, 2, 3, 4
ALL_NODES = IPv6Address("ff02::1").packed


def a6(text: str) -> bytes:
    return IPv6Address(text).packed


def pseudo_sum(src: bytes, dst: bytes, proto: int, data: bytes) -> int:
    return dpkt.in_cksum(src + dst + struct.pack("!I3xB", len(data), proto) + data)


def icmp6_msg(type_: int, code: int, body: bytes, src: bytes, dst: bytes) -> bytes:
    raw = bytes([type_, code, 0, 0]) + body
    return raw[:2] + struct.pack("!H", pseudo_sum(src, dst, NH_ICMP6, raw)) + raw[4:]


def echo_body(ident: int, seq: int, payload: bytes) -> bytes:
    return struct.pack("!HH", ident, seq) + payload


def options_header(nh: int, options: bytes) -> bytes:
    """Return a Hop-by-Hop or Destination Options header holding ``options``, PadN-padded."""
    pad = -(2 + len(options)) % 8
    if pad == 1:
        options += b"\x00"
    elif pad:
        options += bytes([1, pad - 2]) + bytes(pad - 2)
    return bytes([nh, (2 + len(options)) // 8 - 1]) + options


def routing_header(nh: int, type_: int, segments_left: int, addresses: list[bytes]) -> bytes:
    return bytes([nh, 2 * len(addresses), type_, segments_left]) + bytes(4) + b"".join(addresses)


def fragment_header(nh: int, offset: int, more: bool, ident: int) -> bytes:
    return struct.pack("!BBHI", nh, 0, offset | int(more), ident)


@dataclass
class Icmp6:
    """An ICMPv6 message the stack sent to a station, decoded (checksum verified)."""

    eth: dpkt.ethernet.Ethernet
    ip: dpkt.ip6.IP6
    raw_ip: bytes
    type: int
    code: int
    rest: int
    body: bytes
    """After the 8-byte header: the quoted packet of an error, the data of an echo."""


def ip6_frames(host) -> list[tuple[dpkt.ethernet.Ethernet, bytes]]:
    """Return (and forget) the non-ND IPv6 frames sent to ``host`` with their IP bytes."""
    out = []
    for raw in host.take_raw():
        eth = dpkt.ethernet.Ethernet(raw)
        if eth.type != ETH_IP6:
            continue
        if eth.data.nxt == NH_ICMP6 and raw[54] in (133, 134, 135, 136, 137):
            continue
        assert eth.dst == host.mac and eth.src == host.ifp.mac
        plen = struct.unpack("!H", raw[18:20])[0]
        assert len(raw) == 14 + 40 + plen
        out.append((eth, raw[14:]))
    return out


def icmp6_sent(host) -> list[Icmp6]:
    out = []
    for eth, raw_ip in ip6_frames(host):
        packet = eth.data
        assert packet.nxt == NH_ICMP6, f"not ICMPv6: {packet!r}"
        message = raw_ip[40:]
        assert pseudo_sum(packet.src, packet.dst, NH_ICMP6, message) == 0, "bad checksum"
        assert isinstance(packet.data, dpkt.icmp6.ICMP6)
        type_, code, _, rest = struct.unpack("!BBHI", message[:8])
        out.append(Icmp6(eth, packet, raw_ip, type_, code, rest, message[8:]))
    return out


class Scenario:
    def __init__(self, lab6) -> None:
        self.lab = lab6
        self.red = lab6.vnet("red")
        self.blue = lab6.vnet("blue")
        self.h1 = lab6.host6(
            self.red, "eth0", ("192.0.2.1/24", "2001:db8:1::1/64"), "2001:db8:1::10", "192.0.2.10"
        )
        self.h2 = lab6.host6(
            self.blue,
            "eth0",
            ("203.0.113.1/24", "2001:db8:2::1/64"),
            "2001:db8:2::10",
            "203.0.113.10",
        )
        self.epair = lab6.epair6(
            self.red,
            "ep0",
            ("198.51.100.1/24", "2001:db8:ff::1/64"),
            self.blue,
            "ep0",
            ("198.51.100.2/24", "2001:db8:ff::2/64"),
        )
        lab6.finish_dad()
        route_state.add_static(
            self.red, IPv6Network("2001:db8:2::/64"), via=IPv6Address("2001:db8:ff::2")
        )
        route_state.add_static(
            self.blue, IPv6Network("2001:db8:1::/64"), via=IPv6Address("2001:db8:ff::1")
        )
        route_state.add_static(
            self.red, IPv4Network("203.0.113.0/24"), via=IPv4Address("198.51.100.2")
        )
        route_state.add_static(
            self.blue, IPv4Network("192.0.2.0/24"), via=IPv4Address("198.51.100.1")
        )
        # Warm the neighbour caches so tests see only their own packets.
        self.h1.learn_router6(lab6.now)
        self.h2.learn_router6(lab6.now)
        self.send(self.h1, self.h1.udp6(self.h2.ip6, payload=b"warm-up"))
        assert len(self.h2.take_ip6()) == 1
        self.send(self.h2, self.h2.udp6(self.h1.ip6, payload=b"warm-up"))
        assert len(self.h1.take_ip6()) == 1
        self.h1.take()
        self.h2.take()
        # ... and start the counters afresh (the set-up's DAD probes cross the epair).
        for vnet in (self.red, self.blue):
            vnet.inet6.stats = type(vnet.inet6.stats)()
            vnet.inet6.icmp = type(vnet.inet6.icmp)()
            for ifp in vnet.link.interfaces.values():
                ifp.counters.rx_drops.clear()
                ifp.counters.tx_drops.clear()

    def send(self, host, frame: bytes) -> None:
        host.send(frame, self.lab.now)
        self.lab.settle()

    def errors(self, host) -> list[Icmp6]:
        out = icmp6_sent(host)
        assert all(m.type < 128 for m in out), [m.type for m in out]
        return out


@pytest.fixture
def sc(lab6) -> Scenario:
    return Scenario(lab6)


def drops(ifp) -> dict[str, int]:
    return dict(ifp.counters.rx_drops)


def local_packet(sc: Scenario, first_nh: int, chain: bytes, upper: bytes, **kw) -> bytes:
    """Return a frame from h1 to red's eth0 address: ``chain`` (extension headers) + ``upper``."""
    dst = kw.pop("dst", sc.h1.router6)
    return sc.h1.frame6(sc.h1.packet6(dst, first_nh, chain + upper, **kw))


def echo_request(sc: Scenario, dst: bytes, payload: bytes = b"x" * 8) -> bytes:
    return icmp6_msg(ECHO_REQUEST, 0, echo_body(1, 1, payload), sc.h1.ip6, dst)


# --- local delivery -----------------------------------------------------------------------


def test_echo_request_to_the_router_global_address_gets_a_reply(sc: Scenario) -> None:
    payload = bytes(range(56))
    sc.send(sc.h1, sc.h1.ping6(sc.h1.router6, ident=0xBEEF, seq=7, payload=payload))
    [m] = icmp6_sent(sc.h1)
    assert m.ip.src == a6("2001:db8:1::1") and m.ip.dst == sc.h1.ip6
    assert m.ip.hlim == 64 and m.ip.plen == len(m.raw_ip) - 40
    assert (m.type, m.code) == (ECHO_REPLY, 0)
    echo = m.ip.data.data  # dpkt's view
    assert isinstance(echo, dpkt.icmp6.ICMP6.Echo)
    assert (echo.id, echo.seq, echo.data) == (0xBEEF, 7, payload)
    stat = sc.red.inet6.icmp
    assert (stat.in_echo, stat.out_echo_reply) == (1, 1)


def test_echo_request_to_the_router_link_local_address_gets_a_reply(sc: Scenario) -> None:
    h1 = sc.h1
    sc.send(h1, h1.ping6(h1.router_lla, src=h1.lla, ident=9, seq=3, payload=b"ll"))
    [m] = icmp6_sent(h1)
    assert m.ip.src == h1.router_lla and m.ip.dst == h1.lla
    assert m.type == ECHO_REPLY and m.body == b"ll"
    assert m.rest == (9 << 16) | 3


def test_echo_to_a_link_local_address_of_another_interface_is_not_ours(sc: Scenario) -> None:
    ep0_lla = next(a.ip.packed for a in sc.epair.a.addresses6 if a.is_link_local)
    sc.send(sc.h1, sc.h1.ping6(ep0_lla, src=sc.h1.lla))
    assert icmp6_sent(sc.h1) == []
    assert sc.red.inet6.stats.badscope == 1


def test_echo_to_red_epair_address_is_answered_from_that_address(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.ping6("2001:db8:ff::1"))
    [m] = icmp6_sent(sc.h1)
    assert m.type == ECHO_REPLY and m.ip.src == a6("2001:db8:ff::1")
    assert sc.blue.inet6.icmp.in_echo == 0


def test_echo_to_the_far_router_comes_back_across_both_vnets(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.ping6("2001:db8:2::1", payload=b"far"))
    [m] = icmp6_sent(sc.h1)
    assert m.ip.src == a6("2001:db8:2::1") and m.ip.dst == sc.h1.ip6
    assert m.ip.hlim == 63  # blue sends 64, red forwards
    assert m.type == ECHO_REPLY and m.body == b"far"
    assert sc.blue.inet6.icmp.out_echo_reply == 1
    assert sc.red.inet6.icmp.out_echo_reply == 0


def test_echo_to_all_nodes_is_answered_from_a_unicast_address(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.ping6(ALL_NODES, dst_mac=bytes.fromhex("333300000001")))
    [m] = icmp6_sent(sc.h1)
    assert m.type == ECHO_REPLY
    assert m.ip.src == sc.h1.router6  # RFC 4443 4.2: a unicast address of the interface
    assert sc.blue.inet6.icmp.in_echo == 0  # multicast is not forwarded


def test_echo_with_a_bad_checksum_is_not_answered(sc: Scenario) -> None:
    frame = bytearray(sc.h1.ping6(sc.h1.router6))
    frame[14 + 40 + 2] ^= 0xFF
    sc.send(sc.h1, bytes(frame))
    assert icmp6_sent(sc.h1) == []
    assert sc.red.inet6.icmp.in_errors == 1
    assert drops(sc.h1.ifp) == {"icmp6_badsum": 1}


def test_udp_to_the_router_gets_port_unreachable(sc: Scenario) -> None:
    original = sc.h1.udp6(sc.h1.router6, sport=40000, dport=33434, payload=b"anyone?")
    sc.send(sc.h1, original)
    [m] = sc.errors(sc.h1)
    assert m.ip.src == sc.h1.router6 and m.ip.dst == sc.h1.ip6
    assert (m.type, m.code, m.rest) == (UNREACH, 4, 0)
    assert m.body == original[14:]
    assert isinstance(m.ip.data.data, dpkt.icmp6.ICMP6.Unreach)
    assert sc.h1.ifp.counters.rx_drops["udp_noport"] == 1
    assert sc.red.inet6.icmp.out_errors == 1


def test_udp_to_all_nodes_gets_no_port_unreachable(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.udp6(ALL_NODES, dst_mac=bytes.fromhex("333300000001")))
    assert icmp6_sent(sc.h1) == []
    assert sc.h1.ifp.counters.rx_drops["udp_noport"] == 1
    assert sc.red.inet6.icmp.out_errors == 0


def test_udp_with_a_bad_checksum_is_dropped_silently(sc: Scenario) -> None:
    frame = bytearray(sc.h1.udp6(sc.h1.router6))
    frame[14 + 40 + 6] ^= 0x01
    sc.send(sc.h1, bytes(frame))
    assert icmp6_sent(sc.h1) == []
    assert drops(sc.h1.ifp) == {"udp_badsum": 1}


def _tcp(sc: Scenario, flags: int, seq: int = 1000, ack: int = 0, data: bytes = b"") -> bytes:
    segment = dpkt.tcp.TCP(
        sport=40000, dport=80, seq=seq, ack=ack, flags=flags, win=65535, off=5, data=data
    )
    raw = bytearray(bytes(segment))
    raw[16:18] = b"\x00\x00"
    raw[16:18] = struct.pack("!H", pseudo_sum(sc.h1.ip6, sc.h1.router6, NH_TCP, bytes(raw)))
    return sc.h1.frame6(sc.h1.packet6(sc.h1.router6, NH_TCP, bytes(raw)))


def test_tcp_syn_to_the_router_gets_a_reset(sc: Scenario) -> None:
    sc.send(sc.h1, _tcp(sc, dpkt.tcp.TH_SYN, seq=0x12345678))
    [(eth, raw_ip)] = ip6_frames(sc.h1)
    packet = eth.data
    assert packet.nxt == NH_TCP
    assert packet.src == sc.h1.router6 and packet.dst == sc.h1.ip6
    assert pseudo_sum(packet.src, packet.dst, NH_TCP, raw_ip[40:]) == 0
    rst = packet.data
    assert (rst.sport, rst.dport) == (80, 40000)
    assert rst.flags & (dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK) == dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK
    assert rst.seq == 0 and rst.ack == 0x12345679
    assert sc.red.tcp.stats.noport == 1


def test_tcp_reset_is_not_answered(sc: Scenario) -> None:
    sc.send(sc.h1, _tcp(sc, dpkt.tcp.TH_RST))
    assert ip6_frames(sc.h1) == []


def test_no_next_header_is_delivered_and_dropped_silently(sc: Scenario) -> None:
    sc.send(sc.h1, local_packet(sc, NH_NONE, b"", b"ignored"))
    assert sc.h1.take() == []
    assert sc.red.inet6.stats.delivered == 1


# --- forwarding ------------------------------------------------------------------------


def test_forwarding_decrements_the_hop_limit_once_per_vnet(sc: Scenario) -> None:
    payload = b"across two vnets " * 10
    original = sc.h1.udp6(sc.h2.ip6, sport=5000, dport=6000, payload=payload, fc=0x2E, flow=7)
    sc.send(sc.h1, original)
    [(eth, got)] = ip6_frames(sc.h2)
    sent = original[14:]
    assert len(got) == len(sent)
    assert got[7] == sent[7] - 2 == 62
    assert got[:7] == sent[:7]  # version, traffic class, flow label, length, next header
    assert got[8:] == sent[8:]  # addresses and payload untouched
    assert eth.data.data.data == payload
    assert (sc.red.inet6.stats.forward, sc.blue.inet6.stats.forward) == (1, 1)
    route = sc.red.route.fib6.lookup(sc.h2.ip6)
    assert route.use == 2  # the warm-up and this one
    assert sc.h1.take() == []


def test_forwarding_the_other_way(sc: Scenario) -> None:
    original = sc.h2.udp6(sc.h1.ip6, payload=b"back", hlim=10)
    sc.send(sc.h2, original)
    [(_, got)] = ip6_frames(sc.h1)
    assert got[7] == 8 and got[8:] == original[14 + 8 :]


def test_hop_limit_1_gets_time_exceeded_from_the_ingress_global_address(sc: Scenario) -> None:
    original = sc.h1.udp6(sc.h2.ip6, hlim=1, payload=b"traceroute")
    sc.send(sc.h1, original)
    assert sc.h2.take() == []
    [m] = sc.errors(sc.h1)
    assert m.ip.src == a6("2001:db8:1::1") and m.ip.dst == sc.h1.ip6
    assert m.ip.hlim == 64
    assert (m.type, m.code, m.rest) == (TIMEX, 0, 0)
    assert m.body == original[14:]  # quoted as received, hop limit 1
    assert sc.red.inet6.stats.hoplimit_exceeded == 1
    assert drops(sc.h1.ifp) == {"ip6_hoplimit_exceeded": 1}


def test_hop_limit_2_expires_in_blue_which_answers_from_its_ingress(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, hlim=2, payload=b"hop two"))
    assert sc.h2.take() == []
    [m] = sc.errors(sc.h1)
    assert m.ip.src == a6("2001:db8:ff::2")  # blue's address on the epair
    assert m.ip.hlim == 63
    assert m.type == TIMEX
    quoted = dpkt.ip6.IP6(m.body)
    assert quoted.hlim == 1 and quoted.src == sc.h1.ip6 and quoted.dst == sc.h2.ip6
    assert sc.blue.inet6.stats.hoplimit_exceeded == 1


def test_hop_limit_0_is_not_forwarded_either(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, hlim=0))
    assert sc.h2.take() == []
    assert sc.red.inet6.stats.hoplimit_exceeded == 1


def test_no_route_gets_destination_unreachable_code_0(sc: Scenario) -> None:
    original = sc.h1.udp6("2001:db8:3::10")
    sc.send(sc.h1, original)
    [m] = sc.errors(sc.h1)
    assert m.ip.src == sc.h1.router6
    assert (m.type, m.code) == (UNREACH, 0)
    assert m.body == original[14:]
    assert sc.red.inet6.stats.noroute == 1
    assert drops(sc.h1.ifp) == {"ip6_noroute": 1}
    assert sc.epair.pending == 0 and sc.h2.take() == []


def test_reject_route_gets_destination_unreachable_code_6(sc: Scenario) -> None:
    route_state.add_static(sc.red, IPv6Network("2001:db8:3::/64"), REJECT)
    sc.send(sc.h1, sc.h1.udp6("2001:db8:3::10"))
    [m] = sc.errors(sc.h1)
    assert m.ip.src == sc.h1.router6
    assert (m.type, m.code) == (UNREACH, 6)
    assert sc.red.inet6.stats.reject == 1
    assert drops(sc.h1.ifp) == {"ip6_reject": 1}


def test_blackhole_route_drops_silently_and_counts(sc: Scenario) -> None:
    route_state.add_static(sc.red, IPv6Network("2001:db8:3::/64"), BLACKHOLE)
    sc.send(sc.h1, sc.h1.udp6("2001:db8:3::10"))
    sc.send(sc.h1, sc.h1.ping6("2001:db8:3::11"))
    assert sc.h1.take() == [] and sc.h2.take() == []
    assert sc.red.inet6.stats.blackhole == 2
    assert drops(sc.h1.ifp) == {"ip6_blackhole": 2}
    assert sc.red.inet6.icmp.out_errors == 0


def test_larger_than_the_egress_mtu_gets_packet_too_big_with_the_mtu(sc: Scenario) -> None:
    sc.h2.ifp.mtu = 1280
    original = sc.h1.udp6(sc.h2.ip6, payload=b"x" * (1400 - 48))
    assert len(original) == 14 + 1400
    sc.send(sc.h1, original)
    assert sc.h2.take() == []
    [m] = sc.errors(sc.h1)
    assert m.ip.src == a6("2001:db8:ff::2")  # blue, from its ingress
    assert (m.type, m.code, m.rest) == (TOOBIG, 0, 1280)
    assert m.ip.data.data.mtu == 1280  # dpkt agrees
    assert len(m.raw_ip) == 1280  # the quote is cut to fit the minimum MTU
    quoted = bytearray(original[14 : 14 + 1280 - 48])
    quoted[7] = 63  # as blue received it
    assert m.body == quoted
    assert sc.blue.inet6.stats.toobig == 1
    assert drops(sc.epair.b) == {"ip6_toobig": 1}


def test_packet_exactly_at_the_egress_mtu_is_forwarded(sc: Scenario) -> None:
    sc.h2.ifp.mtu = 1280
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, payload=b"x" * (1280 - 48)))
    [(_, got)] = ip6_frames(sc.h2)
    assert len(got) == 1280
    assert sc.h1.take() == []


def test_first_router_sends_packet_too_big_for_a_smaller_epair(sc: Scenario) -> None:
    sc.epair.a.mtu = 1280
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, payload=b"y" * 1300))
    [m] = sc.errors(sc.h1)
    assert m.ip.src == sc.h1.router6 and m.rest == 1280 and m.type == TOOBIG
    assert sc.epair.pending == 0 and sc.h2.take() == []


def test_forwarding_off_drops_transit_but_still_answers_locally(sc: Scenario) -> None:
    sc.red.inet6.forwarding = False
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6))
    assert sc.h2.take() == [] and sc.h1.take() == []
    assert sc.red.inet6.stats.cantforward == 1
    assert drops(sc.h1.ifp) == {"ip6_cantforward": 1}
    sc.send(sc.h1, sc.h1.ping6(sc.h1.router6))
    [m] = icmp6_sent(sc.h1)
    assert m.type == ECHO_REPLY


def test_ipv4_is_still_forwarded_in_the_dual_stack_scenario(sc: Scenario) -> None:
    sc.h1.learn_router(sc.lab.now)
    sc.send(sc.h1, sc.h1.udp("203.0.113.10", payload=b"v4"))
    [frame] = sc.h2.take_ip()
    assert frame.data.ttl == 62 and frame.data.data.data == b"v4"


# --- scope, sources and multicast ------------------------------------------------------


def test_link_local_destination_is_never_forwarded(sc: Scenario) -> None:
    route_state.add_static(sc.red, IPv6Network("::/0"), via=IPv6Address("2001:db8:ff::2"))
    sc.send(sc.h1, sc.h1.udp6("fe80::99", src=sc.h1.lla))
    sc.send(sc.h1, sc.h1.udp6("fe80::99"))  # from a global source as well
    assert sc.epair.pending == 0 and sc.h2.take() == []
    assert sc.h1.take() == []  # no error about a link-local destination
    assert sc.red.inet6.stats.badscope == 2
    assert drops(sc.h1.ifp) == {"ip6_badscope": 2}


def test_link_local_source_to_a_global_destination_gets_beyond_scope(sc: Scenario) -> None:
    original = sc.h1.udp6(sc.h2.ip6, src=sc.h1.lla, payload=b"scoped")
    sc.send(sc.h1, original)
    assert sc.h2.take() == []
    [m] = sc.errors(sc.h1)
    assert (m.type, m.code) == (UNREACH, 2)
    assert m.ip.src == sc.h1.router_lla and m.ip.dst == sc.h1.lla
    assert m.body == original[14:]
    assert sc.red.inet6.stats.badscope == 1


@pytest.mark.parametrize("src", ["::", "::1", "ff02::1", "ff0e::1"])
def test_bad_source_is_not_forwarded(sc: Scenario, src: str) -> None:
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, src=src))
    assert sc.h2.take() == [] and sc.h1.take() == []
    assert sc.red.inet6.stats.badsrc == 1
    assert drops(sc.h1.ifp) == {"ip6_badsrc": 1}


@pytest.mark.parametrize("group", ["ff02::1:2", "ff05::1:3", "ff0e::101"])
def test_multicast_to_a_group_not_joined_is_dropped(sc: Scenario, group: str) -> None:
    route_state.add_static(sc.red, IPv6Network("::/0"), via=IPv6Address("2001:db8:ff::2"))
    sc.send(sc.h1, sc.h1.udp6(group, dst_mac=b"\x33\x33" + a6(group)[12:]))
    assert sc.h1.take() == [] and sc.h2.take() == []
    assert sc.red.inet6.stats.notmember == 1
    assert drops(sc.h1.ifp) == {"ip6_notmember": 1}
    assert sc.red.inet6.stats.forward == 0


def test_multicast_to_a_group_not_joined_goes_to_the_mirror_alone(sc: Scenario) -> None:
    """OSPFv3 to ff02::5: the mirror's kernel joined it, the vnet did not."""
    punted: list[bytes] = []
    punt.enable(sc.red)
    state_of(sc.red).writers[sc.h1.ifp.name] = lambda frame: punted.append(frame) or True
    ospf = sc.h1.packet6("ff02::5", 89, bytes(16), hlim=1)
    sc.send(sc.h1, sc.h1.frame6(ospf, dst_mac=b"\x33\x33\x00\x00\x00\x05"))
    assert [frame[14:] for frame in punted] == [ospf]
    assert punted[0][:6] == b"\x33\x33\x00\x00\x00\x05"
    assert drops(sc.h1.ifp) == {} and sc.h1.take() == []  # no Parameter Problem either
    # What the vnet would serve itself (an echo request) to a group it did not join: no one's.
    echo = sc.h1.packet6("ff02::5", 58, bytes([128, 0, 0, 0, 0, 1, 0, 1]))
    sc.send(sc.h1, sc.h1.frame6(echo, dst_mac=b"\x33\x33\x00\x00\x00\x05"))
    assert len(punted) == 1 and sc.h1.take() == []
    assert drops(sc.h1.ifp) == {"ip6_notmember": 1}
    punt.disable(sc.red)


def test_multicast_to_a_joined_group_is_delivered_but_never_forwarded(sc: Scenario) -> None:
    group = a6("ff0e::1234")
    nd.join(sc.red, sc.h1.ifp, group)
    nd.join(sc.blue, sc.epair.b, group)
    route_state.add_static(sc.red, IPv6Network("::/0"), via=IPv6Address("2001:db8:ff::2"))
    sc.send(sc.h1, sc.h1.ping6(group, dst_mac=b"\x33\x33" + group[12:]))
    [m] = icmp6_sent(sc.h1)
    assert m.type == ECHO_REPLY and m.ip.src == sc.h1.router6
    assert sc.red.inet6.stats.forward == 0
    assert sc.blue.inet6.icmp.in_echo == 0 and sc.h2.take() == []


def test_unicast_packet_in_a_multicast_frame_is_not_forwarded(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, dst_mac=bytes.fromhex("333300000001")))
    assert sc.h2.take() == [] and sc.h1.take() == []
    assert drops(sc.h1.ifp) == {"ip6_l2multicast": 1}


def test_drops_that_are_not_extension_header_problems_are_not_counted_as_badext(
    sc: Scenario,
) -> None:
    """Ip6Stats.badext is "malformed or refused extension header chain"."""
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, dst_mac=bytes.fromhex("333300000001")))
    ipv6.add_address(sc.red, sc.h1.ifp, IPv6Interface("2001:db8:1::5/64"), sc.lab.now)
    sc.send(sc.h1, sc.h1.ping6("2001:db8:1::5"))
    assert drops(sc.h1.ifp) == {"ip6_l2multicast": 1, "ip6_tentative": 1}
    assert sc.red.inet6.stats.badext == 0, "l2multicast/tentative drops counted as badext"


# --- extension headers (RFC 8200 4) -----------------------------------------------------


def test_hop_by_hop_after_another_header_gets_parameter_problem_code_1(sc: Scenario) -> None:
    chain = options_header(NH_HOP, b"") + options_header(NH_NONE, b"")
    frame = local_packet(sc, NH_DST, chain, b"")
    sc.send(sc.h1, frame)
    [m] = sc.errors(sc.h1)
    assert (m.type, m.code, m.rest) == (PARAMPROB, 1, 40)  # the Next Header naming it
    assert m.ip.data.data.ptr == 40
    assert m.ip.src == sc.h1.router6 and m.body == frame[14:]
    assert sc.red.inet6.stats.badext == 1


def test_routing_type_0_with_segments_left_gets_parameter_problem_at_the_type(
    sc: Scenario,
) -> None:
    rh = routing_header(NH_ICMP6, 0, 1, [a6("2001:db8:2::10")])
    sc.send(sc.h1, local_packet(sc, NH_ROUTING, rh, echo_request(sc, a6("2001:db8:2::10"))))
    [m] = sc.errors(sc.h1)
    assert (m.type, m.code, m.rest) == (PARAMPROB, 0, 42)
    assert sc.h2.take() == []


def test_routing_header_of_an_unknown_type_with_segments_left_is_refused(sc: Scenario) -> None:
    rh = routing_header(NH_ICMP6, 253, 1, [a6("2001:db8:2::10")])
    sc.send(sc.h1, local_packet(sc, NH_ROUTING, rh, echo_request(sc, a6("2001:db8:2::10"))))
    [m] = sc.errors(sc.h1)
    assert (m.type, m.code, m.rest) == (PARAMPROB, 0, 42)


def test_routing_header_with_no_segments_left_is_skipped(sc: Scenario) -> None:
    rh = routing_header(NH_ICMP6, 0, 0, [a6("2001:db8:2::10")])
    sc.send(sc.h1, local_packet(sc, NH_ROUTING, rh, echo_request(sc, sc.h1.router6)))
    [m] = icmp6_sent(sc.h1)
    assert m.type == ECHO_REPLY


@pytest.mark.parametrize(
    ("chain_nh", "chain", "pointer"),
    [
        (253, b"", 6),
        (NH_DST, options_header(253, b""), 40),
        (NH_HOP, options_header(NH_DST, b"") + options_header(253, b""), 48),
    ],
    ids=["direct", "after-dstopts", "after-hop-and-dstopts"],
)
def test_unknown_next_header_to_us_gets_parameter_problem_at_its_field(
    sc: Scenario, chain_nh: int, chain: bytes, pointer: int
) -> None:
    frame = local_packet(sc, chain_nh, chain, b"\x00" * 16)
    sc.send(sc.h1, frame)
    [m] = sc.errors(sc.h1)
    assert (m.type, m.code, m.rest) == (PARAMPROB, 1, pointer)
    assert m.body == frame[14:]
    assert sc.red.inet6.stats.noproto == 1


def test_unknown_next_header_in_transit_is_forwarded(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.frame6(sc.h1.packet6(sc.h2.ip6, 253, b"opaque" * 3)))
    [(_, got)] = ip6_frames(sc.h2)
    assert got[6] == 253


UNKNOWN_OPTION = {"skip": 0x1E, "discard": 0x5E, "problem": 0x9E, "problem_unicast": 0xDE}


@pytest.mark.parametrize("header", [NH_HOP, NH_DST])
@pytest.mark.parametrize("action", list(UNKNOWN_OPTION))
def test_unknown_option_to_a_unicast_address(sc: Scenario, header: int, action: str) -> None:
    option = bytes([UNKNOWN_OPTION[action], 2, 0xAB, 0xCD])
    chain = options_header(NH_ICMP6, option)
    frame = local_packet(sc, header, chain, echo_request(sc, sc.h1.router6))
    sc.send(sc.h1, frame)
    got = icmp6_sent(sc.h1)
    if action == "skip":
        assert [m.type for m in got] == [ECHO_REPLY]
    elif action == "discard":
        assert got == []
        assert drops(sc.h1.ifp) == {"ip6_unknownopt": 1}
    else:
        [m] = got
        assert (m.type, m.code, m.rest) == (PARAMPROB, 2, 42)
        assert m.body == frame[14:]


@pytest.mark.parametrize(("action", "answered"), [("problem", True), ("problem_unicast", False)])
def test_unknown_option_to_a_multicast_group(sc: Scenario, action: str, answered: bool) -> None:
    """RFC 4443 2.4 (e.3) and RFC 8200 4.2: a Parameter Problem about an unrecognised
    option to a multicast address only for action 10; action 11 asks for none."""
    option = bytes([UNKNOWN_OPTION[action], 2, 0xAB, 0xCD])
    chain = options_header(NH_ICMP6, option)
    upper = icmp6_msg(ECHO_REQUEST, 0, echo_body(1, 1, b"m"), sc.h1.ip6, ALL_NODES)
    frame = local_packet(sc, NH_DST, chain, upper, dst=ALL_NODES)
    frame = bytes.fromhex("333300000001") + frame[6:]
    sc.send(sc.h1, frame)
    got = icmp6_sent(sc.h1)
    assert drops(sc.h1.ifp) == {"ip6_unknownopt": 1}
    if answered:
        [m] = got
        assert (m.type, m.code, m.rest) == (PARAMPROB, 2, 42)
        assert m.ip.src == sc.h1.router6  # a unicast source
    else:
        assert got == [], "Parameter Problem sent for an action-11 option to a multicast group"


def test_hop_by_hop_with_router_alert_is_forwarded(sc: Scenario) -> None:
    hop = options_header(NH_UDP, bytes([5, 2, 0, 0]))
    datagram = struct.pack("!HHHH", 1, 2, 12, 0) + b"ra!!"
    datagram = (
        datagram[:6]
        + struct.pack("!H", pseudo_sum(sc.h1.ip6, sc.h2.ip6, NH_UDP, datagram))
        + datagram[8:]
    )
    original = sc.h1.frame6(sc.h1.packet6(sc.h2.ip6, NH_HOP, hop + datagram))
    sc.send(sc.h1, original)
    [(_, got)] = ip6_frames(sc.h2)
    assert got[8:] == original[14 + 8 :]


# --- fragments to us ---------------------------------------------------------------------


def _fragments(packet: bytes, size: int, ident: int) -> list[bytes]:
    """Split an IPv6 packet without extension headers into fragments of ``size`` data bytes."""
    header, data = packet[:40], packet[40:]
    nh = header[6]
    pieces = []
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        more = start + size < len(data)
        fixed = bytearray(header)
        fixed[4:6] = struct.pack("!H", 8 + len(chunk))
        fixed[6] = NH_FRAG
        pieces.append(bytes(fixed) + fragment_header(nh, start, more, ident) + chunk)
    return pieces


def test_fragmented_echo_request_is_reassembled_and_answered_in_fragments(sc: Scenario) -> None:
    payload = bytes(range(256)) * 12  # 3072 bytes
    request = sc.h1.packet6(
        sc.h1.router6,
        NH_ICMP6,
        icmp6_msg(ECHO_REQUEST, 0, echo_body(7, 9, payload), sc.h1.ip6, sc.h1.router6),
    )
    for piece in reversed(_fragments(request, 1448, 0xCAFE)):
        sc.send(sc.h1, sc.h1.frame6(piece))
    frames = ip6_frames(sc.h1)
    assert len(frames) == 3
    idents, pieces = set(), []
    for eth, raw_ip in frames:
        assert len(raw_ip) <= sc.h1.ifp.mtu
        packet = eth.data
        assert packet.nxt == NH_FRAG
        assert packet.src == sc.h1.router6 and packet.dst == sc.h1.ip6
        frag = packet.extension_hdrs[NH_FRAG]  # dpkt's Fragment header
        idents.add(frag.id)
        nh, _, off_m, _ = struct.unpack("!BBHI", raw_ip[40:48])
        assert nh == NH_ICMP6 and frag.nxt == NH_ICMP6
        pieces.append((off_m & 0xFFF8, bool(off_m & 1), raw_ip[48:]))
    assert len(idents) == 1
    pieces.sort()
    assert [p[1] for p in pieces] == [True, True, False]
    assert all(len(p[2]) % 8 == 0 for p in pieces[:-1])
    offset = 0
    for start, _, data in pieces:
        assert start == offset
        offset += len(data)
    message = b"".join(p[2] for p in pieces)
    assert pseudo_sum(sc.h1.router6, sc.h1.ip6, NH_ICMP6, message) == 0
    reply = dpkt.icmp6.ICMP6(message)
    assert reply.type == ECHO_REPLY
    assert (reply.data.id, reply.data.seq, reply.data.data) == (7, 9, payload)
    assert sc.red.inet6.reass.stats.reassembled == 1
    assert sc.red.inet6.stats.fragmented == 1


def test_reply_is_fragmented_at_a_smaller_link_mtu(sc: Scenario) -> None:
    sc.h1.ifp.mtu = 1280
    payload = b"z" * 1300
    request = sc.h1.packet6(
        sc.h1.router6,
        NH_ICMP6,
        icmp6_msg(ECHO_REQUEST, 0, echo_body(1, 2, payload), sc.h1.ip6, sc.h1.router6),
    )
    for piece in _fragments(request, 1200, 5):
        sc.send(sc.h1, sc.h1.frame6(piece))
    frames = ip6_frames(sc.h1)
    assert len(frames) == 2
    assert max(len(raw) for _, raw in frames) == 1280 - (1280 - 48) % 8


def test_incomplete_datagram_times_out_with_time_exceeded_code_1(sc: Scenario) -> None:
    request = sc.h1.packet6(sc.h1.router6, NH_ICMP6, echo_request(sc, sc.h1.router6, b"q" * 40))
    first = _fragments(request, 16, 77)[0]
    sc.send(sc.h1, sc.h1.frame6(first))
    assert ip6_frames(sc.h1) == []
    assert len(sc.red.inet6.reass) == 1
    sc.lab.advance(59)
    assert ip6_frames(sc.h1) == []
    sc.lab.advance(2)
    [m] = sc.errors(sc.h1)
    assert (m.type, m.code) == (TIMEX, 1)
    assert m.body == first
    assert len(sc.red.inet6.reass) == 0 and sc.red.inet6.reass.stats.timeout == 1


def test_fragments_in_transit_are_forwarded_untouched(sc: Scenario) -> None:
    packet = sc.h1.packet6(sc.h2.ip6, NH_UDP, b"u" * 64)
    pieces = _fragments(packet, 32, 99)
    for piece in pieces:
        sc.send(sc.h1, sc.h1.frame6(piece))
    got = [raw for _, raw in ip6_frames(sc.h2)]
    assert [g[8:] for g in got] == [p[8:] for p in pieces]
    assert len(sc.red.inet6.reass) == 0


# --- error source addresses ------------------------------------------------------------


def test_time_exceeded_source_is_the_ingress_even_when_the_route_back_differs(
    sc: Scenario,
) -> None:
    # From h2's prefix but entering red on eth0: the error comes from eth0's address
    # and goes back by the route to h2 (across blue).
    sc.send(sc.h1, sc.h1.udp6("2001:db8:2::99", hlim=1, src=sc.h2.ip6))
    assert sc.h1.take() == []
    [m] = sc.errors(sc.h2)
    assert m.ip.src == sc.h1.router6 and m.ip.dst == sc.h2.ip6
    assert m.type == TIMEX and m.ip.hlim == 63


def test_error_from_an_interface_without_a_global_address_uses_a_global_one(
    sc: Scenario, lab6
) -> None:
    h3 = lab6.host6(sc.red, "eth1", (), "2001:db8:5::10")
    lab6.finish_dad()
    route_state.add_static(sc.red, IPv6Network("2001:db8:5::/64"), ifp=h3.ifp)
    h3.take()
    sc.send(h3, h3.udp6(sc.h2.ip6, hlim=1))
    [m] = sc.errors(h3)
    assert m.type == TIMEX
    assert m.ip.src in set(sc.red.inet6.local)  # a global address of red, not link-local


def test_error_about_a_packet_to_one_of_our_addresses_comes_from_that_address(
    sc: Scenario,
) -> None:
    """RFC 4443 2.2 (a): a response to a message sent to one of the node's unicast
    addresses MUST use that address as its source -- errors included."""
    sc.send(sc.h1, sc.h1.udp6("2001:db8:ff::1"))  # red's epair address, reached via eth0
    [m] = sc.errors(sc.h1)
    assert (m.type, m.code) == (UNREACH, 4)
    assert IPv6Address(m.ip.src) == IPv6Address("2001:db8:ff::1")


# --- error policy (RFC 4443 2.4) ---------------------------------------------------------


def test_icmp6_errors_are_rate_limited_per_vnet(sc: Scenario) -> None:
    lab = sc.lab
    sc.red.inet6.icmp6_errrate = 5
    for i in range(20):
        sc.h1.send(sc.h1.udp6(sc.h2.ip6, hlim=1, sport=1000 + i), lab.now)
    lab.settle()
    errors = sc.errors(sc.h1)
    assert len(errors) == 5
    assert [struct.unpack("!H", e.body[40:42])[0] for e in errors] == [1000, 1001, 1002, 1003, 1004]
    stat = sc.red.inet6.icmp
    assert (stat.out_errors, stat.ratelimited) == (5, 15)
    assert sc.red.inet6.stats.hoplimit_exceeded == 20
    # A fifth of a second buys one token; a long pause refills only up to the rate.
    lab.clock.advance(0.2)
    for _ in range(3):
        sc.h1.send(sc.h1.udp6(sc.h2.ip6, hlim=1), lab.now)
    lab.settle()
    assert len(sc.errors(sc.h1)) == 1
    lab.clock.advance(60)
    for _ in range(20):
        sc.h1.send(sc.h1.udp6(sc.h2.ip6, hlim=1), lab.now)
    lab.settle()
    assert len(sc.errors(sc.h1)) == 5
    assert sc.blue.inet6.icmp.ratelimited == 0


def test_rate_limit_zero_means_unlimited(sc: Scenario) -> None:
    sc.red.inet6.icmp6_errrate = 0
    for _ in range(300):
        sc.h1.send(sc.h1.udp6(sc.h2.ip6, hlim=1), sc.lab.now)
    sc.lab.settle()
    assert len(sc.errors(sc.h1)) == 300
    assert sc.red.inet6.icmp.ratelimited == 0


def test_echo_replies_are_not_rate_limited(sc: Scenario) -> None:
    sc.red.inet6.icmp6_errrate = 1
    for i in range(10):
        sc.h1.send(sc.h1.ping6(sc.h1.router6, seq=i), sc.lab.now)
    sc.lab.settle()
    assert len(icmp6_sent(sc.h1)) == 10


@pytest.mark.parametrize("icmp_type", [UNREACH, TOOBIG, TIMEX, PARAMPROB, 127])
def test_no_icmp6_error_about_an_icmp6_error(sc: Scenario, icmp_type: int) -> None:
    quoted = sc.h2.udp6(sc.h1.ip6)[14:]
    error = icmp6_msg(icmp_type, 0, bytes(4) + quoted, sc.h1.ip6, sc.h2.ip6)
    sc.send(sc.h1, sc.h1.frame6(sc.h1.packet6(sc.h2.ip6, NH_ICMP6, error, hlim=1)))
    assert sc.h1.take() == [] and sc.h2.take() == []
    assert sc.red.inet6.stats.hoplimit_exceeded == 1
    assert sc.red.inet6.icmp.suppressed == 1
    assert sc.red.inet6.icmp.out_errors == 0


def test_no_icmp6_error_about_an_icmp6_error_behind_an_extension_header(sc: Scenario) -> None:
    """RFC 4443 2.4 (e.1): never an error about an error, even when a Hop-by-Hop
    Options header sits between the fixed header and the ICMPv6 message."""
    quoted = sc.h2.udp6(sc.h1.ip6)[14:]
    error = icmp6_msg(UNREACH, 0, bytes(4) + quoted, sc.h1.ip6, sc.h2.ip6)
    hop = options_header(NH_ICMP6, b"")
    sc.send(sc.h1, sc.h1.frame6(sc.h1.packet6(sc.h2.ip6, NH_HOP, hop + error, hlim=1)))
    assert sc.red.inet6.stats.hoplimit_exceeded == 1
    assert sc.errors(sc.h1) == [], "time exceeded sent about an ICMPv6 error message"


@pytest.mark.parametrize("icmp_type", [ECHO_REQUEST, ECHO_REPLY, 200])
def test_icmp6_informational_message_with_hop_limit_1_does_get_an_error(
    sc: Scenario, icmp_type: int
) -> None:
    message = icmp6_msg(icmp_type, 0, echo_body(1, 1, b"i"), sc.h1.ip6, sc.h2.ip6)
    sc.send(sc.h1, sc.h1.frame6(sc.h1.packet6(sc.h2.ip6, NH_ICMP6, message, hlim=1)))
    [m] = sc.errors(sc.h1)
    assert m.type == TIMEX


def test_icmp6_error_quotes_the_packet_without_ethernet_padding(sc: Scenario) -> None:
    original = sc.h1.udp6(sc.h2.ip6, hlim=1, payload=b"")
    sc.send(sc.h1, original + b"\xee" * 20)
    [m] = sc.errors(sc.h1)
    assert m.body == original[14:]


def test_no_error_about_a_packet_received_as_link_layer_multicast(sc: Scenario) -> None:
    """RFC 4443 2.4 (e.3): a UDP datagram to our address in a multicast frame."""
    sc.send(sc.h1, sc.h1.udp6(sc.h1.router6, dst_mac=bytes.fromhex("333300000001")))
    assert sc.h1.ifp.counters.rx_drops["udp_noport"] == 1
    assert icmp6_sent(sc.h1) == []


# --- malformed input -------------------------------------------------------------------


def _mutate(sc: Scenario, how: str) -> bytes:
    frame = bytearray(sc.h1.udp6(sc.h2.ip6, payload=b"mutant"))  # 14 + 40 + 14
    if how == "tooshort":
        return bytes(frame[: 14 + 39])
    if how == "plen_too_long":
        frame[18:20] = struct.pack("!H", 14 + 10)
    elif how == "badvers":
        frame[14] = 0x45
    elif how == "jumbogram":
        frame[18:20] = b"\x00\x00"
        frame[20] = NH_HOP
    else:
        raise AssertionError(how)
    return bytes(frame)


@pytest.mark.parametrize(
    ("how", "reason", "stat"),
    [
        ("tooshort", "ip6_tooshort", "tooshort"),
        ("plen_too_long", "ip6_tooshort", "tooshort"),
        ("badvers", "ip6_badvers", "badvers"),
        ("jumbogram", "ip6_jumbogram", "jumbogram"),
    ],
)
def test_malformed_packet_is_dropped_with_its_reason(
    sc: Scenario, how: str, reason: str, stat: str
) -> None:
    sc.send(sc.h1, _mutate(sc, how))
    assert sc.h1.take() == [] and sc.h2.take() == []
    assert drops(sc.h1.ifp) == {reason: 1}
    assert sc.h1.ifp.counters.rx_errors == 1
    assert getattr(sc.red.inet6.stats, stat) == 1
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, payload=b"after"))
    [(_, got)] = ip6_frames(sc.h2)
    assert got.endswith(b"after")


def test_trailing_bytes_beyond_the_payload_length_are_not_forwarded(sc: Scenario) -> None:
    original = sc.h1.udp6(sc.h2.ip6, payload=b"exact")
    sc.send(sc.h1, original + b"\x00" * 30)
    [(_, got)] = ip6_frames(sc.h2)
    assert len(got) == len(original) - 14


def test_the_destination_cache_answers_repeats_and_sees_route_changes(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, payload=b"one"))
    misses = sc.red.inet6.dests.misses
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, payload=b"two"))
    assert len(ip6_frames(sc.h2)) == 2 and sc.red.inet6.dests.misses == misses
    route_state.add_static(sc.red, IPv6Network((sc.h2.ip6, 128)), BLACKHOLE)
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, payload=b"three"))
    assert ip6_frames(sc.h2) == [] and sc.red.inet6.stats.blackhole == 1
    sc.red.route.fib6.delete(IPv6Network((sc.h2.ip6, 128)))
    sc.red.inet6.nd.flush_interface(sc.red.link.get("ep0"))  # the next hop is forgotten
    sc.send(sc.h1, sc.h1.udp6(sc.h2.ip6, payload=b"four"))
    assert len(ip6_frames(sc.h2)) == 1  # resolved again, then forwarded


# --- drop reasons and ip6stat ---------------------------------------------------------


def _reasons_raised_in(*modules: ModuleType) -> set[str]:
    """Return every ``"ip6_..."`` drop reason the source of ``modules`` raises."""
    pattern = re.compile(r'(?:Error|Problem)\(\s*"(ip6_\w+)"')
    return {reason for m in modules for reason in pattern.findall(inspect.getsource(m))}


def test_every_reason_the_parsers_raise_has_an_ip6stat_counter(lab6) -> None:
    red = lab6.vnet("red")
    ifp = lab6.iface6(red, "eth0")
    reasons = _reasons_raised_in(wire_ipv6, fragment)
    assert {"ip6_tooshort", "ip6_badrouting", "ip6_fragchain"} <= reasons
    stats = Ip6Stats()
    for reason in sorted(reasons):
        ipv6._count(ifp, stats, reason)
    assert sum(ifp.counters.rx_drops.values()) == len(reasons)
    assert stats.badext == len(reasons & ipv6.EXTENSION_REASONS)


def test_a_reason_without_a_counter_fails_loudly(lab6) -> None:
    red = lab6.vnet("red")
    ifp = lab6.iface6(red, "eth0")
    with pytest.raises(AttributeError):
        ipv6._count(ifp, Ip6Stats(), "ip6_no_such_reason")
