"""The mirrors' I/O: namespaces, representor TAPs, the punt writers and the netlink reader.

For each vnet with a ``[vnets.NAME.mirror]`` the daemon creates a network
namespace (recorded in ``state_dir/owned.json`` before it exists, so a
crashed run's mirrors are removed by the next start) and, for each vnet
interface, a representor: a TAP opened here, moved into the namespace and
given the interface's name, MAC, MTU and addresses.

Representors are **NOARP** TAPs (as grout's): the mirror's kernel resolves
no neighbours and addresses every frame to the representor's own MAC; the
daemon reads the IP packet and sends it through the vnet's output, whose
ARP/ND cache is the only one.  There is no second neighbour table to keep
coherent, and no ARP or ND traffic between the daemon and the mirror.
Kernel knobs keep the mirror's kernel from acting on the link as a node of
its own: no DAD, no router advertisements taken or solicitations sent, no
SLAAC, ``addr_gen_mode`` none (its link-local is the vnet's), no
forwarding, no reverse-path filter.

A netlink socket opened inside the namespace follows the main table's
routes and the nexthop objects (:mod:`vrouter.mirror.sync`); at start it
dumps both, so routes the mirror already had are synced too.

A mirror with a ``vrf_dir`` also appears there, as ``VRF_DIR/NETNS``: a bind
mount of its namespace in a directory made a shared mount point.  A routing
daemon with a netns VRF backend (FRR's ``zebra -n``) whose ``/run/netns`` is
that directory serves each mirror in it as a VRF of the namespace's name, and
no other namespace of the host; mirrors come and go there with their vnets
(:mod:`vrouter.mirror.vrfdir`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import gc
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytun  # type: ignore[import-not-found]

from vrouter.core import command, gcpause
from vrouter.mirror import punt, rtnetlink, vrfdir
from vrouter.mirror.state import default_netns as default_netns
from vrouter.mirror.state import state_of
from vrouter.mirror.sync import KernelKey, Prefix, RouteSync, Want

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet
    from vrouter.route.source import Source

log = logging.getLogger("vrouter.mirror")

NETNS_DIR = Path("/run/netns")
READ_SIZE = 65536
NETLINK_READ = 1 << 15
"""Bytes read from the netlink socket at once: the kernel sizes a dump's batches to it
(up to 32 KiB, some 500 routes); a change notification comes one to a read."""
NETLINK_BUFFER = 512 << 20
"""The netlink socket's receive buffer (``SO_RCVBUFFORCE``; the kernel doubles it): the
kernel's notifications of a feed while their reader is busy elsewhere, some 830 bytes
each as accounted, so about 1.3 million (32 MiB held 80,659).  Only what waits takes
memory; past it the kernel drops notifications and the sync dumps the table again."""
APPLY_SLICE = 256
"""Pending vnet routes applied at once (one call of ``Ops.put_routes``)."""
DISCARD_SLICE = 10_000
"""Routes of a table the sync no longer needs freed a turn (``_discard``), or routes
made pending a turn for a resync's reconciliation (``_reconcile``)."""
BURST_QUIET = 1.0
"""Seconds without a change that end a burst of changes (see ``_end_burst``)."""
FREEZE_AFTER = 10_000
"""Vnet routes changed, or messages read, in a burst after which what it made is frozen
out of the garbage collector's reach (``gc.freeze``)."""
NETLINK_TURN = 0.001
"""Seconds of route sync per turn of the loop before forwarding gets its turn, once for
reading the socket and once for applying what it said (both go on at the next turn).
A frame crossing the daemon waits for about one such pass at each TAP it is read
from: 1 ms (against 2) halved the ping p50 through a vnet during a million-route feed
(4.7 ms against 11.3; p99 27 against 38) without slowing the feed."""
CLONE_NEWNET = 0x40000000
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
STOP_GRACE = 2.0
"""Seconds processes in a mirror get between SIGTERM and SIGKILL."""

SYSCTLS = (
    "net.ipv4.ip_forward=0",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv6.conf.all.forwarding=0",
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.default.accept_ra=0",
    "net.ipv6.conf.default.autoconf=0",
    "net.ipv6.conf.default.router_solicitations=0",
    "net.ipv6.conf.default.addr_gen_mode=1",
)
"""The mirror namespace's knobs (``default`` ones reach every representor)."""
IF_SYSCTLS = ("accept_dad=0", "accept_ra=0", "autoconf=0", "router_solicitations=0",
              "addr_gen_mode=1", "forwarding=0")  # fmt: skip
"""Each representor's own IPv6 knobs, set again after the move (belt and braces)."""


class MirrorError(Exception):
    """A mirror namespace or representor could not be set up."""


class RouteOps(Protocol):
    """What the route sync needs of the daemon's ``Ops``."""

    def put_routes(
        self, vnet_name: str, routes: Sequence[tuple[tuple[int, int, int], Source, Want]]
    ) -> list[tuple[int, str]]: ...

    def remove_routes(self, vnet_name: str, routes: Iterable[tuple[Prefix, str]]) -> int: ...


def _ip(*args: str) -> str:
    return command.run(["ip", *args], MirrorError)


def _sysctl(ns: str, settings: list[str]) -> None:
    command.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *settings], MirrorError,
                f"netns {ns}: sysctl")  # fmt: skip


def pids_in(ns: str) -> list[int]:
    """Return the processes in namespace ``ns``."""
    result = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                            timeout=30, check=False)  # fmt: skip
    return [int(p) for p in result.stdout.split() if p.isdigit()]


def end_processes(ns: str, grace: float = STOP_GRACE) -> int:
    """End every process in namespace ``ns`` (SIGTERM, then SIGKILL after ``grace``
    seconds); return how many there were.  They would keep the namespace alive."""
    pids = pids_in(ns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pids_in(ns):
        time.sleep(0.05)
    for pid in pids_in(ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def delete_netns(ns: str) -> None:
    """End the processes in ``ns`` and delete it (a no-op if it is gone)."""
    if not (NETNS_DIR / ns).exists():
        return
    end_processes(ns)
    _ip("netns", "del", ns)


def create_netns(ns: str) -> None:
    """Create mirror namespace ``ns`` with its knobs; refuse one that exists."""
    if (NETNS_DIR / ns).exists():
        raise MirrorError(f"netns {ns} already exists and was not created by this vrouterd")
    _ip("netns", "add", ns)
    _ip("-n", ns, "link", "set", "lo", "up")
    _sysctl(ns, list(SYSCTLS))


def _netlink_in(ns: str) -> socket.socket:
    """Open a route netlink socket inside ``ns``, subscribed to routes and nexthops.

    ``setns`` moves only the calling thread, so a thread of its own makes the
    socket and ends: no thread of the daemon is left in the namespace.
    """
    made: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(NETNS_DIR / ns, "rb") as nsfile:
                if libc.setns(nsfile.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {ns}")
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                                 socket.NETLINK_ROUTE)  # fmt: skip
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, 33, NETLINK_BUFFER)  # SO_RCVBUFFORCE
            groups = 1 << (rtnetlink.RTNLGRP_IPV4_ROUTE - 1) | 1 << (
                rtnetlink.RTNLGRP_IPV6_ROUTE - 1
            )
            sock.bind((0, groups))
            with contextlib.suppress(OSError):  # a kernel without nexthop objects
                sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, rtnetlink.RTNLGRP_NEXTHOP)
            made.append(sock)
        except BaseException as err:
            made.append(err)

    thread = threading.Thread(target=make, name=f"netns-{ns}")
    thread.start()
    thread.join()
    result = made[0]
    if isinstance(result, BaseException):
        raise MirrorError(f"netns {ns}: cannot open netlink: {result}")
    return result


@dataclass
class Representor:
    """One interface's TAP in the mirror."""

    ifnet: Ifnet
    tun: object
    fd: int
    index: int = 0
    """Its interface index in the mirror (routes name it)."""


@dataclass
class Mirror:
    """One vnet's mirror."""

    vnet: Vnet
    netns: str
    sync: RouteSync
    published: str | None = None
    """Where the namespace is bound for a netns VRF daemon (``VRF_DIR/NETNS``), if anywhere."""
    representors: dict[str, Representor] = field(default_factory=dict)
    applied: dict[KernelKey, Want] = field(default_factory=dict)
    """The vnet routes the sync put in place, by the kernel route each stands for."""
    netlink: socket.socket | None = None
    dumping: list[bytes] = field(default_factory=list)
    """Dump requests still to send, in order (nexthops, IPv4 routes, IPv6 routes)."""
    in_dump: bool = False
    """A dump is under way (until the IPv6 routes' end)."""
    overrun: bool = False
    """Events were lost: a resync is due once the socket is drained and no dump runs."""
    stale: dict[KernelKey, float] = field(default_factory=dict)
    """Routes the mirror withdrew, kept until then (loop time): ``net.mirror.sync_grace``."""
    reconcile: list[KernelKey] = field(default_factory=list)
    """Vnet routes to check against a finished resync's dump, made pending a slice a turn."""
    pending: set[KernelKey] = field(default_factory=set)
    """Kernel routes whose vnet route is to be brought in line, a slice at a time: a route
    changed many times meanwhile is applied once, as it is by then."""
    applying: bool = False
    """A pass of :meth:`Mirrors._apply_pending` is scheduled."""
    backlog: bool = False
    """The last read left the socket with more to read: applying takes a slice a turn
    only, so that reading keeps up (the kernel drops what overruns the socket)."""
    busy: contextlib.ExitStack | None = None
    """Holds the garbage collector off while a burst of changes is synced."""
    burst: int = 0
    """Vnet routes changed since the burst began."""
    burst_read: int = 0
    """The sync's message count when the burst began."""
    burst_started: float = 0.0
    refused: int = 0
    """Synced routes the vnet refused (a gateway on no connected network…)."""
    listener: Callable[[dict[str, object]], None] | None = None


_TEMP_NAMES = itertools.count()
"""Numbers of the temporary names representors are created under (unique in this process)."""


class Mirrors:
    """Every vnet's mirror in this daemon."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, ops: RouteOps, owned: list[str],
        save: Callable[[], None], now: Callable[[], float],
        published: list[str] | None = None,
    ) -> None:  # fmt: skip
        self.loop = loop
        self.ops = ops
        self.owned = owned
        """The mirror namespaces recorded in the state file (shared with it)."""
        self.published = [] if published is None else published
        """The namespaces' bind mounts in ``vrf_dir`` directories, recorded in the state
        file too (shared with it) before they are made."""
        self._save = save
        self._now = now
        self.mirrors: dict[str, Mirror] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- life cycle ---------------------------------------------------------------

    async def create(
        self, vnet: Vnet, netns: str, protocols: frozenset[int], vrf_dir: str | None = None
    ) -> Mirror:
        """Create ``vnet``'s mirror in namespace ``netns``, its representors and route sync;
        bind the namespace into ``vrf_dir`` too if given."""
        if vnet.name in self.mirrors:
            raise MirrorError(f"vnet {vnet.name} already has a mirror")
        self.owned.append(netns)
        self._save()
        try:
            await asyncio.to_thread(create_netns, netns)
        except MirrorError:
            self.owned.remove(netns)
            self._save()
            raise
        mirror = Mirror(vnet, netns, RouteSync(lambda index: None, protocols))
        mirror.sync.ifname = lambda index: self._ifname(mirror, index)
        self.mirrors[vnet.name] = mirror
        try:
            if vrf_dir is not None:
                if vrfdir.is_mount_point(Path(vrf_dir) / netns):
                    raise MirrorError(f"{vrf_dir}/{netns} is a namespace already")
                mirror.published = str(Path(vrf_dir) / netns)
                self.published.append(mirror.published)
                self._save()
                try:
                    await asyncio.to_thread(vrfdir.publish, netns, vrf_dir)
                except vrfdir.VrfDirError as err:
                    raise MirrorError(str(err)) from err
            for ifp in list(vnet.link.interfaces.values()):
                await self._add_representor(mirror, ifp)
            punt.enable(vnet)
            mirror.netlink = await asyncio.to_thread(_netlink_in, netns)
            self.loop.add_reader(mirror.netlink.fileno(), self._on_netlink, mirror)
            self._start_dump(mirror)
        except BaseException:
            await self.destroy(vnet.name)
            raise
        mirror.listener = lambda event: self._on_event(mirror, event)
        vnet.listen(mirror.listener, link=True)
        log.info("vnet %s: mirror in netns %s, %d representors", vnet.name, netns,
                 len(mirror.representors))  # fmt: skip
        return mirror

    async def destroy(self, vnet_name: str) -> None:
        """Remove ``vnet_name``'s mirror: its processes, representors and namespace."""
        mirror = self.mirrors.pop(vnet_name, None)
        if mirror is None:
            return
        vnet = mirror.vnet
        if mirror.listener is not None:
            vnet.unlisten(mirror.listener, link=True)
        if "mirror" in vars(vnet):
            punt.disable(vnet)
        if mirror.netlink is not None:
            self.loop.remove_reader(mirror.netlink.fileno())
            mirror.netlink.close()
            mirror.netlink = None
        for name in list(mirror.representors):
            self._close_representor(mirror, name)
        self._remove(mirror, list(mirror.applied))
        self._end_burst(mirror)
        if mirror.published is not None:
            try:
                await asyncio.to_thread(vrfdir.unpublish, mirror.published)
            except vrfdir.VrfDirError as err:
                log.error("vnet %s: %s", vnet_name, err)
            if mirror.published in self.published:
                self.published.remove(mirror.published)
                self._save()
        try:
            await asyncio.to_thread(delete_netns, mirror.netns)
        except MirrorError as err:
            log.error("vnet %s: %s", vnet_name, err)
        if mirror.netns in self.owned:
            self.owned.remove(mirror.netns)
            self._save()
        log.info("vnet %s: mirror netns %s removed", vnet_name, mirror.netns)

    async def close(self) -> None:
        """Remove every mirror (shutdown)."""
        for name in list(self.mirrors):
            await self.destroy(name)
        for task in list(self._tasks):
            task.cancel()

    async def settle(self) -> None:
        """Wait for the representor and address changes under way."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- interfaces ---------------------------------------------------------------

    def interface_added(self, ifp: Ifnet) -> None:
        """Give ``ifp`` a representor if its vnet has a mirror (in the background)."""
        mirror = self.mirrors.get(ifp.vnet.name)
        if mirror is not None:
            self._spawn(self._add_representor(mirror, ifp))

    def interface_removed(self, ifp: Ifnet) -> None:
        """Remove ``ifp``'s representor, if any (the kernel removes a closed TAP at once)."""
        mirror = self.mirrors.get(ifp.vnet.name)
        if mirror is None or ifp.name not in mirror.representors:
            return
        rep = mirror.representors[ifp.name]
        if rep.ifnet is not ifp:
            return
        self._close_representor(mirror, ifp.name)
        for key in [k for k, w in mirror.applied.items() if w.interface == ifp.name]:
            del mirror.applied[key]  # the vnet took them out with the interface
        self._apply(mirror, list(mirror.sync.forget_interface(rep.index)))

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[Any] = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("mirror: %s", task.exception())

    async def _add_representor(self, mirror: Mirror, ifp: Ifnet) -> None:
        ns = mirror.netns
        temp = f"vrm{os.getpid() & 0xFFFF:04x}{next(_TEMP_NAMES) & 0xFFFF:04x}"
        try:
            tun = pytun.TunTapDevice(name=temp, flags=pytun.IFF_TAP | pytun.IFF_NO_PI)
        except (OSError, pytun.Error) as err:
            raise MirrorError(
                f"vnet {ifp.vnet.name}: {ifp.name}: cannot open a TAP: {err}"
            ) from err
        fd = tun.fileno()
        os.set_blocking(fd, False)
        rep = Representor(ifp, tun, fd)
        mirror.representors[ifp.name] = rep
        try:
            rep.index = await asyncio.to_thread(_configure, ns, temp, ifp)
        except MirrorError:
            self._close_representor(mirror, ifp.name)
            raise
        if mirror.representors.get(ifp.name) is not rep:
            return  # removed meanwhile
        mirror.sync.renumbered()
        self.loop.add_reader(fd, self._on_representor, mirror, rep)
        state_of(ifp.vnet).writers[ifp.name] = lambda frame: _write(fd, frame)

    def _close_representor(self, mirror: Mirror, name: str) -> None:
        rep = mirror.representors.pop(name)
        mirror.sync.renumbered()
        if "mirror" in vars(mirror.vnet):
            state_of(mirror.vnet).writers.pop(name, None)
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(rep.fd)
        rep.tun.close()  # type: ignore[attr-defined]

    @staticmethod
    def _ifname(mirror: Mirror, index: int) -> str | None:
        for name, rep in mirror.representors.items():
            if rep.index == index:
                return name
        return None

    def _on_representor(self, mirror: Mirror, rep: Representor) -> None:
        now = self._now()
        for _ in range(64):
            try:
                frame = os.read(rep.fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(frame) >= 14:
                punt.from_mirror(rep.ifnet, frame, now)

    # -- addresses and link state -------------------------------------------------

    def _on_event(self, mirror: Mirror, event: dict[str, object]) -> None:
        kind = event.get("type")
        name = event.get("interface")
        if not isinstance(name, str) or name not in mirror.representors:
            return
        if kind in ("RTM_NEWADDR", "RTM_DELADDR"):
            verb = "add" if kind == "RTM_NEWADDR" else "del"
            address = str(event.get("address"))
            extra = ["nodad"] if verb == "add" and ":" in address else []
            args = ("-n", mirror.netns, "addr", verb, address, "dev", name, *extra)
        elif kind == "RTM_IFINFO":
            args = ("-n", mirror.netns, "link", "set", name, "up" if event.get("up") else "down")
        else:
            return
        self._spawn(asyncio.to_thread(_ip, *args))

    # -- route sync ---------------------------------------------------------------

    def _start_dump(self, mirror: Mirror) -> None:
        mirror.in_dump = True
        mirror.dumping = [
            rtnetlink.dump_request(rtnetlink.RTM_GETNEXTHOP, 1),
            rtnetlink.dump_request(rtnetlink.RTM_GETROUTE, 2, rtnetlink.AF_INET),
            rtnetlink.dump_request(rtnetlink.RTM_GETROUTE, 3, rtnetlink.AF_INET6),
        ]
        self._next_dump(mirror)

    def _next_dump(self, mirror: Mirror) -> None:
        if mirror.dumping and mirror.netlink is not None:
            mirror.netlink.send(mirror.dumping.pop(0))

    def _on_netlink(self, mirror: Mirror) -> None:
        """Read and decode what the socket holds, for a turn at most; the vnet routes it
        changes are applied in turns of their own (:meth:`_apply_pending`)."""
        sock = mirror.netlink
        if sock is None:
            return
        started = time.monotonic()
        while True:  # a read at least, then until forwarding's turn
            data, state = self._recv(mirror, sock)
            if data:
                self._take(mirror, rtnetlink.parse(data, mirror.sync.seen))
            if state == "drained" and mirror.overrun and not mirror.in_dump:
                # A dump request now has room for its answer (one sent into a full
                # socket is lost, error and all).
                mirror.overrun = False
                self._resync(mirror)
            if state != "more" or time.monotonic() - started >= NETLINK_TURN:
                break
        mirror.backlog = state == "more"
        self._schedule(mirror)

    def _recv(self, mirror: Mirror, sock: socket.socket) -> tuple[bytes, str]:
        """Read one datagram (a change notification, or a dump's batch of up to 32 KiB);
        return it and ``more``, ``drained`` or ``failed``.  Reading a batch of
        notifications before decoding them measured worse: 78 s and a ping p50 of
        0.86 s for a million routes, against 47 s and 20 ms (the loop's other turns
        came later)."""
        try:
            return sock.recv(NETLINK_READ), "more"
        except (BlockingIOError, InterruptedError):
            return b"", "drained"
        except OSError as err:
            if err.errno != errno.ENOBUFS:
                log.error("vnet %s: netlink: %s", mirror.vnet.name, err)
                return b"", "failed"
        # Events lost: start again from a dump.
        mirror.sync.stats.overruns += 1
        if not mirror.overrun:
            log.warning("vnet %s: netlink overrun, resyncing", mirror.vnet.name)
        mirror.overrun = True
        # The socket's error stops libuv's poll of it (uvloop): watch it anew.
        self.loop.call_soon(self._rearm, mirror, sock)
        return b"", "more"

    def _take(self, mirror: Mirror, messages: list[rtnetlink.Message]) -> None:
        """Feed one read's messages to the sync; note what they change; follow the dump."""
        malformed = mirror.sync.stats.malformed
        mirror.pending |= mirror.sync.take(messages)
        if mirror.sync.stats.malformed != malformed:
            reasons = [m.reason for m in messages if isinstance(m, rtnetlink.Malformed)]
            log.debug("vnet %s: netlink: malformed, dropped: %s", mirror.vnet.name, reasons)
        for message in messages:
            if isinstance(message, rtnetlink.End) and message.seq in (1, 2, 3):
                self._next_dump(mirror)
                if message.seq == 3:  # a resync: what the dump lacks goes
                    mirror.in_dump = False
                    if not mirror.reconcile:
                        self.loop.call_soon(self._reconcile, mirror)
                    mirror.reconcile = list(mirror.applied)

    def _reconcile(self, mirror: Mirror) -> None:
        """Make a slice of ``mirror.reconcile`` pending a turn (a million at once held
        the loop)."""
        if self.mirrors.get(mirror.vnet.name) is not mirror:
            return  # gone meanwhile
        keys = mirror.reconcile
        mirror.pending.update(keys[-DISCARD_SLICE:])
        del keys[-DISCARD_SLICE:]
        if keys:
            self.loop.call_soon(self._reconcile, mirror)
        self._schedule(mirror)

    def _schedule(self, mirror: Mirror) -> None:
        """Have the pending changes applied from the next turn on (in a burst: see
        :meth:`_end_burst`)."""
        if not mirror.pending or mirror.applying:
            return
        mirror.applying = True
        if mirror.busy is None:
            mirror.busy = contextlib.ExitStack()
            mirror.busy.enter_context(gcpause.held())
            mirror.burst = 0
            mirror.burst_read = mirror.sync.stats.messages
            mirror.burst_started = self.loop.time()
            self.loop.call_later(BURST_QUIET, self._quiet, mirror, mirror.sync.stats.messages)
        self.loop.call_soon(self._apply_pending, mirror)

    def _apply_pending(self, mirror: Mirror) -> None:
        """Apply the pending changes in slices for a turn; go on at the next turn."""
        mirror.applying = False
        if self.mirrors.get(mirror.vnet.name) is not mirror:
            return  # gone meanwhile
        started = time.monotonic()
        pending = mirror.pending
        while pending:  # a slice at least, then as many as the turn holds
            self._apply(mirror, [pending.pop() for _ in range(min(APPLY_SLICE, len(pending)))])
            if mirror.backlog or time.monotonic() - started >= NETLINK_TURN:
                break
        self._schedule(mirror)

    def _quiet(self, mirror: Mirror, messages: int) -> None:
        """End the burst once the sync has had nothing to read or apply for a while."""
        if mirror.busy is None or self.mirrors.get(mirror.vnet.name) is not mirror:
            return
        now = mirror.sync.stats.messages
        if mirror.pending or now != messages:
            self.loop.call_later(BURST_QUIET, self._quiet, mirror, now)
            return
        if mirror.burst:
            log.info("vnet %s: mirror route sync: %d routes changed in %.1f s (%d synced)",
                     mirror.vnet.name, mirror.burst,
                     self.loop.time() - mirror.burst_started - BURST_QUIET,
                     len(mirror.applied))  # fmt: skip
        self._end_burst(mirror)

    @staticmethod
    def _end_burst(mirror: Mirror) -> None:
        """Turn the garbage collector back on.  After a big burst (many routes changed, or
        many messages read: a resync's dump changes nothing but builds the table anew),
        what it made is frozen first (``gc.freeze``): a synced table is long-lived, and
        the first collection walking a million routes made meanwhile would stop
        forwarding for seconds; its routes are still freed when withdrawn (no cycles),
        only cyclic garbage of the moment stays."""
        if mirror.busy is None:
            return
        read = mirror.sync.stats.messages - mirror.burst_read
        if mirror.burst >= FREEZE_AFTER or read >= FREEZE_AFTER:
            gc.freeze()
        mirror.busy.close()
        mirror.busy = None

    def _expire(self, mirror: Mirror) -> None:
        """Remove the stale routes whose grace is over that the mirror has not brought back."""
        if self.mirrors.get(mirror.vnet.name) is not mirror:
            return  # gone meanwhile
        now = self.loop.time()
        expired = [k for k, until in mirror.stale.items() if until <= now]
        for key in expired:
            del mirror.stale[key]
        self._remove(mirror, [k for k in expired if mirror.sync.wanted(k) is None])
        if mirror.stale:
            self.loop.call_later(min(mirror.stale.values()) - now, self._expire, mirror)

    def _rearm(self, mirror: Mirror, sock: socket.socket) -> None:
        if mirror.netlink is sock:
            self.loop.remove_reader(sock.fileno())
            self.loop.add_reader(sock.fileno(), self._on_netlink, mirror)

    def _resync(self, mirror: Mirror) -> None:
        sync = mirror.sync
        mirror.sync = RouteSync(sync.ifname, sync.protocols, stats=sync.stats)
        mirror.pending.clear()  # the dump brings back what is there; its end reconciles
        mirror.reconcile.clear()
        self._discard(sync.routes)
        self._start_dump(mirror)

    def _discard(self, table: dict[KernelKey, Any]) -> None:
        """Empty ``table`` a slice a turn: freeing a million routes at once would hold
        the loop for most of a second."""
        for _ in range(min(DISCARD_SLICE, len(table))):
            table.popitem()
        if table:
            self.loop.call_soon(self._discard, table)

    def _apply(self, mirror: Mirror, kkeys: list[KernelKey]) -> None:
        """Bring the vnet routes of ``kkeys`` in line with the mirror's routes."""
        sync, applied = mirror.sync, mirror.applied
        puts: list[tuple[KernelKey, Want]] = []
        gone: list[KernelKey] = []
        for kkey in kkeys:
            want = sync.wanted(kkey)
            have = applied.get(kkey)
            if want is have or want == have:
                continue
            if want is None:
                if not self._keep_stale(mirror, kkey):
                    gone.append(kkey)
                continue
            mirror.stale.pop(kkey, None)
            puts.append((kkey, want))
        if puts:
            routes = [(*sync.net_of(kkey), want) for kkey, want in puts]
            refused = self.ops.put_routes(mirror.vnet.name, routes)
            for kkey, want in puts:
                applied[kkey] = want
            for at, why in refused:
                kkey = puts[at][0]
                mirror.refused += 1
                log.debug("vnet %s: mirror route %s refused: %s", mirror.vnet.name,
                          sync.key_of(kkey)[0], why)  # fmt: skip
                del applied[kkey]
                gone.append(kkey)  # a refused change: the old route goes
        self._remove(mirror, gone)
        mirror.burst += len(puts) + len(gone)

    def _keep_stale(self, mirror: Mirror, kkey: KernelKey) -> bool:
        """Keep a withdrawn route for ``net.mirror.sync_grace`` (a restarting daemon may
        bring it back); return whether it is kept."""
        grace = state_of(mirror.vnet).sync_grace
        if not grace or kkey not in mirror.applied:
            return False
        if not mirror.stale:
            self.loop.call_later(grace, self._expire, mirror)
        mirror.stale.setdefault(kkey, self.loop.time() + grace)
        return True

    def _remove(self, mirror: Mirror, kkeys: list[KernelKey]) -> None:
        """Remove the vnet routes of ``kkeys`` (those still there)."""
        for kkey in kkeys:
            mirror.applied.pop(kkey, None)
        if kkeys:
            keys = [mirror.sync.key_of(kkey) for kkey in kkeys]
            self.ops.remove_routes(mirror.vnet.name, [(p, src.name) for p, src in keys])

    def describe(self, vnet_name: str) -> dict[str, object] | None:
        """Return ``vnet_name``'s mirror as plain data (None: it has none)."""
        mirror = self.mirrors.get(vnet_name)
        if mirror is None:
            return None
        state = state_of(mirror.vnet)
        return {
            "netns": mirror.netns,
            "vrf_dir": None if mirror.published is None else str(Path(mirror.published).parent),
            "representors": {n: r.index for n, r in mirror.representors.items()},
            "synced_routes": len(mirror.applied),
            "pending_routes": len(mirror.pending) + len(mirror.reconcile),
            "refused_routes": mirror.refused,
            "punt": {f: getattr(state.stats, f) for f in state.stats.__slots__},
            "sync": {f: getattr(mirror.sync.stats, f) for f in mirror.sync.stats.__slots__},
        }


def _write(fd: int, frame: bytes) -> bool:
    try:
        os.write(fd, frame)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return False
    return True


def _configure(ns: str, temp: str, ifp: Ifnet) -> int:
    """Move TAP ``temp`` into ``ns`` as ``ifp``'s representor; return its index there."""
    name = ifp.name
    _ip("link", "set", temp, "netns", ns)
    _ip("-n", ns, "link", "set", temp, "name", name, "address", ifp.mac.hex(":"),
        "mtu", str(ifp.mtu), "arp", "off")  # fmt: skip
    _sysctl(ns, [f"net.ipv6.conf.{name}.{s}" for s in IF_SYSCTLS])
    for address in ifp.all_addresses():
        extra = ["nodad"] if address.version == 6 else []
        _ip("-n", ns, "addr", "add", str(address), "dev", name, *extra)
    if ifp.up:
        _ip("-n", ns, "link", "set", name, "up")
    shown = json.loads(_ip("-n", ns, "-j", "link", "show", "dev", name))
    return int(shown[0]["ifindex"])
