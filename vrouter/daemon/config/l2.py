"""Reading and checking bridges, VLAN and VXLAN interfaces.

Responsibility: ``read_bridge`` reads the keys of a ``type = "bridge"``
interface (``members``, ``vlan_filtering``, ``pvid``, ``storm_pps``, the
spanning tree's ``stp``, ``stp_protocol``, ``priority``, ``hello_time``,
``max_age`` and ``forward_delay``, the per-member ``ports.NAME`` tables and the static
``fdb`` entries);
``read_vlan`` reads ``parent`` and ``vid`` of a ``type = "vlan"`` one;
``read_vxlan`` reads ``vni``, ``local``, ``port``, ``remotes``, ``group``
and ``learning`` of a ``type = "vxlan"`` one;
``check_l2`` checks what involves other interfaces of the vnet: members
exist, are TAPs, epairs, VLANs or VXLANs, belong to one bridge, carry no
address and are not smaller than the bridge; a VLAN's parent exists, is a TAP, an epair
or a bridge (not a member) and is not smaller than the VLAN.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from vrouter.core.tomlkeys import TomlReader
from vrouter.core.tomlkeys import join as _join
from vrouter.daemon.config.grammar import ifname_error, parse_mac
from vrouter.daemon.config.model import (
    STORM_PPS_MAX,
    VID_MAX,
    VID_MIN,
    BridgeConfig,
    BridgePortConfig,
    StaticFdbConfig,
    VxlanConfig,
)
from vrouter.daemon.config.parsed import ParsedVnet
from vrouter.link import stp as stp_
from vrouter.wire.vxlan import VNI_MAX

STP_KEYS = ("stp", "stp_protocol", "priority", "hello_time", "max_age", "forward_delay")
BRIDGE_KEYS = ("members", "vlan_filtering", "pvid", "storm_pps", "ports", "fdb", *STP_KEYS)
VLAN_KEYS = ("parent", "vid")
VXLAN_KEYS = ("vni", "local", "port", "remotes", "group", "learning", "underlay", "tunnel_gso")
_PORT_KEYS = ("pvid", "tagged", "storm_pps", "path_cost", "port_priority", "edge", "auto_edge")
_FDB_KEYS = ("mac", "port", "vid", "dst")
MEMBER_TYPES = ("tap", "epair", "vlan", "vxlan")
PARENT_TYPES = ("tap", "epair", "bridge")


def _vid(r: TomlReader, table: Mapping[str, object], name: str, key: str, zero: bool) -> int | None:
    """Read a VLAN ID (``zero``: 0 allowed, meaning none)."""
    value = r.integer(table, name, key)
    if value is None:
        return None
    low = 0 if zero else VID_MIN
    if not low <= value <= VID_MAX:
        r.problem(_join(key, name), f"VLAN ID {value} is out of range {low}..{VID_MAX}")
        return None
    return value


def _storm(r: TomlReader, table: Mapping[str, object], key: str) -> int | None:
    value = r.integer(table, "storm_pps", key)
    if value is not None and not 0 <= value <= STORM_PPS_MAX:
        r.problem(_join(key, "storm_pps"), f"storm_pps {value} is out of range 0..{STORM_PPS_MAX}")
        return None
    return value


def _ranged(
    r: TomlReader, table: Mapping[str, object], name: str, key: str, low: int, high: int,
    default: int, unit: str = "",
) -> int:  # fmt: skip
    """Read integer ``name`` in ``low..high`` (absent or wrong: ``default``)."""
    value = r.integer(table, name, key)
    if value is None:
        return default
    if not low <= value <= high:
        r.problem(_join(key, name), f"{name} {value} is out of range {low}..{high}{unit}")
        return default
    return value


def _stp(r: TomlReader, table: Mapping[str, object], key: str) -> stp_.StpSettings | None:
    """Read the spanning tree keys of a bridge (None: ``stp`` is not true)."""
    times = {}
    before = len(r.problems)
    for name, (default, low, high) in (
        ("hello_time", stp_.HELLO_TIME), ("max_age", stp_.MAX_AGE),
        ("forward_delay", stp_.FORWARD_DELAY),
    ):  # fmt: skip
        times[name] = _ranged(r, table, name, key, low, high, default, " seconds")
    times_ok = len(r.problems) == before
    priority = _ranged(r, table, "priority", key, 0, stp_.PRIORITY_MAX, stp_.DEFAULT_PRIORITY)
    protocol = r.string(table, "stp_protocol", key) or "stp"
    if protocol not in stp_.PROTOCOLS:
        r.problem(
            _join(key, "stp_protocol"),
            f"stp_protocol {protocol!r} is not one of {', '.join(stp_.PROTOCOLS)}",
        )
        protocol = "stp"
    on = r.boolean(table, "stp", key)
    if not on:
        for name in STP_KEYS[1:]:
            if name in table:
                r.problem(_join(key, name), f"{name} needs stp = true on the bridge")
        return None
    settings = stp_.StpSettings(
        priority, times["hello_time"], times["max_age"], times["forward_delay"], protocol
    )
    relation = settings.timer_problem()
    if relation and times_ok:  # each time in its range, together not
        r.problem(_join(key, "max_age"), relation)
    return settings


def read_bridge(r: TomlReader, table: Mapping[str, object], key: str) -> BridgeConfig:
    """Read the bridge keys of interface table ``table`` at ``key``."""
    mkey = _join(key, "members")
    members: list[str] = []
    value = table.get("members", [])
    if not isinstance(value, list):
        r.wrong_type(mkey, "an array of interface names", value)
        value = []
    for index, item in enumerate(value):
        ikey = f"{mkey}[{index}]"
        if not isinstance(item, str):
            r.wrong_type(ikey, "a string", item)
            continue
        error = ifname_error(item)
        if error is not None:
            r.problem(ikey, error)
        elif item in members:
            r.problem(ikey, f"member {item} is listed twice")
        else:
            members.append(item)
    filtering = bool(r.boolean(table, "vlan_filtering", key))
    pvid = _vid(r, table, "pvid", key, zero=False) or 1
    stp = _stp(r, table, key)
    storm = _storm(r, table, key) or 0
    settings: dict[str, BridgePortConfig] = {}
    pkey = _join(key, "ports")
    for name, ptable in (r.table(table, "ports", key) or {}).items():
        tkey = _join(pkey, name)
        if not isinstance(ptable, dict):
            r.wrong_type(tkey, "a table", ptable)
            continue
        r.check_keys(ptable, tkey, _PORT_KEYS)
        if name not in members:
            r.problem(tkey, f"{name} is not in members ({', '.join(members) or 'none'})")
            continue
        if not filtering and ("pvid" in ptable or "tagged" in ptable):
            r.problem(tkey, "pvid and tagged need vlan_filtering = true on the bridge")
        tagged: list[int] = []
        tvalue = ptable.get("tagged", [])
        if not isinstance(tvalue, list):
            r.wrong_type(_join(tkey, "tagged"), "an array of VLAN IDs", tvalue)
            tvalue = []
        for index, vid in enumerate(tvalue):
            vkey = f"{_join(tkey, 'tagged')}[{index}]"
            if isinstance(vid, bool) or not isinstance(vid, int):
                r.wrong_type(vkey, "an integer", vid)
            elif not VID_MIN <= vid <= VID_MAX:
                r.problem(vkey, f"VLAN ID {vid} is out of range {VID_MIN}..{VID_MAX}")
            elif vid not in tagged:
                tagged.append(vid)
        port_pvid = _vid(r, ptable, "pvid", tkey, zero=True)
        port_pvid = 1 if port_pvid is None else port_pvid
        if port_pvid and port_pvid in tagged:
            r.problem(_join(tkey, "tagged"), f"VLAN {port_pvid} is the port's pvid (untagged)")
        port_storm = _storm(r, ptable, tkey)
        cost = _ranged(r, ptable, "path_cost", tkey, 1, stp_.PATH_COST_MAX, stp_.DEFAULT_PATH_COST)
        port_priority = _ranged(
            r, ptable, "port_priority", tkey, 0, stp_.PORT_PRIORITY_MAX, stp_.DEFAULT_PORT_PRIORITY
        )
        edge = r.boolean(ptable, "edge", tkey)
        auto_edge = r.boolean(ptable, "auto_edge", tkey)
        settings[name] = BridgePortConfig(
            name, port_pvid, tuple(sorted(tagged)), storm if port_storm is None else port_storm,
            cost, port_priority, bool(edge), True if auto_edge is None else auto_edge,
        )  # fmt: skip
    ports = tuple(settings.get(m) or BridgePortConfig(m, 1, (), storm) for m in members)
    fdb: list[StaticFdbConfig] = []
    fkey = _join(key, "fdb")
    fvalue = table.get("fdb", [])
    if not isinstance(fvalue, list):
        r.wrong_type(fkey, "an array of tables ([[...fdb]])", fvalue)
        fvalue = []
    by_name = {p.name: p for p in ports}
    for index, item in enumerate(fvalue):
        ekey = f"{fkey}[{index}]"
        if not isinstance(item, dict):
            r.wrong_type(ekey, "a table", item)
            continue
        r.check_keys(item, ekey, _FDB_KEYS, required=("mac", "port"))
        mac_text = r.string(item, "mac", ekey)
        port = r.string(item, "port", ekey)
        vid = _vid(r, item, "vid", ekey, zero=False)
        dst = _vtep_address(r, item["dst"], _join(ekey, "dst")) if "dst" in item else None
        if dst is not None and (dst.is_multicast or dst.is_unspecified):
            r.problem(_join(ekey, "dst"), f"{dst} is not a unicast address")
            continue
        if mac_text is None or port is None:
            continue
        mac = parse_mac(mac_text)
        if isinstance(mac, str):
            r.problem(_join(ekey, "mac"), mac)
            continue
        member = by_name.get(port)
        if member is None:
            r.problem(_join(ekey, "port"), f"{port} is not a member of this bridge")
            continue
        if vid is not None and not filtering:
            r.problem(_join(ekey, "vid"), "vid needs vlan_filtering = true on the bridge")
            continue
        if filtering and vid is not None and vid != member.pvid and vid not in member.tagged:
            r.problem(_join(ekey, "vid"), f"port {port} does not carry VLAN {vid}")
            continue
        fdb.append(StaticFdbConfig(mac, port, vid, dst))
    return BridgeConfig(ports, filtering, pvid, tuple(fdb), stp)


def read_vlan(r: TomlReader, table: Mapping[str, object], key: str) -> tuple[str, int] | None:
    """Read ``parent`` and ``vid`` of a vlan interface."""
    parent = r.string(table, "parent", key)
    if parent is not None:
        error = ifname_error(parent)
        if error is not None:
            r.problem(_join(key, "parent"), error)
            parent = None
    vid = _vid(r, table, "vid", key, zero=False)
    if parent is None or vid is None:
        return None
    return parent, vid


def _vtep_address(
    r: TomlReader, value: object, key: str
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        r.wrong_type(key, "an IP address (a string)", value)
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        r.problem(key, f"{value!r} is not an IP address")
        return None


def read_vxlan(r: TomlReader, table: Mapping[str, object], key: str) -> VxlanConfig | None:
    """Read the VTEP keys of a vxlan interface."""
    vni = r.integer(table, "vni", key)
    if vni is not None and not 0 <= vni <= VNI_MAX:
        r.problem(_join(key, "vni"), f"VNI {vni} is out of range 0..{VNI_MAX}")
        vni = None
    local = _vtep_address(r, table["local"], _join(key, "local")) if "local" in table else None
    if local is not None and (local.is_multicast or local.is_unspecified):
        r.problem(_join(key, "local"), f"{local} is not a unicast address")
        local = None
    port = r.integer(table, "port", key)
    if port is not None and not 1 <= port <= 65535:
        r.problem(_join(key, "port"), f"port {port} is out of range 1..65535")
        port = None
    remotes: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    rkey = _join(key, "remotes")
    value = table.get("remotes", [])
    if not isinstance(value, list):
        r.wrong_type(rkey, "an array of IP addresses", value)
        value = []
    for index, item in enumerate(value):
        ikey = f"{rkey}[{index}]"
        address = _vtep_address(r, item, ikey)
        if address is None:
            continue
        if address.is_multicast or address.is_unspecified:
            r.problem(ikey, f"{address} is not a unicast address (a group goes in 'group')")
        elif local is not None and address.version != local.version:
            r.problem(ikey, f"{address} is not of the family of local {local}")
        elif address == local:
            r.problem(ikey, f"{address} is the local address")
        elif address in remotes:
            r.problem(ikey, f"remote {address} is listed twice")
        else:
            remotes.append(address)
    group = None
    if "group" in table:
        gkey = _join(key, "group")
        group = _vtep_address(r, table["group"], gkey)
        if group is not None and not group.is_multicast:
            r.problem(gkey, f"{group} is not a multicast address")
            group = None
        elif group is not None and local is not None and group.version != local.version:
            r.problem(gkey, f"{group} is not of the family of local {local}")
            group = None
        if remotes and group is not None:
            r.problem(gkey, "a vxlan interface has either remotes or a group, not both")
    learning = r.boolean(table, "learning", key)
    underlay = r.string(table, "underlay", key)
    tunnel_gso = r.boolean(table, "tunnel_gso", key)
    if tunnel_gso and underlay is not None:
        r.problem(
            _join(key, "tunnel_gso"),
            "tunnel_gso hands super-frames to the host's kernel; a vnet underlay has none",
        )
    if vni is None or local is None:
        return None
    return VxlanConfig(
        vni,
        local,
        4789 if port is None else port,
        tuple(remotes),
        group,
        True if learning is None else learning,
        underlay,
        bool(tunnel_gso),
    )


def check_l2(r: TomlReader, vnet: ParsedVnet) -> None:
    """Check bridge members and VLAN parents against the other interfaces of ``vnet``."""
    owner: dict[str, str] = {}
    parents: dict[tuple[str, int], str] = {}
    for iface in vnet.interfaces:
        if iface.vlan is not None:
            parent_name, vid = iface.vlan
            parent = vnet.interface(parent_name)
            pkey = _join(iface.key, "parent")
            if parent is None:
                r.problem(pkey, f"vnet {vnet.name} has no interface {parent_name!r}")
            elif parent.type is not None and parent.type not in PARENT_TYPES:
                r.problem(
                    pkey,
                    f"{parent_name} is a {parent.type} interface; a VLAN rides on a "
                    f"{', '.join(PARENT_TYPES)}",
                )
            elif parent.mtu < iface.mtu:
                r.problem(
                    _join(iface.key, "mtu"),
                    f"mtu {iface.mtu} is larger than its parent {parent_name}'s ({parent.mtu})",
                )
            if (parent_name, vid) in parents:
                r.problem(
                    _join(iface.key, "vid"),
                    f"{parent_name} already has VLAN {vid} ({parents[(parent_name, vid)]})",
                )
            parents[(parent_name, vid)] = iface.name
        if iface.bridge is None:
            continue
        for index, name in enumerate(iface.bridge.members):
            mkey = f"{_join(iface.key, 'members')}[{index}]"
            member = vnet.interface(name)
            if name == iface.name:
                r.problem(mkey, "a bridge cannot be a member of itself")
                continue
            if member is None:
                r.problem(mkey, f"vnet {vnet.name} has no interface {name!r}")
                continue
            if member.type is not None and member.type not in MEMBER_TYPES:
                r.problem(
                    mkey,
                    f"{name} is a {member.type} interface; members are "
                    f"{', '.join(MEMBER_TYPES)} interfaces",
                )
                continue
            if name in owner:
                r.problem(mkey, f"{name} is already a member of bridge {owner[name]}")
                continue
            owner[name] = iface.name
            if member.addresses or member.advertises:
                r.problem(
                    _join(member.key, "addresses" if member.addresses else "ra"),
                    f"{name} is a member of bridge {iface.name}: a member is no L3 "
                    f"interface; give the addresses to {iface.name}",
                )
            if member.mtu < iface.mtu:
                r.problem(
                    _join(iface.key, "mtu"),
                    f"mtu {iface.mtu} is larger than member {name}'s ({member.mtu})",
                )
    _check_fdb_dst(r, vnet)
    for iface in vnet.interfaces:
        if iface.vlan is not None and iface.vlan[0] in owner:
            r.problem(
                _join(iface.key, "parent"),
                f"{iface.vlan[0]} is a member of bridge {owner[iface.vlan[0]]}; put the "
                f"VLAN on the bridge (vlan_filtering) instead",
            )


def _check_fdb_dst(r: TomlReader, vnet: ParsedVnet) -> None:
    """Check that a static FDB entry's ``dst`` names a VTEP its vxlan port can reach."""
    for iface in vnet.interfaces:
        if iface.bridge is None:
            continue
        for index, entry in enumerate(iface.bridge.fdb):
            if entry.dst is None:
                continue
            key = _join(f"{_join(iface.key, 'fdb')}[{index}]", "dst")
            port = vnet.interface(entry.port)
            vxlan = port.vxlan if port is not None else None
            if vxlan is None:
                r.problem(key, f"{entry.port} is not a vxlan interface: dst needs one")
            elif entry.dst.version != vxlan.local.version or entry.dst == vxlan.local:
                r.problem(
                    key, f"{entry.dst} is not a remote address of local {vxlan.local}'s family"
                )
