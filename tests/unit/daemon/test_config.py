"""Tests for vrouter.daemon.config: valid files parse, invalid ones report every problem."""

from __future__ import annotations

import dataclasses
import ipaddress
import textwrap
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
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
    RaConfig,
    RaPrefixConfig,
    RouteConfig,
    VnetConfig,
    load,
    parse,
)

FILE = "test.toml"
DEMO = Path(__file__).resolve().parents[3] / "configs" / "demo.toml"

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

DUAL_STACK_EXAMPLE = """
[vnets.red.interfaces.vr-red0]
type = "tap"
addresses = [
    "192.0.2.1/24", "2001:db8:1::1/64", "fe80::1/64", "2001:db8:1::5/64", "fd00:1::1/48",
]
mtu = 1280
ra = true
[vnets.red.interfaces.vr-red0.host]
netns = "vr-h1"
addresses = ["192.0.2.2/24", "2001:db8:1::2/64", "fe80::2/64"]
gateway = "192.0.2.1"
gateway6 = "fe80::1"

[vnets.red.interfaces.vr-red1]
type = "tap"
addresses = ["fe80::1/64", "2001:db8:3::1/64"]
host = { netns = "vr-h4", slaac = true }
[vnets.red.interfaces.vr-red1.ra]
interval = 200.5
lifetime = 0
hop_limit = 255
managed = true
other = true
mtu = true
rdnss = ["2001:db8:3::53", "fe80::53"]
[[vnets.red.interfaces.vr-red1.ra.prefixes]]
prefix = "2001:db8:3::/64"
[[vnets.red.interfaces.vr-red1.ra.prefixes]]
prefix = "2001:db8:4::/56"
onlink = false
valid_lifetime = 4294967295
preferred_lifetime = 4294967295
[[vnets.red.interfaces.vr-red1.ra.prefixes]]
prefix = "2001:db8:5::/64"
autonomous = false
valid_lifetime = 3600

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["2001:db8:ff::/127"]

[[vnets.red.routes]]
to = "::/0"
via = "fe80::2"
interface = "ep0"
[[vnets.red.routes]]
to = "0.0.0.0/0"
via = "192.0.2.254"
[[vnets.red.routes]]
to = "2001:db8:9::/48"
via = "2001:db8:ff::1"
[[vnets.red.routes]]
to = "2001:db8:a::/48"
via = "2001:db8:1::9"
interface = "vr-red0"
[[vnets.red.routes]]
to = "2001:db8:dead::/48"
type = "blackhole"

[vnets.blue]
forwarding = false
[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["2001:db8:ff::1/127", "fe80::2/64"]
[[vnets.blue.routes]]
to = "::/0"
via = "2001:db8:ff::"
"""


def _ra_prefix(prefix: str, autonomous: bool = True) -> RaPrefixConfig:
    """An RA prefix with the default flags and lifetimes."""
    return RaPrefixConfig(
        prefix=IPv6Network(prefix),
        onlink=True,
        autonomous=autonomous,
        valid_lifetime=2592000,
        preferred_lifetime=604800,
    )


RA_DEFAULTS = RaConfig(
    interval=600.0,
    lifetime=1800,
    hop_limit=64,
    managed=False,
    other=False,
    mtu=False,
    prefixes=(),
    rdnss=(),
    rdnss_lifetime=1800,
)

DUAL_STACK_EXPECTED = (
    VnetConfig(
        name="red",
        forwarding=True,
        interfaces=(
            InterfaceConfig(
                name="vr-red0",
                type="tap",
                addresses=(
                    IPv4Interface("192.0.2.1/24"),
                    IPv6Interface("2001:db8:1::1/64"),
                    IPv6Interface("fe80::1/64"),
                    IPv6Interface("2001:db8:1::5/64"),
                    IPv6Interface("fd00:1::1/48"),
                ),
                mtu=1280,
                mac=None,
                up=True,
                host=HostConfig(
                    netns="vr-h1",
                    addresses=(
                        IPv4Interface("192.0.2.2/24"),
                        IPv6Interface("2001:db8:1::2/64"),
                        IPv6Interface("fe80::2/64"),
                    ),
                    gateway=IPv4Address("192.0.2.1"),
                    gateway6=IPv6Address("fe80::1"),
                    slaac=False,
                ),
                peer=None,
                # no prefixes given: every global network once, link-local left out,
                # autonomous only for the /64
                ra=dataclasses.replace(
                    RA_DEFAULTS,
                    prefixes=(
                        _ra_prefix("2001:db8:1::/64"),
                        _ra_prefix("fd00:1::/48", autonomous=False),
                    ),
                ),
            ),
            InterfaceConfig(
                name="vr-red1",
                type="tap",
                addresses=(IPv6Interface("fe80::1/64"), IPv6Interface("2001:db8:3::1/64")),
                mtu=1500,
                mac=None,
                up=True,
                host=HostConfig(
                    netns="vr-h4", addresses=(), gateway=None, gateway6=None, slaac=True
                ),
                peer=None,
                ra=RaConfig(
                    interval=200.5,
                    lifetime=0,
                    hop_limit=255,
                    managed=True,
                    other=True,
                    mtu=True,
                    prefixes=(
                        _ra_prefix("2001:db8:3::/64"),
                        RaPrefixConfig(
                            prefix=IPv6Network("2001:db8:4::/56"),
                            onlink=False,
                            autonomous=False,
                            valid_lifetime=0xFFFFFFFF,
                            preferred_lifetime=0xFFFFFFFF,
                        ),
                        RaPrefixConfig(
                            prefix=IPv6Network("2001:db8:5::/64"),
                            onlink=True,
                            autonomous=False,
                            valid_lifetime=3600,
                            preferred_lifetime=3600,  # default, capped at valid_lifetime
                        ),
                    ),
                    rdnss=(IPv6Address("2001:db8:3::53"), IPv6Address("fe80::53")),
                    rdnss_lifetime=602,  # 3 * 200.5 rounded up
                ),
            ),
            InterfaceConfig(
                name="ep0",
                type="epair",
                addresses=(IPv6Interface("2001:db8:ff::/127"),),
                mtu=1500,
                mac=None,
                up=True,
                host=None,
                peer=("blue", "ep0"),
                ra=None,
            ),
        ),
        routes=(
            RouteConfig(IPv6Network("::/0"), "unicast", IPv6Address("fe80::2"), "ep0"),
            RouteConfig(IPv4Network("0.0.0.0/0"), "unicast", IPv4Address("192.0.2.254"), None),
            RouteConfig(
                IPv6Network("2001:db8:9::/48"), "unicast", IPv6Address("2001:db8:ff::1"), None
            ),
            RouteConfig(
                IPv6Network("2001:db8:a::/48"), "unicast", IPv6Address("2001:db8:1::9"), "vr-red0"
            ),
            RouteConfig(IPv6Network("2001:db8:dead::/48"), "blackhole", None, None),
        ),
    ),
    VnetConfig(
        name="blue",
        forwarding=False,
        interfaces=(
            InterfaceConfig(
                name="ep0",
                type="epair",
                addresses=(IPv6Interface("2001:db8:ff::1/127"), IPv6Interface("fe80::2/64")),
                mtu=1500,
                mac=None,
                up=True,
                host=None,
                peer=("red", "ep0"),
                ra=None,
            ),
        ),
        routes=(RouteConfig(IPv6Network("::/0"), "unicast", IPv6Address("2001:db8:ff::"), None),),
    ),
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


def test_dual_stack_example_parses_into_expected_objects() -> None:
    config = _parse(DUAL_STACK_EXAMPLE)
    assert config == Config(path=FILE, daemon=DEFAULT_DAEMON, vnets=DUAL_STACK_EXPECTED)


def test_ipv4_only_interfaces_and_hosts_keep_ipv6_defaults() -> None:
    config = _parse(FULL_EXAMPLE)
    interfaces = [i for v in config.vnets for i in v.interfaces]
    assert all(i.ra is None for i in interfaces)
    host = interfaces[0].host
    assert host is not None
    assert (host.gateway6, host.slaac) == (None, False)


@pytest.mark.parametrize(
    ("snippet", "attribute", "expected"),
    [
        ('addresses = ["2001:db8::1/64"]', "addresses", (IPv6Interface("2001:db8::1/64"),)),
        (
            'addresses = ["2001:db8::1/64", "192.0.2.1/24", "fe80::1/64"]',
            "addresses",
            (
                IPv6Interface("2001:db8::1/64"),
                IPv4Interface("192.0.2.1/24"),
                IPv6Interface("fe80::1/64"),
            ),
        ),
        # RFC 6164 point-to-point /127 and /128: no Subnet-Router anycast address
        ('addresses = ["2001:db8::/127"]', "addresses", (IPv6Interface("2001:db8::/127"),)),
        ('addresses = ["2001:db8::/128"]', "addresses", (IPv6Interface("2001:db8::/128"),)),
        ('addresses = ["FE80::A/64"]', "addresses", (IPv6Interface("fe80::a/64"),)),
        ('mtu = 1280\naddresses = ["2001:db8::1/64"]', "mtu", 1280),
        ("mtu = 1279\nra = false", "mtu", 1279),
        ("ra = false", "ra", None),
        ("ra = true", "ra", RA_DEFAULTS),
        ("ra = {}", "ra", RA_DEFAULTS),
        (
            "ra = { interval = 4 }",
            "ra",
            dataclasses.replace(RA_DEFAULTS, interval=4.0, lifetime=12, rdnss_lifetime=12),
        ),
        (
            "ra = { interval = 10.1 }",
            "ra",
            dataclasses.replace(RA_DEFAULTS, interval=10.1, lifetime=31, rdnss_lifetime=31),
        ),
        (
            "ra = { interval = 1800, lifetime = 9000, rdnss_lifetime = 4294967295 }",
            "ra",
            dataclasses.replace(
                RA_DEFAULTS, interval=1800.0, lifetime=9000, rdnss_lifetime=0xFFFFFFFF
            ),
        ),
        (
            "ra = { interval = 200, lifetime = 200, rdnss_lifetime = 200, hop_limit = 0 }",
            "ra",
            dataclasses.replace(
                RA_DEFAULTS, interval=200.0, lifetime=200, rdnss_lifetime=200, hop_limit=0
            ),
        ),
        (
            "ra = { rdnss_lifetime = 0 }",
            "ra",
            dataclasses.replace(RA_DEFAULTS, rdnss_lifetime=0),
        ),
        (
            'addresses = ["2001:db8::1/64"]\nra = { prefixes = [] }',
            "ra",
            RA_DEFAULTS,
        ),
        (
            'addresses = ["2001:db8::1/64", "2001:db8:1::1/64"]\n'
            'ra = { prefixes = [{ prefix = "2001:db8:7::/64", valid_lifetime = 0 }] }',
            "ra",
            dataclasses.replace(
                RA_DEFAULTS,
                prefixes=(RaPrefixConfig(IPv6Network("2001:db8:7::/64"), True, True, 0, 0),),
            ),
        ),
        (
            'addresses = ["fe80::1/64"]\nra = true',
            "ra",
            RA_DEFAULTS,  # a link-local address gives no prefix to advertise
        ),
    ],
)
def test_valid_ipv6_interface_values(snippet: str, attribute: str, expected: object) -> None:
    config = _parse(f'[interfaces.t0]\ntype = "tap"\n{snippet}\n')
    assert getattr(config.vnets[0].interfaces[0], attribute) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (
            '{ netns = "h", addresses = ["2001:db8::2/64"], gateway6 = "2001:db8::1" }',
            HostConfig("h", (IPv6Interface("2001:db8::2/64"),), None, IPv6Address("2001:db8::1")),
        ),
        (
            '{ netns = "h", addresses = ["192.0.2.2/24"], gateway6 = "fe80::1" }',
            HostConfig("h", (IPv4Interface("192.0.2.2/24"),), None, IPv6Address("fe80::1")),
        ),
        (
            '{ netns = "h", slaac = true }',
            HostConfig("h", (), None, None, slaac=True),
        ),
        (
            '{ netns = "h", addresses = [], slaac = true, gateway6 = "fe80::1" }',
            HostConfig("h", (), None, IPv6Address("fe80::1"), slaac=True),
        ),
        (
            '{ netns = "h", addresses = ["192.0.2.2/24"], slaac = false }',
            HostConfig("h", (IPv4Interface("192.0.2.2/24"),), None),
        ),
    ],
)
def test_valid_ipv6_host_values(host: str, expected: HostConfig) -> None:
    config = _parse(f'[interfaces.t0]\ntype = "tap"\nra = true\nhost = {host}\n')
    assert config.vnets[0].interfaces[0].host == expected


def test_link_local_addresses_may_repeat_across_interfaces() -> None:
    config = _parse(
        '[interfaces.t0]\ntype = "tap"\naddresses = ["fe80::1/64", "2001:db8::1/64"]\n'
        '[interfaces.t1]\ntype = "tap"\naddresses = ["fe80::1/64", "2001:db8:1::1/64"]\n'
        '[interfaces.t2]\ntype = "tap"\naddresses = ["fe80::1:2/10"]\n'
    )
    assert [i.addresses[0] for i in config.vnets[0].interfaces] == [
        IPv6Interface("fe80::1/64"),
        IPv6Interface("fe80::1/64"),
        IPv6Interface("fe80::1:2/10"),
    ]


def test_ipv4_and_ipv6_default_routes_are_distinct() -> None:
    config = _parse(
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/24", "2001:db8::1/64"]\n'
        '[[routes]]\nto = "0.0.0.0/0"\ninterface = "t0"\n'
        '[[routes]]\nto = "::/0"\ninterface = "t0"\n'
        '[[routes]]\nto = "::/128"\ntype = "reject"\n'
    )
    assert [r.prefix for r in config.vnets[0].routes] == [
        IPv4Network("0.0.0.0/0"),
        IPv6Network("::/0"),
        IPv6Network("::/128"),
    ]


def test_a_route_may_set_its_distance() -> None:
    config = _parse(
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/24"]\n'
        '[[routes]]\nto = "198.51.100.0/24"\nvia = "192.0.2.9"\ndistance = 200\n'
        '[[routes]]\nto = "203.0.113.0/24"\nvia = "192.0.2.9"\n'
    )
    assert [r.distance for r in config.vnets[0].routes] == [200, 1]


def test_a_route_with_a_list_of_next_hops_is_multipath() -> None:
    config = _parse(
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/24"]\n'
        '[interfaces.t1]\ntype = "tap"\naddresses = ["198.51.100.1/24"]\n'
        '[[routes]]\nto = "203.0.113.0/24"\nvia = ["192.0.2.9", "198.51.100.9"]\n'
    )
    [route] = config.vnets[0].routes
    assert route.via is None
    assert [str(hop) for hop in route.paths] == ["192.0.2.9", "198.51.100.9"]
    assert route.weights == ()


def test_a_next_hop_of_a_multipath_route_may_have_a_weight() -> None:
    config = _parse(
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/24"]\n'
        '[interfaces.t1]\ntype = "tap"\naddresses = ["198.51.100.1/24"]\n'
        '[[routes]]\nto = "203.0.113.0/24"\nvia = ["192.0.2.9 weight 3", "198.51.100.9"]\n'
    )
    [route] = config.vnets[0].routes
    assert [str(hop) for hop in route.paths] == ["192.0.2.9", "198.51.100.9"]
    assert route.weights == (3, 1)


# --------------------------------------------------------------------------
# One problem each: exact key path, reason mentions the key fact
# --------------------------------------------------------------------------

TAP = '[vnets.red.interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/24"]\n'
TAP6 = (
    '[vnets.red.interfaces.t0]\ntype = "tap"\n'
    'addresses = ["192.0.2.1/24", "2001:db8:1::1/64", "fe80::1/64"]\n'
)
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
        "multipath next hop off every connected network",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\nvia = ["192.0.2.9", "198.51.100.9"]\n',
        "vnets.red.routes[0].via[1]",
        ["198.51.100.9", "not on a connected network"],
    ),
    (
        "multipath next hop given twice",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\nvia = ["192.0.2.9", "192.0.2.9"]\n',
        "vnets.red.routes[0].via[1]",
        ["given twice"],
    ),
    (
        "multipath weight out of range",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\n'
        'via = ["192.0.2.9 weight 300", "192.0.2.8"]\n',
        "vnets.red.routes[0].via[0]",
        ["weight '300'", "1 to 256"],
    ),
    (
        "route distance out of range",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\ninterface = "t0"\ndistance = 0\n',
        "vnets.red.routes[0].distance",
        ["0 is not in 1..255"],
    ),
    (
        "unknown host key",
        '[interfaces.t0]\ntype = "tap"\n'
        'host = { netns = "h", addresses = ["192.0.2.2/24"], gw = "1.2.3.4" }\n',
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
        "gateway without host IPv4 addresses",
        '[interfaces.t0]\ntype = "tap"\n'
        'host = { netns = "h1", addresses = ["2001:db8::2/64"], gateway = "192.0.2.1" }\n',
        "interfaces.t0.host.gateway",
        ["192.0.2.1", "not inside", "(none)"],
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
        '[interfaces.t0]\ntype = "tap"\nhost = { netns = "-h1", addresses = ["192.0.2.2/24"] }\n',
        "interfaces.t0.host.netns",
        ["invalid netns name"],
    ),
    (
        "netns used twice",
        '[interfaces.t0]\ntype = "tap"\nhost = { netns = "h1", addresses = ["192.0.2.2/24"] }\n'
        '[interfaces.t1]\ntype = "tap"\nhost = { netns = "h1", addresses = ["192.0.2.2/24"] }\n',
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
    # IPv6 addresses
    (
        "IPv6 address without prefix length",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["2001:db8::1"]\n',
        "interfaces.t0.addresses[0]",
        ["no prefix length", "e.g. 2001:db8::1/64"],
    ),
    (
        "IPv6 prefix length 129",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["2001:db8::1/129"]\n',
        "interfaces.t0.addresses[0]",
        ["2001:db8::1/129", "129", "0..128"],
    ),
    (
        "invalid IPv6 address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["2001:db8::g/64"]\n',
        "interfaces.t0.addresses[0]",
        ["2001:db8::g/64", "invalid IPv6 address"],
    ),
    (
        "IPv6 multicast interface address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["ff02::1/64"]\n',
        "interfaces.t0.addresses[0]",
        ["multicast", "ff00::/8", "unicast"],
    ),
    (
        "IPv6 unspecified interface address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["::/128"]\n',
        "interfaces.t0.addresses[0]",
        ["unspecified"],
    ),
    (
        "IPv6 loopback interface address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["::1/128"]\n',
        "interfaces.t0.addresses[0]",
        ["loopback"],
    ),
    (
        "IPv4-mapped interface address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["::ffff:192.0.2.1/96"]\n',
        "interfaces.t0.addresses[0]",
        ["IPv4-mapped"],
    ),
    (
        "IPv6 address with zone index",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["fe80::1%t0/64"]\n',
        "interfaces.t0.addresses[0]",
        ["zone index", "'%t0'"],
    ),
    (
        "IPv6 Subnet-Router anycast address as interface address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["2001:db8::/64"]\n',
        "interfaces.t0.addresses[0]",
        ["Subnet-Router anycast address of 2001:db8::/64", "host address"],
    ),
    (
        "IPv6 address listed twice on one interface",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["2001:db8::1/64", "2001:db8::1/48"]\n',
        "interfaces.t0.addresses[1]",
        ["2001:db8::1", "twice", "addresses[0]"],
    ),
    (
        "same link-local address twice on one interface",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["fe80::1/64", "fe80::1/64"]\n',
        "interfaces.t0.addresses[1]",
        ["fe80::1", "twice", "addresses[0]"],
    ),
    (
        "second link-local address on one interface",
        '[interfaces.t0]\ntype = "tap"\n'
        'addresses = ["fe80::1/64", "2001:db8::1/64", "fe80::2/64"]\n',
        "interfaces.t0.addresses[2]",
        ["second link-local address fe80::2/64", "addresses[0]", "at most one", "EUI-64"],
    ),
    (
        "same IPv6 address on two interfaces of a vnet",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["2001:db8::1/64"]\n'
        '[interfaces.t1]\ntype = "tap"\naddresses = ["2001:db8::1/64"]\n',
        "interfaces.t1.addresses[0]",
        ["2001:db8::1", "already assigned", "t0"],
    ),
    (
        "overlapping IPv6 networks in a vnet",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["fe80::1/64", "2001:db8::1/64"]\n'
        '[interfaces.t1]\ntype = "tap"\naddresses = ["fe80::1/64", "2001:db8::2/48"]\n',
        "interfaces.t1.addresses[1]",
        ["2001:db8::/48", "overlaps", "2001:db8::/64", "t0"],
    ),
    (
        "host IPv6 address equals router address",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["2001:db8::1/64"]\n'
        'host = { netns = "h1", addresses = ["2001:db8::1/64"] }\n',
        "interfaces.t0.host.addresses[0]",
        ["2001:db8::1", "router's address"],
    ),
    (
        "host link-local address equals router's",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["fe80::1/64"]\n'
        'host = { netns = "h1", addresses = ["fe80::1/64"] }\n',
        "interfaces.t0.host.addresses[0]",
        ["fe80::1", "router's address"],
    ),
    # IPv6 routes
    (
        "IPv6 route prefix with host bits set",
        '[[routes]]\nto = "2001:db8::1/32"\ntype = "blackhole"\n',
        "routes[0].to",
        ["'2001:db8::1/32' has host bits set; did you mean 2001:db8::/32?"],
    ),
    (
        "IPv6 route prefix length 129",
        '[[routes]]\nto = "2001:db8::/129"\ntype = "blackhole"\n',
        "routes[0].to",
        ["129", "0..128"],
    ),
    (
        "IPv6 route prefix without length",
        '[[routes]]\nto = "2001:db8::"\ntype = "blackhole"\n',
        "routes[0].to",
        ["no prefix length", "/128"],
    ),
    (
        "IPv6 next hop for an IPv4 destination",
        TAP + '[[vnets.red.routes]]\nto = "10.0.0.0/8"\nvia = "2001:db8::9"\n',
        "vnets.red.routes[0].via",
        ["2001:db8::9 is IPv6", "10.0.0.0/8 is IPv4", "same family"],
    ),
    (
        "IPv4 next hop for an IPv6 destination",
        TAP + '[[vnets.red.routes]]\nto = "::/0"\nvia = "192.0.2.9"\n',
        "vnets.red.routes[0].via",
        ["192.0.2.9 is IPv4", "::/0 is IPv6", "same family"],
    ),
    (
        "IPv6 next hop not on a connected network",
        TAP6 + '[[vnets.red.routes]]\nto = "::/0"\nvia = "2001:db8:9::1"\n',
        "vnets.red.routes[0].via",
        ["next hop 2001:db8:9::1 is not on a connected network of vnet red"],
    ),
    (
        "IPv6 next hop with only IPv4 networks connected",
        TAP + '[[vnets.red.routes]]\nto = "::/0"\nvia = "2001:db8:1::9"\n',
        "vnets.red.routes[0].via",
        ["2001:db8:1::9", "not on a connected network"],
    ),
    (
        "IPv6 next hop not on the named interface",
        TAP6 + '[vnets.red.interfaces.t1]\ntype = "tap"\naddresses = ["2001:db8:2::1/64"]\n'
        '[[vnets.red.routes]]\nto = "::/0"\nvia = "2001:db8:1::9"\ninterface = "t1"\n',
        "vnets.red.routes[0].via",
        ["2001:db8:1::9", "not on a connected network", "t1"],
    ),
    (
        "IPv6 next hop is the vnet's own address",
        TAP6 + '[[vnets.red.routes]]\nto = "::/0"\nvia = "2001:db8:1::1"\n',
        "vnets.red.routes[0].via",
        ["2001:db8:1::1", "vnet red itself"],
    ),
    (
        "link-local next hop without interface",
        TAP6 + '[[vnets.red.routes]]\nto = "::/0"\nvia = "fe80::9"\n',
        "vnets.red.routes[0].interface",
        ["a link-local next hop needs 'interface'", "fe80::9"],
    ),
    (
        "link-local next hop is the interface's own address",
        TAP6 + '[[vnets.red.routes]]\nto = "::/0"\nvia = "fe80::1"\ninterface = "t0"\n',
        "vnets.red.routes[0].via",
        ["fe80::1", "vnet red itself", "t0"],
    ),
    (
        "next hop with zone index",
        TAP6 + '[[vnets.red.routes]]\nto = "::/0"\nvia = "fe80::9%t0"\ninterface = "t0"\n',
        "vnets.red.routes[0].via",
        ["zone index"],
    ),
    (
        "duplicate IPv6 route destination",
        TAP6 + '[[vnets.red.routes]]\nto = "2001:db8::/32"\ninterface = "t0"\n'
        '[[vnets.red.routes]]\nto = "2001:db8:0::/32"\ntype = "blackhole"\n',
        "vnets.red.routes[1].to",
        ["duplicate route to 2001:db8::/32", "vnets.red.routes[0]"],
    ),
    # host IPv6
    (
        "gateway given an IPv6 address",
        '[interfaces.t0]\ntype = "tap"\n'
        'host = { netns = "h1", addresses = ["2001:db8::2/64"], gateway = "2001:db8::1" }\n',
        "interfaces.t0.host.gateway",
        ["2001:db8::1 is IPv6", 'gateway6 = "2001:db8::1"'],
    ),
    (
        "gateway6 given an IPv4 address",
        '[interfaces.t0]\ntype = "tap"\n'
        'host = { netns = "h1", addresses = ["192.0.2.2/24"], gateway6 = "192.0.2.1" }\n',
        "interfaces.t0.host.gateway6",
        ["192.0.2.1 is IPv4", 'gateway = "192.0.2.1"'],
    ),
    (
        "gateway6 outside host IPv6 networks",
        '[interfaces.t0]\ntype = "tap"\nhost = { netns = "h1", '
        'addresses = ["192.0.2.2/24", "2001:db8:1::2/64", "fe80::2/64"], '
        'gateway6 = "2001:db8:2::1" }\n',
        "interfaces.t0.host.gateway6",
        ["2001:db8:2::1", "not inside", "IPv6 address networks (2001:db8:1::/64)", "link-local"],
    ),
    (
        "global gateway6 with slaac and no addresses",
        '[interfaces.t0]\ntype = "tap"\nra = true\n'
        'host = { netns = "h1", slaac = true, gateway6 = "2001:db8::1" }\n',
        "interfaces.t0.host.gateway6",
        ["not inside", "(none)"],
    ),
    (
        "gateway6 is host's own address",
        '[interfaces.t0]\ntype = "tap"\n'
        'host = { netns = "h1", addresses = ["fe80::2/64"], gateway6 = "fe80::2" }\n',
        "interfaces.t0.host.gateway6",
        ["fe80::2", "own address"],
    ),
    (
        "gateway6 with prefix length",
        '[interfaces.t0]\ntype = "tap"\n'
        'host = { netns = "h1", addresses = ["2001:db8::2/64"], gateway6 = "2001:db8::1/64" }\n',
        "interfaces.t0.host.gateway6",
        ["single address"],
    ),
    (
        "host without addresses",
        '[interfaces.t0]\ntype = "tap"\nhost = { netns = "h1" }\n',
        "interfaces.t0.host.addresses",
        ["host has no addresses; give addresses, slaac = true or dhcp = true"],
    ),
    (
        "host with an empty address list and a gateway",
        '[interfaces.t0]\ntype = "tap"\n'
        'host = { netns = "h1", addresses = [], slaac = false, gateway = "192.0.2.1" }\n',
        "interfaces.t0.host.addresses",
        ["host has no addresses"],
    ),
    (
        "slaac without router advertisements",
        '[interfaces.t0]\ntype = "tap"\naddresses = ["2001:db8::1/64"]\n'
        'host = { netns = "h1", slaac = true }\n',
        "interfaces.t0.host.slaac",
        ["slaac = true", "t0 sends no router advertisements", "ra = true"],
    ),
    (
        "slaac as string",
        '[interfaces.t0]\ntype = "tap"\nra = true\nhost = { netns = "h1", slaac = "yes" }\n',
        "interfaces.t0.host.slaac",
        ["expected a boolean", "got string"],
    ),
    (
        "unknown host key with IPv6",
        '[interfaces.t0]\ntype = "tap"\nra = true\n'
        'host = { netns = "h1", slaac = true, gateway_6 = "fe80::1" }\n',
        "interfaces.t0.host.gateway_6",
        ["unknown key 'gateway_6'", "gateway6", "slaac"],
    ),
    # router advertisements
    (
        "ra on a host vnet",
        '[vnets.h]\nforwarding = false\n[vnets.h.interfaces.t0]\ntype = "tap"\nra = true\n',
        "vnets.h.interfaces.t0.ra",
        ["forwarding = false", "a host does not advertise itself as a router"],
    ),
    (
        "ra table on a host vnet",
        '[vnets.h]\nforwarding = false\n[vnets.h.interfaces.t0]\ntype = "tap"\n'
        "[vnets.h.interfaces.t0.ra]\ninterval = 100\n",
        "vnets.h.interfaces.t0.ra",
        ["a host does not advertise itself as a router"],
    ),
    (
        "ra as string",
        '[interfaces.t0]\ntype = "tap"\nra = "yes"\n',
        "interfaces.t0.ra",
        ["expected a boolean or a table, got string"],
    ),
    (
        "unknown ra key",
        '[interfaces.t0]\ntype = "tap"\nra = { prefix = "2001:db8::/64" }\n',
        "interfaces.t0.ra.prefix",
        ["unknown key 'prefix'", "prefixes", "rdnss_lifetime"],
    ),
    (
        "ra interval too short",
        '[interfaces.t0]\ntype = "tap"\nra = { interval = 3.5 }\n',
        "interfaces.t0.ra.interval",
        ["3.5", "4..1800", "MaxRtrAdvInterval"],
    ),
    (
        "ra interval too long",
        '[interfaces.t0]\ntype = "tap"\nra = { interval = 1801 }\n',
        "interfaces.t0.ra.interval",
        ["1801", "4..1800"],
    ),
    (
        "ra interval not a number",
        '[interfaces.t0]\ntype = "tap"\nra = { interval = nan }\n',
        "interfaces.t0.ra.interval",
        ["nan", "4..1800"],
    ),
    (
        "ra interval as string",
        '[interfaces.t0]\ntype = "tap"\nra = { interval = "200" }\n',
        "interfaces.t0.ra.interval",
        ["expected a number, got string"],
    ),
    (
        "router lifetime shorter than the interval",
        '[interfaces.t0]\ntype = "tap"\nra = { interval = 200, lifetime = 199 }\n',
        "interfaces.t0.ra.lifetime",
        ["lifetime 199", "0", "200..9000"],
    ),
    (
        "router lifetime shorter than the default interval",
        '[interfaces.t0]\ntype = "tap"\nra = { lifetime = 300 }\n',
        "interfaces.t0.ra.lifetime",
        ["lifetime 300", "600..9000"],
    ),
    (
        "router lifetime too long",
        '[interfaces.t0]\ntype = "tap"\nra = { lifetime = 9001 }\n',
        "interfaces.t0.ra.lifetime",
        ["9001", "9000"],
    ),
    (
        "router lifetime as float",
        '[interfaces.t0]\ntype = "tap"\nra = { lifetime = 1800.0 }\n',
        "interfaces.t0.ra.lifetime",
        ["expected an integer, got float"],
    ),
    (
        "ra hop_limit too large",
        '[interfaces.t0]\ntype = "tap"\nra = { hop_limit = 256 }\n',
        "interfaces.t0.ra.hop_limit",
        ["256", "0..255"],
    ),
    (
        "ra managed as string",
        '[interfaces.t0]\ntype = "tap"\nra = { managed = "no" }\n',
        "interfaces.t0.ra.managed",
        ["expected a boolean"],
    ),
    (
        "rdnss IPv4 server",
        '[interfaces.t0]\ntype = "tap"\nra = { rdnss = ["192.0.2.53"] }\n',
        "interfaces.t0.ra.rdnss[0]",
        ["'192.0.2.53' is IPv4", "IPv6 DNS servers"],
    ),
    (
        "rdnss multicast server",
        '[interfaces.t0]\ntype = "tap"\nra = { rdnss = ["2001:db8::53", "ff02::fb"] }\n',
        "interfaces.t0.ra.rdnss[1]",
        ["multicast", "unicast"],
    ),
    (
        "rdnss server with prefix length",
        '[interfaces.t0]\ntype = "tap"\nra = { rdnss = ["2001:db8::53/64"] }\n',
        "interfaces.t0.ra.rdnss[0]",
        ["single address"],
    ),
    (
        "rdnss server listed twice",
        '[interfaces.t0]\ntype = "tap"\nra = { rdnss = ["2001:db8::53", "2001:DB8::53"] }\n',
        "interfaces.t0.ra.rdnss[1]",
        ["2001:db8::53", "twice", "rdnss[0]"],
    ),
    (
        "rdnss as a single string",
        '[interfaces.t0]\ntype = "tap"\nra = { rdnss = "2001:db8::53" }\n',
        "interfaces.t0.ra.rdnss",
        ["expected an array of strings, got string", '["2001:db8::53"]'],
    ),
    (
        "rdnss_lifetime shorter than the interval",
        '[interfaces.t0]\ntype = "tap"\nra = { interval = 200, rdnss_lifetime = 100 }\n',
        "interfaces.t0.ra.rdnss_lifetime",
        ["rdnss_lifetime 100", "0", "200..4294967295"],
    ),
    (
        "rdnss_lifetime too long",
        '[interfaces.t0]\ntype = "tap"\nra = { rdnss_lifetime = 4294967296 }\n',
        "interfaces.t0.ra.rdnss_lifetime",
        ["4294967296", "4294967295"],
    ),
    (
        "ra prefix with host bits set",
        '[interfaces.t0]\ntype = "tap"\nra = { prefixes = [{ prefix = "2001:db8:3::1/64" }] }\n',
        "interfaces.t0.ra.prefixes[0].prefix",
        ["host bits set; did you mean 2001:db8:3::/64?"],
    ),
    (
        "ra prefix IPv4",
        '[interfaces.t0]\ntype = "tap"\nra = { prefixes = [{ prefix = "192.0.2.0/24" }] }\n',
        "interfaces.t0.ra.prefixes[0].prefix",
        ["IPv4", "IPv6 prefixes"],
    ),
    (
        "ra prefix link-local",
        '[interfaces.t0]\ntype = "tap"\nra = { prefixes = [{ prefix = "fe80::/64" }] }\n',
        "interfaces.t0.ra.prefixes[0].prefix",
        ["fe80::/64 is link-local"],
    ),
    (
        "ra prefix missing",
        '[interfaces.t0]\ntype = "tap"\nra = { prefixes = [{ onlink = true }] }\n',
        "interfaces.t0.ra.prefixes[0].prefix",
        ["missing required key 'prefix'"],
    ),
    (
        "unknown ra prefix key",
        '[interfaces.t0]\ntype = "tap"\n'
        'ra = { prefixes = [{ prefix = "2001:db8::/64", slaac = true }] }\n',
        "interfaces.t0.ra.prefixes[0].slaac",
        ["unknown key 'slaac'", "autonomous"],
    ),
    (
        "autonomous ra prefix that is not a /64",
        '[interfaces.t0]\ntype = "tap"\n'
        "[interfaces.t0.ra]\n[[interfaces.t0.ra.prefixes]]\n"
        'prefix = "2001:db8::/48"\nautonomous = true\n',
        "interfaces.t0.ra.prefixes[0].autonomous",
        ["autonomous = true needs a /64 prefix", "2001:db8::/48 is /48"],
    ),
    (
        "preferred lifetime longer than valid lifetime",
        '[interfaces.t0]\ntype = "tap"\nra = { prefixes = [{ prefix = "2001:db8::/64", '
        "valid_lifetime = 3600, preferred_lifetime = 3601 }] }\n",
        "interfaces.t0.ra.prefixes[0].preferred_lifetime",
        ["preferred_lifetime 3601 is longer than valid_lifetime 3600"],
    ),
    (
        "valid lifetime beyond infinity",
        '[interfaces.t0]\ntype = "tap"\nra = { prefixes = [{ prefix = "2001:db8::/64", '
        "valid_lifetime = 4294967296 }] }\n",
        "interfaces.t0.ra.prefixes[0].valid_lifetime",
        ["4294967296", "0..4294967295", "infinity"],
    ),
    (
        "negative preferred lifetime",
        '[interfaces.t0]\ntype = "tap"\nra = { prefixes = [{ prefix = "2001:db8::/64", '
        "preferred_lifetime = -1 }] }\n",
        "interfaces.t0.ra.prefixes[0].preferred_lifetime",
        ["-1", "0..4294967295"],
    ),
    (
        "duplicate ra prefix",
        '[interfaces.t0]\ntype = "tap"\nra = { prefixes = [{ prefix = "2001:db8::/64" }, '
        '{ prefix = "2001:db8:0::/64", onlink = false }] }\n',
        "interfaces.t0.ra.prefixes[1].prefix",
        ["duplicate prefix 2001:db8::/64", "ra.prefixes[0]"],
    ),
    (
        "ra prefixes as a table",
        '[interfaces.t0]\ntype = "tap"\nra = { prefixes = { prefix = "2001:db8::/64" } }\n',
        "interfaces.t0.ra.prefixes",
        ["expected an array of tables", "got table"],
    ),
    # IPv6 minimum MTU
    (
        "mtu below 1280 with an IPv6 address",
        '[interfaces.t0]\ntype = "tap"\nmtu = 1279\naddresses = ["192.0.2.1/24", "fe80::1/64"]\n',
        "interfaces.t0.mtu",
        ["mtu 1279 is below 1280", "IPv6", "RFC 8200", "interfaces.t0.addresses[1]"],
    ),
    (
        "mtu below 1280 with ra",
        '[interfaces.t0]\ntype = "tap"\nmtu = 576\nra = true\n',
        "interfaces.t0.mtu",
        ["576", "1280", "interfaces.t0.ra"],
    ),
    (
        "mtu below 1280 with host IPv6 addresses",
        '[interfaces.t0]\ntype = "tap"\nmtu = 1000\naddresses = ["192.0.2.1/24"]\n'
        'host = { netns = "h1", addresses = ["192.0.2.2/24", "2001:db8::2/64"] }\n',
        "interfaces.t0.mtu",
        ["1000", "1280", "interfaces.t0.host.addresses"],
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


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, "{a=" * 5000 + "1" + "}" * 5000])
def test_toml_nested_too_deeply_is_a_syntax_problem(nested: str) -> None:
    problems = _problems(f"[daemon]\nlog_level = {nested}\n")
    assert len(problems) == 1 and problems[0].key == ""
    assert problems[0].reason == "invalid TOML: arrays or inline tables nested too deeply"


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


def test_host_without_addresses_not_reported_when_an_address_is_invalid() -> None:
    problems = _problems(
        '[interfaces.t0]\ntype = "tap"\nhost = { netns = "h1", addresses = ["192.0.2.2/33"] }\n'
    )
    assert [p.key for p in problems] == ["interfaces.t0.host.addresses[0]"]


def test_host_without_addresses_hides_gateway_networks_check() -> None:
    problems = _problems(
        '[interfaces.t0]\ntype = "tap"\n'
        'host = { netns = "h1", gateway = "192.0.2.1", gateway6 = "2001:db8::1" }\n'
    )
    assert [p.key for p in problems] == ["interfaces.t0.host.addresses"]


def test_ra_lifetimes_not_checked_against_an_invalid_interval() -> None:
    problems = _problems(
        '[interfaces.t0]\ntype = "tap"\nra = { interval = 2, lifetime = 3, rdnss_lifetime = 3 }\n'
    )
    assert [p.key for p in problems] == ["interfaces.t0.ra.interval"]


def test_next_hop_family_mismatch_reported_once() -> None:
    problems = _problems(
        '[interfaces.t0]\ntype = "tap"\naddresses = ["192.0.2.1/24"]\n'
        '[[routes]]\nto = "2001:db8::/32"\nvia = "192.0.2.9"\n'
    )
    assert [p.key for p in problems] == ["routes[0].via"]


def test_several_ipv6_problems_are_reported_together() -> None:
    text = """
        [vnets.red.interfaces.t0]
        type = "tap"
        mtu = 1200
        addresses = ["2001:db8::1/64", "fe80::1/64", "fe80::2/64", "ff02::2/64"]
        host = { netns = "h1", gateway = "2001:db8::9" }
        [vnets.red.interfaces.t0.ra]
        interval = 1
        rdnss = ["192.0.2.53"]
        prefixes = [{ prefix = "2001:db8::/48", autonomous = true }]
        [vnets.red.interfaces.t1]
        type = "tap"
        addresses = ["2001:db8::2/64"]
        [[vnets.red.routes]]
        to = "::/0"
        via = "fe80::9"
    """
    problems = _problems(text)
    assert sorted(p.key for p in problems) == sorted(
        [
            "vnets.red.interfaces.t0.mtu",
            "vnets.red.interfaces.t0.addresses[2]",
            "vnets.red.interfaces.t0.addresses[3]",
            "vnets.red.interfaces.t0.ra.interval",
            "vnets.red.interfaces.t0.ra.rdnss[0]",
            "vnets.red.interfaces.t0.ra.prefixes[0].autonomous",
            "vnets.red.interfaces.t0.host.addresses",
            "vnets.red.interfaces.t0.host.gateway",
            "vnets.red.interfaces.t1.addresses[0]",
            "vnets.red.routes[0].interface",
        ]
    )


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


# --------------------------------------------------------------------------
# The shipped demo configuration
# --------------------------------------------------------------------------


def test_demo_exports_metrics_on_loopback_where_the_readme_curls() -> None:
    metrics = load(DEMO).daemon.metrics
    assert metrics is not None
    host, port = metrics
    assert ipaddress.ip_address(host).is_loopback
    readme = (DEMO.parents[1] / "README.md").read_text()
    assert f"curl -s http://{host}:{port}/metrics" in readme


def test_demo_config_loads_with_ipv4_and_ipv6() -> None:
    config = load(DEMO)
    assert [v.name for v in config.vnets] == ["red", "blue", "green"]
    red, blue, green = config.vnets
    assert [(i.name, i.type, i.addresses) for i in red.interfaces] == [
        ("vr-red0", "tap", (IPv4Interface("192.0.2.1/24"), IPv6Interface("2001:db8:1::1/64"))),
        ("ep0", "epair", (IPv4Interface("203.0.113.1/30"), IPv6Interface("2001:db8:ff::1/64"))),
        ("vr-red1", "tap", (IPv6Interface("2001:db8:3::1/64"),)),
    ]
    assert [(i.name, i.type, i.addresses) for i in blue.interfaces] == [
        ("vr-blue0", "tap", (IPv4Interface("198.51.100.1/24"), IPv6Interface("2001:db8:2::1/64"))),
        ("ep0", "epair", (IPv4Interface("203.0.113.2/30"), IPv6Interface("2001:db8:ff::2/64"))),
    ]
    assert [(i.name, i.type, i.addresses) for i in green.interfaces] == [
        ("vr-green0", "tap", (IPv4Interface("192.0.2.1/24"), IPv6Interface("2001:db8:1::1/64"))),
    ]
    assert all(v.forwarding for v in config.vnets)
    assert [i.peer for i in red.interfaces + blue.interfaces if i.type == "epair"] == [
        ("blue", "ep0"),
        ("red", "ep0"),
    ]


def test_demo_config_hosts() -> None:
    config = load(DEMO)
    hosts = {i.host.netns: i.host for v in config.vnets for i in v.interfaces if i.host is not None}
    assert hosts == {
        "vr-h1": HostConfig(
            "vr-h1",
            (IPv4Interface("192.0.2.2/24"), IPv6Interface("2001:db8:1::2/64")),
            IPv4Address("192.0.2.1"),
            IPv6Address("2001:db8:1::1"),
        ),
        "vr-h4": HostConfig("vr-h4", (), None, None, slaac=True),
        "vr-h2": HostConfig(
            "vr-h2",
            (IPv4Interface("198.51.100.2/24"), IPv6Interface("2001:db8:2::2/64")),
            IPv4Address("198.51.100.1"),
            IPv6Address("2001:db8:2::1"),
        ),
        # green repeats red's first host network: isolated, overlapping address space
        "vr-h3": HostConfig(
            "vr-h3",
            (IPv4Interface("192.0.2.2/24"), IPv6Interface("2001:db8:1::2/64")),
            IPv4Address("192.0.2.1"),
            IPv6Address("2001:db8:1::1"),
        ),
    }


def test_demo_config_router_advertisements() -> None:
    config = load(DEMO)
    ras = {(v.name, i.name): i.ra for v in config.vnets for i in v.interfaces if i.ra is not None}
    assert ras == {
        ("red", "vr-red1"): dataclasses.replace(
            RA_DEFAULTS,
            mtu=True,
            prefixes=(_ra_prefix("2001:db8:3::/64"),),
            rdnss=(IPv6Address("2001:db8:3::53"),),
        ),
    }
    assert all(i.mtu >= 1280 for v in config.vnets for i in v.interfaces)


def test_demo_config_routes() -> None:
    red, blue, green = load(DEMO).vnets
    assert red.routes == (
        RouteConfig(IPv4Network("198.51.100.0/24"), "unicast", IPv4Address("203.0.113.2"), None),
        RouteConfig(IPv6Network("2001:db8:2::/64"), "unicast", IPv6Address("2001:db8:ff::2"), None),
    )
    assert blue.routes == (
        RouteConfig(IPv4Network("192.0.2.0/24"), "unicast", IPv4Address("203.0.113.1"), None),
        RouteConfig(IPv6Network("2001:db8:1::/64"), "unicast", IPv6Address("2001:db8:ff::1"), None),
        RouteConfig(IPv6Network("2001:db8:3::/64"), "unicast", IPv6Address("2001:db8:ff::1"), None),
    )
    assert green.routes == ()


def test_sysctl_settings_are_checked_against_the_knobs() -> None:
    config = parse(
        '[vnets.red.sysctl]\n"net.inet.ip.ttl" = 32\n"net.inet6.ip6.forwarding" = false\n', "s.toml"
    )
    assert config.vnets[0].sysctl == (("net.inet.ip.ttl", 32), ("net.inet6.ip6.forwarding", False))
    with pytest.raises(ConfigError) as info:
        parse(
            '[vnets.red.sysctl]\n"net.inet.ip.ttl" = 300\nttl = 3\n'
            '"net.inet.ip.forwarding" = "x"\n',
            "s.toml",
        )
    assert [(p.key, p.reason) for p in info.value.problems] == [
        ('vnets.red.sysctl."net.inet.ip.ttl"', "300 is out of range [1, 255]"),
        ('vnets.red.sysctl."ttl"', "unknown sysctl 'ttl'; did you mean net.inet.ip.ttl?"),
        (
            'vnets.red.sysctl."net.inet.ip.forwarding"',
            "expected a boolean (0/1, true/false), got 'x'",
        ),
    ]


# --------------------------------------------------------------------------
# [[daemon.socks]]
# --------------------------------------------------------------------------


def test_socks_gateways_parse() -> None:
    config = _parse(
        textwrap.dedent(
            """
            [[daemon.socks]]
            vnet = "blue"
            listen = "127.0.0.1:1080"

            [[daemon.socks]]
            vnet = "blue"
            listen = "[::1]:1081"
            username = "ops"
            password = "secret"

            [vnets.blue]
            """
        )
    )
    assert [(g.vnet, g.listen, g.username, g.password) for g in config.daemon.socks] == [
        ("blue", ("127.0.0.1", 1080), None, None),
        ("blue", ("::1", 1081), "ops", "secret"),
    ]


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ('vnet = "red"\nlisten = "127.0.0.1:1080"', "daemon.socks[0].vnet", "no vnet named 'red'"),
        ('vnet = "blue"', "daemon.socks[0].listen", "missing required key"),
        ('vnet = "blue"\nlisten = "127.0.0.1:1080"\nusername = "ops"', "daemon.socks[0]",
         "both username and password"),
        ('vnet = "blue"\nlisten = "127.0.0.1:1080"\nusername = ""\npassword = "x"',
         "daemon.socks[0].username", "1..255 bytes"),
    ],
)
def test_socks_gateway_problems_name_the_key(body: str, key: str, fragment: str) -> None:
    problems = _problems(f"[[daemon.socks]]\n{body}\n\n[vnets.blue]\n")
    assert [p.key for p in problems] == [key], [str(p) for p in problems]
    assert fragment in problems[0].reason


def test_nat_entries_in_the_config_and_their_problems() -> None:
    base = """
        [vnets.red.interfaces.ep0]
        type = "epair"
        peer = "red:ep1"
        [vnets.red.interfaces.ep1]
        type = "epair"
        peer = "red:ep0"
        [vnets.red.firewall]
        [[vnets.red.firewall.nat]]
        action = "nat"
        interface = "ep0"
        from = "192.0.2.0/24"
        """
    config = _parse(base)
    firewall = config.vnets[0].firewall
    assert firewall is not None and [n.action for n in firewall.ruleset.nat] == ["nat"]
    problems = _problems(base + '[[vnets.red.firewall.nat]]\naction = "rdr"\ninterface = "ep0"\n')
    assert [(p.key, p.reason) for p in problems] == [
        ("vnets.red.firewall.nat[1].target", "missing required key 'target'")
    ]


def test_sparse_first_is_on_unless_turned_off() -> None:
    assert _parse('[interfaces.t0]\ntype = "tap"\n').daemon.sparse_first is True
    assert _parse("[daemon]\nsparse_first = false\n").daemon.sparse_first is False
    problems = _problems('[daemon]\nsparse_first = "no"\n')
    assert [p.key for p in problems] == ["daemon.sparse_first"]


def test_busy_poll_is_microseconds_within_bounds() -> None:
    assert _parse('[interfaces.t0]\ntype = "tap"\n').daemon.busy_poll == 0
    assert _parse("[daemon]\nbusy_poll = 50\n").daemon.busy_poll == 50
    for bad in ("-1", "1001", '"50us"'):
        problems = _problems(f"[daemon]\nbusy_poll = {bad}\n")
        assert [p.key for p in problems] == ["daemon.busy_poll"], bad
