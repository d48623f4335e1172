"""Tests for vrouter.inet6.nd: DAD, address resolution, NUD, NS/NA input, router advertisements.

One router vnet with a station on each of two interfaces, built as vrouterd
builds them (``build.add_interface`` + ``build.bring_up``, EUI-64 link-local
addresses)::

    h1 2001:db8:1::10 --- eth0 [red] eth1 --- h2 2001:db8:2::10
             2001:db8:1::1/64     2001:db8:2::1/64

Stations answer Neighbor Solicitations for their own addresses during
``lab6.settle()`` unless ``auto_nd`` is off; every ND message the stack sends
is decoded here by hand and by dpkt (ICMPv6 checksum verified over the
pseudo-header), never by vrouter's own parsers.
"""

from __future__ import annotations

import itertools
import logging
import random
import struct
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Interface, IPv6Network

import dpkt
import pytest

from vrouter.daemon.config import RaConfig, RaPrefixConfig
from vrouter.inet6 import ipv6, nd
from vrouter.link import lltable

ETH_IP6 = dpkt.ethernet.ETH_TYPE_IP6
RS, RA, NS, NA = 133, 134, 135, 136
R_FLAG, S_FLAG, O_FLAG = 0x80000000, 0x40000000, 0x20000000
ALL_NODES = IPv6Address("ff02::1").packed
ALL_ROUTERS = IPv6Address("ff02::2").packed
UNSPEC = bytes(16)
OTHER_MAC = bytes.fromhex("02aabbccdd01")


def a6(text: str) -> bytes:
    return IPv6Address(text).packed


def solicited(address: bytes) -> bytes:
    """ff02::1:ffXX:XXXX (RFC 4291 2.7.1)."""
    return bytes.fromhex("ff0200000000000000000001ff") + address[13:]


def group_mac(group: bytes) -> bytes:
    return b"\x33\x33" + group[12:]


def options(data: bytes) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    i = 0
    while i < len(data):
        length = data[i + 1] * 8
        assert length > 0 and i + length <= len(data), data.hex()
        out.setdefault(data[i], []).append(data[i + 2 : i + length])
        i += length
    return out


def cksum_ok(src: bytes, dst: bytes, message: bytes) -> bool:
    pseudo = src + dst + struct.pack("!I3xB", len(message), 58)
    return dpkt.in_cksum(pseudo + message) == 0


@dataclass
class Msg:
    """One ICMPv6 message the stack sent, decoded."""

    eth: dpkt.ethernet.Ethernet
    ip: dpkt.ip6.IP6
    type: int
    code: int
    body: bytes
    """What follows type, code and checksum."""

    @property
    def target(self) -> bytes:
        return self.body[4:20]

    @property
    def flags(self) -> int:
        return struct.unpack("!I", self.body[:4])[0]

    def opts(self) -> dict[int, list[bytes]]:
        start = {RS: 4, RA: 12, NS: 20, NA: 20}[self.type]
        return options(self.body[start:])


def sent(host) -> list[Msg]:
    """Decode (and forget) every IPv6 frame the stack sent to ``host``: all must be ICMPv6."""
    out = []
    for raw in host.take_raw():
        eth = dpkt.ethernet.Ethernet(raw)
        if eth.type != ETH_IP6:
            continue
        packet = eth.data
        assert packet.nxt == 58, f"not ICMPv6: {packet!r}"
        plen = struct.unpack("!H", raw[18:20])[0]
        assert len(raw) == 14 + 40 + plen
        message = raw[54:]
        assert cksum_ok(packet.src, packet.dst, message), "bad ICMPv6 checksum"
        assert isinstance(packet.data, dpkt.icmp6.ICMP6)  # dpkt agrees it is ICMPv6
        out.append(Msg(eth, packet, message[0], message[1], message[4:]))
    return out


def of_type(msgs: list[Msg], type_: int) -> list[Msg]:
    return [m for m in msgs if m.type == type_]


class Net:
    def __init__(self, lab6, ra: RaConfig | None = None) -> None:
        self.lab = lab6
        self.red = lab6.vnet("red")
        self.h1 = lab6.host6(self.red, "eth0", ("2001:db8:1::1/64",), "2001:db8:1::10", ra=ra)
        self.h2 = lab6.host6(self.red, "eth1", ("2001:db8:2::1/64",), "2001:db8:2::10")
        lab6.finish_dad()
        self.h1.take()
        self.h2.take()

    @property
    def now(self) -> float:
        return self.lab.now

    @property
    def nd(self):
        return self.red.inet6.nd

    @property
    def stat(self):
        return self.red.inet6.icmp

    def send(self, host, frame: bytes) -> None:
        host.send(frame, self.lab.now)
        self.lab.settle()

    def entry(self, host, address: bytes | None = None):
        return self.nd.entries.get((host.ifp.name, address or host.ip6))

    def resolve_h2(self) -> None:
        """Forward one packet to h2 so red resolves it (h2 answers): h2 is REACHABLE."""
        self.send(self.h1, self.h1.udp6(self.h2.ip6, payload=b"resolve"))
        assert len(self.h2.take_ip6()) == 1
        assert self.entry(self.h2).state == nd.REACHABLE

    def h1_stale(self) -> None:
        """Make red learn h1 from an NS with SLLA: a STALE entry."""
        self.send(self.h1, self.h1.ns(self.h1.router6, src=self.h1.ip6))
        self.h1.take()
        assert self.entry(self.h1).state == nd.STALE


@pytest.fixture
def net(lab6) -> Net:
    return Net(lab6)


def drops(ifp) -> dict[str, int]:
    return dict(ifp.counters.rx_drops)


def add_tentative(net: Net, text: str = "2001:db8:1::5/64"):
    addr = ipv6.add_address(net.red, net.h1.ifp, IPv6Interface(text), net.now)
    net.lab.run_timers()  # the first probe goes when the vnet's timers next run
    return addr


# --- Duplicate Address Detection ------------------------------------------------------------


def test_bring_up_sends_one_dad_probe_per_address_from_the_unspecified_address(lab6) -> None:
    red = lab6.vnet("red")
    h1 = lab6.host6(red, "eth0", ("2001:db8:1::1/64",), "2001:db8:1::10")
    assert of_type(sent(h1), NS) == []  # not inside bring_up: when the timers next run
    lab6.run_timers()
    probes = of_type(sent(h1), NS)
    targets = {m.target for m in probes}
    assert targets == {h1.router_lla, a6("2001:db8:1::1")}
    assert len(probes) == 2
    for m in probes:
        assert m.ip.src == UNSPEC and m.ip.dst == solicited(m.target)
        assert m.eth.dst == group_mac(solicited(m.target)) and m.eth.src == h1.ifp.mac
        assert m.ip.hlim == 255 and m.code == 0
        assert m.body[:4] == bytes(4) and len(m.body) == 20  # no options at all
    assert sorted(lab6.tentative()) == sorted(
        [f"red:eth0:{IPv6Address(h1.router_lla)}", "red:eth0:2001:db8:1::1"]
    )
    assert h1.router_lla[:8] == bytes.fromhex("fe80000000000000")


def test_new_address_is_tentative_and_probed_once(net: Net) -> None:
    out_ns = net.stat.out_ns
    addr = add_tentative(net)
    assert addr.state == "tentative" and not addr.usable
    [m] = sent(net.h1)
    assert m.type == NS and m.code == 0
    assert m.eth.dst == bytes.fromhex("3333ff000005") and m.eth.src == net.h1.ifp.mac
    assert m.ip.src == UNSPEC and m.ip.dst == a6("ff02::1:ff00:5") and m.ip.hlim == 255
    assert m.target == a6("2001:db8:1::5")
    assert m.opts() == {}  # DAD probes carry no Source Link-Layer Address option
    assert net.stat.out_ns == out_ns + 1
    assert a6("ff02::1:ff00:5") in net.red.inet6.groups["eth0"]


def test_echo_to_a_tentative_address_is_dropped(net: Net) -> None:
    add_tentative(net)
    net.h1.take()
    net.send(net.h1, net.h1.ping6("2001:db8:1::5"))
    assert sent(net.h1) == []
    assert drops(net.h1.ifp) == {"ip6_tentative": 1}
    assert net.stat.out_echo_reply == 0


def test_address_resolution_for_a_tentative_address_is_not_answered(net: Net) -> None:
    """RFC 4862 5.4.3: an NS for a tentative address from a unicast source is discarded."""
    add_tentative(net)
    net.h1.take()
    net.send(net.h1, net.h1.ns("2001:db8:1::5"))
    assert sent(net.h1) == []
    assert net.stat.out_na == 0
    assert net.red.inet6.local[a6("2001:db8:1::5")].state == "tentative"


def test_tentative_address_becomes_preferred_after_retrans_timer(net: Net, caplog) -> None:
    addr = add_tentative(net)
    net.h1.take()
    with caplog.at_level(logging.INFO, logger="vrouter.nd"):
        net.lab.advance(0.5)
        assert addr.state == "tentative"
        net.lab.advance(0.5)
    assert addr.state == "preferred" and addr.usable
    assert sent(net.h1) == []  # one probe only (dad_transmits = 1)
    assert any(
        "2001:db8:1::5/64 is preferred" in r.getMessage() and "eth0" in r.getMessage()
        for r in caplog.records
    )
    net.send(net.h1, net.h1.ping6("2001:db8:1::5"))
    [reply] = sent(net.h1)
    assert reply.type == 129 and reply.ip.src == a6("2001:db8:1::5")


def test_dad_probe_from_another_node_marks_the_address_duplicated(net: Net, caplog) -> None:
    addr = add_tentative(net)
    net.h1.take()
    with caplog.at_level(logging.WARNING, logger="vrouter.nd"):
        net.send(net.h1, net.h1.ns("2001:db8:1::5", src=UNSPEC, slla=False))
    assert addr.state == "duplicated" and not addr.usable
    assert net.stat.dad_duplicates == 1
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = record.getMessage()
    assert "red" in text and "eth0" in text and "2001:db8:1::5" in text
    assert "duplicate" in text
    # Never preferred, no more probes, never answered.
    net.lab.advance(5)
    assert addr.state == "duplicated"
    assert sent(net.h1) == []
    net.send(net.h1, net.h1.ping6("2001:db8:1::5"))
    assert sent(net.h1) == []


def test_na_for_a_tentative_address_marks_it_duplicated(net: Net, caplog) -> None:
    addr = add_tentative(net)
    net.h1.take()
    with caplog.at_level(logging.WARNING, logger="vrouter.nd"):
        net.send(
            net.h1,
            net.h1.na("2001:db8:1::5", dst=ALL_NODES, solicited=False, tlla=OTHER_MAC),
        )
    assert addr.state == "duplicated"
    assert net.stat.dad_duplicates == 1
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "2001:db8:1::5" in text and "eth0" in text and OTHER_MAC.hex(":") in text
    net.lab.advance(2)
    assert addr.state == "duplicated" and sent(net.h1) == []


@pytest.mark.parametrize("how", ["slla_from_unspecified", "not_to_solicited_node"])
def test_malformed_dad_probe_is_invalid_and_leaves_the_address_tentative(
    net: Net, how: str
) -> None:
    """RFC 4861 7.1.1: from ::, the NS goes to a solicited-node group and has no SLLA."""
    addr = add_tentative(net)
    net.h1.take()
    if how == "slla_from_unspecified":
        frame = net.h1.ns("2001:db8:1::5", src=UNSPEC, slla=True)
    else:
        frame = net.h1.ns("2001:db8:1::5", src=UNSPEC, slla=False, dst=ALL_NODES)
    net.send(net.h1, frame)
    assert addr.state == "tentative"
    assert net.stat.dad_duplicates == 0 and net.stat.nd_bad == 1
    assert drops(net.h1.ifp) == {"nd_invalid": 1}
    net.lab.advance(1)
    assert addr.state == "preferred"


def test_dad_transmits_zero_makes_a_new_address_preferred_at_once(net: Net) -> None:
    net.red.inet6.dad_transmits = 0
    addr = add_tentative(net)
    assert addr.state == "preferred"
    assert sent(net.h1) == []
    net.send(net.h1, net.h1.ping6("2001:db8:1::5"))
    assert [m.type for m in sent(net.h1)] == [129]


def test_dad_transmits_two_sends_two_probes_retrans_timer_apart(net: Net) -> None:
    net.red.inet6.dad_transmits = 2
    addr = add_tentative(net)
    assert len(of_type(sent(net.h1), NS)) == 1
    net.lab.advance(1)
    assert addr.state == "tentative"
    [again] = sent(net.h1)
    assert again.type == NS and again.ip.src == UNSPEC
    net.lab.advance(1)
    assert addr.state == "preferred"
    assert sent(net.h1) == []


# --- address resolution ----------------------------------------------------------------------


def test_unknown_neighbour_is_solicited_by_multicast_and_the_packet_held(net: Net) -> None:
    net.h2.auto_nd = False
    out_ns = net.stat.out_ns
    net.send(net.h1, net.h1.udp6(net.h2.ip6, payload=b"held"))
    [m] = sent(net.h2)
    assert m.type == NS and m.code == 0
    assert m.eth.dst == bytes.fromhex("3333ff000010")
    assert m.eth.src == net.h2.ifp.mac
    assert m.ip.dst == a6("ff02::1:ff00:10") and m.ip.hlim == 255
    assert m.ip.src == net.h2.router_lla  # link-local source
    assert m.target == net.h2.ip6
    assert m.opts() == {1: [net.h2.ifp.mac]}
    assert net.stat.out_ns == out_ns + 1
    entry = net.entry(net.h2)
    assert entry.state == nd.INCOMPLETE and len(entry.hold) == 1


def test_solicited_na_releases_the_held_packets_and_makes_the_entry_reachable(net: Net) -> None:
    net.h2.auto_nd = False
    for i in range(3):
        net.send(net.h1, net.h1.udp6(net.h2.ip6, payload=b"held %d" % i))
    assert len(of_type(sent(net.h2), NS)) == 1  # one solicitation for all three
    net.send(net.h2, net.h2.na(net.h2.ip6, dst=net.h2.router_lla, solicited=True))
    frames = net.h2.take_ip6()
    assert [f.data.data.data for f in frames] == [b"held 0", b"held 1", b"held 2"]
    for f in frames:
        assert f.dst == net.h2.mac and f.src == net.h2.ifp.mac
        assert f.data.hlim == 63
    entry = net.entry(net.h2)
    assert entry.state == nd.REACHABLE and entry.mac == net.h2.mac
    assert len(entry.hold) == 0 and entry.confirmed == net.now
    # Later packets go straight out.
    net.send(net.h1, net.h1.udp6(net.h2.ip6, payload=b"direct"))
    [f] = net.h2.take_ip6()
    assert f.data.data.data == b"direct"


def test_na_without_target_link_layer_address_does_not_resolve(net: Net) -> None:
    net.h2.auto_nd = False
    net.send(net.h1, net.h1.udp6(net.h2.ip6))
    net.h2.take()
    net.send(net.h2, net.h2.na(net.h2.ip6, dst=net.h2.router_lla, tlla=False))
    assert net.entry(net.h2).state == nd.INCOMPLETE
    assert net.h2.take_ip6() == []


def test_resolution_fails_after_three_solicitations_with_address_unreachable(
    net: Net,
) -> None:
    net.h2.auto_nd = False
    start = net.now
    originals = [net.h1.udp6(net.h2.ip6, payload=b"lost %d" % i) for i in range(2)]
    for frame in originals:
        net.send(net.h1, frame)
    times = []
    for _ in range(6):
        for m in sent(net.h2):
            assert m.type == NS and m.ip.dst == solicited(net.h2.ip6)
            assert m.target == net.h2.ip6
            times.append(net.now - start)
        if net.entry(net.h2) is None:
            break
        net.lab.advance(0.5)
    assert times == [0.0, 1.0, 2.0]
    assert net.now - start == 3.0  # failed one RetransTimer after the last
    assert net.entry(net.h2) is None
    assert net.h2.ifp.counters.tx_drops["nd_unresolved"] == 2
    assert net.stat.nd_timeouts == 1
    errors = sent(net.h1)
    assert len(errors) == 2
    for err, original in zip(errors, originals, strict=True):
        assert (err.type, err.code) == (1, 3)  # address unreachable
        assert err.ip.src == a6("2001:db8:1::1") and err.ip.dst == net.h1.ip6
        assert err.eth.dst == net.h1.mac
        assert err.body[:4] == bytes(4)
        quoted = err.body[4:]
        assert quoted[8:] == original[14 + 8 :]  # after the hop limit: unchanged
        assert quoted[7] == 63  # the held packet had been forwarded
    assert net.stat.out_errors == 2


def test_failed_resolution_of_our_own_packet_sends_no_error(net: Net) -> None:
    # An echo request "from" an address on eth1's prefix: the reply goes out eth1.
    net.h2.auto_nd = False
    net.send(net.h1, net.h1.ping6(net.h1.router6, src="2001:db8:2::99"))
    net.lab.advance(3)
    assert net.entry(net.h2, a6("2001:db8:2::99")) is None
    assert net.h2.ifp.counters.tx_drops["nd_unresolved"] == 1
    assert sent(net.h1) == []
    assert net.stat.out_errors == 0


def test_hold_queue_keeps_the_newest_sixteen_packets(net: Net) -> None:
    net.h2.auto_nd = False
    for i in range(20):
        net.send(net.h1, net.h1.udp6(net.h2.ip6, payload=b"p%02d" % i))
    assert len(of_type(sent(net.h2), NS)) == 1
    assert len(net.entry(net.h2).hold) == lltable.HOLD_LIMIT == 16
    assert net.stat.nd_queue_overflow == 4
    assert net.h2.ifp.counters.tx_drops["nd_queue_overflow"] == 4
    net.send(net.h2, net.h2.na(net.h2.ip6, dst=net.h2.router_lla))
    got = [f.data.data.data for f in net.h2.take_ip6()]
    assert got == [b"p%02d" % i for i in range(4, 20)]


def test_resolution_then_failure_drops_only_the_held_sixteen(net: Net) -> None:
    net.h2.auto_nd = False
    for i in range(18):
        net.send(net.h1, net.h1.udp6(net.h2.ip6, payload=b"p%02d" % i))
    net.lab.advance(3)
    assert net.h2.ifp.counters.tx_drops["nd_unresolved"] == 16
    errors = sent(net.h1)
    assert len(errors) == 16
    assert all((e.type, e.code) == (1, 3) for e in errors)


# --- Neighbour Unreachability Detection ------------------------------------------------------


def test_reachable_entry_goes_stale_after_reachable_time(net: Net) -> None:
    net.nd.reachable_time = 20.0
    net.resolve_h2()
    entry = net.entry(net.h2)
    net.lab.advance(19)
    assert entry.state == nd.REACHABLE
    net.lab.advance(12)  # the table is swept every 30 s
    assert entry.state == nd.STALE
    assert entry.mac == net.h2.mac
    assert sent(net.h2) == []  # going stale sends nothing


def test_reachable_entry_used_after_reachable_time_is_treated_as_stale(net: Net) -> None:
    net.nd.reachable_time = 10.0
    net.resolve_h2()
    net.lab.advance(11)  # before the sweep: the entry still says reachable
    net.send(net.h1, net.h1.udp6(net.h2.ip6, payload=b"late"))
    [f] = net.h2.take_ip6()
    assert f.dst == net.h2.mac  # sent at once on the cached address
    entry = net.entry(net.h2)
    assert entry.state == nd.DELAY
    net.lab.advance(5)  # h2 answers the probe
    assert entry.state == nd.REACHABLE
    resolution, probe = net.h2.solicited
    assert resolution.dst == solicited(net.h2.ip6)
    assert probe.dst == net.h2.ip6  # a unicast probe


def test_stale_entry_used_goes_to_delay_then_probe_with_three_unicast_probes(net: Net) -> None:
    net.h1_stale()
    net.h1.auto_nd = False
    net.send(net.h1, net.h1.ping6(net.h1.router6))
    [reply] = sent(net.h1)
    assert reply.type == 129 and reply.eth.dst == net.h1.mac
    entry = net.entry(net.h1)
    assert entry.state == nd.DELAY
    net.lab.advance(4.5)
    assert sent(net.h1) == [] and entry.state == nd.DELAY
    start = net.now + 0.5
    times, probes = [], []
    for _ in range(20):
        net.lab.advance(0.5)
        for m in sent(net.h1):
            probes.append(m)
            times.append(net.now - start)
        if net.entry(net.h1) is None:
            break
    assert times == [0.0, 1.0, 2.0]
    assert net.now - start == 3.0
    for m in probes:
        assert m.type == NS and m.code == 0
        assert m.eth.dst == net.h1.mac  # the cached MAC: unicast
        assert m.ip.dst == net.h1.ip6 and m.ip.src == net.h1.router_lla
        assert m.ip.hlim == 255
        assert m.target == net.h1.ip6
        assert m.opts() == {1: [net.h1.ifp.mac]}
    assert net.entry(net.h1) is None


@pytest.mark.parametrize("when", ["delay", "probe"])
@pytest.mark.parametrize("override", [True, False])
def test_solicited_na_in_delay_or_probe_makes_the_entry_reachable(
    net: Net, when: str, override: bool
) -> None:
    net.h1_stale()
    net.h1.auto_nd = False
    net.send(net.h1, net.h1.ping6(net.h1.router6))
    net.h1.take()
    entry = net.entry(net.h1)
    if when == "probe":
        net.lab.advance(5)
        assert entry.state == nd.PROBE
        assert len(of_type(sent(net.h1), NS)) == 1
    else:
        assert entry.state == nd.DELAY
    net.send(
        net.h1,
        net.h1.na(net.h1.ip6, dst=net.h1.router_lla, solicited=True, override=override),
    )
    assert entry.state == nd.REACHABLE and entry.mac == net.h1.mac
    assert entry.confirmed == net.now
    net.lab.advance(10)
    assert sent(net.h1) == []  # no (more) probes
    assert net.entry(net.h1) is entry


def test_unused_stale_entry_is_forgotten_after_stale_time(net: Net) -> None:
    net.nd.stale_time = 100.0
    net.h1_stale()
    net.lab.advance(95)
    assert net.entry(net.h1) is not None
    net.lab.advance(30)
    assert net.entry(net.h1) is None


# --- NA input ----------------------------------------------------------------------------


def test_na_without_override_with_another_mac_makes_a_reachable_entry_stale_only(
    net: Net,
) -> None:
    net.resolve_h2()
    entry = net.entry(net.h2)
    net.send(
        net.h2,
        net.h2.na(net.h2.ip6, dst=net.h2.router_lla, override=False, tlla=OTHER_MAC),
    )
    assert entry.state == nd.STALE
    assert entry.mac == net.h2.mac
    net.send(net.h1, net.h1.udp6(net.h2.ip6))
    [f] = net.h2.take_ip6()
    assert f.dst == net.h2.mac


def test_na_without_override_with_another_mac_is_ignored_when_not_reachable(net: Net) -> None:
    net.h1_stale()
    entry = net.entry(net.h1)
    net.send(
        net.h1,
        net.h1.na(net.h1.ip6, dst=ALL_NODES, solicited=False, override=False, tlla=OTHER_MAC),
    )
    assert entry.state == nd.STALE and entry.mac == net.h1.mac


def test_ignored_na_does_not_update_the_router_flag(net: Net) -> None:
    """RFC 4861 7.2.5: O clear and a different link-layer address: a REACHABLE entry
    goes STALE "but do not update the entry in any other way" -- IsRouter included."""
    net.resolve_h2()
    entry = net.entry(net.h2)
    assert entry.router is False
    net.send(
        net.h2,
        net.h2.na(net.h2.ip6, dst=net.h2.router_lla, override=False, router=True, tlla=OTHER_MAC),
    )
    assert entry.state == nd.STALE and entry.mac == net.h2.mac
    assert entry.router is False, "an ignored NA updated IsRouter"


def test_unsolicited_override_na_with_a_new_mac_updates_the_entry_to_stale(net: Net) -> None:
    net.resolve_h2()
    entry = net.entry(net.h2)
    net.send(
        net.h2,
        net.h2.na(net.h2.ip6, dst=ALL_NODES, solicited=False, override=True, tlla=OTHER_MAC),
    )
    assert entry.state == nd.STALE and entry.mac == OTHER_MAC
    net.send(net.h1, net.h1.udp6(net.h2.ip6, payload=b"moved"))
    [f] = net.h2.take_ip6()
    assert f.dst == OTHER_MAC
    assert entry.state == nd.DELAY


def test_unsolicited_na_with_the_same_mac_changes_nothing(net: Net) -> None:
    net.resolve_h2()
    entry = net.entry(net.h2)
    net.send(net.h2, net.h2.na(net.h2.ip6, dst=ALL_NODES, solicited=False))
    assert entry.state == nd.REACHABLE and entry.mac == net.h2.mac


def test_solicited_na_to_a_multicast_destination_is_invalid(net: Net) -> None:
    net.resolve_h2()
    entry = net.entry(net.h2)
    net.send(net.h2, net.h2.na(net.h2.ip6, dst=ALL_NODES, solicited=True, tlla=OTHER_MAC))
    assert net.stat.nd_bad == 1
    assert drops(net.h2.ifp) == {"nd_invalid": 1}
    assert entry.state == nd.REACHABLE and entry.mac == net.h2.mac


def test_unsolicited_na_for_an_unknown_neighbour_creates_no_entry(net: Net) -> None:
    net.send(net.h1, net.h1.na(net.h1.ip6, dst=ALL_NODES, solicited=False))
    assert net.entry(net.h1) is None
    assert net.stat.in_na == 1


def test_na_for_our_preferred_address_is_logged_and_ignored(net: Net, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="vrouter.nd"):
        net.send(
            net.h1,
            net.h1.na(net.h1.router6, dst=ALL_NODES, solicited=False, tlla=OTHER_MAC),
        )
    assert net.red.inet6.local[net.h1.router6].state == "preferred"
    assert drops(net.h1.ifp) == {"nd_dupaddr": 1}
    [record] = caplog.records
    assert "2001:db8:1::1" in record.getMessage() and OTHER_MAC.hex(":") in record.getMessage()


# --- NS input ----------------------------------------------------------------------------


@pytest.mark.parametrize("to", ["unicast", "solicited-node"])
@pytest.mark.parametrize("target", ["global", "link-local"])
def test_ns_for_our_address_gets_a_solicited_na_and_the_asker_is_learnt(
    net: Net, to: str, target: str
) -> None:
    h1 = net.h1
    tgt = h1.router6 if target == "global" else h1.router_lla
    src = h1.ip6 if target == "global" else h1.lla
    if to == "unicast":
        frame = h1.ns(tgt, src=src, dst=tgt, dst_mac=h1.ifp.mac)
    else:
        frame = h1.ns(tgt, src=src)
    net.send(h1, frame)
    [m] = sent(h1)
    assert m.type == NA and m.code == 0
    assert m.eth.dst == h1.mac and m.eth.src == h1.ifp.mac
    assert m.ip.src == tgt and m.ip.dst == src and m.ip.hlim == 255
    assert m.flags == R_FLAG | S_FLAG | O_FLAG
    assert m.target == tgt
    assert m.opts() == {2: [h1.ifp.mac]}
    entry = net.entry(h1, src)
    assert entry.state == nd.STALE and entry.mac == h1.mac
    assert net.stat.out_na == 1 and net.stat.in_ns == 1


def test_na_router_flag_is_clear_when_not_forwarding(net: Net) -> None:
    net.red.inet6.forwarding = False
    net.send(net.h1, net.h1.ns(net.h1.router6))
    [m] = sent(net.h1)
    assert m.flags == S_FLAG | O_FLAG


def test_ns_from_an_updated_station_replaces_the_cached_mac(net: Net) -> None:
    net.resolve_h2()
    net.send(net.h2, net.h2.ns(net.h2.router6, slla=OTHER_MAC))
    entry = net.entry(net.h2, net.h2.lla)
    assert entry.state == nd.STALE  # the asker is learnt under the source address
    [m] = sent(net.h2)
    assert m.eth.dst == OTHER_MAC


def test_ns_without_slla_from_an_unknown_asker_is_answered_after_resolving_it(
    net: Net,
) -> None:
    net.send(net.h1, net.h1.ns(net.h1.router6, src=net.h1.ip6, slla=False))
    # red solicited h1 (h1 answered), then sent the held NA.
    [asked] = net.h1.solicited
    assert asked.dst == solicited(net.h1.ip6)
    [m] = sent(net.h1)
    assert m.type == NA and m.ip.dst == net.h1.ip6 and m.eth.dst == net.h1.mac
    assert m.flags & S_FLAG
    assert m.target == net.h1.router6


def test_dad_probe_for_our_preferred_address_is_defended_to_all_nodes(net: Net) -> None:
    net.send(net.h1, net.h1.ns(net.h1.router6, src=UNSPEC, slla=False))
    [m] = sent(net.h1)
    assert m.type == NA
    assert m.ip.dst == ALL_NODES and m.eth.dst == bytes.fromhex("333300000001")
    assert m.ip.src == net.h1.router6 and m.ip.hlim == 255
    assert m.flags & S_FLAG == 0
    assert m.flags & O_FLAG
    assert m.target == net.h1.router6
    assert m.opts() == {2: [net.h1.ifp.mac]}
    assert net.nd.entries == {}  # nothing learnt from ::
    assert net.red.inet6.local[net.h1.router6].state == "preferred"


def test_ns_for_an_address_not_ours_is_ignored(net: Net) -> None:
    net.send(net.h1, net.h1.ns("2001:db8:1::77"))
    assert sent(net.h1) == []
    # ... and the router's eth1 address is not answered on eth0.
    net.send(net.h1, net.h1.ns(net.h2.router6, dst=net.h1.router6))
    assert sent(net.h1) == []
    assert net.stat.out_na == 0


# --- validity (RFC 4861 6.1, 7.1) -----------------------------------------------------------


def _nd_frame(net: Net, kind: str, **kw) -> bytes:
    h1 = net.h1
    if kind == "ns":
        return h1.ns(h1.router6, **kw)
    if kind == "na":
        return h1.na(h1.ip6, dst=h1.router_lla, **kw)
    if kind == "rs":
        return h1.rs(**kw)
    body = struct.pack("!BBHII", 64, 0, 1800, 0, 0)
    return h1.nd(RA, body, src=h1.lla, dst=ALL_NODES, **kw)


@pytest.mark.parametrize("kind", ["ns", "na", "rs", "ra"])
@pytest.mark.parametrize("bad", [{"hlim": 64}, {"hlim": 254}, {"code": 1}], ids=str)
def test_nd_message_with_hop_limit_not_255_or_nonzero_code_is_dropped(
    net: Net, kind: str, bad: dict[str, int]
) -> None:
    net.send(net.h1, _nd_frame(net, kind, **bad))
    assert sent(net.h1) == []
    assert drops(net.h1.ifp) == {"nd_invalid": 1}
    assert net.stat.nd_bad == 1
    assert net.nd.entries == {}
    # The same message, valid, is accepted.
    net.send(net.h1, _nd_frame(net, kind))
    assert drops(net.h1.ifp) == {"nd_invalid": 1}


def test_nd_message_with_a_zero_length_option_is_dropped(net: Net) -> None:
    body = bytes(4) + net.h1.router6 + bytes([1, 0, 0, 0, 0, 0, 0, 0])
    net.send(net.h1, net.h1.nd(NS, body, src=net.h1.ip6, dst=solicited(net.h1.router6)))
    assert sent(net.h1) == []
    assert net.stat.nd_bad == 1
    assert drops(net.h1.ifp) == {"nd_badopt": 1}


def test_ra_from_another_router_is_learnt_as_a_router(net: Net) -> None:
    body = struct.pack("!BBHII", 64, 0, 1800, 0, 0) + bytes([1, 1]) + net.h1.mac
    net.send(net.h1, net.h1.nd(RA, body, src=net.h1.lla, dst=ALL_NODES))
    entry = net.entry(net.h1, net.h1.lla)
    assert entry.state == nd.STALE and entry.mac == net.h1.mac and entry.router
    assert net.stat.in_ra == 1
    # From a global address it is invalid (RFC 4861 6.1.2).
    net.send(net.h1, net.h1.nd(RA, body, src=net.h1.ip6, dst=ALL_NODES))
    assert drops(net.h1.ifp) == {"nd_invalid": 1}


# --- router advertisements -------------------------------------------------------------------

PREFIX_A = RaPrefixConfig(IPv6Network("2001:db8:1::/64"), True, True, 86400, 14400)
PREFIX_B = RaPrefixConfig(IPv6Network("2001:db8:100::/64"), True, False, 0xFFFFFFFF, 0xFFFFFFFF)


def ra_config(interval: float = 200.0, mtu: bool = True) -> RaConfig:
    return RaConfig(
        interval=interval,
        lifetime=1800,
        hop_limit=64,
        managed=False,
        other=True,
        mtu=mtu,
        prefixes=(PREFIX_A, PREFIX_B),
        rdnss=(IPv6Address("2001:db8:1::53"), IPv6Address("2001:db8:1::54")),
        rdnss_lifetime=600,
    )


class Extreme(random.Random):
    """A generator whose ``uniform`` always returns one end of the range."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


class RaNet:
    """red advertises on eth0 (to h1) but not on eth1 (to h2); nothing sent yet past DAD."""

    def __init__(self, lab6, config: RaConfig, rng: random.Random | None = None) -> None:
        self.lab = lab6
        self.red = lab6.vnet("red")
        if rng is not None:
            self.red.inet6.rng = rng
        self.h1 = lab6.host6(self.red, "eth0", ("2001:db8:1::1/64",), "2001:db8:1::10", ra=config)
        self.h2 = lab6.host6(self.red, "eth1", ("2001:db8:2::1/64",), "2001:db8:2::10")
        self.up_at = lab6.now
        self.h1.take()
        self.h2.take()

    def ras(self, host=None) -> list[Msg]:
        return of_type(sent(host or self.h1), RA)

    def rs(self, host=None, **kw) -> None:
        host = host or self.h1
        host.send(host.rs(**kw), self.lab.now)
        self.lab.settle()

    def run_until(self, end: float) -> list[tuple[float, Msg]]:
        """Wake at each of red's deadlines until ``end``; return (time, RA) as sent."""
        out = []
        while True:
            deadline = self.red.timers.next_deadline()
            if deadline is None or deadline > end:
                break
            self.lab.advance(max(0.0, deadline - self.lab.now))
            out.extend((self.lab.now, m) for m in self.ras())
        return out


def test_ra_is_not_sent_before_the_link_local_address_is_preferred(lab6) -> None:
    net = RaNet(lab6, ra_config())
    ra = net.red.inet6.ra["eth0"]
    assert not ra.ready
    net.rs()
    assert net.ras() == []
    assert net.red.inet6.icmp.in_rs == 1
    lab6.advance(0.5)
    net.rs()
    assert net.ras() == []
    lab6.advance(0.5)  # DAD done
    assert len(net.ras()) == 1
    assert ra.ready and net.red.inet6.icmp.out_ra == 1


def test_ra_contents(lab6) -> None:
    net = RaNet(lab6, ra_config())
    lab6.finish_dad()
    [m] = net.ras()
    h1 = net.h1
    assert m.eth.dst == bytes.fromhex("333300000001") and m.eth.src == h1.ifp.mac
    assert m.ip.src == h1.router_lla and m.ip.dst == ALL_NODES
    assert m.ip.hlim == 255 and m.code == 0
    cur_hop, flags, lifetime, reachable, retrans = struct.unpack("!BBHII", m.body[:12])
    assert (cur_hop, flags, lifetime, reachable, retrans) == (64, 0x40, 1800, 0, 0)
    opts = m.opts()
    assert sorted(opts) == [1, 3, 5, 25]
    assert opts[1] == [h1.ifp.mac]
    assert opts[5] == [struct.pack("!HI", 0, 1500)]
    first, second = (struct.unpack("!BBIII16s", p) for p in opts[3])
    assert first == (64, 0xC0, 86400, 14400, 0, a6("2001:db8:1::"))
    assert second == (64, 0x80, 0xFFFFFFFF, 0xFFFFFFFF, 0, a6("2001:db8:100::"))
    [rdnss] = opts[25]
    assert rdnss == struct.pack("!HI", 0, 600) + a6("2001:db8:1::53") + a6("2001:db8:1::54")


def test_ra_without_the_mtu_option_when_disabled(lab6) -> None:
    net = RaNet(lab6, ra_config(mtu=False))
    lab6.finish_dad()
    [m] = net.ras()
    assert 5 not in m.opts()


def test_ra_mtu_option_follows_the_interface_mtu(lab6) -> None:
    net = RaNet(lab6, ra_config())
    net.h1.ifp.mtu = 1400
    lab6.finish_dad()
    [m] = net.ras()
    assert m.opts()[5] == [struct.pack("!HI", 0, 1400)]


@pytest.mark.parametrize("seed", range(8))
def test_rs_is_answered_within_half_a_second(lab6, seed: int) -> None:
    net = RaNet(lab6, ra_config(), random.Random(seed))
    lab6.finish_dad()
    assert len(net.ras()) == 1
    lab6.advance(4)  # past MIN_DELAY_BETWEEN_RAS, before the next periodic one
    assert net.ras() == []
    asked = lab6.now
    net.rs()
    lab6.advance(0)
    got = net.ras()
    while not got and lab6.now < asked + 1:
        lab6.advance(0.05)
        got = net.ras()
    [m] = got
    assert lab6.now - asked <= 0.5 + 1e-9
    assert m.ip.dst == ALL_NODES and m.ip.src == net.h1.router_lla and m.ip.hlim == 255
    assert m.eth.dst == bytes.fromhex("333300000001")
    assert struct.unpack("!H", m.body[2:4])[0] == 1800
    assert sorted(m.opts()) == [1, 3, 5, 25]
    # The asker (it sent its MAC) is a STALE neighbour now.
    entry = net.red.inet6.nd.entries[("eth0", net.h1.lla)]
    assert entry.state == nd.STALE and entry.mac == net.h1.mac


def test_rs_delay_is_the_random_one_drawn(lab6) -> None:
    net = RaNet(lab6, ra_config(), Extreme(high=True))
    lab6.finish_dad()
    net.ras()
    lab6.advance(4)
    net.rs()
    lab6.advance(0.49)
    assert net.ras() == []
    lab6.advance(0.01)
    assert len(net.ras()) == 1


def test_rs_answer_is_never_closer_than_3s_to_the_previous_ra(lab6) -> None:
    net = RaNet(lab6, ra_config(), Extreme(high=False))
    lab6.finish_dad()
    first_at = lab6.now
    assert len(net.ras()) == 1
    lab6.advance(1)
    net.rs()
    lab6.advance(1.9)
    assert net.ras() == []
    lab6.advance(0.1)
    assert lab6.now - first_at == pytest.approx(3.0)
    assert len(net.ras()) == 1
    # A burst of solicitations right after it: still one RA per 3 s.
    for _ in range(5):
        net.rs()
    lab6.advance(2.9)
    assert net.ras() == []
    lab6.advance(0.1)
    assert len(net.ras()) == 1


def test_rs_on_a_non_advertising_interface_gets_no_ra(lab6) -> None:
    net = RaNet(lab6, ra_config())
    lab6.finish_dad()
    net.h1.take()
    net.rs(net.h2)
    lab6.advance(4)
    assert net.ras(net.h2) == []
    assert net.red.inet6.icmp.in_rs == 1
    entry = net.red.inet6.nd.entries[("eth1", net.h2.lla)]
    assert entry.state == nd.STALE  # the solicitation's SLLA is still learnt


def test_rs_from_unspecified_with_slla_is_invalid(lab6) -> None:
    net = RaNet(lab6, ra_config())
    lab6.finish_dad()
    lab6.advance(5)
    net.h1.take()
    net.rs(src=UNSPEC, slla=True)
    assert drops(net.h1.ifp) == {"nd_invalid": 1}
    lab6.advance(1)
    assert net.ras() == []
    net.rs(src=UNSPEC, slla=False)  # valid: answered
    lab6.advance(1)
    assert len(net.ras()) == 1


@pytest.mark.parametrize("seed", range(5))
def test_periodic_ras_first_three_at_most_16s_apart_then_within_the_interval(
    lab6, seed: int
) -> None:
    interval = 60.0
    net = RaNet(lab6, ra_config(interval=interval), random.Random(seed))
    got = net.run_until(net.up_at + 1200)
    times = [t for t, _ in got]
    assert times[0] == net.up_at + 1  # as soon as the link-local address is preferred
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 10
    assert all(g <= 16 for g in gaps[:3]), gaps
    assert all(interval / 3 - 1e-6 <= g <= interval + 1e-6 for g in gaps[3:]), gaps
    assert all(m.ip.src == net.h1.router_lla for _, m in got)


@pytest.mark.parametrize(("high", "expected"), [(True, 200.0), (False, 200.0 / 3)])
def test_periodic_ra_schedule_at_the_ends_of_the_random_range(
    lab6, high: bool, expected: float
) -> None:
    net = RaNet(lab6, ra_config(interval=200.0), Extreme(high=high))
    got = net.run_until(net.up_at + 1 + 48 + 3 * expected + 1)
    times = [t for t, _ in got]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:3] == [16.0, 16.0, 16.0]
    assert gaps[3:] == pytest.approx([expected] * (len(gaps) - 3))
    assert len(gaps) >= 5


def test_periodic_ras_are_never_closer_than_3s_even_with_a_short_interval(lab6) -> None:
    """RFC 4861 6.2.1: MinRtrAdvInterval MUST be at least 3 s (its default is
    MaxRtrAdvInterval when that is under 9 s); the config accepts interval 4."""
    net = RaNet(lab6, ra_config(interval=4.0), Extreme(high=False))
    got = net.run_until(net.up_at + 60)
    times = [t for t, _ in got]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 5
    assert min(gaps) >= 3.0, f"RAs {min(gaps):.2f} s apart: {gaps}"


def test_cease_sends_a_final_ra_with_router_lifetime_zero(lab6) -> None:
    net = RaNet(lab6, ra_config())
    lab6.finish_dad()
    [first] = net.ras()
    lab6.advance(5)
    nd.cease(net.red, lab6.now)
    [last] = net.ras()
    assert struct.unpack("!H", last.body[2:4])[0] == 0
    assert last.ip.dst == ALL_NODES and last.ip.hlim == 255
    assert last.body[:2] == first.body[:2] and last.body[4:] == first.body[4:]
    lab6.advance(1000)
    assert net.ras() == []


def test_after_cease_a_solicitation_does_not_advertise_the_router_again(lab6) -> None:
    """RFC 4861 6.2.5: after the final RA the interface is no longer advertising."""
    net = RaNet(lab6, ra_config())
    lab6.finish_dad()
    lab6.advance(5)
    net.h1.take()
    nd.cease(net.red, lab6.now)
    net.ras()
    lab6.advance(5)
    net.rs()
    lab6.advance(300)
    lifetimes = [struct.unpack("!H", m.body[2:4])[0] for m in net.ras()]
    assert all(t == 0 for t in lifetimes), f"router lifetimes after cease(): {lifetimes}"


def test_each_vnet_draws_its_jitter_from_its_own_generator(lab6) -> None:
    red, blue = lab6.vnet("red"), lab6.vnet("blue")
    red.inet6.rng, blue.inet6.rng = random.Random(7), random.Random(7)
    red.inet6.rng.random()  # red's draws leave blue's sequence alone
    blue.inet6.nd.draw_reachable_time(blue.inet6.rng)
    expected = blue.inet6.nd.base_reachable_time * random.Random(7).uniform(0.5, 1.5)
    assert blue.inet6.nd.reachable_time == expected


def test_a_new_vnet_seeds_its_generator_from_the_system(lab) -> None:
    a, b = lab.vnet("a"), lab.vnet("b")
    assert a.inet6.rng.getrandbits(64) != b.inet6.rng.getrandbits(64)


# --- a scan of an on-link /64 (RFC 6583) ------------------------------------------------------


def scan_target(i: int) -> bytes:
    return a6(f"2001:db8:2::{0x1000 + i:x}")


def test_a_scan_is_held_to_max_incomplete_and_the_resolved_neighbour_keeps_forwarding(
    net: Net,
) -> None:
    net.resolve_h2()
    net.nd.max_incomplete = 8
    net.nd.solicit_rate = 0  # no rate limit: only the cap is tested here
    for i in range(50):
        net.send(net.h1, net.h1.udp6(scan_target(i), payload=b"scan"))
    assert net.nd.incomplete == 8
    assert len([key for key in net.nd.entries if key[0] == "eth1"]) == 8 + 1
    assert len(of_type(sent(net.h2), NS)) == 8
    assert net.stat.nd_incomplete_full == 42
    assert net.h2.ifp.counters.tx_drops["nd_incomplete_full"] == 42
    net.send(net.h1, net.h1.udp6(net.h2.ip6, payload=b"still"))
    assert [f.data.data.data for f in net.h2.take_ip6()] == [b"still"]
    net.lab.advance(3)  # three solicitations each, then they fail
    assert net.nd.incomplete == 0
    assert [key for key in net.nd.entries if key[0] == "eth1"] == [("eth1", net.h2.ip6)]
    assert net.nd.hold_bytes == 0


def test_solicitations_are_rate_limited_per_interface_and_starved_retries_give_up(
    net: Net,
) -> None:
    net.h2.auto_nd = False
    net.nd.solicit_rate = 5
    for i in range(20):
        net.send(net.h1, net.h1.udp6(scan_target(i), payload=b"scan"))
    assert len(of_type(sent(net.h2), NS)) == 5  # the bucket starts full: 5
    assert net.stat.nd_ratelimited == 15
    assert net.h2.ifp.counters.tx_drops["nd_ratelimited"] == 15
    assert net.nd.incomplete == 5
    net.lab.advance(0.5)  # 2.5 tokens back
    for i in range(20, 30):
        net.send(net.h1, net.h1.udp6(scan_target(i), payload=b"scan"))
    assert net.nd.incomplete == 7
    sent(net.h2)
    net.lab.advance(0.5)  # the first five retry with 0.5 + 2.5 tokens: three do
    assert len(of_type(sent(net.h2), NS)) == 3
    assert net.nd.incomplete == 5
    retried = sum(1 for e in net.nd.entries.values() if e.probes == 2)
    assert retried == 3
    net.lab.advance(5)
    assert net.nd.incomplete == 0
    assert [key for key in net.nd.entries if key[0] == "eth1"] == []
    # An interface's rate is its own: h1's side still resolves at once.
    net.h1.take()  # the address unreachable errors of the scan
    net.nd.solicit_rate = 1
    net.send(net.h2, net.h2.udp6(a6("2001:db8:1::99"), payload=b"back"))
    assert len(of_type(sent(net.h1), NS)) == 1


def test_a_refused_resolution_costs_no_destination_cache_entry(net: Net) -> None:
    net.h2.auto_nd = False
    net.nd.solicit_rate = 3
    dests = net.red.inet6.dests
    before = set(dests.entries)
    for i in range(30):
        net.send(net.h1, net.h1.udp6(scan_target(i), payload=b"scan"))
    assert len(of_type(sent(net.h2), NS)) == 3
    assert net.stat.nd_ratelimited == 27
    assert net.h2.ifp.counters.tx_drops["nd_ratelimited"] == 27
    assert len(set(dests.entries) - before) == 3  # the refused ones are not cached


def test_held_packets_stay_within_hold_maxbytes(net: Net) -> None:
    net.h2.auto_nd = False
    frame_size = len(net.h1.udp6(scan_target(0), payload=b"x" * 100))
    net.nd.hold_maxbytes = 3 * frame_size
    for i in range(5):
        net.send(net.h1, net.h1.udp6(scan_target(i), payload=b"x" * 100))
    assert net.nd.hold_bytes == 3 * frame_size
    assert net.stat.nd_hold_full == 2
    assert net.h2.ifp.counters.tx_drops["nd_hold_full"] == 2
    net.lab.advance(3)
    assert net.nd.hold_bytes == 0 and net.nd.incomplete == 0
