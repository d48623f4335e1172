"""Tests for vrouter.core.limits: inheritance, narrowing, caps, and where limits are enforced.

Limits are inherited down the vnet tree and may only be narrowed; the
operation layer (:class:`~vrouter.daemon.ops.Ops`) refuses interfaces and
routes beyond them with a message and a counter; the data path's own knobs
(neighbour tables, firewall states, reassembly memory) are capped by them.
Config validation and live reload keep the same rules.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest

from vrouter.core import limits
from vrouter.core.limits import LimitError
from vrouter.core.vnet import VnetTree
from vrouter.daemon import build
from vrouter.daemon.config import Config, ConfigError, parse
from vrouter.daemon.ops import OpError, Ops, interface_config
from vrouter.daemon.reload import SYSCTL, ReloadError, apply, plan
from vrouter.io.driver import Driver
from vrouter.stack import new_tree

ip = ipaddress.ip_interface
net = ipaddress.ip_network
addr = ipaddress.ip_address

ARP = "net.link.ether.inet.max_entries"
ND = "net.inet6.nd6.max_entries"
STATES = "net.pf.states_max"
REASS = "net.inet.ip.reass.maxmem"
REASS6 = "net.inet6.ip6.reass.maxmem"


@pytest.fixture
def tree() -> VnetTree:
    tree = new_tree()
    for name in ("lab", "lab/r1", "lab/r1/x", "other"):
        tree.create(name)
    return tree


def set_limit(tree: VnetTree, name: str, kind: str, value: int) -> None:
    tree.registry.sysctl().set(tree.get(name), limits.knob_name(kind), value)


def effective(tree: VnetTree, kind: str) -> dict[str, int | None]:
    return {v.name: v.limits.effective(kind) for v in tree}


# -- inheritance and narrowing ------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ([], {"lab": None, "lab/r1": None, "lab/r1/x": None, "other": None}),
        ([("lab", 100)], {"lab": 100, "lab/r1": 100, "lab/r1/x": 100, "other": None}),
        ([("lab", 100), ("lab/r1", 50)], {"lab": 100, "lab/r1": 50, "lab/r1/x": 50, "other": None}),
        (
            [("lab", 100), ("lab/r1/x", 10), ("other", 7)],
            {"lab": 100, "lab/r1": 100, "lab/r1/x": 10, "other": 7},
        ),
        # a child without a limit of its own follows its parent's, live
        ([("lab", 100), ("lab", 300)], {"lab": 300, "lab/r1": 300, "lab/r1/x": 300, "other": None}),
        # lowering a parent below a child's own limit is allowed: the smaller wins
        (
            [("lab", 100), ("lab/r1", 80), ("lab", 20)],
            {"lab": 20, "lab/r1": 20, "lab/r1/x": 20, "other": None},
        ),
        # 0 removes a vnet's own limit
        (
            [("lab", 100), ("lab/r1", 50), ("lab/r1", 0)],
            {"lab": 100, "lab/r1": 100, "lab/r1/x": 100, "other": None},
        ),
    ],
)
def test_effective_limit_is_the_smallest_up_the_tree(
    tree: VnetTree, settings: list[tuple[str, int]], expected: dict[str, int | None]
) -> None:
    for name, value in settings:
        set_limit(tree, name, "routes", value)
    assert effective(tree, "routes") == expected
    assert effective(tree, "interfaces") == dict.fromkeys(expected)


@pytest.mark.parametrize(
    ("settings", "name", "value", "message"),
    [
        (
            [("lab", 100)],
            "lab/r1",
            101,
            "vnet lab/r1: route limit 101 is above the route limit of its parent vnet lab (100)",
        ),
        (
            [("lab", 100)],
            "lab/r1/x",
            200,
            "vnet lab/r1/x: route limit 200 is above the route limit of its parent vnet lab/r1 "
            "(100, set on lab)",
        ),
        (
            [("lab", 100), ("lab/r1", 30)],
            "lab/r1/x",
            31,
            "parent vnet lab/r1 (30)",
        ),
    ],
)
def test_a_child_may_not_exceed_its_parent(
    tree: VnetTree, settings: list[tuple[str, int]], name: str, value: int, message: str
) -> None:
    for where, limit in settings:
        set_limit(tree, where, "routes", limit)
    before = effective(tree, "routes")
    with pytest.raises(LimitError) as info:
        set_limit(tree, name, "routes", value)
    assert message in str(info.value)
    assert effective(tree, "routes") == before


def test_a_child_equal_to_its_parent_or_top_level_vnets_are_free(tree: VnetTree) -> None:
    set_limit(tree, "lab", "sockets", 10)
    set_limit(tree, "lab/r1", "sockets", 10)
    set_limit(tree, "other", "sockets", limits.MAXIMUM)
    assert tree.get("lab/r1").limits.sockets == 10
    assert tree.get("other").limits.sockets == limits.MAXIMUM


def test_a_new_child_follows_its_parents_limits_instead_of_copying_them(tree: VnetTree) -> None:
    set_limit(tree, "lab", "interfaces", 4)
    kid = tree.create("lab/kid")
    assert kid.limits.own == {}
    assert kid.limits.interfaces == 4
    assert tree.registry.sysctl().get(kid, limits.knob_name("interfaces")) == 0
    set_limit(tree, "lab", "interfaces", 8)
    assert kid.limits.interfaces == 8


def test_check_refuses_beyond_the_limit_and_counts(tree: VnetTree) -> None:
    set_limit(tree, "lab", "routes", 2)
    r1 = tree.get("lab/r1").limits
    r1.check("routes", 0)
    r1.check("routes", 1)
    with pytest.raises(LimitError, match=r"^vnet lab/r1: route limit 2 reached$"):
        r1.check("routes", 2)
    with pytest.raises(LimitError, match="route limit 2 reached"):
        r1.check("routes", 0, adding=3)
    assert r1.refused["routes"] == 2
    assert tree.get("lab").limits.refused["routes"] == 0


def test_check_sockets_is_the_socket_services_hook(tree: VnetTree) -> None:
    kid = tree.get("lab/r1/x")
    limits.check_sockets(kid, 10_000)  # no limit
    set_limit(tree, "lab/r1", "sockets", 3)
    assert kid.limits.sockets == 3
    limits.check_sockets(kid, 2)
    with pytest.raises(LimitError, match="vnet lab/r1/x: socket limit 3 reached"):
        limits.check_sockets(kid, 3)
    assert kid.limits.refused["sockets"] == 1


def test_describe_names_where_each_limit_comes_from(tree: VnetTree) -> None:
    set_limit(tree, "lab", "states", 500)
    set_limit(tree, "lab/r1", "routes", 9)
    described = tree.get("lab/r1/x").limits.describe()
    assert list(described) == list(limits.KINDS)
    assert described["states"] == {
        "own": None,
        "effective": 500,
        "set_on": "lab",
        "refused": 0,
    }
    assert described["routes"]["set_on"] == "lab/r1"
    assert described["sockets"]["effective"] is None


def test_limit_knobs_are_in_every_registry_and_range_checked(tree: VnetTree) -> None:
    sysctl = tree.registry.sysctl()
    for kind in limits.KINDS:
        knob = sysctl.knob(f"vnet.limits.{kind}")
        assert knob.minimum == 0
    with pytest.raises(limits.SysctlError, match="out of range"):
        sysctl.knob("vnet.limits.routes").coerce(-1)
    assert limits.kind_of("vnet.limits.routes") == "routes"
    assert limits.kind_of("vnet.limits.nope") is None
    assert limits.kind_of("net.inet.ip.ttl") is None


# -- caps on the data path's knobs --------------------------------------------------------


def test_neighbour_limit_caps_both_caches_down_the_tree_and_restores_them(tree: VnetTree) -> None:
    sysctl = tree.registry.sysctl()
    lab, x = tree.get("lab"), tree.get("lab/r1/x")
    default = lab.inet.arp.max_entries
    sysctl.set(x, ARP, 300)
    set_limit(tree, "lab", "neighbours", 100)
    for vnet in (lab, x):
        assert (vnet.inet.arp.max_entries, vnet.inet6.nd.max_entries) == (100, 100)
    assert tree.get("other").inet.arp.max_entries == default
    set_limit(tree, "lab/r1", "neighbours", 40)
    assert x.inet.arp.max_entries == 40
    assert lab.inet.arp.max_entries == 100
    set_limit(tree, "lab/r1", "neighbours", 0)
    set_limit(tree, "lab", "neighbours", 0)
    assert lab.inet.arp.max_entries == default, "the value from before the limit comes back"
    assert x.inet.arp.max_entries == 300
    assert lab.limits.capped == {} and x.limits.capped == {}


def test_a_knob_set_while_capped_keeps_its_new_value(tree: VnetTree) -> None:
    sysctl = tree.registry.sysctl()
    lab = tree.get("lab")
    set_limit(tree, "lab", "neighbours", 100)
    sysctl.set(lab, ARP, 50)
    set_limit(tree, "lab", "neighbours", 0)
    assert lab.inet.arp.max_entries == 50
    assert lab.inet6.nd.max_entries == 65536


@pytest.mark.parametrize(
    ("kind", "knobs"),
    [
        ("neighbours", (ARP, ND)),
        ("states", (STATES,)),
        ("reassembly_bytes", (REASS, REASS6)),
    ],
)
def test_each_capped_kind_caps_its_knobs_and_refuses_them_above(
    tree: VnetTree, kind: str, knobs: tuple[str, ...]
) -> None:
    sysctl = tree.registry.sysctl()
    r1 = tree.get("lab/r1")
    set_limit(tree, "lab", kind, 64)
    for name in knobs:
        assert sysctl.get(r1, name) == 64
        r1.limits.check_knob(name, 64)
        with pytest.raises(LimitError, match=rf"vnet lab/r1: {name} 65 is above the vnet's"):
            r1.limits.check_knob(name, 65)
    assert limits.CAPPED_KNOBS[kind] == knobs


def test_a_reloaded_firewall_is_capped_at_once_and_unloading_forgets_it(tree: VnetTree) -> None:
    set_limit(tree, "lab", "states", 77)
    r1 = tree.get("lab/r1")
    assert r1.firewall.fw.states.max_states == 77
    firewall = tree.unload("transport") and tree.unload("firewall")
    assert not hasattr(r1, "firewall")
    assert STATES not in tree.registry.sysctl().knobs
    assert all(STATES not in v.limits.capped for v in tree)
    set_limit(tree, "lab", "states", 50)  # no firewall: nothing to cap, no error
    tree.load(firewall)
    assert r1.firewall.fw.states.max_states == 50
    assert tree.get("other").firewall.fw.states.max_states == 10000
    assert r1.firewall.fw.enabled is False


# -- the operation layer ------------------------------------------------------------------


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def ops(loop: asyncio.AbstractEventLoop) -> Ops:
    ops = Ops(new_tree(), Driver(loop))
    for name in ("lab", "lab/r1", "blue"):
        ops.create_vnet(name)
    return ops


def epair(ops: Ops, a: str, b: str, a_addr: tuple[str, ...] = (), b_addr: tuple[str, ...] = ()):
    av, an = a.split(":")
    bv, bn = b.split(":")
    return ops.create_epair(
        av,
        interface_config(an, "epair", [ip(x) for x in a_addr], peer=(bv, bn)),
        bv,
        interface_config(bn, "epair", [ip(x) for x in b_addr], peer=(av, an)),
    )


def test_interface_limit_refuses_epairs_moves_and_device_less_interfaces(
    ops: Ops, loop: asyncio.AbstractEventLoop
) -> None:
    ops.set_sysctl("lab", "vnet.limits.interfaces", 2)
    epair(ops, "lab/r1:e0", "blue:e0")
    epair(ops, "lab/r1:e1", "blue:e1")
    with pytest.raises(OpError, match=r"^vnet lab/r1: interface limit 2 reached$"):
        epair(ops, "lab/r1:e2", "blue:e2")
    assert "e2" not in ops.vnet("blue").link.interfaces, "the other end was not made either"
    epair(ops, "lab:a", "blue:a")
    with pytest.raises(OpError, match="vnet lab: interface limit 2 reached"):
        epair(ops, "lab:b", "lab:c")  # two ends in one vnet count as two
    epair(ops, "lab:b", "blue:b")
    with pytest.raises(OpError, match="vnet lab/r1: interface limit 2 reached"):
        ops.move_interface("blue", "a", "lab/r1")
    with pytest.raises(OpError, match="vnet lab: interface limit 2 reached"):
        loop.run_until_complete(ops.create_interface("lab", interface_config("d0", "dummy")))
    assert ops.vnet("lab/r1").limits.refused["interfaces"] == 2
    assert ops.vnet("lab").limits.refused["interfaces"] == 2
    assert ops.vnet("blue").limits.refused["interfaces"] == 0


def test_route_limit_counts_both_families_static_and_connected(ops: Ops) -> None:
    epair(ops, "lab/r1:e0", "blue:e0", ("10.0.0.1/30",), ("10.0.0.2/30",))
    ops.set_sysctl("lab", "vnet.limits.routes", 3)
    r1 = ops.vnet("lab/r1")
    ops.add_route("lab/r1", net("192.0.2.0/24"), via=addr("10.0.0.2"))
    ops.add_address("lab/r1", "e0", ip("2001:db8::1/64"))  # its connected route is the 3rd
    assert Ops.routes_in_use(r1) == 3
    with pytest.raises(OpError, match=r"^vnet lab/r1: route limit 3 reached$"):
        ops.add_route("lab/r1", net("2001:db8:9::/48"), "blackhole")
    with pytest.raises(OpError, match="route limit 3 reached"):
        ops.add_address("lab/r1", "e0", ip("198.18.0.1/24"))
    assert ip("198.18.0.1/24") not in r1.link.interfaces["e0"].all_addresses()
    with pytest.raises(OpError, match="route limit 3 reached"):
        epair(ops, "lab/r1:e1", "blue:e1", ("10.9.0.1/30",))
    assert r1.limits.refused["routes"] == 3
    ops.remove_route("lab/r1", net("192.0.2.0/24"))
    ops.add_route("lab/r1", net("2001:db8:9::/48"), "blackhole")


def test_sysctl_limits_through_ops(ops: Ops) -> None:
    ops.set_sysctl("lab", "vnet.limits.states", 100)
    with pytest.raises(
        OpError,
        match=r"^vnet lab/r1: firewall state limit 200 is above the firewall state limit "
        r"of its parent vnet lab \(100\)$",
    ):
        ops.set_sysctl("lab/r1", "vnet.limits.states", 200)
    with pytest.raises(OpError, match=r"vnet lab/r1: net.pf.states_max 101 is above"):
        ops.set_sysctl("lab/r1", STATES, 101)
    assert ops.set_sysctl("lab/r1", STATES, 99) == 100
    # a rollback restores an earlier state in any order
    ops.set_sysctl("lab/r1", "vnet.limits.states", 200, check=False)
    assert ops.vnet("lab/r1").limits.own["states"] == 200
    assert ops.vnet("lab/r1").limits.states == 100


def test_unloading_essential_or_needed_modules_is_refused(ops: Ops) -> None:
    with pytest.raises(OpError, match=r"cannot unload inet: firewall needs inet, transport needs"):
        ops.unload_module("inet")
    with pytest.raises(OpError, match="firewall needs inet6"):
        ops.unload_module("inet6")
    ops.unload_module("tcp")
    ops.unload_module("transport")
    ops.unload_module("firewall")
    ops.unload_module("mirror")
    ops.unload_module("dhcp")
    with pytest.raises(OpError, match="cannot unload inet: it is essential"):
        ops.unload_module("inet")
    with pytest.raises(OpError, match="not loaded"):
        ops.unload_module("firewall")
    with pytest.raises(OpError, match="no subsystem named 'nope'"):
        ops.load_module("nope")
    ops.load_module("firewall")
    with pytest.raises(OpError, match="already loaded"):
        ops.load_module("firewall")
    assert all(v.firewall.fw.enabled is False for v in ops.tree)
    assert ops.tree.registry.names()[-1] == "firewall"


# -- config ---------------------------------------------------------------------------


BASE = """
[daemon]
control_socket = "/run/t/control.sock"
state_dir = "/run/t"

[vnets.lab.limits]
interfaces = 4
routes = 10
neighbours = 4096
states = 1000
sockets = 64
reassembly_bytes = 1048576

[vnets."lab/r1".limits]
routes = 5

[vnets."lab/r1".interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["10.0.0.1/30"]

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "lab/r1:ep0"
addresses = ["10.0.0.2/30"]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "t.toml")
    return [str(p) for p in info.value.problems]


def test_config_limits_become_knobs_first_and_build_applies_them(
    loop: asyncio.AbstractEventLoop,
) -> None:
    config = parse(BASE + '[vnets."lab/r1".sysctl]\n"net.inet.ip.ttl" = 9\n', "t.toml")
    lab, r1, _ = config.vnets
    assert lab.limits == {
        "interfaces": 4,
        "routes": 10,
        "neighbours": 4096,
        "states": 1000,
        "sockets": 64,
        "reassembly_bytes": 1048576,
    }
    assert r1.sysctl == (("vnet.limits.routes", 5), ("net.inet.ip.ttl", 9))
    built = build.build(config, 0.0)
    vnet = built.tree.get("lab/r1")
    assert vnet.limits.routes == 5
    assert vnet.limits.interfaces == 4
    assert vnet.inet.arp.max_entries == 4096
    assert vnet.firewall.fw.states.max_states == 1000
    assert vnet.inet6.reass.memory_limit == 1048576
    assert built.tree.get("blue").limits.routes is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[vnets."lab/r1/x".limits]\nroutes = 6\n',
            "t.toml: vnets.lab/r1/x.limits.routes: route limit 6 of vnet lab/r1/x is above "
            "the route limit of its parent vnet lab/r1 (5); a child may only narrow its "
            "parent's limits",
        ),
        (
            '[vnets."lab/r1/x".limits]\nstates = 1001\n',
            "states: firewall state limit 1001 of vnet lab/r1/x is above the firewall state "
            "limit of its parent vnet lab/r1 (1000, set on lab)",
        ),
        (
            '[[vnets."lab/r1".routes]]\nto = "192.0.2.0/24"\nvia = "10.0.0.2"\n' * 1
            + '[[vnets."lab/r1".routes]]\nto = "192.0.3.0/24"\nvia = "10.0.0.2"\n'
            + '[[vnets."lab/r1".routes]]\nto = "192.0.4.0/24"\nvia = "10.0.0.2"\n'
            + '[[vnets."lab/r1".routes]]\nto = "192.0.5.0/24"\nvia = "10.0.0.2"\n'
            + '[[vnets."lab/r1".routes]]\nto = "192.0.6.0/24"\nvia = "10.0.0.2"\n',
            "t.toml: vnets.lab/r1.routes: vnet lab/r1 declares routes (static and connected): "
            "6, above its route limit 5",
        ),
        (
            '[vnets."lab/r1".sysctl]\n"net.pf.states_max" = 1500\n',
            "net.pf.states_max 1500 is above the firewall state limit 1000 of vnet lab/r1 "
            "(set on lab)",
        ),
        (
            '[vnets."lab/r1".firewall]\nmax_states = 2000\n',
            "vnets.lab/r1.firewall.max_states: net.pf.states_max 2000 is above",
        ),
        (
            '[vnets."lab/r1".sysctl]\n"vnet.limits.routes" = 3\n',
            "set limits in the limits table: vnets.lab/r1.limits.routes",
        ),
        ("[vnets.blue.limits]\nroutes = 0\n", "0 is out of range 1..2147483647"),
        ("[vnets.blue.limits]\nroute = 5\n", "unknown key 'route' (allowed: interfaces, routes"),
        ('[vnets.blue.limits]\nroutes = "5"\n', "expected an integer, got string"),
    ],
)
def test_config_limit_problems(extra: str, expected: str) -> None:
    text = BASE + ('[vnets."lab/r1/x"]\n' if "lab/r1/x" in extra else "") + extra
    found = problems(text)
    assert any(expected in p for p in found), found


def test_config_too_many_interfaces_is_refused() -> None:
    text = BASE.replace("interfaces = 4", "interfaces = 1") + (
        '[vnets."lab/r1".interfaces.ep1]\ntype = "epair"\npeer = "blue:ep1"\n'
        '[vnets.blue.interfaces.ep1]\ntype = "epair"\npeer = "lab/r1:ep1"\n'
    )
    assert problems(text) == [
        "t.toml: vnets.lab/r1.interfaces: vnet lab/r1 declares interfaces: 2, above its "
        "interface limit 1 (set on lab)"
    ]


# -- live reload ------------------------------------------------------------------------


def start(config: Config, loop: asyncio.AbstractEventLoop) -> Ops:
    driver = Driver(loop)
    built = build.build(config, driver.now())
    for vnet in built.tree:
        driver.attach_vnet(vnet)
    for a, b in built.epairs:
        driver.add_epair(a, b)
    return Ops(built.tree, driver)


def state(ops: Ops) -> dict[str, Any]:
    sysctl = ops.tree.registry.sysctl()
    return {
        vnet.name: (sysctl.snapshot(vnet), dict(vnet.limits.own), vnet.limits.describe())
        for vnet in ops.tree
    }


RAISED = (
    BASE.replace("routes = 10", "routes = 50")
    .replace("routes = 5", "routes = 40")
    .replace("states = 1000", "states = 5000")
    + '[vnets."lab/r1".sysctl]\n"net.pf.states_max" = 4000\n'
)
LOWERED = (
    BASE.replace("routes = 10", "routes = 3").replace("routes = 5\n", "routes = 2\n")
    + '[vnets.blue.sysctl]\n"net.inet.ip.ttl" = 9\n'
)
REMOVED = BASE.replace('[vnets."lab/r1".limits]\nroutes = 5\n', "").replace(
    "neighbours = 4096\n", ""
)


@pytest.mark.parametrize("text", [RAISED, LOWERED, REMOVED])
def test_reload_reaches_what_a_fresh_start_builds_and_back(
    text: str, loop: asyncio.AbstractEventLoop
) -> None:
    old, new = parse(BASE, "t.toml"), parse(text, "t.toml")
    ops = start(old, loop)
    loop.run_until_complete(apply(ops, old, new))
    assert state(ops) == state(start(new, loop))
    loop.run_until_complete(apply(ops, new, old))
    assert state(ops) == state(start(old, loop))


def test_reload_sets_parents_first_and_limits_before_the_knobs_they_cap() -> None:
    steps = [
        (s.vnet, s.target)
        for s in plan(parse(BASE, "t.toml"), parse(RAISED, "t.toml")).steps
        if s.action == SYSCTL
    ]
    assert steps == [
        ("lab", "vnet.limits.routes"),
        ("lab", "vnet.limits.states"),
        ("lab/r1", "vnet.limits.routes"),
        ("lab/r1", STATES),
    ]


def test_a_failed_reload_restores_limits_in_any_order(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = parse(BASE, "t.toml"), parse(LOWERED, "t.toml")
    ops = start(old, loop)
    before = state(ops)
    real = ops.set_sysctl
    calls = 0

    def failing(vnet: str, knob: str, value: object, *, check: bool = True) -> object:
        nonlocal calls
        calls += 1
        if calls == 3:  # lab and lab/r1 lowered; undoing lab/r1 first exceeds lab
            raise OpError("injected")
        return real(vnet, knob, value, check=check)

    monkeypatch.setattr(ops, "set_sysctl", failing)
    with pytest.raises(ReloadError, match="injected"):
        loop.run_until_complete(apply(ops, old, new))
    assert state(ops) == before


# -- the control API ------------------------------------------------------------------


def test_sysctl_requests_set_limits_first_and_check_all_before_changing_anything() -> None:
    import asyncio
    import json
    from types import SimpleNamespace

    from vrouter.api.server import ControlServer
    from vrouter.daemon.ops import Ops
    from vrouter.io.driver import Driver

    tree = new_tree()
    for name in ("lab", "lab/r1"):
        tree.create(name)
    loop = asyncio.new_event_loop()
    host = SimpleNamespace(tree=tree, ops=Ops(tree, Driver(loop)), lock=asyncio.Lock())
    server = ControlServer(host)  # type: ignore[arg-type]

    def sysctl(vnet: str, **settings: object) -> dict[str, Any]:
        line = json.dumps({"op": "sysctl.set", "args": {"vnet": vnet, "settings": settings}})
        reply, _ = loop.run_until_complete(server.answer(line.encode() + b"\n"))
        return reply

    assert sysctl("lab", **{"vnet.limits.states": 1000})["ok"]
    r1 = tree.get("lab/r1")
    assert r1.firewall.fw.states.max_states == 1000
    reply = sysctl("lab/r1", **{STATES: 900, "vnet.limits.states": 1500})
    assert reply == {
        "ok": False,
        "error": "vnet lab/r1: firewall state limit 1500 is above the firewall state limit of "
        "its parent vnet lab (1000)",
    }
    assert r1.firewall.fw.states.max_states == 1000, "nothing changed"
    reply = sysctl("lab", **{STATES: 4000, "vnet.limits.states": 5000})
    assert reply["ok"], reply
    assert [r["name"] for r in reply["result"]] == ["vnet.limits.states", STATES]
    assert tree.get("lab").firewall.fw.states.max_states == 4000
    reply = sysctl("lab", **{STATES: 6000, "vnet.limits.states": 5500})
    assert not reply["ok"]
    assert "net.pf.states_max 6000 is above the vnet's firewall state limit 5500" in reply["error"]
    assert tree.get("lab").limits.states == 5000
