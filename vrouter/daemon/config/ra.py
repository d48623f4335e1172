"""Reading an interface's router advertisements (RFC 4861 section 6.2.1, RFC 8106).

Responsibility: ``read_ra`` turns ``ra = true`` or an ``ra`` table into a
complete ``RaConfig``: omitted values take their defaults, lifetimes are
checked against the interval, and without ``prefixes`` every global IPv6
network of the interface is advertised (autonomous only for /64).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)

from vrouter.core.tomlkeys import TomlReader
from vrouter.core.tomlkeys import join as _join
from vrouter.daemon.config.grammar import (
    LINK_LOCAL_NETWORK,
    MULTICAST_NETWORK,
    ipv6_unicast_error,
    parse_address,
    parse_network,
)
from vrouter.daemon.config.model import (
    DEFAULT_PREFERRED_LIFETIME,
    DEFAULT_RA_HOP_LIMIT,
    DEFAULT_RA_INTERVAL,
    DEFAULT_RA_MTU,
    DEFAULT_VALID_LIFETIME,
    LIFETIME_INFINITY,
    RA_INTERVAL_MAX,
    RA_INTERVAL_MIN,
    RA_LIFETIME_MAX,
    SLAAC_PREFIX_LENGTH,
    RaConfig,
    RaPrefixConfig,
)
from vrouter.daemon.config.parsed import (
    ParsedAddress,
)

_RA_KEYS = (
    "interval",
    "lifetime",
    "hop_limit",
    "managed",
    "other",
    "mtu",
    "prefixes",
    "rdnss",
    "rdnss_lifetime",
)


_RA_PREFIX_KEYS = ("prefix", "onlink", "autonomous", "valid_lifetime", "preferred_lifetime")


# -- router advertisements --------------------------------------------------


def read_ra(
    r: TomlReader,
    table: Mapping[str, object],
    key: str,
    addresses: tuple[ParsedAddress, ...],
    other: bool = False,
) -> RaConfig | None:
    """Parse an interface's ``ra`` (true, false or a table) at *key*.

    ``other``: the default of the O flag (true where the interface serves
    stateless DHCPv6).
    """
    value = table.get("ra")
    if value is None or value is False:
        return None
    if value is True:
        ra: Mapping[str, object] = {}
    elif isinstance(value, dict):
        ra = value
    else:
        r.wrong_type(key, "a boolean or a table", value)
        return None
    r.check_keys(ra, key, _RA_KEYS)

    interval = DEFAULT_RA_INTERVAL
    floor = 0.0  # the lower bound lifetimes are checked against
    given = r.number(ra, "interval", key)
    if given is not None and not RA_INTERVAL_MIN <= given <= RA_INTERVAL_MAX:
        r.problem(
            _join(key, "interval"),
            f"interval {given:g} is out of range {RA_INTERVAL_MIN}..{RA_INTERVAL_MAX} "
            "seconds (MaxRtrAdvInterval, RFC 4861 section 6.2.1)",
        )
    elif given is not None:
        interval = floor = given
    elif "interval" not in ra:
        floor = interval
    three_intervals = math.ceil(3 * interval)

    lifetime = r.integer(ra, "lifetime", key)
    if lifetime is not None and lifetime != 0 and not floor <= lifetime <= RA_LIFETIME_MAX:
        r.problem(
            _join(key, "lifetime"),
            f"lifetime {lifetime} is out of range: 0 (not a default router) or "
            f"{floor:g}..{RA_LIFETIME_MAX} seconds (at least the interval)",
        )
    hop_limit = r.integer(ra, "hop_limit", key)
    if hop_limit is not None and not 0 <= hop_limit <= 255:
        r.problem(_join(key, "hop_limit"), f"hop_limit {hop_limit} is out of range 0..255")
    managed = r.boolean(ra, "managed", key)
    other_flag = r.boolean(ra, "other", key)
    mtu = r.boolean(ra, "mtu", key)
    rdnss = read_rdnss(r, ra, key)
    rdnss_lifetime = r.integer(ra, "rdnss_lifetime", key)
    if (
        rdnss_lifetime is not None
        and rdnss_lifetime != 0
        and not floor <= rdnss_lifetime <= LIFETIME_INFINITY
    ):
        r.problem(
            _join(key, "rdnss_lifetime"),
            f"rdnss_lifetime {rdnss_lifetime} is out of range: 0 (stop using the servers) "
            f"or {floor:g}..{LIFETIME_INFINITY} seconds (at least the interval)",
        )

    prefixes: list[RaPrefixConfig] = []
    pkey = _join(key, "prefixes")
    pvalue = ra.get("prefixes")
    if pvalue is None:
        networks: list[IPv6Network] = []
        for address in addresses:
            value6 = address.value
            if (
                isinstance(value6, IPv6Interface)
                and not value6.ip.is_link_local
                and value6.network not in networks
            ):
                networks.append(value6.network)
        prefixes = [
            RaPrefixConfig(
                prefix=network,
                onlink=True,
                autonomous=network.prefixlen == SLAAC_PREFIX_LENGTH,
                valid_lifetime=DEFAULT_VALID_LIFETIME,
                preferred_lifetime=DEFAULT_PREFERRED_LIFETIME,
            )
            for network in networks
        ]
    elif not isinstance(pvalue, list):
        r.wrong_type(pkey, "an array of tables ([[...ra.prefixes]])", pvalue)
    else:
        seen: dict[IPv6Network, str] = {}
        for index, item in enumerate(pvalue):
            ikey = f"{pkey}[{index}]"
            if not isinstance(item, dict):
                r.wrong_type(ikey, "a table", item)
                continue
            prefix = read_ra_prefix(r, item, ikey)
            if prefix is None:
                continue
            if prefix.prefix in seen:
                r.problem(
                    _join(ikey, "prefix"),
                    f"duplicate prefix {prefix.prefix} (already {seen[prefix.prefix]})",
                )
                continue
            seen[prefix.prefix] = ikey
            prefixes.append(prefix)

    return RaConfig(
        interval=interval,
        lifetime=three_intervals if lifetime is None else lifetime,
        hop_limit=DEFAULT_RA_HOP_LIMIT if hop_limit is None else hop_limit,
        managed=bool(managed),
        other=other if other_flag is None else other_flag,
        mtu=DEFAULT_RA_MTU if mtu is None else mtu,
        prefixes=tuple(prefixes),
        rdnss=rdnss,
        rdnss_lifetime=three_intervals if rdnss_lifetime is None else rdnss_lifetime,
    )


def read_rdnss(r: TomlReader, ra: Mapping[str, object], key: str) -> tuple[IPv6Address, ...]:
    """Read ``rdnss``: distinct unicast IPv6 DNS servers."""
    return read_dns_servers(r, ra, key, "rdnss")


def read_dns_servers(
    r: TomlReader, table: Mapping[str, object], key: str, name: str
) -> tuple[IPv6Address, ...]:
    """Read the list ``name`` of *table*: distinct unicast IPv6 DNS servers."""
    value = table.get(name)
    if value is None:
        return ()
    rkey = _join(key, name)
    if not isinstance(value, list):
        hint = f'; write {name} = ["{value}"]' if isinstance(value, str) else ""
        r.wrong_type(rkey, "an array of strings", value, hint)
        return ()
    servers: list[IPv6Address] = []
    keys: dict[IPv6Address, str] = {}
    for index, item in enumerate(value):
        ikey = f"{rkey}[{index}]"
        if not isinstance(item, str):
            r.wrong_type(ikey, "a string", item)
            continue
        parsed = parse_address(item)
        if isinstance(parsed, str):
            r.problem(ikey, parsed)
            continue
        if isinstance(parsed, IPv4Address):
            r.problem(ikey, f"{item!r} is IPv4; {name} lists IPv6 DNS servers")
            continue
        error = ipv6_unicast_error(parsed, item, "a DNS server needs a unicast address")
        if error is not None:
            r.problem(ikey, error)
            continue
        if parsed in keys:
            r.problem(ikey, f"DNS server {parsed} is listed twice (also {keys[parsed]})")
            continue
        keys[parsed] = ikey
        servers.append(parsed)
    return tuple(servers)


def read_ra_prefix(r: TomlReader, table: Mapping[str, object], key: str) -> RaPrefixConfig | None:
    """Read one ``[[... .ra.prefixes]]`` entry, filling in its defaults."""
    r.check_keys(table, key, _RA_PREFIX_KEYS, required=("prefix",))
    prefix: IPv6Network | None = None
    text = r.string(table, "prefix", key)
    if text is not None:
        pkey = _join(key, "prefix")
        parsed = parse_network(text)
        if isinstance(parsed, str):
            r.problem(pkey, parsed)
        elif isinstance(parsed, IPv4Network):
            r.problem(pkey, f"{text!r} is IPv4; router advertisements carry IPv6 prefixes")
        elif parsed.prefixlen and parsed.subnet_of(LINK_LOCAL_NETWORK):
            r.problem(pkey, f"{parsed} is link-local; hosts ignore link-local prefixes (RFC 4862)")
        elif parsed.prefixlen and parsed.subnet_of(MULTICAST_NETWORK):
            r.problem(pkey, f"{parsed} is multicast; advertise a unicast prefix")
        else:
            prefix = parsed
    onlink = r.boolean(table, "onlink", key)
    autonomous = r.boolean(table, "autonomous", key)
    if autonomous and prefix is not None and prefix.prefixlen != SLAAC_PREFIX_LENGTH:
        r.problem(
            _join(key, "autonomous"),
            f"autonomous = true needs a /{SLAAC_PREFIX_LENGTH} prefix (SLAAC forms "
            f"64-bit interface identifiers); {prefix} is /{prefix.prefixlen}, "
            "set autonomous = false",
        )
    valid = read_lifetime(r, table, "valid_lifetime", key)
    preferred = read_lifetime(r, table, "preferred_lifetime", key)
    if preferred is not None and valid is not None and preferred > valid:
        r.problem(
            _join(key, "preferred_lifetime"),
            f"preferred_lifetime {preferred} is longer than valid_lifetime {valid}",
        )
    if prefix is None:
        return None
    valid_lifetime = DEFAULT_VALID_LIFETIME if valid is None else valid
    if autonomous is None:
        autonomous = prefix.prefixlen == SLAAC_PREFIX_LENGTH
    return RaPrefixConfig(
        prefix=prefix,
        onlink=True if onlink is None else onlink,
        autonomous=autonomous,
        valid_lifetime=valid_lifetime,
        preferred_lifetime=(
            min(DEFAULT_PREFERRED_LIFETIME, valid_lifetime) if preferred is None else preferred
        ),
    )


def read_lifetime(r: TomlReader, table: Mapping[str, object], name: str, key: str) -> int | None:
    """Return a prefix lifetime (0..0xffffffff seconds) or None if absent or bad."""
    value = r.integer(table, name, key)
    if value is not None and not 0 <= value <= LIFETIME_INFINITY:
        r.problem(
            _join(key, name),
            f"{name} {value} is out of range 0..{LIFETIME_INFINITY} seconds "
            f"({LIFETIME_INFINITY} = 0xffffffff is infinity)",
        )
        return None
    return value
