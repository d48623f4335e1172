"""The IPv6 fast path: the bytes the full path sends, and every exception left to it
(hop limit, ICMPv6 errors, extension headers, scope, MTU, firewall, local addresses)."""

from __future__ import annotations

import ipaddress
import struct
import tomllib

import dpkt
import pytest

from vrouter.firewall import subsystem as firewall
from vrouter.firewall.ruleparse import parse_ruleset
from vrouter.inet6 import ipv6
from vrouter.link import offload
from vrouter.route import state as route_state

H1, H2, H3 = "2001:db8:1::10", "2001:db8:2::10", "2001:db8:3::10"
NH_HOP, NH_DST, NH_ICMP6 = 0, 60, 58


@pytest.fixture
def net(lab6):
    """Router r between h1 (2001:db8:1::/64), h2 (2001:db8:2::/64) and h3, ND settled."""
    r = lab6.vnet("r")
    h1 = lab6.host6(r, "t1", ("2001:db8:1::1/64",), H1)
    h2 = lab6.host6(r, "t2", ("2001:db8:2::1/64",), H2)
    h3 = lab6.host6(r, "t3", ("2001:db8:3::1/64",), H3)
    lab6.finish_dad()
    for host in (h1, h2, h3):
        host.learn_router6(lab6.now)
    for _ in range(2):  # resolves h2, then caches it as the destination's neighbour
        h1.send(h1.udp6(H2), lab6.now)
        lab6.settle()
    assert len(h2.take_ip6()) == 2
    h1.take()
    return r, h1, h2, h3


class FullPath:
    """Counts the packets the full forwarding path takes."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        real = ipv6._forward

        def counting(*args, **kw):
            self.calls += 1
            return real(*args, **kw)

        monkeypatch.setattr(ipv6, "_forward", counting)


def test_the_fast_path_sends_the_bytes_the_full_path_sends(net, lab6, monkeypatch) -> None:
    r, h1, h2, _ = net
    frame = h1.udp6(H2, payload=b"same bytes")
    r.inet6.dests.clear()
    h1.send(frame, lab6.now)  # a miss: the full path fills the cache
    [slow] = h2.take_raw()
    full = FullPath(monkeypatch)
    forwarded = r.inet6.stats.forward
    h1.send(frame, lab6.now)
    [fast] = h2.take_raw()
    assert fast == slow and full.calls == 0
    assert r.inet6.stats.forward == forwarded + 1
    assert dpkt.ethernet.Ethernet(fast).data.hlim == 63


def test_tcp_and_echo_are_fast_too(net, lab6, monkeypatch) -> None:
    _, h1, h2, _ = net
    full = FullPath(monkeypatch)
    segment = bytes(dpkt.tcp.TCP(sport=1, dport=2, flags=dpkt.tcp.TH_ACK))
    h1.send(h1.frame6(h1.packet6(H2, 6, segment)), lab6.now)
    h1.send(h1.ping6(H2), lab6.now)
    assert len(h2.take_ip6()) == 2 and full.calls == 0


@pytest.mark.parametrize("hlim", [0, 1])
def test_hop_limit_1_or_0_takes_the_full_path(net, lab6, monkeypatch, hlim: int) -> None:
    r, h1, h2, _ = net
    full = FullPath(monkeypatch)
    h1.send(h1.udp6(H2, hlim=hlim), lab6.now)
    lab6.settle()
    assert full.calls == 1 and h2.take_ip6() == []
    assert r.inet6.stats.hoplimit_exceeded == 1
    [error] = h1.take_ip6()
    assert error.data.data.type == 3  # time exceeded


def test_icmpv6_errors_take_the_full_path(net, lab6, monkeypatch) -> None:
    _, h1, h2, _ = net
    full = FullPath(monkeypatch)
    quoted = bytes(dpkt.ethernet.Ethernet(h2.udp6(H1)).data)[:48]
    h1.send(h1.icmp6(H2, 1, 4, bytes(4) + quoted), lab6.now)  # port unreachable
    h1.send(h1.icmp6(H2, 2, 0, struct.pack("!I", 1280) + quoted), lab6.now)  # packet too big
    assert full.calls == 2 and len(h2.take_ip6()) == 2  # forwarded, by the full path


@pytest.mark.parametrize("first", [NH_HOP, NH_DST])
def test_extension_headers_take_the_full_path(net, lab6, monkeypatch, first: int) -> None:
    r, h1, h2, _ = net
    full = FullPath(monkeypatch)
    udp = bytes(dpkt.ethernet.Ethernet(h1.udp6(H2)).data.data)
    options = bytes([17, 0, 1, 4, 0, 0, 0, 0])  # next header UDP, PadN
    h1.send(h1.frame6(h1.packet6(H2, first, options + udp)), lab6.now)
    assert full.calls == 1 and len(h2.take_ip6()) == 1
    assert r.inet6.stats.forward >= 1


def test_scope_multicast_and_bad_sources_take_the_full_path(net, lab6, monkeypatch) -> None:
    r, h1, h2, _ = net
    full = FullPath(monkeypatch)
    h1.send(h1.udp6(H2, src="fe80::1"), lab6.now)  # link-local source
    h1.send(h1.udp6("fe80::99"), lab6.now)  # link-local destination
    h1.send(h1.udp6(H2, src="::"), lab6.now)
    h1.send(h1.udp6(H2, src="::1"), lab6.now)
    assert h2.take_ip6() == []
    assert r.inet6.stats.badscope == 2 and r.inet6.stats.badsrc == 2
    assert full.calls == 2  # the bad sources were refused before forwarding


def test_a_route_change_and_a_neighbour_change_are_seen_at_once(net, lab6) -> None:
    r, h1, h2, h3 = net
    route_state.add_static(
        r,
        ipaddress.ip_network(f"{H2}/128"),
        "unicast",
        ipaddress.ip_address(H3),
        None,
    )
    h1.send(h1.udp6(H2), lab6.now)
    lab6.settle()
    assert h2.take_ip6() == [] and len(h3.take_ip6()) == 1
    r.route.fib6.delete(ipaddress.ip_network(f"{H2}/128"))
    h1.send(h1.udp6(H2), lab6.now)
    lab6.settle()
    assert len(h2.take_ip6()) == 1
    lab6.clock.advance(r.inet6.nd.reachable_time + 1)
    h1.send(h1.udp6(H2), lab6.now)  # stale: the full path sends it and probes
    frames = h2.take()
    assert [f.data.nxt for f in frames if f.type == dpkt.ethernet.ETH_TYPE_IP6].count(17) == 1


def test_the_mtu_and_local_addresses_are_honoured(net, lab6, monkeypatch) -> None:
    r, h1, h2, _ = net
    big = h1.udp6(H2, payload=bytes(1400))
    r.link.get("t2").mtu = 1280
    h1.send(big, lab6.now)
    lab6.settle()
    assert h2.take_ip6() == [] and r.inet6.stats.toobig == 1
    [too_big] = h1.take_ip6()
    assert too_big.data.data.type == 2
    delivered = r.inet6.stats.delivered
    h1.send(h1.udp6("2001:db8:2::1"), lab6.now)  # the router's own address
    assert r.inet6.stats.delivered == delivered + 1
    r.inet6.forwarding = False
    h1.send(h1.udp6(H2), lab6.now)
    assert h2.take_ip6() == [] and r.inet6.stats.cantforward == 1


RULES = """
default = "block"

[[rules]]
action = "pass"
direction = "in"
interface = "t1"
proto = "udp"
"""


def test_a_firewalled_flow_is_fast_once_its_state_passed_it(net, lab6, monkeypatch) -> None:
    r, h1, h2, _ = net
    firewall.replace_ruleset(r, parse_ruleset(tomllib.loads(RULES)))
    firewall.set_enabled(r, True)
    full = FullPath(monkeypatch)
    for _ in range(4):
        h1.send(h1.udp6(H2), lab6.now)
    assert len(h2.take_ip6()) == 4
    assert full.calls == 2 and r.firewall.flows.hits == 2  # created, learned, then cached
    h2.send(h2.udp6(H1, sport=1, dport=2), lab6.now)  # not a flow h1 started
    assert h1.take_ip6() == [] and r.inet6.stats.filtered == 1
    [entry] = r.firewall.flows.entries.values()
    assert entry.state.dst == ipaddress.IPv6Address(H2).packed


def test_a_truncated_icmpv6_message_is_left_to_the_full_path(net, lab6) -> None:
    r, h1, h2, _ = net
    short = h1.frame6(h1.packet6(H2, NH_ICMP6, b""))  # an ICMPv6 header announced, none there
    h1.send(short, lab6.now)
    cut = bytearray(short)
    cut[19] = 4  # payload length 4, none of it there
    h1.send(bytes(cut), lab6.now)
    assert "internal_error" not in r.link.get("t1").counters.rx_drops
    assert [f.data.plen for f in h2.take_ip6()] == [0]  # forwarded as it is, by the full path
    assert r.inet6.stats.tooshort == 1


PING6_RULES = """
default = "block"

[[rules]]
action = "pass"
direction = "in"
interface = "t1"
proto = "icmp6"
icmp_type = "echo-request"
"""


def test_a_firewalled_echo_is_fast_both_ways_once_learned(net, lab6, monkeypatch) -> None:
    r, h1, h2, _ = net
    firewall.replace_ruleset(r, parse_ruleset(tomllib.loads(PING6_RULES)))
    firewall.set_enabled(r, True)
    body = struct.pack("!HH", 0x4242, 1) + b"vrouter ping6 payload"
    for _ in range(3):  # the first reply waits for h1's address to resolve
        h1.send(h1.ping6(H2), lab6.now)
        h2.send(h2.icmp6(H1, 129, 0, body), lab6.now)
        lab6.settle()
    assert len(h2.take_ip6()) == 3 and len(h1.take_ip6()) == 3
    full = FullPath(monkeypatch)
    hits = r.firewall.flows.hits
    h1.send(h1.ping6(H2), lab6.now)
    h2.send(h2.icmp6(H1, 129, 0, body), lab6.now)
    assert len(h2.take_ip6()) == 1 and len(h1.take_ip6()) == 1
    assert full.calls == 0 and r.firewall.flows.hits == hits + 2
    h2.send(h2.ping6(H1), lab6.now)  # a request from h2 with the same identifier: refused
    assert h1.take_ip6() == [] and r.inet6.stats.filtered == 1


def _superframe6(h1, gso_size: int, csum_start: int = 54) -> offload.OffloadBuffer:
    segment = bytes(dpkt.tcp.TCP(sport=40000, dport=5201, flags=dpkt.tcp.TH_ACK, data=b"z" * 9000))
    frame = h1.frame6(h1.packet6(H2, 6, segment))
    hdr = offload.VirtioHdr(offload.F_NEEDS_CSUM, offload.GSO_TCPV6, 74, gso_size, csum_start, 16)
    return offload.tag(frame, hdr)


def test_a_tcp_superframe_is_fast_and_sends_what_the_full_path_sends(
    net, lab6, monkeypatch
) -> None:
    r, h1, h2, _ = net
    out: list[bytes | bytearray] = []
    h2.ifp.transmit = out.append
    r.inet6.dests.clear()
    h1.send(_superframe6(h1, 1440), lab6.now)  # a miss: the full path fills the cache
    full = FullPath(monkeypatch)
    h1.send(_superframe6(h1, 1440), lab6.now)
    slow, fast = out
    assert fast == slow and offload.header_bytes(fast) == offload.header_bytes(slow)
    assert full.calls == 0 and offload.vhdr_of(fast).gso_size == 1440


@pytest.mark.parametrize(("gso_size", "csum_start"), [(1500, 54), (1440, 60)])
def test_a_superframe_too_big_or_odd_is_left_to_the_full_path(
    net, lab6, monkeypatch, gso_size: int, csum_start: int
) -> None:
    _, h1, h2, _ = net
    h2.ifp.transmit = lambda frame: None
    h1.send(_superframe6(h1, 1440), lab6.now)  # fills the cache
    full = FullPath(monkeypatch)
    h1.send(_superframe6(h1, gso_size, csum_start), lab6.now)
    assert full.calls == 1


def _not_the_full_path(*args: object) -> None:
    raise AssertionError("the fast path should have forwarded this packet")


def test_the_fast_path_transmits_and_counts_as_the_interface_output_does(
    net, lab6, monkeypatch
) -> None:
    """The fast path does the egress's output itself where that only transmits and
    counts: the same bytes and counters as through ``Ifnet.output``, a capture on the
    egress still sees the frame (output's own path), a transmit error is counted, and
    an egress that is down counts the drop as output does."""
    r, h1, h2, _ = net
    out = r.link.get("t2")
    frame = h1.udp6(H2, payload=b"inline")
    r.inet6.dests.clear()
    h1.send(frame, lab6.now)  # a miss: the full path, through Ifnet.output
    [slow] = h2.take_raw()
    monkeypatch.setattr(ipv6, "_forward", _not_the_full_path)
    monkeypatch.setattr(ipv6, "_input", _not_the_full_path)
    before = (out.counters.tx_packets, out.counters.tx_bytes)
    h1.send(frame, lab6.now)
    [inline] = h2.take_raw()
    assert inline == slow
    assert (out.counters.tx_packets, out.counters.tx_bytes) == (
        before[0] + 1, before[1] + len(inline)
    )  # fmt: skip
    seen: list[tuple[bytes, bool]] = []
    out.captures.append(lambda frame, outbound: seen.append((bytes(frame), outbound)))
    h1.send(frame, lab6.now)
    [captured] = h2.take_raw()
    assert captured == inline and seen == [(inline, True)]
    assert out.counters.tx_packets == before[0] + 2
    out.captures.clear()

    def refuse(frame: object) -> None:
        raise OSError("no room")

    transmit, out.transmit = out.transmit, refuse
    errors = out.counters.tx_errors
    h1.send(frame, lab6.now)
    assert out.counters.tx_errors == errors + 1 and out.counters.tx_packets == before[0] + 2
    out.transmit = transmit
    out.up = False
    h1.send(frame, lab6.now)
    assert h2.take_raw() == [] and out.counters.tx_drops["link_down"] == 1
    assert out.counters.tx_packets == before[0] + 2
    assert r.inet6.stats.forward >= 5
