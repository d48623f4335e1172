"""``[vnets.NAME.dhcp]``: a vnet's DHCPv4 server, its pools keyed by subnet.

::

    [vnets.lan.dhcp]
    lease_time = 3600                       # default of every pool (s)
    [vnets.lan.dhcp.pools."192.0.2.0/24"]
    range = ["192.0.2.100", "192.0.2.199"]
    router = "192.0.2.1"
    dns = ["192.0.2.1"]
    domain = "lan.example"
    mtu = 1500
    lease_time = 600
    routes = [{ to = "198.51.100.0/24", via = "192.0.2.1" }]   # RFC 3442
    static = [{ mac = "02:00:00:00:00:01", address = "192.0.2.10", hostname = "printer" }]

Every value is checked here (addresses inside the subnet, a range in
order and not wider than the server keeps leases, unique static MACs and
addresses); whether an interface of the vnet sits in each subnet is not
required: a pool may serve only relayed requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network

from vrouter.core.tomlkeys import TomlReader
from vrouter.core.tomlkeys import join as _join
from vrouter.daemon.config.grammar import parse_address, parse_mac, parse_network
from vrouter.daemon.config.model import DhcpConfig
from vrouter.services.dhcp.relay import RelaySettings
from vrouter.services.dhcp.server import MAX_LEASES, PoolSettings, StaticLease

_DHCP_KEYS = ("lease_time", "pools", "relay")
_RELAY_KEYS = ("servers", "circuit_id", "remote_id")
_POOL_KEYS = ("range", "router", "dns", "domain", "mtu", "lease_time", "routes", "static")
_ROUTE_KEYS = ("to", "via")
_STATIC_KEYS = ("mac", "address", "hostname")
DEFAULT_LEASE_TIME = 3600
LEASE_TIME_MIN = 60
LEASE_TIME_MAX = 0xFFFFFFFE
_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")  # noqa: E501


def _ipv4(r: TomlReader, value: object, key: str, subnet: IPv4Network | None) -> IPv4Address | None:
    if not isinstance(value, str):
        r.wrong_type(key, "an IPv4 address string", value)
        return None
    parsed = parse_address(value)
    if isinstance(parsed, str) or parsed.version != 4:
        r.problem(key, parsed if isinstance(parsed, str) else f"{value!r} is not an IPv4 address")
        return None
    if subnet is not None and parsed not in subnet:
        r.problem(key, f"{parsed} is not in the pool's subnet {subnet}")
        return None
    return parsed


def _lease_time(r: TomlReader, table: Mapping[str, object], key: str) -> int | None:
    value = r.integer(table, "lease_time", key)
    if value is not None and not LEASE_TIME_MIN <= value <= LEASE_TIME_MAX:
        bounds = f"{LEASE_TIME_MIN}..{LEASE_TIME_MAX}"
        r.problem(_join(key, "lease_time"), f"{value} is out of range {bounds}")
        return None
    return value


def read_dhcp(
    r: TomlReader,
    table: Mapping[str, object],
    key: str,
    interfaces: Mapping[str, bool] | None = None,
) -> DhcpConfig | None:
    """Check ``[... .dhcp]``; None when the vnet serves no DHCP.

    ``interfaces``: the vnet's interface names, True for those with an IPv4
    address (a relay interface needs one: it becomes ``giaddr``).
    """
    dhcp = r.table(table, "dhcp", key)
    if dhcp is None:
        return None
    dkey = _join(key, "dhcp")
    r.check_keys(dhcp, dkey, _DHCP_KEYS)
    default_time = _lease_time(r, dhcp, dkey) or DEFAULT_LEASE_TIME
    pools: list[PoolSettings] = []
    total = 0
    pkey = _join(dkey, "pools")
    pools_table = r.table(dhcp, "pools", dkey) or {}
    relays = _read_relays(r, dhcp, dkey, interfaces or {})
    if not pools_table and not relays and "relay" not in dhcp:
        r.problem(pkey, 'no pools: add [...dhcp.pools."SUBNET"] with a range, or a relay')
    for subnet_text, value in pools_table.items():
        skey = _join(pkey, subnet_text)
        if not isinstance(value, dict):
            r.wrong_type(skey, "a table", value)
            continue
        subnet = parse_network(subnet_text)
        if isinstance(subnet, str) or subnet.version != 4:
            r.problem(skey, subnet if isinstance(subnet, str) else "not an IPv4 subnet")
            continue
        if subnet.prefixlen > 30:
            r.problem(skey, f"{subnet} has no room for clients (at most /30)")
            continue
        if any(subnet.overlaps(p.subnet) for p in pools):
            r.problem(skey, f"{subnet} overlaps another pool")
            continue
        pool = _read_pool(r, value, skey, subnet, default_time)
        if pool is not None:
            total += int(pool.last) - int(pool.first) + 1
            pools.append(pool)
    if total > MAX_LEASES:
        r.problem(pkey, f"the ranges hold {total} addresses; at most {MAX_LEASES}")
    return DhcpConfig(tuple(pools), relays)


def _read_relays(
    r: TomlReader, dhcp: Mapping[str, object], key: str, interfaces: Mapping[str, bool]
) -> tuple[tuple[str, RelaySettings], ...]:
    """Check ``[... .dhcp.relay.IFNAME]``: the servers, circuit and remote id of each."""
    found: list[tuple[str, RelaySettings]] = []
    rkey = _join(key, "relay")
    for name, value in (r.table(dhcp, "relay", key) or {}).items():
        ikey = _join(rkey, name)
        if not isinstance(value, dict):
            r.wrong_type(ikey, "a table", value)
            continue
        r.check_keys(value, ikey, _RELAY_KEYS)
        if name not in interfaces:
            r.problem(ikey, f"the vnet has no interface {name!r}")
        elif not interfaces[name]:
            r.problem(ikey, f"interface {name} has no IPv4 address (a relay sends from it)")
        servers: list[IPv4Address] = []
        listed = value.get("servers")
        skey = _join(ikey, "servers")
        if not isinstance(listed, list) or not listed:
            r.wrong_type(skey, "a non-empty array of IPv4 addresses", listed)
        else:
            for i, item in enumerate(listed):
                address = _ipv4(r, item, f"{skey}[{i}]", None)
                if address is not None:
                    servers.append(address)
        circuit = r.string(value, "circuit_id", ikey)
        remote = r.string(value, "remote_id", ikey)
        for text, sub in ((circuit, "circuit_id"), (remote, "remote_id")):
            if text is not None and not 0 < len(text.encode()) <= 255:
                r.problem(_join(ikey, sub), "must be 1 to 255 bytes")
        found.append((name, RelaySettings(tuple(servers), circuit or name, remote)))
    return tuple(sorted(found))


def _read_pool(
    r: TomlReader, table: Mapping[str, object], key: str, subnet: IPv4Network, default_time: int
) -> PoolSettings | None:
    r.check_keys(table, key, _POOL_KEYS)
    ok = True
    rkey = _join(key, "range")
    span = table.get("range")
    first = last = None
    if not isinstance(span, list) or len(span) != 2:
        r.wrong_type(rkey, 'a range of two addresses, ["FIRST", "LAST"]', span)
        ok = False
    else:
        first = _ipv4(r, span[0], f"{rkey}[0]", subnet)
        last = _ipv4(r, span[1], f"{rkey}[1]", subnet)
        if first is None or last is None:
            ok = False
        elif first > last:
            r.problem(rkey, f"{first} comes after {last}")
            ok = False
        elif first == subnet.network_address or last == subnet.broadcast_address:
            r.problem(rkey, "the range holds the subnet's network or broadcast address")
            ok = False
    router = None
    if "router" in table:
        router = _ipv4(r, table["router"], _join(key, "router"), subnet)
        ok = ok and router is not None
    dns: list[IPv4Address] = []
    value = table.get("dns")
    if value is not None:
        if not isinstance(value, list):
            r.wrong_type(_join(key, "dns"), "an array of IPv4 addresses", value)
            ok = False
        else:
            for i, item in enumerate(value):
                address = _ipv4(r, item, f"{_join(key, 'dns')}[{i}]", None)
                if address is None:
                    ok = False
                else:
                    dns.append(address)
    domain = r.string(table, "domain", key)
    if domain is not None and (len(domain) > 253 or not _DOMAIN.fullmatch(domain)):
        r.problem(_join(key, "domain"), f"{domain!r} is not a domain name")
        ok = False
    mtu = r.integer(table, "mtu", key)
    if mtu is not None and not 68 <= mtu <= 65535:
        r.problem(_join(key, "mtu"), f"{mtu} is out of range 68..65535")
        ok = False
    routes = _read_routes(r, table, key, subnet)
    static = _read_static(r, table, key, subnet)
    lease_time = _lease_time(r, table, key) or default_time
    if not ok or routes is None or static is None or first is None or last is None:
        return None
    return PoolSettings(
        subnet, first, last, lease_time, router, tuple(dns), domain, mtu, routes, static
    )


def _read_routes(
    r: TomlReader, table: Mapping[str, object], key: str, subnet: IPv4Network
) -> tuple[tuple[IPv4Network, IPv4Address], ...] | None:
    value = table.get("routes")
    if value is None:
        return ()
    rkey = _join(key, "routes")
    if not isinstance(value, list):
        r.wrong_type(rkey, 'an array of { to = "PREFIX", via = "ADDRESS" }', value)
        return None
    found: list[tuple[IPv4Network, IPv4Address]] = []
    ok = True
    for i, item in enumerate(value):
        ikey = f"{rkey}[{i}]"
        if not isinstance(item, dict):
            r.wrong_type(ikey, 'a table { to = "PREFIX", via = "ADDRESS" }', item)
            ok = False
            continue
        r.check_keys(item, ikey, _ROUTE_KEYS)
        to = item.get("to")
        prefix = parse_network(to) if isinstance(to, str) else f"{to!r} is not a string"
        if isinstance(prefix, str) or prefix.version != 4:
            r.problem(_join(ikey, "to"), prefix if isinstance(prefix, str) else "not IPv4")
            ok = False
            continue
        via = _ipv4(r, item.get("via"), _join(ikey, "via"), subnet)
        if via is None:
            ok = False
            continue
        found.append((prefix, via))
    return tuple(found) if ok else None


def _read_static(
    r: TomlReader, table: Mapping[str, object], key: str, subnet: IPv4Network
) -> tuple[StaticLease, ...] | None:
    value = table.get("static")
    if value is None:
        return ()
    skey = _join(key, "static")
    if not isinstance(value, list):
        r.wrong_type(skey, 'an array of { mac = "MAC", address = "ADDRESS" }', value)
        return None
    found: list[StaticLease] = []
    ok = True
    for i, item in enumerate(value):
        ikey = f"{skey}[{i}]"
        if not isinstance(item, dict):
            r.wrong_type(ikey, 'a table { mac = "MAC", address = "ADDRESS" }', item)
            ok = False
            continue
        r.check_keys(item, ikey, _STATIC_KEYS)
        text = item.get("mac")
        mac = parse_mac(text) if isinstance(text, str) else f"{text!r} is not a MAC string"
        address = _ipv4(r, item.get("address"), _join(ikey, "address"), subnet)
        hostname = r.string(item, "hostname", ikey)
        if isinstance(mac, str):
            r.problem(_join(ikey, "mac"), mac)
            ok = False
            continue
        if address is None:
            ok = False
            continue
        if any(s.mac == mac for s in found):
            r.problem(_join(ikey, "mac"), f"{text} has a static lease already")
            ok = False
        if any(s.address == address for s in found):
            r.problem(_join(ikey, "address"), f"{address} is another MAC's static lease")
            ok = False
        found.append(StaticLease(mac, address, hostname))
    return tuple(found) if ok else None
