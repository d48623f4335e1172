"""Control requests that change the running vnets, and ``reload``.

Every handler here is a coroutine run under the daemon's lock, so changes
through the API, reloads, start-up and shutdown never interleave.  Handlers
check their arguments, then call :class:`~vrouter.daemon.ops.Ops`, which
validates against the running state before it changes anything; a refusal
comes back as an error naming the vnet and interface.  Who may make each
request is checked before the handler runs (``RIGHTS`` in
:mod:`vrouter.api.server`).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from vrouter.api.protocol import ApiError
from vrouter.daemon.ops import OpError, Ops, interface_config
from vrouter.route.fib import UNICAST
from vrouter.route.source import SourceError, source

if TYPE_CHECKING:
    from vrouter.daemon.main import Daemon

log = logging.getLogger("vrouter.api")

AsyncHandler = Callable[["Daemon", dict[str, Any]], Awaitable[Any]]


def _ops(daemon: Daemon) -> Ops:
    if daemon.ops is None:
        raise ApiError("the daemon is starting")
    return daemon.ops


def _text(args: dict[str, Any], key: str, what: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(f"this request needs {key!r} ({what})")
    return value


def _address(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    if "/" not in text:
        raise ApiError(f"address {text!r} needs a prefix length (ADDR/LEN)")
    try:
        return ipaddress.ip_interface(text)
    except ValueError as err:
        raise ApiError(f"bad address {text!r}: {err}") from None


def _end(text: str) -> tuple[str, str]:
    vnet, sep, name = text.partition(":")
    if not sep or not vnet or not name:
        raise ApiError(f"epair end {text!r}: expected VNET:INTERFACE")
    return vnet, name


async def _locked(daemon: Daemon, change: Callable[[Ops], Awaitable[Any]]) -> Any:
    async with daemon.lock:
        try:
            return await change(_ops(daemon))
        except OpError as err:
            raise ApiError(str(err)) from None


async def _vnet_create(daemon: Daemon, args: dict[str, Any]) -> Any:
    name = _text(args, "name", "the new vnet's name")

    async def change(ops: Ops) -> Any:
        vnet = ops.create_vnet(name)
        return {"name": vnet.name, "parent": vnet.parent.name if vnet.parent else None}

    return await _locked(daemon, change)


async def _vnet_destroy(daemon: Daemon, args: dict[str, Any]) -> Any:
    name = _text(args, "name", "the vnet's name")
    recursive = args.get("recursive", False)
    if not isinstance(recursive, bool):
        raise ApiError("'recursive' must be true or false")

    async def change(ops: Ops) -> Any:
        return {"destroyed": await ops.destroy_vnet(name, recursive)}

    return await _locked(daemon, change)


async def _vnet_tree(daemon: Daemon, args: dict[str, Any]) -> Any:
    name = args.get("name") or ""
    if not isinstance(name, str):
        raise ApiError("'name' must be a vnet name")

    async def view(ops: Ops) -> Any:
        return ops.tree_of(name)

    return await _locked(daemon, view)


async def _interface_move(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _text(args, "vnet", "the vnet the interface is in")
    name = _text(args, "interface", "the interface's name")
    to = _text(args, "to", "the vnet to move it to")

    async def change(ops: Ops) -> Any:
        ifp = ops.move_interface(vnet, name, to)
        return {"interface": ifp.name, "from": vnet, "to": ifp.vnet.name, "index": ifp.index}

    return await _locked(daemon, change)


async def _interface_destroy(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _text(args, "vnet", "the vnet the interface is in")
    name = _text(args, "interface", "the interface's name")

    async def change(ops: Ops) -> Any:
        gone = await ops.destroy_interface(vnet, name)
        return {"destroyed": [f"{v}:{i}" for v, i in gone]}

    return await _locked(daemon, change)


def _mtu(args: dict[str, Any]) -> int:
    mtu = args.get("mtu", 1500)
    if isinstance(mtu, bool) or not isinstance(mtu, int):
        raise ApiError("'mtu' must be an integer")
    return mtu


def _addresses(
    args: dict[str, Any], key: str
) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    value = args.get(key, [])
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ApiError(f"{key!r} must be a list of ADDR/LEN strings")
    return [_address(a) for a in value]


async def _epair_create(daemon: Daemon, args: dict[str, Any]) -> Any:
    a_vnet, a_name = _end(_text(args, "a", "one end, VNET:INTERFACE"))
    b_vnet, b_name = _end(_text(args, "b", "the other end, VNET:INTERFACE"))
    mtu = _mtu(args)
    a = interface_config(
        a_name, "epair", _addresses(args, "a_addresses"), mtu, peer=(b_vnet, b_name)
    )
    b = interface_config(
        b_name, "epair", _addresses(args, "b_addresses"), mtu, peer=(a_vnet, a_name)
    )

    async def change(ops: Ops) -> Any:
        ifa, ifb = ops.create_epair(a_vnet, a, b_vnet, b)
        return {
            "a": {"vnet": a_vnet, "interface": ifa.name, "mac": ifa.mac.hex(":")},
            "b": {"vnet": b_vnet, "interface": ifb.name, "mac": ifb.mac.hex(":")},
        }

    return await _locked(daemon, change)


async def _tap_create(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _text(args, "vnet", "the vnet to create it in")
    name = _text(args, "interface", "the TAP's name")
    icfg = interface_config(name, "tap", _addresses(args, "addresses"), _mtu(args))

    async def change(ops: Ops) -> Any:
        ifp = await ops.create_interface(vnet, icfg)
        return {"vnet": vnet, "interface": ifp.name, "mac": ifp.mac.hex(":")}

    return await _locked(daemon, change)


async def _address_change(daemon: Daemon, args: dict[str, Any], add: bool) -> Any:
    vnet = _text(args, "vnet", "the vnet")
    name = _text(args, "interface", "the interface's name")
    address = _address(_text(args, "address", "ADDR/LEN"))

    async def change(ops: Ops) -> Any:
        if add:
            ops.add_address(vnet, name, address)
        else:
            ops.remove_address(vnet, name, address)
        return {"vnet": vnet, "interface": name, "address": str(address)}

    return await _locked(daemon, change)


async def _address_add(daemon: Daemon, args: dict[str, Any]) -> Any:
    return await _address_change(daemon, args, True)


async def _address_del(daemon: Daemon, args: dict[str, Any]) -> Any:
    return await _address_change(daemon, args, False)


def _prefix(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if text == "default":
        raise ApiError("write the default route as 0.0.0.0/0 or ::/0")
    try:
        return ipaddress.ip_network(text)
    except ValueError as err:
        raise ApiError(f"bad prefix {text!r}: {err}") from None


async def _route_add(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _text(args, "vnet", "the vnet")
    prefix = _prefix(_text(args, "prefix", "the destination, ADDR/LEN"))
    type_ = args.get("type", UNICAST)
    if not isinstance(type_, str):
        raise ApiError("'type' must be unicast, blackhole or reject")
    via_text = args.get("via")
    via = None
    if via_text is not None:
        if not isinstance(via_text, str):
            raise ApiError("'via' must be an address")
        try:
            via = ipaddress.ip_address(via_text)
        except ValueError as err:
            raise ApiError(f"bad next hop {via_text!r}: {err}") from None
    interface = args.get("interface")
    if interface is not None and not isinstance(interface, str):
        raise ApiError("'interface' must be an interface name")
    try:
        static = source("static", args.get("distance"))
    except (SourceError, TypeError) as err:
        raise ApiError(f"'distance': {err}") from None

    async def change(ops: Ops) -> Any:
        route = ops.add_route(vnet, prefix, type_, via, interface, static)
        return ops.describe_route(vnet, route)

    return await _locked(daemon, change)


async def _route_del(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _text(args, "vnet", "the vnet")
    prefix = _prefix(_text(args, "prefix", "the destination, ADDR/LEN"))

    async def change(ops: Ops) -> Any:
        return ops.remove_route(vnet, prefix).describe()

    return await _locked(daemon, change)


async def _module_change(daemon: Daemon, args: dict[str, Any], load: bool) -> Any:
    name = _text(args, "name", "the subsystem's name")

    async def change(ops: Ops) -> Any:
        subsystem = ops.load_module(name) if load else ops.unload_module(name)
        return {
            "name": subsystem.name,
            "loaded": load,
            "depends": list(subsystem.depends),
            "vnets": len(ops.tree),
            "modules": ops.tree.registry.names(),
        }

    return await _locked(daemon, change)


async def _module_load(daemon: Daemon, args: dict[str, Any]) -> Any:
    return await _module_change(daemon, args, True)


async def _module_unload(daemon: Daemon, args: dict[str, Any]) -> Any:
    return await _module_change(daemon, args, False)


async def _reload(daemon: Daemon, args: dict[str, Any]) -> Any:
    """Reload the config file; from a front: its ``_text``, ``_tops``, and ``_check`` (dry run)."""
    from vrouter.daemon import reload

    text, tops = args.get("_text"), args.get("_tops")
    text = text if isinstance(text, str) else None
    tops = [str(t) for t in tops] if isinstance(tops, list) else None
    try:
        if args.get("_check") is True:
            steps = await reload.check(daemon, text, tops)
        else:
            steps = await daemon.reload(text, tops)
    except reload.ReloadError as err:
        if text is not None:  # the front says it in its own words
            raise ApiError(str(err)) from None
        raise ApiError(f"reload failed, the running configuration is kept:\n{err}") from None
    return {"config": daemon.config.path, "changes": [str(s) for s in steps]}


HANDLERS: dict[str, AsyncHandler] = {
    "vnet.create": _vnet_create,
    "vnet.destroy": _vnet_destroy,
    "vnet.tree": _vnet_tree,
    "interface.move": _interface_move,
    "interface.destroy": _interface_destroy,
    "tap.create": _tap_create,
    "epair.create": _epair_create,
    "address.add": _address_add,
    "address.del": _address_del,
    "route.add": _route_add,
    "route.del": _route_del,
    "module.load": _module_load,
    "module.unload": _module_unload,
    "reload": _reload,
}
