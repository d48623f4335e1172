"""Reading an interface's stateless DHCPv6 server (RFC 8415 Information-request, RFC 3646).

Responsibility: ``read_dhcp6`` turns a ``dhcp6`` table into a ``Dhcp6Config``:
distinct unicast IPv6 DNS servers, domain names a resolver accepts, and an
optional information refresh time (RFC 8415 21.23: at least 600 s).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import IPv6Address

from vrouter.core.tomlkeys import TomlReader
from vrouter.core.tomlkeys import join as _join
from vrouter.daemon.config.model import Dhcp6Config
from vrouter.daemon.config.ra import read_dns_servers

DHCP6_KEYS = ("dns", "domains", "refresh")
REFRESH_MIN = 600
"""IRT_MINIMUM (RFC 8415 21.23)."""
LIFETIME_INFINITY = 0xFFFFFFFF
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def domain_error(name: str) -> str | None:
    """Return why ``name`` is not a domain name (RFC 1035 2.3.1 labels), None if it is."""
    labels = name.rstrip(".").split(".")
    if not name or len(name.rstrip(".")) > 253:
        return f"{name!r} is not a domain name (1..253 characters)"
    bad = next((label for label in labels if not _LABEL.fullmatch(label)), None)
    if bad is not None:
        return (
            f"{name!r} is not a domain name: label {bad!r} (letters, digits and inner "
            "hyphens, 1..63 characters)"
        )
    return None


def read_dhcp6(r: TomlReader, table: Mapping[str, object], key: str) -> Dhcp6Config | None:
    """Parse an interface's ``dhcp6`` table at *key* (absent: None)."""
    value = table.get("dhcp6")
    if value is None:
        return None
    if not isinstance(value, dict):
        r.wrong_type(key, "a table (dhcp6 = { dns = [...], domains = [...] })", value)
        return None
    r.check_keys(value, key, DHCP6_KEYS)
    dns: tuple[IPv6Address, ...] = read_dns_servers(r, value, key, "dns")
    domains: list[str] = []
    dvalue = value.get("domains")
    dkey = _join(key, "domains")
    if dvalue is not None and not isinstance(dvalue, list):
        r.wrong_type(dkey, "an array of strings", dvalue)
    for index, item in enumerate(dvalue if isinstance(dvalue, list) else []):
        ikey = f"{dkey}[{index}]"
        if not isinstance(item, str):
            r.wrong_type(ikey, "a string", item)
            continue
        error = domain_error(item)
        if error is not None:
            r.problem(ikey, error)
            continue
        name = item.rstrip(".").lower()
        if name in domains:
            r.problem(ikey, f"domain {name} is listed twice")
            continue
        domains.append(name)
    refresh = r.integer(value, "refresh", key)
    if refresh is not None and not REFRESH_MIN <= refresh <= LIFETIME_INFINITY:
        r.problem(
            _join(key, "refresh"),
            f"refresh {refresh} is out of range {REFRESH_MIN}..{LIFETIME_INFINITY} seconds "
            "(RFC 8415 21.23)",
        )
        refresh = None
    if not dns and not domains:
        r.problem(key, "a stateless DHCPv6 server needs dns or domains to hand out")
    return Dhcp6Config(dns=dns, domains=tuple(domains), refresh=refresh)
