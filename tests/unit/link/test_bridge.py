"""Tests for vrouter.link.bridge: learning, ageing, flooding, VLAN filtering, storm control."""

from __future__ import annotations

import ipaddress

import dpkt
import pytest

from vrouter.core import tables
from vrouter.inet import ipv4
from vrouter.inet6 import ipv6
from vrouter.link import bridge as bridge_
from vrouter.link import vlan
from vrouter.link.ifnet import Ifnet
from vrouter.wire import ipv4 as ip_wire
from vrouter.wire import ipv6 as ip6_wire

MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")
MAC_C = bytes.fromhex("02000000000c")
BCAST = b"\xff" * 6

# An ARP request from 192.0.2.10 (MAC_A) for 192.0.2.11, as on the wire.
ARP_WHO_HAS = bytes.fromhex(
    "ffffffffffff" "02000000000a" "0806"
    "0001" "0800" "06" "04" "0001"
    "02000000000a" "c000020a"
    "000000000000" "c000020b"
)  # fmt: skip


def unicast(dst: bytes, src: bytes, payload: bytes = b"\x00" * 46) -> bytes:
    """An Ethernet frame of a local experimental EtherType (0x88b5) from ``src`` to ``dst``."""
    return dst + src + b"\x88\xb5" + payload


def tagged(frame: bytes, vid: int) -> bytes:
    return frame[:12] + b"\x81\x00" + vid.to_bytes(2, "big") + frame[12:]


@pytest.fixture
def seg(lab):
    """A vnet with bridge br0 (192.0.2.1/24) over three test ports p1..p3."""
    vnet = lab.vnet("l2")
    hosts = [lab.host(vnet, f"p{i}", None, None) for i in (1, 2, 3)]
    brif = Ifnet(vnet, "br0", "bridge", lab.mac())
    vnet.link.add(brif)
    ipv4.add_address(vnet, brif, ipaddress.IPv4Interface("192.0.2.1/24"), lab.now)
    br = bridge_.create(brif)
    for h in hosts:
        br.add_port(h.ifp)
    ipv4.set_up(vnet, brif, lab.now)
    for h in hosts:
        h.take_raw()
    return vnet, br, hosts


def test_broadcast_floods_to_other_ports_and_reaches_the_bridge(seg, lab) -> None:
    vnet, br, (h1, h2, h3) = seg
    h1.send(ARP_WHO_HAS, lab.now)
    assert h1.take_raw() == []
    assert h2.take_raw() == [ARP_WHO_HAS]
    assert h3.take_raw() == [ARP_WHO_HAS]
    assert br.ifnet.counters.rx_packets == 1  # the bridge's own Ifnet saw it
    assert [(e.mac, e.port.ifnet.name) for e in br.entries()] == [(MAC_A, "p1")]
    assert vnet.link.bridge.fdb_entries == 1


def test_known_unicast_goes_to_one_port_unknown_floods(seg, lab) -> None:
    _, br, (h1, h2, h3) = seg
    h2.send(unicast(MAC_A, MAC_B), lab.now)  # learns B on p2; A unknown: flooded
    assert h1.take_raw() and h3.take_raw()
    h1.send(unicast(MAC_B, MAC_A), lab.now)
    assert h2.take_raw() == [unicast(MAC_B, MAC_A)]
    assert h3.take_raw() == []
    assert br.ports["p1"].counters.forwarded == 1
    assert br.ports["p2"].counters.flooded == 1


def test_a_moved_station_is_relearnt(seg, lab) -> None:
    _, br, (h1, h2, h3) = seg
    h1.send(unicast(BCAST, MAC_A), lab.now)
    h3.send(unicast(BCAST, MAC_A), lab.now)
    assert [e.port.ifnet.name for e in br.entries()] == ["p3"]
    assert br.stats.moved == 1
    for h in (h1, h2, h3):
        h.take_raw()
    h2.send(unicast(MAC_A, MAC_B), lab.now)
    assert h3.take_raw() and not h1.take_raw()


def test_learnt_entries_age_out(seg, lab) -> None:
    vnet, br, (h1, h2, h3) = seg
    vnet.link.bridge.ageing_time = 30
    h1.send(unicast(BCAST, MAC_A), lab.now)
    lab.advance(29)
    assert len(br.entries()) == 1
    lab.advance(2)
    assert br.entries() == [] and br.stats.aged == 1
    assert vnet.link.bridge.fdb_entries == 0
    h2.send(unicast(MAC_A, MAC_B), lab.now)  # flooded again
    assert h1.take_raw() and h3.take_raw()


def test_frames_to_a_station_on_the_same_port_are_filtered(seg, lab) -> None:
    _, br, (h1, h2, _) = seg
    h1.send(unicast(BCAST, MAC_A), lab.now)
    h1.send(unicast(MAC_A, MAC_C), lab.now)
    assert br.ports["p1"].counters.drops["same_port"] == 1
    assert h2.take_raw() == [unicast(BCAST, MAC_A)]


def test_bad_sources_are_dropped_and_counted(seg, lab) -> None:
    _, br, (h1, h2, _) = seg
    h1.send(unicast(BCAST, BCAST), lab.now)
    h1.send(unicast(BCAST, br.ifnet.mac), lab.now)
    h1.send(b"\xff" * 6 + b"\x02", lab.now)  # truncated: never reaches the bridge
    drops = br.ports["p1"].counters.drops
    assert drops["src_multicast"] == 1 and drops["src_own_mac"] == 1
    assert h1.ifp.counters.rx_drops["eth_truncated"] == 1
    assert h2.take_raw() == []
    assert br.entries() == []


def test_fdb_is_bounded_by_the_vnet_knob(seg, lab) -> None:
    vnet, br, (h1, h2, _h3) = seg
    vnet.link.bridge.fdb_max = 2
    for n in range(4):
        h1.send(unicast(BCAST, bytes([2, 0, 0, 0, 1, n])), lab.now)
    assert len(br.entries()) == 2
    assert br.stats.fdb_full == 2 and vnet.link.bridge.fdb_full == 2
    assert len(h2.take_raw()) == 4  # still forwarded


def test_fdb_limit_caps_the_knob(lab) -> None:
    vnet = lab.vnet("capped")
    sysctl = lab.tree.registry.sysctl()
    sysctl.set(vnet, "vnet.limits.fdb", 100)
    assert sysctl.get(vnet, "net.link.bridge.fdb_max") == 100


def test_static_entries_never_age_and_count(seg, lab) -> None:
    _vnet, br, (h1, h2, h3) = seg
    br.add_static(MAC_C, "p3")
    lab.advance(10000)
    h1.send(unicast(MAC_C, MAC_A), lab.now)
    assert h3.take_raw() == [unicast(MAC_C, MAC_A)]
    assert h2.take_raw() == []
    h2.send(unicast(BCAST, MAC_C), lab.now)  # a static entry does not move
    assert [e.port.ifnet.name for e in br.entries() if e.static] == ["p3"]
    with pytest.raises(bridge_.BridgeError):
        br.add_static(MAC_C, "nope")


def test_the_vnet_routes_through_the_bridge(seg, lab) -> None:
    _, br, (h1, h2, h3) = seg
    h1.mac = MAC_A
    h1.addr = ipaddress.IPv4Address("192.0.2.10")
    h1.send(h1.ping("192.0.2.1", dst_mac=br.ifnet.mac), lab.now)
    # The vnet asks who 192.0.2.10 is: the request floods every port.
    for h in (h1, h2, h3):
        arp = [f for f in h.take() if f.type == dpkt.ethernet.ETH_TYPE_ARP]
        assert len(arp) == 1 and arp[0].src == br.ifnet.mac
    reply = h1.arp(dpkt.arp.ARP_OP_REPLY, "192.0.2.1", tha=br.ifnet.mac, dst_mac=br.ifnet.mac)
    h1.send(reply, lab.now)
    replies = [f for f in h1.take() if f.type == dpkt.ethernet.ETH_TYPE_IP]
    assert len(replies) == 1 and replies[0].dst == MAC_A
    assert h2.take_raw() == [] and h3.take_raw() == []


def test_storm_control_limits_broadcasts_per_port(seg, lab) -> None:
    _, br, (h1, h2, _) = seg
    br.ports["p1"].storm_pps = 5
    for _ in range(20):
        h1.send(unicast(BCAST, MAC_A), lab.now)
    assert len(h2.take_raw()) == 5
    assert br.ports["p1"].counters.drops["storm_control"] == 15
    lab.advance(1)
    h1.send(unicast(BCAST, MAC_A), lab.now)
    assert len(h2.take_raw()) == 1


def test_bridge_down_drops(seg, lab) -> None:
    _, br, (h1, h2, _) = seg
    br.ifnet.up = False
    h1.send(unicast(BCAST, MAC_A), lab.now)
    assert h2.take_raw() == []
    assert br.ports["p1"].counters.drops["bridge_down"] == 1


def test_removing_a_port_forgets_its_macs_and_gives_the_frames_back(seg, lab) -> None:
    vnet, br, (h1, h2, _) = seg
    h1.send(unicast(BCAST, MAC_A), lab.now)
    br.remove_port("p1")
    assert br.entries() == [] and vnet.link.bridge.fdb_entries == 0
    assert h1.ifp.bridge_input is None
    h1.send(unicast(BCAST, MAC_A), lab.now)
    assert h2.take_raw() == [unicast(BCAST, MAC_A)]  # only the first


def test_destroy_releases_everything(seg, lab) -> None:
    vnet, br, (h1, _, _) = seg
    h1.send(unicast(BCAST, MAC_A), lab.now)
    bridge_.destroy(br.ifnet)
    assert vnet.link.bridge.fdb_entries == 0 and vnet.link.bridge.bridges == {}
    assert all(h.ifp.bridge_input is None for h in seg[2])
    with pytest.raises(OSError):
        br.ifnet.transmit(b"")


# -- VLAN filtering -------------------------------------------------------------------------


@pytest.fixture
def vseg(lab):
    """br0 with VLAN filtering: access ports a10 (PVID 10), a20 (PVID 20), trunk (10, 20)."""
    vnet = lab.vnet("v")
    hosts = {n: lab.host(vnet, n, None, None) for n in ("a10", "a20", "trunk")}
    brif = Ifnet(vnet, "br0", "bridge", lab.mac())
    vnet.link.add(brif)
    br = bridge_.create(brif, vlan_filtering=True, pvid=10)
    br.add_port(hosts["a10"].ifp, pvid=10)
    br.add_port(hosts["a20"].ifp, pvid=20)
    br.add_port(hosts["trunk"].ifp, pvid=0, tagged=frozenset({10, 20}))
    brif.up = True
    return vnet, br, hosts


def test_access_frames_leave_the_trunk_tagged_and_stay_in_their_vlan(vseg, lab) -> None:
    _, br, h = vseg
    frame = unicast(BCAST, MAC_A)
    h["a10"].send(frame, lab.now)
    assert h["trunk"].take_raw() == [tagged(frame, 10)]
    assert h["a20"].take_raw() == []
    assert br.ifnet.counters.rx_packets == 1  # VLAN 10 is the bridge's own
    h["a20"].send(frame, lab.now)
    assert h["trunk"].take_raw() == [tagged(frame, 20)]
    assert h["a10"].take_raw() == []
    assert br.ifnet.counters.rx_packets == 1
    assert sorted((e.vid, e.port.ifnet.name) for e in br.entries()) == [
        (10, "a10"),
        (20, "a20"),
    ]


def test_trunk_frames_are_untagged_on_access_ports(vseg, lab) -> None:
    _, br, h = vseg
    frame = unicast(BCAST, MAC_B)
    h["trunk"].send(tagged(frame, 20), lab.now)
    assert h["a20"].take_raw() == [frame]
    assert h["a10"].take_raw() == []
    h["trunk"].send(tagged(frame, 30), lab.now)
    h["trunk"].send(frame, lab.now)  # no PVID on the trunk
    h["trunk"].send(tagged(frame, 4095), lab.now)
    h["trunk"].send(frame[:12] + b"\x81\x00\x00", lab.now)
    drops = br.ports["trunk"].counters.drops
    assert drops == {
        "vlan_not_member": 1,
        "vlan_untagged": 1,
        "vlan_reserved_vid": 1,
        "vlan_truncated": 1,
    }
    assert h["a10"].take_raw() == [] and h["a20"].take_raw() == []


def test_priority_tagged_frames_belong_to_the_pvid(vseg, lab) -> None:
    _, _, h = vseg
    frame = unicast(BCAST, MAC_A)
    h["a10"].send(tagged(frame, 0), lab.now)
    assert h["trunk"].take_raw() == [tagged(frame, 10)]


def test_the_same_mac_in_two_vlans_is_two_entries(vseg, lab) -> None:
    _, br, h = vseg
    h["a10"].send(unicast(BCAST, MAC_A), lab.now)
    h["trunk"].send(tagged(unicast(BCAST, MAC_A), 20), lab.now)
    assert sorted((e.vid, e.port.ifnet.name) for e in br.entries()) == [
        (10, "a10"),
        (20, "trunk"),
    ]
    assert br.stats.moved == 0


def test_a_vlan_interface_on_the_bridge_gets_its_vlan(vseg, lab) -> None:
    vnet, br, h = vseg
    sub = Ifnet(vnet, "br0.20", "vlan", lab.mac())
    vnet.link.add(sub)
    vlan.attach(sub, br.ifnet, 20)
    sub.up = True
    seen: list[tuple[str, bytes]] = []
    vnet.link.ethertypes = tables.put(
        vnet.link.ethertypes, 0x88B5, lambda ifp, frame, now: seen.append((ifp.name, bytes(frame)))
    )
    to_bridge = unicast(br.ifnet.mac, MAC_B)
    h["a20"].send(to_bridge, lab.now)
    h["a10"].send(to_bridge, lab.now)
    assert seen == [("br0.20", to_bridge), ("br0", to_bridge)]
    # And what the sub-interface sends leaves in VLAN 20 only.
    sub.output(unicast(MAC_B, sub.mac))
    assert h["a20"].take_raw() == [unicast(MAC_B, sub.mac)]
    assert h["trunk"].take_raw() == []  # MAC_B was learnt on a20
    assert h["a10"].take_raw() == []


def _ip4(size: int, df: bool) -> bytes:
    """A UDP-like IPv4 packet of ``size`` bytes from 192.0.2.10 to 192.0.2.12."""
    src = ipaddress.IPv4Address("192.0.2.10").packed
    dst = ipaddress.IPv4Address("192.0.2.12").packed
    return ip_wire.build(src, dst, 17, bytes(size - 20), df=df)


def test_a_df_packet_too_big_for_a_port_is_answered_with_fragmentation_needed(
    seg, lab
) -> None:
    vnet, br, (h1, _, h3) = seg
    h3.ifp.mtu = 1400
    br.add_static(MAC_C, "p3")
    big = MAC_C + MAC_A + b"\x08\x00" + _ip4(1500, df=True)
    h1.send(big, lab.now)
    assert h3.take_raw() == []
    assert br.ports["p3"].counters.drops["mtu_exceeded"] == 1
    (reply,) = h1.take()
    assert reply.dst == MAC_A and reply.src == br.ifnet.mac
    ip = reply.data
    assert ip.src == ipaddress.IPv4Address("192.0.2.1").packed
    assert ip.dst == ipaddress.IPv4Address("192.0.2.10").packed
    icmp = ip.data
    assert (icmp.type, icmp.code) == (3, 4)
    assert int.from_bytes(bytes(icmp)[6:8], "big") == 1400  # the next-hop MTU
    assert bytes(icmp)[8:28] == _ip4(1500, df=True)[:20]  # the offending header
    assert br.stats.too_big == 1 and vnet.inet.icmp.out_errors == 1
    # Without DF the frame is only dropped (a bridge does not fragment).
    h1.send(MAC_C + MAC_A + b"\x08\x00" + _ip4(1500, df=False), lab.now)
    assert h1.take_raw() == [] and h3.take_raw() == []
    assert br.ports["p3"].counters.drops["mtu_exceeded"] == 2


def test_an_ipv6_packet_too_big_for_a_port_is_answered_with_packet_too_big(seg, lab) -> None:
    vnet, br, (h1, _, h3) = seg
    ipv6.add_address(vnet, br.ifnet, ipaddress.IPv6Interface("2001:db8::1/64"), lab.now)
    lab.run_timers()  # the DAD probe
    lab.advance(5)  # past DAD
    h1.take_raw()
    h3.take_raw()
    h3.ifp.mtu = 1400
    br.add_static(MAC_C, "p3")
    src = ipaddress.IPv6Address("2001:db8::10").packed
    dst = ipaddress.IPv6Address("2001:db8::12").packed
    packet = ip6_wire.build(src, dst, 17, bytes(1460))
    h1.send(MAC_C + MAC_A + b"\x86\xdd" + packet, lab.now)
    assert h3.take_raw() == []
    (reply,) = h1.take()
    assert reply.dst == MAC_A and reply.src == br.ifnet.mac
    assert reply.data.dst == src
    icmp = reply.data.data
    assert icmp.type == 2 and int.from_bytes(bytes(icmp)[4:8], "big") == 1400


def test_no_address_on_the_bridge_no_icmp(seg, lab) -> None:
    vnet, br, (h1, _, h3) = seg
    ipv4.remove_address(vnet, br.ifnet, next(iter(br.ifnet.addresses)))
    h3.ifp.mtu = 1400
    br.add_static(MAC_C, "p3")
    h1.send(MAC_C + MAC_A + b"\x08\x00" + _ip4(1500, df=True), lab.now)
    assert h1.take_raw() == [] and h3.take_raw() == []
    assert br.ports["p3"].counters.drops["mtu_exceeded"] == 1 and br.stats.too_big == 0


def test_the_fast_path_counts_what_the_whole_path_counts(seg, lab) -> None:
    _, br, (h1, h2, h3) = seg
    h2.send(unicast(BCAST, MAC_B), lab.now)  # B learnt on p2
    h1.send(unicast(BCAST, MAC_A), lab.now)  # A learnt on p1
    for h in (h1, h2, h3):
        h.take_raw()
    p1, p2 = br.ports["p1"], br.ports["p2"]
    sent, tx = p2.counters.sent, h2.ifp.counters.tx_packets
    h1.send(unicast(MAC_B, MAC_A), lab.now)
    assert h2.take_raw() == [unicast(MAC_B, MAC_A)] and h3.take_raw() == []
    assert p1.counters.forwarded == 1
    assert (p2.counters.sent, h2.ifp.counters.tx_packets) == (sent + 1, tx + 1)
    # A port that is down takes the whole path: dropped there, counted as such.
    h2.ifp.up = False
    h1.send(unicast(MAC_B, MAC_A), lab.now)
    assert h2.take_raw() == [] and p2.counters.drops["port_down"] == 1
    # A station that moved is relearnt even when its frames go to a known one.
    h2.ifp.up = True
    h3.send(unicast(MAC_B, MAC_A), lab.now)
    assert [e.port.ifnet.name for e in br.entries() if e.mac == MAC_A] == ["p3"]
    assert h2.take_raw() == [unicast(MAC_B, MAC_A)]
