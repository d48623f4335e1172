"""Tests for vrouter.inet6.slaac: a host vnet configuring itself from another router's RAs.

One host vnet (forwarding off, accept_rtadv on) with one interface; the
station on it plays the router and sends RAs built here by hand::

    router fe80::(eui64) --- eth0 [host]
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address, IPv6Network

import dpkt
import pytest

from vrouter.cli import render
from vrouter.inet6 import slaac
from vrouter.route.state import add_static
from vrouter.wire import ndp

RA = 134
RS = 133
ALL_NODES = IPv6Address("ff02::1").packed
PREFIX = IPv6Network("2001:db8:5::/64")


def a6(text: str) -> bytes:
    return IPv6Address(text).packed


def pio(prefix: str, valid: int, preferred: int, *, length: int = 64, flags: int = 0xC0) -> bytes:
    net = IPv6Network(prefix, strict=False)
    return struct.pack(
        "!BBBBIII16s", 3, 4, length, flags, valid, preferred, 0, net.network_address.packed
    )


def rdnss(lifetime: int, *servers: str) -> bytes:
    return struct.pack("!BBHI", 25, 1 + 2 * len(servers), 0, lifetime) + b"".join(
        a6(s) for s in servers
    )


def ra_body(lifetime: int = 1800, *options: bytes, hop_limit: int = 0) -> bytes:
    return struct.pack("!BBHII", hop_limit, 0, lifetime, 0, 0) + b"".join(options)


class Net:
    def __init__(self, lab6, accept: bool = True) -> None:
        self.lab = lab6
        self.vnet = lab6.vnet("host")
        self.vnet.inet6.forwarding = False
        self.vnet.inet6.accept_rtadv = accept
        self.router = lab6.host6(self.vnet, "eth0", (), None)
        self.ifp = self.router.ifp

    def ra(self, body: bytes, src: bytes | None = None) -> None:
        frame = self.router.nd(RA, body, src=src or self.router.lla, dst=ALL_NODES)
        self.router.send(frame, self.lab.now)
        self.lab.settle()

    @property
    def stat(self):
        return self.vnet.inet6.icmp

    @property
    def default(self):
        return self.vnet.route.fib6.get(slaac.DEFAULT)

    def sysctl(self, name: str, value: object) -> None:
        self.lab.tree.registry.sysctl().set(self.vnet, name, value)


def eui64(mac: bytes) -> bytes:
    return bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:]


@pytest.fixture
def net(lab6) -> Net:
    n = Net(lab6)
    lab6.finish_dad()
    return n


def test_host_solicits_routers_three_times_once_its_link_local_is_preferred(lab6) -> None:
    n = Net(lab6)
    lab6.finish_dad()
    lab6.advance(10)
    rs = [f for f in n.router.take_nd() if f.data.data.type == RS]
    assert len(rs) == 3
    assert all(f.data.dst == a6("ff02::2") and f.data.hlim == 255 for f in rs)
    assert n.stat.out_rs == 3
    lab6.advance(10)
    assert [f for f in n.router.take_nd() if f.data.data.type == RS] == []


def test_an_answer_stops_the_solicitations(lab6) -> None:
    n = Net(lab6)
    lab6.finish_dad()
    n.ra(ra_body(1800))
    n.router.take()
    lab6.advance(12)
    assert n.stat.out_rs == 1


def test_prefix_with_a_flag_gives_an_eui64_address_after_dad_and_a_default_route(net) -> None:
    net.ra(ra_body(1800, pio("2001:db8:5::/64", 86400, 14400)))
    address = PREFIX.network_address.packed[:8] + eui64(net.ifp.mac)
    addr = net.vnet.inet6.local[address]
    assert addr.state == "tentative"
    net.lab.finish_dad()
    assert addr.usable and not addr.deprecated
    route = net.default
    assert route is not None and route.gateway == net.router.lla and route.ifnet is net.ifp
    assert route.source.name == "ra"
    shown = slaac.describe(net.vnet, net.lab.now)
    assert shown["routers"][0]["default"] is True
    assert shown["addresses"][0]["address"] == f"{IPv6Address(address)}/64"
    assert net.stat.slaac_addresses == 1 and net.stat.ra_routers == 1


def test_router_lifetime_zero_removes_the_default_route(net) -> None:
    net.ra(ra_body(1800))
    assert net.default is not None
    net.ra(ra_body(0))
    assert net.default is None
    assert net.stat.ra_router_expired == 1
    assert slaac.describe(net.vnet, net.lab.now)["routers"] == []


def test_router_lifetime_runs_out(net) -> None:
    net.ra(ra_body(30))
    net.lab.advance(29)
    assert net.default is not None
    net.lab.advance(2)
    assert net.default is None


def test_second_router_takes_over_when_the_first_goes(net) -> None:
    other = a6("fe80::99")
    net.ra(ra_body(1800))
    net.ra(ra_body(1800), src=other)
    assert net.default.gateway == net.router.lla
    net.ra(ra_body(0))
    assert net.default.gateway == other


def test_static_default_route_wins_over_the_learnt_one(net) -> None:
    net.ra(ra_body(1800))
    add_static(net.vnet, slaac.DEFAULT, via=IPv6Address("fe80::5"), ifp=net.ifp)
    assert net.default.source.name == "static"
    net.ra(ra_body(0))
    assert net.default.source.name == "static"


def test_preferred_lifetime_deprecates_and_valid_lifetime_removes(net) -> None:
    net.ra(ra_body(1800, pio("2001:db8:5::/64", 60, 20)))
    net.lab.finish_dad()
    address = PREFIX.network_address.packed[:8] + eui64(net.ifp.mac)
    addr = net.vnet.inet6.local[address]
    net.lab.advance(25)
    assert addr.deprecated and addr.usable
    assert slaac.describe(net.vnet, net.lab.now)["addresses"][0]["state"] == "deprecated"
    net.lab.advance(40)
    assert address not in net.vnet.inet6.local
    assert net.vnet.route.fib6.get(PREFIX) is None
    assert net.stat.slaac_expired == 1


def test_two_hour_rule_ignores_a_short_valid_lifetime(net) -> None:
    net.ra(ra_body(1800, pio("2001:db8:5::/64", 86400, 14400)))
    net.ra(ra_body(1800, pio("2001:db8:5::/64", 10, 5)))
    entry = next(iter(net.vnet.inet6.host_ra.addresses.values()))
    assert entry.expires == pytest.approx(net.lab.now + 7200)


@pytest.mark.parametrize(
    "option",
    [
        pio("2001:db8:5::/48", 86400, 14400, length=48),
        pio("fe80::/64", 86400, 14400),
        pio("2001:db8:5::/64", 100, 200),
    ],
    ids=["length48", "linklocal", "preferred_above_valid"],
)
def test_unusable_prefixes_are_ignored_and_counted(net, option: bytes) -> None:
    net.ra(ra_body(1800, option))
    assert net.vnet.inet6.host_ra.addresses == {}
    assert net.stat.ra_badopt == 1


def test_rdnss_and_dnssl_are_learnt_with_their_lifetimes(net) -> None:
    dnssl = ndp.dnssl_option(300, ("example.com", "lab.example.org"))
    net.ra(ra_body(1800, rdnss(600, "2001:db8:5::53", "2001:db8:5::54"), dnssl))
    shown = slaac.describe(net.vnet, net.lab.now)
    assert [d["address"] for d in shown["dns"]] == ["2001:db8:5::53", "2001:db8:5::54"]
    assert [d["domain"] for d in shown["search"]] == ["example.com", "lab.example.org"]
    net.lab.advance(301)
    shown = slaac.describe(net.vnet, net.lab.now)
    assert shown["search"] == [] and len(shown["dns"]) == 2
    net.ra(ra_body(1800, rdnss(0, "2001:db8:5::53")))
    shown = slaac.describe(net.vnet, net.lab.now)
    assert [d["address"] for d in shown["dns"]] == ["2001:db8:5::54"]


def test_malformed_dnssl_is_counted_and_the_rest_of_the_ra_used(net) -> None:
    bad = struct.pack("!BBHI", 31, 2, 0, 300) + bytes([70]) + b"x" * 7
    net.ra(ra_body(1800, bad))
    assert net.stat.ra_badopt == 1
    assert net.default is not None


def test_mtu_option_caps_what_the_host_sends(net) -> None:
    mtu = struct.pack("!BBHI", 5, 1, 0, 1400)
    net.ra(ra_body(1800, mtu))
    assert net.vnet.inet6.host_ra.mtu == {"eth0": 1400}
    too_small = struct.pack("!BBHI", 5, 1, 0, 1000)
    net.ra(ra_body(1800, too_small))
    assert net.stat.ra_badopt == 1
    assert net.vnet.inet6.host_ra.mtu == {"eth0": 1400}


def test_router_limit_per_interface(net) -> None:
    net.vnet.inet6.max_routers = 2
    for i in range(4):
        net.ra(ra_body(1800), src=a6(f"fe80::{i + 1}"))
    assert len(net.vnet.inet6.host_ra.routers) == 2
    assert net.stat.ra_limit == 2


def test_forwarding_vnet_ignores_ras(net) -> None:
    net.vnet.inet6.forwarding = True
    net.ra(ra_body(1800, pio("2001:db8:5::/64", 86400, 14400)))
    assert net.default is None and net.vnet.inet6.host_ra.addresses == {}
    assert net.stat.ra_ignored == 1


def test_accept_rtadv_off_ignores_and_turning_it_off_forgets(lab6) -> None:
    n = Net(lab6, accept=False)
    lab6.finish_dad()
    n.ra(ra_body(1800))
    assert n.default is None and n.stat.ra_ignored == 1
    n.sysctl("net.inet6.ip6.accept_rtadv", True)
    n.ra(ra_body(1800, pio("2001:db8:5::/64", 86400, 14400)))
    assert n.default is not None and n.vnet.inet6.host_ra.addresses
    n.sysctl("net.inet6.ip6.accept_rtadv", False)
    assert n.default is None and n.vnet.inet6.host_ra.addresses == {}
    assert n.vnet.inet6.local == {}


def test_turning_accept_rtadv_on_solicits_routers(lab6) -> None:
    n = Net(lab6, accept=False)
    lab6.finish_dad()
    lab6.advance(10)
    assert n.stat.out_rs == 0
    n.sysctl("net.inet6.ip6.accept_rtadv", True)
    lab6.advance(0.1)
    assert n.stat.out_rs == 1


def test_malformed_ra_is_dropped_before_anything_is_learnt(net) -> None:
    body = ra_body(1800) + bytes([3, 0, 0, 0, 0, 0, 0, 0])  # option length 0
    net.ra(body)
    assert net.default is None
    assert net.stat.nd_bad == 1


def test_dpkt_decodes_the_router_solicitation(lab6) -> None:
    n = Net(lab6)
    lab6.finish_dad()
    [rs] = [f for f in n.router.take_nd() if f.data.data.type == RS]
    assert isinstance(rs.data.data, dpkt.icmp6.ICMP6)
    assert rs.data.src[:2] == b"\xfe\x80"


def test_vrouterctl_renders_what_was_learnt(net) -> None:
    dnssl = ndp.dnssl_option(300, ("example.com",))
    net.ra(ra_body(1800, pio("2001:db8:5::/64", 86400, 14400), rdnss(600, "2001:db8:5::53"), dnssl))
    text = render.show_rtadv(slaac.describe(net.vnet, net.lab.now))
    assert "accept_rtadv: on" in text
    assert str(IPv6Address(net.router.lla)) in text and "1800s" in text
    assert "2001:db8:5::53" in text and "example.com" in text
    assert "/64" in text and "tentative" in text
