"""``vrouter-ripd``: RIPv2 and RIPng in several vnets from one process.

Each ``[[instance]]`` of the config runs RIP for one family in one vnet:
a UDP socket on port 520 (RIPng: 521) in that vnet joined to 224.0.0.9
(ff02::9) on each RIP interface, and a route socket through which learned
routes are installed and removed.  All instances share one asyncio loop —
the point of the socket service: one routing daemon, many stacks.

Config (TOML)::

    socket = "/run/vrouter/control.sock"
    log_format = "text"             # or "json" (vrouter.daemon.logs)
    [[instance]]
    vnet = "red"
    family = "inet"                 # or "inet6" (RIPng)
    interfaces = ["vr-red0", "ep0"]
    update = 30                     # seconds; timeout and garbage likewise
    timeout = 180
    garbage = 120
    auth = "md5"                    # RIPv2 only: "none" (default), "plain" or "md5"
    password = "secret"             # at most 16 bytes
    key_id = 1                      # md5: the key id both ends use
    auth_length = 20                # md5: the Auth Data Len sent, 20 (default) or 16

Keyed MD5 accepts both lengths of the trailer that peers write in the
``Auth Data Len`` field: 16 (RFC 2082, FRR's ``auth-length rfc``) and 20
(BIRD, FRR's default ``old-ripd``).  What is sent is 20 unless
``auth_length = 16``; BIRD and FRR accept either, so it matters only for a
peer that insists on one.

Packets that fail authentication are dropped, counted in the instance's
stats and logged.

Learnt routes go into the vnet under the source ``rip`` (RIPng: ``ripng``,
administrative distance 120).  The route socket says of each add whether
the route is installed, held (a better source, say a static route, has the
prefix) or refused; a refused route is not counted as being in the table.
The events of the route socket keep that record current (a held route
taking over, one removed with its interface).  Withdrawing a route, on
timeout or at exit, deletes only this source's route: a static route to the
same prefix stays.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import logging
import signal
import socket
import sys
import time
import tomllib
from dataclasses import dataclass, field
from typing import Any, Protocol

from vrouter.api.client import DEFAULT_SOCKET
from vrouter.client import Client, RouteSocket, VSocket
from vrouter.core import tomlkeys
from vrouter.daemon import logs
from vrouter.rip import packet as rip
from vrouter.rip.instance import HOP_LIMIT, FibOp, Instance, Prefix, Timers

log = logging.getLogger("vrouter.ripd")


class ConfigProblem(Exception):
    """The ripd config is not usable."""


@dataclass
class InstanceConfig:
    """One ``[[instance]]``."""

    vnet: str
    family: int
    interfaces: list[str]
    timers: Timers
    auth: rip.Auth = field(default_factory=rip.Auth)


@dataclass
class RipdConfig:
    """The whole config: where vrouterd is, the instances, how to log."""

    control: str
    instances: list[InstanceConfig]
    log_format: str = logs.DEFAULT_FORMAT


_KEYS = {
    "vnet",
    "family",
    "interfaces",
    "update",
    "timeout",
    "garbage",
    "auth",
    "password",
    "key_id",
    "auth_length",
}


def _auth(item: dict[str, Any], family: int, key: str) -> rip.Auth:
    """Return the authentication of one ``[[instance]]``."""
    kind = item.get("auth", "none")
    password = item.get("password", "")
    key_id = item.get("key_id", 1)
    auth_length = item.get("auth_length", rip.MD5_TRAILER_LEN)
    if kind not in rip.AUTH_KINDS:
        raise ConfigProblem(f"{key}.auth: {kind!r} is not none, plain or md5")
    if kind != "none" and family == 6:
        raise ConfigProblem(f"{key}.auth: RIPng has no authentication (RFC 2080 relies on IPsec)")
    if not isinstance(password, str):
        raise ConfigProblem(f"{key}.password: a string")
    if isinstance(key_id, bool) or not isinstance(key_id, int):
        raise ConfigProblem(f"{key}.key_id: an integer 0..255")
    if "auth_length" in item and kind != "md5":
        raise ConfigProblem(f'{key}.auth_length: only for auth = "md5"')
    if not isinstance(auth_length, int) or auth_length not in rip.MD5_AUTH_LENGTHS:
        raise ConfigProblem(f"{key}.auth_length: 16 (RFC 2082) or 20 (BIRD, FRR's default)")
    try:
        return rip.Auth(kind, password.encode(), key_id, auth_length)
    except ValueError as err:
        raise ConfigProblem(f"{key}: {err}") from None


def load_config(path: str) -> RipdConfig:
    """Read and check the config; raise ConfigProblem naming the key."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = tomlkeys.loads(f.read())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigProblem(f"{path}: {err}") from None
    control = doc.get("socket", DEFAULT_SOCKET)
    log_format = doc.get("log_format", logs.DEFAULT_FORMAT)
    if log_format not in logs.FORMATS:
        raise ConfigProblem(f"{path}: log_format: {log_format!r} is not one of: text, json")
    instances = []
    for i, item in enumerate(doc.get("instance", [])):
        key = f"{path}: instance[{i}]"
        unknown = set(item) - _KEYS
        if unknown:
            raise ConfigProblem(f"{key}: unknown keys {sorted(unknown)}")
        family = {"inet": 4, "inet6": 6}.get(item.get("family", "inet"))
        if family is None or not isinstance(item.get("vnet"), str):
            raise ConfigProblem(f"{key}: needs vnet and family inet or inet6")
        interfaces = item.get("interfaces")
        if not isinstance(interfaces, list) or not interfaces:
            raise ConfigProblem(f"{key}.interfaces: a non-empty list of interface names")
        timers = Timers(
            float(item.get("update", 30)),
            float(item.get("timeout", 180)),
            float(item.get("garbage", 120)),
        )
        instances.append(
            InstanceConfig(item["vnet"], family, interfaces, timers, _auth(item, family, key))
        )
    if not instances:
        raise ConfigProblem(f"{path}: no [[instance]]")
    return RipdConfig(control, instances, log_format)


class Table:
    """The instance's routes in the vnet's table as the route socket tells: prefix -> state.

    States are ``installed`` and ``held``; a route the vnet refused is not here.
    Replies and events are taken in the order they come, so the last word on
    a prefix is the vnet's current one.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.states: dict[Prefix, str] = {}

    def __contains__(self, prefix: object) -> bool:
        return prefix in self.states

    def note(self, route: dict[str, Any]) -> None:
        """Record the state the vnet gave one of our routes in a reply."""
        self.states[ipaddress.ip_network(route["prefix"])] = str(route.get("state", "installed"))

    def forget(self, prefix: Prefix) -> bool:
        """Forget ``prefix``; return whether it was in the table."""
        return self.states.pop(prefix, None) is not None

    def event(self, event: dict[str, Any]) -> tuple[Prefix, str] | None:
        """Take a route-socket event; return (prefix, new state or ``gone``) if it was ours."""
        route = event.get("route")
        if not isinstance(route, dict) or route.get("source") != self.source:
            return None
        prefix = ipaddress.ip_network(route["prefix"])
        if event.get("type") == "RTM_DELETE":
            return (prefix, "gone") if self.forget(prefix) else None
        state = str(route.get("state", "installed"))
        if self.states.get(prefix) == state:
            return None
        self.states[prefix] = state
        return prefix, state


class RouteRequests(Protocol):
    """What :func:`apply` asks of a route socket (:class:`vrouter.client.RouteSocket`)."""

    def add(
        self, prefix: str, gateway: str | None = ..., interface: str | None = ...
    ) -> dict[str, Any]: ...

    def change(
        self, prefix: str, gateway: str | None = ..., interface: str | None = ...
    ) -> dict[str, Any]: ...

    def delete(self, prefix: str) -> dict[str, Any]: ...


def apply(name: str, routes: RouteRequests, table: Table, ops: list[FibOp]) -> None:
    """Carry out the instance's table changes through ``routes``, keeping ``table``.

    A delete of a route the vnet never took (refused) sends nothing.  An add
    of a route our source already has there (left by an earlier run) becomes
    a change.  A refused change withdraws the old route, now wrong.
    """
    for op in ops:
        prefix = str(op.prefix)
        via = str(op.gateway) if op.gateway is not None else None
        if op.action == "delete":
            if not table.forget(op.prefix):
                log.debug("%s: delete %s: not in the table", name, prefix)
                continue
            try:
                routes.delete(prefix)
                log.info("%s: delete %s", name, prefix)
            except OSError as err:
                log.warning("%s: cannot delete %s: %s", name, prefix, err)
            continue
        try:
            if op.prefix in table:
                route = routes.change(prefix, gateway=via, interface=op.interface)
            else:
                try:
                    route = routes.add(prefix, gateway=via, interface=op.interface)
                except OSError as err:
                    if err.errno != errno.EEXIST:
                        raise
                    route = routes.change(prefix, gateway=via, interface=op.interface)
        except OSError as err:
            log.warning("%s: %s %s via %s refused: %s", name, op.action, prefix, via, err.strerror)
            if table.forget(op.prefix):
                with contextlib.suppress(OSError):
                    routes.delete(prefix)
            continue
        table.note(route)
        log.info(
            "%s: %s %s via %s: %s", name, op.action, prefix, via, route.get("state", "installed")
        )


class Runner:
    """One instance on the event loop: its sockets, timers and installed routes."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, client: Client, cfg: InstanceConfig
    ) -> None:
        self.loop = loop
        self.cfg = cfg
        self.name = f"{cfg.vnet}/{'rip' if cfg.family == 4 else 'ripng'}"
        self.instance = Instance(
            cfg.family, cfg.timers, auth=cfg.auth, clock_offset=time.time() - loop.time()
        )
        fam = socket.AF_INET if cfg.family == 4 else socket.AF_INET6
        self.port = rip.PORT_V2 if cfg.family == 4 else rip.PORT_NG
        self.group = rip.GROUP_V2 if cfg.family == 4 else rip.GROUP_NG
        source = "rip" if cfg.family == 4 else "ripng"
        self.routes: RouteSocket = client.route_socket(cfg.vnet, source=source)
        self.table = Table(source)
        self.udp: VSocket = client.socket(cfg.vnet, fam, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0" if cfg.family == 4 else "::", self.port))
        self.udp.setsockopt("multicast_ttl", 1 if cfg.family == 4 else 255)
        self.index: dict[int, str] = {}
        self.source: dict[str, str] = {}
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Join the groups, learn the interfaces, ask the neighbours for their tables."""
        interfaces = {i["name"]: i for i in self.routes.interfaces()}
        addresses: dict[str, list[Any]] = {}
        for a in self.routes.addresses():
            addresses.setdefault(a["interface"], []).append(ipaddress.ip_interface(a["address"]))
        now = self.loop.time()
        for name in self.cfg.interfaces:
            if name not in interfaces:
                raise ConfigProblem(f"vnet {self.cfg.vnet} has no interface {name!r}")
            self.index[interfaces[name]["index"]] = name
            mine = [a for a in addresses.get(name, []) if a.version == self.cfg.family]
            source = next((a for a in mine if self.cfg.family == 4 or a.is_link_local), None)
            if source is None:
                raise ConfigProblem(
                    f"vnet {self.cfg.vnet}: {name} has no IPv{self.cfg.family} "
                    "address to speak RIP from"
                )
            self.source[name] = str(source.ip)
            self.instance.set_interface(name, mine, now)
            self.udp.join_group(self.group, name)
            self._send(name, self.group, self.port, self.instance.request_table(now))
        self.udp._sock.setblocking(False)
        self.loop.add_reader(self.udp.fileno(), self._readable)
        self.loop.add_reader(self.routes.fileno(), self._route_events)
        log.info("%s: RIP on %s", self.name, ", ".join(self.cfg.interfaces))
        self._arm()

    def _send(self, interface: str, to: str, port: int, data: bytes) -> None:
        index = next(i for i, n in self.index.items() if n == interface)
        # RIPng goes out with hop limit 255, unicast too (RFC 2080 2.5); RIPv2 with
        # the socket's TTL (1 for the group).
        ttl = HOP_LIMIT if self.cfg.family == 6 else 0
        try:
            self.udp.sendto(data, (to, port), source=self.source[interface], ifindex=index, ttl=ttl)
        except OSError as err:
            log.warning("%s: %s: cannot send: %s", self.name, interface, err)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data, (src, sport), info = self.udp.recvmsg_info()
            except BlockingIOError:
                break
            except ConnectionResetError as err:
                log.error("%s: %s", self.name, err)
                self.loop.remove_reader(self.udp.fileno())
                break
            except OSError as err:
                log.warning("%s: %s", self.name, err)
                continue
            interface = self.index.get(info.ifindex)
            if interface is None:
                continue
            stats = self.instance.stats
            dropped = sum(stats.reasons.values())
            ops, answers = self.instance.receive(
                interface,
                ipaddress.ip_address(src),
                sport,
                data,
                self.loop.time(),
                ttl=info.ttl,
                destination=ipaddress.ip_address(info.dst),
            )
            if sum(stats.reasons.values()) != dropped:
                level = logging.WARNING if "auth" in stats.last_drop else logging.DEBUG
                log.log(
                    level, "%s: %s: dropped from %s: %s", self.name, interface, src, stats.last_drop
                )
            self._apply(ops)
            for to, port, reply in answers:
                self._send(interface, str(to), port, reply)
        self._run()

    def _apply(self, ops: list[FibOp]) -> None:
        if ops:
            apply(self.name, self.routes, self.table, ops)
            self._route_events()

    def _route_events(self) -> None:
        """Follow what the vnet says of our routes (taken over, outranked, removed)."""
        try:
            events = self.routes.pending_events()
        except OSError as err:
            log.error("%s: route socket: %s", self.name, err)
            self.loop.remove_reader(self.routes.fileno())
            return
        for event in events:
            news = self.table.event(event)
            if news is not None:
                log.info("%s: %s: %s", self.name, news[0], news[1])

    def _run(self) -> None:
        ops, packets = self.instance.tick(self.loop.time())
        self._apply(ops)
        for interface, data in packets:
            self._send(interface, self.group, self.port, data)
        self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(self.instance.next_deadline(), self._run)

    def stop(self) -> None:
        """Withdraw this instance's routes (installed or held) and close its sockets."""
        if self.timer is not None:
            self.timer.cancel()
        with contextlib.suppress(OSError, ValueError):
            self.loop.remove_reader(self.routes.fileno())
        for prefix in list(self.table.states):
            with contextlib.suppress(OSError):  # the vnet may be gone already
                self.routes.delete(str(prefix))
            self.table.forget(prefix)
        self.udp.close()
        self.routes.close()


async def run(control: str, configs: list[InstanceConfig]) -> int:
    """Run every instance until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    client = Client(control)
    runners = [Runner(loop, client, cfg) for cfg in configs]
    try:
        for runner in runners:
            runner.start()
        log.info("vrouter-ripd ready: %d instances", len(runners))
        await stop.wait()
    finally:
        for runner in runners:
            runner.stop()
        client.close()
    return 0


def parser() -> argparse.ArgumentParser:
    """Return ``vrouter-ripd``'s command-line parser (its man page is made from it too)."""
    parser = argparse.ArgumentParser(
        prog="vrouter-ripd", description="RIPv2/RIPng in several vnets at once"
    )
    parser.add_argument("-c", "--config", required=True, help="TOML config")
    parser.add_argument(
        "--log-level", default="info", help="debug, info, warning or error (default info)"
    )
    parser.add_argument(
        "--log-format", choices=logs.FORMATS, help="override the config's log_format"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vrouter-ripd``."""
    args = parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigProblem as err:
        print(f"vrouter-ripd: {err}", file=sys.stderr)
        return 2
    logs.setup(args.log_level, args.log_format or config.log_format)
    try:
        return asyncio.run(run(config.control, config.instances))
    except OSError as err:
        print(f"vrouter-ripd: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
