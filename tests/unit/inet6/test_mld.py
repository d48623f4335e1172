"""Tests for vrouter.inet6.mld: a vnet reporting its IPv6 groups (RFC 3810, MLDv1 compat).

One router vnet with one interface; the station is the querier.  Reports
are decoded with dpkt (Hop-by-Hop Router Alert, ICMPv6 checksum) and by hand.
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

import dpkt
import pytest

from vrouter.inet6 import nd
from vrouter.wire import mld as wire

ALL_NODES = IPv6Address("ff02::1").packed
ALL_ROUTERS = IPv6Address("ff02::2").packed
GROUP = IPv6Address("ff05::1:3").packed


def a6(text: str) -> bytes:
    return IPv6Address(text).packed


def solicited(address: bytes) -> bytes:
    return bytes.fromhex("ff0200000000000000000001ff") + address[13:]


def decode(frame: bytes) -> tuple[dpkt.ip6.IP6, int, bytes]:
    """Return the IPv6 packet, ICMPv6 type and body of an MLD report, checking it on the way."""
    eth = dpkt.ethernet.Ethernet(frame)
    ip = eth.data
    assert ip.hlim == 1 and ip.nxt == 0
    hbh = frame[54:62]
    assert hbh[2:6] == bytes([5, 2, 0, 0]), "Router Alert (MLD)"
    message = frame[62:]
    pseudo = ip.src + ip.dst + struct.pack("!I3xB", len(message), 58)
    assert dpkt.in_cksum(pseudo + message) == 0
    assert eth.dst == b"\x33\x33" + ip.dst[12:]
    return ip, message[0], message[4:]


def records(body: bytes) -> list[tuple[int, bytes]]:
    count = struct.unpack_from("!H", body, 2)[0]
    out = []
    for i in range(count):
        kind, _, sources = struct.unpack_from("!BBH", body, 4 + 20 * i)
        assert sources == 0
        out.append((kind, body[8 + 20 * i : 24 + 20 * i]))
    return out


class Net:
    def __init__(self, lab6) -> None:
        self.lab = lab6
        self.red = lab6.vnet("red")
        self.h1 = lab6.host6(self.red, "eth0", ("2001:db8:1::1/64",), "2001:db8:1::10")
        lab6.finish_dad()
        self.h1.take()

    @property
    def stat(self):
        return self.red.inet6.icmp

    def reports(self) -> list[tuple[dpkt.ip6.IP6, int, bytes]]:
        out = [decode(f) for f in self.h1.mld]
        self.h1.mld.clear()
        return out

    def query(
        self, group: bytes = bytes(16), v2: bool = True, delay_ms: int = 1000, **kw: object
    ) -> None:
        body = struct.pack("!HH", delay_ms, 0) + group
        if v2:
            body += struct.pack("!BBH", 2, 125, 0)
        frame = self.h1.nd(
            130,
            body,
            src=kw.get("src", self.h1.lla),
            dst=kw.get("dst", ALL_NODES),
            hlim=int(kw.get("hlim", 1)),
        )  # type: ignore[call-overload]
        self.h1.send(frame, self.lab.now)
        self.lab.settle()


@pytest.fixture
def net(lab6) -> Net:
    return Net(lab6)


def test_bring_up_reports_solicited_node_and_all_routers_groups_twice(net: Net) -> None:
    reports = net.reports()
    groups = {g for _, type_, body in reports for _, g in records(body)}
    expected = {
        ALL_ROUTERS,
        solicited(net.h1.router_lla),
        solicited(a6("2001:db8:1::1")),
        solicited(a6("2001:db8:1::")),  # the Subnet-Router anycast address
    }
    assert groups == expected
    assert all(type_ == 143 for _, type_, _ in reports)
    assert all(ip.dst == wire.ALL_MLDV2_ROUTERS for ip, _, _ in reports)
    counts = {g: 0 for g in expected}
    for _, _, body in reports:
        for kind, group in records(body):
            assert kind == wire.CHANGE_TO_EXCLUDE
            counts[group] += 1
    assert set(counts.values()) == {2}  # Robustness Variable 2
    assert ALL_NODES not in groups  # never reported (RFC 3810 6)


def test_general_query_is_answered_within_its_delay_with_every_group(net: Net) -> None:
    net.reports()
    net.query(delay_ms=2000)
    assert net.reports() == []  # not at once: a random delay
    net.lab.advance(2.0)
    [(ip, type_, body)] = net.reports()
    assert type_ == 143 and ip.src == net.h1.router_lla
    assert {k for k, _ in records(body)} == {wire.MODE_IS_EXCLUDE}
    assert {g for _, g in records(body)} == {
        ALL_ROUTERS,
        solicited(net.h1.router_lla),
        solicited(a6("2001:db8:1::1")),
        solicited(a6("2001:db8:1::")),
    }
    assert net.stat.in_mld_queries == 1


def test_group_specific_query_gets_only_that_group(net: Net) -> None:
    net.reports()
    group = solicited(a6("2001:db8:1::1"))
    net.query(group, dst=group)
    net.lab.advance(1.0)
    [(_, _, body)] = net.reports()
    assert records(body) == [(wire.MODE_IS_EXCLUDE, group)]


def test_mldv1_query_switches_to_mldv1_reports_sent_to_each_group(net: Net) -> None:
    net.reports()
    net.query(v2=False)
    net.lab.advance(1.0)
    reports = net.reports()
    assert {type_ for _, type_, _ in reports} == {131}
    assert {ip.dst for ip, _, _ in reports} == {body[4:20] for _, _, body in reports}
    # all-routers, one solicited-node group for both addresses (both end in ::1), and
    # the Subnet-Router anycast address's
    assert len(reports) == 3


def test_socket_join_and_leave_are_reported(net: Net) -> None:
    net.reports()
    nd.join(net.red, net.h1.ifp, GROUP)
    net.lab.advance(1.0)
    kinds = [r for _, _, body in net.reports() for r in records(body)]
    assert kinds == [(wire.CHANGE_TO_EXCLUDE, GROUP)] * 2
    nd.leave(net.red, net.h1.ifp, GROUP)
    net.lab.advance(1.0)
    kinds = [r for _, _, body in net.reports() for r in records(body)]
    assert kinds == [(wire.CHANGE_TO_INCLUDE, GROUP)] * 2


@pytest.mark.parametrize(
    ("kw", "reason"),
    [({"hlim": 2}, "mld_invalid"), ({"src": "2001:db8:1::10"}, "mld_invalid")],
    ids=["hop_limit", "global_source"],
)
def test_invalid_queries_are_dropped_and_counted(net: Net, kw: dict, reason: str) -> None:
    net.reports()
    net.query(**kw)
    net.lab.advance(2.0)
    assert net.reports() == []
    assert net.stat.mld_bad == 1
    assert dict(net.h1.ifp.counters.rx_drops) == {reason: 1}


def test_truncated_query_is_dropped(net: Net) -> None:
    frame = net.h1.nd(130, bytes(10), src=net.h1.lla, dst=ALL_NODES, hlim=1)
    net.h1.send(frame, net.lab.now)
    assert net.stat.mld_bad == 1
    assert dict(net.h1.ifp.counters.rx_drops) == {"mld_tooshort": 1}


def test_max_response_code_is_exponential_above_32768() -> None:
    body = struct.pack("!HH", 0x8000 | (1 << 12) | 0x0001, 0) + bytes(16) + bytes(4)
    assert wire.Query.parse(body).max_delay == pytest.approx(((0x1001) << 4) / 1000)
