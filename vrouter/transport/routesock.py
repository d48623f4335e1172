"""Route sockets: a vnet's FIB, interfaces and addresses, read and changed by message.

Modelled on the BSD routing socket (route(4)), with JSON instead of
``struct rt_msghdr``: each DATA message's payload is one JSON object.

Requests (``seq`` is echoed in the reply):

- ``{"type": "RTM_ADD", "seq": 1, "prefix": "198.51.100.0/24", "gateway": "203.0.113.2",
  "interface": null, "route_type": "unicast"}`` — ``route_type`` may be ``blackhole``
  or ``reject``; ``gateway`` and ``interface`` are optional as for ``vrouterctl route add``;
- ``{"type": "RTM_DELETE", "seq": 2, "prefix": "198.51.100.0/24"}`` (static routes only);
- ``{"type": "RTM_CHANGE", ...}`` — RTM_ADD's fields; replaces the static route to ``prefix``;
- ``{"type": "RTM_GET", "seq": 3, "destination": "198.51.100.7"}`` (the route used, by
  longest prefix) or ``"prefix": "198.51.100.0/24"`` (exactly that route);
- ``{"type": "RTM_IFINFO", "seq": 4}`` — every interface;
- ``{"type": "RTM_GETADDRS", "seq": 5}`` — every address.

Replies: ``{"type": <request type>, "seq": n, "ok": true, ...}`` or
``{"ok": false, "errno": …, "error": "…"}``.  Monitor events (every route
socket gets them, as on BSD): ``RTM_ADD`` / ``RTM_DELETE`` with the route in ``route``,
``RTM_NEWADDR`` / ``RTM_DELADDR`` with interface and address, ``RTM_IFINFO``
with interface and state; they carry no ``seq``.
"""

from __future__ import annotations

import errno
import ipaddress
from typing import TYPE_CHECKING, Any

from vrouter.core.errors import OpError

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.daemon.ops import Ops


class RouteSocketError(Exception):
    """A route request that cannot be done."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.errno = code


def _prefix(value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(value))
    except ValueError as err:
        raise RouteSocketError(errno.EINVAL, f"bad prefix {value!r}: {err}") from None


def _address(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if value in (None, ""):
        return None
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        raise RouteSocketError(errno.EINVAL, f"bad address {value!r}") from None


def request(ops: Ops, vnet: Vnet, body: Any) -> dict[str, Any]:
    """Carry out one route-socket request; return the reply's fields."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise RouteSocketError(errno.EINVAL, "a route message is a JSON object with a 'type'")
    kind = body["type"]
    try:
        if kind in ("RTM_ADD", "RTM_CHANGE"):
            prefix = _prefix(body.get("prefix"))
            if kind == "RTM_CHANGE":
                ops.remove_route(vnet.name, prefix)
            route = ops.add_route(
                vnet.name,
                prefix,
                str(body.get("route_type") or "unicast"),
                _address(body.get("gateway")),
                body.get("interface") or None,
            )
            return {"route": route.describe()}
        if kind == "RTM_DELETE":
            return {"route": ops.remove_route(vnet.name, _prefix(body.get("prefix"))).describe()}
        if kind == "RTM_GET":
            return {"route": _get(vnet, body)}
        if kind == "RTM_IFINFO":
            return {
                "interfaces": [
                    {
                        "name": i.name,
                        "index": i.index,
                        "up": i.up,
                        "mtu": i.mtu,
                        "mac": i.mac.hex(":"),
                        "kind": i.kind,
                    }
                    for i in vnet.link.interfaces.values()
                ]
            }
        if kind == "RTM_GETADDRS":
            return {
                "addresses": [
                    {"interface": i.name, "address": str(a)}
                    for i in vnet.link.interfaces.values()
                    for a in i.all_addresses()
                ]
            }
    except OpError as err:
        raise RouteSocketError(errno.EINVAL, str(err)) from None
    raise RouteSocketError(errno.EOPNOTSUPP, f"unknown route message type {kind!r}")


def _get(vnet: Vnet, body: dict[str, Any]) -> dict[str, object]:
    if body.get("prefix") is not None:
        prefix = _prefix(body["prefix"])
        route = vnet.route.table(prefix.version).get(prefix)
    else:
        address = _address(body.get("destination"))
        if address is None:
            raise RouteSocketError(errno.EINVAL, "RTM_GET needs 'destination' or 'prefix'")
        route = vnet.route.table(address.version).lookup(address.packed)
    if route is None:
        raise RouteSocketError(errno.ESRCH, "no route")
    return route.describe()
