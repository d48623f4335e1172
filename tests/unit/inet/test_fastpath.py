"""The destination cache and the IPv4 fast path: the same bytes out, and no stale answers."""

from __future__ import annotations

import ipaddress

import dpkt
import pytest

from vrouter.firewall import subsystem as firewall
from vrouter.firewall.ruleparse import parse_ruleset
from vrouter.inet import arp, ipv4
from vrouter.link import offload
from vrouter.route import state as route_state
from vrouter.route.dest import DestCache
from vrouter.wire.checksum import ones_sum, pseudo_header_sum


@pytest.fixture
def net(lab):
    """Router r between h1 (192.0.2.0/24) and h2 (198.51.100.0/24), ARP settled both ways."""
    r = lab.vnet("r")
    h1 = lab.host(r, "t1", "192.0.2.1/24", "192.0.2.2")
    h2 = lab.host(r, "t2", "198.51.100.1/24", "198.51.100.2")
    h3 = lab.host(r, "t3", "203.0.113.1/24", "203.0.113.2")
    h1.learn_router(lab.now)
    h1.send(h1.udp("198.51.100.2"), lab.now)
    lab.settle()
    h2.take()
    return r, h1, h2, h3


def _udp(h1, n: int = 0, **kw) -> bytes:
    return h1.udp("198.51.100.2", payload=b"%d" % n + bytes(18), **kw)


def _not_the_full_path(*args: object) -> None:
    raise AssertionError("the fast path should have forwarded this packet")


def test_the_fast_path_sends_the_bytes_the_full_path_sends(net, lab, monkeypatch) -> None:
    r, h1, h2, _ = net
    frame = _udp(h1)
    r.inet.dests.clear()
    h1.send(frame, lab.now)  # a miss: the full path, which fills the cache
    [slow] = h2.take_raw()
    forwarded = r.inet.stats.forward
    monkeypatch.setattr(ipv4, "_forward", _not_the_full_path)
    h1.send(frame, lab.now)
    [fast] = h2.take_raw()
    assert fast == slow
    assert r.inet.stats.forward == forwarded + 1
    ip = dpkt.ethernet.Ethernet(fast).data
    assert ip.ttl == 63 and dpkt.ip.IP(bytes(ip)).sum == ip.sum  # checksum still valid
    out = r.link.get("t2")
    assert out.counters.tx_packets >= 2


@pytest.mark.parametrize("ttl", list(range(2, 256, 37)))
def test_the_ttl_checksum_update_is_right_for_every_ttl(net, lab, ttl: int) -> None:
    _, h1, h2, _ = net
    for _ in range(2):  # fill the cache, then take the fast path
        h1.send(_udp(h1, ttl=ttl), lab.now)
    for eth in h2.take_ip():
        ip = eth.data
        recomputed = dpkt.ip.IP(bytes(ip))
        recomputed.sum = 0
        assert ip.ttl == ttl - 1 and bytes(recomputed)[10:12] == bytes(ip)[10:12]


@pytest.mark.parametrize("target", [0x0000, 0x0001, 0x00FF, 0xFEFE, 0xFEFF, 0xFF00, 0xFFFE])
def test_the_fast_path_updates_a_checksum_near_the_wrap_as_the_full_path_does(
    net, lab, monkeypatch, target: int
) -> None:
    r, h1, h2, _ = net
    # The identification adds to the header's sum: pick one that gives ``target``.
    header = bytearray(bytes(dpkt.ethernet.Ethernet(_udp(h1, ident=0)).data)[:20])
    header[10:12] = b"\0\0"
    base = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, 20, 2))
    ident = next(
        i for i in range(65536) if ~((base + i) % 0xFFFF or 0xFFFF) & 0xFFFF == target
    )
    frame = _udp(h1, ident=ident)
    assert dpkt.ethernet.Ethernet(frame).data.sum == target
    r.inet.dests.clear()
    h1.send(frame, lab.now)  # a miss: the full path
    [slow] = h2.take_raw()
    monkeypatch.setattr(ipv4, "_forward", _not_the_full_path)
    h1.send(frame, lab.now)
    [fast] = h2.take_raw()
    assert fast == slow
    ip = dpkt.ethernet.Ethernet(fast).data
    recomputed = dpkt.ip.IP(bytes(ip))
    recomputed.sum = 0
    assert bytes(recomputed)[10:12] == bytes(ip)[10:12] or ip.sum in (0x0000, 0xFFFF)


def test_a_route_change_is_seen_by_the_next_packet(net, lab) -> None:
    r, h1, h2, h3 = net
    h1.send(_udp(h1), lab.now)
    assert len(h2.take_ip()) == 1
    route_state.add_static(
        r,
        ipaddress.ip_network("198.51.100.2/32"),
        "unicast",
        ipaddress.ip_address("203.0.113.2"),
        None,
    )
    h1.send(_udp(h1), lab.now)
    lab.settle()
    assert h2.take_ip() == [] and len(h3.take_ip()) == 1
    route_state.add_static(r, ipaddress.ip_network("198.51.100.0/25"), "blackhole", None, None)
    h1.send(_udp(h1), lab.now)
    assert len(h3.take_ip()) == 1  # the /32 still wins
    r.route.fib.delete(ipaddress.ip_network("198.51.100.2/32"))
    h1.send(_udp(h1), lab.now)
    assert h2.take_ip() == [] and h3.take_ip() == [] and r.inet.stats.blackhole == 1


def test_a_neighbour_that_changes_its_mac_gets_the_next_packet(net, lab) -> None:
    r, h1, h2, _ = net
    h1.send(_udp(h1), lab.now)
    h2.take()
    new_mac = b"\x02\x00\x00\x00\x99\x99"
    h2.send(
        h2.arp(dpkt.arp.ARP_OP_REPLY, "198.51.100.1", sha=new_mac, dst_mac=r.link.get("t2").mac),
        lab.now,
    )
    h1.send(_udp(h1), lab.now)
    [eth] = h2.take_ip()
    assert eth.dst == new_mac


def test_a_stale_neighbour_goes_back_through_arp(net, lab) -> None:
    r, h1, h2, _ = net
    h1.send(_udp(h1), lab.now)
    h2.take()
    lab.clock.advance(r.inet.arp.reachable_time + 1)
    h1.send(_udp(h1), lab.now)
    frames = h2.take()
    assert [f.type for f in frames].count(dpkt.ethernet.ETH_TYPE_IP) == 1
    assert any(f.type == dpkt.ethernet.ETH_TYPE_ARP for f in frames)  # unicast probe
    assert r.inet.arp.entries[("t2", H2)].state == arp.STALE


def test_a_forgotten_neighbour_is_resolved_again(net, lab) -> None:
    r, h1, h2, _ = net
    h1.send(_udp(h1), lab.now)
    h2.take()
    r.inet.arp.flush_interface(r.link.get("t2"))
    h1.send(_udp(h1), lab.now)
    assert [raw[12:14] for raw in h2.frames] == [b"\x08\x06"]  # a request; the packet waits
    lab.settle()
    assert len(h2.take_ip()) == 1


def test_a_smaller_mtu_a_firewall_and_a_local_address_are_honoured(net, lab) -> None:
    r, h1, h2, _ = net
    big = h1.udp("198.51.100.2", payload=bytes(1400), df=True)
    h1.send(big, lab.now)
    assert len(h2.take_ip()) == 1
    out = r.link.get("t2")
    out.mtu = 1280
    h1.send(big, lab.now)
    assert h2.take_ip() == [] and r.inet.stats.toolong == 1
    out.mtu = 1500
    firewall.replace_ruleset(r, parse_ruleset({"rules": [{"action": "block", "direction": "out"}]}))
    firewall.set_enabled(r, True)
    h1.send(big, lab.now)
    assert h2.take_ip() == [] and r.inet.stats.filtered_out == 1
    firewall.set_enabled(r, False)
    ipv4.add_address(r, r.link.get("t3"), ipaddress.IPv4Interface("198.51.100.2/32"), lab.now)
    delivered = r.inet.stats.delivered
    h1.send(_udp(h1), lab.now)
    assert h2.take_ip() == [] and r.inet.stats.delivered == delivered + 1
    r.inet.forwarding = False
    h1.send(h1.udp("198.51.100.3"), lab.now)
    assert r.inet.stats.cantforward == 1


def test_a_bad_header_is_never_fast(net, lab) -> None:
    r, h1, h2, _ = net
    frame = bytearray(_udp(h1))
    h1.send(bytes(frame), lab.now)
    h2.take()
    frame[24] ^= 0xFF  # checksum
    h1.send(bytes(frame), lab.now)
    assert h2.take_ip() == [] and r.inet.stats.badsum == 1
    frame[24] ^= 0xFF
    for cut in (14, 15, 30):  # no header at all, one byte of it, truncated inside it
        h1.send(bytes(frame[:cut]), lab.now)
    assert h2.take_ip() == [] and r.inet.stats.tooshort == 3
    assert "internal_error" not in r.link.get("t1").counters.rx_drops
    ttl1 = h1.udp("198.51.100.2", ttl=1)
    h1.send(ttl1, lab.now)
    assert h2.take_ip() == [] and r.inet.stats.ttl_exceeded == 1


def test_the_cache_is_bounded() -> None:
    from vrouter.route.fib import Route

    cache = DestCache(limit=3)
    route = Route(ipaddress.ip_network("0.0.0.0/0"))
    for n in range(7):
        cache.build(bytes([192, 0, 2, n]), route, 0)
        assert len(cache.entries) <= 3
    assert cache.misses == 7


H2 = bytes([198, 51, 100, 2])


def _partial_udp(h1) -> offload.OffloadBuffer:
    """A UDP frame as a TAP with offloads hands it over: the checksum left partial."""
    frame = bytearray(_udp(h1))
    length = len(frame) - 34
    frame[40:42] = ones_sum(b"", pseudo_header_sum(h1.ip, H2, 17, length)).to_bytes(2, "big")
    hdr = offload.VirtioHdr(offload.F_NEEDS_CSUM, offload.GSO_NONE, 0, 0, 34, 6)
    return offload.tag(bytes(frame), hdr)


@pytest.mark.parametrize("egress_offload", [True, False])
def test_a_partial_checksum_frame_is_fast_and_finished_where_it_must_be(
    net, lab, monkeypatch, egress_offload: bool
) -> None:
    r, h1, _, _ = net
    out = r.link.get("t2")
    out.offload = egress_offload
    sent: list[bytes | bytearray] = []
    out.transmit = sent.append
    for _ in range(2):
        h1.send(_partial_udp(h1), lab.now)
    monkeypatch.setattr(ipv4, "_forward", _not_the_full_path)
    h1.send(_partial_udp(h1), lab.now)
    assert len(sent) == 3
    frame = sent[-1]
    assert frame[22] == 63
    if egress_offload:
        assert offload.vhdr_of(frame) is not None  # the host finishes it
    else:
        assert offload.vhdr_of(frame) is None
        udp = bytes(frame[34:])
        assert ones_sum(udp, pseudo_header_sum(h1.ip, H2, 17, len(udp))) == 0xFFFF


def test_the_cache_and_both_neighbour_layers_name_reachable_alike() -> None:
    from vrouter.inet6 import nd
    from vrouter.route import dest

    assert arp.REACHABLE == nd.REACHABLE == dest.REACHABLE


def test_the_fast_path_transmits_and_counts_as_the_interface_output_does(
    net, lab, monkeypatch
) -> None:
    """The fast path does the egress's output itself where that only transmits and
    counts: the same bytes and counters as through ``Ifnet.output``, a capture on the
    egress still sees the frame (output's own path), and a transmit error is counted."""
    r, h1, h2, _ = net
    out = r.link.get("t2")
    h1.send(_udp(h1), lab.now)  # the cache is filled
    h2.take_raw()
    monkeypatch.setattr(ipv4, "_forward", _not_the_full_path)
    before = (out.counters.tx_packets, out.counters.tx_bytes)
    h1.send(_udp(h1), lab.now)
    [inline] = h2.take_raw()
    assert (out.counters.tx_packets, out.counters.tx_bytes) == (
        before[0] + 1, before[1] + len(inline)
    )  # fmt: skip
    seen: list[tuple[bytes, bool]] = []
    out.captures.append(lambda frame, outbound: seen.append((bytes(frame), outbound)))
    h1.send(_udp(h1), lab.now)
    [captured] = h2.take_raw()
    assert captured == inline and seen == [(inline, True)]
    assert out.counters.tx_packets == before[0] + 2
    out.captures.clear()

    def refuse(frame: object) -> None:
        raise OSError("no room")

    transmit, out.transmit = out.transmit, refuse
    errors = out.counters.tx_errors
    h1.send(_udp(h1), lab.now)
    assert out.counters.tx_errors == errors + 1 and out.counters.tx_packets == before[0] + 2
    out.transmit = transmit
    assert r.inet.stats.forward >= 4
