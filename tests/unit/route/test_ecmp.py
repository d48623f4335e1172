"""Multipath (ECMP) routes: flows spread over the paths, each flow keeps to one."""

from __future__ import annotations

import ipaddress

import pytest

from vrouter.inet import ipv4
from vrouter.route import state as route_state
from vrouter.route.dest import flow4
from vrouter.route.fib import RouteError

NET = ipaddress.ip_network("198.18.0.0/24")
VIA2 = ipaddress.ip_address("198.51.100.2")
VIA3 = ipaddress.ip_address("203.0.113.2")


@pytest.fixture
def net(lab):
    """Router r: h1 on t1, and 198.18.0.0/24 by two paths, h2 (t2) and h3 (t3)."""
    r = lab.vnet("r")
    h1 = lab.host(r, "t1", "192.0.2.1/24", "192.0.2.2")
    h2 = lab.host(r, "t2", "198.51.100.1/24", "198.51.100.2")
    h3 = lab.host(r, "t3", "203.0.113.1/24", "203.0.113.2")
    route = route_state.resolve_multipath(r, NET, [(VIA2, None), (VIA3, None)])
    r.route.fib.add(route)
    h1.learn_router(lab.now)
    return r, h1, h2, h3


def _paths_taken(lab, h1, h2, h3, ports: range) -> dict[int, str]:
    """Send one datagram per source port; return which host each reached."""
    taken = {}
    for sport in ports:
        h1.send(h1.udp("198.18.0.9", sport=sport), lab.now)
        lab.settle()
        got2, got3 = len(h2.take_ip()), len(h3.take_ip())
        assert got2 + got3 == 1, f"port {sport}: {got2} + {got3} datagrams"
        taken[sport] = "h2" if got2 else "h3"
    return taken


def test_flows_spread_over_both_paths_and_keep_to_theirs(net, lab, monkeypatch) -> None:
    r, h1, h2, h3 = net
    first = _paths_taken(lab, h1, h2, h3, range(40000, 40064))
    counts = list(first.values())
    assert counts.count("h2") >= 16 and counts.count("h3") >= 16
    # Again, all from the destination cache's fast path: each flow the same way.
    monkeypatch.setattr(ipv4, "_forward", _not_the_full_path)
    assert _paths_taken(lab, h1, h2, h3, range(40000, 40064)) == first
    [row] = [r_ for r_ in r.route.fib if r_.prefix == NET]
    assert [n["interface"] for n in row.describe()["nexthops"]] == ["t2", "t3"]  # type: ignore[union-attr]


def _not_the_full_path(*args: object) -> None:
    raise AssertionError("the fast path should have forwarded this packet")


def test_an_interface_removed_takes_its_path_out_of_the_set(net, lab) -> None:
    r, h1, h2, h3 = net
    _paths_taken(lab, h1, h2, h3, range(40000, 40008))
    removed = route_state.remove_interface_routes(r, r.link.get("t3"))
    assert [str(route.prefix) for route in removed] == ["203.0.113.0/24"]  # the ECMP one stays
    route = r.route.fib.get(NET)
    assert route is not None and route.nexthops == () and route.ifnet is r.link.get("t2")
    assert set(_paths_taken(lab, h1, h2, h3, range(40000, 40032)).values()) == {"h2"}


def test_the_flow_hash_reads_ports_only_of_unfragmented_tcp_and_udp(net) -> None:
    _, h1, _, _ = net
    a = h1.udp("198.18.0.9", sport=1000)
    b = h1.udp("198.18.0.9", sport=1001)
    assert flow4(a) != flow4(b) and flow4(a) == flow4(bytes(a))
    fragment = bytearray(a)
    fragment[20] |= 0x20  # more fragments: no ports to read in the others
    other = bytearray(b)
    other[20] |= 0x20
    assert flow4(fragment) == flow4(other)


def test_a_path_given_twice_is_refused(net) -> None:
    r, _, _, _ = net
    with pytest.raises(RouteError, match="given twice"):
        route_state.resolve_multipath(r, NET, [(VIA2, None), (VIA2, None)])


def test_a_next_hop_that_stops_answering_is_left_out_until_it_answers(net, lab) -> None:
    r, h1, h2, h3 = net
    h3.auto_arp = False  # 203.0.113.2 is gone
    for sport in range(40000, 40064):
        h1.send(h1.udp("198.18.0.9", sport=sport), lab.now)
    lab.settle()
    for _ in range(5):  # the ARP requests for h3 time out
        lab.advance(1.0)
    assert r.inet.arp.paths[("t3", VIA3.packed)] > 0
    h2.take(), h3.take(), h1.take()
    assert set(_paths_taken(lab, h1, h2, h3, range(40000, 40064)).values()) == {"h2"}
    # Retried after the hold: it answers again and takes its flows back.
    h3.auto_arp = True
    lab.advance(60.0)
    lab.advance(30.0)
    for sport in range(40000, 40064):  # the first of h3's flows resolve it again
        h1.send(h1.udp("198.18.0.9", sport=sport), lab.now)
    lab.settle()
    h2.take(), h3.take()
    assert set(_paths_taken(lab, h1, h2, h3, range(40000, 40064)).values()) == {"h2", "h3"}


def test_weighted_paths_share_flows_by_weight_and_count_their_packets(lab) -> None:
    r = lab.vnet("r")
    h1 = lab.host(r, "t1", "192.0.2.1/24", "192.0.2.2")
    h2 = lab.host(r, "t2", "198.51.100.1/24", "198.51.100.2")
    h3 = lab.host(r, "t3", "203.0.113.1/24", "203.0.113.2")
    route = route_state.resolve_multipath(r, NET, [(VIA2, None), (VIA3, None)], weights=(3, 1))
    r.route.fib.add(route)
    h1.learn_router(lab.now)
    counts = list(_paths_taken(lab, h1, h2, h3, range(40000, 40400)).values())
    assert 240 <= counts.count("h2") <= 360, counts.count("h2")  # three flows in four
    assert [n.use for n in route.nexthops] == [counts.count("h2"), counts.count("h3")]
    assert [n["weight"] for n in route.describe()["nexthops"]] == [3, 1]  # type: ignore[union-attr]
    assert list(r.route.multipath.values()) == [route]  # what the metrics read


def test_weights_must_match_the_paths(net) -> None:
    r, _, _, _ = net
    with pytest.raises(RouteError, match="1 weights for 2 paths"):
        route_state.resolve_multipath(r, NET, [(VIA2, None), (VIA3, None)], weights=(2,))


def test_a_flow_hashes_alike_with_and_without_ip_options(net) -> None:
    _, h1, _, _ = net
    plain = bytearray(h1.udp("198.18.0.9", sport=1000))
    # The same datagram with one 4-byte option (NOP, NOP, NOP, EOL): IHL 6.
    with_options = plain[:14] + b"\x46" + plain[15:34] + b"\x01\x01\x01\x00" + plain[34:]
    assert flow4(with_options) == flow4(plain)
    assert flow4(with_options) != flow4(h1.udp("198.18.0.9", sport=1001))


def test_ipv4_and_ipv6_multipath_routes_of_one_source_are_tracked_apart(net) -> None:
    """0.0.0.0/0 and ::/0 have the same length and network number: both stay tracked."""
    from vrouter.route.fib import Nexthop, Route

    r = net[0]
    ifp = r.link.interfaces["t2"]
    paths = (Nexthop(None, ifp), Nexthop(bytes(4), ifp))
    four = Route(ipaddress.ip_network("0.0.0.0/0"), nexthops=paths)
    six = Route(ipaddress.ip_network("::/0"), nexthops=paths)
    track = route_state._track_multipath
    multipath: dict = {}
    track(multipath, "add", four)
    track(multipath, "add", six)
    assert sorted(map(id, multipath.values())) == sorted([id(four), id(six)])
    track(multipath, "delete", four)
    assert list(multipath.values()) == [six]
