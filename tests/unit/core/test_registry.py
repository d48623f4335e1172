"""Tests for vrouter.core.registry: dependency order, load/unload, rollback."""

from __future__ import annotations

import pytest

from vrouter.core.registry import Registry, RegistryError, Subsystem
from vrouter.core.vnet import VnetTree
from vrouter.stack import builtin_subsystems, new_tree


class Recorder:
    """Builds subsystems whose attach/detach calls land in one shared log."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, str]] = []
        self.fail_attach: set[tuple[str, str]] = set()
        """(subsystem, vnet) pairs whose attach raises."""

    def subsystem(self, name: str, *depends: str) -> Subsystem:
        def attach(vnet):
            if (name, vnet.name) in self.fail_attach:
                raise RuntimeError(f"{name} cannot attach to {vnet.name}")
            self.log.append(("attach", name, vnet.name))
            return {"owner": name, "vnet": vnet.name}

        def detach(vnet):
            # The state is still there while detach runs.
            assert getattr(vnet, name)["owner"] == name
            self.log.append(("detach", name, vnet.name))

        return Subsystem(name, attach, detach, depends)

    def take(self) -> list[tuple[str, str, str]]:
        log, self.log = self.log, []
        return log


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def diamond(rec: Recorder) -> Registry:
    #   base <- left <- top
    #   base <- right <- top
    return Registry(
        [
            rec.subsystem("base"),
            rec.subsystem("left", "base"),
            rec.subsystem("right", "base"),
            rec.subsystem("top", "left", "right"),
        ]
    )


def test_attach_runs_in_dependency_order_and_detach_in_reverse(rec: Recorder) -> None:
    tree = VnetTree(diamond(rec))
    vnet = tree.create("v")
    assert rec.take() == [
        ("attach", "base", "v"),
        ("attach", "left", "v"),
        ("attach", "right", "v"),
        ("attach", "top", "v"),
    ]
    assert vnet.top == {"owner": "top", "vnet": "v"}  # type: ignore[attr-defined]
    tree.destroy("v")
    assert rec.take() == [
        ("detach", "top", "v"),
        ("detach", "right", "v"),
        ("detach", "left", "v"),
        ("detach", "base", "v"),
    ]
    for name in ("base", "left", "right", "top"):
        assert not hasattr(vnet, name)


def test_names_are_in_attach_order(rec: Recorder) -> None:
    assert diamond(rec).names() == ["base", "left", "right", "top"]
    assert [s.name for s in diamond(rec)] == ["base", "left", "right", "top"]


def test_builtin_order_puts_link_before_route_before_inet() -> None:
    names = new_tree().registry.names()
    assert names == [
        "link", "route", "inet", "inet6", "firewall", "transport", "tcp", "mirror", "dhcp"
    ]  # fmt: skip
    for subsystem in builtin_subsystems():
        for dep in subsystem.depends:
            assert names.index(dep) < names.index(subsystem.name)


def test_a_subsystem_listed_before_its_dependency_is_refused(rec: Recorder) -> None:
    with pytest.raises(RegistryError, match=r"'top' needs base"):
        Registry([rec.subsystem("top", "base"), rec.subsystem("base")])


def test_loading_with_a_missing_dependency_raises_and_changes_nothing(rec: Recorder) -> None:
    registry = Registry([rec.subsystem("base")])
    tree = VnetTree(registry)
    vnet = tree.create("v")
    rec.take()
    with pytest.raises(RegistryError) as info:
        registry.load(rec.subsystem("fw", "base", "inet6", "capture"), tree)
    assert "fw" in str(info.value)
    assert "inet6, capture" in str(info.value)
    assert registry.names() == ["base"]
    assert rec.take() == []
    assert not hasattr(vnet, "fw")


def test_loading_twice_is_refused(rec: Recorder) -> None:
    registry = Registry([rec.subsystem("base")])
    with pytest.raises(RegistryError, match="already loaded"):
        registry.load(rec.subsystem("base"), [])
    assert registry.names() == ["base"]


def test_load_attaches_to_every_existing_vnet_and_new_ones(rec: Recorder) -> None:
    registry = Registry([rec.subsystem("base")])
    tree = VnetTree(registry)
    for name in ("a", "a/b", "c"):
        tree.create(name)
    rec.take()
    registry.load(rec.subsystem("extra", "base"), tree)
    assert sorted(rec.take()) == [
        ("attach", "extra", "a"),
        ("attach", "extra", "a/b"),
        ("attach", "extra", "c"),
    ]
    for vnet in tree:
        assert vnet.extra["vnet"] == vnet.name  # type: ignore[attr-defined]
    tree.create("d")
    assert rec.take() == [("attach", "base", "d"), ("attach", "extra", "d")]


def test_unload_detaches_everywhere_and_is_forgotten(rec: Recorder) -> None:
    registry = Registry([rec.subsystem("base"), rec.subsystem("extra", "base")])
    tree = VnetTree(registry)
    tree.create("a")
    tree.create("b")
    rec.take()
    registry.unload("extra", tree)
    assert sorted(rec.take()) == [("detach", "extra", "a"), ("detach", "extra", "b")]
    assert registry.names() == ["base"]
    assert not any(hasattr(v, "extra") for v in tree)
    tree.create("c")
    assert rec.take() == [("attach", "base", "c")]


def test_unload_refuses_when_another_subsystem_depends_on_it(rec: Recorder) -> None:
    registry = diamond(rec)
    tree = VnetTree(registry)
    tree.create("v")
    rec.take()
    with pytest.raises(RegistryError) as info:
        registry.unload("base", tree)
    assert "left, right" in str(info.value)
    with pytest.raises(RegistryError, match="top"):
        registry.unload("left", tree)
    assert rec.take() == []
    assert registry.names() == ["base", "left", "right", "top"]
    assert hasattr(tree.get("v"), "base")


def test_unload_of_an_unknown_subsystem_raises(rec: Recorder) -> None:
    with pytest.raises(RegistryError, match="'nope' is not loaded"):
        diamond(rec).unload("nope", [])


def test_unloading_the_builtin_inet_is_refused_only_for_its_dependencies() -> None:
    tree = new_tree()
    vnet = tree.create("v")
    with pytest.raises(RegistryError, match="inet"):
        tree.registry.unload("link", tree)
    with pytest.raises(RegistryError, match="needed by firewall, transport, tcp"):
        tree.registry.unload("inet", tree)
    tree.registry.unload("tcp", tree)
    tree.registry.unload("transport", tree)
    tree.registry.unload("firewall", tree)
    tree.registry.unload("mirror", tree)
    tree.registry.unload("dhcp", tree)
    assert not hasattr(vnet, "firewall")
    tree.registry.unload("inet", tree)
    assert not hasattr(vnet, "inet")
    # inet's detach took its EtherTypes out of link's table; inet6's and
    # link's own 802.1Q stay.
    assert sorted(vnet.link.ethertypes) == [0x8100, 0x86DD]
    tree.registry.unload("inet6", tree)
    assert sorted(vnet.link.ethertypes) == [0x8100]


def test_attach_failure_rolls_back_what_was_attached(rec: Recorder) -> None:
    tree = VnetTree(diamond(rec))
    rec.fail_attach.add(("right", "v"))
    with pytest.raises(RuntimeError, match="right cannot attach"):
        tree.create("v")
    assert rec.take() == [
        ("attach", "base", "v"),
        ("attach", "left", "v"),
        ("detach", "left", "v"),
        ("detach", "base", "v"),
    ]
    assert "v" not in tree
    assert len(tree) == 0
    # Nothing is left half-built: the name is free again.
    rec.fail_attach.clear()
    vnet = tree.create("v")
    assert vnet.top["vnet"] == "v"  # type: ignore[attr-defined]


def test_load_failure_on_one_vnet_rolls_back_the_others(rec: Recorder) -> None:
    registry = Registry([rec.subsystem("base")])
    tree = VnetTree(registry)
    for name in ("a", "b", "c"):
        tree.create(name)
    rec.take()
    order = [v.name for v in tree]
    rec.fail_attach.add(("extra", order[2]))
    with pytest.raises(RuntimeError):
        registry.load(rec.subsystem("extra", "base"), tree)
    assert rec.take() == [
        ("attach", "extra", order[0]),
        ("attach", "extra", order[1]),
        ("detach", "extra", order[0]),
        ("detach", "extra", order[1]),
    ]
    assert registry.names() == ["base"]
    assert not any(hasattr(v, "extra") for v in tree)
