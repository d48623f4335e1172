"""Tests for vrouter.route.fib (LPM table) and vrouter.route.state (static routes)."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrouter.inet import ipv4
from vrouter.route import state as route_state
from vrouter.route.fib import (
    BLACKHOLE,
    CONNECTED,
    REJECT,
    STATIC,
    UNICAST,
    Fib,
    Route,
    RouteError,
)


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


def addr(text: str) -> bytes:
    return IPv4Address(text).packed


NESTED = ["0.0.0.0/0", "198.0.0.0/8", "198.51.0.0/16", "198.51.100.0/24", "198.51.100.7/32"]


@pytest.fixture
def nested() -> Fib:
    fib = Fib()
    for prefix in NESTED:
        fib.add(Route(net(prefix)))
    return fib


@pytest.mark.parametrize(
    ("dst", "expected"),
    [
        ("198.51.100.7", "198.51.100.7/32"),
        ("198.51.100.8", "198.51.100.0/24"),
        ("198.51.100.255", "198.51.100.0/24"),
        ("198.51.101.1", "198.51.0.0/16"),
        ("198.52.0.1", "198.0.0.0/8"),
        ("203.0.113.9", "0.0.0.0/0"),
        ("0.0.0.0", "0.0.0.0/0"),
        ("255.255.255.255", "0.0.0.0/0"),
    ],
)
def test_lookup_picks_the_longest_covering_prefix(nested: Fib, dst: str, expected: str) -> None:
    route = nested.lookup(addr(dst))
    assert route is not None
    assert route.prefix == net(expected)


def test_deleting_the_longest_falls_back_one_level_at_a_time(nested: Fib) -> None:
    dst = addr("198.51.100.7")
    for prefix, fallback in zip(NESTED[::-1], [*NESTED[::-1][1:], None], strict=True):
        route = nested.delete(net(prefix))
        assert route.prefix == net(prefix)
        found = nested.lookup(dst)
        if fallback is None:
            assert found is None
        else:
            assert found is not None and found.prefix == net(fallback)
    assert len(nested) == 0


def test_lookup_in_an_empty_table_is_none() -> None:
    assert Fib().lookup(addr("192.0.2.1")) is None


def test_no_default_route_means_no_match_outside_prefixes() -> None:
    fib = Fib()
    fib.add(Route(net("192.0.2.0/24")))
    assert fib.lookup(addr("192.0.3.0")) is None
    assert fib.lookup(addr("192.0.1.255")) is None
    assert fib.lookup(addr("192.0.2.0")) is not None


def test_get_is_exact_not_longest_match(nested: Fib) -> None:
    route = nested.get(net("198.51.0.0/16"))
    assert route is not None and route.prefix == net("198.51.0.0/16")
    assert nested.get(net("198.51.100.0/25")) is None
    assert nested.get(net("198.51.0.0/17")) is None
    assert nested.get(net("203.0.113.0/24")) is None


def test_duplicate_add_raises_and_keeps_the_first() -> None:
    fib = Fib()
    first = Route(net("192.0.2.0/24"), origin=CONNECTED)
    fib.add(first)
    generation = fib.generation
    with pytest.raises(RouteError, match=r"192\.0\.2\.0/24"):
        fib.add(Route(net("192.0.2.0/24"), BLACKHOLE))
    assert fib.get(net("192.0.2.0/24")) is first
    assert len(fib) == 1
    assert fib.generation == generation


def test_delete_of_missing_raises() -> None:
    fib = Fib()
    with pytest.raises(RouteError, match=r"203\.0\.113\.0/24"):
        fib.delete(net("203.0.113.0/24"))
    fib.add(Route(net("203.0.113.0/24")))
    # Same length, other network; and same network, other length.
    with pytest.raises(RouteError):
        fib.delete(net("198.51.100.0/24"))
    with pytest.raises(RouteError):
        fib.delete(net("203.0.113.0/25"))
    assert len(fib) == 1


def test_generation_increments_on_add_and_delete_only() -> None:
    fib = Fib()
    assert fib.generation == 0
    fib.add(Route(net("192.0.2.0/24")))
    assert fib.generation == 1
    fib.add(Route(net("192.0.2.128/25")))
    assert fib.generation == 2
    fib.lookup(addr("192.0.2.200"))
    fib.get(net("192.0.2.0/24"))
    list(fib)
    assert fib.generation == 2
    fib.delete(net("192.0.2.128/25"))
    assert fib.generation == 3
    with pytest.raises(RouteError):
        fib.delete(net("192.0.2.128/25"))
    assert fib.generation == 3


def test_iteration_is_longest_prefix_first_then_by_network_whatever_the_insertion_order() -> None:
    prefixes = [
        "203.0.113.0/24",
        "0.0.0.0/0",
        "198.51.100.64/26",
        "192.0.2.0/24",
        "198.51.100.0/24",
        "192.0.2.1/32",
        "198.51.100.0/26",
    ]
    expected = [
        "192.0.2.1/32",
        "198.51.100.0/26",
        "198.51.100.64/26",
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "0.0.0.0/0",
    ]
    for order in (prefixes, prefixes[::-1]):
        fib = Fib()
        for p in order:
            fib.add(Route(net(p)))
        assert [str(r.prefix) for r in fib] == expected
        assert len(fib) == len(expected)


def test_iteration_forgets_deleted_routes_and_their_lengths() -> None:
    fib = Fib()
    fib.add(Route(net("192.0.2.0/25")))
    fib.add(Route(net("192.0.2.0/24")))
    fib.delete(net("192.0.2.0/25"))
    assert [str(r.prefix) for r in fib] == ["192.0.2.0/24"]
    # The /25 slot is gone: an address inside it now matches the /24.
    route = fib.lookup(addr("192.0.2.1"))
    assert route is not None and route.prefix == net("192.0.2.0/24")


def test_describe_shows_gateway_and_interface(lab) -> None:
    vnet = lab.vnet("r")
    ifp = lab.iface(vnet, "eth0", "192.0.2.1/24")
    route = route_state.add_static(vnet, net("203.0.113.0/24"), via=IPv4Address("192.0.2.254"))
    assert route.describe() == {
        "prefix": "203.0.113.0/24",
        "type": UNICAST,
        "gateway": "192.0.2.254",
        "interface": ifp.name,
        "origin": STATIC,
        "use": 0,
    }


# --- add_static ---------------------------------------------------------------


def test_add_static_resolves_the_egress_interface_from_the_connected_route(lab) -> None:
    vnet = lab.vnet("r")
    lab.iface(vnet, "eth0", "192.0.2.1/24")
    eth1 = lab.iface(vnet, "eth1", "198.51.100.1/24")
    route = route_state.add_static(vnet, net("203.0.113.0/24"), via=IPv4Address("198.51.100.9"))
    assert route.ifnet is eth1
    assert route.gateway == addr("198.51.100.9")
    assert route.origin == STATIC
    assert route.type == UNICAST
    found = vnet.route.fib.lookup(addr("203.0.113.77"))
    assert found is route


def test_add_static_refuses_a_next_hop_off_every_connected_network(lab) -> None:
    vnet = lab.vnet("edge-r1")
    lab.iface(vnet, "eth0", "192.0.2.1/24")
    before = vnet.route.fib.generation
    with pytest.raises(RouteError) as info:
        route_state.add_static(vnet, net("203.0.113.0/24"), via=IPv4Address("198.51.100.9"))
    message = str(info.value)
    assert "198.51.100.9" in message
    assert "vnet edge-r1" in message
    assert vnet.route.fib.get(net("203.0.113.0/24")) is None
    assert vnet.route.fib.generation == before


def test_add_static_refuses_a_next_hop_reached_only_through_another_static_route(lab) -> None:
    vnet = lab.vnet("r")
    lab.iface(vnet, "eth0", "192.0.2.1/24")
    route_state.add_static(vnet, net("198.51.100.0/24"), via=IPv4Address("192.0.2.254"))
    with pytest.raises(RouteError, match=r"198\.51\.100\.9"):
        route_state.add_static(vnet, net("203.0.113.0/24"), via=IPv4Address("198.51.100.9"))


def test_add_static_refuses_a_next_hop_on_another_interface_than_asked(lab) -> None:
    vnet = lab.vnet("r")
    lab.iface(vnet, "eth0", "192.0.2.1/24")
    eth1 = lab.iface(vnet, "eth1", "198.51.100.1/24")
    with pytest.raises(RouteError, match=r"192\.0\.2\.9.* via eth1"):
        route_state.add_static(vnet, net("203.0.113.0/24"), via=IPv4Address("192.0.2.9"), ifp=eth1)


def test_add_static_accepts_any_next_hop_on_a_connected_network(lab) -> None:
    """The docstring's rule: "a next hop must be on one of the vnet's connected networks".

    192.0.2.200 is on the connected 192.0.2.0/24; a more specific static route
    covering it must not make it unacceptable as a next hop.
    """
    vnet = lab.vnet("r")
    eth0 = lab.iface(vnet, "eth0", "192.0.2.1/24")
    route_state.add_static(vnet, net("192.0.2.128/25"), via=IPv4Address("192.0.2.2"))
    route = route_state.add_static(vnet, net("203.0.113.0/24"), via=IPv4Address("192.0.2.200"))
    assert route.ifnet is eth0


def test_add_static_on_link_route_needs_an_interface_or_next_hop(lab) -> None:
    vnet = lab.vnet("r")
    eth0 = lab.iface(vnet, "eth0", "192.0.2.1/24")
    with pytest.raises(RouteError, match=r"203\.0\.113\.0/24"):
        route_state.add_static(vnet, net("203.0.113.0/24"))
    route = route_state.add_static(vnet, net("203.0.113.0/24"), ifp=eth0)
    assert route.ifnet is eth0 and route.gateway is None


@pytest.mark.parametrize("kind", [BLACKHOLE, REJECT])
def test_add_static_blackhole_and_reject_need_no_next_hop(lab, kind: str) -> None:
    vnet = lab.vnet("r")
    lab.iface(vnet, "eth0", "192.0.2.1/24")
    route = route_state.add_static(vnet, net("203.0.113.0/24"), kind)
    assert route.type == kind
    assert route.gateway is None and route.ifnet is None
    found = vnet.route.fib.lookup(addr("203.0.113.5"))
    assert found is route and found.type == kind


def test_add_static_duplicate_of_connected_route_raises(lab) -> None:
    vnet = lab.vnet("r")
    eth0 = lab.iface(vnet, "eth0", "192.0.2.1/24")
    with pytest.raises(RouteError):
        route_state.add_static(vnet, net("192.0.2.0/24"), ifp=eth0)
    route = vnet.route.fib.get(net("192.0.2.0/24"))
    assert route is not None and route.origin == CONNECTED


def test_connected_route_follows_the_address(lab) -> None:
    vnet = lab.vnet("r")
    eth0 = lab.iface(vnet, "eth0", "192.0.2.1/24")
    route = vnet.route.fib.get(net("192.0.2.0/24"))
    assert route is not None
    assert (route.origin, route.type, route.ifnet, route.gateway) == (
        CONNECTED,
        UNICAST,
        eth0,
        None,
    )
    ipv4.remove_address(vnet, eth0, IPv4Interface("192.0.2.1/24"))
    assert vnet.route.fib.get(net("192.0.2.0/24")) is None
    assert len(vnet.route.fib) == 0


# --- property: LPM equals a linear scan ----------------------------------------

prefixes = st.builds(
    lambda a, n: ipaddress.ip_network((a, n), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)


def brute_force(routes: dict[IPv4Network, Route], dst: bytes) -> Route | None:
    address = IPv4Address(dst)
    best = None
    for prefix, route in routes.items():
        if address in prefix and (best is None or prefix.prefixlen > best.prefix.prefixlen):
            best = route
    return best


@settings(max_examples=300, deadline=None)
@given(
    st.lists(prefixes, max_size=40),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=40),
    st.data(),
)
def test_lookup_equals_a_linear_scan(
    added: list[IPv4Network], probes: list[int], data: st.DataObject
) -> None:
    fib = Fib()
    model: dict[IPv4Network, Route] = {}
    for prefix in added:
        route = Route(prefix)
        if prefix in model:
            with pytest.raises(RouteError):
                fib.add(route)
        else:
            fib.add(route)
            model[prefix] = route
    if model:
        doomed = data.draw(st.lists(st.sampled_from(sorted(model)), unique=True))
        for prefix in doomed:
            assert fib.delete(prefix) is model.pop(prefix)
    # Probe random addresses and the edges of every prefix present.
    targets = [a.to_bytes(4, "big") for a in probes]
    for prefix in model:
        targets += [prefix.network_address.packed, prefix.broadcast_address.packed]
    for dst in targets:
        assert fib.lookup(dst) is brute_force(model, dst)
    assert len(fib) == len(model)
    assert sorted(r.prefix for r in fib) == sorted(model)
