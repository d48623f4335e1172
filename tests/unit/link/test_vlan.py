"""Tests for 802.1Q: the wire tag, sub-interfaces on a parent, tags on offload frames."""

from __future__ import annotations

import ipaddress

import dpkt
import pytest

from vrouter.inet import ipv4
from vrouter.link import vlan
from vrouter.link.ifnet import Ifnet
from vrouter.link.offload import F_NEEDS_CSUM, GSO_TCPV4, VirtioHdr, tag, vhdr_of
from vrouter.wire import vlan as wire
from vrouter.wire.errors import IntegrityError, SanityError

# dst, src, 0x8100, TCI (PCP 5, DEI 0, VID 10), 0x88b5, payload
TAGGED = bytes.fromhex("ffffffffffff" "02000000000a" "8100" "a00a" "88b5" "c0ffee")  # fmt: skip
UNTAGGED = bytes.fromhex("ffffffffffff" "02000000000a" "88b5" "c0ffee")  # fmt: skip


def test_tag_parse_and_tci() -> None:
    tag_ = wire.VlanTag.parse(TAGGED)
    assert tag_ == wire.VlanTag(vid=10, pcp=5, dei=False)
    assert tag_.tci == 0xA00A
    with pytest.raises(IntegrityError):
        wire.VlanTag.parse(TAGGED[:17])
    with pytest.raises(SanityError):
        wire.VlanTag.parse(TAGGED[:14] + b"\x0f\xff" + TAGGED[16:])


def test_strip_and_insert_are_inverse() -> None:
    assert bytes(wire.strip(TAGGED)) == UNTAGGED
    assert bytes(wire.insert(UNTAGGED, 0xA00A)) == TAGGED
    assert wire.is_tagged(TAGGED) and not wire.is_tagged(UNTAGGED)


def test_offload_offsets_move_with_the_tag() -> None:
    vhdr = VirtioHdr(F_NEEDS_CSUM, GSO_TCPV4, 66, 1448, 34, 16)
    frame = tag(UNTAGGED + bytes(60), vhdr)
    tagged = vlan.insert(frame, 10)
    moved = vhdr_of(tagged)
    assert moved is not None and (moved.csum_start, moved.hdr_len) == (38, 70)
    back = vhdr_of(vlan.strip(tagged))
    assert back == vhdr


@pytest.fixture
def trunk(lab):
    """A vnet whose test port eth0 carries eth0.10 (192.0.2.1/24) and eth0.20 (198.51.100.1/24)."""
    vnet = lab.vnet("q")
    host = lab.host(vnet, "eth0", None, None)
    subs = {}
    for vid, address in ((10, "192.0.2.1/24"), (20, "198.51.100.1/24")):
        ifp = Ifnet(vnet, f"eth0.{vid}", "vlan", lab.mac())
        vnet.link.add(ifp)
        vlan.attach(ifp, host.ifp, vid)
        ipv4.add_address(vnet, ifp, ipaddress.IPv4Interface(address), lab.now)
        ipv4.set_up(vnet, ifp, lab.now)
        subs[vid] = ifp
    host.take_raw()
    return vnet, host, subs


def _arp_request(src_mac: bytes, spa: str, tpa: str, vid: int) -> bytes:
    arp = dpkt.arp.ARP(
        op=dpkt.arp.ARP_OP_REQUEST,
        sha=src_mac,
        spa=ipaddress.IPv4Address(spa).packed,
        tha=b"\x00" * 6,
        tpa=ipaddress.IPv4Address(tpa).packed,
    )
    frame = b"\xff" * 6 + src_mac + b"\x08\x06" + bytes(arp)
    return wire.insert(frame, vid)


def test_sub_interfaces_share_the_parent_mac(trunk) -> None:
    _, host, subs = trunk
    assert subs[10].mac == subs[20].mac == host.ifp.mac


def test_each_vlan_answers_for_its_own_subnet(trunk, lab) -> None:
    _, host, subs = trunk
    mac = bytes.fromhex("02000000000a")
    host.send(bytes(_arp_request(mac, "192.0.2.10", "192.0.2.1", 10)), lab.now)
    (reply,) = host.take_raw()
    assert wire.is_tagged(reply) and wire.tci_of(reply) & 0xFFF == 10
    arp = dpkt.arp.ARP(bytes(wire.strip(reply))[14:])
    assert arp.op == dpkt.arp.ARP_OP_REPLY and arp.spa == ipaddress.IPv4Address("192.0.2.1").packed
    # The same question in VLAN 20 is not answered: 192.0.2.1 lives in VLAN 10.
    host.send(bytes(_arp_request(mac, "192.0.2.10", "192.0.2.1", 20)), lab.now)
    assert host.take_raw() == []
    assert subs[10].counters.rx_packets == 1 and subs[20].counters.rx_packets == 1


def test_unknown_vids_and_short_tags_are_dropped_on_the_parent(trunk, lab) -> None:
    _, host, _ = trunk
    host.send(bytes(wire.insert(UNTAGGED, 30)), lab.now)
    host.send(TAGGED[:16], lab.now)
    assert host.ifp.counters.rx_drops["vlan_unknown"] == 1
    assert host.ifp.counters.rx_drops["vlan_truncated"] == 1


def test_detach_forgets_the_sub_interface(trunk, lab) -> None:
    vnet, host, subs = trunk
    assert [s.vid for s in vlan.children(host.ifp)] == [10, 20]
    assert vlan.detach(subs[10]) is not None
    assert (host.ifp.name, 10) not in vnet.link.vlans
    assert vlan.of(subs[20]) is not None and vlan.of(subs[10]) is None
