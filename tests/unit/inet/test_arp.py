"""Tests for vrouter.inet.arp: resolution, hold queue, timers, cache states.

One router vnet ``r`` with two test links: ``eth0`` 192.0.2.1/24 towards the
station ``h1`` (192.0.2.10) and ``eth1`` 198.51.100.1/24 towards ``lan``
(198.51.100.10).  Stations answer ARP only where a test turns ``auto_arp`` on.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import dpkt
import pytest

from vrouter.inet import ipv4
from vrouter.inet.arp import MAX_TRIES, RETRY_INTERVAL
from vrouter.link import lltable
from vrouter.link.lltable import HOLD_LIMIT, INCOMPLETE, REACHABLE, STALE

BCAST = b"\xff" * 6
ZERO = b"\x00" * 6
REQ = dpkt.arp.ARP_OP_REQUEST
REPLY = dpkt.arp.ARP_OP_REPLY


def ip(text: str) -> bytes:
    return IPv4Address(text).packed


class Net:
    def __init__(self, lab) -> None:
        self.lab = lab
        self.r = lab.vnet("r")
        self.h1 = lab.host(self.r, "eth0", "192.0.2.1/24", "192.0.2.10")
        self.lan = lab.host(self.r, "eth1", "198.51.100.1/24", "198.51.100.10")
        for host in (self.h1, self.lan):
            host.auto_arp = False
            host.take()  # the gratuitous ARP of set_up
        self.announced = self.r.inet.arpstat.tx_requests

    def requests_sent(self) -> int:
        """Return the ARP requests counted since the set-up announcements."""
        return self.r.inet.arpstat.tx_requests - self.announced

    def entry(self, host):
        return self.r.inet.arp.entries.get((host.ifp.name, host.ip))

    def udp_from_h1(self, ident: int = 1, payload: bytes = b"held") -> bytes:
        return self.h1.udp("198.51.100.10", payload=payload, ident=ident)

    def step(self, seconds: float) -> None:
        """Advance time and run timers, without letting stations answer."""
        self.lab.clock.advance(seconds)
        self.lab.run_timers()


@pytest.fixture
def net(lab) -> Net:
    return Net(lab)


def assert_request(frame: dpkt.ethernet.Ethernet, ifp, spa: str, tpa: str, dst=BCAST) -> None:
    assert frame.type == dpkt.ethernet.ETH_TYPE_ARP
    assert frame.dst == dst
    assert frame.src == ifp.mac
    req = frame.data
    assert (req.hrd, req.pro, req.hln, req.pln) == (1, 0x0800, 6, 4)
    assert req.op == REQ
    assert req.sha == ifp.mac
    assert req.spa == ip(spa)
    assert req.tha == ZERO
    assert req.tpa == ip(tpa)


# --- resolution ----------------------------------------------------------------


def test_unresolved_next_hop_sends_one_request_and_holds_the_packet(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)
    original = net.udp_from_h1()
    net.h1.send(original, lab.now)
    frames = net.lan.take()
    assert len(frames) == 1
    assert_request(frames[0], net.lan.ifp, "198.51.100.1", "198.51.100.10")
    entry = net.entry(net.lan)
    assert entry is not None and entry.state == INCOMPLETE
    assert len(entry.hold) == 1
    assert net.requests_sent() == 1

    # A second packet for the same neighbour waits without a second request.
    net.h1.send(net.udp_from_h1(ident=2), lab.now)
    assert net.lan.take() == []
    assert len(entry.hold) == 2


def test_reply_releases_held_packets_with_the_right_macs(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)
    sent = [net.udp_from_h1(ident=i, payload=b"p%d" % i) for i in (1, 2)]
    for frame in sent:
        net.h1.send(frame, lab.now)
    net.lan.take()
    reply = net.lan.arp(REPLY, "198.51.100.1", tha=net.lan.ifp.mac, dst_mac=net.lan.ifp.mac)
    net.lan.send(reply, lab.now)
    out = net.lan.take()
    assert [f.type for f in out] == [dpkt.ethernet.ETH_TYPE_IP] * 2
    for frame, original in zip(out, sent, strict=True):
        assert frame.dst == net.lan.mac
        assert frame.src == net.lan.ifp.mac
        pkt, orig = frame.data, dpkt.ethernet.Ethernet(original).data
        assert pkt.id == orig.id
        assert bytes(pkt.data) == bytes(orig.data)
        assert pkt.ttl == orig.ttl - 1
    entry = net.entry(net.lan)
    assert entry.state == REACHABLE and entry.mac == net.lan.mac and not entry.hold
    assert net.r.inet.arpstat.rx_replies == 1
    # Resolved now: the next packet goes straight out, no ARP.
    net.h1.send(net.udp_from_h1(ident=3), lab.now)
    [frame] = net.lan.take()
    assert frame.type == dpkt.ethernet.ETH_TYPE_IP and frame.dst == net.lan.mac
    # The retry timer was cancelled: time passing sends no request.
    net.step(5 * RETRY_INTERVAL)
    assert net.lan.take() == []


def test_retries_every_second_then_fails_with_host_unreachable(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)
    originals = [net.udp_from_h1(ident=i) for i in (7, 8)]
    for frame in originals:
        net.h1.send(frame, lab.now)
    requests = [net.lan.take()]
    net.step(RETRY_INTERVAL * 0.75)
    assert net.lan.take() == []  # not before a full second
    net.step(RETRY_INTERVAL * 0.25)
    requests.append(net.lan.take())
    net.step(RETRY_INTERVAL)
    requests.append(net.lan.take())
    assert [len(r) for r in requests] == [1, 1, 1]
    for [frame] in requests:
        assert_request(frame, net.lan.ifp, "198.51.100.1", "198.51.100.10")
    assert net.requests_sent() == MAX_TRIES
    assert net.entry(net.lan) is not None
    assert net.h1.take() == []

    net.step(RETRY_INTERVAL)
    assert net.lan.take() == []  # no fourth request
    assert net.entry(net.lan) is None
    assert net.r.inet.arpstat.timeouts == 1
    assert net.lan.ifp.counters.tx_drops["arp_unresolved"] == 2
    errors = net.h1.take_ip()
    assert len(errors) == 2
    for frame, original in zip(errors, originals, strict=True):
        assert frame.dst == net.h1.mac and frame.src == net.h1.ifp.mac
        err = frame.data
        assert err.src == ip("192.0.2.1") and err.dst == net.h1.ip
        assert err.p == dpkt.ip.IP_PROTO_ICMP
        icmp = err.data
        assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_HOST)
        quoted = icmp.data.data
        orig = dpkt.ethernet.Ethernet(original).data
        assert quoted.src == orig.src and quoted.dst == orig.dst and quoted.id == orig.id
    assert net.r.inet.icmp.out_errors == 2

    # Time goes on: nothing else happens for that neighbour.
    net.step(10 * RETRY_INTERVAL)
    assert net.lan.take() == []
    # A new packet starts a new resolution.
    net.h1.send(net.udp_from_h1(ident=9), lab.now)
    [frame] = net.lan.take()
    assert_request(frame, net.lan.ifp, "198.51.100.1", "198.51.100.10")


def test_failed_resolution_of_a_local_packet_sends_nothing_to_ourselves(net: Net, lab) -> None:
    # h1 pings the router without ever answering ARP: the echo reply is held,
    # then dropped.  The error about it has nowhere to go on the wire.
    net.h1.send(net.h1.ping("192.0.2.1"), lab.now)
    for _ in range(3 * MAX_TRIES):
        net.step(RETRY_INTERVAL)
    for eth in net.h1.take():
        assert eth.type == dpkt.ethernet.ETH_TYPE_ARP
        assert eth.data.tpa == net.h1.ip, "the router ARPs for its own address 192.0.2.1"
    assert net.r.inet.arpstat.timeouts == 1
    assert (net.h1.ifp.name, ip("192.0.2.1")) not in net.r.inet.arp.entries


def test_hold_queue_keeps_the_newest_packets(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)
    extra = 3
    for ident in range(HOLD_LIMIT + extra):
        net.h1.send(net.udp_from_h1(ident=ident), lab.now)
    assert len(net.lan.take()) == 1
    entry = net.entry(net.lan)
    assert len(entry.hold) == HOLD_LIMIT
    assert net.r.inet.arpstat.queue_overflow == extra
    assert net.lan.ifp.counters.tx_drops["arp_queue_overflow"] == extra
    net.lan.send(net.lan.arp(REPLY, "198.51.100.1", dst_mac=net.lan.ifp.mac), lab.now)
    released = net.lan.take_ip()
    assert [f.data.id for f in released] == list(range(extra, HOLD_LIMIT + extra))


def test_table_limit_refuses_new_resolutions(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)  # entry 1: h1
    net.r.inet.arp.max_entries = 1
    net.h1.send(net.udp_from_h1(), lab.now)
    assert net.lan.take() == []
    assert net.r.inet.arpstat.table_full == 1
    assert net.lan.ifp.counters.tx_drops["arp_table_full"] == 1


# --- answering requests ----------------------------------------------------------


def test_request_for_our_address_gets_a_reply_and_a_reachable_entry(net: Net, lab) -> None:
    net.h1.send(net.h1.arp(REQ, "192.0.2.1"), lab.now)
    [frame] = net.h1.take()
    assert frame.type == dpkt.ethernet.ETH_TYPE_ARP
    assert frame.dst == net.h1.mac and frame.src == net.h1.ifp.mac
    reply = frame.data
    assert reply.op == REPLY
    assert reply.sha == net.h1.ifp.mac and reply.spa == ip("192.0.2.1")
    assert reply.tha == net.h1.mac and reply.tpa == net.h1.ip
    entry = net.entry(net.h1)
    assert entry is not None
    assert entry.state == REACHABLE and entry.mac == net.h1.mac and entry.confirmed == lab.now
    stat = net.r.inet.arpstat
    assert (stat.rx_requests, stat.tx_replies) == (1, 1)
    # The entry is used at once: a packet to h1 needs no request.
    net.lan.send(net.lan.udp("192.0.2.10"), lab.now)
    [out] = net.h1.take()
    assert out.type == dpkt.ethernet.ETH_TYPE_IP and out.dst == net.h1.mac


def test_request_for_our_address_on_the_wrong_interface_is_not_answered(net: Net, lab) -> None:
    net.h1.send(net.h1.arp(REQ, "198.51.100.1"), lab.now)
    assert net.h1.take() == []
    assert net.r.inet.arp.entries == {}


@pytest.mark.parametrize("target", ["192.0.2.99", "192.0.2.255", "203.0.113.1"])
def test_request_for_another_address_creates_no_entry(net: Net, lab, target: str) -> None:
    net.h1.send(net.h1.arp(REQ, target), lab.now)
    assert net.h1.take() == []
    assert net.r.inet.arp.entries == {}
    assert net.r.inet.arpstat.rx_requests == 1
    assert net.r.inet.arpstat.tx_replies == 0


def test_request_from_an_off_link_sender_is_answered_but_not_cached(net: Net, lab) -> None:
    net.h1.send(net.h1.arp(REQ, "192.0.2.1", spa="203.0.113.5"), lab.now)
    [frame] = net.h1.take()
    assert frame.data.op == REPLY and frame.data.tpa == ip("203.0.113.5")
    assert net.r.inet.arp.entries == {}


def test_probe_from_zero_address_is_answered_and_teaches_nothing(net: Net, lab) -> None:
    net.h1.send(net.h1.arp(REQ, "192.0.2.1", spa="0.0.0.0"), lab.now)
    [frame] = net.h1.take()
    assert frame.data.op == REPLY and frame.data.spa == ip("192.0.2.1")
    assert net.r.inet.arp.entries == {}


def test_packet_from_a_known_neighbour_updates_its_mac(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)
    new_mac = b"\x02\x00\x00\xaa\xbb\xcc"
    # A broadcast request for someone else still refreshes the existing entry.
    net.lab.clock.advance(5)
    net.h1.send(net.h1.arp(REQ, "192.0.2.77", sha=new_mac), lab.now)
    entry = net.entry(net.h1)
    assert entry.mac == new_mac and entry.confirmed == lab.now


# --- gratuitous ARP ---------------------------------------------------------------


def test_set_up_announces_every_address_once(lab) -> None:
    r = lab.vnet("r")
    host = lab.host(r, "eth0", "192.0.2.1/24", "192.0.2.10", up=False)
    ipv4.add_address(r, host.ifp, IPv4Interface("198.51.100.1/24"), lab.now)
    assert host.take() == []  # down: nothing sent
    ipv4.set_up(r, host.ifp, lab.now)
    frames = host.take()
    assert len(frames) == 2
    for frame, address in zip(frames, ["192.0.2.1", "198.51.100.1"], strict=True):
        assert frame.dst == BCAST and frame.src == host.ifp.mac
        g = frame.data
        assert g.op == REQ and g.sha == host.ifp.mac and g.tha == ZERO
        assert g.spa == g.tpa == ip(address)
    ipv4.set_up(r, host.ifp, lab.now)  # already up: no second announcement
    assert host.take() == []
    # An address added while up is announced at once.
    ipv4.add_address(r, host.ifp, IPv4Interface("203.0.113.1/24"), lab.now)
    [frame] = host.take()
    assert frame.data.spa == frame.data.tpa == ip("203.0.113.1")
    assert r.inet.arpstat.tx_requests == 3


# --- cache aging ------------------------------------------------------------------


def test_reachable_turns_stale_and_use_sends_one_unicast_refresh(net: Net, lab) -> None:
    table = net.r.inet.arp
    net.h1.learn_router(lab.now)
    net.step(table.reachable_time + 1)
    net.lan.send(net.lan.udp("192.0.2.10", ident=1), lab.now)
    frames = net.h1.take()
    assert [f.type for f in frames] == [dpkt.ethernet.ETH_TYPE_IP, dpkt.ethernet.ETH_TYPE_ARP]
    assert frames[0].dst == net.h1.mac  # the stale MAC is still used
    assert_request(frames[1], net.h1.ifp, "192.0.2.1", "192.0.2.10", dst=net.h1.mac)
    entry = net.entry(net.h1)
    assert entry.state == STALE
    # Within the retry interval: packets flow, no second refresh.
    net.step(RETRY_INTERVAL / 2)
    net.lan.send(net.lan.udp("192.0.2.10", ident=2), lab.now)
    assert [f.type for f in net.h1.take()] == [dpkt.ethernet.ETH_TYPE_IP]
    # After it: one more refresh.
    net.step(RETRY_INTERVAL)
    net.lan.send(net.lan.udp("192.0.2.10", ident=3), lab.now)
    assert [f.type for f in net.h1.take()] == [
        dpkt.ethernet.ETH_TYPE_IP,
        dpkt.ethernet.ETH_TYPE_ARP,
    ]
    # The answer makes it reachable again: no more refreshes.
    net.h1.send(net.h1.arp(REPLY, "192.0.2.1", dst_mac=net.h1.ifp.mac), lab.now)
    assert entry.state == REACHABLE and entry.confirmed == lab.now
    net.step(RETRY_INTERVAL * 2)
    net.lan.send(net.lan.udp("192.0.2.10", ident=4), lab.now)
    assert [f.type for f in net.h1.take()] == [dpkt.ethernet.ETH_TYPE_IP]


def test_sweep_removes_idle_stale_entries_and_keeps_used_ones(net: Net, lab) -> None:
    table = net.r.inet.arp
    table.reachable_time = 20.0
    table.stale_time = 45.0
    net.h1.learn_router(lab.now)
    net.lan.learn_router(lab.now)
    assert table.sweeper is not None
    net.step(lltable.SWEEP_INTERVAL)  # t+30: both stale (30 > 20), idle 30 < 45
    assert net.entry(net.h1).state == STALE
    assert net.entry(net.lan).state == STALE
    net.step(20.0)  # t+50: lan carries a packet
    net.h1.send(net.h1.udp("198.51.100.10"), lab.now)
    net.step(10.0)  # t+60: h1 idle 60 > 45 -> swept; lan idle 10 -> kept
    assert net.entry(net.h1) is None
    assert net.entry(net.lan) is not None
    assert table.sweeper is not None
    net.step(lltable.SWEEP_INTERVAL * 2)  # t+120: lan idle 70 -> swept
    assert table.entries == {}
    # With nothing left to sweep, no sweeper keeps the vnet's timers busy.
    assert table.sweeper is None
    assert net.r.timers.next_deadline() is None


def test_sweep_leaves_reachable_entries(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)
    net.step(lltable.SWEEP_INTERVAL)
    entry = net.entry(net.h1)
    assert entry is not None and entry.state == REACHABLE


# --- bad and suspicious input ------------------------------------------------------


def test_station_claiming_our_address_is_counted_as_dupaddr(net: Net, lab) -> None:
    intruder = b"\x02\x00\x00\x66\x66\x66"
    frame = net.h1.arp(REQ, "192.0.2.1", spa="192.0.2.1", sha=intruder)
    net.h1.send(frame, lab.now)
    assert net.r.inet.arpstat.dupaddr == 1
    assert net.h1.ifp.counters.rx_drops["arp_dupaddr"] == 1
    assert net.h1.take() == []
    assert net.r.inet.arp.entries == {}
    assert net.r.inet.local[ip("192.0.2.1")] is net.h1.ifp


def test_our_own_announcement_looped_back_is_not_a_duplicate(net: Net, lab) -> None:
    own = net.h1.arp(REQ, "192.0.2.1", spa="192.0.2.1", sha=net.h1.ifp.mac)
    net.h1.send(own, lab.now)
    assert net.r.inet.arpstat.dupaddr == 0
    assert net.h1.ifp.counters.rx_drops["arp_own_frame"] == 1


def _raw_arp(net: Net, body: bytes) -> bytes:
    return BCAST + net.h1.mac + b"\x08\x06" + body


def _arp_body(hrd=1, pro=0x0800, hln=6, pln=4, op=1) -> bytes:
    arp_pkt = dpkt.arp.ARP(
        hrd=hrd,
        pro=pro,
        hln=hln,
        pln=pln,
        op=op,
        sha=b"\x02\x00\x00\x00\x00\x10",
        spa=ip("192.0.2.10"),
        tha=ZERO,
        tpa=ip("192.0.2.1"),
    )
    return bytes(arp_pkt)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_arp_body()[:27], "arp_truncated"),
        (b"", "arp_truncated"),
        (_arp_body(hrd=6), "arp_bad_format"),
        (_arp_body(pro=0x86DD), "arp_bad_format"),
        (_arp_body(hln=8), "arp_bad_format"),
        (_arp_body(pln=16), "arp_bad_format"),
        (_arp_body(op=3), "arp_bad_op"),
        (_arp_body(op=0), "arp_bad_op"),
    ],
)
def test_malformed_arp_is_counted(net: Net, lab, body: bytes, reason: str) -> None:
    net.h1.send(_raw_arp(net, body), lab.now)
    counters = net.h1.ifp.counters
    assert counters.rx_drops == {reason: 1}
    assert counters.rx_errors == 1
    assert net.r.inet.arpstat.rx_dropped == 1
    assert net.h1.take() == []
    assert net.r.inet.arp.entries == {}


@pytest.mark.parametrize("sha", [b"\x01\x00\x5e\x00\x00\x01", BCAST, ZERO])
def test_group_or_zero_sender_mac_is_refused(net: Net, lab, sha: bytes) -> None:
    frame = (
        BCAST
        + net.h1.mac
        + b"\x08\x06"
        + bytes(dpkt.arp.ARP(op=REQ, sha=sha, spa=net.h1.ip, tha=ZERO, tpa=ip("192.0.2.1")))
    )
    net.h1.send(frame, lab.now)
    assert net.h1.ifp.counters.rx_drops["arp_bad_sender"] == 1
    assert net.r.inet.arpstat.rx_dropped == 1
    assert net.h1.take() == []
    assert net.r.inet.arp.entries == {}


def test_padded_arp_frame_is_accepted(net: Net, lab) -> None:
    frame = net.h1.arp(REQ, "192.0.2.1") + b"\x00" * 18  # padded to 60 bytes
    net.h1.send(frame, lab.now)
    [reply] = net.h1.take()
    assert reply.data.op == REPLY


def test_remove_address_flushes_the_interface_entries(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)
    net.lan.learn_router(lab.now)
    ipv4.remove_address(net.r, net.h1.ifp, IPv4Interface("192.0.2.1/24"))
    assert net.entry(net.h1) is None
    assert net.entry(net.lan) is not None


# --- a scan of an on-link network (RFC 6583) -------------------------------------------------


def scan(net: Net, count: int, first: int = 100) -> None:
    for i in range(count):
        net.h1.send(net.h1.udp(f"198.51.100.{first + i}", payload=b"scan"), net.lab.now)


def test_a_scan_is_held_to_max_incomplete_and_the_resolved_neighbour_keeps_forwarding(
    net: Net, lab
) -> None:
    net.h1.learn_router(lab.now)
    net.lan.auto_arp = True
    net.h1.send(net.udp_from_h1(ident=1), lab.now)
    lab.settle()
    assert len(net.lan.take_ip()) == 1
    table = net.r.inet.arp
    table.max_incomplete = 8
    table.solicit_rate = 0
    net.lan.auto_arp = False
    scan(net, 50)
    assert table.incomplete == 8
    assert len(net.lan.take_arp()) == 8
    assert net.r.inet.arpstat.incomplete_full == 42
    assert net.lan.ifp.counters.tx_drops["arp_incomplete_full"] == 42
    net.h1.send(net.udp_from_h1(ident=2, payload=b"still"), lab.now)
    assert [bytes(f.data.data.data) for f in net.lan.take_ip()] == [b"still"]
    for _ in range(MAX_TRIES):
        net.step(RETRY_INTERVAL)
    assert table.incomplete == 0 and table.hold_bytes == 0
    assert [key for key in table.entries if key[0] == "eth1"] == [("eth1", net.lan.ip)]


def test_requests_are_rate_limited_and_a_starved_retry_gives_up(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)
    table = net.r.inet.arp
    table.solicit_rate = 4
    scan(net, 10)
    assert len(net.lan.take_arp()) == 4
    assert net.r.inet.arpstat.ratelimited == 6
    assert net.lan.ifp.counters.tx_drops["arp_ratelimited"] == 6
    net.step(0.5)  # two tokens back
    scan(net, 5, first=150)
    assert table.incomplete == 6 and len(net.lan.take_arp()) == 2
    net.step(0.5)  # the first four retry with two tokens: two give up at once
    assert len(net.lan.take_arp()) == 2
    assert table.incomplete == 4
    for _ in range(MAX_TRIES + 1):
        net.step(RETRY_INTERVAL)
    assert table.incomplete == 0
    assert [key for key in table.entries if key[0] == "eth1"] == []


def test_held_packets_stay_within_hold_maxbytes(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)
    table = net.r.inet.arp
    size = len(net.h1.udp("198.51.100.100", payload=b"scan"))
    table.hold_maxbytes = 2 * size
    scan(net, 4)
    assert table.hold_bytes == 2 * size
    assert net.r.inet.arpstat.hold_full == 2
    assert net.lan.ifp.counters.tx_drops["arp_hold_full"] == 2


def test_a_refused_resolution_costs_no_destination_cache_entry(net: Net, lab) -> None:
    net.h1.learn_router(lab.now)
    net.lan.auto_arp = True
    net.h1.send(net.udp_from_h1(ident=1), lab.now)
    lab.settle()
    assert len(net.lan.take_ip()) == 1
    net.lan.auto_arp = False
    table = net.r.inet.arp
    table.solicit_rate = 4
    dests = net.r.inet.dests
    before = set(dests.entries)
    scan(net, 40)
    assert len(net.lan.take_arp()) == 4  # four resolutions started, the rest refused
    assert net.r.inet.arpstat.ratelimited == 36
    assert net.lan.ifp.counters.tx_drops["arp_ratelimited"] == 36
    # Only the four that started resolving are cached (the first of them took the
    # slow path); the refused ones left no entry behind.
    assert len(set(dests.entries) - before) == 4
    assert net.r.inet.stats.forward == 1 + 40
    net.h1.send(net.udp_from_h1(ident=2, payload=b"still"), lab.now)
    assert [bytes(f.data.data.data) for f in net.lan.take_ip()] == [b"still"]
