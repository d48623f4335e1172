"""Dispatch tables shared by vnets: one dict for the same handlers, never written in place."""

from __future__ import annotations

from vrouter.core import tables
from vrouter.inet import ipv4
from vrouter.stack import new_tree
from vrouter.transport import sockets
from vrouter.wire.ethernet import ETHERTYPE_IPV4


def _tables(vnet: object) -> list[dict[int, object]]:
    link, inet, inet6 = vnet.link, vnet.inet, vnet.inet6  # type: ignore[attr-defined]
    return [
        link.ethertypes,
        link.bridge.too_big,
        inet.protocols,
        inet.offload_protocols,
        inet6.protocols,
        inet6.offload_protocols,
    ]


def test_vnets_with_the_same_handlers_share_their_tables() -> None:
    tree = new_tree()
    red, blue = tree.create("red"), tree.create("blue")
    for mine, theirs in zip(_tables(red), _tables(blue), strict=True):
        assert mine is theirs and tables.is_shared(mine)
    assert red.link.ethertypes[ETHERTYPE_IPV4] is ipv4.input


def test_put_and_drop_leave_the_shared_table_and_other_vnets_alone() -> None:
    tree = new_tree()
    red, blue = tree.create("red"), tree.create("blue")
    before = dict(blue.inet.protocols)
    red.inet.protocols = tables.put(red.inet.protocols, 250, ipv4.input)
    assert red.inet.protocols[250] is ipv4.input and 250 not in blue.inet.protocols
    assert tables.is_shared(red.inet.protocols)  # functions only: shared again
    red.inet.protocols = tables.drop(red.inet.protocols, 250)
    assert red.inet.protocols is blue.inet.protocols
    assert blue.inet.protocols == before and tables.intact()


def test_a_table_holding_a_closure_or_a_method_is_the_vnets_own() -> None:
    seen: list[bytes] = []
    red = new_tree().create("red")
    red.link.ethertypes = tables.put(red.link.ethertypes, 0x88B5, lambda i, f, n: seen.append(f))
    assert not tables.is_shared(red.link.ethertypes)
    red.link.ethertypes = tables.put(red.link.ethertypes, 0x88B6, seen.append)
    assert not tables.is_shared(red.link.ethertypes) and 0x88B6 in red.link.ethertypes


def test_a_tcp_stack_and_a_raw_socket_take_over_entries_of_their_vnet_only() -> None:
    tree = new_tree()
    red, blue = tree.create("red"), tree.create("blue")
    shared = _tables(blue)
    stack = red.tcp  # the stack's bound methods now handle TCP in red
    assert red.inet.protocols[6] == stack.input4 and not tables.is_shared(red.inet.protocols)
    raw = sockets.open_socket(red, 4, sockets.RAW, 89)
    assert 89 in red.inet.protocols and 89 not in blue.inet.protocols
    sockets.close(raw)
    assert 89 not in red.inet.protocols
    tree.destroy("red")
    assert _tables(blue) == shared and all(tables.is_shared(t) for t in _tables(blue))
    assert tables.intact()


def _handler_a(*args: object) -> None:
    """A module function, so the tables holding it are shared."""


def test_destroying_a_vnet_drops_its_entries_without_making_a_step() -> None:
    # A vnet destroyed in a burst must make nothing that outlives it: what a drop
    # needs was recorded by the put that added the entry.
    tree = new_tree()
    tree.create("warm")  # the subsystems' puts of a first vnet
    steps = len(tables._steps)
    red = tree.create("red")
    before = _tables(red)
    red.inet.protocols = tables.put(red.inet.protocols, 251, _handler_a)
    assert len(tables._steps) in (steps, steps + 2)  # the put and the drop back, once
    steps = len(tables._steps)
    red.inet.protocols = tables.drop(red.inet.protocols, 251)
    assert red.inet.protocols is before[2]
    tree.destroy("red")
    assert len(tables._steps) == steps
    assert tables.intact()


def test_a_drop_recorded_by_a_put_gives_what_the_put_was_given() -> None:
    base = tables.share({1: _handler_a})
    grown = tables.put(base, 2, _handler_a)
    assert tables.drop(grown, 2) is base
    assert tables.drop(tables.put(grown, 2, ipv4.input), 2) is base  # replaced, then dropped
    assert tables.drop(grown, 1) == {2: _handler_a}
