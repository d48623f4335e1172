"""Tests for vrouter.route.fib (LPM table) and vrouter.route.state (static routes)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrouter.core.timers import Timers
from vrouter.inet import ipv4
from vrouter.route import dir248
from vrouter.route import fib as fib_module
from vrouter.route import state as route_state
from vrouter.route.dir248 import BLOCK, PLEN, Dir248
from vrouter.route.dir248 import value as entry_value
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
from vrouter.route.source import source as source_named


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


def test_duplicate_add_of_one_source_raises_and_keeps_the_first() -> None:
    fib = Fib()
    first = Route(net("192.0.2.0/24"), source=CONNECTED)
    fib.add(first)
    generation = fib.generation
    with pytest.raises(RouteError, match=r"a connected route to 192\.0\.2\.0/24 already exists"):
        fib.add(Route(net("192.0.2.0/24"), BLACKHOLE, source=CONNECTED))
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
        "source": "static",
        "distance": 1,
        "use": 0,
    }
    assert route_state.describe(vnet, route)["state"] == "installed"


# --- add_static ---------------------------------------------------------------


def test_add_static_resolves_the_egress_interface_from_the_connected_route(lab) -> None:
    vnet = lab.vnet("r")
    lab.iface(vnet, "eth0", "192.0.2.1/24")
    eth1 = lab.iface(vnet, "eth1", "198.51.100.1/24")
    route = route_state.add_static(vnet, net("203.0.113.0/24"), via=IPv4Address("198.51.100.9"))
    assert route.ifnet is eth1
    assert route.gateway == addr("198.51.100.9")
    assert route.source == STATIC
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


def test_add_static_to_a_connected_network_is_held_behind_it(lab) -> None:
    vnet = lab.vnet("r")
    eth0 = lab.iface(vnet, "eth0", "192.0.2.1/24")
    static = route_state.add_static(vnet, net("192.0.2.0/24"), ifp=eth0)
    route = vnet.route.fib.get(net("192.0.2.0/24"))
    assert route is not None and route.source == CONNECTED
    assert vnet.route.fib.state(static) == "held"


def test_connected_route_follows_the_address(lab) -> None:
    vnet = lab.vnet("r")
    eth0 = lab.iface(vnet, "eth0", "192.0.2.1/24")
    route = vnet.route.fib.get(net("192.0.2.0/24"))
    assert route is not None
    assert (route.source, route.type, route.ifnet, route.gateway) == (
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


# --- the DIR-24-8 index of large IPv4 tables -------------------------------------


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Index tables from 8 routes on, unindex them below 4."""
    monkeypatch.setattr(fib_module, "INDEX_AT", 8)
    monkeypatch.setattr(fib_module, "UNINDEX_BELOW", 4)


MakeFib = Callable[[list[str]], Fib]


@pytest.fixture
def indexed_fib(monkeypatch: pytest.MonkeyPatch) -> MakeFib:
    """Return a maker of Fibs that are indexed from their first route and stay so."""
    monkeypatch.setattr(fib_module, "INDEX_AT", 1)
    monkeypatch.setattr(fib_module, "UNINDEX_BELOW", 0)

    def make(prefixes: list[str]) -> Fib:
        fib = Fib()
        for prefix in prefixes:
            fib.add(Route(net(prefix)))
        return fib

    return make


def assert_index_as_built(fib: Fib) -> None:
    """The incrementally patched index equals one built from the tables now, entry for
    entry (an entry is its route's length and next hop's number, not the order routes
    came in)."""
    index = fib._index
    assert isinstance(index, Dir248)
    fresh = Dir248(fib._by_len, fib.nhops)
    (top, blocks), (fresh_top, fresh_blocks) = index.values(), fresh.values()
    assert np.array_equal(top, fresh_top)
    assert {slot: b.tobytes() for slot, b in blocks.items()} == {
        slot: b.tobytes() for slot, b in fresh_blocks.items()
    }


def found(fib: Fib, dst: str) -> str | None:
    route = fib.lookup(addr(dst))
    return None if route is None else str(route.prefix)


def test_small_tables_have_no_index() -> None:
    fib = Fib()
    for i in range(100):
        fib.add(Route(net(f"10.0.{i}.0/24")))
    assert not fib.indexed
    assert "_index" not in vars(fib) and "lookup" not in vars(fib)
    fib6 = Fib(128)
    fib6.add(Route(ipaddress.IPv6Network("2001:db8::/32")))
    assert not fib6.indexed


def test_index_is_built_at_the_threshold_and_dropped_well_below(small_threshold: None) -> None:
    fib = Fib()
    nets = [net(f"198.51.{i}.0/24") for i in range(8)]
    for prefix in nets[:7]:
        fib.add(Route(prefix))
    assert not fib.indexed
    fib.add(Route(nets[7]))
    assert fib.indexed
    assert found(fib, "198.51.7.9") == "198.51.7.0/24"
    for prefix in nets[7:3:-1]:  # down to 4 routes: still indexed (hysteresis)
        fib.delete(prefix)
    assert fib.indexed and len(fib) == 4
    assert_index_as_built(fib)
    fib.delete(nets[3])
    assert not fib.indexed
    assert "_index" not in vars(fib) and "lookup" not in vars(fib)
    assert found(fib, "198.51.2.1") == "198.51.2.0/24"
    assert found(fib, "198.51.3.1") is None


def test_ipv6_tables_keep_their_own_threshold(small_threshold: None) -> None:
    fib = Fib(128)
    for i in range(20):
        fib.add(Route(ipaddress.IPv6Network(f"2001:db8:{i:x}::/48")))
    assert not fib.indexed  # IPv6 tables are indexed from INDEX6_AT (tests/unit/route/test_dir6.py)


def test_default_route_added_and_deleted_under_many_specifics(indexed_fib: MakeFib) -> None:
    specifics = [f"10.{i}.{j}.0/24" for i in range(0, 256, 5) for j in range(0, 256, 17)]
    fib = indexed_fib([*specifics, "10.5.17.128/25", "192.0.2.1/32"])
    assert found(fib, "203.0.113.1") is None
    fib.add(Route(net("0.0.0.0/0")))
    assert found(fib, "203.0.113.1") == "0.0.0.0/0"
    assert found(fib, "10.5.17.1") == "10.5.17.0/24"
    assert found(fib, "10.5.17.129") == "10.5.17.128/25"
    assert found(fib, "10.5.18.1") == "0.0.0.0/0"
    assert found(fib, "192.0.2.1") == "192.0.2.1/32"
    assert found(fib, "192.0.2.2") == "0.0.0.0/0"
    assert_index_as_built(fib)
    fib.delete(net("0.0.0.0/0"))
    assert found(fib, "203.0.113.1") is None
    assert found(fib, "192.0.2.2") is None
    assert found(fib, "10.5.17.129") == "10.5.17.128/25"
    assert_index_as_built(fib)


def test_a_25_inside_an_indexed_24_gets_a_block_and_gives_it_back(indexed_fib: MakeFib) -> None:
    fib = indexed_fib(["198.51.0.0/16", "198.51.100.0/24"])
    assert not fib._index.blocks  # type: ignore[union-attr]
    fib.add(Route(net("198.51.100.128/25")))
    assert len(fib._index.blocks) == 1  # type: ignore[union-attr]
    assert found(fib, "198.51.100.127") == "198.51.100.0/24"
    assert found(fib, "198.51.100.128") == "198.51.100.128/25"
    assert found(fib, "198.51.100.255") == "198.51.100.128/25"
    # The /24 goes and comes back under the /25: the block follows.
    fib.delete(net("198.51.100.0/24"))
    assert found(fib, "198.51.100.1") == "198.51.0.0/16"
    assert found(fib, "198.51.100.200") == "198.51.100.128/25"
    fib.add(Route(net("198.51.100.0/24")))
    assert found(fib, "198.51.100.1") == "198.51.100.0/24"
    assert_index_as_built(fib)
    fib.delete(net("198.51.100.128/25"))
    assert not fib._index.blocks  # type: ignore[union-attr]
    assert found(fib, "198.51.100.200") == "198.51.100.0/24"
    assert_index_as_built(fib)


def test_a_longer_prefix_shadowed_by_longer_ones_keeps_its_block(indexed_fib: MakeFib) -> None:
    fib = indexed_fib(["192.0.2.0/26", "192.0.2.64/26"])
    fib.add(Route(net("192.0.2.0/25")))  # wholly covered by the two /26s
    fib.delete(net("192.0.2.0/26"))
    assert found(fib, "192.0.2.1") == "192.0.2.0/25"
    fib.delete(net("192.0.2.64/26"))
    assert found(fib, "192.0.2.65") == "192.0.2.0/25"
    assert len(fib._index.blocks) == 1  # type: ignore[union-attr]
    fib.delete(net("192.0.2.0/25"))
    assert not fib._index.blocks  # type: ignore[union-attr]
    assert found(fib, "192.0.2.1") is None


@pytest.mark.parametrize("host", ["0.0.0.0", "255.255.255.255"])
def test_the_first_and_last_addresses(indexed_fib: MakeFib, host: str) -> None:
    fib = indexed_fib(["0.0.0.0/0"])
    assert found(fib, host) == "0.0.0.0/0"
    for plen in (1, 8, 24, 25, 31, 32):
        fib.add(Route(ipaddress.IPv4Network((host, plen), strict=False)))
        assert found(fib, host) == str(ipaddress.IPv4Network((host, plen), strict=False))
    assert_index_as_built(fib)
    for plen in (32, 31, 25, 24, 8, 1):
        fib.delete(ipaddress.IPv4Network((host, plen), strict=False))
    assert found(fib, host) == "0.0.0.0/0"
    assert not fib._index.blocks  # type: ignore[union-attr]
    fib.delete(net("0.0.0.0/0"))
    assert found(fib, host) is None
    assert_index_as_built(fib)


# Prefixes drawn near a few bases, so that they nest, overlap and repeat.
_BASES = [0x00000000, 0x0A000000, 0xC6336400, 0xC63364F0, 0xFFFFFF00]
near_prefixes = st.builds(
    lambda base, low, n: ipaddress.IPv4Network(((base ^ low) & 0xFFFFFFFF, n), strict=False),
    st.sampled_from(_BASES),
    st.one_of(st.integers(0, 0x3FF), st.integers(0, 2**32 - 1)),
    st.sampled_from([0, 1, 7, 8, 9, 16, 22, 23, 24, 24, 24, 25, 26, 28, 30, 31, 32, 32]),
)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([True, True, False]), near_prefixes, st.integers(0, 99)),
        min_size=10,
        max_size=60,
    )
)
def test_indexed_lookup_equals_a_linear_scan_across_the_threshold(
    steps: list[tuple[bool, IPv4Network, int]],
) -> None:
    # Thresholds set by hand (a fixture does not mix with @given): from 8, below 4.
    saved = fib_module.INDEX_AT, fib_module.UNINDEX_BELOW
    fib_module.INDEX_AT, fib_module.UNINDEX_BELOW = 8, 4
    try:
        fib = Fib()
        model: dict[IPv4Network, Route] = {}
        was_indexed = False
        for add, prefix, pick in steps:
            if add or not model:
                route = Route(prefix, gateway=GATEWAYS[pick % len(GATEWAYS)])
                if prefix in model and pick % 2:
                    with pytest.raises(RouteError):
                        fib.add(route)
                elif prefix in model:  # another next hop, or the same
                    assert fib.replace(route) is model[prefix]
                    model[prefix] = route
                else:
                    fib.add(route)
                    model[prefix] = route
            else:
                doomed = prefix if prefix in model else sorted(model)[pick % len(model)]
                assert fib.delete(doomed) is model.pop(doomed)
                prefix = doomed
            # The index exists from 8 routes until below 4.
            if len(model) >= 8:
                assert fib.indexed
            elif len(model) < 4:
                assert not fib.indexed
            else:
                assert fib.indexed == was_indexed
            was_indexed = fib.indexed
            first = int(prefix.network_address)
            last = int(prefix.broadcast_address)
            edges = {first, last, (first - 1) & 0xFFFFFFFF, (last + 1) & 0xFFFFFFFF}
            for a in edges | {0, 0xFFFFFFFF, first | 0x80, first | 0x7F}:
                dst = a.to_bytes(4, "big")
                expected = brute_force(model, dst)
                assert fib.lookup(dst) is expected
                assert fib.lookup_nhop(dst) is (expected.nhop if expected else None)
        for prefix in model:
            for a in (prefix.network_address, prefix.broadcast_address):
                assert fib.lookup(a.packed) is brute_force(model, a.packed)
        if fib.indexed:
            assert_index_as_built(fib)
        assert len(fib) == len(model)
    finally:
        fib_module.INDEX_AT, fib_module.UNINDEX_BELOW = saved


# Eight gateways: with up to 18 lengths, more (length, next hop) pairs than a top
# table of 6 codes holds, so it widens in some examples and not in others.
_MANY_GATEWAYS = [IPv4Address(f"192.0.2.{n}").packed for n in range(1, 9)]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([True, True, False]), near_prefixes, st.integers(0, 99)),
        min_size=10,
        max_size=80,
    ),
    st.lists(st.integers(0, 2**32 - 1), min_size=20, max_size=20),
)
def test_indexed_next_hops_equal_a_linear_scan_as_codes_come_and_go(
    steps: list[tuple[bool, IPv4Network, int]], probes: list[int]
) -> None:
    """Routes to many next hops added, replaced and deleted at random in an indexed
    table whose top table numbers few codes: codes are given back with their
    next hop and taken again, the table widens when they run out, and the
    lookup fetched before keeps answering as a longest-prefix scan does."""
    saved = fib_module.INDEX_AT, fib_module.UNINDEX_BELOW, dir248.CODES_16
    fib_module.INDEX_AT, fib_module.UNINDEX_BELOW, dir248.CODES_16 = 1, 0, 6
    try:
        fib = Fib()
        fib.add(Route(net("203.0.113.0/24")))  # indexed from here on
        model = {net("203.0.113.0/24"): fib.get(net("203.0.113.0/24"))}
        index = fib._index
        assert isinstance(index, Dir248) and index.top.itemsize == 2
        lookup_nhop = fib.lookup_nhop  # what a caller holds; the index may widen under it
        for add, prefix, pick in steps:
            gateway = _MANY_GATEWAYS[pick % len(_MANY_GATEWAYS)]
            if add or not model:
                route = Route(prefix, gateway=gateway)
                if prefix in model:
                    assert fib.replace(route) is model[prefix]
                else:
                    fib.add(route)
                model[prefix] = route
            else:
                doomed = sorted(model)[pick % len(model)]
                assert fib.delete(doomed) is model.pop(doomed)
            assert fib._index is index
            # Codes go with the next hops the table forgets (none of its routes goes there).
            assert set(index._codes) <= {nhop for nhop in fib.nhops if nhop is not None}
            targets = [a.to_bytes(4, "big") for a in probes]
            for prefix in model:
                first, last = int(prefix.network_address), int(prefix.broadcast_address)
                targets += [a.to_bytes(4, "big") for a in (first, last, (last + 1) & 0xFFFFFFFF)]
            for dst in targets:
                expected = brute_force(model, dst)
                assert lookup_nhop(dst) is (expected.nhop if expected else None)
                assert fib.lookup(dst) is expected
        assert index.top.itemsize == (4 if len(index.hops) > 6 else 2)
        assert_index_as_built(fib)
    finally:
        fib_module.INDEX_AT, fib_module.UNINDEX_BELOW, dir248.CODES_16 = saved


def test_the_top_table_widens_when_its_codes_run_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dir248, "CODES_16", 4)  # codes 0 and 1 are taken: two pairs fit
    prefixes = ["198.51.0.0/16", "198.51.100.0/24", "198.51.100.128/25", "203.0.113.0/24"]
    fib = Fib()
    model = {}
    for n, prefix in enumerate(prefixes):
        model[net(prefix)] = route = Route(net(prefix), gateway=GATEWAYS[n % 3])
        fib.add(route)
    index = Dir248(fib._by_len, fib.nhops)  # four pairs: the fourth widens it
    assert index.top.itemsize == 4 and len(index.hops) == 2 + 4
    for a in ("198.51.7.1", "198.51.100.1", "198.51.100.200", "203.0.113.9", "192.0.2.1"):
        expected = brute_force(model, addr(a))
        assert index.lookup(addr(a)) is expected
        assert index.lookup_nhop(addr(a)) is (expected.nhop if expected else None)


@pytest.mark.parametrize("turns", [False, True], ids=["at-once", "turn-by-turn"])
def test_without_numpy_a_large_table_stays_unindexed_and_correct(
    small_threshold: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    turns: bool,
) -> None:
    """numpy is the optional ``fib`` extra: without it the index is skipped, said once
    (also when a thread tried to import it ahead, for a table built turn by turn)."""
    import sys

    monkeypatch.setitem(sys.modules, "vrouter.route.dir248", None)  # import -> ImportError
    monkeypatch.setattr(fib_module, "_index_missing", None)
    monkeypatch.setattr(fib_module, "_importing", None)
    caplog.set_level("WARNING", "vrouter.route")
    fib = Fib()
    timers = Timers()
    if turns:
        fib.schedule = timers.schedule
    prefixes = [f"198.18.{k}.0/24" for k in range(20)] + ["198.18.0.0/16", "0.0.0.0/0"]
    for prefix in prefixes:
        fib.add(Route(net(prefix)))
        timers.run(float(len(fib)))
    importing = fib_module._importing
    assert (importing is not None) == turns
    if importing is not None:
        importing.join(timeout=10)
        assert not importing.is_alive()
    assert not fib.indexed
    assert fib.lookup(bytes([198, 18, 3, 9])).prefix == net("198.18.3.0/24")  # type: ignore[union-attr]
    assert fib.lookup(bytes([198, 18, 99, 9])).prefix == net("198.18.0.0/16")  # type: ignore[union-attr]
    assert fib.lookup(bytes([203, 0, 113, 1])).prefix == net("0.0.0.0/0")  # type: ignore[union-attr]
    said = [r for r in caplog.records if "no DIR-24-8" in r.getMessage()]
    assert len(said) == 1, "said once, not on every add"
    assert "vrouter[fib]" in said[0].getMessage()


# --- routes made from integers, and tables loaded in bulk -------------------------


def test_a_route_made_from_integers_is_the_route_made_from_its_network() -> None:
    made = Route.of(0xC6336400, 24, 32, UNICAST, addr("192.0.2.1"), None, STATIC)
    given = Route(net("198.51.100.0/24"), UNICAST, addr("192.0.2.1"), None, STATIC)
    assert made.describe() == given.describe()
    assert made.prefix == given.prefix == net("198.51.100.0/24")
    assert (made.net, made.plen, made.version, made.key) == (0xC6336400, 24, 4, (24, 0xC6336400))
    six = Route.of(0x20010DB8 << 96, 32, 128)
    assert six.prefix == ipaddress.IPv6Network("2001:db8::/32")
    assert six.prefix_text() == "2001:db8::/32" and six.version == 6


@pytest.mark.parametrize(
    ("net_", "plen", "bits"),
    [
        (0xC6336401, 24, 32),
        (0, 33, 32),
        (0, -1, 32),
        (-256, 24, 32),
        (1 << 32, 0, 32),
        (0, 24, 64),
        (1, 127, 128),
        (1 << 128, 128, 128),
    ],
)
def test_a_route_made_from_integers_that_are_no_prefix_is_refused(
    net_: int, plen: int, bits: int
) -> None:
    with pytest.raises(RouteError, match="is not a"):
        Route.of(net_, plen, bits)


def test_routes_are_told_apart_by_identity_not_by_value() -> None:
    fib = Fib()
    installed = Route(net("198.51.100.0/24"))
    fib.add(installed)
    twin = Route(net("198.51.100.0/24"))
    assert fib.state(installed) == "installed"
    assert fib.state(twin) == "gone"
    assert fib.state(Route(ipaddress.IPv6Network("::/0"))) == "gone"


def test_add_many_builds_the_index_once_after_the_last_route(small_threshold: None) -> None:
    fib = Fib()
    builds = []
    real = fib._build_index
    fib._build_index = lambda: (builds.append(len(fib)), real())[1]  # type: ignore[method-assign]
    prefixes = [f"198.51.{i}.0/24" for i in range(20)] + ["198.51.3.128/25", "0.0.0.0/0"]
    assert fib.add_many(Route(net(p)) for p in prefixes) == len(prefixes)
    assert builds == [len(prefixes)]
    assert fib.indexed
    assert_index_as_built(fib)
    assert found(fib, "198.51.3.200") == "198.51.3.128/25"
    assert found(fib, "198.51.3.1") == "198.51.3.0/24"
    assert found(fib, "203.0.113.1") == "0.0.0.0/0"


def test_add_many_holds_what_a_better_source_has_and_counts_the_installed() -> None:
    fib = Fib()
    fib.add(Route(net("198.51.100.0/24"), source=CONNECTED))
    rip = source_named("rip")
    routes = [Route(net("198.51.100.0/24"), source=rip), Route(net("203.0.113.0/24"), source=rip)]
    assert fib.add_many(routes) == 1
    assert [fib.state(r) for r in routes] == ["held", "installed"]
    assert fib.counts() == {"connected": (1, 0), "rip": (1, 1)}


def test_add_many_stops_at_a_bad_route_and_keeps_the_ones_before(small_threshold: None) -> None:
    fib = Fib()
    good = [Route(net(f"198.51.{i}.0/24")) for i in range(10)]
    bad = Route(net("198.51.3.0/24"))  # a second static route to the prefix
    after = Route(net("203.0.113.0/24"))
    with pytest.raises(RouteError, match="already exists"):
        fib.add_many([*good, bad, after])
    assert len(fib) == 10 and fib.get(after.prefix) is None
    assert fib.indexed  # built over what was added
    assert_index_as_built(fib)
    assert found(fib, "198.51.9.1") == "198.51.9.0/24"


@pytest.mark.parametrize("batch", [3, 12])
def test_add_many_to_an_indexed_table_patches_or_rebuilds_the_index(
    small_threshold: None, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """A batch below REINDEX_AT patches the index; one at or above it rebuilds it."""
    monkeypatch.setattr(fib_module, "REINDEX_AT", 10)
    fib = Fib()
    fib.add_many([Route(net(f"198.51.{i}.0/24")) for i in range(10)])
    index = fib._index
    fib.add_many([Route(net(f"203.0.{i}.0/24")) for i in range(batch)] + [Route(net("0.0.0.0/0"))])
    assert (fib._index is index) == (batch < 10)
    assert_index_as_built(fib)
    assert found(fib, f"203.0.{batch - 1}.7") == f"203.0.{batch - 1}.0/24"
    assert found(fib, "192.0.2.1") == "0.0.0.0/0"


def test_add_many_pauses_the_garbage_collector_and_restores_it() -> None:
    import gc

    seen = []
    fib = Fib()

    def routes() -> Iterator[Route]:
        for i in range(3):
            seen.append(gc.isenabled())
            yield Route(net(f"198.51.{i}.0/24"))

    assert gc.isenabled()
    fib.add_many(routes())
    assert seen == [False, False, False] and gc.isenabled()
    gc.disable()
    try:
        fib.add_many([Route(net("203.0.113.0/24"))])
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()


def test_a_bulk_built_index_answers_as_the_dicts_for_every_span() -> None:
    """Built in one go (short prefixes one by one, /16 and longer all at once, blocks)."""
    prefixes = ["0.0.0.0/0", "10.0.0.0/8", "10.64.0.0/10", "10.64.0.0/15", "10.65.0.0/16",
                "10.65.16.0/20", "10.65.17.0/24", "10.65.17.64/26", "10.65.17.65/32",
                "198.51.100.0/23", "198.51.100.0/25", "198.51.101.255/32"]  # fmt: skip
    model = {net(p): Route(net(p)) for p in prefixes}
    fib = Fib()
    fib.add_many(model.values())
    index = Dir248(fib._by_len, fib.nhops)
    probes = []
    for prefix in model:
        first, last = int(prefix.network_address), int(prefix.broadcast_address)
        probes += [first, last, (first - 1) & 0xFFFFFFFF, (last + 1) & 0xFFFFFFFF]
    for a in probes:
        dst = a.to_bytes(4, "big")
        assert index.lookup(dst) is brute_force(model, dst), IPv4Address(a)
    assert len(index.top) == 1 << 24 and index.top.itemsize == 2


GATEWAYS = [IPv4Address(f"192.0.2.{n}").packed for n in (1, 2, 3)]


def test_routes_of_a_table_going_the_same_way_share_one_next_hop() -> None:
    fib, other = Fib(), Fib()
    routes = [Route(net(f"198.51.100.{n * 64}/26"), gateway=GATEWAYS[n % 2]) for n in range(4)]
    for route in routes:
        fib.add(route)
    assert routes[0].nhop is routes[2].nhop and routes[1].nhop is routes[3].nhop
    assert routes[0].nhop is not routes[1].nhop
    assert [n for n in fib.nhops[1:] if n is not None] == [routes[0].nhop, routes[1].nhop]
    twin = Route(net("198.51.100.0/26"), gateway=GATEWAYS[0])
    other.add(twin)  # another table: a next hop (and a count) of its own
    assert twin.nhop is not routes[0].nhop and twin.nhop.key() == routes[0].nhop.key()
    routes[0].nhop.use += 5  # what the data path counts
    assert routes[2].use == 5 and routes[2].describe()["use"] == 5 and twin.use == 0
    fib.delete(net("198.51.100.0/26"))
    assert fib.lookup_nhop(addr("198.51.100.129")) is routes[2].nhop
    fib.delete(net("198.51.100.128/26"))  # the last route going there: the next hop goes
    assert routes[0].nhop not in fib.nhops and fib._nhop_of.keys() == {routes[1].nhop.key()}
    fib.add(routes[0])  # back, with the count it had
    assert fib.lookup_nhop(addr("198.51.100.1")) is routes[0].nhop and routes[0].use == 5


def test_a_replaced_route_takes_the_new_next_hop_and_the_index_follows(
    indexed_fib: MakeFib,
) -> None:
    fib = indexed_fib(["0.0.0.0/0", "198.51.0.0/16", "198.51.100.0/24", "198.51.100.128/25"])
    new = Route(net("198.51.0.0/16"), gateway=GATEWAYS[0])
    old = fib.replace(new)
    assert fib.lookup(addr("198.51.7.1")) is new
    assert fib.lookup_nhop(addr("198.51.7.1")) is new.nhop and new.nhop.gateway == GATEWAYS[0]
    assert fib.lookup_nhop(addr("198.51.100.1")) is fib.get(net("198.51.100.0/24")).nhop  # type: ignore[union-attr]
    assert old.nhop.refs == 3  # the other three routes still go there
    assert_index_as_built(fib)


def test_changing_the_default_route_writes_nothing_in_the_index(indexed_fib: MakeFib) -> None:
    fib = indexed_fib(["0.0.0.0/0", "198.51.0.0/16", "198.51.100.128/25"])
    index = fib._index
    assert isinstance(index, Dir248)
    before = index._top.copy(), {slot: bytes(block) for slot, block in index.blocks.items()}
    assert index.hops[0] is fib.get(net("0.0.0.0/0")).nhop  # type: ignore[union-attr]
    default = Route(net("0.0.0.0/0"), gateway=GATEWAYS[2])
    fib.replace(default)
    assert fib.lookup_nhop(addr("192.0.2.200")) is default.nhop
    fib.delete(net("0.0.0.0/0"))
    assert fib.lookup_nhop(addr("192.0.2.200")) is None and fib.lookup(addr("192.0.2.200")) is None
    fib.add(default)
    assert fib.lookup(addr("192.0.2.200")) is default and index.hops[0] is default.nhop
    assert np.array_equal(index._top, before[0])
    assert {slot: bytes(block) for slot, block in index.blocks.items()} == before[1]


def test_routes_share_one_object_per_gateway() -> None:
    gateways = [(0xC0000201).to_bytes(4, "big") for _ in range(3)]  # equal, three objects
    assert gateways[0] is not gateways[1]
    routes = [Route(net("198.51.100.0/24"), UNICAST, gateways[0]),
              Route.of(0xCB007100, 24, 32, UNICAST, gateways[1]),
              Route.of(0xCB007200, 24, 32, UNICAST, gateways[2])]  # fmt: skip
    assert routes[0].gateway is routes[1].gateway is routes[2].gateway
    assert routes[2].gateway == addr("192.0.2.1")


class TurnByTurn:
    """A Fib whose index is built one route a turn on a vnet's timers, run by hand."""

    def __init__(self) -> None:
        self.fib = Fib()
        self.timers = Timers()
        self.fib.schedule = self.timers.schedule
        self.now = 0.0

    def turn(self) -> int:
        """Run the timers once, as the event loop would at its next turn."""
        self.now += 1.0
        return self.timers.run(self.now)

    def reached(self, model: dict[IPv4Network, Route]) -> dict[IPv4Network, Route]:
        """Return the routes of ``model`` the index being built holds: those shorter than
        the length being filled, and those of that length whose own entry holds them
        (nothing longer is written yet)."""
        build = self.fib._build
        assert build is not None
        index = build.index

        def entry(net: int) -> int:
            code = index.top[net >> 8]
            if code == BLOCK:
                code = index.blocks[net >> 8][net & 0xFF]
            nhop = index.hops[code]
            return index.plens[code] << PLEN | nhop.id if nhop is not None and code else 0

        return {
            prefix: route
            for prefix, route in model.items()
            if route.plen < build.plen  # the default route is never written: always held
            or not route.plen
            or (route.plen == build.plen and entry(route.net) == entry_value(route))
        }


@pytest.fixture
def turn_by_turn(monkeypatch: pytest.MonkeyPatch) -> TurnByTurn:
    """Index from 8 routes on, below 4 no more; build one route a turn."""
    monkeypatch.setattr(fib_module, "INDEX_AT", 8)
    monkeypatch.setattr(fib_module, "UNINDEX_BELOW", 4)
    monkeypatch.setattr(fib_module, "INDEX_SLICE", 1)
    monkeypatch.setattr(fib_module, "INDEX_TURN", 0.0)
    return TurnByTurn()


def test_an_index_built_turn_by_turn_answers_only_once_complete(turn_by_turn: TurnByTurn) -> None:
    fib = turn_by_turn.fib
    prefixes = ["0.0.0.0/0", "198.51.0.0/16", *(f"198.51.{n}.0/24" for n in range(5)),
                "198.51.3.128/25"]  # fmt: skip
    for prefix in prefixes:
        fib.add(Route(net(prefix)))
    assert fib._build is not None and not fib.indexed  # reached 8 routes: building
    turns = 0
    while not fib.indexed:
        assert fib.lookup(addr("198.51.3.200")) is fib.get(net("198.51.3.128/25"))
        assert turn_by_turn.turn() == 1  # one turn a run of the timers, not all at once
        turns += 1
        assert turns <= len(prefixes) + 2
    assert turns == len(prefixes)  # one route a turn, the last turn completes
    assert fib.lookup(addr("198.51.3.200")) is fib.get(net("198.51.3.128/25"))
    assert fib.lookup(addr("198.51.9.1")) is fib.get(net("198.51.0.0/16"))
    assert fib.lookup(addr("192.0.2.1")) is fib.get(net("0.0.0.0/0"))
    assert turn_by_turn.turn() == 0  # nothing more scheduled
    assert_index_as_built(fib)


def test_routes_changed_during_a_build_are_in_the_index(turn_by_turn: TurnByTurn) -> None:
    fib = turn_by_turn.fib
    for n in range(8):
        fib.add(Route(net(f"198.51.{n}.0/24")))
    turn_by_turn.turn()  # the first /24 filled, 7 left
    fib.add(Route(net("198.51.0.0/16")))  # shorter than the length being filled
    fib.add(Route(net("198.51.100.0/24")))  # the length being filled
    fib.add(Route(net("198.51.7.128/25")))  # a length not reached yet
    fib.delete(net("198.51.6.0/24"))  # not filled yet
    fib.replace(Route(net("198.51.5.0/24"), type=BLACKHOLE))
    while not fib.indexed:
        turn_by_turn.turn()
    assert fib.lookup(addr("198.51.5.1")) is fib.get(net("198.51.5.0/24"))
    assert fib.lookup(addr("198.51.5.1")).type == BLACKHOLE  # type: ignore[union-attr]
    assert fib.lookup(addr("198.51.6.1")) is fib.get(net("198.51.0.0/16"))
    assert fib.lookup(addr("198.51.100.1")) is fib.get(net("198.51.100.0/24"))
    assert fib.lookup(addr("198.51.7.200")) is fib.get(net("198.51.7.128/25"))
    assert fib.lookup(addr("198.51.7.1")) is fib.get(net("198.51.7.0/24"))
    assert_index_as_built(fib)


def test_a_table_shrinking_during_a_build_drops_it(turn_by_turn: TurnByTurn) -> None:
    fib = turn_by_turn.fib
    prefixes = [net(f"198.51.{n}.0/24") for n in range(8)]
    for prefix in prefixes:
        fib.add(Route(prefix))
    turn_by_turn.turn()
    for prefix in prefixes[:5]:
        fib.delete(prefix)
    assert fib._build is None
    assert turn_by_turn.turn() == 1 and not fib.indexed  # the old turn finds no build
    assert turn_by_turn.turn() == 0
    assert fib.lookup(addr("198.51.7.1")) is fib.get(prefixes[7])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "add", "delete", "turn", "turn"]), near_prefixes,
                  st.integers(0, 99)),
        min_size=10,
        max_size=80,
    )
)  # fmt: skip
def test_a_partial_index_holds_exactly_the_routes_filled_so_far(
    steps: list[tuple[str, IPv4Network, int]],
) -> None:
    # Thresholds set by hand (a fixture does not mix with @given).
    names = ("INDEX_AT", "UNINDEX_BELOW", "INDEX_SLICE", "INDEX_TURN")
    saved = [getattr(fib_module, name) for name in names]
    for name, value in zip(names, (8, 4, 1, 0.0), strict=True):
        setattr(fib_module, name, value)
    try:
        table = TurnByTurn()
        fib = table.fib
        model: dict[IPv4Network, Route] = {}
        for kind, prefix, pick in [*steps, *[("turn", net("0.0.0.0/0"), 0)] * 100]:
            if kind == "turn":
                table.turn()
            elif kind == "add" or not model:
                if prefix not in model:
                    model[prefix] = Route(prefix)
                    fib.add(model[prefix])
            else:
                doomed = sorted(model)[pick % len(model)]
                assert fib.delete(doomed) is model.pop(doomed)
            build = fib._build
            first = int(prefix.network_address)
            probes = {first, int(prefix.broadcast_address), first | 0x80, 0, 0xFFFFFFFF}
            for a in probes:
                dst = a.to_bytes(4, "big")
                assert fib.lookup(dst) is brute_force(model, dst)
                if build is not None:
                    assert build.index.lookup(dst) is brute_force(table.reached(model), dst)
        if len(model) >= 8:
            assert fib.indexed
            assert_index_as_built(fib)
    finally:
        for name, value in zip(names, saved, strict=True):
            setattr(fib_module, name, value)
