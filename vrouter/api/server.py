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
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vrouter import __version__
from vrouter.api import manage
from vrouter.api.protocol import MAX_LINE, ApiError, decode_request, encode
from vrouter.core.sysctl import SysctlError
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
        "last_reload": None
        if last is None
        else {
            "time": round(last.time, 3),
            "result": last.result,
            "error": last.error,
            "changes": last.changes,
        },
        "last_reload_success": daemon.last_reload_success,
    }


def _vnet_list(daemon: Daemon, args: dict[str, Any]) -> Any:
    return [
        {
            "name": vnet.name,
            "parent": vnet.parent.name if vnet.parent is not None else None,
            "forwarding": vnet.inet.forwarding,
            "interfaces": len(vnet.link.interfaces),
            "routes": len(vnet.route.fib) + len(vnet.route.fib6),
            "neighbours": len(vnet.inet.arp.entries) + len(vnet.inet6.nd.entries),
        }
        for vnet in daemon.tree or ()
    ]


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
    tables = {"inet": vnet.route.fib, "inet6": vnet.route.fib6}
    return [
        route.describe() for name, fib in tables.items() if family in (None, name) for route in fib
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
    }


def _drops_by_reason(vnet: Vnet) -> dict[str, int]:
    """Return every interface's drops of ``vnet`` summed by reason."""
    total: Counter[str] = Counter()
    for ifp in vnet.link.interfaces.values():
        total.update(ifp.counters.rx_drops)
        total.update(ifp.counters.tx_drops)
    return dict(sorted(total.items()))


def _firewall_show(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
    fw = vnet.firewall.fw
    return {
        "enabled": fw.enabled,
        "default": fw.ruleset.default,
        "rules": fw.ruleset.describe(),
        "states": len(fw.states),
        "max_states": fw.states.max_states,
    }


def _firewall_load(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
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
    vnet = _vnet(daemon, args)
    now = daemon.driver.now()
    return [state.describe(now) for state in vnet.firewall.fw.states]


def _firewall_flush(daemon: Daemon, args: dict[str, Any]) -> Any:
    vnet = _vnet(daemon, args)
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
    except SysctlError as err:
        raise ApiError(str(err)) from None
    result = []
    for name, value in checked.items():
        old = tree.get(vnet, name)
        tree.set(vnet, name, value)
        log.info("vnet %s: sysctl %s: %s -> %s", vnet.name, name, old, value)
        result.append({"name": name, "old": old, "value": value})
    return result


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


HANDLERS: dict[str, Handler] = {
    "status": _status,
    "vnet.list": _vnet_list,
    "ifconfig": _ifconfig,
    "route.show": _route_show,
    "arp.show": _arp_show,
    "ndp.show": _ndp_show,
    "netstat": _netstat,
    "sysctl.get": _sysctl_get,
    "firewall.show": _firewall_show,
    "firewall.load": _firewall_load,
    "firewall.states": _firewall_states,
    "firewall.flush": _firewall_flush,
    "sysctl.set": _sysctl_set,
    "capture": _capture,
}


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
        """Listen on ``path`` (mode 0660), replacing a stale socket file."""
        sock_path = Path(path)
        sock_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path, limit=MAX_LINE)
        os.chmod(path, 0o660)
        self._path = sock_path

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

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_LINE: the stream cannot resync
                    writer.write(encode({"ok": False, "error": "request line too long"}))
                    break
                if not line:
                    break
                reply, passing = await self.answer_async(line)
                if passing is None:
                    writer.write(encode(reply))
                else:
                    await self._pass_fd(writer, encode(reply), passing)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _pass_fd(self, writer: asyncio.StreamWriter, line: bytes, passing: PassFd) -> None:
        """Send ``line`` with ``passing.sock`` attached, after every earlier byte."""
        try:
            transport = writer.transport
            transport.set_write_buffer_limits(high=0)  # drain() now waits for an empty buffer
            try:
                await asyncio.wait_for(writer.drain(), PASS_TIMEOUT)
            finally:
                transport.set_write_buffer_limits()
            fds = array.array("i", [passing.sock.fileno()])
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
            passing.failed()
            raise ConnectionError(f"cannot pass a descriptor: {err}") from err
        finally:
            passing.sock.close()
        passing.passed(self)
        if sent < len(line):
            writer.write(line[sent:])

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

    async def answer_async(self, line: bytes) -> tuple[dict[str, Any], PassFd | None]:
        """Answer one request line, awaiting the handlers that change the vnets."""
        try:
            op, args = decode_request(line)
        except ApiError:
            return self.answer(line)
        change = manage.HANDLERS.get(op)
        if change is None:
            return self.answer(line)
        try:
            result = await change(self.daemon, args)
        except ApiError as err:
            return {"ok": False, "error": str(err)}, None
        except Exception as err:
            log.exception("control request failed")
            return {"ok": False, "error": f"internal error: {err}"}, None
        return {"ok": True, "result": result}, None

    def answer(self, line: bytes) -> tuple[dict[str, Any], PassFd | None]:
        """Answer one request line; the second item, if any, rides with the reply."""
        try:
            op, args = decode_request(line)
            handler = HANDLERS.get(op)
            if handler is None:
                known = ", ".join(sorted([*HANDLERS, *manage.HANDLERS]))
                raise ApiError(f"unknown op {op!r}; known: {known}")
            result = handler(self.daemon, args)
        except ApiError as err:
            return {"ok": False, "error": str(err)}, None
        except Exception as err:
            log.exception("control request failed")
            return {"ok": False, "error": f"internal error: {err}"}, None
        if isinstance(result, PassFd):
            return {"ok": True, "result": result.result}, result
        return {"ok": True, "result": result}, None

    def handle(self, line: bytes) -> dict[str, Any]:
        """Answer one request line that needs no descriptor passed."""
        reply, passing = self.answer(line)
        if passing is not None:
            passing.failed()
            passing.sock.close()
            return {"ok": False, "error": "this request passes a descriptor: use the socket"}
        return reply
