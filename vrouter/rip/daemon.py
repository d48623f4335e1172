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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
import time
import tomllib
from dataclasses import dataclass, field
from typing import Any

from vrouter.api.client import DEFAULT_SOCKET
from vrouter.client import Client, RouteSocket, VSocket
from vrouter.daemon import logs
from vrouter.rip import packet as rip
from vrouter.rip.instance import HOP_LIMIT, FibOp, Instance, Timers

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
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as err:
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
        self.routes: RouteSocket = client.route_socket(cfg.vnet)
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
        for op in ops:
            try:
                if op.action == "delete":
                    self.routes.delete(str(op.prefix))
                elif op.action == "change":
                    self.routes.change(
                        str(op.prefix), gateway=str(op.gateway), interface=op.interface
                    )
                else:
                    self.routes.add(str(op.prefix), gateway=str(op.gateway), interface=op.interface)
                log.info("%s: %s %s via %s", self.name, op.action, op.prefix, op.gateway or "-")
            except OSError as err:
                log.warning("%s: cannot %s %s: %s", self.name, op.action, op.prefix, err)

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
        """Remove the routes this instance installed and close its sockets."""
        if self.timer is not None:
            self.timer.cancel()
        for route in self.instance.installed():
            with contextlib.suppress(OSError):  # the vnet may be gone already
                self.routes.delete(str(route.prefix))
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vrouter-ripd``."""
    parser = argparse.ArgumentParser(
        prog="vrouter-ripd", description="RIPv2/RIPng in several vnets at once"
    )
    parser.add_argument("-c", "--config", required=True, help="TOML config")
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--log-format", choices=logs.FORMATS, help="override the config's log_format"
    )
    args = parser.parse_args(argv)
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
