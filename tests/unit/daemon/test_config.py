"""Tests for vrouter.daemon.config: valid files parse, invalid ones report every problem."""

from __future__ import annotations

import dataclasses
import textwrap
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from vrouter.daemon.config import (
    DEFAULT_VNET,
    Config,
    ConfigError,
    ConfigProblem,
    DaemonConfig,
    HostConfig,
    InterfaceConfig,
    RouteConfig,
    VnetConfig,
    load,
    parse,
)

FILE = "test.toml"

FULL_EXAMPLE = """
[daemon]
control_socket = "/run/vr/ctl.sock"
state_dir = "/var/lib/vr"
log_level = "debug"

[vnets.red]
forwarding = true

[vnets.red.interfaces.vr-red0]
type = "tap"
addresses = ["192.0.2.1/24", "192.0.2.65/26"]
mtu = 9000
mac = "02:00:5e:00:53:01"
host = { netns = "vr-h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30"]
up = false

[[vnets.red.routes]]
to = "198.51.100.0/24"
via = "203.0.113.2"
[[vnets.red.routes]]
to = "0.0.0.0/0"
interface = "ep0"
[[vnets.red.routes]]
to = "10.0.0.0/8"
via = "203.0.113.2"
interface = "ep0"
[[vnets.red.routes]]
to = "192.0.2.128/25"
type = "blackhole"
[[vnets.red.routes]]
to = "192.0.2.192/26"
type = "reject"

[vnets.blue]
forwarding = false

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30"]

[vnets.blue.interfaces.ep1]
type = "epair"
peer = "lab/r1:ep0"
addresses = ["198.51.100.1/31"]

[vnets."lab/r1".interfaces.ep0]
type = "epair"
peer = "blue:ep1"
addresses = ["198.51.100.0/31"]

[vnets.lab]
"""

FULL_EXPECTED = Config(
    path=FILE,
    daemon=DaemonConfig(
        control_socket="/run/vr/ctl.sock", state_dir="/var/lib/vr", log_level="debug"
    ),
    vnets=(
        VnetConfig(
            name="red",
            forwarding=True,
            interfaces=(
                InterfaceConfig(
                    name="vr-red0",
                    type="tap",
                    addresses=(IPv4Interface("192.0.2.1/24"), IPv4Interface("192.0.2.65/26")),
                    mtu=9000,
                    mac=bytes.fromhex("02005e005301"),
                    up=True,
                    host=HostConfig(
                        netns="vr-h1",
                        addresses=(IPv4Interface("192.0.2.2/24"),),
                        gateway=IPv4Address("192.0.2.1"),
                    ),
                    peer=None,
                ),
                InterfaceConfig(
                    name="ep0",
                    type="epair",
                    addresses=(IPv4Interface("203.0.113.1/30"),),
                    mtu=1500,
                    mac=None,
                    up=False,
                    host=None,
                    peer=("blue", "ep0"),
                ),
            ),
            routes=(
                RouteConfig(
                    IPv4Network("198.51.100.0/24"), "unicast", IPv4Address("203.0.113.2"), None
                ),
                RouteConfig(IPv4Network("0.0.0.0/0"), "unicast", None, "ep0"),
                RouteConfig(
                    IPv4Network("10.0.0.0/8"), "unicast", IPv4Address("203.0.113.2"), "ep0"
                ),
                RouteConfig(IPv4Network("192.0.2.128/25"), "blackhole", None, None),
                RouteConfig(IPv4Network("192.0.2.192/26"), "reject", None, None),
            ),
        ),
        VnetConfig(
            name="blue",
            forwarding=False,
            interfaces=(
                InterfaceConfig(
                    name="ep0",
                    type="epair",
                    addresses=(IPv4Interface("203.0.113.2/30"),),
                    mtu=1500,
                    mac=None,
                    up=True,
                    host=None,
                    peer=("red", "ep0"),
                ),
                InterfaceConfig(
                    name="ep1",
                    type="epair",
                    addresses=(IPv4Interface("198.51.100.1/31"),),
                    mtu=1500,
                    mac=None,
                    up=True,
                    host=None,
                    peer=("lab/r1", "ep0"),
                ),
            ),
            routes=(),
        ),
        VnetConfig(name="lab", forwarding=True, interfaces=(), routes=()),
        VnetConfig(
            name="lab/r1",
            forwarding=True,
            interfaces=(
                InterfaceConfig(
                    name="ep0",
                    type="epair",
                    addresses=(IPv4Interface("198.51.100.0/31"),),
                    mtu=1500,
                    mac=None,
                    up=True,
                    host=None,
                    peer=("blue", "ep1"),
                ),
            ),
            routes=(),
        ),
    ),
)

DEFAULT_DAEMON = DaemonConfig(
    control_socket="/run/vrouter/control.sock", state_dir="/run/vrouter", log_level="info"
)


def _parse(text: str) -> Config:
    return parse(textwrap.dedent(text), FILE)


def _problems(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        _parse(text)
    err = info.value
    assert str(err).startswith(f"{FILE}: ")
    assert all(line.startswith(f"{FILE}: ") for line in str(err).splitlines())
    assert all(p.file == FILE for p in err.problems)
    return err.problems


# --------------------------------------------------------------------------
# Valid files
# --------------------------------------------------------------------------


def test_full_example_parses_into_expected_objects() -> None:
    assert _parse(FULL_EXAMPLE) == FULL_EXPECTED


def test_load_reads_file(tmp_path: Path) -> None:
    path = tmp_path / "vrouter.toml"
    path.write_text(FULL_EXAMPLE, encoding="utf-8")
    config = load(path)
    assert config == dataclasses.replace(FULL_EXPECTED, path=str(path))


def test_empty_file_is_one_empty_default_vnet() -> None:
    assert _parse("") == Config(
        path=FILE,
        daemon=DEFAULT_DAEMON,
        vnets=(VnetConfig(name=DEFAULT_VNET, forwarding=True, interfaces=(), routes=()),),
    )


def test_default_vnet_mode_matches_explicit_vnet0() -> None:
    top_level = """
        forwarding = false
        [interfaces.vr0]
        type = "tap"
        addresses = ["192.0.2.1/24"]
        [[routes]]
        to = "0.0.0.0/0"
        via = "192.0.2.254"
    """
    explicit = """
        [vnets.vnet0]
        forwarding = false
        [vnets.vnet0.interfaces.vr0]
        type = "tap"
        addresses = ["192.0.2.1/24"]
        [[vnets.vnet0.routes]]
        to = "0.0.0.0/0"
        via = "192.0.2.254"
    """
    config = _parse(top_level)
    assert config == _parse(explicit)
    assert config.vnets == (
        VnetConfig(
            name="vnet0",
            forwarding=False,
            interfaces=(
                InterfaceConfig(
                    name="vr0",
                    type="tap",
                    addresses=(IPv4Interface("192.0.2.1/24"),),
                    mtu=1500,
                    mac=None,
                    up=True,
                    host=None,
                    peer=None,
                ),
            ),
            routes=(
                RouteConfig(IPv4Network("0.0.0.0/0"), "unicast", IPv4Address("192.0.2.254"), None),
            ),
        ),
    )


def test_default_vnet_epairs_peer_within_vnet0() -> None:
    config = _parse(
        """
        [interfaces.a]
        type = "epair"
        peer = "vnet0:b"
        [interfaces.b]
        type = "epair"
        peer = "vnet0:a"
        """
    )
    assert [i.peer for i in config.vnets[0].interfaces] == [("vnet0", "b"), ("vnet0", "a")]


def test_empty_vnets_table_configures_no_vnet() -> None:
    assert _parse("[vnets]").vnets == ()


def test_hierarchy_comes_out_parents_first() -> None:
    config = _parse(
        """
        [vnets."lab/r1/x"]
        [vnets.b]
        [vnets."lab/r1"]
        [vnets."lab/r2"]
        [vnets.lab]
        [vnets.a]
        """
    )
    assert [v.name for v in config.vnets] == ["lab", "lab/r1", "lab/r1/x", "b", "lab/r2", "a"]


@pytest.mark.parametrize(
    ("snippet", "attribute", "expected"),
    [
        ("mtu = 68", "mtu", 68),
        ("mtu = 65535", "mtu", 65535),
        ('mac = "0A:00:00:00:00:FF"', "mac", bytes.fromhex("0a00000000ff")),
        ('addresses = ["192.0.2.0/31"]', "addresses", (IPv4Interface("192.0.2.0/31"),)),
        ('addresses = ["192.0.2.7/32"]', "addresses", (IPv4Interface("192.0.2.7/32"),)),
        (
            'addresses = ["192.0.2.1/24", "192.0.2.5/24"]',
            "addresses",
            (IPv4Interface("192.0.2.1/24"), IPv4Interface("192.0.2.5/24")),
        ),
        ("up = false", "up", False),
    ],
)
def test_valid_interface_values(snippet: str, attribute: str, expected: object) -> None:
    config = _parse(f'[interfaces.t0]\ntype = "tap"\n{snippet}\n')
    assert getattr(config.vnets[0].interfaces[0], attribute) == expected


def test_interface_name_with_dot_is_quoted_in_key_path() -> None:
    problems = _problems('[interfaces."eth0.100"]\ntype = "tap"\nmtu = 1\n')
    assert [p.key for p in problems] == ['interfaces."eth0.100".mtu']


def test_config_objects_are_frozen() -> None:
    config = _parse(FULL_EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.vnets[0].name = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------
# One problem each: exact key path, reason mentions the key fact
# --------------------------------------------------------------------------

TAP = '[vnets.red.interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/24"]\n'
EPAIRS = """
[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30"]
[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30"]
"""

SINGLE_PROBLEM_CASES = [
    # unknown keys
    ("unknown top-level key", "foo = 1", "foo", ["unknown key 'foo'", "vnets"]),
    (
        "unknown interface key",
        TAP + "speed = 10\n",
        "vnets.red.interfaces.t0.speed",
        ["unknown key 'speed'", "allowed:", "mtu"],
    ),
    (
        "unknown daemon key",
        "[daemon]\nsocket = '/x'\n",
        "daemon.socket",
        ["unknown key 'socket'", "control_socket"],
    ),
    (
        "unknown route key",
        TAP + '[[vnets.red.routes]]\nprefix = "10.0.0.0/8"\nto = "10.0.0.0/8"\ninterface = "t0"\n',
        "vnets.red.routes[0].prefix",
        ["unknown key 'prefix'", "to"],
    ),
    (
        "unknown host key",
        '[interfaces.t0]\ntype = "tap"\nhost = { netns = "h", gw = "1.2.3.4" }\n',
        "interfaces.t0.host.gw",
        ["unknown key 'gw'", "gateway"],
    ),
    (
        "nested vnet written as dotted table",
        "[vnets.lab]\n[vnets.lab.r1]\n",
        "vnets.lab.r1",
        ["unknown key 'r1'", '[vnets."lab/r1"]'],
    ),
    # addresses
    (
        "prefix length 33",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/33"]\n',
        "interfaces.t0.addresses[0]",
        ["192.0.2.1/33", "33", "0..32"],
    ),
    (
        "octet out of range",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["300.1.1.1/24"]\n',
        "interfaces.t0.addresses[0]",
        ["300.1.1.1/24", "invalid IPv4 address"],
    ),
    (
        "address without prefix length",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1"]\n',
        "interfaces.t0.addresses[0]",
        ["no prefix length"],
    ),
    (
        "netmask instead of prefix length",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/255.255.255.0"]\n',
        "interfaces.t0.addresses[0]",
        ["ADDRESS/PREFIXLEN"],
    ),
    (
        "network address as interface address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/24", "192.0.2.0/24"]\n',
        "interfaces.t0.addresses[1]",
        ["network address of 192.0.2.0/24"],
    ),
    (
        "broadcast address as interface address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.255/24"]\n',
        "interfaces.t0.addresses[0]",
        ["broadcast address of 192.0.2.0/24"],
    ),
    (
        "multicast interface address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["224.0.0.5/32"]\n',
        "interfaces.t0.addresses[0]",
        ["multicast"],
    ),
    (
        "IPv6 interface address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["2001:db8::1/64"]\n',
        "interfaces.t0.addresses[0]",
        ["IPv6 is not supported yet"],
    ),
    (
        "address listed twice on one interface",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/24", "192.0.2.1/25"]\n',
        "interfaces.t0.addresses[1]",
        ["192.0.2.1", "twice", "addresses[0]"],
    ),
    (
        "same address on two interfaces of a vnet",
        TAP + '[vnets.red.interfaces.t1]\ntype = "tap"\naddresses = ["192.0.2.1/24"]\n',
        "vnets.red.interfaces.t1.addresses[0]",
        ["192.0.2.1", "already assigned", "t0"],
    ),
    (
        "overlapping connected networks in a vnet",
        TAP + '[vnets.red.interfaces.t1]\ntype = "tap"\naddresses = ["192.0.2.129/25"]\n',
        "vnets.red.interfaces.t1.addresses[0]",
        ["192.0.2.128/25", "overlaps", "192.0.2.0/24", "t0"],
    ),
    # interfaces
    (
        "duplicate TAP across vnets",
        TAP + '[vnets.blue.interfaces.t0]\ntype = "tap"\n',
        "vnets.blue.interfaces.t0",
        ["duplicate interface 't0' (already in vnet red)"],
    ),
    (
        "interface name longer than IFNAMSIZ",
        '[interfaces.abcdefghijklmnop]\ntype = "tap"\n',
        "interfaces.abcdefghijklmnop",
        ["invalid interface name", "1-15"],
    ),
    (
        "interface name with bad character",
        '[interfaces."t 0"]\ntype = "tap"\n',
        'interfaces."t 0"',
        ["invalid interface name"],
    ),
    (
        "missing interface type",
        "[interfaces.t0]\n",
        "interfaces.t0.type",
        ["missing required key 'type'"],
    ),
    (
        "unknown interface type",
        '[interfaces.t0]\ntype = "veth"\n',
        "interfaces.t0.type",
        ["'veth'", "tap", "epair"],
    ),
    (
        "mtu too small",
        '[interfaces.t0]\ntype = "tap"\nmtu = 67\n',
        "interfaces.t0.mtu",
        ["67", "68..65535"],
    ),
    (
        "mtu too large",
        '[interfaces.t0]\ntype = "tap"\nmtu = 65536\n',
        "interfaces.t0.mtu",
        ["65536", "68..65535"],
    ),
    (
        "mac malformed",
        '[interfaces.t0]\ntype = "tap"\nmac = "02:00:00:00:00"\n',
        "interfaces.t0.mac",
        ["xx:xx:xx:xx:xx:xx"],
    ),
    (
        "mac multicast",
        '[interfaces.t0]\ntype = "tap"\nmac = "01:00:5e:00:00:01"\n',
        "interfaces.t0.mac",
        ["multicast", "unicast"],
    ),
    (
        "mac all zero",
        '[interfaces.t0]\ntype = "tap"\nmac = "00:00:00:00:00:00"\n',
        "interfaces.t0.mac",
        ["all-zero"],
    ),
    # host side of a tap
    (
        "gateway outside host networks",
        '[interfaces.t0]\ntype = "tap"\n'
        'host = { netns = "h1", addresses = ["192.0.2.2/24"], gateway = "198.51.100.1" }\n',
        "interfaces.t0.host.gateway",
        ["198.51.100.1", "not inside", "192.0.2.0/24"],
    ),
    (
        "gateway without host addresses",
        '[interfaces.t0]\ntype = "tap"\nhost = { netns = "h1", gateway = "192.0.2.1" }\n',
        "interfaces.t0.host.gateway",
        ["not inside"],
    ),
    (
        "gateway is host's own address",
        '[interfaces.t0]\ntype = "tap"\n'
        'host = { netns = "h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.2" }\n',
        "interfaces.t0.host.gateway",
        ["own address"],
    ),
    (
        "host without netns",
        '[interfaces.t0]\ntype = "tap"\nhost = { addresses = ["192.0.2.2/24"] }\n',
        "interfaces.t0.host.netns",
        ["missing required key 'netns'"],
    ),
    (
        "bad netns name",
        '[interfaces.t0]\ntype = "tap"\nhost = { netns = "-h1" }\n',
        "interfaces.t0.host.netns",
        ["invalid netns name"],
    ),
    (
        "netns used twice",
        '[interfaces.t0]\ntype = "tap"\nhost = { netns = "h1" }\n'
        '[interfaces.t1]\ntype = "tap"\nhost = { netns = "h1" }\n',
        "interfaces.t1.host.netns",
        ["'h1'", "already used", "t0"],
    ),
    (
        "host address equals router address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/24"]\n'
        'host = { netns = "h1", addresses = ["192.0.2.1/24"] }\n',
        "interfaces.t0.host.addresses[0]",
        ["192.0.2.1", "router's address"],
    ),
    (
        "host on an epair",
        '[interfaces.a]\ntype = "epair"\npeer = "vnet0:b"\nhost = { netns = "h1" }\n'
        '[interfaces.b]\ntype = "epair"\npeer = "vnet0:a"\n',
        "interfaces.a.host",
        ["only valid on tap"],
    ),
    # epair peers
    (
        "epair without peer",
        '[interfaces.a]\ntype = "epair"\n',
        "interfaces.a.peer",
        ["needs a peer", "VNET:IFNAME"],
    ),
    (
        "peer on a tap",
        '[interfaces.t0]\ntype = "tap"\npeer = "vnet0:x"\n',
        "interfaces.t0.peer",
        ["only valid on epair"],
    ),
    (
        "peer malformed",
        '[interfaces.a]\ntype = "epair"\npeer = "blue"\n',
        "interfaces.a.peer",
        ["'blue'", "VNET:IFNAME"],
    ),
    (
        "peer vnet not declared",
        '[vnets.red.interfaces.ep0]\ntype = "epair"\npeer = "green:ep0"\n',
        "vnets.red.interfaces.ep0.peer",
        ["green:ep0", "'green' is not declared"],
    ),
    (
        "peer interface missing",
        '[vnets.red.interfaces.ep0]\ntype = "epair"\npeer = "blue:ep7"\n[vnets.blue]\n',
        "vnets.red.interfaces.ep0.peer",
        ["blue:ep7", "no interface 'ep7'"],
    ),
    (
        "peer does not point back",
        EPAIRS + '[vnets.blue.interfaces.ep1]\ntype = "epair"\npeer = "red:ep0"\n',
        "vnets.blue.interfaces.ep1.peer",
        ["red:ep0", "does not point back", "blue:ep0"],
    ),
    (
        "peer is a tap",
        '[vnets.red.interfaces.ep0]\ntype = "epair"\npeer = "blue:t0"\n'
        '[vnets.blue.interfaces.t0]\ntype = "tap"\n',
        "vnets.red.interfaces.ep0.peer",
        ["blue:t0", "tap interface, not an epair"],
    ),
    (
        "epair peering with itself",
        '[vnets.red.interfaces.ep0]\ntype = "epair"\npeer = "red:ep0"\n',
        "vnets.red.interfaces.ep0.peer",
        ["itself"],
    ),
    # vnets
    (
        "missing parent vnet",
        '[vnets."lab/r1"]\n',
        "vnets.lab/r1",
        ["parent vnet 'lab' is not declared", "[vnets.lab]"],
    ),
    (
        "missing grandparent and parent vnets",
        '[vnets."a/b/c"]\n',
        "vnets.a/b/c",
        ["'a', 'a/b'", "not declared"],
    ),
    (
        "bad vnet name",
        '[vnets."-red"]\n',
        "vnets.-red",
        ["invalid vnet name '-red'"],
    ),
    (
        "vnet name segment too long",
        f"[vnets.{'r' * 33}]\n",
        f"vnets.{'r' * 33}",
        ["invalid vnet name", "1-32"],
    ),
    (
        "top-level interfaces next to [vnets]",
        '[vnets.red]\n[interfaces.t0]\ntype = "tap"\n',
        "interfaces",
        ["default vnet vnet0", "only when no [vnets] are declared"],
    ),
    # routes
    (
        "route prefix with host bits set",
        '[[routes]]\nto = "192.0.2.1/24"\ntype = "blackhole"\n',
        "routes[0].to",
        ["'192.0.2.1/24' has host bits set; did you mean 192.0.2.0/24?"],
    ),
    (
        "route prefix length 33",
        '[[routes]]\nto = "192.0.2.0/33"\ntype = "blackhole"\n',
        "routes[0].to",
        ["33", "0..32"],
    ),
    (
        "route prefix without length",
        '[[routes]]\nto = "192.0.2.1"\ntype = "blackhole"\n',
        "routes[0].to",
        ["no prefix length", "/32"],
    ),
    (
        "IPv6 route",
        '[[routes]]\nto = "2001:db8::/32"\ntype = "blackhole"\n',
        "routes[0].to",
        ["IPv6 is not supported yet"],
    ),
    (
        "route without to",
        '[[routes]]\ntype = "blackhole"\n',
        "routes[0].to",
        ["missing required key 'to'"],
    ),
    (
        "unknown route type",
        '[[routes]]\nto = "10.0.0.0/8"\ntype = "drop"\n',
        "routes[0].type",
        ["'drop'", "blackhole"],
    ),
    (
        "next hop not on a connected network",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\nvia = "203.0.113.9"\n',
        "vnets.red.routes[0].via",
        ["next hop 203.0.113.9 is not on a connected network of vnet red"],
    ),
    (
        "next hop not on the named interface",
        EPAIRS.replace("[vnets.blue", TAP + "[vnets.blue", 1)
        + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\nvia = "192.0.2.9"\ninterface = "ep0"\n',
        "vnets.red.routes[0].via",
        ["192.0.2.9", "not on a connected network", "ep0"],
    ),
    (
        "next hop is the vnet's own address",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\nvia = "192.0.2.1"\n',
        "vnets.red.routes[0].via",
        ["192.0.2.1", "vnet red itself"],
    ),
    (
        "next hop with prefix length",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\nvia = "192.0.2.9/24"\n',
        "vnets.red.routes[0].via",
        ["single address"],
    ),
    (
        "unknown route interface",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\ninterface = "ep9"\n',
        "vnets.red.routes[0].interface",
        ["unknown interface 'ep9'", "vnet red", "t0"],
    ),
    (
        "unicast route with neither via nor interface",
        '[[routes]]\nto = "10.0.0.0/8"\n',
        "routes[0]",
        ["needs 'via', 'interface' or both"],
    ),
    (
        "blackhole route with via",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\ntype = "blackhole"\nvia = "192.0.2.9"\n',
        "vnets.red.routes[0].via",
        ["blackhole route takes no 'via'"],
    ),
    (
        "reject route with interface",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\ntype = "reject"\ninterface = "t0"\n',
        "vnets.red.routes[0].interface",
        ["reject route takes no 'interface'"],
    ),
    (
        "duplicate route destination",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\ninterface = "t0"\n'
        '[[vnets.red.routes]]\nto = "10.0.0.0/8"\ntype = "blackhole"\n',
        "vnets.red.routes[1].to",
        ["duplicate route to 10.0.0.0/8", "vnets.red.routes[0]"],
    ),
    # daemon
    (
        "relative control socket",
        '[daemon]\ncontrol_socket = "run/ctl.sock"\n',
        "daemon.control_socket",
        ["'run/ctl.sock'", "absolute path"],
    ),
    (
        "relative state dir",
        '[daemon]\nstate_dir = "state"\n',
        "daemon.state_dir",
        ["absolute path"],
    ),
    (
        "control socket path too long for AF_UNIX",
        f'[daemon]\ncontrol_socket = "/{"s" * 120}"\n',
        "daemon.control_socket",
        ["AF_UNIX", "107"],
    ),
    (
        "unknown log level",
        '[daemon]\nlog_level = "verbose"\n',
        "daemon.log_level",
        ["'verbose'", "debug, info, warning, error"],
    ),
    # wrong types
    (
        "mtu as string",
        '[interfaces.t0]\ntype = "tap"\nmtu = "1500"\n',
        "interfaces.t0.mtu",
        ["expected an integer, got string"],
    ),
    (
        "mtu as boolean",
        '[interfaces.t0]\ntype = "tap"\nmtu = true\n',
        "interfaces.t0.mtu",
        ["expected an integer, got boolean"],
    ),
    (
        "up as integer",
        '[interfaces.t0]\ntype = "tap"\nup = 1\n',
        "interfaces.t0.up",
        ["expected a boolean", "got integer"],
    ),
    (
        "forwarding as string",
        '[vnets.red]\nforwarding = "yes"\n',
        "vnets.red.forwarding",
        ["expected a boolean", "got string"],
    ),
    (
        "addresses as a single string",
        '[interfaces.t0]\ntype = "tap"\naddresses = "192.0.2.1/24"\n',
        "interfaces.t0.addresses",
        ["expected an array of strings, got string", '["192.0.2.1/24"]'],
    ),
    (
        "address as integer",
        '[interfaces.t0]\ntype = "tap"\naddresses = [3232235521]\n',
        "interfaces.t0.addresses[0]",
        ["expected a string, got integer"],
    ),
    (
        "type as integer",
        "[interfaces.t0]\ntype = 1\n",
        "interfaces.t0.type",
        ["expected a string, got integer"],
    ),
    (
        "interfaces as integer",
        "interfaces = 3\n",
        "interfaces",
        ["expected a table, got integer"],
    ),
    (
        "vnet as string",
        '[vnets]\nred = "yes"\n',
        "vnets.red",
        ["expected a table, got string"],
    ),
    (
        "routes as a table",
        '[routes]\nto = "10.0.0.0/8"\n',
        "routes",
        ["expected an array of tables", "got table"],
    ),
    (
        "log level as float",
        "[daemon]\nlog_level = 1.5\n",
        "daemon.log_level",
        ["expected a string, got float"],
    ),
    (
        "daemon as datetime",
        "daemon = 2024-01-01T00:00:00Z\n",
        "daemon",
        ["expected a table, got datetime"],
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "fragments"),
    [
        pytest.param(text, key, fragments, id=name)
        for name, text, key, fragments in SINGLE_PROBLEM_CASES
    ],
)
def test_single_problem(text: str, key: str, fragments: list[str]) -> None:
    problems = _problems(text)
    assert [p.key for p in problems] == [key], [str(p) for p in problems]
    for fragment in fragments:
        assert fragment in problems[0].reason


# --------------------------------------------------------------------------
# File-level problems, several problems, load()
# --------------------------------------------------------------------------


def test_toml_syntax_error_has_empty_key_and_line() -> None:
    problems = _problems('[daemon]\nlog_level = "info\n')
    assert len(problems) == 1
    assert problems[0].key == ""
    assert "invalid TOML" in problems[0].reason
    assert "line 2" in problems[0].reason
    assert str(problems[0]).startswith(f"{FILE}: invalid TOML")


def test_duplicate_table_in_toml_is_a_syntax_problem() -> None:
    problems = _problems('[interfaces.t0]\ntype = "tap"\n[interfaces.t0]\ntype = "tap"\n')
    assert [p.key for p in problems] == [""]


def test_multiple_problems_are_reported_together() -> None:
    text = """
        bogus = true
        [daemon]
        log_level = "loud"
        [vnets.red.interfaces.t0]
        type = "tap"
        addresses = ["192.0.2.1/33", "198.51.100.1/24"]
        mtu = 10
        [vnets.blue.interfaces.t0]
        type = "tap"
        [[vnets.red.routes]]
        to = "10.0.0.1/8"
        via = "203.0.113.9"
        [vnets."lab/x"]
    """
    problems = _problems(text)
    assert sorted(p.key for p in problems) == sorted(
        [
            "bogus",
            "daemon.log_level",
            "vnets.red.interfaces.t0.addresses[0]",
            "vnets.red.interfaces.t0.mtu",
            "vnets.blue.interfaces.t0",
            "vnets.red.routes[0].to",
            "vnets.lab/x",
        ]
    )


def test_next_hop_not_checked_when_an_address_is_invalid() -> None:
    problems = _problems(
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/33"]\n'
        '[[routes]]\nto = "10.0.0.0/8"\nvia = "192.0.2.9"\n'
    )
    assert [p.key for p in problems] == ["interfaces.t0.addresses[0]"]


def test_error_str_is_one_line_per_problem() -> None:
    err = ConfigError(
        [
            ConfigProblem("f.toml", "a.b", "bad"),
            ConfigProblem("f.toml", "", "worse"),
        ]
    )
    assert str(err) == "f.toml: a.b: bad\nf.toml: worse"
    assert err.problems[1].key == ""


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as info:
        load(path)
    assert [(p.file, p.key) for p in info.value.problems] == [(str(path), "")]
    assert "No such file" in info.value.problems[0].reason
    assert str(info.value).startswith(f"{path}: cannot read file")


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert [p.key for p in info.value.problems] == [""]


def test_load_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[daemon]\nlog_level = "\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert [p.key for p in info.value.problems] == [""]
    assert "UTF-8" in info.value.problems[0].reason


def test_load_reports_problems_with_file_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[daemon]\nlog_level = 'loud'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == (
        f"{path}: daemon.log_level: 'loud' is not one of: debug, info, warning, error"
    )
