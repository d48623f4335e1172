"""Reading one interface of a vnet: its addresses, MTU, MAC, peer and TAP host.

Responsibility: ``read_interface`` checks a ``[... .interfaces.NAME]`` table,
including the ``host`` side of a TAP (netns, addresses, gateways, SLAAC) and,
through ``vrouter.daemon.config.ra``, its router advertisements.  What
involves other interfaces (unique TAP names, peers, overlapping networks) is
checked later, in ``vrouter.daemon.config.checks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import (
    IPv4Address,
    IPv6Address,
)

from vrouter.core.tomlkeys import TomlReader
from vrouter.core.tomlkeys import join as _join
from vrouter.daemon.config.dhcp6 import read_dhcp6
from vrouter.daemon.config.grammar import (
    NETNS,
    ifname_error,
    is_link_local,
    parse_address,
    parse_interface_address,
    parse_mac,
    vnet_name_error,
)
from vrouter.daemon.config.l2 import (
    BRIDGE_KEYS,
    VLAN_KEYS,
    VXLAN_KEYS,
    read_bridge,
    read_vlan,
    read_vxlan,
)
from vrouter.daemon.config.model import (
    DEFAULT_MTU,
    INTERFACE_TYPES,
    IPV6_MTU_MIN,
    MTU_MAX,
    MTU_MIN,
    HostConfig,
    VxlanConfig,
)
from vrouter.daemon.config.parsed import (
    ParsedAddress,
    ParsedInterface,
)
from vrouter.daemon.config.ra import (
    read_ra,
)
from vrouter.wire.vxlan import OVERHEAD_V4, OVERHEAD_V6

_INTERFACE_KEYS = (
    "type", "addresses", "mtu", "mac", "up", "host", "peer", "ra", "offload", "dhcp", "dhcp6"
)  # fmt: skip


_HOST_KEYS = ("netns", "addresses", "gateway", "gateway6", "slaac", "dhcp")


def read_addresses(
    r: TomlReader, parent: Mapping[str, object], key: str
) -> tuple[tuple[ParsedAddress, ...], bool]:
    """Parse an ``addresses`` array; return what parsed and whether all did."""
    value = parent.get("addresses")
    if value is None:
        return (), True
    akey = _join(key, "addresses")
    if not isinstance(value, list):
        hint = f'; write addresses = ["{value}"]' if isinstance(value, str) else ""
        r.wrong_type(akey, "an array of strings", value, hint)
        return (), False
    parsed: list[ParsedAddress] = []
    complete = True
    for index, item in enumerate(value):
        ikey = f"{akey}[{index}]"
        if not isinstance(item, str):
            r.wrong_type(ikey, "a string", item)
            complete = False
            continue
        address = parse_interface_address(item)
        if isinstance(address, str):
            r.problem(ikey, address)
            complete = False
            continue
        earlier = next((a for a in parsed if a.value.ip == address.ip), None)
        if earlier is not None:
            r.problem(ikey, f"address {address.ip} is listed twice (also {earlier.key})")
            continue
        parsed.append(ParsedAddress(address, ikey))
    return tuple(parsed), complete


def read_interface(
    r: TomlReader, name: str, table: Mapping[str, object], key: str
) -> ParsedInterface:
    """Read interface *name* (its table at *key*), its RA and the host of a TAP."""
    raw_type = table.get("type")
    if raw_type == "bridge":
        r.check_keys(table, key, (*_INTERFACE_KEYS, *BRIDGE_KEYS), required=("type",))
    elif raw_type == "vlan":
        r.check_keys(table, key, (*_INTERFACE_KEYS, *VLAN_KEYS), required=("type", *VLAN_KEYS))
    elif raw_type == "vxlan":
        r.check_keys(
            table, key, (*_INTERFACE_KEYS, *VXLAN_KEYS), required=("type", "vni", "local")
        )
    else:
        r.check_keys(table, key, _INTERFACE_KEYS, required=("type",))
    layered = raw_type in ("bridge", "vlan", "vxlan")
    for extra_key in ("host", "peer", "offload", "mac"):
        if layered and extra_key in table and (extra_key != "mac" or raw_type == "vlan"):
            what = "shares its parent's MAC" if extra_key == "mac" else f"has no {extra_key}"
            r.problem(_join(key, extra_key), f"a {raw_type} interface {what}")
    error = ifname_error(name)
    if error is not None:
        r.problem(key, error)
    itype = r.choice(table, "type", key, INTERFACE_TYPES)
    vxlan = read_vxlan(r, table, key) if itype == "vxlan" else None
    addresses, complete = read_addresses(r, table, key)
    link_local = [a for a in addresses if is_link_local(a.value.ip)]
    for extra in link_local[1:]:
        r.problem(
            extra.key,
            f"a second link-local address {extra.value} (also {link_local[0].key}); "
            "an interface has at most one, which replaces its automatic EUI-64 one",
        )

    mtu = r.integer(table, "mtu", key)
    if mtu is not None and not MTU_MIN <= mtu <= MTU_MAX:
        r.problem(_join(key, "mtu"), f"mtu {mtu} is out of range {MTU_MIN}..{MTU_MAX}")
        mtu = None

    mac: bytes | None = None
    mac_text = r.string(table, "mac", key)
    if mac_text is not None:
        parsed_mac = parse_mac(mac_text)
        if isinstance(parsed_mac, str):
            r.problem(_join(key, "mac"), parsed_mac)
        else:
            mac = parsed_mac

    up = r.boolean(table, "up", key)
    dhcp = r.boolean(table, "dhcp", key) or False
    if dhcp and any(a.value.version == 4 for a in addresses):
        r.problem(_join(key, "dhcp"), "an interface that takes its IPv4 address by DHCP "
                  "has no IPv4 addresses of its own")  # fmt: skip

    ra_key = _join(key, "ra")
    advertises = table.get("ra") is True or isinstance(table.get("ra"), dict)
    dhcp6 = read_dhcp6(r, table, _join(key, "dhcp6"))
    ra = read_ra(r, table, ra_key, addresses, other=dhcp6 is not None)

    host: HostConfig | None = None
    hkey = _join(key, "host")
    if itype in ("bridge", "vlan", "vxlan"):
        pass  # reported above
    elif "host" in table and itype == "epair":
        r.problem(hkey, "'host' is only valid on tap interfaces")
    else:
        host_table = r.table(table, "host", key)
        if host_table is not None:
            host = read_host(r, host_table, hkey, addresses, name, advertises)

    if mtu is not None and mtu < IPV6_MTU_MIN:
        carries = [a.key for a in addresses if a.value.version == 6][:1]
        if advertises:
            carries.append(ra_key)
        if host is not None and any(a.version == 6 for a in host.addresses):
            carries.append(_join(hkey, "addresses"))
        if host is not None and host.slaac:
            carries.append(_join(hkey, "slaac"))
        if carries:
            r.problem(
                _join(key, "mtu"),
                f"mtu {mtu} is below {IPV6_MTU_MIN}, the minimum MTU of a link that "
                f"carries IPv6 (RFC 8200), and this one does ({', '.join(carries)})",
            )

    peer: tuple[str, str] | None = None
    pkey = _join(key, "peer")
    if itype in ("bridge", "vlan", "vxlan"):
        pass  # reported above
    elif itype == "tap" and "peer" in table:
        r.problem(pkey, "'peer' is only valid on epair interfaces")
    elif itype == "epair" and "peer" not in table:
        r.problem(
            pkey,
            'an epair interface needs a peer: peer = "VNET:IFNAME" (e.g. "blue:ep0")',
        )
    else:
        peer_text = r.string(table, "peer", key)
        if peer_text is not None:
            peer = read_peer(r, peer_text, pkey)

    return ParsedInterface(
        key=key,
        name=name,
        type=itype,
        addresses=addresses,
        addresses_complete=complete,
        mtu=default_mtu(vxlan) if mtu is None else mtu,
        mac=mac,
        up=True if up is None else up,
        host=host,
        netns_key=_join(hkey, "netns"),
        peer=peer,
        peer_key=pkey,
        ra=ra,
        ra_key=ra_key,
        advertises=advertises,
        offload=read_offload(r, table, key, itype),
        bridge=read_bridge(r, table, key) if itype == "bridge" else None,
        vlan=read_vlan(r, table, key) if itype == "vlan" else None,
        vxlan=vxlan,
        dhcp6=dhcp6,
        dhcp=dhcp,
    )


def default_mtu(vxlan: VxlanConfig | None) -> int:
    """Return an interface's MTU when the config gives none.

    A VXLAN interface's is what a 1500-byte underlay carries (1450 over
    IPv4, 1430 over IPv6); the daemon lowers it further if the route to
    its VTEPs has a smaller MTU.
    """
    if vxlan is None:
        return DEFAULT_MTU
    return DEFAULT_MTU - (OVERHEAD_V4 if vxlan.local.version == 4 else OVERHEAD_V6)


def read_offload(r: TomlReader, table: Mapping[str, object], key: str, itype: str | None) -> bool:
    """Read ``offload`` (tap interfaces only; default true)."""
    value = r.boolean(table, "offload", key)
    if itype in ("bridge", "vlan", "vxlan"):
        return True
    if value is not None and itype == "epair":
        r.problem(
            _join(key, "offload"), "offload applies to tap interfaces (epairs always carry it)"
        )
    return True if value is None else value


def read_peer(r: TomlReader, text: str, key: str) -> tuple[str, str] | None:
    """Parse an epair's ``peer`` ``"VNET:IFNAME"``, or report why not."""
    vnet, sep, ifname = text.rpartition(":")
    if not sep or not vnet or not ifname:
        r.problem(key, f'{text!r} is not "VNET:IFNAME" (e.g. "blue:ep0")')
        return None
    ok = True
    for error in (vnet_name_error(vnet), ifname_error(ifname)):
        if error is not None:
            r.problem(key, f"peer {text!r}: {error}")
            ok = False
    return (vnet, ifname) if ok else None


# -- the host side of a tap ---------------------------------------------------


def read_host(
    r: TomlReader,
    table: Mapping[str, object],
    key: str,
    tap_addresses: tuple[ParsedAddress, ...],
    ifname: str,
    advertised: bool,
) -> HostConfig:
    """Read the host side of TAP *ifname*: netns, addresses, gateways and SLAAC."""
    r.check_keys(table, key, _HOST_KEYS, required=("netns",))
    netns = r.string(table, "netns", key)
    if netns is not None and not NETNS.fullmatch(netns):
        r.problem(
            _join(key, "netns"),
            f"invalid netns name {netns!r}: must be 1-64 characters from "
            "[A-Za-z0-9_.-], starting with a letter or digit",
        )
    addresses, complete = read_addresses(r, table, key)
    for address in addresses:
        same = next((a for a in tap_addresses if a.value.ip == address.value.ip), None)
        if same is not None:
            r.problem(
                address.key,
                f"host address {address.value.ip} is also the router's address ({same.key})",
            )
    slaac = r.boolean(table, "slaac", key)
    if slaac and not advertised:
        r.problem(
            _join(key, "slaac"),
            f"slaac = true, but interface {ifname} sends no router advertisements; "
            "add ra = true to the interface",
        )
    dhcp = r.boolean(table, "dhcp", key)
    no_addresses = (
        complete
        and not addresses
        and not slaac
        and not dhcp
        and (slaac is not None or "slaac" not in table)
    )
    if no_addresses:
        r.problem(
            _join(key, "addresses"),
            "host has no addresses; give addresses, slaac = true or dhcp = true",
        )
    gateway = read_gateway(r, table, key, "gateway", addresses, check=not no_addresses)
    gateway6 = read_gateway(r, table, key, "gateway6", addresses, check=not no_addresses)
    return HostConfig(
        netns=netns or "",
        addresses=tuple(a.value for a in addresses),
        gateway=gateway if isinstance(gateway, IPv4Address) else None,
        gateway6=gateway6 if isinstance(gateway6, IPv6Address) else None,
        slaac=bool(slaac),
        dhcp=bool(dhcp),
    )


def read_gateway(
    r: TomlReader,
    table: Mapping[str, object],
    key: str,
    name: str,
    addresses: tuple[ParsedAddress, ...],
    check: bool,
) -> IPv4Address | IPv6Address | None:
    """Parse host ``gateway`` (IPv4) or ``gateway6`` (IPv6) *name*.

    With *check*, a gateway must be inside one of the host's address
    networks of its family; a link-local IPv6 one needs none.
    """
    text = r.string(table, name, key)
    if text is None:
        return None
    gkey = _join(key, name)
    parsed = parse_address(text)
    if isinstance(parsed, str):
        r.problem(gkey, parsed)
        return None
    version = 6 if name == "gateway6" else 4
    if parsed.version != version:
        if version == 4:
            r.problem(
                gkey,
                f"gateway {parsed} is IPv6; 'gateway' is the IPv4 default gateway, "
                f'write gateway6 = "{parsed}"',
            )
        else:
            r.problem(
                gkey,
                f"gateway6 {parsed} is IPv4; 'gateway6' is the IPv6 default gateway, "
                f'write gateway = "{parsed}"',
            )
        return None
    if any(a.value.ip == parsed for a in addresses):
        r.problem(gkey, f"{name} {parsed} is the host's own address")
        return parsed
    if not check or is_link_local(parsed):
        return parsed
    own = [
        a.value.network
        for a in addresses
        if a.value.version == version and not is_link_local(a.value.ip)
    ]
    if not any(parsed in network for network in own):
        networks = ", ".join(str(n) for n in own) or "none"
        if version == 4:
            reason = (
                f"gateway {parsed} is not inside any of the host's address networks ({networks})"
            )
        else:
            reason = (
                f"gateway6 {parsed} is not inside any of the host's IPv6 address "
                f"networks ({networks}); a link-local gateway6 (fe80::/10) needs none"
            )
        r.problem(gkey, reason)
    return parsed
