"""Tests for vrouter.inet.igmp: a vnet reporting the IPv4 groups its sockets joined.

One vnet, one interface; the station is the querier.  Reports are decoded
with dpkt (IP header checksum, Router Alert option) and by hand.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import dpkt
import pytest

from vrouter.inet import igmp
from vrouter.wire import igmp as wire
from vrouter.wire.checksum import checksum

GROUP = IPv4Address("239.1.2.3").packed


def a4(text: str) -> bytes:
    return IPv4Address(text).packed


class Net:
    def __init__(self, lab) -> None:
        self.lab = lab
        self.red = lab.vnet("red")
        self.h1 = lab.host(self.red, "eth0", "192.0.2.1/24", "192.0.2.10")
        self.h1.take()

    @property
    def stats(self):
        return self.red.inet.igmp

    def reports(self) -> list[tuple[dpkt.ip.IP, bytes]]:
        out = []
        for frame in self.h1.take_ip():
            ip = frame.data
            if ip.p != 2:
                continue
            raw = bytes(ip)
            assert ip.ttl == 1 and raw[0] == 0x46 and raw[20:24] == bytes((0x94, 4, 0, 0))
            assert checksum(raw[:24]) == 0
            message = raw[24:]
            assert checksum(message) == 0
            assert frame.dst == bytes((1, 0, 0x5E)) + bytes([ip.dst[1] & 0x7F]) + ip.dst[2:]
            out.append((ip, message))
        return out

    def changes(self) -> list[tuple[dpkt.ip.IP, bytes]]:
        """Let the state-change reports (and their repetition) go out; return them."""
        self.lab.advance(1.0)
        self.lab.advance(1.0)
        return self.reports()

    def query(self, group: bytes = bytes(4), version: int = 3, ttl: int = 1) -> None:
        body = bytearray(struct.pack("!BBH4s", 0x11, 10 if version > 1 else 0, 0, group))
        if version == 3:
            body += struct.pack("!BBH", 2, 125, 0)
        struct.pack_into("!H", body, 2, checksum(body))
        dst = group if group != bytes(4) else a4("224.0.0.1")
        packet = self.h1.packet(dst, 2, bytes(body), ttl=ttl)
        mac = bytes((1, 0, 0x5E)) + bytes([dst[1] & 0x7F]) + dst[2:]
        self.h1.send(self.h1.frame(packet, mac), self.lab.now)
        self.lab.settle()


@pytest.fixture
def net(lab) -> Net:
    return Net(lab)


def records(message: bytes) -> list[tuple[int, bytes]]:
    count = struct.unpack_from("!H", message, 6)[0]
    return [(message[8 + 8 * i], message[12 + 8 * i : 16 + 8 * i]) for i in range(count)]


def test_join_is_reported_twice_and_leave_twice(net: Net) -> None:
    igmp.join(net.red, net.h1.ifp, GROUP)
    reports = net.changes()
    assert [ip.dst for ip, _ in reports] == [wire.ALL_IGMPV3_ROUTERS] * 2
    assert [records(m) for _, m in reports] == [[(wire.CHANGE_TO_EXCLUDE, GROUP)]] * 2
    assert all(ip.src == a4("192.0.2.1") for ip, _ in reports)
    igmp.leave(net.red, net.h1.ifp, GROUP)
    assert [records(m) for _, m in net.changes()] == [[(wire.CHANGE_TO_INCLUDE, GROUP)]] * 2
    assert net.stats.snd_reports == 4


def test_general_query_is_answered_with_every_group_but_all_systems(net: Net) -> None:
    igmp.join(net.red, net.h1.ifp, GROUP)
    igmp.join(net.red, net.h1.ifp, wire.ALL_SYSTEMS)
    net.changes()
    net.query()
    net.lab.advance(1.0)
    [(_, message)] = net.reports()
    assert message[0] == 0x22 and records(message) == [(wire.MODE_IS_EXCLUDE, GROUP)]
    assert net.stats.rcv_queries == 1


def test_igmpv2_query_is_answered_with_a_v2_report_to_the_group(net: Net) -> None:
    igmp.join(net.red, net.h1.ifp, GROUP)
    net.changes()
    net.query(version=2)
    net.lab.advance(1.0)
    [(ip, message)] = net.reports()
    assert ip.dst == GROUP and message[0] == 0x16 and message[4:8] == GROUP


def test_query_with_ttl_above_one_or_bad_checksum_is_dropped(net: Net) -> None:
    net.query(ttl=2)
    assert net.stats.rcv_bad == 1
    assert dict(net.h1.ifp.counters.rx_drops) == {"igmp_invalid": 1}
    with pytest.raises(Exception, match="igmp_badsum"):
        wire.Query.parse(bytes((0x11, 10, 0, 0, 0, 0, 0, 0)))


def test_v3_max_resp_code_is_exponential_from_128() -> None:
    body = bytearray(struct.pack("!BBH4sBBH", 0x11, 0x80 | 0x01, 0, bytes(4), 0, 0, 0))
    struct.pack_into("!H", body, 2, checksum(body))
    assert wire.Query.parse(bytes(body)).max_delay == pytest.approx((0x11 << 3) / 10)
