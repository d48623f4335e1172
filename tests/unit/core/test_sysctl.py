"""The per-vnet sysctl tree: types, ranges, independence of vnets, inheritance."""

from __future__ import annotations

import re

import pytest

from vrouter.core.sysctl import SysctlError
from vrouter.stack import builtin_sysctl, new_tree


def test_every_knob_has_a_description_and_reads_a_value() -> None:
    tree = new_tree()
    vnet = tree.create("v")
    sysctl = tree.registry.sysctl()
    assert {
        "net.inet.ip.forwarding",
        "net.inet.ip.ttl",
        "net.inet.icmp.errratelimit",
        "net.inet6.ip6.forwarding",
        "net.inet6.ip6.hlim",
        "net.inet6.icmp6.errratelimit",
        "net.link.ether.inet.max_age",
        "net.inet6.nd6.base_reachable_time",
    } <= set(sysctl.knobs)
    for knob in sysctl.knobs.values():
        assert len(knob.description) > 15
        assert isinstance(knob.get(vnet), knob.kind)


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("net.inet.ip.ttl", "32", 32),
        ("net.inet.ip.forwarding", "0", False),
        ("net.inet.ip.forwarding", "true", True),
        ("net.link.ether.inet.max_age", "12.5", 12.5),
        ("net.inet6.ip6.hlim", 255, 255),
    ],
)
def test_values_are_coerced_from_text_and_numbers(name: str, text: object, value: object) -> None:
    tree = new_tree()
    vnet = tree.create("v")
    assert tree.registry.sysctl().set(vnet, name, text) == value
    assert tree.registry.sysctl().get(vnet, name) == value


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("net.inet.ip.ttl", 0, "out of range [1, 255]"),
        ("net.inet.ip.ttl", "256", "out of range"),
        ("net.inet.ip.ttl", 3.5, "expected an integer"),
        ("net.inet.ip.ttl", "ten", "expected int"),
        ("net.inet.ip.forwarding", 2, "expected a boolean"),
        ("net.inet.ip.forwarding", "maybe", "expected a boolean"),
        ("net.inet.ip.ttl", True, "expected int"),
        ("net.inet.ip.nosuch", 1, "unknown sysctl"),
    ],
)
def test_bad_values_are_refused_and_change_nothing(name: str, value: object, message: str) -> None:
    tree = new_tree()
    vnet = tree.create("v")
    before = tree.registry.sysctl().snapshot(vnet)
    with pytest.raises(SysctlError, match=re.escape(message)):
        tree.registry.sysctl().set(vnet, name, value)
    assert tree.registry.sysctl().snapshot(vnet) == before


def test_vnets_have_their_own_values_and_children_inherit_at_creation() -> None:
    tree = new_tree()
    lab = tree.create("lab")
    other = tree.create("other")
    sysctl = tree.registry.sysctl()
    sysctl.set(lab, "net.inet.ip.ttl", 40)
    sysctl.set(lab, "net.inet6.ip6.forwarding", False)
    assert sysctl.get(other, "net.inet.ip.ttl") == 64
    child = tree.create("lab/r1")
    assert sysctl.get(child, "net.inet.ip.ttl") == 40
    assert child.inet6.forwarding is False
    # Inherited at creation, not linked: later changes stay in their vnet.
    sysctl.set(lab, "net.inet.ip.ttl", 50)
    assert sysctl.get(child, "net.inet.ip.ttl") == 40


def test_builtin_sysctl_matches_a_fresh_registry() -> None:
    assert set(builtin_sysctl().knobs) == set(new_tree().registry.sysctl().knobs)
