"""A userspace stand-in for ``tc netem``: random loss and a fixed delay on a host's link.

This kernel has no ``sch_netem``, so :class:`Relay` puts a program between a
host namespace's kernel stack and vrouterd's TAP.  The daemon's TAP is moved
out of the host into a namespace of the relay's own, with no addresses, ARP
off and IPv6 disabled, so that kernel never answers on it.  The host gets a
plain TAP of the relay's (no virtio-net header: its kernel segments and
checksums every frame) with the host's MAC, addresses and routes.  A thread
moves frames between the two: what the host sends is read from that TAP and
sent on the daemon's TAP with an ``AF_PACKET`` socket (a frame sent on a TAP
netdev goes to the fd's reader, vrouterd); what vrouterd writes is received
by the kernel on its TAP, read there with the same socket (incoming only)
and written to the host's TAP.  :meth:`Relay.close` puts the daemon's TAP
back into the host with its addresses and routes.

Unlike ``netem`` on the host side, which impairs only what the host sends,
both directions lose and delay: the round trip gains twice the delay.

:class:`Netem` is the sans-IO core of one direction: it takes frames and the
time, and gives back the frames that are due.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import select
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytun  # type: ignore[import-not-found]

from vrouter.link import offload

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
SO_RCVBUFFORCE = 33
CLONE_NEWNET = 0x40000000
BATCH = 64
"""Frames read from one fd before the relay looks at the other and the clock."""


@dataclass
class Netem:
    """One direction: lose ``loss`` of the frames at random, hold the rest ``delay`` seconds.

    At most ``limit`` frames wait (netem's default); beyond that a frame is
    dropped and counted as an overflow.  The delay is fixed, so the queue is a
    FIFO and frames leave in the order they came.
    """

    loss: float = 0.02
    delay: float = 0.010
    limit: int = 1000
    rng: random.Random = field(default_factory=random.Random)
    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    offered: int = 0
    """Frames handed to this direction."""
    dropped: int = 0
    """Frames lost on purpose."""
    overflowed: int = 0
    """Frames dropped because ``limit`` frames were already waiting."""
    delivered: int = 0
    """Frames that left after their delay."""

    def offer(self, frame: bytes, now: float) -> None:
        """Take ``frame`` at time ``now``: lose it or queue it until ``now + delay``."""
        self.offered += 1
        if self.rng.random() < self.loss:
            self.dropped += 1
        elif len(self.queue) >= self.limit:
            self.overflowed += 1
        else:
            self.queue.append((now + self.delay, frame))

    def due(self, now: float) -> list[bytes]:
        """Return the frames whose delay has passed by ``now``, oldest first."""
        out = []
        queue = self.queue
        while queue and queue[0][0] <= now:
            out.append(queue.popleft()[1])
        self.delivered += len(out)
        return out

    def next_due(self) -> float | None:
        """Return when the oldest waiting frame is due, None if none waits."""
        return self.queue[0][0] if self.queue else None


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _sysctl(ns: str, *settings: str) -> None:
    cmd = ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *settings]
    subprocess.run(cmd, capture_output=True, timeout=30, check=True)


@contextlib.contextmanager
def _in_netns(ns: str) -> Iterator[None]:
    """Run the block with this thread in namespace ``ns`` (sockets made there stay there)."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            yield
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


class Relay:
    """Put loss and delay on the link between host namespace ``host_ns`` and TAP ``tap``.

    The host's new TAP gets ``addresses`` and a default route via each of
    ``gateways`` (what the daemon gave the old one); :meth:`close` gives them
    back to the old one.  ``name`` (unique per run, and carrying the run's
    prefix so a harness cleanup finds it) names both the relay's namespace
    and the host's new TAP.  The thread stops on :meth:`close` or after
    ``max_seconds``.
    """

    def __init__(
        self,
        name: str,
        host_ns: str,
        tap: str,
        addresses: list[str],
        gateways: list[str],
        *,
        loss: float = 0.02,
        delay: float = 0.010,
        seed: int = 0,
        max_seconds: float = 900,
    ) -> None:
        self.name = name
        self._host = (host_ns, tap, addresses, gateways)
        self.toward_vnet = Netem(loss, delay, rng=random.Random(seed))
        self.toward_host = Netem(loss, delay, rng=random.Random(seed + 1))
        self._deadline = time.monotonic() + max_seconds
        self._stop_r, self._stop_w = os.pipe()
        self._tun: pytun.TunTapDevice | None = None
        self._packet: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._moved = False
        self.error: BaseException | None = None
        try:
            self._wire()
        except BaseException:
            self.close()
            raise

    def _wire(self) -> None:
        host_ns, tap, _, _ = self._host
        (link,) = json.loads(_ip("-n", host_ns, "-j", "link", "show", tap))
        _ip("netns", "add", self.name)
        no_ipv6 = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        _sysctl(self.name, *no_ipv6)
        _ip("-n", host_ns, "link", "set", tap, "netns", self.name)
        self._moved = True
        _ip("-n", self.name, "link", "set", tap, "arp", "off", "up")
        with _in_netns(self.name):  # protocol 0: nothing is received before the options are set
            self._packet = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self._packet.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            self._packet.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            self._packet.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
            self._packet.bind((tap, ETH_P_ALL))
        # The host's TAP takes the old one's MAC, so the vnet's neighbour entries stay right.
        self._tun = pytun.TunTapDevice(name=self.name, flags=pytun.IFF_TAP | pytun.IFF_NO_PI)
        _ip("link", "set", self.name, "netns", host_ns)
        mac, mtu = link["address"], str(link["mtu"])
        _ip("-n", host_ns, "link", "set", self.name, "address", mac, "mtu", mtu, "qlen", "5000")
        self._address(self.name)
        for fd in (self._tun.fileno(), self._packet.fileno()):
            os.set_blocking(fd, False)
        self._thread = threading.Thread(target=self._guarded, name=self.name, daemon=True)
        self._thread.start()

    def _address(self, ifname: str) -> None:
        """Give ``ifname`` in the host the addresses and default routes, and bring it up."""
        host_ns, _, addresses, gateways = self._host
        _sysctl(host_ns, f"net.ipv6.conf.{ifname}.accept_ra=0")
        for address in addresses:
            _ip("-n", host_ns, "addr", "add", address, "dev", ifname, "nodad")
        _ip("-n", host_ns, "link", "set", ifname, "up")
        for gateway in gateways:
            family = "-6" if ":" in gateway else "-4"
            _ip("-n", host_ns, family, "route", "add", "default", "via", gateway, "dev", ifname)

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as err:  # reported by close()
            self.error = err

    def _run(self) -> None:
        assert self._tun is not None and self._packet is not None
        tun, packet = self._tun.fileno(), self._packet
        poller = select.poll()
        for fd in (tun, packet.fileno(), self._stop_r):
            poller.register(fd, select.POLLIN)
        hlen = offload.HEADER_LEN
        while (now := time.monotonic()) < self._deadline:
            dues = [self.toward_vnet.next_due(), self.toward_host.next_due()]
            wait = min([0.1, *(t - now for t in dues if t is not None)])
            ready = {fd for fd, _ in poller.poll(max(wait, 0) * 1000)}
            if self._stop_r in ready:
                return
            now = time.monotonic()
            for _ in range(BATCH if tun in ready else 0):
                try:
                    self.toward_vnet.offer(os.read(tun, 65536), now)
                except BlockingIOError:
                    break
            for _ in range(BATCH if packet.fileno() in ready else 0):
                try:
                    data = packet.recv(65536 + 64 + hlen)
                except BlockingIOError:
                    break
                # A super-frame or a partial checksum (forwarded traffic) is cut into the
                # segments the wire would carry, so each is lost or kept on its own.
                vhdr = offload.VirtioHdr.parse(data)
                for frame in offload.resolve(data[hlen:], vhdr) if any(vhdr) else [data[hlen:]]:
                    self.toward_host.offer(bytes(frame), now)
            for frame in self.toward_vnet.due(now):
                packet.sendmsg([offload.NO_HEADER, frame])
            for frame in self.toward_host.due(now):
                with contextlib.suppress(BlockingIOError):  # the host's backlog is full: lost
                    os.write(tun, frame)

    def counts(self) -> dict[str, dict[str, int]]:
        """Return what each direction did so far."""
        return {
            side: {k: getattr(d, k) for k in ("offered", "dropped", "overflowed", "delivered")}
            for side, d in (("toward_vnet", self.toward_vnet), ("toward_host", self.toward_host))
        }

    def close(self) -> None:
        """Stop the thread, remove the host's TAP, and give the daemon's TAP back to the
        host with its addresses and routes; remove the relay's namespace."""
        os.write(self._stop_w, b"x")
        if self._thread is not None:
            self._thread.join(10)
        for closable in (self._packet, self._tun):
            if closable is not None:
                closable.close()
        os.close(self._stop_r)
        os.close(self._stop_w)
        try:
            if self._moved:
                host_ns, tap, _, _ = self._host
                _ip("-n", self.name, "link", "set", tap, "arp", "on")
                _ip("-n", self.name, "link", "set", tap, "netns", host_ns)
                self._address(tap)
        finally:
            with contextlib.suppress(AssertionError):
                _ip("netns", "del", self.name)
        if self.error is not None:
            raise AssertionError(f"relay {self.name} failed") from self.error
