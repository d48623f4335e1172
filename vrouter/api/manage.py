"""Changes: the control operations that change the running vnets, and ``reload``.

Each handler takes the :class:`~vrouter.api.host.Host` and the request's
checked arguments (:mod:`vrouter.api.operations` declares them), parses
what only it understands (addresses, prefixes, ``VNET:INTERFACE`` ends)
and calls :class:`~vrouter.daemon.ops.Ops`, the only code that changes a
vnet; Ops validates against the running state before it changes anything
and raises :class:`~vrouter.core.errors.OpError` naming the vnet and the
interface.  The server runs these handlers under the daemon's lock
(``runs="locked"``), so changes through the API, reloads, start-up and
shutdown never interleave; who may make each request is checked before.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from vrouter.api.host import Host, ops_of
from vrouter.api.protocol import ApiError
from vrouter.link import vxlan as vxlan_
from vrouter.link.stp import StpSettings
from vrouter.route.source import SourceError, source
from vrouter.route.weight import split_weight

Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network
STP_KEYS = ("priority", "hello_time", "max_age", "forward_delay", "stp_protocol")


def _address(text: str) -> Address:
    if "/" not in text:
        raise ApiError(f"address {text!r} needs a prefix length (ADDR/LEN)")
    try:
        return _interface(text)
    except ValueError as err:
        raise ApiError(f"bad address {text!r}: {err}") from None


@functools.lru_cache(maxsize=4096)
def _interface(text: str) -> Address:
    """Parse an interface address once per text (vnets made alike share the value, which
    is immutable; a refused text raises every time)."""
    return ipaddress.ip_interface(text)


def _addresses(texts: list[str]) -> list[Address]:
    return [_address(text) for text in texts]


def _end(text: str) -> tuple[str, str]:
    vnet, sep, name = text.partition(":")
    if not sep or not vnet or not name:
        raise ApiError(f"epair end {text!r}: expected VNET:INTERFACE")
    return vnet, name


def parse_prefix(text: str) -> Prefix:
    """Return the prefix ``text`` names (ADDR/LEN); ApiError saying what is wrong."""
    if text == "default":
        raise ApiError("write the default route as 0.0.0.0/0 or ::/0")
    try:
        return ipaddress.ip_network(text)
    except ValueError as err:
        raise ApiError(f"bad prefix {text!r}: {err}") from None


# -- vnets -------------------------------------------------------------------------------


async def vnet_create(host: Host, args: dict[str, Any]) -> Any:
    vnet = ops_of(host).create_vnet(args["name"])
    return {"name": vnet.name, "parent": vnet.parent.name if vnet.parent else None}


async def vnet_destroy(host: Host, args: dict[str, Any]) -> Any:
    return {"destroyed": await ops_of(host).destroy_vnet(args["name"], args["recursive"])}


async def vnet_tree(host: Host, args: dict[str, Any]) -> Any:
    return ops_of(host).tree_of(args["name"])


# -- interfaces and addresses ------------------------------------------------------------


async def interface_move(host: Host, args: dict[str, Any]) -> Any:
    vnet, name = args["vnet"], args["interface"]
    ifp = ops_of(host).move_interface(vnet, name, args["to"])
    return {"interface": ifp.name, "from": vnet, "to": ifp.vnet.name, "index": ifp.index}


async def interface_destroy(host: Host, args: dict[str, Any]) -> Any:
    gone = await ops_of(host).destroy_interface(args["vnet"], args["interface"])
    return {"destroyed": [f"{v}:{i}" for v, i in gone]}


async def epair_create(host: Host, args: dict[str, Any]) -> Any:
    a, b = _end(args["a"]), _end(args["b"])
    a_addresses, b_addresses = _addresses(args["a_addresses"]), _addresses(args["b_addresses"])
    ifa, ifb = ops_of(host).create_epair_between(a, a_addresses, b, b_addresses, args["mtu"])
    return {
        "a": {"vnet": a[0], "interface": ifa.name, "mac": ifa.mac.hex(":")},
        "b": {"vnet": b[0], "interface": ifb.name, "mac": ifb.mac.hex(":")},
    }


async def tap_create(host: Host, args: dict[str, Any]) -> Any:
    vnet = args["vnet"]
    addresses = _addresses(args["addresses"])
    ifp = await ops_of(host).create_tap(vnet, args["interface"], addresses, args["mtu"])
    return {"vnet": vnet, "interface": ifp.name, "mac": ifp.mac.hex(":")}


async def bridge_create(host: Host, args: dict[str, Any]) -> Any:
    stp = _stp_settings(args)
    ifp = await ops_of(host).create_bridge(
        args["vnet"],
        args["interface"],
        args["members"],
        _addresses(args["addresses"]),
        args["vlan_filtering"],
        args["pvid"],
        args.get("mtu"),
        stp,
    )
    return {"vnet": args["vnet"], "interface": ifp.name, "mac": ifp.mac.hex(":"),
            "members": list(args["members"]), "stp": stp is not None}  # fmt: skip


def _stp_settings(args: dict[str, Any]) -> StpSettings | None:
    """The spanning tree settings of a new bridge (None: ``stp`` is not true), as the config's."""
    given = {k: args[k] for k in STP_KEYS if args.get(k) is not None}
    if not args.get("stp"):
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise ApiError(f"vnet {args['vnet']}: {args['interface']}: "
                           f"{', '.join(given)} {verb} stp on the bridge")  # fmt: skip
        return None
    protocol = given.pop("stp_protocol", "stp")
    return StpSettings(**given, protocol=protocol)


async def bridge_port_add(host: Host, args: dict[str, Any]) -> Any:
    ops_of(host).add_bridge_port(
        args["vnet"], args["bridge"], args["interface"], args["pvid"], args["tagged"],
        args["storm_pps"], args["path_cost"], args["port_priority"], bool(args.get("edge")),
        args.get("auto_edge") is not False,
    )  # fmt: skip
    return {"vnet": args["vnet"], "bridge": args["bridge"], "interface": args["interface"],
            "added": True}  # fmt: skip


async def bridge_stp(host: Host, args: dict[str, Any]) -> Any:
    bridge = ops_of(host).set_bridge_stp(
        args["vnet"], args["bridge"], args.get("stp"), args.get("priority"),
        args.get("hello_time"), args.get("max_age"), args.get("forward_delay"),
        args.get("stp_protocol"),
    )  # fmt: skip
    return {"vnet": args["vnet"], **bridge.describe(host.driver.now())}


async def bridge_port_stp(host: Host, args: dict[str, Any]) -> Any:
    port = ops_of(host).set_bridge_port_stp(
        args["vnet"], args["bridge"], args["interface"], args.get("path_cost"),
        args.get("port_priority"), args.get("edge"), args.get("auto_edge"),
        bool(args.get("mcheck")),
    )  # fmt: skip
    return {"vnet": args["vnet"], "bridge": args["bridge"],
            **port.describe(host.driver.now())}  # fmt: skip


async def bridge_port_del(host: Host, args: dict[str, Any]) -> Any:
    ops_of(host).remove_bridge_port(args["vnet"], args["bridge"], args["interface"])
    return {"vnet": args["vnet"], "bridge": args["bridge"], "interface": args["interface"],
            "added": False}  # fmt: skip


async def bridge_fdb_add(host: Host, args: dict[str, Any]) -> Any:
    entry = ops_of(host).add_fdb(
        args["vnet"], args["mac"], args["port"], args.get("vlan"), args["dst"] or None
    )
    return {"vnet": args["vnet"], "bridge": entry.port.bridge.ifnet.name, "port": args["port"],
            "mac": entry.mac.hex(":"), "vlan": entry.vid, "dst": entry.dst,
            "added": True}  # fmt: skip


async def bridge_fdb_del(host: Host, args: dict[str, Any]) -> Any:
    entry = ops_of(host).del_fdb(args["vnet"], args["mac"], args["port"], args.get("vlan"))
    return {"vnet": args["vnet"], "bridge": entry.port.bridge.ifnet.name, "port": args["port"],
            "mac": entry.mac.hex(":"), "vlan": entry.vid, "dst": entry.dst,
            "added": False}  # fmt: skip


async def vlan_create(host: Host, args: dict[str, Any]) -> Any:
    ifp = await ops_of(host).create_vlan(
        args["vnet"],
        args["parent"],
        args["vid"],
        args.get("interface"),
        _addresses(args["addresses"]),
        args.get("mtu"),
    )
    return {"vnet": args["vnet"], "interface": ifp.name, "mac": ifp.mac.hex(":"),
            "parent": args["parent"], "vid": args["vid"]}  # fmt: skip


async def vxlan_create(host: Host, args: dict[str, Any]) -> Any:
    ifp = await ops_of(host).create_vxlan(
        args["vnet"],
        args["interface"],
        args["vni"],
        args["local"],
        port=args["port"],
        remotes=args["remotes"],
        group=args["group"] or None,
        learning=args["learning"],
        addresses=_addresses(args["addresses"]),
        mtu=args.get("mtu"),
        underlay=args["underlay"] or None,
        tunnel_gso=args["tunnel_gso"],
    )
    vx = vxlan_.of(ifp)
    return {"vnet": args["vnet"], "interface": ifp.name, "mac": ifp.mac.hex(":"),
            "vni": args["vni"], "mtu": ifp.mtu,
            "tunnel_gso": "" if vx is None else vx.tunnel_gso}  # fmt: skip


async def address_add(host: Host, args: dict[str, Any]) -> Any:
    address = _address(args["address"])
    ops_of(host).add_address(args["vnet"], args["interface"], address)
    return {"vnet": args["vnet"], "interface": args["interface"], "address": str(address)}


async def address_del(host: Host, args: dict[str, Any]) -> Any:
    address = _address(args["address"])
    ops_of(host).remove_address(args["vnet"], args["interface"], address)
    return {"vnet": args["vnet"], "interface": args["interface"], "address": str(address)}


# -- routes ------------------------------------------------------------------------------


async def route_add(host: Host, args: dict[str, Any]) -> Any:
    prefix = parse_prefix(args["prefix"])
    via = None
    if "via" in args:
        try:
            via = ipaddress.ip_address(args["via"])
        except ValueError as err:
            raise ApiError(f"bad next hop {args['via']!r}: {err}") from None
    try:
        static = source("static", args.get("distance"))
    except SourceError as err:
        raise ApiError(f"'distance': {err}") from None
    ops = ops_of(host)
    hops = [_path(text) for text in args.get("paths", ())]
    route = ops.add_route(
        args["vnet"], prefix, args["type"], via, args.get("interface"), static,
        [(address, interface) for address, interface, _ in hops], [w for _, _, w in hops],
    )  # fmt: skip
    return ops.describe_route(args["vnet"], route)


def _path(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str | None, int]:
    """Read one path of a multipath route: ``ADDR[%INTERFACE] [weight N]``."""
    try:
        hop, weight = split_weight(text)
        address, _, interface = hop.partition("%")
        return ipaddress.ip_address(address), interface or None, weight
    except ValueError as err:
        raise ApiError(f"bad next hop {text!r} in 'paths': {err}") from None


async def route_del(host: Host, args: dict[str, Any]) -> Any:
    route = ops_of(host).remove_route(args["vnet"], parse_prefix(args["prefix"]))
    return route.describe()


# -- knobs and the firewall --------------------------------------------------------------


async def sysctl_set(host: Host, args: dict[str, Any]) -> Any:
    settings = args["settings"]
    if not settings:
        raise ApiError("'settings' must name at least one sysctl")
    return ops_of(host).set_sysctls(args["vnet"], settings)


async def firewall_load(host: Host, args: dict[str, Any]) -> Any:
    ruleset = ops_of(host).load_ruleset(args["vnet"], args["text"], args["source"])
    return {"rules": len(ruleset.rules), "default": ruleset.default}


async def firewall_flush(host: Host, args: dict[str, Any]) -> Any:
    return {"flushed": ops_of(host).flush_states(args["vnet"])}


# -- subsystems and the config -----------------------------------------------------------


async def _module_change(host: Host, name: str, load: bool) -> Any:
    ops = ops_of(host)
    subsystem = ops.load_module(name) if load else ops.unload_module(name)
    return {
        "name": subsystem.name,
        "loaded": load,
        "depends": list(subsystem.depends),
        "vnets": len(ops.tree),
        "modules": ops.tree.registry.names(),
    }


async def module_load(host: Host, args: dict[str, Any]) -> Any:
    return await _module_change(host, args["name"], True)


async def module_unload(host: Host, args: dict[str, Any]) -> Any:
    return await _module_change(host, args["name"], False)


async def reload(host: Host, args: dict[str, Any]) -> Any:
    """Reload the config file; from a front: its ``_text``, ``_tops``, and ``_check`` (dry run).

    Not run under the lock here: the reload takes it itself, bracketed by
    systemd's RELOADING=1 and READY=1.
    """
    text, tops = args.get("_text"), args.get("_tops")
    text = text if isinstance(text, str) else None
    tops = [str(t) for t in tops] if isinstance(tops, list) else None
    changes = await host.reload_request(text, tops, args.get("_check") is True)
    return {"config": host.config.path, "changes": changes}
