"""Bridges and VLAN interfaces in the config, and the vnets built from them."""

from __future__ import annotations

import ipaddress

import pytest

from vrouter.daemon import build
from vrouter.daemon.config import ConfigError, parse
from vrouter.daemon.config.model import BridgePortConfig, StaticFdbConfig
from vrouter.link import bridge as bridge_
from vrouter.link import vlan

SEGMENT = """
[vnets.lab.interfaces.tap1]
type = "tap"
[vnets.lab.interfaces.tap2]
type = "tap"
[vnets.lab.interfaces.trunk]
type = "tap"
[vnets.lab.interfaces.br0]
type = "bridge"
members = ["tap1", "tap2", "trunk"]
vlan_filtering = true
pvid = 10
storm_pps = 1000
addresses = ["192.0.2.1/24"]
[vnets.lab.interfaces.br0.ports.tap2]
pvid = 20
[vnets.lab.interfaces.br0.ports.trunk]
pvid = 0
tagged = [20, 10]
storm_pps = 0
[[vnets.lab.interfaces.br0.fdb]]
mac = "02:00:00:00:00:0a"
port = "trunk"
vid = 20
[vnets.lab.interfaces."br0.20"]
type = "vlan"
parent = "br0"
vid = 20
addresses = ["198.51.100.1/24"]
[vnets.lab.interfaces.up0]
type = "tap"
[vnets.lab.interfaces."up0.7"]
type = "vlan"
parent = "up0"
vid = 7
addresses = ["203.0.113.1/24"]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "l2.toml")
    return [f"{p.key}: {p.reason}" for p in info.value.problems]


def test_a_bridge_with_vlans_parses() -> None:
    (vcfg,) = parse(SEGMENT, "l2.toml").vnets
    br0 = next(i for i in vcfg.interfaces if i.name == "br0")
    assert br0.bridge is not None
    assert br0.bridge.ports == (
        BridgePortConfig("tap1", 1, (), 1000),
        BridgePortConfig("tap2", 20, (), 1000),
        BridgePortConfig("trunk", 0, (10, 20), 0),
    )
    assert br0.bridge.fdb == (StaticFdbConfig(bytes.fromhex("02000000000a"), "trunk", 20),)
    assert vcfg.ports() == {"tap1": "br0", "tap2": "br0", "trunk": "br0"}
    sub = next(i for i in vcfg.interfaces if i.name == "br0.20")
    assert sub.vlan == ("br0", 20)
    order = [i.name for i in sorted(vcfg.interfaces, key=vcfg.rank)]
    assert order.index("up0.7") < order.index("br0") < order.index("br0.20")


def test_built_vnet_has_the_bridge_the_ports_and_the_vlans() -> None:
    built = build.build(parse(SEGMENT, "l2.toml"), 0.0)
    vnet = built.tree.get("lab")
    br = bridge_.of(vnet.link.get("br0"))
    assert br is not None and list(br.ports) == ["tap1", "tap2", "trunk"]
    assert br.ports["tap1"].pvid == 1 and br.ports["trunk"].tagged == {10, 20}
    assert [e.port.ifnet.name for e in br.entries()] == ["trunk"]
    assert vnet.link.bridge.fdb_entries == 1
    # Members are no L3 interfaces; VLANs share their parent's MAC.
    assert vnet.link.get("tap1").addresses6 == []
    assert vnet.link.get("br0").addresses6 != []
    assert vnet.link.get("up0.7").mac == vnet.link.get("up0").mac
    assert vlan.of(vnet.link.get("br0.20")) is not None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[vnets.lab.interfaces.tap9]\ntype = "tap"\naddresses = ["198.18.0.9/24"]\n'
            '[vnets.lab.interfaces.br9]\ntype = "bridge"\nmembers = ["tap9", "tap1", "nope"]\n',
            [
                "vnets.lab.interfaces.tap9.addresses: tap9 is a member of bridge br9: a member "
                "is no L3 interface; give the addresses to br9",
                "vnets.lab.interfaces.br9.members[1]: tap1 is already a member of bridge br0",
                "vnets.lab.interfaces.br9.members[2]: vnet lab has no interface 'nope'",
            ],
        ),
        (
            '[vnets.lab.interfaces."tap1.5"]\ntype = "vlan"\nparent = "tap1"\nvid = 4095\n',
            ['vnets.lab.interfaces."tap1.5".vid: VLAN ID 4095 is out of range 1..4094'],
        ),
        (
            '[vnets.lab.interfaces."tap1.5"]\ntype = "vlan"\nparent = "tap1"\nvid = 5\n'
            'mac = "02:00:00:00:00:01"\n',
            [
                "vnets.lab.interfaces.\"tap1.5\".mac: a vlan interface shares its parent's MAC",
                'vnets.lab.interfaces."tap1.5".parent: tap1 is a member of bridge br0; put the '
                "VLAN on the bridge (vlan_filtering) instead",
            ],
        ),
        (
            '[vnets.lab.interfaces."up0.8"]\ntype = "vlan"\nparent = "up0"\nvid = 7\n',
            ['vnets.lab.interfaces."up0.8".vid: up0 already has VLAN 7 (up0.7)'],
        ),
    ],
)
def test_bad_l2_config_names_the_key(extra: str, expected: list[str]) -> None:
    assert problems(SEGMENT + extra) == expected


def test_port_settings_need_filtering_and_a_member() -> None:
    text = """
[vnets.lab.interfaces.t1]
type = "tap"
[vnets.lab.interfaces.br0]
type = "bridge"
members = ["t1"]
[vnets.lab.interfaces.br0.ports.t1]
pvid = 3
[vnets.lab.interfaces.br0.ports.t2]
storm_pps = 5
[[vnets.lab.interfaces.br0.fdb]]
mac = "ff:ff:ff:ff:ff:ff"
port = "t1"
"""
    assert problems(text) == [
        "vnets.lab.interfaces.br0.ports.t1: pvid and tagged need vlan_filtering = true on the "
        "bridge",
        "vnets.lab.interfaces.br0.ports.t2: t2 is not in members (t1)",
        "vnets.lab.interfaces.br0.fdb[0].mac: 'ff:ff:ff:ff:ff:ff' is a multicast MAC address "
        "(low bit of the first octet set); an interface needs a unicast one, e.g. "
        "02:00:00:00:00:01",
    ]


VXLAN = """
[vnets.lab.interfaces.tap1]
type = "tap"
mtu = 1450
[vnets.lab.interfaces.vx42]
type = "vxlan"
vni = 42
local = "198.51.100.1"
remotes = ["198.51.100.2", "198.51.100.3"]
[vnets.lab.interfaces.br0]
type = "bridge"
members = ["tap1", "vx42"]
mtu = 1450
addresses = ["192.0.2.1/24"]
"""


def test_a_vxlan_in_a_bridge_parses_and_builds() -> None:
    config = parse(VXLAN, "l2.toml")
    (vcfg,) = config.vnets
    vx42 = next(i for i in vcfg.interfaces if i.name == "vx42")
    assert vx42.mtu == 1450  # 1500 - 50 by default over IPv4
    assert vx42.vxlan is not None
    assert (vx42.vxlan.vni, vx42.vxlan.port, str(vx42.vxlan.local)) == (42, 4789, "198.51.100.1")
    assert [str(a) for a in vx42.vxlan.remotes] == ["198.51.100.2", "198.51.100.3"]
    built = build.build(config, 0.0)
    vnet = built.tree.get("lab")
    (vx,) = built.vxlans
    assert vx.ifnet is vnet.link.get("vx42") and vx.flood_to == ("198.51.100.2", "198.51.100.3")
    assert bridge_.port_of(vx.ifnet) is not None
    build.release_l2(vnet, vx.ifnet, 0.0)
    assert vnet.link.vxlans == {}


def test_a_vxlan_over_ipv6_gives_up_70_bytes() -> None:
    text = '[vnets.lab.interfaces.vx1]\ntype = "vxlan"\nvni = 1\nlocal = "2001:db8::1"\n'
    text += 'group = "ff05::1:42"\n'
    (vcfg,) = parse(text, "l2.toml").vnets
    (vx1,) = vcfg.interfaces
    assert vx1.mtu == 1430
    assert vx1.vxlan is not None and str(vx1.vxlan.group) == "ff05::1:42"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'vni = 16777216\nlocal = "198.51.100.1"\nport = 0\n',
            [
                "vnets.lab.interfaces.vx1.vni: VNI 16777216 is out of range 0..16777215",
                "vnets.lab.interfaces.vx1.port: port 0 is out of range 1..65535",
            ],
        ),
        (
            'vni = 1\nlocal = "239.1.1.1"\nremotes = ["2001:db8::2", "nope"]\n',
            [
                "vnets.lab.interfaces.vx1.local: 239.1.1.1 is not a unicast address",
                "vnets.lab.interfaces.vx1.remotes[1]: 'nope' is not an IP address",
            ],
        ),
        (
            'vni = 1\nlocal = "198.51.100.1"\nremotes = ["2001:db8::2", "198.51.100.1"]\n'
            'group = "198.51.100.7"\n',
            [
                "vnets.lab.interfaces.vx1.remotes[0]: 2001:db8::2 is not of the family of "
                "local 198.51.100.1",
                "vnets.lab.interfaces.vx1.remotes[1]: 198.51.100.1 is the local address",
                "vnets.lab.interfaces.vx1.group: 198.51.100.7 is not a multicast address",
            ],
        ),
        (
            'vni = 1\nlocal = "198.51.100.1"\nremotes = ["198.51.100.2"]\ngroup = "239.1.1.1"\n'
            'host = {netns = "x"}\n',
            [
                "vnets.lab.interfaces.vx1.host: a vxlan interface has no host",
                "vnets.lab.interfaces.vx1.group: a vxlan interface has either remotes or a "
                "group, not both",
            ],
        ),
        ("vni = 1\n", ["vnets.lab.interfaces.vx1.local: missing required key 'local'"]),
    ],
)
def test_bad_vxlan_config_names_the_key(body: str, expected: list[str]) -> None:
    assert problems('[vnets.lab.interfaces.vx1]\ntype = "vxlan"\n' + body) == expected


UNDERLAY = """
[daemon]
workers = {workers}
[vnets.core]
{core_pin}
[vnets.core.interfaces.up0]
type = "tap"
addresses = ["198.51.100.1/24"]
[vnets.lab]
{lab_pin}
[vnets.lab.interfaces.vx42]
type = "vxlan"
vni = 42
local = "198.51.100.1"
remotes = ["198.51.100.2"]
underlay = "{underlay}"
"""


def _underlay(underlay: str = "core", workers: int = 1, pins: tuple[str, str] = ("", "")) -> str:
    return UNDERLAY.format(
        workers=workers, underlay=underlay, core_pin=pins[0], lab_pin=pins[1]
    )


def test_a_vxlan_names_the_vnet_whose_udp_carries_it() -> None:
    config = parse(_underlay(), "l2.toml")
    lab = next(v for v in config.vnets if v.name == "lab")
    (vx42,) = lab.interfaces
    assert vx42.vxlan is not None and vx42.vxlan.underlay == "core"
    built = build.build(config, 0.0)
    (vx,) = built.vxlans
    assert vx.cfg.underlay == "core" and vx.describe()["underlay"] == "vnet core"
    grouped = _underlay().replace('remotes = ["198.51.100.2"]', 'group = "239.1.1.42"')
    (vx42,) = next(v for v in parse(grouped, "l2.toml").vnets if v.name == "lab").interfaces
    assert vx42.vxlan is not None and str(vx42.vxlan.group) == "239.1.1.42"
    pinned = _underlay(workers=2, pins=("worker = 1", "worker = 1"))
    assert parse(pinned, "l2.toml").daemon.workers == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            _underlay("nowhere"),
            ["vnets.lab.interfaces.vx42.underlay: vnet 'nowhere' is not declared"],
        ),
        (
            _underlay(workers=2, pins=("worker = 0", "worker = 1")),
            [
                "vnets.lab.interfaces.vx42.underlay: vnet core must run in the worker of vnet "
                "lab: pin both top-level vnets to one worker (worker = N)"
            ],
        ),
    ],
)
def test_an_underlay_that_cannot_carry_the_vxlan_is_refused(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


HOST_VXLAN = """
[vnets.lab.interfaces.vx42]
type = "vxlan"
vni = 42
local = "198.51.100.1"
remotes = ["198.51.100.2"]
"""


def test_tunnel_gso_is_off_unless_asked_and_reaches_the_interface() -> None:
    (vx42,) = parse(HOST_VXLAN, "l2.toml").vnets[0].interfaces
    assert vx42.vxlan is not None and not vx42.vxlan.tunnel_gso
    config = parse(HOST_VXLAN + "tunnel_gso = true\n", "l2.toml")
    (vx42,) = config.vnets[0].interfaces
    assert vx42.vxlan is not None and vx42.vxlan.tunnel_gso
    (vx,) = build.build(config, 0.0).vxlans
    assert vx.cfg.tunnel_gso and vx.describe()["tunnel_gso"] == ""  # no device yet


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'tunnel_gso = "yes"\n',
            [
                "vnets.lab.interfaces.vx42.tunnel_gso: expected a boolean (true or false), "
                "got string"
            ],
        ),
        (
            'tunnel_gso = true\nunderlay = "lab"\n',
            [
                "vnets.lab.interfaces.vx42.tunnel_gso: tunnel_gso hands super-frames to the "
                "host's kernel; a vnet underlay has none"
            ],
        ),
    ],
)
def test_a_tunnel_gso_that_cannot_be_is_refused(extra: str, expected: list[str]) -> None:
    assert problems(HOST_VXLAN + extra) == expected


VXLAN_FDB = """
[vnets.lab.interfaces.tap1]
type = "tap"
[vnets.lab.interfaces.vx42]
type = "vxlan"
vni = 42
local = "198.51.100.1"
learning = false
[vnets.lab.interfaces.br0]
type = "bridge"
members = ["tap1", "vx42"]
mtu = 1450
[[vnets.lab.interfaces.br0.fdb]]
mac = "02:00:00:00:00:0a"
port = "vx42"
dst = "198.51.100.3"
"""


def test_a_static_entry_behind_a_remote_vtep_parses_and_builds() -> None:
    config = parse(VXLAN_FDB, "l2.toml")
    (vcfg,) = config.vnets
    br0 = next(i for i in vcfg.interfaces if i.name == "br0")
    assert br0.bridge is not None
    mac = bytes.fromhex("02000000000a")
    assert br0.bridge.fdb == (
        StaticFdbConfig(mac, "vx42", None, ipaddress.ip_address("198.51.100.3")),
    )
    vnet = build.build(config, 0.0).tree.get("lab")
    vx = vnet.link.vxlans["vx42"]
    assert vx.macs[mac].static and vx.macs[mac].vtep.address == "198.51.100.3"


@pytest.mark.parametrize(
    ("port", "dst", "expected"),
    [
        ("tap1", "198.51.100.3", "tap1 is not a vxlan interface: dst needs one"),
        ("vx42", "2001:db8::3", "2001:db8::3 is not a remote address of local 198.51.100.1's"),
        ("vx42", "198.51.100.1", "198.51.100.1 is not a remote address"),
        ("vx42", "239.1.1.1", "239.1.1.1 is not a unicast address"),
        ("vx42", "vtep", "'vtep' is not an IP address"),
    ],
)
def test_a_bad_dst_is_refused(port: str, dst: str, expected: str) -> None:
    text = VXLAN_FDB.replace('port = "vx42"', f'port = "{port}"').replace(
        '"198.51.100.3"', f'"{dst}"'
    )
    found = problems(text)
    assert any(
        p.startswith("vnets.lab.interfaces.br0.fdb[0].dst: ") and expected in p for p in found
    ), found
