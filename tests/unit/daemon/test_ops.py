"""Tests for vrouter.daemon.ops: run-time vnet and interface operations on an in-memory tree.

The driver runs on a real (idle) event loop but no device is opened: epairs
and device-less interfaces only, so these run without root.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from vrouter.core import tables
from vrouter.daemon import dump
from vrouter.daemon.ops import OpError, Ops, interface_config
from vrouter.inet.arp import REACHABLE, Neighbour
from vrouter.io.driver import Driver
from vrouter.link import bridge as bridge_
from vrouter.link.stp import StpSettings
from vrouter.route.source import source
from vrouter.stack import new_tree
from vrouter.wire.ethernet import ETHERTYPE_IPV4

ip = ipaddress.ip_interface
net = ipaddress.ip_network
addr = ipaddress.ip_address


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def ops(loop: asyncio.AbstractEventLoop) -> Ops:
    return Ops(new_tree(), Driver(loop))


def run(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return loop.run_until_complete(coro)


def epair(ops: Ops, a: str, b: str, a_addr: tuple[str, ...] = (), b_addr: tuple[str, ...] = ()):
    av, an = a.split(":")
    bv, bn = b.split(":")
    return ops.create_epair(
        av,
        interface_config(an, "epair", [ip(x) for x in a_addr], peer=(bv, bn)),
        bv,
        interface_config(bn, "epair", [ip(x) for x in b_addr], peer=(av, an)),
    )


def driver_is_empty(driver: Driver) -> bool:
    return not driver.epairs and not driver.taps and not driver._armed


# -- vnets --------------------------------------------------------------------------------


def test_child_inherits_its_parents_sysctl_values(ops: Ops) -> None:
    ops.create_vnet("lab")
    ops.set_sysctl("lab", "net.inet.ip.ttl", 33)
    ops.set_sysctl("lab", "net.inet.ip.forwarding", False)
    child = ops.create_vnet("lab/r1")
    assert child.parent is ops.vnet("lab")
    assert child.inet.ttl == 33
    assert child.inet.forwarding is False
    assert ops.tree_of("") == [
        {
            "name": "lab",
            "interfaces": [],
            "children": [{"name": "lab/r1", "interfaces": [], "children": []}],
        }
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("lab/r1", "parent 'lab' does not exist"),
        ("-x", "bad vnet name"),
        ("a", "already exists"),
    ],
)
def test_create_refusals_name_the_vnet(ops: Ops, name: str, message: str) -> None:
    ops.create_vnet("a")
    with pytest.raises(OpError, match=message):
        ops.create_vnet(name)
    assert [v.name for v in ops.tree] == ["a"]


def test_destroy_refuses_a_vnet_with_children_unless_recursive(
    ops: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    for name in ("lab", "lab/r1", "lab/r1/x", "lab/r2"):
        ops.create_vnet(name)
    with pytest.raises(OpError, match=r"vnet lab has children \(lab/r1/x, lab/r1, lab/r2\)"):
        run(loop, ops.destroy_vnet("lab"))
    assert len(ops.tree) == 4
    assert run(loop, ops.destroy_vnet("lab", recursive=True)) == [
        "lab/r1/x",
        "lab/r1",
        "lab/r2",
        "lab",
    ]
    assert len(ops.tree) == 0
    assert driver_is_empty(ops.driver)


def test_destroying_a_vnet_takes_its_epairs_other_end_with_a_log_line(
    ops: Ops, loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    ops.create_vnet("red")
    ops.create_vnet("blue")
    epair(ops, "red:ep0", "blue:ep0", ("10.0.0.1/30",), ("10.0.0.2/30",))
    ops.add_route("blue", net("192.0.2.0/24"), via=addr("10.0.0.1"))
    caplog.set_level(logging.INFO, "vrouter.ops")
    run(loop, ops.destroy_vnet("red"))
    blue = ops.vnet("blue")
    assert blue.link.interfaces == {}
    assert len(blue.route.fib) == 0, "connected and static routes via ep0 went with it"
    assert blue.inet.local == {}
    assert "vnet blue: ep0: gone with its epair peer red:ep0" in caplog.text
    assert ops.driver.epairs == []


def test_destroy_frees_the_vnet_and_its_interfaces(
    ops: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    ops.create_vnet("keep")
    ops.create_vnet("gone")
    a, b = epair(ops, "gone:ep0", "keep:ep0", ("10.0.0.1/30", "2001:db8::1/64"), ("10.0.0.2/30",))
    gone = ops.vnet("gone")
    gone.inet.arp.entries[("ep0", b"\x0a\x00\x00\x02")] = Neighbour(
        a, b"\x0a\x00\x00\x02", REACHABLE
    )
    refs = [weakref.ref(x) for x in (gone, a, b, gone.timers)]
    del gone, a, b
    run(loop, ops.destroy_vnet("gone"))
    loop.run_until_complete(asyncio.sleep(0))  # let a scheduled epair pump run
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs), "something still holds the vnet"
    assert driver_is_empty(ops.driver) or list(ops.driver._armed) == ["keep"]


def test_a_thousand_create_destroy_cycles_return_memory_to_baseline(
    ops: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    ops.create_vnet("core")

    def cycle(i: int) -> None:
        name = f"v{i % 7}"
        ops.create_vnet(name)
        epair(ops, f"{name}:ep0", f"core:{name}", ("10.9.0.1/30", "2001:db8:9::1/64"), ())
        ops.add_route(name, net("198.51.100.0/24"), via=addr("10.9.0.2"))
        ops.set_sysctl(name, "net.inet.ip.ttl", 10 + i % 50)
        loop.run_until_complete(asyncio.sleep(0))
        run(loop, ops.destroy_vnet(name))

    for i in range(50):  # warm caches (interned strings, method caches, the loop)
        cycle(i)
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            cycle(i)
        loop.run_until_complete(asyncio.sleep(0))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    print(f"tracemalloc: {grown} bytes more after 1000 cycles")
    assert grown < 64 * 1024, f"{grown} bytes still held after 1000 cycles"
    assert ops.driver.epairs == []
    assert ops.driver.taps == {}
    assert list(ops.driver._armed) in ([], ["core"])
    core = ops.vnet("core")
    assert core.link.interfaces == {}
    assert core.inet6.groups == {} and core.inet6.linklocal == {}
    assert len(core.timers) == 0


# -- interfaces -----------------------------------------------------------------------------


def test_epair_creation_validates_both_ends_before_creating_either(ops: Ops) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    epair(ops, "a:x", "b:x")
    with pytest.raises(OpError, match=r"vnet b already has an interface 'x'"):
        epair(ops, "a:y", "b:x")
    assert set(ops.vnet("a").link.interfaces) == {"x"}
    with pytest.raises(OpError, match=r"invalid interface name"):
        epair(ops, "a:bad name", "b:z")
    with pytest.raises(OpError, match=r"cannot peer with itself"):
        epair(ops, "a:z", "a:z")
    with pytest.raises(OpError, match=r"10.0.0.1 is already assigned to interface x"):
        ops.add_address("a", "x", ip("10.0.0.1/24"))
        epair(ops, "a:q", "b:q", ("10.0.0.1/30",))
    assert len(ops.driver.epairs) == 1


def test_a_tap_that_cannot_be_created_leaves_nothing(
    ops: Ops, loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops.create_vnet("a")

    def refuse(ifnet: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(ops.driver, "add_tap", refuse)
    icfg = interface_config("tap0", "tap", [ip("192.0.2.1/24")])
    with pytest.raises(OpError, match=r"vnet a: cannot create TAP tap0: .*not permitted"):
        run(loop, ops.create_interface("a", icfg))
    vnet = ops.vnet("a")
    assert vnet.link.interfaces == {}
    assert vnet.inet.local == {} and len(vnet.route.fib) == 0


def test_destroying_an_interface_takes_its_routes_and_neighbours(
    ops: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    x, _ = epair(ops, "a:x", "b:x", ("10.0.0.1/30", "2001:db8::1/64"), ("10.0.0.2/30",))
    y, _ = epair(ops, "a:y", "b:y", ("10.0.1.1/30",), ("10.0.1.2/30",))
    ops.add_route("a", net("198.51.100.0/24"), via=addr("10.0.0.2"))
    ops.add_route("a", net("203.0.113.0/24"), via=addr("10.0.1.2"))
    ops.add_route("a", net("192.0.2.0/24"), "blackhole")
    vnet = ops.vnet("a")
    vnet.inet.arp.entries[("x", b"\x0a\x00\x00\x02")] = Neighbour(x, b"\x0a\x00\x00\x02", REACHABLE)
    vnet.inet.arp.entries[("y", b"\x0a\x00\x01\x02")] = Neighbour(y, b"\x0a\x00\x01\x02", REACHABLE)
    assert run(loop, ops.destroy_interface("a", "x")) == [("a", "x"), ("b", "x")]
    assert [str(r.prefix) for r in vnet.route.fib] == [
        "10.0.1.0/30",
        "192.0.2.0/24",
        "203.0.113.0/24",
    ]
    assert len(vnet.route.fib6) == 0
    assert list(vnet.inet.arp.entries) == [("y", b"\x0a\x00\x01\x02")]
    assert "x" not in vnet.inet6.groups
    assert set(vnet.inet.local) == {b"\x0a\x00\x01\x01"}
    assert len(ops.driver.epairs) == 1
    with pytest.raises(OpError, match=r"vnet a has no interface 'x' \(its interfaces: y\)"):
        run(loop, ops.destroy_interface("a", "x"))


def test_move_resets_the_interface_and_keeps_its_device(
    ops: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    ops.create_vnet("j")
    x, peer = epair(ops, "a:x", "b:x", ("10.0.0.1/30", "2001:db8::1/64"), ("10.0.0.2/30",))
    ops.add_route("a", net("198.51.100.0/24"), via=addr("10.0.0.2"))
    old = ops.vnet("a")
    old.inet.arp.entries[("x", b"\x0a\x00\x00\x02")] = Neighbour(x, b"\x0a\x00\x00\x02", REACHABLE)
    link_local = x.addresses6[0]
    counters = x.counters
    moved = ops.move_interface("a", "x", "j")
    assert moved is x and x.vnet is ops.vnet("j")
    assert old.link.interfaces == {}
    assert len(old.route.fib) == 0 and len(old.route.fib6) == 0
    assert old.inet.arp.entries == {} and old.inet.local == {} and old.inet6.local == {}
    assert old.inet6.linklocal == {}
    assert x.addresses == [] and x.addresses6 == [link_local], "only the link-local, regenerated"
    assert x.up and x.counters is counters
    new = ops.vnet("j")
    assert new.link.interfaces == {"x": x}
    assert ("x", link_local.ip.packed) in new.inet6.linklocal
    # The epair still carries frames, now into vnet j.
    seen: list[bytes] = []
    new.link.ethertypes = tables.put(
        new.link.ethertypes, ETHERTYPE_IPV4, lambda ifp, frame, now: seen.append(frame)
    )
    frame = x.mac + peer.mac + b"\x08\x00" + bytes(46)
    peer.output(frame)
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == [frame]


def test_move_refusals_change_nothing(ops: Ops) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    epair(ops, "a:x", "b:x", ("10.0.0.1/30",))
    with pytest.raises(OpError, match=r"interface x is already in vnet a"):
        ops.move_interface("a", "x", "a")
    with pytest.raises(OpError, match=r"vnet b already has an interface 'x'"):
        ops.move_interface("a", "x", "b")
    with pytest.raises(OpError, match=r"no vnet named 'nowhere'"):
        ops.move_interface("a", "x", "nowhere")
    assert ops.vnet("a").link.interfaces["x"].addresses == [ip("10.0.0.1/30")]


# -- addresses and routes ---------------------------------------------------------------------


def test_address_add_and_remove(ops: Ops) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    x, _ = epair(ops, "a:x", "b:x", ("10.0.0.1/30",))
    y, _ = epair(ops, "a:y", "b:y")
    ops.add_address("a", "y", ip("2001:db8:5::1/64"))
    vnet = ops.vnet("a")
    assert vnet.route.fib6.get(net("2001:db8:5::/64")) is not None
    with pytest.raises(OpError, match=r"network 10.0.0.0/24 overlaps 10.0.0.0/30 of interface x"):
        ops.add_address("a", "y", ip("10.0.0.5/24"))
    with pytest.raises(OpError, match=r"one IPv6 link-local address"):
        ops.add_address("a", "y", ip("fe80::1/64"))
    with pytest.raises(OpError, match=r"vnet a: y has no address 10.0.0.1/30 \(it has: "):
        ops.remove_address("a", "y", ip("10.0.0.1/30"))
    with pytest.raises(OpError, match=r"link-local address goes with the interface"):
        ops.remove_address("a", "y", y.addresses6[0])
    ops.remove_address("a", "y", ip("2001:db8:5::1/64"))
    assert vnet.route.fib6.get(net("2001:db8:5::/64")) is None
    assert b"\x20\x01\x0d\xb8\x00\x05" + bytes(9) + b"\x01" not in vnet.inet6.local
    ops.remove_address("a", "x", ip("10.0.0.1/30"))
    assert len(vnet.route.fib) == 0 and x.addresses == []


def test_route_add_and_remove(ops: Ops) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    epair(ops, "a:x", "b:x", ("10.0.0.1/30",))
    ops.add_route("a", net("198.51.100.0/24"), via=addr("10.0.0.2"))
    ops.add_route("a", net("203.0.113.0/24"), "reject")
    with pytest.raises(OpError, match=r"a static route to 198.51.100.0/24 already exists"):
        ops.add_route("a", net("198.51.100.0/24"), "blackhole")
    with pytest.raises(OpError, match=r"next hop 192.0.2.9 is not on a connected network"):
        ops.add_route("a", net("192.0.2.0/24"), via=addr("192.0.2.9"))
    with pytest.raises(OpError, match=r"a blackhole route takes no next hop"):
        ops.add_route("a", net("192.0.2.0/24"), "blackhole", via=addr("10.0.0.2"))
    with pytest.raises(OpError, match=r"is connected .interface x.; remove the address instead"):
        ops.remove_route("a", net("10.0.0.0/30"))
    with pytest.raises(OpError, match=r"vnet a has no route to 192.0.2.0/24"):
        ops.remove_route("a", net("192.0.2.0/24"))
    assert ops.remove_route("a", net("203.0.113.0/24")).type == "reject"
    assert [str(r.prefix) for r in ops.vnet("a").route.fib] == ["10.0.0.0/30", "198.51.100.0/24"]


def test_a_multipath_route_is_added_with_every_path_checked(ops: Ops) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    epair(ops, "a:x", "b:x", ("10.0.0.1/30",))
    epair(ops, "a:y", "b:y", ("10.0.0.5/30",))
    paths = [(addr("10.0.0.2"), None), (addr("10.0.0.6"), "y")]
    route = ops.add_route("a", net("198.51.100.0/24"), paths=paths)
    assert [n["interface"] for n in route.describe()["nexthops"]] == ["x", "y"]  # type: ignore[union-attr]
    with pytest.raises(OpError, match=r"next hop 192.0.2.9 is not on a connected network"):
        ops.add_route("a", net("203.0.113.0/24"), paths=[(addr("10.0.0.2"), None),
                                                          (addr("192.0.2.9"), None)])  # fmt: skip
    with pytest.raises(OpError, match=r"next hop 10.0.0.5 is an address of the vnet itself"):
        ops.add_route("a", net("203.0.113.0/24"), paths=[(addr("10.0.0.5"), None),
                                                          (addr("10.0.0.2"), None)])  # fmt: skip
    with pytest.raises(OpError, match=r"either one next hop or a list of paths"):
        ops.add_route("a", net("203.0.113.0/24"), via=addr("10.0.0.2"), paths=paths)


# -- route sources ------------------------------------------------------------------------


def test_route_sources_keep_to_their_own_routes(ops: Ops) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    epair(ops, "a:x", "b:x", ("10.0.0.1/30",))
    fib = ops.vnet("a").route.fib
    prefix = net("198.51.100.0/24")
    rip = source("rip")
    static = ops.add_route("a", prefix, via=addr("10.0.0.2"))
    learnt = ops.add_route("a", prefix, via=addr("10.0.0.2"), source=rip)
    assert (fib.state(static), fib.state(learnt)) == ("installed", "held")
    assert ops.describe_route("a", learnt)["state"] == "held"
    with pytest.raises(OpError, match=r"a rip route to 198.51.100.0/24 already exists"):
        ops.add_route("a", prefix, "blackhole", source=rip)
    with pytest.raises(OpError, match=r"has no bgp route to 198.51.100.0/24 \(its routes there: "):
        ops.remove_route("a", prefix, "bgp")
    # The static route goes (a reload, vrouterctl): RIP's takes over, and back.
    ops.remove_route("a", prefix)
    assert fib.get(prefix) is learnt
    static = ops.add_route("a", prefix, via=addr("10.0.0.2"))
    assert fib.get(prefix) is static
    # RIP withdraws: only its own route goes.
    assert ops.remove_route("a", prefix, "rip") is learnt
    assert fib.get(prefix) is static and len(fib) == 2
    with pytest.raises(OpError, match=r"connected routes come with interface addresses"):
        ops.add_route("a", prefix, "blackhole", source=source("connected"))


def test_a_static_route_to_a_connected_network_is_held(ops: Ops) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    epair(ops, "a:x", "b:x", ("10.0.0.1/30",))
    epair(ops, "a:y", "b:y")
    static = ops.add_route("a", net("192.0.2.0/24"), interface="y")
    ops.add_address("a", "y", ip("192.0.2.1/24"))  # the connected route outranks it
    fib = ops.vnet("a").route.fib
    assert fib.state(static) == "held" and fib.get(net("192.0.2.0/24")).source.name == "connected"
    ops.remove_address("a", "y", ip("192.0.2.1/24"))
    assert fib.get(net("192.0.2.0/24")) is static


def test_a_floating_static_route_takes_over_when_the_protocol_withdraws(ops: Ops) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    epair(ops, "a:x", "b:x", ("10.0.0.1/30",))
    epair(ops, "a:y", "b:y", ("10.0.1.1/30",))
    prefix = net("198.51.100.0/24")
    floating = ops.add_route("a", prefix, via=addr("10.0.1.2"), source=source("static", 200))
    learnt = ops.add_route("a", prefix, via=addr("10.0.0.2"), source=source("rip"))
    fib = ops.vnet("a").route.fib
    assert fib.lookup(addr("198.51.100.9").packed) is learnt
    ops.remove_route("a", prefix, "rip")
    assert fib.lookup(addr("198.51.100.9").packed) is floating


def test_the_route_limit_counts_every_source(ops: Ops) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    epair(ops, "a:x", "b:x", ("10.0.0.1/30",))
    ops.set_sysctl("a", "vnet.limits.routes", 3)
    prefix = net("198.51.100.0/24")
    ops.add_route("a", prefix, via=addr("10.0.0.2"))
    ops.add_route("a", prefix, via=addr("10.0.0.2"), source=source("rip"))  # held, counted
    with pytest.raises(OpError, match="route limit 3 reached"):
        ops.add_route("a", prefix, via=addr("10.0.0.2"), source=source("bgp"))
    assert ops.routes_in_use(ops.vnet("a")) == 3


def test_a_refused_change_keeps_the_old_route(ops: Ops) -> None:
    ops.create_vnet("a")
    ops.create_vnet("b")
    epair(ops, "a:x", "b:x", ("10.0.0.1/30",))
    rip = source("rip")
    prefix = net("198.51.100.0/24")
    old = ops.add_route("a", prefix, via=addr("10.0.0.2"), source=rip)
    with pytest.raises(OpError, match="not on a connected network"):
        ops.change_route("a", prefix, via=addr("192.0.2.9"), source=rip)
    assert ops.vnet("a").route.fib.get(prefix) is old
    with pytest.raises(OpError, match="has no bgp route"):
        ops.change_route("a", prefix, "blackhole", source=source("bgp"))
    new = ops.change_route("a", prefix, "blackhole", source=rip)
    assert ops.vnet("a").route.fib.get(prefix) is new


# -- bridges and VLANs at run time -----------------------------------------------------------


@pytest.fixture
def l2(ops: Ops) -> Ops:
    """Vnet ``lab`` with epairs p1, p2, p3 to vnet ``peer`` (no addresses)."""
    ops.create_vnet("lab")
    ops.create_vnet("peer")
    for n in (1, 2, 3):
        epair(ops, f"lab:p{n}", f"peer:p{n}")
    return ops


def test_a_bridge_created_at_run_time_takes_its_members_and_gives_them_back(
    l2: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    lab = l2.vnet("lab")
    p1, p2 = lab.link.get("p1"), lab.link.get("p2")
    assert p1.addresses6, "an epair end has a link-local address before it joins"
    brif = run(loop, l2.create_bridge("lab", "br0", ["p1", "p2"], [ip("192.0.2.1/24")]))
    br = bridge_.of(brif)
    assert br is not None and list(br.ports) == ["p1", "p2"]
    assert brif.up and brif.mtu == 1500 and brif.addresses
    assert p1.bridge_input is not None and not p1.addresses6 and p1.up
    l2.remove_bridge_port("lab", "br0", "p2")
    assert list(br.ports) == ["p1"] and p2.bridge_input is None and p2.addresses6 and p2.up
    l2.add_bridge_port("lab", "br0", "p2", pvid=1, tagged=[20, 10], storm_pps=50)
    port = br.ports["p2"]
    assert (port.pvid, port.storm_pps) == (0, 50), "without filtering, VLANs are not looked at"
    gone = run(loop, l2.destroy_interface("lab", "br0"))
    assert gone == [("lab", "br0")] and not lab.link.bridge.bridges
    assert p1.bridge_input is None and p1.addresses6 and p2.addresses6


def test_a_filtering_bridge_port_keeps_its_vlans(l2: Ops, loop: asyncio.AbstractEventLoop) -> None:
    run(loop, l2.create_bridge("lab", "br0", [], [], vlan_filtering=True, pvid=10))
    l2.add_bridge_port("lab", "br0", "p1", pvid=0, tagged=[20, 10, 20])
    port = bridge_.of(l2.vnet("lab").link.get("br0")).ports["p1"]  # type: ignore[union-attr]
    assert (port.pvid, sorted(port.tagged)) == (0, [10, 20])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o.add_bridge_port("lab", "br0", "p1"), "p1 is already a bridge member"),
        (lambda o: o.add_bridge_port("lab", "br0", "br0"), "cannot be a member of itself"),
        (lambda o: o.add_bridge_port("lab", "p2", "p3"), "p2 is not a bridge"),
        (lambda o: o.add_bridge_port("lab", "br0", "nope"), "no interface 'nope'"),
        (lambda o: o.add_bridge_port("lab", "br0", "p3", pvid=5000), "VLAN 5000 is not in"),
        (lambda o: o.remove_bridge_port("lab", "br0", "p3"), "p3 is not a member of bridge br0"),
    ],
)
def test_port_changes_that_cannot_be_made_change_nothing(
    l2: Ops, loop: asyncio.AbstractEventLoop, change: Any, message: str
) -> None:
    run(loop, l2.create_bridge("lab", "br0", ["p1"], []))
    br = bridge_.of(l2.vnet("lab").link.get("br0"))
    assert br is not None
    with pytest.raises(OpError, match=message):
        change(l2)
    assert list(br.ports) == ["p1"] and l2.vnet("lab").link.get("p3").addresses6


def test_a_member_with_addresses_or_a_small_mtu_is_refused(
    l2: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    l2.add_address("lab", "p3", ip("198.51.100.1/24"))
    with pytest.raises(OpError, match="member p3 has addresses; remove them first"):
        run(loop, l2.create_bridge("lab", "br0", ["p1", "p3"], []))
    assert "br0" not in l2.vnet("lab").link.interfaces
    with pytest.raises(OpError, match="mtu 9000 is larger than member p1's"):
        run(loop, l2.create_bridge("lab", "br0", ["p1"], [], mtu=9000))
    assert not l2.vnet("lab").link.bridge.bridges


def test_a_bridge_created_at_run_time_with_stp_runs_it_and_dumps_its_settings(
    l2: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    settings = StpSettings(priority=4096, hello_time=1, max_age=6, forward_delay=4)
    brif = run(loop, l2.create_bridge("lab", "br0", ["p1", "p2"], [], stp=settings))
    br = bridge_.of(brif)
    assert br is not None and br.stp is not None and br.stp.settings == settings
    assert all(p.stp is not None and not p.forwarding for p in br.ports.values())
    table = dump.interface_table("lab", dump.running_interface(brif, None, None, None))
    assert {k: table.get(k) for k in ("stp", "priority", "hello_time", "max_age",
                                      "forward_delay")} == {
        "stp": True, "priority": 4096, "hello_time": 1, "max_age": 6, "forward_delay": 4,
    }  # fmt: skip
    plain = run(loop, l2.create_bridge("lab", "br1", ["p3"], []))
    assert "stp" not in dump.interface_table("lab", dump.running_interface(plain, None, None, None))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (StpSettings(hello_time=0), r"hello_time 0 is out of range 1\.\.10 seconds"),
        (StpSettings(priority=70000), r"priority 70000 is out of range 0\.\.65535"),
        (StpSettings(forward_delay=4), r"max_age 20 is more than 2 x \(forward_delay 4 - 1\)"),
        (StpSettings(hello_time=4, max_age=8), r"max_age 8 is less than 2 x \(hello_time 4 \+ 1\)"),
    ],
)
def test_a_bridge_with_stp_settings_out_of_range_or_of_802_1d_is_refused(
    l2: Ops, loop: asyncio.AbstractEventLoop, settings: StpSettings, message: str
) -> None:
    with pytest.raises(OpError, match=f"vnet lab: br0: {message}"):
        run(loop, l2.create_bridge("lab", "br0", ["p1"], [], stp=settings))
    assert not l2.vnet("lab").link.bridge.bridges and l2.vnet("lab").link.get("p1").addresses6
    run(loop, l2.create_bridge("lab", "br0", ["p1"], []))
    with pytest.raises(OpError, match=f"vnet lab: br0: {message}"):
        l2.set_bridge_stp("lab", "br0", True, settings.priority, settings.hello_time,
                          settings.max_age, settings.forward_delay)  # fmt: skip
    assert bridge_.of(l2.vnet("lab").link.get("br0")).stp is None  # type: ignore[union-attr]


def test_a_vlan_created_at_run_time_rides_on_its_parent_and_goes_with_it(
    l2: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    lab = l2.vnet("lab")
    sub = run(loop, l2.create_vlan("lab", "p1", 10, addresses=[ip("198.51.100.1/24")]))
    p1 = lab.link.get("p1")
    assert (sub.name, sub.mac, sub.mtu, sub.up) == ("p1.10", p1.mac, p1.mtu, True)
    assert lab.link.vlans[("p1", 10)].ifnet is sub
    with pytest.raises(OpError, match="p1 already has VLAN 10"):
        run(loop, l2.create_vlan("lab", "p1", 10, name="other"))
    with pytest.raises(OpError, match=r"VLAN 4095 is not in 1\.\.4094"):
        run(loop, l2.create_vlan("lab", "p1", 4095))
    with pytest.raises(OpError, match="mtu 1504 is larger than p1's"):
        run(loop, l2.create_vlan("lab", "p1", 11, mtu=1504))
    with pytest.raises(OpError, match="p1 is the parent of VLAN interfaces"):
        run(loop, l2.create_bridge("lab", "br0", ["p1"], []))
    gone = run(loop, l2.destroy_interface("lab", "p1"))
    assert ("lab", "p1.10") in gone and not lab.link.vlans and "p1.10" not in lab.link.interfaces


def test_what_is_tied_to_other_interfaces_does_not_move_between_vnets(
    l2: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    """A bridge, its members, a VLAN interface and a VLAN's parent stay: their frames
    would otherwise cross from one vnet's link into another's."""
    run(loop, l2.create_vlan("lab", "p1", 10))
    run(loop, l2.create_bridge("lab", "br0", ["p2"], []))
    l2.create_vnet("other")
    for name, said in (
        ("p1", "the parent of VLAN interfaces p1.10 cannot move"),
        ("p1.10", "a VLAN interface cannot move"),
        ("br0", "a bridge cannot move"),
        ("p2", "a bridge member cannot move"),
    ):
        with pytest.raises(OpError, match=said):
            l2.move_interface("lab", name, "other")
        assert name in l2.vnet("lab").link.interfaces, "nothing moved"
    moved = l2.move_interface("lab", "p3", "other")  # a plain interface moves
    assert moved.vnet is l2.vnet("other") and "p3" not in l2.vnet("lab").link.interfaces


def test_a_ruleset_nested_too_deeply_is_refused_and_changes_nothing(ops: Ops) -> None:
    ops.create_vnet("red")
    before = ops.vnet("red").firewall.fw.ruleset
    with pytest.raises(OpError, match=r"red\.rules: arrays or inline tables nested too deeply"):
        ops.load_ruleset("red", "rules = " + "[" * 5000 + "]" * 5000, "red.rules")
    assert ops.vnet("red").firewall.fw.ruleset is before


def test_a_destroyed_vnet_is_freed_without_the_cyclic_collector(
    ops: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    ops.create_vnet("keep")
    ops.create_vnet("gone")
    epair(ops, "gone:ep0", "keep:ep0", ("10.0.0.1/30", "2001:db8::1/64"), ("10.0.0.2/30",))
    ops.add_route("gone", net("198.51.100.0/24"), via=addr("10.0.0.2"))
    loop.run_until_complete(asyncio.sleep(0.05))  # DAD, MLD reports, ARP announcements
    gone = ops.vnet("gone")
    refs = [weakref.ref(x) for x in (gone, gone.route.fib, gone.route.fib6, gone.timers)]
    del gone
    gc.disable()
    try:
        run(loop, ops.destroy_vnet("gone"))
        loop.run_until_complete(asyncio.sleep(0))  # a scheduled epair pump runs
        assert [r() for r in refs] == [None] * len(refs), "a reference cycle holds the vnet"
    finally:
        gc.enable()


def test_destroying_a_vnet_takes_its_epair_peer_out_of_the_vnet_that_stays(
    ops: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    ops.create_vnet("keep")
    ops.create_vnet("gone")
    epair(ops, "gone:ep0", "keep:ep0", ("10.0.0.1/30", "2001:db8::1/64"), ("10.0.0.2/30",))
    epair(ops, "keep:ep1", "keep:ep2", ("10.0.1.1/30",), ("10.0.1.2/30",))
    loop.run_until_complete(asyncio.sleep(0.05))
    assert run(loop, ops.destroy_vnet("gone")) == ["gone"]
    keep = ops.vnet("keep")
    assert sorted(keep.link.interfaces) == ["ep1", "ep2"]
    assert keep.route.fib.lookup(bytes([10, 0, 0, 1])) is None, "the peer's route went with it"
    assert keep.route.fib6.lookup(ipaddress.ip_address("2001:db8::1").packed) is None
    assert bytes([10, 0, 0, 2]) not in keep.inet.local
    assert tables.intact(), "the shared dispatch tables were not written"
    ops.create_vnet("gone")  # the name is free again, and the new vnet works
    epair(ops, "gone:ep0", "keep:ep0", ("10.0.0.1/30",), ("10.0.0.2/30",))
    assert keep.route.fib.lookup(bytes([10, 0, 0, 1])) is not None


def test_a_bridge_switched_to_rstp_at_run_time_dumps_its_protocol_and_edge_ports(
    l2: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    settings = StpSettings(priority=4096, hello_time=1, max_age=6, forward_delay=4)
    brif = run(loop, l2.create_bridge("lab", "br0", ["p1", "p2"], [], stp=settings))
    br = bridge_.of(brif)
    assert br is not None
    l2.set_bridge_stp("lab", "br0", protocol="rstp")
    assert br.stp is not None and br.stp.protocol == "rstp"
    port = l2.set_bridge_port_stp("lab", "br0", "p1", edge=True, auto_edge=False)
    assert port.edge and not port.auto_edge
    assert port.stp is not None and port.stp.oper_edge
    table = dump.interface_table("lab", dump.running_interface(brif, None, None, None))
    assert table["stp_protocol"] == "rstp"
    assert table["ports"] == {"p1": {"edge": True, "auto_edge": False}}
    with pytest.raises(OpError, match="stp_protocol 'mstp' is not one of stp, rstp"):
        l2.set_bridge_stp("lab", "br0", protocol="mstp")
    l2.set_bridge_stp("lab", "br0", protocol="stp")
    with pytest.raises(OpError, match="bridge br0 does not run RSTP"):
        l2.set_bridge_port_stp("lab", "br0", "p1", mcheck=True)
