"""Tests for vrouter.link.lltable: the neighbour table ARP and ND share.

Each test drives a table directly on an interface whose station records
what the stack transmits; what it checks is what users see: frames sent,
interface drop counters, the ``arp show``/``ndp show`` rows.
"""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from vrouter.link.lltable import (
    HOLD_LIMIT,
    INCOMPLETE,
    REACHABLE,
    STALE,
    SWEEP_INTERVAL,
    NeighbourTable,
)

IP4 = bytes([192, 0, 2, 10])
IP6 = IPv6Address("2001:db8::10").packed
MAC = bytes.fromhex("020000000a0a")


@pytest.fixture
def net(lab):
    red = lab.vnet("red")
    host = lab.host(red, "eth0", "192.0.2.1/24", "192.0.2.10")
    host.take()
    return red, host


def frame(n: int) -> bytearray:
    return bytearray(14) + bytes([n])


def test_add_refuses_beyond_max_entries(lab, net) -> None:
    red, host = net
    table = NeighbourTable("arp", max_entries=1)
    assert table.add(red.timers, host.ifp, IP4, INCOMPLETE, lab.now) is not None
    assert table.add(red.timers, host.ifp, IP6, INCOMPLETE, lab.now) is None
    assert list(table.entries) == [("eth0", IP4)]


def test_hold_drops_the_oldest_and_counts_it_on_the_interface(lab, net) -> None:
    red, host = net
    table = NeighbourTable("nd")
    entry = table.add(red.timers, host.ifp, IP6, INCOMPLETE, lab.now)
    assert entry is not None
    overflowed = [table.hold(entry, frame(n)) for n in range(HOLD_LIMIT + 2)]
    assert overflowed == [None] * HOLD_LIMIT + ["queue_overflow"] * 2
    assert [f[14] for f in entry.hold] == list(range(2, HOLD_LIMIT + 2))
    assert host.ifp.counters.tx_drops["nd_queue_overflow"] == 2


def test_confirm_sends_the_held_frames_to_the_learnt_mac(lab, net) -> None:
    red, host = net
    table = NeighbourTable("arp")
    entry = table.add(red.timers, host.ifp, IP4, INCOMPLETE, lab.now)
    assert entry is not None
    table.hold(entry, frame(1))
    table.hold(entry, frame(2))
    assert table.confirm(entry, MAC, REACHABLE, lab.now) is True
    sent = host.take_raw()
    assert [(f[0:6], f[6:12], f[14]) for f in sent] == [
        (MAC, host.ifp.mac, 1),
        (MAC, host.ifp.mac, 2),
    ]
    assert table.reachable(host.ifp, IP4) is entry
    generation = table.generation
    table.confirm(entry, bytes.fromhex("020000000b0b"), REACHABLE, lab.now)
    assert table.generation == generation + 1, "a changed MAC makes destination caches rebuild"


def test_fail_hands_held_packets_to_the_ip_layer(lab, net) -> None:
    red, host = net
    told: list[bytes] = []
    table = NeighbourTable("arp", unresolved=lambda vnet, pkt, now: told.append(bytes(pkt)))
    entry = table.add(red.timers, host.ifp, IP4, INCOMPLETE, lab.now)
    assert entry is not None
    table.hold(entry, frame(7))
    table.fail(red, entry, lab.now)
    assert told == [b"\x07"]
    assert table.entries == {}
    assert host.ifp.counters.tx_drops["arp_unresolved"] == 1


def test_sweep_ages_then_forgets_idle_entries(lab, net) -> None:
    red, host = net
    table = NeighbourTable("arp", reachable_time=10.0, stale_time=20.0)
    entry = table.add(red.timers, host.ifp, IP4, INCOMPLETE, lab.now)
    assert entry is not None
    table.confirm(entry, MAC, REACHABLE, lab.now)
    lab.advance(SWEEP_INTERVAL)
    assert entry.state == STALE
    lab.advance(SWEEP_INTERVAL)
    assert table.entries == {}


def test_rows_for_arp_show_and_ndp_show(lab, net) -> None:
    red, host = net
    table = NeighbourTable("nd")
    v4 = table.add(red.timers, host.ifp, IP4, INCOMPLETE, lab.now)
    v6 = table.add(red.timers, host.ifp, IP6, INCOMPLETE, lab.now)
    assert v4 is not None and v6 is not None
    assert v4.describe(lab.now) == {
        "address": "192.0.2.10",
        "mac": None,
        "interface": "eth0",
        "state": "incomplete",
        "age": None,
        "held": 0,
    }
    table.confirm(v6, MAC, REACHABLE, lab.now)
    assert list(v6.describe(lab.now + 2).items()) == [
        ("address", "2001:db8::10"),
        ("mac", "02:00:00:00:0a:0a"),
        ("interface", "eth0"),
        ("state", "reachable"),
        ("router", False),
        ("age", 2.0),
        ("held", 0),
    ]


def test_incomplete_entries_and_held_bytes_are_counted_until_they_go(lab, net) -> None:
    red, host = net
    table = NeighbourTable("arp", max_incomplete=2)
    first = table.resolve(red.timers, host.ifp, IP4, lab.now)
    second = table.resolve(red.timers, host.ifp, IP6, lab.now)
    assert table.resolve(red.timers, host.ifp, b"\xc0\x00\x02\x0b", lab.now) == "incomplete_full"
    assert not isinstance(first, str) and not isinstance(second, str)
    table.hold(first, frame(1))
    table.hold(second, frame(2))
    assert (table.incomplete, table.hold_bytes) == (2, 30)
    table.confirm(first, MAC, REACHABLE, lab.now)  # released: its frame leaves
    assert (table.incomplete, table.hold_bytes) == (1, 15)
    table.flush_interface(host.ifp)
    assert (table.incomplete, table.hold_bytes) == (0, 0) and not table.buckets


def test_a_resolution_needs_a_token_of_its_interface(lab, net) -> None:
    red, host = net
    table = NeighbourTable("nd", solicit_rate=2)
    got = [table.resolve(red.timers, host.ifp, bytes([n]) * 16, lab.now) for n in range(3)]
    assert got[2] == "ratelimited" and table.incomplete == 2
    lab.clock.advance(0.5)
    assert not isinstance(table.resolve(red.timers, host.ifp, b"\x09" * 16, lab.now), str)
