"""Tests for vrouter.core.vnet: names, the tree, and per-vnet state independence."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from vrouter.core import tables
from vrouter.core.vnet import VnetError, check_name
from vrouter.route import state as route_state
from vrouter.stack import new_tree


@pytest.mark.parametrize(
    "name",
    [
        "vnet0",
        "a",
        "0",
        "lab",
        "lab/r1",
        "lab/r1/eth-side_2",
        "A-b_C",
        "x" * 32,
        "/".join(["seg"] * 10),
    ],
)
def test_valid_names(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/",
        "lab/",
        "/lab",
        "lab//r1",
        "x" * 33,
        "lab/" + "x" * 33,
        "-lab",
        "_lab",
        "lab/-r1",
        "la b",
        "lab.r1",
        "lab\n",
        "lab\\r1",
        "läb",
        "r1:0",
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(VnetError, match="bad vnet name"):
        check_name(name)


def test_create_rejects_an_invalid_name() -> None:
    tree = new_tree()
    with pytest.raises(VnetError, match="bad vnet name"):
        tree.create("lab r1")
    assert len(tree) == 0


def test_child_needs_its_parent() -> None:
    tree = new_tree()
    with pytest.raises(VnetError, match="parent 'lab' does not exist"):
        tree.create("lab/r1")
    assert "lab/r1" not in tree
    lab = tree.create("lab")
    r1 = tree.create("lab/r1")
    assert r1.parent is lab
    assert r1.basename == "r1"
    assert lab.children == {"r1": r1}
    assert lab.parent is None


def test_grandchild_needs_the_child_not_only_the_root() -> None:
    tree = new_tree()
    tree.create("lab")
    with pytest.raises(VnetError, match="parent 'lab/r1'"):
        tree.create("lab/r1/sub")


def test_duplicate_create_is_refused() -> None:
    tree = new_tree()
    first = tree.create("lab")
    with pytest.raises(VnetError, match="already exists"):
        tree.create("lab")
    assert tree.get("lab") is first
    assert len(tree) == 1


def test_destroy_refuses_while_children_exist() -> None:
    tree = new_tree()
    tree.create("lab")
    tree.create("lab/r1")
    tree.create("lab/r2")
    with pytest.raises(VnetError, match="still has children: r1, r2"):
        tree.destroy("lab")
    assert "lab" in tree
    tree.destroy("lab/r1")
    tree.destroy("lab/r2")
    assert tree.get("lab").children == {}
    tree.destroy("lab")
    assert len(tree) == 0


def test_destroy_of_an_unknown_vnet_raises() -> None:
    tree = new_tree()
    with pytest.raises(VnetError, match="no vnet named 'ghost'"):
        tree.destroy("ghost")
    with pytest.raises(VnetError):
        tree.get("ghost")


def test_destroy_detaches_state_and_cancels_timers() -> None:
    tree = new_tree()
    vnet = tree.create("lab")
    ran: list[float] = []
    vnet.timers.schedule(1.0, ran.append)
    tree.destroy("lab")
    for attr in ("link", "route", "inet"):
        assert not hasattr(vnet, attr)
    assert vnet.timers.next_deadline() is None
    assert vnet.timers.run(100.0) == 0
    assert ran == []
    # The name can be used again, with fresh state.
    again = tree.create("lab")
    assert again is not vnet
    assert len(again.route.fib) == 0


def test_iteration_and_membership() -> None:
    tree = new_tree()
    for name in ("a", "a/b", "c"):
        tree.create(name)
    assert sorted(v.name for v in tree) == ["a", "a/b", "c"]
    assert "a/b" in tree
    assert "b" not in tree
    assert 42 not in tree


def test_two_vnets_have_independent_state(lab) -> None:
    red = lab.vnet("red")
    blue = lab.vnet("blue")
    for attr in ("link", "route", "inet"):
        assert getattr(red, attr) is not getattr(blue, attr)
    assert red.route.fib is not blue.route.fib
    assert red.inet.arp is not blue.inet.arp
    assert red.inet.stats is not blue.inet.stats
    red.link.ethertypes = tables.put(red.link.ethertypes, 0x88B5, lambda ifp, frame, now: None)
    assert 0x88B5 in red.link.ethertypes and 0x88B5 not in blue.link.ethertypes
    assert red.timers is not blue.timers

    red.inet.forwarding = False
    red.inet.ttl = 5
    assert blue.inet.forwarding is True
    assert blue.inet.ttl == 64

    eth0 = lab.iface(red, "eth0", "192.0.2.1/24")
    route_state.add_static(red, IPv4Network("203.0.113.0/24"), via=IPv4Address("192.0.2.9"))
    assert len(red.route.fib) == 2
    assert len(blue.route.fib) == 0
    assert blue.route.fib.generation == 0
    assert blue.inet.local == {}
    assert blue.link.interfaces == {}
    assert red.link.interfaces == {"eth0": eth0}
    # The same interface name and address may exist in the other vnet.
    blue_eth0 = lab.iface(blue, "eth0", "192.0.2.1/24")
    assert blue.inet.local[IPv4Address("192.0.2.1").packed] is blue_eth0
    assert red.inet.local[IPv4Address("192.0.2.1").packed] is eth0


def test_forwarding_knob_changes_behaviour_of_one_vnet_only(lab) -> None:
    vnets = {}
    for name in ("red", "blue"):
        vnet = lab.vnet(name)
        h1 = lab.host(vnet, "h1", "192.0.2.1/24", "192.0.2.10")
        h2 = lab.host(vnet, "h2", "203.0.113.1/24", "203.0.113.10")
        h1.take()
        h2.take()
        vnets[name] = (vnet, h1, h2)
    vnets["red"][0].inet.forwarding = False
    for _, h1, _ in vnets.values():
        h1.send(h1.udp("203.0.113.10"), lab.now)
    lab.settle()
    red, _, red_h2 = vnets["red"]
    blue, _, blue_h2 = vnets["blue"]
    assert red.inet.stats.cantforward == 1
    assert red.inet.stats.forward == 0
    assert red_h2.take_ip() == []
    assert blue.inet.stats.cantforward == 0
    assert blue.inet.stats.forward == 1
    assert len(blue_h2.take_ip()) == 1


def test_attach_failure_leaves_no_vnet_in_the_tree() -> None:
    tree = new_tree()
    from vrouter.core.registry import Subsystem

    def broken(vnet):
        raise RuntimeError("no")

    tree.registry.load(Subsystem("broken", broken, depends=("inet",)), tree)
    with pytest.raises(RuntimeError):
        tree.create("lab")
    assert "lab" not in tree
    assert len(tree) == 0
