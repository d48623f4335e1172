"""The index of large IPv6 tables (vrouter.route.dir6): answers equal the dicts'."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv6Address, IPv6Network
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrouter.core.timers import Timers
from vrouter.route import dir6
from vrouter.route import fib as fib_module
from vrouter.route.fib import STATIC, Fib, Nexthop, Route, RouteError
from vrouter.route.source import source

GW_A = IPv6Address("fe80::1").packed
GW_B = IPv6Address("fe80::2").packed
SOURCES = [STATIC, source("static", 5), source("rip"), source("bgp"), source("bird")]
LINK = SimpleNamespace(name="ve0")


def net(text: str) -> IPv6Network:
    return IPv6Network(text)


def addr(text: str) -> bytes:
    return IPv6Address(text).packed


def dicts_lookup(fib: Fib, dst: bytes) -> Route | None:
    """The answer of the Fib's dicts, probed longest first (what the index stands in for)."""
    return Fib.lookup(fib, dst)


def brute_force(fib: Fib, prefixes: Iterator[IPv6Network], dst: bytes) -> Route | None:
    """The installed route of the longest of ``prefixes`` holding ``dst``."""
    address = IPv6Address(dst)
    best: Route | None = None
    for prefix in prefixes:
        route = fib.get(prefix)
        if route is not None and address in prefix and (best is None or route.plen > best.plen):
            best = route
    return best


@pytest.fixture
def indexed(monkeypatch: pytest.MonkeyPatch) -> Fib:
    """An IPv6 Fib indexed from its first route on, and never unindexed."""
    monkeypatch.setattr(fib_module, "INDEX6_AT", 1)
    monkeypatch.setattr(fib_module, "UNINDEX6_BELOW", 0)
    return Fib(128)


def snapshot(index: dir6.Dir6) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, ...]]]:
    """The index's entries as route lengths: (written top slots, cells' lengths).

    Only the slots a route of the index's tables can write are read; that no
    other is written is checked by counting the written ones.
    """
    slots: set[int] = set()
    for plen, table in index._tables.items():
        span = 1 << max(dir6.TOP_BITS - plen, 0)
        if plen >= dir6.SHORTEST:
            for network in table:
                slots.update(range(network >> 104, (network >> 104) + span))
    top = index.top
    entries = {}
    for slot in sorted(slots):
        entry = top[slot]
        if entry:
            route = index.routes[entry & dir6._NUMBER]
            entries[slot] = (route.plen if route is not None else 0, entry >> 23)
    assert np.count_nonzero(np.frombuffer(top, dtype=np.uint32)) == len(entries)
    cells = {cell: dir6._lengths(probes) for cell, probes in index.cells.items()}
    return entries, cells


def assert_index_as_built(fib: Fib) -> None:
    """The patched index equals one built afresh from the dicts now."""
    index = fib._index
    assert isinstance(index, dir6.Dir6)
    routes = [route for table in fib._by_len.values() for route in table.values()]
    numbers = [route.number for route in routes]
    fresh = dir6.Dir6(fib._by_len)
    for route in routes:
        route.number = 0
    fresh.fill(routes, fib._covering)
    for route, number in zip(routes, numbers, strict=True):  # give them their numbers back
        route.number = number
    assert snapshot(index) == snapshot(fresh)
    assert index._many == fresh._many
    assert index.routes[0] is fresh.routes[0]


def test_ipv6_tables_are_indexed_from_their_threshold_and_unindexed_well_below(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fib_module, "INDEX6_AT", 8)
    monkeypatch.setattr(fib_module, "UNINDEX6_BELOW", 4)
    fib = Fib(128)
    prefixes = [net(f"2001:db8:{n:x}::/48") for n in range(8)]
    for prefix in prefixes[:7]:
        fib.add(Route(prefix))
    assert not fib.indexed
    fib.add(Route(prefixes[7]))
    assert fib.indexed
    assert fib.lookup(addr("2001:db8:7::1")) is fib.get(prefixes[7])
    assert fib.lookup(addr("2001:db8:8::1")) is None
    for prefix in prefixes[7:3:-1]:
        fib.delete(prefix)
    assert fib.indexed
    assert_index_as_built(fib)
    fib.delete(prefixes[3])
    assert not fib.indexed and "lookup" not in vars(fib)
    assert fib.lookup(addr("2001:db8:2::1")) is fib.get(prefixes[2])


def test_the_default_and_short_routes_stay_out_of_the_top_table(indexed: Fib) -> None:
    fib = indexed
    for text in ("2001:db8::/32", "2001:db8:1::/48", "2001:d00::/24", "2000::/16"):
        fib.add(Route(net(text)))
    index = fib._index
    assert isinstance(index, dir6.Dir6)
    before = snapshot(index)
    default = Route(net("::/0"))
    fib.add(default)
    assert snapshot(index) == before  # changing the default route writes nothing there
    assert fib.lookup(addr("3fff::1")) is default
    assert fib.lookup(addr("2001:db8:1::1")) is fib.get(net("2001:db8:1::/48"))
    assert fib.lookup(addr("2001:db8:2::1")) is fib.get(net("2001:db8::/32"))
    assert fib.lookup(addr("2001:d01::1")) is fib.get(net("2001:d00::/24"))
    assert fib.lookup(addr("2000:1::1")) is fib.get(net("2000::/16"))
    half = Route(net("::/1"))
    fib.add(half)
    global_unicast = Route(net("2000::/3"))
    fib.add(global_unicast)
    assert snapshot(index) == before
    assert fib.lookup(addr("3fff::1")) is global_unicast
    assert fib.lookup(addr("1::1")) is half
    assert fib.lookup(addr("8000::1")) is default
    fib.delete(net("::/0"))
    fib.delete(net("2000::/3"))
    assert fib.lookup(addr("3fff::1")) is half
    assert fib.lookup(addr("8000::1")) is None
    assert fib.lookup(addr("2001:db8:1::1")) is fib.get(net("2001:db8:1::/48"))
    assert_index_as_built(fib)


def test_a_route_spanning_many_cells_and_one_spanning_the_top_table(indexed: Fib) -> None:
    fib = indexed
    fib.add(Route(net("2001:db8:ff00::/40")))
    wide = Route(net("2001:d80::/25"))  # 128 /32 cells
    fib.add(wide)
    eight = Route(net("2000::/8"))  # 2^16 top-table entries
    fib.add(eight)
    assert fib.lookup(addr("2001:dff:ffff::1")) is wide
    assert fib.lookup(addr("2001:db8:ff00::1")) is fib.get(net("2001:db8:ff00::/40"))
    assert fib.lookup(addr("2001:db8:fe00::1")) is wide
    assert fib.lookup(addr("20ff:ffff::1")) is eight
    assert fib.lookup(addr("2100::1")) is None
    assert_index_as_built(fib)
    fib.delete(net("2001:d80::/25"))
    assert fib.lookup(addr("2001:db8:fe00::1")) is eight
    fib.delete(net("2000::/8"))
    assert fib.lookup(addr("2001:db8:fe00::1")) is None
    assert fib.lookup(addr("2001:db8:ff00::1")) is fib.get(net("2001:db8:ff00::/40"))
    assert_index_as_built(fib)


def test_routes_of_one_length_in_one_cell_leave_it_one_at_a_time(indexed: Fib) -> None:
    fib = indexed
    prefixes = [net(f"2001:db8:{n}::/48") for n in range(1, 5)]
    for prefix in prefixes:
        fib.add(Route(prefix))
    for gone, prefix in enumerate(prefixes):
        fib.delete(prefix)
        assert fib.lookup(addr(f"2001:db8:{gone + 1}::1")) is None
        for left in prefixes[gone + 1 :]:
            assert fib.lookup(left.network_address.packed) is fib.get(left)
        assert_index_as_built(fib)
    index = fib._index
    assert isinstance(index, dir6.Dir6)
    assert not index.cells and not index._many and snapshot(index) == ({}, {})


def test_a_held_route_takes_over_in_the_index(indexed: Fib) -> None:
    fib = indexed
    prefix = net("2001:db8:100::/40")
    covering = Route(net("2001:d00::/24"))
    fib.add(covering)
    rip = Route(prefix, gateway=GW_A, source=source("rip"))
    static = Route(prefix, gateway=GW_B)
    fib.add(rip)
    fib.add(static)
    assert fib.lookup(addr("2001:db8:100::1")) is static
    fib.delete(prefix, "static")
    assert fib.lookup(addr("2001:db8:100::1")) is rip
    fib.delete(prefix, "rip")
    assert fib.lookup(addr("2001:db8:100::1")) is covering
    short = net("2001:d00::/24")
    better = Route(short, gateway=GW_B, source=source("connected"))
    fib.add(better)
    assert fib.lookup(addr("2001:db8:100::1")) is better
    fib.delete(short, "connected")
    assert fib.lookup(addr("2001:db8:100::1")) is covering
    assert_index_as_built(fib)


def test_the_index_builds_turn_by_turn_and_answers_once_complete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fib_module, "INDEX6_AT", 8)
    monkeypatch.setattr(fib_module, "UNINDEX6_BELOW", 4)
    monkeypatch.setattr(fib_module, "INDEX_SLICE", 1)
    monkeypatch.setattr(fib_module, "INDEX_TURN", 0.0)
    fib, timers = Fib(128), Timers()
    fib.schedule = timers.schedule
    prefixes = ["::/0", "2001:d00::/24", "2001:db8::/32", *(f"2001:db8:{n}::/48" for n in range(5))]
    for prefix in prefixes:
        fib.add(Route(net(prefix)))
    assert fib._build is not None and not fib.indexed
    turns, now = 0, 0.0
    while not fib.indexed:
        fib.add(Route(net(f"2001:db8:{turns + 100:x}::/64")))  # patched into the build at once
        assert fib.lookup(addr("2001:db8:3::1")) is fib.get(net("2001:db8:3::/48"))
        now += 1.0
        assert timers.run(now) == 1
        turns += 1
        assert turns <= len(prefixes) + 1
    assert turns == len(prefixes)
    assert fib.lookup(addr("2001:db8:3::1")) is fib.get(net("2001:db8:3::/48"))
    assert fib.lookup(addr("2001:db8:65::1")) is fib.get(net("2001:db8:65::/64"))
    assert fib.lookup(addr("2001:db8:99::1")) is fib.get(net("2001:db8::/32"))
    assert fib.lookup(addr("3fff::1")) is fib.get(net("::/0"))
    assert timers.run(now + 1.0) == 0
    assert_index_as_built(fib)


def test_a_table_past_what_the_index_can_number_goes_unindexed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fib_module, "INDEX6_AT", 1)
    monkeypatch.setattr(dir6, "MAX_NUMBER", 3)
    fib = Fib(128)
    for n in range(4):
        fib.add(Route(net(f"2001:db8:{n}::/48")))
    assert fib.indexed
    for n in range(4):
        fib.add(Route(net(f"2001:{n}00::/24")))
    assert not fib.indexed and all(route.number == 0 for route in fib)
    fib.add(Route(net("2001:db8:ff::/48")))
    assert not fib.indexed
    assert fib.lookup(addr("2001:300::1")) is fib.get(net("2001:300::/24"))


# --- property: the index answers as the dicts, whatever the changes -------------------

LENGTHS = [0, 1, 3, 7, 8, 9, 16, 23, 24, 25, 28, 31, 32, 33, 40, 47, 48, 56, 64, 127, 128]
BASE = int(IPv6Address("2001:db8::"))


@st.composite
def prefixes(draw: st.DrawFn) -> IPv6Network:
    """Prefixes bunched near 2001:db8::/32 so that they nest, share cells and /24s."""
    plen = draw(st.sampled_from(LENGTHS))
    high = draw(st.integers(0, 7)) << 100  # a few /24s and /28s apart
    cell = draw(st.integers(0, 3)) << 96  # a few /32s
    low = draw(st.integers(0, 3)) << 80 ^ draw(st.sampled_from([0, 1 << 79, 1 << 64, 1, 1 << 127]))
    address = (BASE ^ high ^ cell ^ low) & ((1 << 128) - 1)
    return IPv6Network((address, plen), strict=False)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "add", "add", "delete", "replace", "turn"]),
            prefixes(),
            st.integers(0, len(SOURCES) - 1),
            st.booleans(),
        ),
        min_size=1,
        max_size=70,
    ),
    st.sampled_from(["at once", "turn by turn"]),
)
def test_the_index_answers_as_the_dicts_across_adds_deletes_and_sources(
    steps: list[tuple[str, IPv6Network, int, bool]], build: str
) -> None:
    # Thresholds set by hand (a fixture does not mix with @given).
    names = ("INDEX6_AT", "UNINDEX6_BELOW", "INDEX_SLICE", "INDEX_TURN")
    saved = [getattr(fib_module, name) for name in names]
    at = 1 if build == "at once" else 6
    for name, value in zip(names, (at, 0, 2, 0.0), strict=True):
        setattr(fib_module, name, value)
    try:
        fib, timers, now = Fib(128), Timers(), 0.0
        if build == "turn by turn":
            fib.schedule = timers.schedule
        held: dict[IPv6Network, dict[str, Route]] = {}
        most = 0
        for action, prefix, pick, multipath in steps:
            src = SOURCES[pick]
            mine = held.setdefault(prefix, {})
            paths = (Nexthop(GW_A, LINK), Nexthop(GW_B, LINK)) if multipath else ()  # type: ignore[arg-type]
            new = Route(prefix, gateway=GW_A, source=src, nexthops=paths)
            if action == "turn":
                now += 1.0
                timers.run(now)
            elif action == "add":
                if src.name in mine:
                    with pytest.raises(RouteError):
                        fib.add(new)
                else:
                    fib.add(new)
                    mine[src.name] = new
            elif action == "delete" and mine:
                name = sorted(mine)[pick % len(mine)]
                assert fib.delete(prefix, name) is mine.pop(name)
            elif action == "replace" and src.name in mine:
                assert fib.replace(new) is mine[src.name]
                mine[src.name] = new
            most = max(most, fib.installed)
            installed = fib.get(prefix)
            if mine:  # the installed route is one of the best distance
                best = min(r.source.distance for r in mine.values())
                assert installed is not None and installed.source.distance == best
            else:
                assert installed is None
            targets = {prefix.network_address, prefix.broadcast_address,
                       IPv6Address(int(prefix.network_address) | 1 << 70), IPv6Address(0),
                       IPv6Address(BASE), IPv6Address((1 << 128) - 1)}  # fmt: skip
            for target in targets:
                dst = target.packed
                expected = brute_force(fib, iter(held), dst)
                assert dicts_lookup(fib, dst) is expected
                assert fib.lookup(dst) is expected
                assert fib.lookup_nhop(dst) is (expected.nhop if expected else None)
        for _ in range(100):
            now += 1.0
            timers.run(now)
        if most >= at:
            assert fib.indexed
            assert_index_as_built(fib)
    finally:
        for name, value in zip(names, saved, strict=True):
            setattr(fib_module, name, value)


def test_every_prefix_length_edge_answers_as_the_dicts(indexed: Fib) -> None:
    fib = indexed
    texts = ["::/0", "2000::/3", "2001:db8::/32", "2001:db8::/33", "2001:db8:8000::/33",
             "2001:db8:ff::/48", "2001:db8:ff::/64", "2001:db8:ff::1/128", "2001:d00::/24",
             "2001:c00::/23", "2001:db0::/28", "2001:db8::/31", "2000::/8",
             "2001::/16"]  # fmt: skip
    for text in texts:
        fib.add(Route(net(text)))
    for text in texts:
        prefix = net(text)
        first, last = int(prefix.network_address), int(prefix.broadcast_address)
        for target in (first, last, first - 1, last + 1):
            if 0 <= target < 1 << 128:
                dst = target.to_bytes(16, "big")
                assert fib.lookup(dst) is dicts_lookup(fib, dst)
    assert_index_as_built(fib)
