"""Tests for vrouter.inet.ipv4 and vrouter.inet.icmp: input, forwarding, ICMP.

The scenario: two router vnets joined by an epair, a station on each side::

    h1 192.0.2.10 --- eth0 [red] ep0 ===== ep0 [blue] eth0 --- h2 203.0.113.10
            192.0.2.1/24     198.51.100.1/24  198.51.100.2/24   203.0.113.1/24

red routes 203.0.113.0/25 via blue (so 203.0.113.128/25 has no route in red);
blue routes 192.0.2.0/24 via red.  Stations answer ARP, so ``lab.settle()``
carries a packet to its end.  Frames are built and decoded with dpkt.
"""

from __future__ import annotations

import gc
import struct
import tracemalloc
from ipaddress import IPv4Address, IPv4Network

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrouter.route import state as route_state
from vrouter.route.fib import BLACKHOLE, REJECT

ETH_IP = dpkt.ethernet.ETH_TYPE_IP


def ip(text: str) -> bytes:
    return IPv4Address(text).packed


def checksum_of(header: bytes) -> int:
    """Return the header checksum recomputed from scratch (checksum field zeroed)."""
    return dpkt.in_cksum(header[:10] + b"\x00\x00" + header[12:])


def assert_ip_checksum(raw_ip: bytes) -> None:
    hlen = (raw_ip[0] & 0x0F) * 4
    header = raw_ip[:hlen]
    assert struct.unpack("!H", header[10:12])[0] == checksum_of(header)


def fix_checksum(frame: bytearray) -> bytearray:
    hlen = (frame[14] & 0x0F) * 4
    frame[24:26] = b"\x00\x00"
    frame[24:26] = struct.pack("!H", dpkt.in_cksum(bytes(frame[14 : 14 + hlen])))
    return frame


class Scenario:
    def __init__(self, lab) -> None:
        self.lab = lab
        self.red = lab.vnet("red")
        self.blue = lab.vnet("blue")
        self.h1 = lab.host(self.red, "eth0", "192.0.2.1/24", "192.0.2.10")
        self.h2 = lab.host(self.blue, "eth0", "203.0.113.1/24", "203.0.113.10")
        self.epair = lab.epair(
            self.red, "ep0", "198.51.100.1/24", self.blue, "ep0", "198.51.100.2/24"
        )
        route_state.add_static(
            self.red, IPv4Network("203.0.113.0/25"), via=IPv4Address("198.51.100.2")
        )
        route_state.add_static(
            self.blue, IPv4Network("192.0.2.0/24"), via=IPv4Address("198.51.100.1")
        )
        # Warm the ARP caches so tests see only their own packets.
        self.h1.learn_router(lab.now)
        self.h2.learn_router(lab.now)
        self.h1.send(self.h1.udp("203.0.113.10", payload=b"warm-up"), lab.now)
        lab.settle()
        assert len(self.h2.take_ip()) == 1
        self.h1.take()
        self.h2.take()

    def send(self, host, frame: bytes) -> None:
        host.send(frame, self.lab.now)
        self.lab.settle()

    def icmp_errors(self, host) -> list[tuple[dpkt.ip.IP, dpkt.icmp.ICMP]]:
        out = []
        for frame in host.take():
            assert frame.type == ETH_IP, f"unexpected frame {frame!r}"
            assert frame.dst == host.mac and frame.src == host.ifp.mac
            packet = frame.data
            assert packet.p == dpkt.ip.IP_PROTO_ICMP
            out.append((packet, packet.data))
        return out


@pytest.fixture
def sc(lab) -> Scenario:
    return Scenario(lab)


def drops(ifp) -> dict[str, int]:
    return dict(ifp.counters.rx_drops)


# --- local delivery: echo, closed ports, protocols ---------------------------------


def test_echo_request_to_the_router_gets_a_reply(sc: Scenario) -> None:
    payload = bytes(range(56))
    sc.send(sc.h1, sc.h1.ping("192.0.2.1", ident=0xBEEF, seq=7, payload=payload, tos=0x10))
    [raw] = sc.h1.take_raw()
    frame = dpkt.ethernet.Ethernet(raw)
    assert frame.type == ETH_IP
    assert frame.dst == sc.h1.mac and frame.src == sc.h1.ifp.mac
    raw_ip = raw[14:]
    assert_ip_checksum(raw_ip)
    reply = frame.data
    assert reply.src == ip("192.0.2.1") and reply.dst == sc.h1.ip
    assert reply.ttl == 64
    assert reply.p == dpkt.ip.IP_PROTO_ICMP
    assert reply.tos == 0x10
    assert reply.len == len(raw_ip)
    icmp_raw = raw_ip[20:]
    assert dpkt.in_cksum(icmp_raw) == 0
    icmp = reply.data
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_ECHOREPLY, 0)
    assert (icmp.data.id, icmp.data.seq, icmp.data.data) == (0xBEEF, 7, payload)
    stat = sc.red.inet.icmp
    assert (stat.in_echo, stat.out_echo_reply) == (1, 1)


def test_echo_to_the_far_router_comes_back_across_both_vnets(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.ping("203.0.113.1", ident=1, seq=2, payload=b"far"))
    [frame] = sc.h1.take_ip()
    reply = frame.data
    assert reply.src == ip("203.0.113.1") and reply.dst == sc.h1.ip
    assert reply.ttl == 63  # blue sends 64, red forwards
    assert reply.data.type == dpkt.icmp.ICMP_ECHOREPLY
    assert reply.data.data.data == b"far"
    assert sc.blue.inet.icmp.out_echo_reply == 1
    assert sc.red.inet.icmp.out_echo_reply == 0


def test_echo_with_a_bad_icmp_checksum_is_not_answered(sc: Scenario) -> None:
    frame = bytearray(sc.h1.ping("192.0.2.1"))
    frame[14 + 20 + 2] ^= 0xFF
    sc.send(sc.h1, bytes(frame))
    assert sc.h1.take() == []
    assert sc.red.inet.icmp.in_errors == 1
    assert drops(sc.h1.ifp) == {"icmp_badsum": 1}


def test_echo_to_a_directed_broadcast_is_ignored(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.ping("192.0.2.255", dst_mac=b"\xff" * 6))
    assert sc.h1.take() == []
    assert sc.red.inet.icmp.in_bcast_echo == 1
    assert sc.red.inet.icmp.out_echo_reply == 0


def test_udp_to_the_router_gets_port_unreachable(sc: Scenario) -> None:
    original = sc.h1.udp("192.0.2.1", sport=40000, dport=33434, payload=b"anyone?")
    sc.send(sc.h1, original)
    [(packet, icmp)] = sc.icmp_errors(sc.h1)
    assert packet.src == ip("192.0.2.1") and packet.dst == sc.h1.ip
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_PORT)
    assert bytes(icmp.data.data) == original[14:]
    assert sc.h1.ifp.counters.rx_drops["udp_noport"] == 1
    assert sc.red.inet.icmp.out_errors == 1


def test_udp_with_a_bad_checksum_to_the_router_is_dropped_silently(sc: Scenario) -> None:
    frame = bytearray(sc.h1.udp("192.0.2.1"))
    frame[14 + 20 + 6] ^= 0x01
    sc.send(sc.h1, bytes(frame))
    assert sc.h1.take() == []
    assert sc.h1.ifp.counters.rx_drops["udp_badsum"] == 1


def test_unknown_protocol_to_the_router_gets_protocol_unreachable(sc: Scenario) -> None:
    frame = sc.h1.frame(sc.h1.packet("192.0.2.1", 89, b"\x02\x01" + b"\x00" * 22))
    sc.send(sc.h1, frame)
    [(_, icmp)] = sc.icmp_errors(sc.h1)
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_PROTO)
    assert sc.red.inet.stats.noproto == 1


def _fragments(packet: dpkt.ip.IP, size: int) -> list[bytes]:
    """Split ``packet`` into IPv4 fragments carrying ``size`` data bytes each (dpkt built)."""
    raw = bytes(packet)
    data = raw[20:]
    pieces = []
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        frag = dpkt.ip.IP(
            src=packet.src, dst=packet.dst, p=packet.p, ttl=packet.ttl, id=packet.id, data=chunk
        )
        frag.offset = start // 8
        frag.mf = int(start + size < len(data))
        pieces.append(bytes(frag))
    return pieces


def test_fragmented_echo_request_is_reassembled_and_answered(sc: Scenario) -> None:
    payload = bytes(range(256)) * 12
    echo = dpkt.icmp.ICMP(
        type=dpkt.icmp.ICMP_ECHO, data=dpkt.icmp.ICMP.Echo(id=7, seq=9, data=payload)
    )
    packet = sc.h1.packet("192.0.2.1", dpkt.ip.IP_PROTO_ICMP, echo)
    for piece in reversed(_fragments(packet, 1480)):
        sc.send(sc.h1, sc.h1.frame(piece))
    replies = sc.h1.take_ip()
    # The reply is as large as the request, so it comes back in fragments too.
    assert len(replies) == 3
    data = b"".join(bytes(r.data.data) for r in sorted(replies, key=lambda r: r.data.offset))
    reply = dpkt.icmp.ICMP(data)
    assert reply.type == dpkt.icmp.ICMP_ECHOREPLY
    assert (reply.data.id, reply.data.seq, reply.data.data) == (7, 9, payload)
    assert sc.red.inet.stats.reassembled == 1
    assert sc.red.inet.stats.fragmented == 1


def test_incomplete_datagram_times_out_with_icmp_reassembly_time_exceeded(sc: Scenario) -> None:
    packet = sc.h1.packet("192.0.2.1", dpkt.ip.IP_PROTO_ICMP, b"\x08\x00" + b"\x00" * 30)
    packet.mf = 1
    sc.send(sc.h1, sc.h1.frame(packet))
    assert sc.h1.take() == []
    assert sc.red.inet.reass.stats.fragments == 1
    assert len(sc.red.inet.reass) == 1
    sc.lab.advance(29)
    assert sc.h1.take() == []
    sc.lab.advance(2)
    [(_, err)] = sc.icmp_errors(sc.h1)
    assert (err.type, err.code) == (dpkt.icmp.ICMP_TIMEXCEED, dpkt.icmp.ICMP_TIMEXCEED_REASS)
    assert len(sc.red.inet.reass) == 0
    assert sc.red.inet.reass.stats.timeout == 1


# --- forwarding --------------------------------------------------------------------


def test_forwarding_across_both_vnets(sc: Scenario) -> None:
    payload = b"across two vnets " * 10
    original = sc.h1.udp("203.0.113.10", sport=5000, dport=6000, payload=payload, ttl=64)
    sc.send(sc.h1, original)
    [raw] = sc.h2.take_raw()
    frame = dpkt.ethernet.Ethernet(raw)
    assert frame.dst == sc.h2.mac and frame.src == sc.h2.ifp.mac and frame.type == ETH_IP
    got, sent = raw[14:], original[14:]
    assert len(got) == len(sent)
    assert got[8] == sent[8] - 2  # TTL
    assert_ip_checksum(got)
    # Everything but TTL and checksum is untouched, payload included.
    assert got[:8] == sent[:8]
    assert got[9:10] == sent[9:10]
    assert got[12:] == sent[12:]
    assert frame.data.data.data == payload
    assert (sc.red.inet.stats.forward, sc.blue.inet.stats.forward) == (2, 2)  # with warm-up
    route = sc.red.route.fib.lookup(ip("203.0.113.10"))
    assert route.use == 2  # warm-up and this one
    assert sc.h1.take() == []


def test_forwarding_the_other_way(sc: Scenario) -> None:
    sc.send(sc.h2, sc.h2.ping("192.0.2.10", ident=9, seq=9, ttl=10))
    [frame] = sc.h1.take_ip()
    assert frame.data.ttl == 8
    assert frame.data.src == sc.h2.ip
    assert frame.data.data.data.id == 9


def test_forwarding_keeps_ip_options_and_strips_ethernet_padding(sc: Scenario) -> None:
    packet = sc.h1.packet("203.0.113.10", dpkt.ip.IP_PROTO_UDP, b"")
    packet.opts = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL
    packet.hl = 6
    packet.data = dpkt.udp.UDP(sport=1, dport=2, data=b"opt")
    packet.data.ulen = len(packet.data)
    packet.len = 0
    packet.sum = 0
    raw_ip = bytes(packet)
    assert len(raw_ip) == 24 + 11
    padded = sc.h1.frame(raw_ip) + b"\x00" * 11  # up to the 60-byte minimum
    sc.send(sc.h1, padded)
    [raw] = sc.h2.take_raw()
    got = raw[14:]
    assert len(got) == len(raw_ip)
    assert got[20:24] == b"\x01\x01\x01\x00"
    assert got[8] == raw_ip[8] - 2
    assert_ip_checksum(got)
    assert got[24:] == raw_ip[24:]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ttl=st.integers(3, 255),
    tos=st.integers(0, 255),
    ident=st.integers(0, 0xFFFF),
    proto=st.sampled_from([17, 47, 50, 89, 132, 253, 254]),
    df=st.booleans(),
    payload=st.binary(max_size=64),
)
def test_forwarded_checksum_equals_a_full_recomputation(
    sc: Scenario, ttl: int, tos: int, ident: int, proto: int, df: bool, payload: bytes
) -> None:
    packet = sc.h1.packet("203.0.113.10", proto, payload, ttl=ttl, ident=ident, tos=tos, df=df)
    sent = bytes(packet)
    sc.send(sc.h1, sc.h1.frame(sent))
    [raw] = sc.h2.take_raw()
    got = raw[14:]
    assert got[8] == ttl - 2
    assert_ip_checksum(got)
    assert got[12:] == sent[12:]


def test_ttl_1_gets_time_exceeded_from_the_ingress_address(sc: Scenario) -> None:
    original = sc.h1.udp("203.0.113.10", ttl=1, payload=b"traceroute")
    sc.send(sc.h1, original)
    assert sc.h2.take() == []
    [(packet, icmp)] = sc.icmp_errors(sc.h1)
    assert packet.src == ip("192.0.2.1") and packet.dst == sc.h1.ip
    assert packet.ttl == 64
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_TIMEXCEED, dpkt.icmp.ICMP_TIMEXCEED_INTRANS)
    quoted = bytes(icmp.data.data)
    assert quoted[:20] == original[14:34]  # the header as received, TTL 1
    assert quoted == original[14:]
    assert sc.red.inet.stats.ttl_exceeded == 1
    assert drops(sc.h1.ifp) == {"ip_ttl_exceeded": 1}


def test_icmp_error_quotes_the_packet_without_ethernet_padding(sc: Scenario) -> None:
    original = sc.h1.udp("203.0.113.10", ttl=1, payload=b"pad")
    assert len(original) < 60
    sc.send(sc.h1, original + b"\xee" * (60 - len(original)))
    [(_, icmp)] = sc.icmp_errors(sc.h1)
    assert bytes(icmp.data.data) == original[14:]


def test_ttl_2_expires_in_the_second_vnet_which_answers_from_its_ingress(sc: Scenario) -> None:
    original = sc.h1.udp("203.0.113.10", ttl=2, payload=b"hop two")
    sc.send(sc.h1, original)
    assert sc.h2.take() == []
    [(packet, icmp)] = sc.icmp_errors(sc.h1)
    assert packet.src == ip("198.51.100.2")  # blue's address on the epair
    assert packet.ttl == 63
    assert icmp.type == dpkt.icmp.ICMP_TIMEXCEED
    quoted = icmp.data.data
    assert quoted.ttl == 1 and quoted.src == sc.h1.ip and quoted.dst == sc.h2.ip
    assert sc.blue.inet.stats.ttl_exceeded == 1


def test_time_exceeded_source_is_the_ingress_even_when_the_route_back_differs(
    sc: Scenario,
) -> None:
    # A packet from h2's address enters red on eth0 (asymmetric path): the error
    # comes from eth0's address, not from ep0's (the interface of the route back).
    sc.send(sc.h1, sc.h1.udp("203.0.113.99", ttl=1, src=sc.h2.ip))
    assert sc.h1.take() == []
    [(packet, icmp)] = sc.icmp_errors(sc.h2)
    assert packet.src == ip("192.0.2.1")
    assert packet.dst == sc.h2.ip
    assert icmp.type == dpkt.icmp.ICMP_TIMEXCEED


def test_ttl_0_is_not_forwarded_either(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.udp("203.0.113.10", ttl=0))
    assert sc.h2.take() == []
    assert sc.red.inet.stats.ttl_exceeded == 1


def test_no_route_gets_net_unreachable(sc: Scenario) -> None:
    original = sc.h1.udp("203.0.113.200")
    sc.send(sc.h1, original)
    [(packet, icmp)] = sc.icmp_errors(sc.h1)
    assert packet.src == ip("192.0.2.1")
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_NET)
    assert bytes(icmp.data.data) == original[14:]
    assert sc.red.inet.stats.noroute == 1
    assert drops(sc.h1.ifp) == {"ip_noroute": 1}
    assert sc.epair.pending == 0 and sc.h2.take() == []


def test_reject_route_gets_host_unreachable(sc: Scenario) -> None:
    route_state.add_static(sc.red, IPv4Network("203.0.113.128/26"), REJECT)
    sc.send(sc.h1, sc.h1.udp("203.0.113.130"))
    [(packet, icmp)] = sc.icmp_errors(sc.h1)
    assert packet.src == ip("192.0.2.1")
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_HOST)
    assert sc.red.inet.stats.reject == 1
    assert drops(sc.h1.ifp) == {"ip_reject": 1}


def test_blackhole_route_drops_silently_and_counts(sc: Scenario) -> None:
    route_state.add_static(sc.red, IPv4Network("203.0.113.192/26"), BLACKHOLE)
    sc.send(sc.h1, sc.h1.udp("203.0.113.200"))
    sc.send(sc.h1, sc.h1.ping("203.0.113.201"))
    assert sc.h1.take() == []
    assert sc.h2.take() == []
    assert sc.red.inet.stats.blackhole == 2
    assert drops(sc.h1.ifp) == {"ip_blackhole": 2}
    assert sc.red.inet.icmp.out_errors == 0


def test_larger_than_egress_mtu_with_df_gets_needfrag_with_the_mtu(sc: Scenario) -> None:
    sc.h2.ifp.mtu = 1280
    original = sc.h1.udp("203.0.113.10", payload=b"x" * (1400 - 28), df=True)
    assert len(original) == 14 + 1400
    sc.send(sc.h1, original)
    assert sc.h2.take() == []
    [(packet, icmp)] = sc.icmp_errors(sc.h1)
    assert packet.src == ip("198.51.100.2")
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_NEEDFRAG)
    assert icmp.data.mtu == 1280
    assert struct.unpack("!HH", bytes(icmp)[4:8]) == (0, 1280)
    quoted = icmp.data.data
    assert quoted.len == 1400 and quoted.ttl == 63
    assert len(packet) <= 576
    assert sc.blue.inet.stats.toolong == 1


def test_packet_exactly_at_the_egress_mtu_is_forwarded(sc: Scenario) -> None:
    sc.h2.ifp.mtu = 1280
    sc.send(sc.h1, sc.h1.udp("203.0.113.10", payload=b"x" * (1280 - 28), df=True))
    [frame] = sc.h2.take_ip()
    assert frame.data.len == 1280
    assert sc.h1.take() == []


def test_larger_than_epair_mtu_without_df_is_fragmented(sc: Scenario) -> None:
    sc.epair.a.mtu = 1000
    payload = bytes(range(200)) * 6
    sc.send(sc.h1, sc.h1.udp("203.0.113.10", payload=payload, df=False))
    pieces = sc.h2.take_ip()
    assert len(pieces) == 2
    assert all(len(p.data) <= 1000 for p in pieces)
    first, last = sorted((p.data for p in pieces), key=lambda ip_: ip_.offset)
    assert first.mf and not last.mf
    assert first.id == last.id
    assert last.offset * 8 == len(first.data)
    datagram = dpkt.udp.UDP(bytes(first.data) + bytes(last.data))
    assert datagram.data == payload
    assert sc.h1.take() == []
    assert sc.red.inet.stats.fragmented == 1 and sc.red.inet.stats.toolong == 0


@pytest.mark.parametrize("dst_mac", [b"\xff" * 6, b"\x01\x00\x5e\x00\x00\x01"])
def test_unicast_ip_in_a_link_layer_broadcast_is_not_forwarded(sc: Scenario, dst_mac) -> None:
    sc.send(sc.h1, sc.h1.frame(sc.h1.packet("203.0.113.10", 17, b"\x00" * 8), dst_mac=dst_mac))
    assert sc.h2.take() == []
    assert sc.h1.take() == []
    assert sc.red.inet.stats.l2bcast == 1
    assert drops(sc.h1.ifp) == {"ip_l2bcast": 1}
    assert sc.red.inet.stats.forward == 1  # the warm-up only


def test_forwarding_off_drops_transit_but_still_answers_locally(sc: Scenario) -> None:
    sc.red.inet.forwarding = False
    sc.send(sc.h1, sc.h1.udp("203.0.113.10"))
    assert sc.h2.take() == []
    assert sc.h1.take() == []
    assert sc.red.inet.stats.cantforward == 1
    assert drops(sc.h1.ifp) == {"ip_cantforward": 1}
    sc.send(sc.h1, sc.h1.ping("192.0.2.1"))
    [frame] = sc.h1.take_ip()
    assert frame.data.data.type == dpkt.icmp.ICMP_ECHOREPLY


# --- malformed input --------------------------------------------------------------


def _mutate(sc: Scenario, how: str) -> bytes:
    frame = bytearray(sc.h1.udp("203.0.113.10", payload=b"mutant"))  # 14 + 34 bytes
    if how == "eth_truncated":
        return bytes(frame[:13])
    if how == "ip_tooshort":
        return bytes(frame[: 14 + 19])
    if how == "ip_badsum":
        frame[24] ^= 0x5A
    elif how == "ip_badhlen_small":
        frame[14] = 0x44
        fix_checksum(frame)
    elif how == "ip_badhlen_large":
        frame[14] = 0x4F  # 60-byte header in a 34-byte packet
    elif how == "ip_total_too_long":
        frame[16:18] = struct.pack("!H", 34 + 10)
        fix_checksum(frame)
    elif how == "ip_total_below_header":
        frame[16:18] = struct.pack("!H", 19)
        fix_checksum(frame)
    elif how == "ip_badvers":
        frame[14] = 0x65
        fix_checksum(frame)
    elif how == "ip_src_loopback":
        frame[26:30] = ip("127.0.0.1")
        fix_checksum(frame)
    elif how == "ip_src_multicast":
        frame[26:30] = ip("224.0.0.5")
        fix_checksum(frame)
    elif how == "ip_src_broadcast":
        frame[26:30] = b"\xff" * 4
        fix_checksum(frame)
    else:
        raise AssertionError(how)
    return bytes(frame)


MALFORMED = [
    # (mutation, interface drop reason, ipstat field or None)
    ("eth_truncated", "eth_truncated", None),
    ("ip_tooshort", "ip_tooshort", "tooshort"),
    ("ip_badsum", "ip_badsum", "badsum"),
    ("ip_badhlen_small", "ip_badhlen", "badhlen"),
    ("ip_badhlen_large", "ip_badhlen", "badhlen"),
    ("ip_total_too_long", "ip_tooshort", "tooshort"),
    ("ip_total_below_header", "ip_badlen", "badlen"),
    ("ip_badvers", "ip_badvers", "badvers"),
    ("ip_src_loopback", "ip_badsrc", "badsrc"),
    ("ip_src_multicast", "ip_badsrc", "badsrc"),
    ("ip_src_broadcast", "ip_badsrc", "badsrc"),
]


@pytest.mark.parametrize(("how", "reason", "stat"), MALFORMED)
def test_malformed_packet_is_dropped_with_its_reason(
    sc: Scenario, how: str, reason: str, stat: str | None
) -> None:
    counters = sc.h1.ifp.counters
    rx_before = counters.rx_packets
    total_before = sc.red.inet.stats.total
    sc.send(sc.h1, _mutate(sc, how))
    assert sc.h2.take() == [] and sc.h1.take() == []
    assert drops(sc.h1.ifp) == {reason: 1}
    assert counters.rx_errors == 1
    assert counters.rx_packets == rx_before + 1
    stats = sc.red.inet.stats
    if stat is None:
        assert stats.total == total_before  # never reached IP
    else:
        assert getattr(stats, stat) == 1
        assert stats.total == total_before + 1
    assert stats.forward == 1  # the warm-up only
    # The stack is unharmed: a good packet still goes through.
    sc.send(sc.h1, sc.h1.udp("203.0.113.10", payload=b"after"))
    [frame] = sc.h2.take_ip()
    assert frame.data.data.data == b"after"


@pytest.mark.parametrize("dst", ["127.0.0.1", "0.0.0.1", "240.0.0.1"])
def test_martian_destination_is_not_forwarded_even_with_a_default_route(
    sc: Scenario, dst: str
) -> None:
    """RFC 1812 4.2.3.1 and 5.3.7: network 127 never leaves a host; network 0 and
    class E are invalid destinations a router does not forward."""
    route_state.add_static(sc.red, IPv4Network("0.0.0.0/0"), via=IPv4Address("198.51.100.2"))
    sc.h1.send(sc.h1.udp(dst), sc.lab.now)
    assert sc.epair.pending == 0, f"red forwarded a packet to {dst} onto the epair"
    assert sc.red.inet.stats.forward == 1  # the warm-up only


def test_zero_source_is_not_forwarded(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.udp("203.0.113.10", src=b"\x00" * 4))
    assert sc.h2.take() == []
    assert sc.red.inet.stats.badsrc == 1


# --- ICMP error policy -------------------------------------------------------------


def test_icmp_errors_are_rate_limited_per_vnet(sc: Scenario, lab) -> None:
    sc.red.inet.icmp_errrate = 5
    for i in range(20):
        sc.h1.send(sc.h1.udp("203.0.113.10", ttl=1, ident=i), lab.now)
    lab.settle()
    errors = sc.icmp_errors(sc.h1)
    assert len(errors) == 5
    assert [e[1].data.data.id for e in errors] == [0, 1, 2, 3, 4]
    stat = sc.red.inet.icmp
    assert (stat.out_errors, stat.ratelimited) == (5, 15)
    assert sc.red.inet.stats.ttl_exceeded == 20
    # A fifth of a second buys one token; a long pause refills only up to the rate.
    lab.clock.advance(0.2)
    for i in range(3):
        sc.h1.send(sc.h1.udp("203.0.113.10", ttl=1, ident=100 + i), lab.now)
    lab.settle()
    assert len(sc.icmp_errors(sc.h1)) == 1
    lab.clock.advance(60)
    for i in range(20):
        sc.h1.send(sc.h1.udp("203.0.113.10", ttl=1, ident=200 + i), lab.now)
    lab.settle()
    assert len(sc.icmp_errors(sc.h1)) == 5
    # The other vnet's bucket is its own.
    assert sc.blue.inet.icmp.ratelimited == 0


def test_rate_limit_zero_means_unlimited(sc: Scenario, lab) -> None:
    sc.red.inet.icmp_errrate = 0
    for i in range(300):
        sc.h1.send(sc.h1.udp("203.0.113.10", ttl=1, ident=i), lab.now)
    lab.settle()
    assert len(sc.icmp_errors(sc.h1)) == 300
    assert sc.red.inet.icmp.ratelimited == 0


@pytest.mark.parametrize(
    "icmp_type",
    [
        dpkt.icmp.ICMP_UNREACH,
        dpkt.icmp.ICMP_SRCQUENCH,
        dpkt.icmp.ICMP_REDIRECT,
        dpkt.icmp.ICMP_TIMEXCEED,
        dpkt.icmp.ICMP_PARAMPROB,
    ],
)
def test_no_icmp_error_about_an_icmp_error(sc: Scenario, icmp_type: int) -> None:
    quoted = sc.h2.udp("192.0.2.10")[14:42]
    error = dpkt.icmp.ICMP(type=icmp_type, code=0, data=b"\x00" * 4 + quoted)
    sc.send(sc.h1, sc.h1.frame(sc.h1.packet("203.0.113.10", 1, error, ttl=1)))
    assert sc.h1.take() == [] and sc.h2.take() == []
    assert sc.red.inet.stats.ttl_exceeded == 1
    assert sc.red.inet.icmp.suppressed == 1
    assert sc.red.inet.icmp.out_errors == 0


def test_icmp_query_with_ttl_1_does_get_an_error(sc: Scenario) -> None:
    sc.send(sc.h1, sc.h1.ping("203.0.113.10", ttl=1))
    [(_, icmp)] = sc.icmp_errors(sc.h1)
    assert icmp.type == dpkt.icmp.ICMP_TIMEXCEED


def test_no_icmp_error_about_a_non_first_fragment(sc: Scenario) -> None:
    packet = sc.h1.packet("203.0.113.10", 17, b"z" * 16, ttl=1)
    packet.offset = 64
    sc.send(sc.h1, sc.h1.frame(packet))
    assert sc.h1.take() == []
    assert sc.red.inet.icmp.suppressed == 1


def test_no_icmp_error_about_a_link_layer_broadcast(sc: Scenario) -> None:
    """RFC 1812 4.3.2.7 (and RFC 1122 3.2.2): no ICMP error about a packet that
    arrived as a link-layer broadcast, even when its IP destination is ours."""
    sc.send(sc.h1, sc.h1.udp("192.0.2.1", dst_mac=b"\xff" * 6))
    assert sc.h1.ifp.counters.rx_drops["udp_noport"] == 1
    assert sc.h1.take() == [], "port unreachable sent about a link-layer broadcast"
    assert sc.red.inet.icmp.out_errors == 0


def test_no_icmp_error_about_a_packet_to_a_broadcast_address(sc: Scenario) -> None:
    # UDP to the directed broadcast of h1's network: closed port, but no error.
    sc.send(sc.h1, sc.h1.udp("192.0.2.255"))
    assert sc.h1.take() == []
    assert sc.red.inet.icmp.out_errors == 0


def test_counting_drops_keeps_no_new_objects() -> None:
    """A field name made per drop would stay in the interpreter's type attribute cache."""
    from vrouter.inet import ipv4
    from vrouter.inet.state import IpStats

    ifp = type("Ifp", (), {"drop": lambda self, reason, error=False: None})()
    stats = [IpStats() for _ in range(100)]
    ipv4._count(ifp, stats[0], "ip_badsum")  # type: ignore[arg-type]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for s in stats:
            ipv4._count(ifp, s, "ip_badsum")  # type: ignore[arg-type]
            ipv4._count(ifp, s, "ip_tooshort")  # type: ignore[arg-type]
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    here = [tracemalloc.Filter(True, ipv4.__file__)]
    grown = after.filter_traces(here).compare_to(before.filter_traces(here), "lineno")
    assert sum(d.count_diff for d in grown if d.count_diff > 0) == 0
    assert stats[-1].badsum == 1 and stats[0].badsum == 2
