"""``[vnets.NAME.dhcp]``: pools keyed by subnet, every value checked with its key."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from vrouter.daemon.config import ConfigError, parse

BASE = """
[daemon]
data_dir = "/tmp/vr-data"
[vnets.lan.interfaces.eth0]
type = "tap"
addresses = ["192.0.2.1/24"]
[vnets.lan.dhcp]
lease_time = 900
"""


def test_a_pool_with_every_key() -> None:
    cfg = parse(BASE + """
[vnets.lan.dhcp.pools."192.0.2.0/24"]
range = ["192.0.2.100", "192.0.2.199"]
router = "192.0.2.1"
dns = ["192.0.2.1", "198.51.100.53"]
domain = "lan.example"
mtu = 1400
routes = [{ to = "198.51.100.0/24", via = "192.0.2.1" }]
static = [{ mac = "02:00:5e:00:53:10", address = "192.0.2.10", hostname = "printer" }]
""")  # fmt: skip
    assert cfg.daemon.data_dir == "/tmp/vr-data"
    [vnet] = cfg.vnets
    assert vnet.dhcp is not None
    [pool] = vnet.dhcp.pools
    assert pool.subnet == IPv4Network("192.0.2.0/24")
    assert (pool.first, pool.last) == (IPv4Address("192.0.2.100"), IPv4Address("192.0.2.199"))
    assert pool.lease_time == 900 and pool.mtu == 1400 and pool.domain == "lan.example"
    assert pool.routes == ((IPv4Network("198.51.100.0/24"), IPv4Address("192.0.2.1")),)
    assert pool.static[0].mac == bytes.fromhex("02005e005310")
    assert pool.static[0].hostname == "printer"


def test_defaults() -> None:
    cfg = parse("""
[vnets.lan.dhcp.pools."192.0.2.0/24"]
range = ["192.0.2.100", "192.0.2.199"]
""")  # fmt: skip
    assert cfg.daemon.data_dir == "/var/lib/vrouter"
    [pool] = cfg.vnets[0].dhcp.pools  # type: ignore[union-attr]
    assert pool.lease_time == 3600 and pool.router is None and pool.routes == ()


@pytest.mark.parametrize(
    ("pool", "key", "reason"),
    [
        ('range = ["192.0.2.9", "192.0.3.1"]', 'pools."192.0.2.0/24".range[1]', "not in the pool"),
        ('range = ["192.0.2.9", "192.0.2.1"]', 'pools."192.0.2.0/24".range', "comes after"),
        ('range = ["192.0.2.0", "192.0.2.9"]', 'pools."192.0.2.0/24".range', "network or broad"),
        ('range = "192.0.2.9"', 'pools."192.0.2.0/24".range', "a range of two addresses"),
        ('range = ["192.0.2.9", "192.0.2.20"]\nrouter = "10.0.0.1"',
         'pools."192.0.2.0/24".router', "not in the pool's subnet"),
        ('range = ["192.0.2.9", "192.0.2.20"]\nmtu = 20', 'pools."192.0.2.0/24".mtu',
         "out of range"),
        ('range = ["192.0.2.9", "192.0.2.20"]\ndomain = "a..b"', 'pools."192.0.2.0/24".domain',
         "not a domain name"),
        ('range = ["192.0.2.9", "192.0.2.20"]\nlease_time = 5',
         'pools."192.0.2.0/24".lease_time', "out of range"),
        ('range = ["192.0.2.9", "192.0.2.20"]\nroutes = [{ to = "x", via = "192.0.2.1" }]',
         'pools."192.0.2.0/24".routes[0].to', ""),
        ('range = ["192.0.2.9", "192.0.2.20"]\nstatic = [{ mac = "zz", address = "192.0.2.3" }]',
         'pools."192.0.2.0/24".static[0].mac', ""),
        ('range = ["192.0.2.9", "192.0.2.20"]\nbogus = 1', 'pools."192.0.2.0/24".bogus', ""),
    ],
)  # fmt: skip
def test_problems_name_the_key(pool: str, key: str, reason: str) -> None:
    text = BASE + '[vnets.lan.dhcp.pools."192.0.2.0/24"]\n' + pool + "\n"
    with pytest.raises(ConfigError) as err:
        parse(text, "f.toml")
    lines = str(err.value).splitlines()
    assert any(line.startswith(f"f.toml: vnets.lan.dhcp.{key}: ") and reason in line
               for line in lines), lines  # fmt: skip


def test_overlapping_pools_and_a_non_ipv4_subnet_are_refused() -> None:
    text = BASE + """
[vnets.lan.dhcp.pools."192.0.2.0/24"]
range = ["192.0.2.9", "192.0.2.20"]
[vnets.lan.dhcp.pools."192.0.2.0/25"]
range = ["192.0.2.9", "192.0.2.20"]
[vnets.lan.dhcp.pools."2001:db8::/64"]
range = ["192.0.2.9", "192.0.2.20"]
"""  # fmt: skip
    with pytest.raises(ConfigError) as err:
        parse(text, "f.toml")
    message = str(err.value)
    assert "overlaps another pool" in message and "not an IPv4 subnet" in message


def test_a_relay_needs_an_interface_with_ipv4_and_servers() -> None:
    good = BASE + """
[vnets.lan.dhcp.relay.eth0]
servers = ["203.0.113.2"]
remote_id = "edge-1"
"""  # fmt: skip
    [vnet] = parse(good).vnets
    assert vnet.dhcp is not None and vnet.dhcp.pools == ()
    [(name, relay)] = vnet.dhcp.relays
    assert name == "eth0" and relay.circuit_id == "eth0" and relay.remote_id == "edge-1"
    assert relay.servers == (IPv4Address("203.0.113.2"),)
    with pytest.raises(ConfigError) as err:
        parse(BASE + '[vnets.lan.dhcp.relay.eth9]\nservers = ["x"]\n', "f.toml")
    message = str(err.value)
    assert "f.toml: vnets.lan.dhcp.relay.eth9: the vnet has no interface 'eth9'" in message
    assert "vnets.lan.dhcp.relay.eth9.servers[0]" in message


def test_an_interface_takes_its_address_by_dhcp() -> None:
    cfg = parse('[vnets.edge.interfaces.wan0]\ntype = "tap"\ndhcp = true\n')
    [icfg] = cfg.vnets[0].interfaces
    assert icfg.dhcp and icfg.addresses == ()
    text = '[vnets.edge.interfaces.wan0]\ntype = "tap"\ndhcp = true\naddresses = ["192.0.2.1/24"]\n'
    with pytest.raises(ConfigError) as err:
        parse(text, "f.toml")
    assert "f.toml: vnets.edge.interfaces.wan0.dhcp: an interface that takes" in str(err.value)
