"""Route sockets: a vnet's FIB, interfaces and addresses, read and changed by message.

Modelled on the BSD routing socket (route(4)), with JSON instead of
``struct rt_msghdr``: each DATA message's payload is one JSON object.

Requests (``seq`` is echoed in the reply):

- ``{"type": "RTM_ADD", "seq": 1, "prefix": "198.51.100.0/24", "gateway": "203.0.113.2",
  "interface": null, "route_type": "unicast", "source": "rip", "distance": 120}`` —
  ``route_type`` may be ``blackhole`` or ``reject``; ``gateway`` and ``interface`` are
  optional as for ``vrouterctl route add``; ``source`` names the client's protocol
  (default ``routesock``; ``connected`` and ``static`` belong to the daemon) and
  ``distance`` overrides its default administrative distance (1..255);
- ``{"type": "RTM_DELETE", "seq": 2, "prefix": "198.51.100.0/24", "source": "rip"}`` —
  removes only that source's route (another source's route to the prefix may take over);
- ``{"type": "RTM_CHANGE", ...}`` — RTM_ADD's fields; replaces the source's route to
  ``prefix`` (refused, ESRCH, when it has none; a refused change leaves the old route);
- ``{"type": "RTM_GET", "seq": 3, "destination": "198.51.100.7"}`` (the route used, by
  longest prefix) or ``"prefix": "198.51.100.0/24"`` (the route installed for exactly that
  prefix, or with ``"source"`` that source's);
- ``{"type": "RTM_IFINFO", "seq": 4}`` — every interface;
- ``{"type": "RTM_GETADDRS", "seq": 5}`` — every address.

Replies: ``{"type": <request type>, "seq": n, "ok": true, ...}`` or
``{"ok": false, "errno": …, "error": "…"}``.  A route in a reply or an event
carries its ``source``, ``distance`` and ``state``: the reply to RTM_ADD and
RTM_CHANGE says whether the route is ``installed`` (forwarding) or ``held``
(kept while another source's route to the prefix is preferred); when they
are refused the error reply says ``"state": "refused"`` (EEXIST: the source
has a route to the prefix already).  Monitor events (every route socket gets
them, as on BSD): ``RTM_ADD`` / ``RTM_DELETE`` with the route in ``route``,
``RTM_CHANGE`` when a route was replaced or became installed or held,
``RTM_NEWADDR`` / ``RTM_DELADDR`` with interface and address, ``RTM_IFINFO``
with interface and state; they carry no ``seq``.

A protocol's routes belong to the programs speaking for it (FRR's zebra
treats its clients so).  When the last route socket that spoke for a
source closes, because its routing daemon stopped or died, that source's
routes are removed; ``net.route.client_grace`` seconds keep them first, as
stale, so a restarted daemon can refresh them (an RTM_ADD of a stale route
replaces it) before the rest goes (graceful restart).  Routes of the
default ``routesock`` source belong to no protocol and stay, as routes
added with ``route add`` on BSD do.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vrouter.core.errors import OpError
from vrouter.route import state as route_state
from vrouter.route.fib import Prefix
from vrouter.route.source import DAEMON_SOURCES, ROUTESOCK, Source, SourceError, source

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.daemon.ops import Ops

log = logging.getLogger(__name__)


LINK_LOCAL6 = ipaddress.IPv6Network("fe80::/10")


class RouteSocketError(Exception):
    """A route request that cannot be done (``fields`` go into the error reply)."""

    def __init__(self, code: int, text: str, **fields: object) -> None:
        super().__init__(text)
        self.errno = code
        self.fields = fields


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


class Session:
    """The protocol sources one route socket has spoken for (see the module's text)."""

    def __init__(self, vnet: Vnet) -> None:
        self.vnet = vnet
        self.sources: set[str] = set()

    def speaks_for(self, name: str) -> None:
        """Count this socket among ``name``'s speakers (the default source has none)."""
        if name == ROUTESOCK or name in self.sources:
            return
        self.sources.add(name)
        sessions = self.vnet.route.sessions
        sessions[name] = sessions.get(name, 0) + 1

    def end(self, ops: Ops, later: Callable[[float, Callable[[], None]], object]) -> None:
        """The socket closed: a source it was the last speaker for loses its routes,
        at once or, with ``net.route.client_grace``, after that many seconds
        (``later(delay, callback)`` schedules)."""
        state = self.vnet.route
        for name in sorted(self.sources):
            state.sessions[name] -= 1
            if state.sessions[name]:
                continue
            del state.sessions[name]
            prefixes = {
                r.prefix for fib in (state.fib, state.fib6) for r in fib if r.source.name == name
            }
            if not prefixes:
                continue
            if state.client_grace <= 0:
                _sweep(ops, self.vnet, name, prefixes)
                continue
            state.stale.setdefault(name, set()).update(prefixes)
            log.info(
                "vnet %s: the last %s route socket closed; its %d routes stay %g s, stale",
                self.vnet.name,
                name,
                len(prefixes),
                state.client_grace,
            )
            later(state.client_grace, functools.partial(_expire, ops, self.vnet, name))
        self.sources.clear()


def _expire(ops: Ops, vnet: Vnet, name: str) -> None:
    """The grace period ended: remove ``name``'s routes that were not refreshed."""
    try:
        alive = ops.vnet(vnet.name) is vnet
    except OpError:
        alive = False
    if alive:  # not destroyed (its state is gone then) nor replaced by a namesake
        prefixes = vnet.route.stale.pop(name, set())
        if prefixes:
            _sweep(ops, vnet, name, prefixes)


def _sweep(ops: Ops, vnet: Vnet, name: str, prefixes: set[Prefix]) -> None:
    removed = 0
    for prefix in prefixes:
        if vnet.route.table(prefix.version).get(prefix, name) is not None:
            ops.remove_route(vnet.name, prefix, name)
            removed += 1
    log.info(
        "vnet %s: %d %s routes removed (no route socket speaks for it)", vnet.name, removed, name
    )


def _refreshed(vnet: Vnet, name: str, prefix: Prefix) -> bool:
    """Forget ``prefix`` as stale for ``name``; return whether it was."""
    stale = vnet.route.stale.get(name)
    if stale is None or prefix not in stale:
        return False
    stale.discard(prefix)
    return True


def request(ops: Ops, vnet: Vnet, body: Any, session: Session | None = None) -> dict[str, Any]:
    """Carry out one route-socket request; return the reply's fields."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise RouteSocketError(errno.EINVAL, "a route message is a JSON object with a 'type'")
    kind = body["type"]
    try:
        if kind in ("RTM_ADD", "RTM_CHANGE"):
            return {"route": _add(ops, vnet, body, kind == "RTM_CHANGE", session)}
        if kind == "RTM_DELETE":
            prefix = _prefix(body.get("prefix"))
            name = _source(body).name
            if vnet.route.table(prefix.version).get(prefix, name) is None:
                raise RouteSocketError(errno.ESRCH, ops.missing_route(vnet, prefix, name))
            if session is not None:
                session.speaks_for(name)
            _refreshed(vnet, name, prefix)
            return {"route": ops.remove_route(vnet.name, prefix, name).describe()}
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


def _source(body: dict[str, Any]) -> Source:
    """Return the source a request speaks for (refusing the daemon's own)."""
    name = body.get("source") or ROUTESOCK
    distance = body.get("distance")
    if not isinstance(name, str):
        raise RouteSocketError(errno.EINVAL, "'source' must be a route source's name")
    if distance is not None and (isinstance(distance, bool) or not isinstance(distance, int)):
        raise RouteSocketError(errno.EINVAL, "'distance' must be a number 1..255")
    try:
        found = source(name, distance)
    except (SourceError, TypeError) as err:
        raise RouteSocketError(errno.EINVAL, str(err)) from None
    if found.name in DAEMON_SOURCES:
        raise RouteSocketError(
            errno.EPERM,
            f"route source {found.name!r} belongs to the daemon "
            "(static routes are the config's and the control API's)",
        )
    return found


def _add(
    ops: Ops, vnet: Vnet, body: dict[str, Any], change: bool, session: Session | None
) -> dict[str, object]:
    """Carry out RTM_ADD or RTM_CHANGE; refusals say ``"state": "refused"``.

    An RTM_ADD of a stale route (its protocol's daemon restarted) replaces it."""
    try:
        prefix = _prefix(body.get("prefix"))
        if prefix.version == 6 and prefix.subnet_of(LINK_LOCAL6):
            raise RouteSocketError(
                errno.EINVAL, f"{prefix} is link-local: it is never routed (RFC 4291 2.5.6)"
            )
        src = _source(body)
        fib = vnet.route.table(prefix.version)
        existing = fib.get(prefix, src.name)
        if existing is not None and _refreshed(vnet, src.name, prefix):
            change = True
        if change and existing is None:
            raise RouteSocketError(errno.ESRCH, ops.missing_route(vnet, prefix, src.name))
        if not change and existing is not None:
            raise RouteSocketError(
                errno.EEXIST, f"vnet {vnet.name}: a {src.name} route to {prefix} already exists"
            )
        interface = body.get("interface") or None
        if interface is not None and not isinstance(interface, str):
            raise RouteSocketError(errno.EINVAL, "'interface' must be an interface name")
        args = (
            vnet.name,
            prefix,
            str(body.get("route_type") or "unicast"),
            _address(body.get("gateway")),
            interface,
            src,
        )
        route = ops.change_route(*args) if change else ops.add_route(*args)
        if session is not None:
            session.speaks_for(src.name)
    except OpError as err:
        raise RouteSocketError(errno.EINVAL, str(err), state="refused") from None
    except RouteSocketError as err:
        err.fields["state"] = "refused"
        raise
    return route_state.describe(vnet, route)


def _get(vnet: Vnet, body: dict[str, Any]) -> dict[str, object]:
    if body.get("prefix") is not None:
        prefix = _prefix(body["prefix"])
        name = body.get("source")
        if name is not None and not isinstance(name, str):
            raise RouteSocketError(errno.EINVAL, "'source' must be a route source's name")
        route = vnet.route.table(prefix.version).get(prefix, name or None)
    else:
        address = _address(body.get("destination"))
        if address is None:
            raise RouteSocketError(errno.EINVAL, "RTM_GET needs 'destination' or 'prefix'")
        route = vnet.route.table(address.version).lookup(address.packed)
    if route is None:
        raise RouteSocketError(errno.ESRCH, "no route")
    return route_state.describe(vnet, route)
