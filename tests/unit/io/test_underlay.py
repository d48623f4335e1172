"""Tests for vrouter.io.underlay: a VXLAN interface whose outer packets are a vnet's UDP."""

from __future__ import annotations

import ipaddress

import pytest

from vrouter.core.vnet import Vnet
from vrouter.daemon import build
from vrouter.daemon.config.model import InterfaceConfig
from vrouter.io.underlay import UnderlayError, VnetUnderlay
from vrouter.link import ether
from vrouter.link import vxlan as vxlan_
from vrouter.link.ifnet import Ifnet
from vrouter.link.lltable import REACHABLE
from vrouter.stack import new_tree
from vrouter.wire import ipv4 as ip4_wire
from vrouter.wire import udp as udp_wire
from vrouter.wire import vxlan as wire

NOW = 100.0
LOCAL, REMOTE = "198.51.100.1", "198.51.100.2"
REMOTE_MAC = bytes.fromhex("020000000002")
INNER_SRC = bytes.fromhex("0200000000aa")


def _uplink(core: Vnet, mtu: int) -> tuple[Ifnet, list[bytes]]:
    icfg = InterfaceConfig(
        name="up0",
        type="test",
        addresses=(ipaddress.ip_interface(f"{LOCAL}/24"),),
        mtu=mtu,
        mac=None,
        up=True,
        host=None,
        peer=None,
    )
    ifp = build.add_interface(core, icfg, NOW)
    build.bring_up(core, [icfg], NOW)
    sent: list[bytes] = []
    ifp.transmit = lambda frame: sent.append(bytes(frame))
    entry = core.inet.arp.add(core.timers, ifp, ipaddress.ip_address(REMOTE).packed, REACHABLE, NOW)
    assert entry is not None
    core.inet.arp.confirm(entry, REMOTE_MAC, REACHABLE, NOW)
    return ifp, sent


def _lab(local: str = LOCAL, group: str | None = None) -> tuple[Vnet, Vnet, vxlan_.Vxlan]:
    tree = new_tree()
    core, lab = tree.create("core"), tree.create("lab")
    ifp = Ifnet(lab, "vx42", "vxlan", bytes.fromhex("02005e000001"), 1450)
    lab.link.add(ifp)
    cfg = vxlan_.VxlanConfigured(
        42,
        ipaddress.ip_address(local),
        wire.PORT,
        () if group else (ipaddress.ip_address(REMOTE),),
        None if group is None else ipaddress.ip_address(group),
        True,
        "core",
    )
    return core, lab, vxlan_.create(ifp, cfg)


def _inner(n: int) -> bytes:
    return b"\xff" * 6 + INNER_SRC + b"\x88\xb5" + bytes([n]) * 50


def test_frames_leave_as_udp_datagrams_of_the_underlay_vnet() -> None:
    core, _, vx = _lab()
    _, sent = _uplink(core, 1500)
    device = VnetUnderlay(vx, core, lambda: NOW)
    assert vx.underlay_mtu == 1500 and vx.ifnet.mtu == 1450
    vx.transmit(_inner(1))  # broadcast: to the one static VTEP
    (frame,) = sent
    assert frame[0:6] == REMOTE_MAC and frame[12:14] == b"\x08\x00"
    packet = frame[14:]
    assert packet[12:16] == ipaddress.ip_address(LOCAL).packed
    assert packet[16:20] == ipaddress.ip_address(REMOTE).packed
    assert packet[9] == 17
    datagram = packet[20:]
    assert udp_wire.UdpHeader.parse(datagram).dst_port == wire.PORT
    assert udp_wire.verify(packet[12:16], packet[16:20], datagram)
    assert datagram[8:] == wire.header(42) + _inner(1)
    assert any(s.port == wire.PORT for s in core.transport.sockets)
    device.close()
    assert not core.transport.sockets


def test_a_datagram_to_the_underlay_socket_reaches_the_overlay_and_is_learnt() -> None:
    core, _, vx = _lab()
    up0, _ = _uplink(core, 1500)
    VnetUnderlay(vx, core, lambda: NOW)
    src, dst = ipaddress.ip_address(REMOTE).packed, ipaddress.ip_address(LOCAL).packed
    datagram = udp_wire.build(src, dst, 49152, wire.PORT, wire.header(42) + _inner(2))
    packet = ip4_wire.build(src, dst, 17, datagram)
    ether.input(up0, up0.mac + REMOTE_MAC + b"\x08\x00" + packet, NOW)
    assert vx.macs[INNER_SRC].vtep.address == REMOTE
    assert vx.vteps[REMOTE].rx_packets == 1


def test_the_underlay_mtu_is_the_interface_it_routes_the_vtep_through() -> None:
    core, _, vx = _lab()
    _, sent = _uplink(core, 1400)
    VnetUnderlay(vx, core, lambda: NOW)
    assert (vx.underlay_mtu, vx.ifnet.mtu) == (1400, 1350)
    vx.transmit(b"\xff" * 6 + INNER_SRC + b"\x88\xb5" + bytes(1400 - 14))
    assert sent == []  # never fragmented: dropped and counted
    assert vx.ifnet.counters.tx_drops["vxlan_too_big"] == 1


def test_a_send_the_underlay_cannot_make_is_counted() -> None:
    core, _, vx = _lab()
    up0, sent = _uplink(core, 1500)
    device = VnetUnderlay(vx, core, lambda: NOW)
    build.strip_l3(core, up0, NOW)  # the address and the route to the VTEP go
    vx.transmit(_inner(3))
    assert sent == [] and vx.ifnet.counters.tx_drops["vxlan_underlay"] == 1
    device.sock.closed = True  # as when the underlay vnet is destroyed
    vx.transmit(_inner(4))
    assert vx.ifnet.counters.tx_drops["vxlan_underlay"] == 2


@pytest.mark.parametrize("group", [None, "239.1.1.42"])
def test_a_local_address_the_underlay_lacks_is_refused(group: str | None) -> None:
    core, _, vx = _lab("203.0.113.9", group)
    _uplink(core, 1500)
    with pytest.raises(UnderlayError, match=r"203\.0\.113\.9"):
        VnetUnderlay(vx, core, lambda: NOW)
    assert not core.transport.sockets


GROUP = "239.1.1.42"
GROUP_MAC = bytes.fromhex("01005e01012a")
"""The Ethernet address of 239.1.1.42 (RFC 1112 6.4)."""


def test_a_group_is_joined_on_the_interface_of_local_and_bum_frames_go_there() -> None:
    core, _, vx = _lab(group=GROUP)
    _, sent = _uplink(core, 1400)
    device = VnetUnderlay(vx, core, lambda: NOW)
    assert device.group_ifname == "up0" and vx.underlay_mtu == 1400
    assert ("up0", ipaddress.ip_address(GROUP).packed) in device.sockets[1].groups
    sent.clear()  # the IGMP report the join sent
    vx.transmit(_inner(5))  # broadcast: to the group, TTL 1
    (frame,) = sent
    assert frame[0:6] == GROUP_MAC
    packet = frame[14:]
    assert packet[8] == 1 and packet[16:20] == ipaddress.ip_address(GROUP).packed
    assert packet[20 + 8 :] == wire.header(42) + _inner(5)
    device.close()
    assert not core.transport.sockets


def test_a_datagram_to_the_group_reaches_the_overlay_and_its_sender_is_learnt() -> None:
    core, _, vx = _lab(group=GROUP)
    up0, _ = _uplink(core, 1500)
    VnetUnderlay(vx, core, lambda: NOW)
    src, dst = ipaddress.ip_address(REMOTE).packed, ipaddress.ip_address(GROUP).packed
    datagram = udp_wire.build(src, dst, 49152, wire.PORT, wire.header(42) + _inner(6))
    packet = ip4_wire.build(src, dst, 17, datagram, ttl=1)
    ether.input(up0, GROUP_MAC + REMOTE_MAC + b"\x08\x00" + packet, NOW)
    assert vx.macs[INNER_SRC].vtep.address == REMOTE


def test_the_sockets_open_again_once_the_underlay_vnet_is_back() -> None:
    tree = new_tree()
    core = tree.create("core")
    lab = tree.create("lab")
    ifp = Ifnet(lab, "vx42", "vxlan", bytes.fromhex("02005e000001"), 1450)
    lab.link.add(ifp)
    cfg = vxlan_.VxlanConfigured(
        42, ipaddress.ip_address(LOCAL), wire.PORT, (ipaddress.ip_address(REMOTE),), None, True,
        "core",
    )  # fmt: skip
    vx = vxlan_.create(ifp, cfg)
    _uplink(core, 1500)
    device = VnetUnderlay(vx, core, lambda: NOW)
    tree.destroy("core")
    assert device.closed
    vx.transmit(_inner(7))
    assert vx.ifnet.counters.tx_drops["vxlan_underlay"] == 1
    core = tree.create("core")
    with pytest.raises(UnderlayError):  # not yet: the new vnet lacks the local address
        device.reopen(core)
    _, sent = _uplink(core, 1500)
    again = device.reopen(core)
    assert not again.closed and any(s.port == wire.PORT for s in core.transport.sockets)
    vx.transmit(_inner(8))
    assert len(sent) == 1
