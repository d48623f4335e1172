"""The control server: a Unix socket answering requests about the vnets.

Every request names the vnet it is about and starts from it, as a frame
starts from its interface.  The handlers here read the state the
subsystems keep (sysctl and firewall ruleset changes aside); requests that
change vnets, interfaces, addresses and routes, and ``reload``, are the
coroutines of :mod:`vrouter.api.manage`, run under the daemon's lock.

A handler may answer with a :class:`PassFd`: the reply line then carries a
file descriptor (SCM_RIGHTS) on the same connection.  ``capture`` does this:
the client gets the reading end of a socket pair whose other end is fed by a
tap on the interface (:mod:`vrouter.link.capture`).  The server ends a
capture when its reader closes or sends anything, when the interface or its
vnet goes away (checked every :data:`CAPTURE_SWEEP` seconds), and at
shutdown; the reader then sees end of file.

Permissions (:mod:`vrouter.core.perms`): each connection's caller is
identified by ``SO_PEERCRED``/``SO_PEERGROUPS``; every request is checked
against :data:`RIGHTS` before its handler runs.  Views (:data:`READ_ONLY`)
are open to anyone who can connect; an op in neither table needs a daemon
admin.  A refusal is an error reply ("permission denied: uid 1000 may not
manage vnet red") and a log line with the uid and pid; the connection goes
on.  The socket file is mode 0666 when the policy names any non-root
principal, else 0660.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import struct
import time
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vrouter import __version__
from vrouter.api import manage, sockets, streams
from vrouter.api.protocol import MAX_LINE, ApiError, caller_of, decode_request, encode
from vrouter.core import limits, perms
from vrouter.core.limits import LimitError
from vrouter.core.perms import Cred, Policy
from vrouter.core.sysctl import SysctlError, Value
from vrouter.core.vnet import Vnet, VnetError
from vrouter.firewall import subsystem as firewall
from vrouter.firewall.rules import RulesetError, parse_ruleset
from vrouter.inet.state import stats_dict
from vrouter.link import capture
from vrouter.link.ifnet import Ifnet
from vrouter.link.state import LinkError

if TYPE_CHECKING:
    from vrouter.daemon.main import Daemon

log = logging.getLogger("vrouter.api")

Handler = Callable[["Daemon", dict[str, Any]], Any]

CAPTURE_SWEEP = 1.0
"""Seconds between checks that each capture's interface still exists."""
PASS_TIMEOUT = 10.0
"""Seconds to wait for earlier replies to leave before passing a descriptor."""


def _vnet(daemon: Daemon, args: dict[str, Any]) -> Vnet:
    name = args.get("vnet")
    if not isinstance(name, str):
        raise ApiError("this request needs 'vnet' (a vnet name)")
    if daemon.tree is None:
        raise ApiError("the daemon is starting")
    try:
        return daemon.tree.get(name)
    except VnetError as err:
        raise ApiError(str(err)) from None


def _status(daemon: Daemon, args: dict[str, Any]) -> Any:
    last = daemon.last_reload
    return {
        "version": __version__,
        "pid": os.getpid(),
        "uptime": round(time.time() - daemon.started, 1),
        "config": daemon.config.path,
        "vnets": len(daemon.tree or ()),
        "reloads": dict(daemon.reloads),
        "last_reload": None if last is None else last.describe(),
        "last_reload_success": daemon.last_reload_success,
        "caller": _caller_info(daemon),
    }


def _caller_info(daemon: Daemon) -> dict[str, Any]:
    cred = perms.caller()
    policy = daemon.tree.policy if daemon.tree is not None else Policy()
    return {"uid": cred.uid, "gid": cred.gid, "pid": cred.pid, "admin": policy.is_admin(cred)}


def _vnet_list(daemon: Daemon, args: dict[str, Any]) -> Any:
    return [
        {
            "name": vnet.name,
            "parent": vnet.parent.name if vnet.parent is not None else None,
            "forwarding": vnet.inet.forwarding,
            "interfaces": len(vnet.link.interfaces),
            "routes": len(vnet.route.fib) + len(vnet.route.fib6),
            "neighbours": len(vnet.inet.arp.entries) + len(vnet.inet6.nd.entries),
            "limits": {kind: vnet.limits.effective(kind) for kind in limits.KINDS},
        }
        for vnet in daemon.tree or ()
    ]


def _in_use(vnet: Vnet) -> dict[str, int | None]:
    """Return what each limit counts in ``vnet`` now (None: not known here)."""
    fw = getattr(vnet, "firewall", None)
    transport = getattr(vnet, "transport", None)
    sockets_open = getattr(transport, "sockets", None) if transport is not None else None
    return {
        "interfaces": len(vnet.link.interfaces),
        "routes": len(vnet.route.fib) + len(vnet.route.fib6),
        "neighbours": max(len(vnet.inet.arp.entries), len(vnet.inet6.nd.entries)),
        "states": len(fw.fw.states) if fw is not None else None,
        "sockets": len(sockets_open) if isinstance(sockets_open, dict | list | set) else None,
        "reassembly_bytes": max(vnet.inet.reass.memory(), vnet.inet6.reass.memory()),
    }


def _limit_refusals(vnet: Vnet) -> dict[str, int]:
    """Return, per limit kind, what was refused at it (operation layer and data path).

    Interfaces, routes and sockets are refused by the operation layer; the
    data path counts neighbours (``arp.table_full``, ``icmp6.nd_table_full``),
    states (``pf_states.limit``) and reassembly memory (``*_reass.memory``) at
    the knobs the limits cap.
    """
    counted = vnet.limits.refused
    fw = getattr(vnet, "firewall", None)
    return {
        "interfaces": counted["interfaces"],
        "routes": counted["routes"],
        "neighbours": vnet.inet.arpstat.table_full + vnet.inet6.icmp.nd_table_full,
        "states": counted["states"] + (fw.fw.states.stats.limit if fw is not None else 0),
        "sockets": counted["sockets"],
        "reassembly_bytes": vnet.inet.reass.stats.memory + vnet.inet6.reass.stats.memory,
    }


def _vnet_show(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    in_use = _in_use(vnet)
    refusals = _limit_refusals(vnet)
    described = vnet.limits.describe()
    for kind, info in described.items():
        info["in_use"] = in_use[kind]
        info["refused"] = refusals[kind]
    policy = daemon.tree.policy if daemon.tree is not None else Policy()

    def principals(kind: str) -> list[dict[str, str]]:
        rows = [{"principal": str(p), "from": "daemon admins"} for p in policy.admins]
        for name in perms.ancestry(vnet.name):
            grants = policy.grants.get(name)
            if grants is not None:
                # managers may open sockets too
                granted = grants.manage if kind == "manage" else grants.manage + grants.sockets
                rows.extend({"principal": str(p), "from": name} for p in granted)
        return rows

    cred = perms.caller()
    return {
        "name": vnet.name,
        "parent": vnet.parent.name if vnet.parent is not None else None,
        "children": sorted(c.name for c in vnet.children.values()),
        "forwarding": vnet.inet.forwarding,
        "subsystems": [s for s in daemon.tree.registry.names() if hasattr(vnet, s)]
        if daemon.tree is not None
        else [],
        "limits": described,
        "permissions": {"manage": principals("manage"), "sockets": principals("sockets")},
        "caller": {
            "uid": cred.uid,
            "manage": perms.may_manage(vnet, cred),
            "sockets": perms.may_open_sockets(vnet, cred),
            "limits": policy.may_set_limits(vnet.name, cred),
        },
    }


def _module_list(daemon: Daemon, args: dict[str, Any]) -> Any:
    from vrouter.stack import ESSENTIAL, discover

    if daemon.tree is None:
        raise ApiError("the daemon is starting")
    registry = daemon.tree.registry
    available, problems = discover()
    loaded = [
        {
            "name": s.name,
            "loaded": True,
            "depends": list(s.depends),
            "needed_by": registry.users(s.name),
            "essential": s.name in ESSENTIAL,
            "source": available[s.name].source
            if s.name in available and available[s.name].subsystem is s
            else "loaded at run time",
            "knobs": len(s.knobs),
        }
        for s in registry
    ]
    others = [
        {
            "name": name,
            "loaded": False,
            "depends": list(found.subsystem.depends),
            "needed_by": [],
            "essential": False,
            "source": found.source,
            "knobs": len(found.subsystem.knobs),
        }
        for name, found in sorted(available.items())
        if registry.get(name) is None
    ]
    return {"modules": loaded + others, "problems": problems}


def _ifconfig(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    result = []
    for ifp in vnet.link.interfaces.values():
        info = ifp.describe()
        info["inet6"] = [
            {
                "address": f"{ipaddress.IPv6Address(a.address)}/{a.prefixlen}",
                "state": a.state,
                "scope": "link" if a.link_local else "global",
            }
            for a in vnet.inet6.addrs_of(ifp)
        ]
        info["ra"] = ifp.name in vnet.inet6.ra
        result.append(info)
    return result


def _route_show(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    family = args.get("family")
    if family not in (None, "inet", "inet6"):
        raise ApiError("'family' must be inet or inet6")
    source = args.get("source")
    if source is not None and not isinstance(source, str):
        raise ApiError("'source' must be a route source's name")
    tables = {"inet": vnet.route.fib, "inet6": vnet.route.fib6}
    return [
        route.describe(fib.state(route))
        for name, fib in tables.items()
        if family in (None, name)
        for route in fib
        if source in (None, route.source.name)
    ]


def _ndp_show(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    now = daemon.driver.now()
    entries = sorted(vnet.inet6.nd.entries.values(), key=lambda e: (e.ifnet.name, e.ip))
    return [entry.describe(now) for entry in entries]


def _arp_show(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    now = daemon.driver.now()
    entries = sorted(vnet.inet.arp.entries.values(), key=lambda e: (e.ifnet.name, e.ip))
    return [entry.describe(now) for entry in entries]


def _netstat(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    inet, inet6 = vnet.inet, vnet.inet6
    refusals = {f"{kind}_refused": n for kind, n in _limit_refusals(vnet).items()}
    if not hasattr(vnet, "firewall"):
        return {
            "ip": stats_dict(inet.stats),
            "ip_reass": stats_dict(inet.reass.stats),
            "icmp": stats_dict(inet.icmp),
            "arp": stats_dict(inet.arpstat),
            "ip6": stats_dict(inet6.stats),
            "ip6_reass": stats_dict(inet6.reass.stats),
            "icmp6": stats_dict(inet6.icmp),
            "drops": _drops_by_reason(vnet),
        **({"tcp": vnet.tcp.stats.as_dict()} if hasattr(vnet, "tcp") else {}),
            "limits": refusals,
        }
    return {
        "ip": stats_dict(inet.stats),
        "ip_reass": stats_dict(inet.reass.stats),
        "icmp": stats_dict(inet.icmp),
        "arp": stats_dict(inet.arpstat),
        "ip6": stats_dict(inet6.stats),
        "ip6_reass": stats_dict(inet6.reass.stats),
        "icmp6": stats_dict(inet6.icmp),
        "pf": {
            **stats_dict(vnet.firewall.fw.stats),
            "rejects_sent": vnet.firewall.rejects_sent,
            "log_suppressed": vnet.firewall.log_suppressed,
        },
        "pf_states": stats_dict(vnet.firewall.fw.states.stats),
        "drops": _drops_by_reason(vnet),
        **({"tcp": vnet.tcp.stats.as_dict()} if hasattr(vnet, "tcp") else {}),
        "limits": refusals,
    }


def _endpoint_text(address: bytes, port: int) -> str:
    text = str(ipaddress.ip_address(address))
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def _sockstat(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    result: dict[str, Any] = {
        "sockets": [s.describe() for s in vnet.transport.sockets]
        if hasattr(vnet, "transport")
        else [],
        "route_sockets": sum(
            1 for e in daemon.endpoints if e.vnet is vnet and e.kind == "route"
        ),
        "stats": stats_dict(vnet.transport.stats) if hasattr(vnet, "transport") else {},
    }
    if hasattr(vnet, "tcp"):
        table = vnet.tcp.table
        result["tcp_listeners"] = [listener.describe() for listener in table.listeners.values()]
        result["tcp"] = [
            {
                "local": _endpoint_text(conn.local_addr, conn.local_port),
                "remote": _endpoint_text(conn.remote_addr, conn.remote_port),
                **conn.info(),
            }
            for conn in table.connections()
        ]
    return result


def _drops_by_reason(vnet: Vnet) -> dict[str, int]:
    """Return every interface's drops of ``vnet`` summed by reason."""
    total: Counter[str] = Counter()
    for ifp in vnet.link.interfaces.values():
        total.update(ifp.counters.rx_drops)
        total.update(ifp.counters.tx_drops)
    return dict(sorted(total.items()))


def _firewalled(daemon: Daemon, args: dict[str, Any]) -> Vnet:
    """Return the request's vnet; refuse if the firewall subsystem is not loaded."""
    vnet = _vnet(daemon, args)
    if not hasattr(vnet, "firewall"):
        raise ApiError(
            f"vnet {vnet.name}: the firewall subsystem is not loaded "
            "(vrouterctl module load firewall)"
        )
    return vnet


def _firewall_show(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _firewalled(daemon, args)
    fw = vnet.firewall.fw
    return {
        "enabled": fw.enabled,
        "default": fw.ruleset.default,
        "rules": fw.ruleset.describe(),
        "states": len(fw.states),
        "max_states": fw.states.max_states,
    }


def _firewall_load(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _firewalled(daemon, args)
    text = args.get("text")
    source = args.get("source", "<ruleset>")
    if not isinstance(text, str) or not isinstance(source, str):
        raise ApiError("firewall.load needs 'text' (the TOML ruleset) and 'source' (its name)")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ApiError(f"{source}: {err}") from None
    try:
        ruleset = parse_ruleset(table)
    except RulesetError as err:
        problems = "\n".join(f"{source}: {key}: {reason}" for key, reason in err.problems)
        raise ApiError(problems) from None
    firewall.replace_ruleset(vnet, ruleset)
    log.info(
        "vnet %s: firewall ruleset replaced from %s: %d rules, default %s",
        vnet.name,
        source,
        len(ruleset.rules),
        ruleset.default,
    )
    return {"rules": len(ruleset.rules), "default": ruleset.default}


def _firewall_states(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _firewalled(daemon, args)
    now = daemon.driver.now()
    return [state.describe(now) for state in vnet.firewall.fw.states]


def _firewall_flush(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _firewalled(daemon, args)
    flushed = vnet.firewall.fw.states.flush()
    log.info("vnet %s: firewall: %d states flushed", vnet.name, flushed)
    return {"flushed": flushed}


def _sysctl_get(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    assert daemon.tree is not None
    tree = daemon.tree.registry.sysctl()
    names = args.get("names") or sorted(tree.knobs)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError("'names' must be a list of sysctl names")
    try:
        return [tree.knob(name).describe(vnet) for name in names]
    except SysctlError as err:
        raise ApiError(str(err)) from None


def _sysctl_set(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    assert daemon.tree is not None
    settings = args.get("settings")
    if not isinstance(settings, dict) or not settings:
        raise ApiError("'settings' must be an object of sysctl name -> value")
    tree = daemon.tree.registry.sysctl()
    try:  # check every value first, so a bad one changes nothing
        checked = {name: tree.knob(name).coerce(value) for name, value in settings.items()}
        # Limits first (a raised one makes room for the knobs it caps), each
        # checked against the parent's; then the capped knobs against the limits.
        order = sorted(checked, key=lambda name: limits.kind_of(name) is None)
        pending = {k: int(v) for k, v in checked.items() if limits.kind_of(k) is not None}
        for name in order:
            kind = limits.kind_of(name)
            if kind is not None:
                vnet.limits.check_setting(kind, pending[name])
            elif limits.KIND_OF_KNOB.get(name) is not None:
                _check_knob(vnet, name, checked[name], pending)
    except SysctlError as err:
        raise ApiError(str(err)) from None
    result = []
    for name in order:
        value = checked[name]
        old = tree.get(vnet, name)
        tree.set(vnet, name, value)
        log.info("vnet %s: sysctl %s: %s -> %s", vnet.name, name, old, value)
        result.append({"name": name, "old": old, "value": value})
    return result


def _check_knob(vnet: Vnet, name: str, value: Value, pending: dict[str, int]) -> None:
    """Refuse a capped knob above the vnet's limit, counting a limit set in the same request."""
    kind = limits.KIND_OF_KNOB[name]
    new_limit = pending.get(limits.knob_name(kind))
    if new_limit is None:
        vnet.limits.check_knob(name, value)
        return
    parent = vnet.limits.parent.effective(kind) if vnet.limits.parent is not None else None
    bounds = [b for b in (new_limit or None, parent) if b is not None]
    if bounds and value > min(bounds):
        noun = limits.NOUNS[kind]
        raise LimitError(
            f"vnet {vnet.name}: {name} {value} is above the vnet's {noun} limit {min(bounds)}"
        )


class PassFd:
    """A handler's answer whose reply line carries ``sock`` to the client (SCM_RIGHTS)."""

    def __init__(self, result: Any, sock: socket.socket) -> None:
        self.result = result
        self.sock = sock
        """Passed with the reply, then closed here."""

    def passed(self, server: ControlServer) -> None:
        """Run once the client has the descriptor."""

    def failed(self) -> None:
        """Run when the descriptor could not be passed."""


class _SocketPass(PassFd):
    """A program socket: its descriptor rides with the reply, then the endpoint starts."""

    def __init__(self, result: Any, theirs: socket.socket, endpoint: sockets.Endpoint) -> None:
        super().__init__(result, theirs)
        self.endpoint = endpoint

    def passed(self, server: ControlServer) -> None:
        self.endpoint.daemon.endpoints.add(self.endpoint)
        self.endpoint.start()

    def failed(self) -> None:
        self.endpoint.close("could not be passed")


def _socket_open(daemon: Daemon, args: dict[str, Any]) -> PassFd:
    return _SocketPass(*sockets.open_socket(daemon, args))


class _StreamPass(PassFd):
    """A TCP listener or stream: its descriptor rides with the reply, then it starts."""

    def __init__(
        self,
        result: Any,
        theirs: socket.socket,
        endpoint: streams.StreamEndpoint | streams.ListenEndpoint,
    ) -> None:
        super().__init__(result, theirs)
        self.endpoint = endpoint

    def passed(self, server: ControlServer) -> None:
        self.endpoint.start()

    def failed(self) -> None:
        if isinstance(self.endpoint, streams.StreamEndpoint):
            self.endpoint.close("could not be passed", abort=True)
        else:
            self.endpoint.close("could not be passed")


def _tcp_listen(daemon: Daemon, args: dict[str, Any]) -> PassFd:
    return _StreamPass(*streams.listen(daemon, args))


async def _tcp_connect(daemon: Daemon, args: dict[str, Any]) -> PassFd:
    return _StreamPass(*await streams.connect(daemon, args))


class _Capture(PassFd):
    """A capture: a tap on an interface sending to the daemon's end of a socket pair."""

    def __init__(self, result: Any, reader: socket.socket, tap: capture.Tap, end: socket.socket):
        super().__init__(result, reader)
        self.tap = tap
        self.end = end
        self.server: ControlServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        tap.on_close = lambda _tap: self.close("reader closed")

    @property
    def ifnet(self) -> Ifnet:
        """Return the interface captured."""
        return self.tap.ifnet

    def passed(self, server: ControlServer) -> None:
        self.server = server
        server.captures.add(self)
        # The reader never writes: its end becomes readable when it closes.
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.end.fileno(), self.close, "reader closed")
        self.tap.attach()
        server.sweep_captures_soon()
        log.info(
            "vnet %s: %s: capture started: direction %s, snaplen %d, filter %r",
            self.ifnet.vnet.name,
            self.ifnet.name,
            self.result["direction"],
            self.result["snaplen"],
            self.result["filter"],
        )

    def failed(self) -> None:
        self.end.close()

    def alive(self, daemon: Daemon) -> bool:
        """Return whether the interface (and its vnet) still exists and the tap runs."""
        ifp = self.ifnet
        tree = daemon.tree
        return (
            self.tap.attached
            and tree is not None
            and ifp.vnet.name in tree
            and tree.get(ifp.vnet.name) is ifp.vnet
            and ifp.vnet.link.interfaces.get(ifp.name) is ifp
        )

    def close(self, why: str) -> None:
        """End the capture: detach the tap and close the daemon's end (idempotent)."""
        if self.server is None:
            return
        self.server.captures.discard(self)
        self.server = None
        self.tap.detach()
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(self.end.fileno())
        self.end.close()
        log.info(
            "vnet %s: %s: capture ended (%s): %d frames to the filter, %d dropped",
            self.ifnet.vnet.name,
            self.ifnet.name,
            why,
            self.tap.sent,
            self.tap.dropped,
        )


def _capture(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    name = args.get("interface")
    if not isinstance(name, str):
        raise ApiError("capture needs 'interface' (an interface name)")
    try:
        ifp = vnet.link.get(name)
    except LinkError as err:
        raise ApiError(f"vnet {vnet.name}: {err}") from None
    snaplen = args.get("snaplen", capture.SNAPLEN_MAX)
    if isinstance(snaplen, bool) or not isinstance(snaplen, int):
        raise ApiError("'snaplen' must be an integer")
    if not 1 <= snaplen <= capture.SNAPLEN_MAX:
        raise ApiError(f"'snaplen' must be 1..{capture.SNAPLEN_MAX}")
    direction = args.get("direction", "both")
    if direction not in ("in", "out", "both"):
        raise ApiError("'direction' must be in, out or both")
    expression = args.get("filter", "")
    if not isinstance(expression, str):
        raise ApiError("'filter' must be a string (a tcpdump expression)")
    try:
        program = capture.compile_filter(expression, snaplen)
        end, reader = capture.socket_pair(program)
    except capture.FilterError as err:
        raise ApiError(str(err)) from None
    tap = capture.Tap(
        ifp, capture.sender(end), inbound=direction != "out", outbound=direction != "in"
    )
    result = {
        "vnet": vnet.name,
        "interface": ifp.name,
        "snaplen": snaplen,
        "direction": direction,
        "filter": expression,
        "instructions": len(program),
    }
    return _Capture(result, reader, tap, end)


def _metrics_scrape(daemon: Daemon, args: dict[str, Any]) -> Any:
    """Return this process's metrics in the text format (a front merges its workers')."""
    from prometheus_client import generate_latest

    from vrouter.daemon import metrics

    if daemon.metrics_registry is None:
        daemon.metrics_registry = metrics.make_registry(daemon)
    return generate_latest(daemon.metrics_registry).decode()


HANDLERS: dict[str, Handler] = {
    "metrics.scrape": _metrics_scrape,
    "socket.open": _socket_open,
    "tcp.listen": _tcp_listen,
    "status": _status,
    "vnet.list": _vnet_list,
    "vnet.show": _vnet_show,
    "module.list": _module_list,
    "ifconfig": _ifconfig,
    "route.show": _route_show,
    "arp.show": _arp_show,
    "ndp.show": _ndp_show,
    "netstat": _netstat,
    "sockstat": _sockstat,
    "sysctl.get": _sysctl_get,
    "firewall.show": _firewall_show,
    "firewall.load": _firewall_load,
    "firewall.states": _firewall_states,
    "firewall.flush": _firewall_flush,
    "sysctl.set": _sysctl_set,
    "capture": _capture,
}


Need = tuple[str, str]
"""One right a request needs: ``("manage"|"sockets"|"limits", vnet)`` or ``("admin", what)``."""
Rule = Callable[["Daemon", dict[str, Any]], list[Need]]

READ_ONLY = frozenset(
    {
        "status",
        "vnet.list",
        "vnet.show",
        "vnet.tree",
        "ifconfig",
        "route.show",
        "arp.show",
        "ndp.show",
        "netstat",
        "sockstat",
        "sysctl.get",
        "firewall.show",
        "firewall.states",
        "module.list",
    }
)
"""Views anyone who can connect may use."""


def _name(args: dict[str, Any], key: str) -> str | None:
    value = args.get(key)
    return value if isinstance(value, str) and value else None


def _on(key: str, right: str = "manage") -> Rule:
    """Return the rule "``right`` on the vnet named by argument ``key``"."""

    def rule(daemon: Daemon, args: dict[str, Any]) -> list[Need]:
        name = _name(args, key)
        return [(right, name)] if name is not None else []

    return rule


def _of_parent(verb: str) -> Rule:
    """Return the rule for creating or destroying vnet ``name``: manage its parent."""

    def rule(daemon: Daemon, args: dict[str, Any]) -> list[Need]:
        name = _name(args, "name")
        if name is None:
            return []
        parent = perms.parent_of(name)
        if parent is None:
            return [("admin", f"{verb} top-level vnet {name}")]
        return [("manage", parent)]

    return rule


def _epair_ends(daemon: Daemon, args: dict[str, Any]) -> list[Need]:
    needs: list[Need] = []
    for key in ("a", "b"):
        end = _name(args, key)
        if end is not None and ":" in end:
            needs.append(("manage", end.partition(":")[0]))
    return needs


def _interface_destroy_rights(daemon: Daemon, args: dict[str, Any]) -> list[Need]:
    """Manage the interface's vnet, and the other end's vnet if it is an epair."""
    vnet_name, ifname = _name(args, "vnet"), _name(args, "interface")
    if vnet_name is None:
        return []
    needs: list[Need] = [("manage", vnet_name)]
    tree = daemon.tree
    if ifname is None or tree is None or vnet_name not in tree:
        return needs
    ifp = tree.get(vnet_name).link.interfaces.get(ifname)
    driver = getattr(daemon, "driver", None)
    if ifp is not None and driver is not None:
        for epair in driver.epairs:
            if ifp in (epair.a, epair.b):
                peer = epair.b if epair.a is ifp else epair.a
                needs.append(("manage", peer.vnet.name))
    return needs


def _interface_move_rights(daemon: Daemon, args: dict[str, Any]) -> list[Need]:
    return _on("vnet")(daemon, args) + _on("to")(daemon, args)


def _sysctl_set_rights(daemon: Daemon, args: dict[str, Any]) -> list[Need]:
    """Manage the vnet; its own limits need whoever may manage its parent."""
    needs = _on("vnet")(daemon, args)
    settings = args.get("settings")
    if needs and isinstance(settings, dict) and any(limits.kind_of(k) for k in settings):
        needs.append(("limits", needs[0][1]))
    return needs


def _socket_open_rights(daemon: Daemon, args: dict[str, Any]) -> list[Need]:
    """Sockets in the vnet; a route socket (it adds and deletes routes) needs manage."""
    right = "manage" if str(args.get("type", "")) == "route" else "sockets"
    return _on("vnet", right)(daemon, args)


def _admin(what: str) -> Rule:
    def rule(daemon: Daemon, args: dict[str, Any]) -> list[Need]:
        name = _name(args, "name")
        return [("admin", what.format(name=name or "?"))]

    return rule


ASYNC_HANDLERS: dict[str, Callable[[Daemon, dict[str, Any]], Awaitable[Any]]] = {
    "tcp.connect": _tcp_connect,
}
"""Requests answered once something has happened (a TCP handshake), outside the daemon lock."""


RIGHTS: dict[str, Rule] = {
    "vnet.create": _of_parent("create"),
    "vnet.destroy": _of_parent("destroy"),
    "interface.move": _interface_move_rights,
    "interface.destroy": _interface_destroy_rights,
    "tap.create": _on("vnet"),
    "epair.create": _epair_ends,
    "address.add": _on("vnet"),
    "address.del": _on("vnet"),
    "route.add": _on("vnet"),
    "route.del": _on("vnet"),
    "sysctl.set": _sysctl_set_rights,
    "firewall.load": _on("vnet"),
    "firewall.flush": _on("vnet"),
    "capture": _on("vnet"),
    "socket.open": _socket_open_rights,
    "tcp.listen": _socket_open_rights,
    "tcp.connect": _socket_open_rights,
    "reload": _admin("reload the configuration"),
    "metrics.scrape": _admin("read the metrics through the control socket"),
    "module.load": _admin("load subsystem {name}"),
    "module.unload": _admin("unload subsystem {name}"),
}
"""The rights each changing op needs (an op in neither this nor READ_ONLY: a daemon admin)."""


def refusal(policy: Policy, cred: Cred, needs: list[Need]) -> str | None:
    """Return why ``cred`` may not do what needs ``needs`` under ``policy`` (None: it may)."""
    for right, target in needs:
        if right == "manage" and not policy.may_manage(target, cred):
            return f"permission denied: {cred} may not manage vnet {target}"
        if right == "sockets" and not policy.may_open_sockets(target, cred):
            return f"permission denied: {cred} may not open sockets in vnet {target}"
        if right == "limits" and not policy.may_set_limits(target, cred):
            parent = perms.parent_of(target)
            who = "daemon admins" if parent is None else f"managers of vnet {parent}"
            return (
                f"permission denied: {cred} may not change the limits of vnet {target} "
                f"(only {who} may)"
            )
        if right == "admin" and not policy.is_admin(cred):
            return f"permission denied: {cred} may not {target} (daemon admins only)"
    return None


def peer_cred(sock: Any) -> Cred:
    """Return who is on the other end of the Unix socket ``sock`` (SO_PEERCRED, SO_PEERGROUPS)."""
    size = struct.calcsize("3i")
    pid, uid, gid = struct.unpack(
        "3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
    )
    groups: frozenset[int] = frozenset()
    option = getattr(socket, "SO_PEERGROUPS", 59)
    for count in (64, 65536):
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, option, 4 * count)
        except OSError:
            continue  # ERANGE: more groups than fit; or not supported
        groups = frozenset(struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))
        break
    return Cred(pid, uid, gid, groups)


async def serve_lines(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    respond: Callable[[bytes], Awaitable[None]],
) -> None:
    """Serve one control connection: ``respond`` to each request line, in order, until
    the client closes it; then close it.  A line longer than MAX_LINE gets an
    error and ends the connection (it cannot be resynchronized)."""
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                writer.write(encode({"ok": False, "error": "request line too long"}))
                break
            if not line:
                break
            await respond(line)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def send_with_fd(writer: asyncio.StreamWriter, line: bytes, fd: int) -> None:
    """Send ``line`` with descriptor ``fd`` attached, after every earlier byte.

    Raise ConnectionError if it cannot be sent (the caller still owns ``fd``).
    """
    try:
        transport = writer.transport
        transport.set_write_buffer_limits(high=0)  # drain() now waits for an empty buffer
        try:
            await asyncio.wait_for(writer.drain(), PASS_TIMEOUT)
        finally:
            transport.set_write_buffer_limits()
        fds = array.array("i", [fd])
        # The transport's own socket object cannot sendmsg; a duplicate of its
        # descriptor writes to the same connection.
        conn = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
        with conn:
            sent = conn.sendmsg(
                [line],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)],
                socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL,
            )
    except (OSError, TimeoutError) as err:
        raise ConnectionError(f"cannot pass a descriptor: {err}") from err
    if sent < len(line):
        writer.write(line[sent:])


def _failed(err: Exception) -> dict[str, Any]:
    """Return the error reply for a handler that raised ``err`` (a bug is logged)."""
    if isinstance(err, ApiError):
        return err.reply()
    log.exception("control request failed")
    return {"ok": False, "error": f"internal error: {err}"}


def _succeeded(result: Any) -> tuple[dict[str, Any], PassFd | None]:
    """Return the reply for ``result``, and the descriptor riding with it, if any."""
    if isinstance(result, PassFd):
        return {"ok": True, "result": result.result}, result
    return {"ok": True, "result": result}, None


class ControlServer:
    """Serves the control protocol on a Unix socket."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._server: asyncio.AbstractServer | None = None
        self._path: Path | None = None
        self.captures: set[_Capture] = set()
        """Captures running, each until its reader or its interface goes away."""
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self, path: str) -> None:
        """Listen on ``path``, replacing a stale socket file.

        The config's permissions are put in force on the vnets first
        (:meth:`follow_policy`), so the first request is already checked.
        """
        sock_path = Path(path)
        sock_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path, limit=MAX_LINE)
        self._path = sock_path
        self.follow_policy()

    def policy(self) -> Policy:
        """Return the rights in force."""
        tree = self.daemon.tree
        return tree.policy if tree is not None else Policy()

    def follow_policy(self) -> None:
        """Install the config's rights on the vnets; set the socket's mode to match.

        Mode 0666 when any non-root principal is granted something (it must
        be able to connect; every request is checked), else 0660; a worker's
        socket is 0600 (its front is the only client).
        """
        config = getattr(self.daemon, "config", None)
        tree = self.daemon.tree
        if config is not None and tree is not None:
            tree.set_policy(config.policy())
        if self._path is not None:
            if getattr(self.daemon, "spec", None) is not None:
                mode = 0o600  # a worker's: only its front connects
            else:
                mode = 0o666 if self.policy().non_root() else 0o660
            os.chmod(self._path, mode)
            log.info("control socket %s: mode %04o", self._path, mode)

    async def close(self) -> None:
        """Stop listening, end every capture and remove the socket file."""
        for running in list(self.captures):
            running.close("daemon stopping")
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            self._path = None

    def _from_front(self, cred: Cred) -> bool:
        """Return True if ``cred`` is this worker's front (its requests name their caller)."""
        spec = getattr(self.daemon, "spec", None)
        return spec is not None and cred.pid == spec.front and cred.uid == 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = peer_cred(writer.get_extra_info("socket"))
        except (OSError, struct.error) as err:
            log.warning("control connection refused: cannot identify the caller: %s", err)
            writer.close()
            return
        trusted = self._from_front(peer)

        async def respond(line: bytes) -> None:
            cred = (caller_of(line) or peer) if trusted else peer
            reply, passing = await self.answer_async(line, cred, trusted)
            if passing is None:
                writer.write(encode(reply))
            else:
                await self._pass_fd(writer, encode(reply), passing)

        await serve_lines(reader, writer, respond)

    async def _pass_fd(self, writer: asyncio.StreamWriter, line: bytes, passing: PassFd) -> None:
        """Send ``line`` with ``passing.sock`` attached, after every earlier byte."""
        try:
            await send_with_fd(writer, line, passing.sock.fileno())
        except ConnectionError:
            passing.failed()
            raise
        finally:
            passing.sock.close()
        passing.passed(self)

    def sweep_captures_soon(self) -> None:
        """Check the captures' interfaces every CAPTURE_SWEEP seconds while any run."""
        if self._sweeper is None and self.captures:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(CAPTURE_SWEEP, self._sweep_captures)

    def _sweep_captures(self) -> None:
        self._sweeper = None
        for running in list(self.captures):
            if not running.alive(self.daemon):
                running.close("interface gone")
        self.sweep_captures_soon()

    def check(
        self, op: str, args: dict[str, Any], cred: Cred | None, trusted: bool = False
    ) -> str | None:
        """Return why ``cred`` may not make request ``op`` (None: it may; None cred: in-process).

        Arguments starting with ``_`` are the daemon's: a caller's are
        dropped (but a front's, ``trusted``), and ``socket.open`` gets
        ``_privileged`` (may bind ports below 1024) from the caller's rights.
        """
        if cred is None:
            return None
        if not trusted:
            for key in [k for k in args if k.startswith("_")]:
                del args[key]
        if op in READ_ONLY:
            return None
        rule = RIGHTS.get(op)
        needs = rule(self.daemon, args) if rule is not None else [("admin", f"use {op}")]
        why = refusal(self.policy(), cred, needs)
        if why is not None:
            log.warning("%s (%s, request %s)", why, cred.describe(), op)
            return why
        if op in ("socket.open", "tcp.listen"):
            name = _name(args, "vnet")
            tree = self.daemon.tree
            if name is not None and tree is not None and name in tree:
                args["_privileged"] = perms.may_bind_privileged(tree.get(name), cred)
        return None

    async def answer_async(
        self, line: bytes, cred: Cred | None = None, trusted: bool = False
    ) -> tuple[dict[str, Any], PassFd | None]:
        """Answer one request line, awaiting the handlers that change the vnets.

        ``cred`` is the caller (None: the daemon itself, nothing is checked);
        ``trusted``: the line comes from this worker's front.
        """
        try:
            op, args = decode_request(line)
        except ApiError:
            return self.answer(line, cred)
        change = manage.HANDLERS.get(op) or ASYNC_HANDLERS.get(op)
        if change is None:
            return self.answer(line, cred, trusted)
        why = self.check(op, args, cred, trusted)
        if why is not None:
            return {"ok": False, "error": why}, None
        token = perms.set_caller(cred or perms.ROOT)
        try:
            result = await change(self.daemon, args)
        except Exception as err:
            return _failed(err), None
        finally:
            perms.reset_caller(token)
        return _succeeded(result)

    def answer(
        self, line: bytes, cred: Cred | None = None, trusted: bool = False
    ) -> tuple[dict[str, Any], PassFd | None]:
        """Answer one request line; the second item, if any, rides with the reply.

        ``cred`` is the caller (None: the daemon itself, nothing is checked);
        ``trusted``: the line comes from this worker's front.
        """
        try:
            op, args = decode_request(line)
            handler = HANDLERS.get(op)
            if handler is None:
                known = ", ".join(sorted([*HANDLERS, *manage.HANDLERS]))
                raise ApiError(f"unknown op {op!r}; known: {known}")
            why = self.check(op, args, cred, trusted)
            if why is not None:
                raise ApiError(why)
            token = perms.set_caller(cred or perms.ROOT)
            try:
                result = handler(self.daemon, args)
            finally:
                perms.reset_caller(token)
        except Exception as err:
            return _failed(err), None
        return _succeeded(result)

    def handle(self, line: bytes) -> dict[str, Any]:
        """Answer one request line that needs no descriptor passed."""
        reply, passing = self.answer(line)
        if passing is not None:
            passing.failed()
            passing.sock.close()
            return {"ok": False, "error": "this request passes a descriptor: use the socket"}
        return reply
