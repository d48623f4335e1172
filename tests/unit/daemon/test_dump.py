"""config dump and diff: the running state as a config file, compared with a file.

The daemon's side is exercised on vnets built from a config (sans-IO, as the
daemon builds them) and then changed the way the control API changes them;
tests/integration/test_config_dump.py does it through vrouterctl.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from vrouter.core.errors import OpError
from vrouter.daemon import dump
from vrouter.daemon.build import Built, bring_up, build, derive_mac
from vrouter.daemon.config import Config, parse
from vrouter.firewall import subsystem as firewall
from vrouter.firewall.ruleparse import parse_ruleset
from vrouter.inet import ipv4
from vrouter.route import state as route_state
from vrouter.route.source import source

RICH = """
[daemon]
control_socket = "/run/vrouter-test/control.sock"
state_dir = "/run/vrouter-test"
log_level = "debug"
metrics = "[::1]:9585"
metrics_exclude = ["vrouter_tcp_*"]
admins = ["uid:0"]
sparse_first = false
busy_poll = 50
[[daemon.socks]]
vnet = "blue"
listen = "127.0.0.1:1080"
username = "ops"
password = "secret"

[vnets.red]
[vnets.red.limits]
routes = 1000
states = 500
[vnets.red.sysctl]
"net.inet.ip.ttl" = 32
"net.inet6.ip6.forwarding" = false
[vnets.red.permissions]
manage = ["uid:1000"]
sockets = ["gid:1000"]
[vnets.red.interfaces.t0]
type = "tap"
addresses = ["2001:db8:1::1/64", "192.0.2.1/24"]
mtu = 1400
mac = "02:00:5e:00:53:01"
host = { netns = "vr-test-h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }
[vnets.red.interfaces.t0.ra]
interval = 30
rdnss = ["2001:db8:1::53"]
[vnets.red.interfaces.t0.dhcp6]
dns = ["2001:db8:1::53"]
domains = ["example.com"]
[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30", "fe80::1/64"]
[vnets.red.interfaces.t1]
type = "tap"
offload = false
up = false
[vnets.red.interfaces.t2]
type = "tap"
[vnets.red.interfaces.br0]
type = "bridge"
members = ["t1", "t2"]
vlan_filtering = true
addresses = ["198.18.0.1/24"]
[vnets.red.interfaces.br0.ports.t2]
tagged = [10, 20]
storm_pps = 100
[[vnets.red.interfaces.br0.fdb]]
mac = "02:00:5e:00:53:99"
port = "t2"
vid = 10
[vnets.red.interfaces.vx42]
type = "vxlan"
vni = 42
local = "198.51.100.1"
remotes = ["198.51.100.2"]
learning = false
underlay = "blue"
[vnets.red.interfaces.br1]
type = "bridge"
members = ["vx42"]
mtu = 1450
[vnets.red.interfaces."br0.10"]
type = "vlan"
parent = "br0"
vid = 10
addresses = ["198.18.10.1/24"]
[[vnets.red.routes]]
to = "198.51.100.0/24"
via = "203.0.113.2"
[[vnets.red.routes]]
to = "2001:db8:99::/48"
type = "blackhole"
[[vnets.red.routes]]
to = "198.51.200.0/24"
via = "203.0.113.2"
interface = "ep0"
distance = 200
[vnets.red.firewall]
enable = true
max_states = 400
default = "block"
[vnets.red.firewall.tables]
inside = ["192.0.2.0/24"]
[[vnets.red.firewall.rules]]
action = "pass"
from = "<inside>"
label = "out"
[[vnets.red.firewall.nat]]
action = "nat"
interface = "ep0"
from = "192.0.2.0/24"

[vnets.blue]
forwarding = false
[vnets.blue.mirror]
sync = ["ospf"]
vrf_dir = "/run/vrouter-vrfs"
[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30"]
[vnets.blue.interfaces.lan0]
type = "tap"
addresses = ["198.51.100.1/24"]
[vnets.blue.dhcp]
lease_time = 600
[vnets.blue.dhcp.pools."198.51.100.0/24"]
range = ["198.51.100.100", "198.51.100.199"]
router = "198.51.100.1"
static = [{ mac = "02:00:5e:00:53:10", address = "198.51.100.10" }]
[vnets."blue/kid"]
[vnets."blue/kid".sysctl]
"net.inet.ip.ttl" = 7
[vnets."blue/kid".interfaces.wan0]
type = "tap"
dhcp = true
"""


def running(config: Config) -> tuple[Built, list[tuple[str, Any]]]:
    """Build ``config`` as the daemon does; return it and its vnets as it runs them."""
    built = build(config, 0.0)
    built.tree.set_policy(config.policy())
    for vcfg in config.vnets:
        bring_up(built.tree.get(vcfg.name), list(vcfg.interfaces), 0.0)
    return built, now(built, config)


def now(built: Built, config: Config) -> list[tuple[str, Any]]:
    hosts = {i.name: i.host for v in config.vnets for i in v.interfaces if i.host is not None}
    return list(dump.running_vnets(built.tree, config, built.epairs, hosts))


def file_doc(config: Config) -> dict[str, Any]:
    return dump.document(config.daemon, dump.file_vnets(config))


def test_a_dump_parses_and_dumps_the_same() -> None:
    config = parse(RICH, "rich.toml")
    text = dump.render(file_doc(config))
    again = parse(text, "dump.toml")  # what vrouterd --check does
    assert dump.render(file_doc(again)) == text
    assert text.startswith("# The running configuration of vrouterd")
    assert "sparse_first = false" in text and again.daemon.sparse_first is False
    assert "busy_poll = 50" in text and again.daemon.busy_poll == 50


def test_a_daemon_built_from_a_file_runs_what_the_file_says() -> None:
    config = parse(RICH, "rich.toml")
    _, vnets = running(config)
    doc = dump.document(config.daemon, vnets)
    assert dump.differences(file_doc(config), doc) == []
    red = doc["vnets"]["red"]
    assert red["interfaces"]["ep0"]["addresses"] == ["203.0.113.1/30", "fe80::1/64"]
    assert "addresses" not in red["interfaces"]["t1"], "no automatic link-local address"
    assert red["interfaces"]["t0"]["addresses"] == ["192.0.2.1/24", "2001:db8:1::1/64"]
    assert red["routes"][0] == {"to": "198.51.100.0/24", "via": "203.0.113.2", "interface": "ep0"}
    assert red["sysctl"] == {"net.inet.ip.ttl": 32, "net.inet6.ip6.forwarding": False,
                             "net.inet.ip.forwarding": True}  # fmt: skip
    assert red["firewall"]["max_states"] == 400 and red["firewall"]["default"] == "block"
    assert red["interfaces"]["vx42"]["underlay"] == "blue"
    assert red["interfaces"]["br0"]["fdb"] == [
        {"mac": "02:00:5e:00:53:99", "port": "t2", "vid": 10}
    ]
    kid = doc["vnets"]["blue/kid"]
    assert kid["sysctl"] == {"net.inet.ip.ttl": 7}
    assert kid["interfaces"]["wan0"] == {"type": "tap", "dhcp": True}
    assert doc["vnets"]["blue"]["dhcp"]["pools"]["198.51.100.0/24"]["router"] == "198.51.100.1"


def test_changes_made_at_run_time_show_in_the_dump_and_the_diff() -> None:
    config = parse(RICH, "rich.toml")
    built, _ = running(config)
    tree = built.tree
    red = tree.get("red")
    lab = tree.create("lab")
    lab.inet.ttl = 9
    route_state.add_static(
        red, ipaddress.ip_network("203.0.113.128/25"), via=ipaddress.ip_address("203.0.113.2")
    )
    route_state.add_static(  # a routing daemon's: not configuration
        red,
        ipaddress.ip_network("203.0.113.64/26"),
        via=ipaddress.ip_address("203.0.113.2"),
        source=source("rip"),
    )
    kid = tree.get("blue/kid")  # the address its DHCP client leased: not configuration
    ipv4.add_address(kid, kid.link.get("wan0"), ipaddress.IPv4Interface("203.0.113.77/24"), 0.0)
    ruleset = parse_ruleset({"default": "pass", "rules": [{"action": "block", "proto": "udp"}]})
    firewall.replace_ruleset(tree.get("blue"), ruleset)
    doc = dump.document(config.daemon, now(built, config))
    lines = dump.differences(file_doc(config), doc)
    assert "+ vnets.lab.forwarding = true" in lines
    assert '+ vnets.lab.sysctl."net.inet.ip.ttl" = 9' in lines
    assert (
        "+ vnets.red.routes[203.0.113.128/25] = "
        '{ to = "203.0.113.128/25", via = "203.0.113.2", interface = "ep0" }'
    ) in lines
    assert not any("203.0.113.64/26" in line or "wan0" in line for line in lines)
    assert "+ vnets.blue.firewall.enable = false" in lines
    assert any(line.startswith("+ vnets.blue.firewall.rules[0] = ") for line in lines)
    text = dump.render(doc)
    again = parse(text, "dump.toml")
    _, vnets = running(again)
    assert dump.render(dump.document(again.daemon, vnets)) == text
    assert dump.differences(file_doc(again), doc) == []


def test_differences_name_each_key_with_a_sign() -> None:
    old = {"vnets": {"a": {"forwarding": True, "routes": [{"to": "192.0.2.0/24", "via": "x"}]}}}
    new = {"vnets": {"a": {"forwarding": False, "routes": []}, "b": {"forwarding": True}}}
    assert dump.differences(old, new) == [
        "~ vnets.a.forwarding = true -> false",
        '- vnets.a.routes[192.0.2.0/24] = { to = "192.0.2.0/24", via = "x" }',
        "+ vnets.b.forwarding = true",
    ]
    assert dump.differences(old, old) == []


def test_diff_with_a_bad_file_names_its_problems() -> None:
    config = parse(RICH, "rich.toml")
    _, vnets = running(config)
    with pytest.raises(OpError, match=r"bad\.toml: vnets\.x\.bogus: unknown key"):
        dump.diff_reply(config, vnets, "[vnets.x]\nbogus = 1\n", "bad.toml")
    reply = dump.diff_reply(config, vnets, RICH, "again.toml")
    assert reply == {"file": "again.toml", "differences": []}


def test_macs_derived_with_the_installations_seed_are_no_setting() -> None:
    config = parse(RICH, "rich.toml")
    built = build(config, 0.0, bytes(range(16)))
    built.tree.set_policy(config.policy())
    for vcfg in config.vnets:
        bring_up(built.tree.get(vcfg.name), list(vcfg.interfaces), 0.0)
    doc = dump.document(config.daemon, now(built, config))
    assert dump.differences(file_doc(config), doc) == []
    t1 = built.tree.get("red").link.get("t1")
    assert t1.mac == derive_mac("red", "t1", bytes(range(16))) != derive_mac("red", "t1")
    assert built.tree.get("red").link.get("t0").mac.hex(":") == "02:00:5e:00:53:01"  # set


TWO_TAPS = """
[vnets.red.interfaces.t0]
type = "tap"
addresses = ["192.0.2.1/24"]
[vnets.red.interfaces.t1]
type = "tap"
addresses = ["198.51.100.1/24"]
"""
"""A vnet with two TAPs on 192.0.2.0/24 and 198.51.100.0/24, for multipath routes."""


def test_a_weighted_multipath_route_is_dumped_with_its_weights() -> None:
    text = TWO_TAPS + """
[[vnets.red.routes]]
to = "203.0.113.0/24"
via = ["192.0.2.9 weight 3", "198.51.100.9"]
"""
    config = parse(text, "ecmp.toml")
    dumped = dump.render(file_doc(config))
    assert '"192.0.2.9 weight 3",\n    "198.51.100.9",' in dumped, dumped
    [route] = parse(dumped, "dump.toml").vnets[0].routes
    assert route == config.vnets[0].routes[0]


def test_a_running_multipath_route_is_dumped_with_its_paths_and_weights() -> None:
    text = TWO_TAPS + """
[[vnets.red.routes]]
to = "203.0.113.0/24"
via = ["192.0.2.9 weight 3", "198.51.100.9"]
[[vnets.red.routes]]
to = "203.0.113.128/25"
via = ["192.0.2.7", "192.0.2.8"]
interface = "t0"
"""
    config = parse(text, "ecmp.toml")
    _, vnets = running(config)
    doc = dump.document(config.daemon, vnets)
    assert doc["vnets"]["red"]["routes"][0] == {
        "to": "203.0.113.0/24",
        "via": ["192.0.2.9 weight 3", "198.51.100.9"],
    }
    assert dump.differences(file_doc(config), doc) == []
    again = parse(dump.render(doc), "dump.toml")
    assert again.vnets[0].routes == config.vnets[0].routes
