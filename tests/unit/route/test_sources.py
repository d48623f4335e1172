"""Tests for route sources: several sources per prefix in one Fib, the best installed."""

from __future__ import annotations

import ipaddress
import random
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.route.test_fib import assert_index_as_built, brute_force
from vrouter.route import fib as fib_module
from vrouter.route.entry import Nexthop
from vrouter.route.fib import CONNECTED, STATIC, Fib, Route, RouteError
from vrouter.route.source import Source, SourceError, check_name, source

RIP = source("rip")
BGP = source("bgp")
FLOATING = source("static", 200)
P = IPv4Network("198.51.100.0/24")
DST = IPv4Address("198.51.100.7").packed
GW_A = IPv4Address("203.0.113.2").packed
GW_B = IPv4Address("203.0.113.6").packed


def route(src: Source, prefix: IPv4Network = P, gateway: bytes = GW_A) -> Route:
    return Route(prefix, gateway=gateway, source=src)


def test_default_distances_follow_frr() -> None:
    assert [source(n).distance for n in ("static", "bgp", "ospf", "isis", "rip", "ibgp")] == [
        1,
        20,
        110,
        115,
        120,
        200,
    ]
    assert CONNECTED.distance == 0 and STATIC.distance == 1
    assert source("bird").distance == 150  # a name without a default
    assert source("rip") is source("rip")  # shared: a source costs a route one reference
    assert source("static", 200) == Source("static", 200)


@pytest.mark.parametrize("bad", ["", "Rip", "1rip", "a" * 17, "rip proto", 7])
def test_bad_source_names_are_refused(bad: object) -> None:
    with pytest.raises(SourceError):
        check_name(bad)


@pytest.mark.parametrize("bad", [0, 256, -1, True, "20"])
def test_bad_distances_are_refused(bad: object) -> None:
    with pytest.raises(SourceError):
        source("rip", bad)  # type: ignore[arg-type]


def test_a_worse_source_is_held_and_leaves_forwarding_alone() -> None:
    fib = Fib()
    static = route(STATIC)
    assert fib.add(static) is True
    generation = fib.generation
    rip = route(RIP, gateway=GW_B)
    assert fib.add(rip) is False
    assert fib.lookup(DST) is static
    assert fib.generation == generation
    assert (fib.state(static), fib.state(rip)) == ("installed", "held")
    assert fib.routes(P) == [static, rip]
    assert len(fib) == 2 and fib.installed == 1
    assert fib.counts() == {"rip": (0, 1), "static": (1, 0)}
    assert list(fib) == [static, rip]


def test_a_better_source_takes_over_and_the_old_one_is_held() -> None:
    fib = Fib()
    rip = route(RIP, gateway=GW_B)
    fib.add(rip)
    generation = fib.generation
    static = route(STATIC)
    assert fib.add(static) is True
    assert fib.lookup(DST) is static
    assert fib.generation > generation
    assert fib.state(rip) == "held"


def test_deleting_the_installed_route_installs_the_next_best() -> None:
    fib = Fib()
    static, bgp, rip = route(STATIC), route(BGP), route(RIP)
    for r in (rip, static, bgp):
        fib.add(r)
    generation = fib.generation
    assert fib.delete(P, "static") is static
    assert fib.lookup(DST) is bgp and fib.generation > generation
    assert fib.delete(P, "bgp") is bgp
    assert fib.lookup(DST) is rip
    assert fib.delete(P, "rip") is rip
    assert fib.lookup(DST) is None and len(fib) == 0 and fib.counts() == {}


def test_a_source_deletes_only_its_own_route() -> None:
    fib = Fib()
    static = route(STATIC)
    fib.add(static)
    with pytest.raises(RouteError, match=r"no rip route to 198\.51\.100\.0/24"):
        fib.delete(P, "rip")
    rip = route(RIP)
    fib.add(rip)
    generation = fib.generation
    assert fib.delete(P, "rip") is rip  # held: forwarding does not move
    assert fib.lookup(DST) is static and fib.generation == generation
    assert fib.get(P, "rip") is None and len(fib) == 1


def test_one_route_per_source_and_prefix() -> None:
    fib = Fib()
    fib.add(route(STATIC))
    fib.add(route(RIP))
    with pytest.raises(RouteError, match=r"a rip route to 198\.51\.100\.0/24 already exists"):
        fib.add(route(RIP, gateway=GW_B))
    with pytest.raises(RouteError, match="a static route"):
        fib.add(route(FLOATING))  # a floating static is the static source's one route
    assert len(fib) == 2


def test_a_floating_static_backs_a_protocol_up() -> None:
    fib = Fib()
    floating = route(FLOATING, gateway=GW_B)
    rip = route(RIP)
    fib.add(floating)
    assert fib.add(rip) is True  # 120 beats 200
    assert fib.lookup(DST) is rip
    fib.delete(P, "rip")
    assert fib.lookup(DST) is floating


def test_equal_distances_keep_the_first_installed() -> None:
    fib = Fib()
    first, second = route(source("bird", 150)), route(source("routesock"))
    fib.add(first)
    assert fib.add(second) is False
    third = route(source("babel", 150))
    fib.add(third)
    fib.delete(P, "bird")
    assert fib.lookup(DST) is second  # there before babel
    assert fib.routes(P) == [second, third]


def test_replace_changes_the_installed_route_in_place() -> None:
    fib = Fib()
    fib.add(route(RIP))
    fib.add(route(source("bird")))
    generation = fib.generation
    new = route(RIP, gateway=GW_B)
    old = fib.replace(new)
    assert old.gateway == GW_A and fib.lookup(DST) is new
    assert fib.generation == generation + 1
    assert fib.counts()["rip"] == (1, 0)


def test_replace_with_a_worse_distance_lets_a_held_route_in() -> None:
    fib = Fib()
    fib.add(route(RIP))
    bird = route(source("bird"))
    fib.add(bird)
    fib.replace(route(source("rip", 180)))
    assert fib.lookup(DST) is bird
    assert fib.state(fib.get(P, "rip")) == "held"  # type: ignore[arg-type]


def test_replace_of_a_held_route() -> None:
    fib = Fib()
    static = route(STATIC)
    fib.add(static)
    fib.add(route(RIP))
    generation = fib.generation
    fib.replace(route(RIP, gateway=GW_B))  # still held
    assert fib.generation == generation and fib.lookup(DST) is static
    better = route(source("rip", 1))  # ties with static: static was there first
    fib.replace(better)
    assert fib.lookup(DST) is static
    fib.delete(P, "static")
    assert fib.lookup(DST) is better
    with pytest.raises(RouteError, match="no bgp route"):
        fib.replace(route(BGP))


def test_events_name_what_happened() -> None:
    fib = Fib()
    seen: list[tuple[str, str, str]] = []
    fib.on_change = lambda kind, r: seen.append((kind, r.source.name, fib.state(r)))
    fib.add(route(RIP))
    fib.add(route(STATIC))
    fib.add(route(BGP))
    fib.delete(P, "static")
    assert seen == [
        ("add", "rip", "installed"),
        ("add", "static", "installed"),
        ("change", "rip", "held"),
        ("add", "bgp", "held"),
        ("delete", "static", "gone"),
        ("change", "bgp", "installed"),
    ]


def test_the_index_follows_the_installed_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fib_module, "INDEX_AT", 1)
    fib = Fib()
    covering = Route(IPv4Network("198.51.0.0/16"), gateway=GW_A)
    fib.add(covering)
    assert fib.indexed
    rip = route(RIP, gateway=GW_B)
    fib.add(rip)
    static = route(STATIC)
    fib.add(static)
    assert fib.lookup(DST) is static and fib.lookup_nhop(DST) is static.nhop
    assert static.gateway == GW_A
    fib.delete(P, "static")
    assert fib.lookup(DST) is rip and fib.lookup_nhop(DST) is rip.nhop
    assert rip.gateway == GW_B
    fib.delete(P, "rip")
    assert fib.lookup(DST) is covering


# --- property: the table equals a model of per-source candidates ---------------------

SOURCES = [STATIC, FLOATING, RIP, BGP, source("bird"), source("routesock")]
PREFIXES = [
    IPv4Network(p)
    for p in ("0.0.0.0/0", "198.51.0.0/16", "198.51.100.0/24", "198.51.100.0/25", "198.51.100.7/32")
]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "add", "delete", "replace"]),
            st.sampled_from(PREFIXES),
            st.integers(0, len(SOURCES) - 1),
            st.booleans(),
        ),
        max_size=60,
    ),
    st.booleans(),
)
def test_installed_routes_equal_the_best_per_prefix(
    steps: list[tuple[str, IPv4Network, int, bool]], indexed: bool
) -> None:
    # Indexed: from the first route on and never dropped (a fixture does not mix
    # with @given); one index per example, checked against a fresh build at the end.
    saved = fib_module.INDEX_AT, fib_module.UNINDEX_BELOW
    if indexed:
        fib_module.INDEX_AT, fib_module.UNINDEX_BELOW = 1, 0
    try:
        fib = Fib()
        model: dict[IPv4Network, list[Route]] = {}
        for action, prefix, pick, other_gw in steps:
            src = SOURCES[pick]
            entries = model.setdefault(prefix, [])
            mine = next((r for r in entries if r.source.name == src.name), None)
            new = route(src, prefix, GW_B if other_gw else GW_A)
            if action == "add":
                if mine is not None:
                    with pytest.raises(RouteError):
                        fib.add(new)
                else:
                    fib.add(new)
                    entries.append(new)
            elif action == "delete":
                if mine is None:
                    with pytest.raises(RouteError):
                        fib.delete(prefix, src.name)
                else:
                    assert fib.delete(prefix, src.name) is mine
                    entries.remove(mine)
            elif mine is None:
                with pytest.raises(RouteError):
                    fib.replace(new)
            else:
                fib.replace(new)
                entries[entries.index(mine)] = new
            _check(fib, model)
        if fib.indexed:
            assert_index_as_built(fib)
    finally:
        fib_module.INDEX_AT, fib_module.UNINDEX_BELOW = saved


def _check(fib: Fib, model: dict[IPv4Network, list[Route]]) -> None:
    total = 0
    for prefix, entries in model.items():
        total += len(entries)
        if not entries:
            assert fib.get(prefix) is None
            continue
        best = min(r.source.distance for r in entries)
        installed = fib.get(prefix)
        assert installed is not None and installed in entries
        assert installed.source.distance == best
        assert sorted(id(r) for r in fib.routes(prefix)) == sorted(id(r) for r in entries)
        lookup = fib.lookup(prefix.network_address.packed)
        assert lookup is not None and lookup.prefix.prefixlen >= prefix.prefixlen
    installed_routes = {p: r for p in model if (r := fib.get(p)) is not None}
    for prefix in PREFIXES:
        for dst in (prefix.network_address.packed, prefix.broadcast_address.packed):
            assert fib.lookup(dst) is brute_force(installed_routes, dst)
    assert len(fib) == total
    assert sum(i + h for i, h in fib.counts().values()) == total
    assert fib.installed == sum(1 for entries in model.values() if entries)


@pytest.mark.parametrize("bits", [32, 128])
def test_shared_next_hops_follow_every_change_of_two_sources(
    monkeypatch: pytest.MonkeyPatch, bits: int
) -> None:
    """Routes of two sources to nested prefixes, sharing next hops, added, replaced
    (new gateway, same one, multipath) and deleted at random on an indexed table:
    every lookup's next hop is the installed route's, and the table keeps only the
    next hops its routes (installed or held) go to."""
    monkeypatch.setattr(fib_module, "INDEX_AT", 1)
    monkeypatch.setattr(fib_module, "UNINDEX_BELOW", 0)
    monkeypatch.setattr(fib_module, "INDEX6_AT", 1)
    monkeypatch.setattr(fib_module, "UNINDEX6_BELOW", 0)
    if bits == 32:
        texts = ["0.0.0.0/0", "198.51.0.0/16", "198.51.100.0/24", "198.51.100.0/25",
                 "198.51.100.128/26", "198.51.100.7/32", "203.0.113.0/24"]  # fmt: skip
        gateways = [IPv4Address(f"192.0.2.{n}").packed for n in (1, 2, 3)]
    else:
        texts = ["::/0", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/64",
                 "2001:db8:100::/40", "2001:db8:1:2::7/128", "2001:d00::/24"]  # fmt: skip
        gateways = [ipaddress.IPv6Address(f"2001:db8:ffff::{n}").packed for n in (1, 2, 3)]
    prefixes = [ipaddress.ip_network(text) for text in texts]
    probes = {p.network_address.packed for p in prefixes} | {
        (int(p.broadcast_address)).to_bytes(bits // 8, "big") for p in prefixes
    }
    ifnets = [object(), object()]
    rnd = random.Random(7)
    fib = Fib(bits)
    for _ in range(3000):
        prefix, src = rnd.choice(prefixes), rnd.choice([STATIC, RIP])
        gateway, ifnet = rnd.choice(gateways), rnd.choice(ifnets)
        paths: tuple[Nexthop, ...] = ()
        if rnd.random() < 0.2:
            paths = (
                Nexthop(gateway, ifnets[0], rnd.randint(1, 2)),
                Nexthop(gateways[0], ifnets[1]),
            )
        route = Route(prefix, gateway=gateway, ifnet=ifnet, source=src, nexthops=paths)
        there = fib.get(prefix, src.name) is not None
        pick = rnd.random()
        if pick < 0.45 and not there:
            fib.add(route)
        elif pick < 0.75 and there:
            fib.replace(route)
        elif there:
            fib.delete(prefix, src.name)
        for dst in probes:
            installed = fib.lookup(dst)
            assert fib.lookup_nhop(dst) is (installed.nhop if installed else None)
        used = {id(r.nhop): r.nhop for r in fib}
        kept = [nhop for nhop in fib.nhops[1:] if nhop is not None]
        assert sorted(map(id, kept)) == sorted(used)
        assert all(nhop.refs == sum(r.nhop is nhop for r in fib) for nhop in kept)
    assert fib.indexed
