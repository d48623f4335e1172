"""``vrouterd``: load the config, build the vnets, attach devices, serve.

Start-up is all or nothing: if any TAP, namespace or the control socket
cannot be set up, everything created so far is removed and the daemon exits
non-zero.  SIGTERM and SIGINT remove every TAP and namespace it created.

Under systemd (``Type=notify-reload``) it reports READY=1 once start-up has
succeeded, brackets each SIGHUP with RELOADING=1 ... READY=1, reports
STOPPING=1 at shutdown, and sends watchdog keep-alives from the event loop
when ``WatchdogSec=`` is set (``vrouter.daemon.systemd``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import uvloop

from vrouter import __version__
from vrouter.api import socks, streams
from vrouter.api.server import ControlServer
from vrouter.api.sockets import Endpoint, close_all
from vrouter.core import gcpause
from vrouter.core.errors import OpError
from vrouter.core.vnet import VnetTree
from vrouter.daemon import dump, front, hostns, logs, macseed, metrics, systemd, workers
from vrouter.daemon.build import BuildError, Built, bring_up, build
from vrouter.daemon.config import Config, ConfigError, parse, read
from vrouter.daemon.ops import Ops
from vrouter.daemon.reload import ReloadError, ReloadRecord, Step
from vrouter.daemon.reload import check as check_reload
from vrouter.daemon.reload import reload as reload_config
from vrouter.io.driver import Driver
from vrouter.io.underlay import UnderlayError
from vrouter.mirror.manager import Mirrors
from vrouter.mirror.sync import DEFAULT_SYNC, protocol_numbers

log = logging.getLogger("vrouter.daemon")

DEFAULT_CONFIG = "/etc/vrouter/vrouter.toml"


class Daemon:
    """One running vrouterd."""

    def __init__(
        self,
        config: Config,
        loop: asyncio.AbstractEventLoop,
        spec: workers.Spec | None = None,
    ) -> None:
        self.spec = spec
        """What the front told this process, if it is a worker (None: the whole daemon)."""
        self.tops: tuple[str, ...] = spec.tops if spec is not None else ()
        """A worker's top-level vnets (the front moves new ones here on reload)."""
        self.config = self.shape(config)
        self.loop = loop
        self.driver = Driver(loop)
        self.started = time.time()
        self.parsed_collected = False
        """Whether the config's parse was followed by a collection (``main`` does one):
        start-up then freezes what it built without a collection of its own."""
        self.tree: VnetTree | None = None
        self.ownership = hostns.Ownership(Path(config.daemon.state_dir))
        self.server: ControlServer | None = None
        self.endpoints: set[Endpoint] = set()
        """Program sockets (the socket service), closed at shutdown."""
        self.gateways: list[socks.Gateway] = []
        """SOCKS5 gateways into vnets."""
        self.streams: set[Any] = set()
        """TCP listeners and streams of programs (StreamEndpoint, ListenEndpoint)."""
        self.metrics = metrics.Exporter(self)
        """What a scrape holds (the exporter's and ``metrics.scrape``'s)."""
        self.exporter: metrics.MetricsServer | None = None
        self.mirrors: Mirrors | None = None
        self.ops: Ops | None = None
        """Run-time changes (API and reload); set once the vnets are built."""
        self.lock = asyncio.Lock()
        """Serializes start-up, reloads, changes through the API and shutdown."""
        self.reloads: dict[str, int] = {"success": 0, "failure": 0}
        """Reloads by result (``success``, ``failure``), read by the metrics exporter."""
        self.last_reload_success: float | None = None
        """Unix time of the last successful reload."""
        self.last_reload: ReloadRecord | None = None
        """How the last reload ended (``vrouterctl status``)."""
        self._stop = asyncio.Event()

    def shape(self, config: Config, tops: Sequence[str] | None = None) -> Config:
        """Return the part of ``config`` this process runs: all of it, but in a worker."""
        if self.spec is None:
            return config
        return workers.subset(config, self.spec.index, self.tops if tops is None else tops)

    async def start(self) -> None:
        """Build and attach everything; undo it all if any step fails."""
        try:
            with gcpause.held():  # collections while building walk every vnet built so far
                await self._start()
                # Later full collections walk only what comes after start-up; main
                # collected the parse's garbage, and building makes none.
                gcpause.settle(collected=self.parsed_collected)
        except BaseException:
            await self.shutdown()
            raise

    async def _start(self) -> None:
        cfg = self.config
        seed = await asyncio.to_thread(macseed.load, cfg.daemon.data_dir)
        now = self.driver.now()
        built: Built = build(cfg, now, seed)
        self.tree = built.tree
        state_dir = Path(cfg.daemon.state_dir)
        self.ownership = await asyncio.to_thread(hostns.claim, state_dir)
        self.ownership.save()
        if self.spec is None:  # a run with workers may have preceded this one
            await asyncio.to_thread(hostns.claim_workers, state_dir)
        self.driver.tap_txqueuelen = cfg.daemon.tap_txqueuelen
        self.driver.sparse_first = cfg.daemon.sparse_first
        self.driver.busy_poll = cfg.daemon.busy_poll / 1e6
        self.ops = Ops(built.tree, self.driver, self.ownership)
        self.ops.tap_qdisc = cfg.daemon.tap_qdisc
        for vnet in built.tree:
            self.driver.attach_vnet(vnet)
        for a, b in built.epairs:
            self.driver.add_epair(a, b)
            log.info("vnet %s: %s: epair to vnet %s %s", a.vnet.name, a.name, b.vnet.name, b.name)
        for ifp in built.wired:
            fd = (
                self.spec.wires.get(workers.end_key(ifp.vnet.name, ifp.name)) if self.spec else None
            )
            if fd is None:
                raise BuildError(f"vnet {ifp.vnet.name}: {ifp.name}: its epair peer does not exist")
            self.driver.add_wire(ifp, socket.socket(fileno=fd))
            log.info("vnet %s: %s: epair to another worker", ifp.vnet.name, ifp.name)
        for vx in built.vxlans:
            try:
                device = self.driver.open_vxlan(vx, built.tree)
            except UnderlayError as err:
                raise BuildError(str(err)) from err
            log.info(
                "vnet %s: %s: vxlan vni %d on %s port %d (%s), mtu %d",
                vx.vnet.name,
                vx.ifnet.name,
                vx.vni,
                vx.cfg.local,
                vx.cfg.port,
                device.describe(),
                vx.ifnet.mtu,
            )
        qdisc = cfg.daemon.tap_qdisc
        for ifp, icfg in built.taps:
            try:
                self.driver.add_tap(ifp)
            except OSError as err:
                raise hostns.HostError(f"cannot create TAP {ifp.name}: {err}") from err
            log.info("vnet %s: %s: tap attached, mac %s", ifp.vnet.name, ifp.name, ifp.mac.hex(":"))
            if icfg.host is None:
                await asyncio.to_thread(hostns.set_qdisc, None, ifp.name, qdisc)
            else:
                self.ops.hosts[ifp.name] = icfg.host
                await asyncio.to_thread(hostns.create, self.ownership, icfg.host)
                await asyncio.to_thread(hostns.configure, icfg.host, ifp.name, ifp.mtu)
                await asyncio.to_thread(hostns.set_qdisc, icfg.host.netns, ifp.name, qdisc)
                log.info(
                    "vnet %s: %s: host netns %s (%s)",
                    ifp.vnet.name,
                    ifp.name,
                    icfg.host.netns,
                    ", ".join(str(a) for a in icfg.host.addresses),
                )
        now = self.driver.now()
        for vcfg in cfg.vnets:
            vnet = built.tree.get(vcfg.name)
            bring_up(vnet, list(vcfg.interfaces), now)
            log.info(
                "vnet %s: up, %d interfaces, %d routes, forwarding %s",
                vnet.name,
                len(vnet.link.interfaces),
                len(vnet.route.fib),
                "on" if vnet.inet.forwarding else "off",
            )
        self.ops.data_dir = cfg.daemon.data_dir
        for vcfg in cfg.vnets:
            if vcfg.dhcp is not None:
                self.ops.set_dhcp(vcfg.name, vcfg.dhcp)
        self.mirrors = Mirrors(
            self.loop, self.ops, self.ownership.mirrors, self.ownership.save, self.driver.now,
            self.ownership.published,
        )  # fmt: skip
        self.ops.mirrors = self.mirrors
        for vcfg in cfg.vnets:
            if vcfg.mirror is not None:
                protocols = DEFAULT_SYNC if vcfg.mirror.sync is None else protocol_numbers(
                    vcfg.mirror.sync
                )
                await self.mirrors.create(
                    built.tree.get(vcfg.name), vcfg.mirror.netns, protocols, vcfg.mirror.vrf_dir
                )
        if cfg.daemon.metrics is not None:
            self.exporter = metrics.MetricsServer(
                self.expose, self.metrics_selection, self.metrics.record
            )
            await self.exporter.start(*cfg.daemon.metrics)
        self.server = ControlServer(self)
        await self.server.start(cfg.daemon.control_socket)
        for gateway_cfg in cfg.daemon.socks:
            gateway = socks.Gateway(self, gateway_cfg)
            await gateway.start()
            self.gateways.append(gateway)
        log.info("control socket %s", cfg.daemon.control_socket)

    def request_stop(self, signame: str) -> None:
        """Begin an orderly shutdown."""
        log.info("%s received, shutting down", signame)
        self._stop.set()

    async def reload(
        self, text: str | None = None, tops: Sequence[str] | None = None
    ) -> list[Step]:
        """Reload the config file now (as SIGHUP does); raise ReloadError if it failed.

        A worker is given the file's text and its top-level vnets by the front.
        """
        return await reload(self, self.lock, text, tops)

    def status(self) -> dict[str, Any]:
        """Return the daemon-wide part of ``vrouterctl status``."""
        last = self.last_reload
        shown = {
            "version": __version__,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started, 1),
            "config": self.config.path,
            "vnets": len(self.tree or ()),
            "reloads": dict(self.reloads),
            "last_reload": None if last is None else last.describe(),
            "last_reload_success": self.last_reload_success,
        }
        if self.driver.busy_poll > 0.0:
            shown["busy_poll"] = {"polls": self.driver.spins, "found": self.driver.spin_hits}
        return shown

    async def config_vnets(self) -> list[list[Any]]:
        """Return ``[name, table]`` of each vnet this process runs, as a config file has it,
        read a slice per loop pass."""
        if self.tree is None or self.ops is None:
            raise OpError("the daemon is starting")
        epairs = [(e.a, e.b) for e in self.driver.epairs]
        pacer = metrics.Pacer()
        found: list[list[Any]] = []
        with gcpause.held():
            for name, table in dump.running_vnets(self.tree, self.config, epairs, self.ops.hosts):
                found.append([name, table])
                await pacer.tick()
        pacer.done()
        return found

    async def config_dump(self, vnets: list[list[Any]]) -> dict[str, Any]:
        """Return the running configuration made of ``vnets`` (written off the loop)."""
        return await asyncio.to_thread(dump.dump_reply, self.config, vnets)

    async def config_diff(
        self, vnets: list[list[Any]], text: str | None, source: str
    ) -> dict[str, Any]:
        """Return what differs between ``vnets`` and the file (``text`` None: ours), the
        file read and compared off the loop."""
        return await asyncio.to_thread(dump.diff_reply, self.config, vnets, text, source)

    def metrics_selection(self) -> metrics.Selection:
        """Return what the config lets a scrape hold."""
        cfg = self.config.daemon
        return metrics.Selection(enabled=cfg.metrics_collectors, exclude=cfg.metrics_exclude)

    async def expose(self, query: metrics.Query) -> Iterable[str]:
        """Return the steps of a scrape for the exporter to pace."""
        return self.metrics.steps(query)

    async def metrics_chunks(
        self, collect: Sequence[str], exclude: Sequence[str], openmetrics: bool
    ) -> list[str]:
        """Return this process's metrics (the sources ``collect`` names, else the config's),
        built a slice per loop pass (a front merges its workers')."""
        selection = self.metrics_selection()
        unknown = [name for name in collect if name not in metrics.NAMES]
        if unknown:
            raise OpError(f"unknown collector {unknown[0]!r}; known: {', '.join(metrics.NAMES)}")
        sources = frozenset(collect or selection.enabled or metrics.NAMES)
        query = metrics.Query(sources, (*selection.exclude, *exclude), openmetrics)
        pacer = metrics.Pacer()
        chunks = await metrics.paced(self.metrics.steps(query), pacer)
        self.metrics.record(pacer)
        return chunks

    async def reload_request(
        self, text: str | None, tops: Sequence[str] | None, check: bool
    ) -> list[str]:
        """Reload for the control API (``check``: only see whether it would work).

        A front (``text`` given) says the reason in its own words; a reload
        of the file says that the running configuration is kept.
        """
        try:
            steps = await (check_reload(self, text, tops) if check else self.reload(text, tops))
        except ReloadError as err:
            if text is not None:
                raise OpError(str(err)) from None
            raise OpError(f"reload failed, the running configuration is kept:\n{err}") from None
        return [str(step) for step in steps]

    async def run(self) -> None:
        """Serve until a stop is requested."""
        await self._stop.wait()

    async def shutdown(self) -> None:
        """Remove every device and namespace this daemon created."""
        if self.exporter is not None:
            await self.exporter.close()
            self.exporter = None
        if self.server is not None:
            await self.server.close()
            self.server = None
        for gateway in self.gateways:
            await gateway.close()
        self.gateways.clear()
        if self.mirrors is not None:
            await self.mirrors.close()
        close_all(self)
        streams.close_all(self)
        self.driver.close()
        for name in reversed(self.ownership.netns):
            try:
                await asyncio.to_thread(hostns.delete, name)
                log.info("removed netns %s", name)
            except hostns.HostError as err:
                log.error("%s", err)
        self.ownership.netns.clear()
        self.ownership.remove()


def parser() -> argparse.ArgumentParser:
    """Return ``vrouterd``'s command-line parser (its man page is made from it too)."""
    parser = argparse.ArgumentParser(prog="vrouterd", description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="TOML config file")
    parser.add_argument(
        "--check", action="store_true", help="validate the config and exit (0 valid, 2 invalid)"
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="override the config's log level",
    )
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        help="override the config's log format (text, or json for container log collectors)",
    )
    parser.add_argument("--version", action="version", version=f"vrouterd {__version__}")
    parser.add_argument("--worker", metavar="SPEC", help=argparse.SUPPRESS)
    return parser


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    return parser().parse_args(argv)


def _status(daemon: Daemon) -> str:
    """Return the one-line status systemd shows for a running daemon."""
    tree = daemon.tree or ()
    interfaces = sum(len(vnet.link.interfaces) for vnet in tree)
    return (
        f"{len(tree)} vnets, {interfaces} interfaces; "
        f"control socket {daemon.config.daemon.control_socket}"
    )


async def reload(
    daemon: Daemon,
    lock: asyncio.Lock,
    text: str | None = None,
    tops: Sequence[str] | None = None,
) -> list[Step]:
    """Reload the config, bracketed by RELOADING=1 and READY=1 (``Type=notify-reload``).

    ``lock`` serializes reloads with start-up, API changes and shutdown:
    ``_serve`` holds it during start-up and from shutdown on, so a SIGHUP
    then waits, or is dropped with the loop.  The file is read and validated,
    and only the differences are applied (:mod:`vrouter.daemon.reload`); a
    broken file or a failed step changes nothing and raises ReloadError.
    """
    async with lock:
        systemd.reloading("reloading")
        try:
            return await reload_config(daemon, text, tops)
        finally:
            systemd.ready(_status(daemon))


def _tell_front(spec: workers.Spec | None, message: str) -> None:
    """Write a worker's start-up outcome to the front's pipe, once."""
    if spec is None:
        return
    with contextlib.suppress(OSError):
        os.write(spec.ready, (message.replace("\n", " ") + "\n").encode())
        os.close(spec.ready)


async def _serve(config: Config, spec: workers.Spec | None = None) -> int:
    loop = asyncio.get_running_loop()
    daemon = Daemon(config, loop, spec)
    daemon.parsed_collected = True
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, daemon.request_stop, signal.Signals(signum).name)
    reload_lock = daemon.lock
    await reload_lock.acquire()
    reloads: set[asyncio.Task[None]] = set()

    async def sighup() -> None:
        with contextlib.suppress(ReloadError):  # logged and recorded; the daemon runs on
            await reload(daemon, reload_lock)

    def on_sighup() -> None:
        task = loop.create_task(sighup())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    if spec is None:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    else:  # the front reloads its workers; a SIGHUP to the whole group changes nothing
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
    keepalive = systemd.Watchdog.start(loop)
    try:
        await daemon.start()
    except Exception as err:
        gcpause.end()
        log.debug("start-up failure", exc_info=True)
        log.error("start-up failed, nothing left behind: %s", err)
        systemd.status(f"start-up failed: {err}")
        _tell_front(spec, f"failed: {err}")
        return 1
    gcpause.end()  # main's hold over the parse
    log.info(
        "vrouterd %s ready (pid %d), %d vnets", __version__, os.getpid(), len(daemon.tree or ())
    )
    systemd.ready(_status(daemon))
    _tell_front(spec, "ready")
    reload_lock.release()
    try:
        await daemon.run()
    finally:
        await reload_lock.acquire()
        systemd.stopping("shutting down")
        await daemon.shutdown()
        if keepalive is not None:
            keepalive.cancel()
        log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vrouterd``."""
    args = _parse_args(argv)
    spec = None
    if args.worker is not None:
        try:
            spec = workers.Spec.decode(args.worker)
        except ValueError as err:
            print(f"vrouterd: --worker: {err}", file=sys.stderr)
            return 2
        workers.follow(spec)
    # A big config is millions of objects: the collector stays off from the parse to the
    # end of start-up, which collects once (_serve ends this hold; a front, at once).
    gcpause.begin()
    try:
        # A worker runs the very text its front read, whatever the file says by now.
        text = workers.read_text(spec.config) if spec is not None else read(args.config)
        config = parse(text, args.config)
    except ConfigError as err:
        gcpause.end()
        print(err, file=sys.stderr)
        return 2
    if args.check:
        gcpause.end()
        interfaces = sum(len(v.interfaces) for v in config.vnets)
        print(f"{args.config}: OK ({len(config.vnets)} vnets, {interfaces} interfaces)")
        return 0
    # The parse's garbage (and the imports'), collected while the heap holds only the
    # config: building the vnets makes none, so start-up ends without walking them all.
    gc.collect()
    level = args.log_level or config.daemon.log_level
    log_format = args.log_format or config.daemon.log_format
    logs.setup(level, log_format, spec.index if spec is not None else None)
    with contextlib.suppress(KeyboardInterrupt):
        if spec is None and config.daemon.workers > 1:
            gcpause.end()
            return uvloop.run(
                front.serve(config, text, level, args.log_level is not None, log_format)
            )
        return uvloop.run(_serve(config, spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
