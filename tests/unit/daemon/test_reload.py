"""Tests for vrouter.daemon.reload: the plan (a pure diff of two configs) and applying it.

Applying runs on an in-memory tree built as vrouterd builds it (epairs only,
no devices): after a reload the running state must equal a fresh build of
the new config, and after a failed one, the old.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from vrouter.daemon import build
from vrouter.daemon.config import (
    Config,
    ConfigError,
    FirewallConfig,
    RouteConfig,
    VnetConfig,
    parse,
)
from vrouter.daemon.ops import OpError, Ops
from vrouter.daemon.reload import (
    ADDRESS_ADD,
    ADDRESS_DEL,
    DHCP,
    DHCP6,
    EPAIR_CREATE,
    INTERFACE_CREATE,
    INTERFACE_DESTROY,
    LOG_LEVEL,
    MTU,
    RA,
    ROUTE_ADD,
    ROUTE_DEL,
    RULESET,
    STP,
    SYSCTL,
    VNET_CREATE,
    VNET_DESTROY,
    ReloadError,
    apply,
    overlay,
    plan,
)
from vrouter.io.driver import Driver

BASE = """
[daemon]
control_socket = "/run/t/control.sock"
state_dir = "/run/t"

[vnets.red]
sysctl = { "net.inet.ip.ttl" = 40 }

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]

[vnets.red.interfaces.tap0]
type = "tap"
addresses = ["192.0.2.1/24"]
host = { netns = "h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }

[[vnets.red.routes]]
to = "198.51.100.0/24"
via = "203.0.113.2"

[[vnets.red.routes]]
to = "10.0.0.0/8"
type = "blackhole"

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30", "2001:db8:ff::2/64"]

[[vnets.blue.routes]]
to = "192.0.2.0/24"
via = "203.0.113.1"

[vnets.blue.firewall]
enable = true
default = "pass"

[[vnets.blue.firewall.rules]]
action = "block"
proto = "udp"
"""


def cfg(text: str = BASE) -> Config:
    return parse(text, "test.toml")


def edit(old: str, new: str, text: str = BASE) -> Config:
    assert text.count(old) == 1, old
    return cfg(text.replace(old, new))


def steps(old: Config, new: Config) -> list[tuple[str, str, str]]:
    return [(s.action, s.vnet, s.target) for s in plan(old, new).steps]


# -- the plan ------------------------------------------------------------------------------


def test_identical_configs_need_no_steps() -> None:
    result = plan(cfg(), cfg())  # parsed twice: equal rulesets are distinct objects
    assert result.steps == ()
    assert result.refused == ()


def test_a_new_vnet_is_created_with_its_settings_interfaces_and_routes() -> None:
    new = cfg(
        BASE
        + """
[vnets.green]
forwarding = false
sysctl = { "net.inet.ip.ttl" = 9 }

[vnets.green.interfaces.ep1]
type = "epair"
peer = "green/leaf:ep1"
addresses = ["10.1.0.1/30"]

[vnets."green/leaf".interfaces.ep1]
type = "epair"
peer = "green:ep1"
addresses = ["10.1.0.2/30"]

[[vnets."green/leaf".routes]]
to = "0.0.0.0/0"
via = "10.1.0.1"
"""
    )
    assert steps(cfg(), new) == [
        (VNET_CREATE, "green", ""),
        (SYSCTL, "green", "net.inet.ip.forwarding"),
        (SYSCTL, "green", "net.inet6.ip6.forwarding"),
        (SYSCTL, "green", "net.inet.ip.ttl"),
        (VNET_CREATE, "green/leaf", ""),
        (SYSCTL, "green/leaf", "net.inet.ip.forwarding"),
        (SYSCTL, "green/leaf", "net.inet6.ip6.forwarding"),
        (SYSCTL, "green/leaf", "net.inet.ip.ttl"),
        (EPAIR_CREATE, "green", "ep1"),
        (ROUTE_ADD, "green/leaf", "0.0.0.0/0"),
    ]
    leaf_ttl = next(
        s for s in plan(cfg(), new).steps if s.vnet == "green/leaf" and "ttl" in s.target
    )
    assert leaf_ttl.new == 9, "a child inherits its parent's configured values"


def test_removed_vnets_go_children_first_with_epairs_to_survivors() -> None:
    old = cfg(
        BASE
        + """
[vnets.lab.interfaces.up0]
type = "epair"
peer = "blue:down0"
[vnets."lab/r1"]
[vnets.blue.interfaces.down0]
type = "epair"
peer = "lab:up0"
addresses = ["10.2.0.1/30"]
"""
    )
    assert steps(old, cfg()) == [
        (INTERFACE_DESTROY, "blue", "down0"),
        (VNET_DESTROY, "lab/r1", ""),
        (VNET_DESTROY, "lab", ""),
    ]


def test_a_changed_route_is_replaced_and_the_others_untouched() -> None:
    new = edit('to = "10.0.0.0/8"\ntype = "blackhole"', 'to = "10.0.0.0/8"\ntype = "reject"')
    assert steps(cfg(), new) == [(ROUTE_DEL, "red", "10.0.0.0/8"), (ROUTE_ADD, "red", "10.0.0.0/8")]
    gone = edit('[[vnets.red.routes]]\nto = "10.0.0.0/8"\ntype = "blackhole"\n', "")
    assert steps(cfg(), gone) == [(ROUTE_DEL, "red", "10.0.0.0/8")]


def test_sysctl_changes_set_only_what_differs_and_reset_what_is_gone() -> None:
    new = edit('sysctl = { "net.inet.ip.ttl" = 40 }', 'sysctl = { "net.inet.ip.ttl" = 41 }')
    assert steps(cfg(), new) == [(SYSCTL, "red", "net.inet.ip.ttl")]
    assert plan(cfg(), new).steps[0].new == 41
    reset = edit('sysctl = { "net.inet.ip.ttl" = 40 }', "forwarding = false")
    result = plan(cfg(), reset).steps
    assert [(s.target, s.new) for s in result] == [
        ("net.inet.ip.forwarding", False),
        ("net.inet6.ip6.forwarding", False),
        ("net.inet.ip.ttl", None),  # None: back to the default
    ]


def test_a_parents_sysctl_change_reaches_its_children() -> None:
    text = BASE + '[vnets."red/kid"]\n'
    new = edit('"net.inet.ip.ttl" = 40', '"net.inet.ip.ttl" = 50', text)
    assert steps(cfg(text), new) == [
        (SYSCTL, "red", "net.inet.ip.ttl"),
        (SYSCTL, "red/kid", "net.inet.ip.ttl"),
    ]
    assert overlay(new)["red/kid"]["net.inet.ip.ttl"] == 50


def test_addresses_and_mtu_change_in_place() -> None:
    new = edit(
        'addresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]',
        'addresses = ["203.0.113.1/30", "2001:db8:ee::1/64"]\nmtu = 1400',
    )
    assert steps(cfg(), new) == [
        (ADDRESS_DEL, "red", "ep0"),
        (MTU, "red", "ep0"),
        (ADDRESS_ADD, "red", "ep0"),
    ]
    result = plan(cfg(), new).steps
    assert (result[0].old, result[2].new) == (
        ipaddress.ip_interface("2001:db8:ff::1/64"),
        ipaddress.ip_interface("2001:db8:ee::1/64"),
    )


def test_a_changed_host_recreates_the_tap_and_its_routes() -> None:
    text = BASE.replace(
        '[[vnets.red.routes]]\nto = "10.0.0.0/8"',
        '[[vnets.red.routes]]\nto = "172.16.0.0/12"\nvia = "192.0.2.2"\n\n'
        '[[vnets.red.routes]]\nto = "10.0.0.0/8"',
    )
    new = edit('host = { netns = "h1"', 'host = { netns = "h9"', text)
    assert steps(cfg(text), new) == [
        (ROUTE_DEL, "red", "172.16.0.0/12"),
        (INTERFACE_DESTROY, "red", "tap0"),
        (INTERFACE_CREATE, "red", "tap0"),
        (ROUTE_ADD, "red", "172.16.0.0/12"),
    ]


def test_a_changed_epair_end_recreates_the_whole_epair_once() -> None:
    new = edit(
        'peer = "red:ep0"\naddresses = ["203.0.113.2/30", "2001:db8:ff::2/64"]',
        'peer = "red:ep0"\nmac = "02:00:00:00:00:99"\n'
        'addresses = ["203.0.113.2/30", "2001:db8:ff::2/64"]',
    )
    assert steps(cfg(), new) == [
        (ROUTE_DEL, "red", "198.51.100.0/24"),
        (ROUTE_DEL, "blue", "192.0.2.0/24"),
        (INTERFACE_DESTROY, "blue", "ep0"),
        (EPAIR_CREATE, "blue", "ep0"),
        (ROUTE_ADD, "red", "198.51.100.0/24"),
        (ROUTE_ADD, "blue", "192.0.2.0/24"),
    ]


def test_firewall_ruleset_and_enable_changes() -> None:
    new = edit('action = "block"\nproto = "udp"', 'action = "block"\nproto = "tcp"')
    assert steps(cfg(), new) == [(RULESET, "blue", "")]
    off = edit("enable = true", "enable = false")
    assert steps(cfg(), off) == [(SYSCTL, "blue", "net.pf.enable")]


def test_router_advertisement_changes_in_place() -> None:
    new = edit(
        'peer = "blue:ep0"\naddresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]',
        'peer = "blue:ep0"\nra = true\naddresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]',
    )
    assert steps(cfg(), new) == [(RA, "red", "ep0")]


def test_dhcp6_server_changes_in_place_with_the_o_flag_of_its_advertisements() -> None:
    ra = edit(
        'peer = "blue:ep0"\naddresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]',
        'peer = "blue:ep0"\nra = true\naddresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]',
    )
    text = BASE.replace(
        'peer = "blue:ep0"\naddresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]',
        'peer = "blue:ep0"\nra = true\ndhcp6 = { dns = ["2001:db8:ff::53"] }\n'
        'addresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]',
    )
    assert steps(ra, cfg(text)) == [(RA, "red", "ep0"), (DHCP6, "red", "ep0")]


def test_fixed_daemon_settings_are_refused_and_log_level_changes_live() -> None:
    moved = edit('control_socket = "/run/t/control.sock"', 'control_socket = "/run/u/c.sock"')
    refused = plan(cfg(), moved).refused
    assert refused == (
        "daemon.control_socket: cannot change while vrouterd runs (/run/t/control.sock -> "
        "/run/u/c.sock); restart vrouterd to apply it",
    )
    loud = edit('state_dir = "/run/t"', 'state_dir = "/run/t"\nlog_level = "debug"')
    assert steps(cfg(), loud) == [(LOG_LEVEL, "", "")]


def test_every_config_field_is_known_to_the_plan() -> None:
    """A new config setting must be taught to reload (changed live, re-created, or refused)."""
    known = {
        VnetConfig: {
            "name",
            "forwarding",
            "interfaces",
            "routes",
            "sysctl",
            "firewall",
            "mirror",
            "permissions",
            "worker",  # a move between workers is refused by the front (vrouter.daemon.front)
            "dhcp",
        },
        FirewallConfig: {"enable", "max_states", "ruleset"},
        RouteConfig: {"prefix", "type", "via", "interface", "distance", "paths", "weights"},
    }
    for kind, names in known.items():
        assert {f.name for f in dataclasses.fields(kind)} == names, kind.__name__


def test_a_dhcp_server_is_started_changed_and_stopped_in_place() -> None:
    pool = '[vnets.red.dhcp.pools."192.0.2.0/24"]\nrange = ["192.0.2.10", "192.0.2.20"]\n'
    served = cfg(BASE + pool)
    assert steps(cfg(), served) == [(DHCP, "red", "")]
    changed = cfg(BASE + pool.replace('"192.0.2.20"', '"192.0.2.30"'))
    [step] = plan(served, changed).steps
    assert step.action == DHCP and step.old == served.vnets[0].dhcp
    assert str(step) == "vnet red: dhcp server on"
    assert steps(served, cfg()) == [(DHCP, "red", "")]
    assert steps(served, served) == []


def test_an_offload_change_recreates_the_tap() -> None:
    new = edit(
        'type = "tap"\naddresses = ["192.0.2.1/24"]',
        'type = "tap"\noffload = false\naddresses = ["192.0.2.1/24"]',
    )
    assert steps(cfg(), new) == [
        (INTERFACE_DESTROY, "red", "tap0"),
        (INTERFACE_CREATE, "red", "tap0"),
    ]


# -- applying it -----------------------------------------------------------------------------

NO_TAP = BASE.replace(
    """[vnets.red.interfaces.tap0]
type = "tap"
addresses = ["192.0.2.1/24"]
host = { netns = "h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }
""",
    "",
).replace('to = "192.0.2.0/24"\nvia = "203.0.113.1"', 'to = "192.0.2.0/24"\ntype = "reject"')


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def start(config: Config, loop: asyncio.AbstractEventLoop) -> Ops:
    """Build ``config`` as vrouterd starts it, without devices (epairs only)."""
    driver = Driver(loop)
    built = build.build(config, driver.now())
    for vnet in built.tree:
        driver.attach_vnet(vnet)
    for a, b in built.epairs:
        driver.add_epair(a, b)
    for vcfg in config.vnets:
        build.bring_up(built.tree.get(vcfg.name), list(vcfg.interfaces), driver.now())
    return Ops(built.tree, driver)


def state(ops: Ops) -> dict[str, Any]:
    """Return what a config decides about the running vnets, comparable across builds."""
    sysctl = ops.tree.registry.sysctl()
    result: dict[str, Any] = {}
    for vnet in ops.tree:
        ruleset = vnet.firewall.fw.ruleset
        result[vnet.name] = {
            "parent": vnet.parent.name if vnet.parent else None,
            "interfaces": {
                ifp.name: (ifp.kind, ifp.mac, ifp.mtu, ifp.up, ifp.all_addresses())
                for ifp in vnet.link.interfaces.values()
            },
            "routes": sorted(
                (
                    str(r.prefix),
                    r.type,
                    r.gateway,
                    r.ifnet.name if r.ifnet else None,
                    r.source,
                    tuple((n.gateway, n.ifnet.name, n.weight) for n in r.nexthops),
                )
                for fib in (vnet.route.fib, vnet.route.fib6)
                for r in fib
            ),
            "sysctl": sysctl.snapshot(vnet),
            "ruleset": (ruleset.rules, ruleset.default),
            "ra": {name: ra.settings for name, ra in vnet.inet6.ra.items()},
            "bridges": {
                name: [(p.ifnet.name, p.pvid, p.tagged, p.path_cost, p.priority)
                       for p in br.ports.values()]
                + [br.stp.settings if br.stp is not None else None]
                for name, br in vnet.link.bridge.bridges.items()
            },
            "vlans": sorted((key, v.ifnet.name) for key, v in vnet.link.vlans.items()),
        }
    result["epairs"] = sorted(
        tuple(sorted((f"{e.a.vnet.name}:{e.a.name}", f"{e.b.vnet.name}:{e.b.name}")))
        for e in ops.driver.epairs
    )
    return result


CHANGES = {
    "add a vnet": NO_TAP + '[vnets."blue/kid"]\nsysctl = { "net.inet.ip.ttl" = 7 }\n',
    "remove a vnet": NO_TAP.replace('peer = "blue:ep0"', 'peer = "green:ep0"')
    .replace('peer = "red:ep0"', 'peer = "red:ep0"\nmtu = 1400')
    .replace("[vnets.blue.interfaces.ep0]", "[vnets.green.interfaces.ep0]")
    .replace("[[vnets.blue.routes]]", "[[vnets.green.routes]]")
    .replace("[vnets.blue.firewall]", "[vnets.green.firewall]")
    .replace("[[vnets.blue.firewall.rules]]", "[[vnets.green.firewall.rules]]"),
    "route, sysctl, address": NO_TAP.replace('"net.inet.ip.ttl" = 40', '"net.inet.ip.ttl" = 41')
    .replace('type = "blackhole"', 'type = "reject"')
    .replace('"2001:db8:ff::1/64"]', '"2001:db8:ff::1/64", "198.18.0.1/24"]'),
    "a multipath route": NO_TAP.replace('type = "blackhole"', 'type = "reject"')
    + """
[[vnets.red.routes]]
to = "2001:db8:aa::/48"
via = ["2001:db8:ff::2", "2001:db8:ff::3"]
""",
    "a weighted multipath route": NO_TAP.replace(
        '"net.inet.ip.ttl" = 40', '"net.inet.ip.ttl" = 41'
    ).replace('type = "blackhole"', 'type = "reject"')
    + """
[[vnets.red.routes]]
to = "2001:db8:aa::/48"
via = ["2001:db8:ff::2 weight 3", "2001:db8:ff::3"]
""",
    "firewall and ra": NO_TAP.replace('proto = "udp"', 'proto = "icmp"').replace(
        'peer = "blue:ep0"', 'peer = "blue:ep0"\nra = true'
    ),
    "bridge and vlans": NO_TAP
    + """
[vnets.red.interfaces.ep2]
type = "epair"
peer = "blue:ep2"
[vnets.red.interfaces.br0]
type = "bridge"
members = ["ep1", "ep2"]
vlan_filtering = true
addresses = ["198.18.1.1/24"]
[vnets.red.interfaces.br0.ports.ep2]
pvid = 0
tagged = [5]
[vnets.red.interfaces."br0.5"]
type = "vlan"
parent = "br0"
vid = 5
addresses = ["198.18.5.1/24"]
[vnets.red.interfaces.ep1]
type = "epair"
peer = "blue:ep1"
[vnets.blue.interfaces.ep1]
type = "epair"
peer = "red:ep1"
addresses = ["198.18.1.2/24"]
[vnets.blue.interfaces.ep2]
type = "epair"
peer = "red:ep2"
[vnets.blue.interfaces."ep2.5"]
type = "vlan"
parent = "ep2"
vid = 5
addresses = ["198.18.5.2/24"]
""",
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_reload_reaches_what_a_fresh_start_builds_and_back(
    change: str, loop: asyncio.AbstractEventLoop
) -> None:
    old, new = cfg(NO_TAP), cfg(CHANGES[change])
    ops = start(old, loop)
    applied = loop.run_until_complete(apply(ops, old, new))
    assert applied, "the change needs steps"
    assert state(ops) == state(start(new, loop))
    loop.run_until_complete(apply(ops, new, old))
    assert state(ops) == state(start(old, loop))


class Injector:
    """Makes the Nth vnet lookup of a reload fail, once."""

    def __init__(self, ops: Ops, at: int) -> None:
        self.lookup = ops.vnet
        self.at = at
        self.calls = 0
        self.fired = False

    def __call__(self, name: str) -> Any:
        self.calls += 1
        if self.calls == self.at and not self.fired:
            self.fired = True
            raise OpError(f"injected failure in vnet {name}")
        return self.lookup(name)


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_failing_step_rolls_every_applied_step_back(
    change: str, loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = cfg(NO_TAP), cfg(CHANGES[change])
    ops = start(old, loop)
    before = state(ops)
    lookup = ops.vnet
    for at in range(1, 200):
        injector = Injector(ops, at)
        monkeypatch.setattr(ops, "vnet", injector)
        try:
            loop.run_until_complete(apply(ops, old, new))
        except ReloadError as err:
            assert "injected failure" in str(err)
            assert state(ops) == before, f"not rolled back after a failure at lookup {at}"
            continue
        finally:
            monkeypatch.setattr(ops, "vnet", lookup)
        assert not injector.fired
        assert state(ops) == state(start(new, loop)), "past the last lookup the reload succeeds"
        break
    assert at > 2, "failures were injected at several points"


def test_a_refused_reload_changes_nothing(loop: asyncio.AbstractEventLoop) -> None:
    old = cfg(NO_TAP)
    new = cfg(NO_TAP.replace('state_dir = "/run/t"', 'state_dir = "/run/x"'))
    ops = start(old, loop)
    before = state(ops)
    with pytest.raises(ReloadError, match=r"test.toml: daemon.state_dir: cannot change"):
        loop.run_until_complete(apply(ops, old, new))
    assert state(ops) == before


def test_unchanged_objects_are_the_same_objects(loop: asyncio.AbstractEventLoop) -> None:
    old, new = cfg(NO_TAP), cfg(CHANGES["route, sysctl, address"])
    ops = start(old, loop)
    blue = ops.vnet("blue")
    ifp = blue.link.interfaces["ep0"]
    epair = ops.driver.epairs[0]
    states = blue.firewall.fw.states
    ruleset = blue.firewall.fw.ruleset
    loop.run_until_complete(apply(ops, old, new))
    assert ops.vnet("blue") is blue and blue.link.interfaces["ep0"] is ifp
    assert ops.driver.epairs == [epair]
    assert blue.firewall.fw.states is states and blue.firewall.fw.ruleset is ruleset


def test_an_unexpected_error_is_rolled_back_and_reported(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = cfg(NO_TAP), cfg(CHANGES["route, sysctl, address"])
    ops = start(old, loop)
    before = state(ops)

    add_route = ops.add_route

    def broken(*args: Any) -> Any:
        monkeypatch.setattr(ops, "add_route", add_route)  # once: the rollback adds routes
        raise KeyError("bug")

    monkeypatch.setattr(ops, "add_route", broken)  # the last steps add routes
    with pytest.raises(ReloadError, match=r"vnet red: add route 10.0.0.0/8: internal error"):
        loop.run_until_complete(apply(ops, old, new))
    monkeypatch.undo()
    assert state(ops) == before


VXLAN_SEGMENT = """
[daemon]
control_socket = "/nonexistent/control.sock"
state_dir = "/nonexistent"
[vnets.lab.interfaces.ep1]
type = "epair"
peer = "other:ep1"
mtu = 1450
[vnets.other.interfaces.ep1]
type = "epair"
peer = "lab:ep1"
[vnets.lab.interfaces.vx42]
type = "vxlan"
vni = 42
local = "127.0.0.1"
port = PORT
remotes = ["127.0.0.2"]
[vnets.lab.interfaces.br0]
type = "bridge"
members = ["ep1", "vx42"]
mtu = 1450
"""


def test_a_changed_vxlan_member_is_recreated_and_rejoins_its_bridge(
    loop: asyncio.AbstractEventLoop,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = VXLAN_SEGMENT.replace("PORT", str(port))
    old = cfg(text)
    new = cfg(text.replace('remotes = ["127.0.0.2"]', 'remotes = ["127.0.0.3"]'))
    ops = start(old, loop)
    try:
        loop.run_until_complete(apply(ops, old, new))
        lab = ops.vnet("lab")
        assert [p.ifnet.name for p in lab.link.bridge.bridges["br0"].ports.values()] == [
            "ep1",
            "vx42",
        ]
        assert lab.link.vxlans["vx42"].flood_to == ("127.0.0.3",)
        assert [d.vx.ifnet for d in ops.driver.vxlans.values()] == [lab.link.get("vx42")]
    finally:
        ops.driver.close()


STP_OFF = NO_TAP + """
[vnets.red.interfaces.ep1]
type = "epair"
peer = "blue:ep1"
[vnets.red.interfaces.ep2]
type = "epair"
peer = "blue:ep2"
[vnets.red.interfaces.br0]
type = "bridge"
members = ["ep1", "ep2"]
addresses = ["198.18.1.1/24"]
[vnets.blue.interfaces.ep1]
type = "epair"
peer = "red:ep1"
addresses = ["198.18.1.2/24"]
[vnets.blue.interfaces.ep2]
type = "epair"
peer = "red:ep2"
"""
STP_ON = (
    STP_OFF.replace(
        'members = ["ep1", "ep2"]',
        'members = ["ep1", "ep2"]\nstp = true\npriority = 4096\nforward_delay = 4\nmax_age = 6',
    )
    + "[vnets.red.interfaces.br0.ports.ep2]\npath_cost = 250\nport_priority = 8\n"
)


def test_spanning_tree_turns_on_and_off_in_place(loop: asyncio.AbstractEventLoop) -> None:
    old, new = cfg(STP_OFF), cfg(STP_ON)
    assert steps(old, new) == [(STP, "red", "br0")]
    ops = start(old, loop)
    bridge = ops.vnet("red").link.bridge.bridges["br0"]
    loop.run_until_complete(apply(ops, old, new))
    assert ops.vnet("red").link.bridge.bridges["br0"] is bridge
    assert bridge.stp is not None and bridge.stp.settings.priority == 4096
    assert bridge.stp.settings.forward_delay == 4
    assert bridge.ports["ep2"].stp is not None and bridge.ports["ep2"].stp.path_cost == 250
    assert bridge.ports["ep2"].stp.priority == 8
    assert state(ops) == state(start(new, loop))
    loop.run_until_complete(apply(ops, new, old))
    assert bridge.stp is None and all(p.forwarding for p in bridge.ports.values())
    assert state(ops) == state(start(old, loop))


def test_spanning_tree_keys_are_checked() -> None:
    text = STP_OFF.replace(
        'members = ["ep1", "ep2"]',
        'members = ["ep1", "ep2"]\nstp = true\npriority = 70000\nhello_time = 0\n'
        "max_age = 41\nforward_delay = 1",
    ) + "[vnets.red.interfaces.br0.ports.ep2]\npath_cost = 0\nport_priority = 64\n"
    with pytest.raises(ConfigError) as info:
        cfg(text)
    assert [f"{p.key}: {p.reason}" for p in info.value.problems] == [
        "vnets.red.interfaces.br0.hello_time: hello_time 0 is out of range 1..10 seconds",
        "vnets.red.interfaces.br0.max_age: max_age 41 is out of range 6..40 seconds",
        "vnets.red.interfaces.br0.forward_delay: forward_delay 1 is out of range 2..30 seconds",
        "vnets.red.interfaces.br0.priority: priority 70000 is out of range 0..65535",
        "vnets.red.interfaces.br0.ports.ep2.path_cost: path_cost 0 is out of range 1..65535",
        "vnets.red.interfaces.br0.ports.ep2.port_priority: "
        "port_priority 64 is out of range 0..63",
    ]
    relation = STP_OFF.replace(  # each in range, but max_age > 2 x (forward_delay - 1)
        'members = ["ep1", "ep2"]', 'members = ["ep1", "ep2"]\nstp = true\nforward_delay = 4'
    )
    with pytest.raises(ConfigError) as info:
        cfg(relation)
    assert [f"{p.key}: {p.reason}" for p in info.value.problems] == [
        "vnets.red.interfaces.br0.max_age: max_age 20 is more than 2 x (forward_delay 4 - 1) = 6: "
        "802.1D asks 2 x (forward_delay - 1) >= max_age >= 2 x (hello_time + 1) "
        "(hello_time 2, max_age 20, forward_delay 4; change them together)"
    ]
    short = relation.replace("forward_delay = 4", "hello_time = 4\nmax_age = 8")
    with pytest.raises(ConfigError, match=r"br0\.max_age: max_age 8 is less than 2 x "
                       r"\(hello_time 4 \+ 1\) = 10"):  # fmt: skip
        cfg(short)
    no_stp = STP_OFF.replace('members = ["ep1", "ep2"]', 'members = ["ep1", "ep2"]\nmax_age = 8')
    with pytest.raises(ConfigError, match=r"br0\.max_age: max_age needs stp = true"):
        cfg(no_stp)


RSTP_ON = STP_ON.replace("stp = true\n", 'stp = true\nstp_protocol = "rstp"\n') + (
    "edge = true\n[vnets.red.interfaces.br0.ports.ep1]\nauto_edge = false\n"
)


def test_the_spanning_tree_protocol_and_edge_settings_change_in_place(
    loop: asyncio.AbstractEventLoop,
) -> None:
    old, new = cfg(STP_ON), cfg(RSTP_ON)
    assert steps(old, new) == [(STP, "red", "br0")]
    ops = start(old, loop)
    bridge = ops.vnet("red").link.bridge.bridges["br0"]
    assert bridge.stp is not None and bridge.stp.protocol == "stp"
    loop.run_until_complete(apply(ops, old, new))
    assert ops.vnet("red").link.bridge.bridges["br0"] is bridge
    assert bridge.stp is not None and bridge.stp.protocol == "rstp"
    assert bridge.ports["ep2"].edge and not bridge.ports["ep1"].auto_edge
    sp = bridge.ports["ep2"].stp
    assert sp is not None and sp.describe(0.0)["admin_edge"] is True
    assert state(ops) == state(start(new, loop))
    loop.run_until_complete(apply(ops, new, old))
    assert bridge.stp is not None and bridge.stp.protocol == "stp"
    assert not bridge.ports["ep2"].edge and bridge.ports["ep1"].auto_edge


def test_the_spanning_tree_protocol_is_checked() -> None:
    bad = STP_ON.replace("stp = true\n", 'stp = true\nstp_protocol = "mstp"\n')
    with pytest.raises(ConfigError) as info:
        cfg(bad)
    assert [f"{p.key}: {p.reason}" for p in info.value.problems] == [
        "vnets.red.interfaces.br0.stp_protocol: stp_protocol 'mstp' is not one of stp, rstp"
    ]
    off = STP_OFF.replace(
        'members = ["ep1", "ep2"]', 'members = ["ep1", "ep2"]\nstp_protocol = "rstp"'
    )
    with pytest.raises(ConfigError, match=r"br0\.stp_protocol: stp_protocol needs stp = true"):
        cfg(off)
    edge = STP_ON + "edge = 1\n"
    with pytest.raises(ConfigError, match=r"br0\.ports\.ep2\.edge"):
        cfg(edge)
