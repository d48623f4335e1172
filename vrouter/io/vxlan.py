"""The device of a VXLAN interface: a host UDP socket bound to the local VTEP address.

The socket lives in the daemon's own network namespace, bound to
(``local``, ``port``); with a ``group``, a second socket bound to the group
and port joins it on the local address's interface, and BUM frames leave
to the group.  Path MTU discovery is forced on (``IP_PMTUDISC_DO``), so
the kernel never fragments an outer packet: one too big fails with
EMSGSIZE and is counted as ``vxlan_too_big``, like those the interface
already refuses from the underlay's MTU (:mod:`vrouter.link.vxlan`).  The
underlay MTU is the route MTU towards the VTEPs (``IP_MTU`` of a connected
socket: no packet is sent for it).

Offloads: ``UDP_GRO`` makes the kernel hand over up to 64 datagrams of one
flow in one read, cut apart here at the size it reports.  Frames to send
are queued until the loop's current callback (a TAP's batch) is done, then
each VTEP's leave in one ``sendmsg`` per run of equal sizes with
``UDP_SEGMENT``, the kernel cutting them into datagrams.  Reads are
bounded per turn like a TAP's; a send the kernel refuses with EAGAIN is
dropped and counted (``queue_full``): UDP has no flow control to wait for.
With ``tunnel_gso`` TCP super-frames leave whole through a TAP of the
interface's own instead (:mod:`vrouter.io.vxtunnel`), where the kernel has
UDP-tunnel GSO, and the VTEPs' datagrams arriving on the device that holds
``local`` are redirected there (their super-frames whole); everything else
stays here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
import sys
from collections.abc import Sequence

from vrouter.io.tap import RX_BUDGET
from vrouter.io.vxtunnel import GSO_UDP_L4, TunnelTap, TunnelUnavailable, sweep_stale
from vrouter.link.offload import VirtioHdr
from vrouter.link.tso import Train
from vrouter.link.vxlan import Vxlan

log = logging.getLogger("vrouter.vxlan")

SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2
IP_MTU = 14
IPV6_MTU_DISCOVER = 23
IPV6_PMTUDISC_DO = 2
IPV6_MTU = 24
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
GSO_MAX_SEGMENTS = 64
"""The kernel's limit of segments in one UDP_SEGMENT send (UDP_MAX_SEGMENTS)."""
GSO_MAX_BYTES = 65000
"""Payload bytes of one UDP_SEGMENT send, under the 64 KiB of an IP packet."""
READ_SIZE = 65536
PENDING_MAX = 512
"""Frames queued for sending before they leave without waiting for the batch's end."""
SOCKET_BUFFER = 4 << 20
"""Bytes of kernel buffer each way: a burst of the overlay waits there, not dropped."""
_CMSG_SPACE = socket.CMSG_SPACE(4)
_GSO = struct.Struct("=H")


class VxlanDevice:
    """The UDP socket(s) of one VXLAN interface."""

    def __init__(self, vx: Vxlan, loop: asyncio.AbstractEventLoop) -> None:
        self.vx = vx
        self._loop = loop
        cfg = vx.cfg
        self.family = socket.AF_INET if cfg.local.version == 4 else socket.AF_INET6
        self.port = cfg.port
        self.gso = True
        """False once the kernel refused UDP_SEGMENT: frames then leave one by one."""
        self.sockets: list[socket.socket] = []
        self._pending: dict[str, list[bytes | bytearray]] = {}
        self._queued = 0
        self._flush_handle: asyncio.Handle | None = None
        self.tunnel: TunnelTap | None = None
        """The TAP that takes TCP super-frames whole (``tunnel_gso``), where it opened."""
        self.tunnel_refused = ""
        """Why ``tunnel_gso`` is not in use although configured ("" if it is)."""
        try:
            self.sock = self._open((str(cfg.local), cfg.port), reuse=cfg.group is not None)
            if cfg.group is not None:
                self._join(str(cfg.group))
        except OSError:
            self.close()
            raise
        mtu = self.underlay_mtu()
        if mtu is not None:
            vx.set_underlay_mtu(mtu)
        vx.send = self.send
        vx.send_train = self.send_train
        if cfg.tunnel_gso:
            self._open_tunnel()
        else:
            sweep_stale(str(cfg.local))

    def _open_tunnel(self) -> None:
        vx = self.vx
        cfg = vx.cfg
        try:
            if cfg.group is not None:
                raise TunnelUnavailable("a multicast group is not offloaded")
            self.tunnel = TunnelTap(str(cfg.local), cfg.port, vx.header, self._loop)
        except TunnelUnavailable as err:
            self.tunnel_refused = str(err)
            vx.tunnel_gso = f"not in use: {err}"
            log.info(
                "vnet %s: %s: tunnel_gso not in use, super-frames are segmented here: %s",
                vx.vnet.name,
                vx.ifnet.name,
                err,
            )
            return
        vx.send_super = self.send_super
        vx.tunnel_gso = self.tunnel.name
        log.info("vnet %s: %s: TCP super-frames leave whole through %s (UDP-tunnel GSO)",
                 vx.vnet.name, vx.ifnet.name, self.tunnel.name)  # fmt: skip
        self.tunnel.receive = self._tunnel_input
        self.tunnel.malformed = self._tunnel_malformed
        self.tunnel.drained = self._tunnel_drained
        self.tunnel.failed = self._tunnel_failed
        try:
            device = self.tunnel.redirect()
        except OSError as err:
            vx.tunnel_receive = f"socket only: {err.strerror or err}"
            log.info("vnet %s: %s: received on the socket only (no redirect to %s): %s",
                     vx.vnet.name, vx.ifnet.name, self.tunnel.name,
                     err.strerror or err)  # fmt: skip
            return
        vx.tunnel_receive = device
        log.info("vnet %s: %s: VXLAN datagrams arriving on %s are redirected to %s, "
                 "TCP super-frames received whole",
                 vx.vnet.name, vx.ifnet.name, device, self.tunnel.name)  # fmt: skip

    def _tunnel_malformed(self, reason: str) -> None:
        """Count a read of the tunnel TAP dropped as malformed (``reason``)."""
        ifp = self.vx.ifnet
        ifp.counters.rx_packets += 1
        ifp.drop("vxlan_tunnel_" + reason.replace(" ", "_").lower(), error=True)

    def _tunnel_input(self, data: bytes, start: int, source: str, vhdr: VirtioHdr | None) -> None:
        if vhdr is not None and vhdr.gso_type == GSO_UDP_L4:
            # The kernel's GRO joined datagrams of one size: taken as a UDP_GRO read is.
            self.vx.input_train(data[start:], vhdr.gso_size, source, self._loop.time())
            return
        self.vx.input_whole(data, start, source, vhdr, self._loop.time())

    def _tunnel_failed(self, err: OSError) -> None:
        """Count a read of the tunnel TAP that failed, as a TAP's own read is counted."""
        vx = self.vx
        vx.ifnet.counters.rx_errors += 1
        assert self.tunnel is not None
        log.warning("vnet %s: %s: read of %s failed: %s",
                    vx.vnet.name, vx.ifnet.name, self.tunnel.name, err)  # fmt: skip

    def _tunnel_drained(self) -> None:
        self.vx.release(self._loop.time())

    def send_super(self, address: str, frame: bytes | bytearray, vhdr: VirtioHdr) -> bool:
        """Hand a TCP super-frame whole to the tunnel TAP (frames queued before leave
        first); False if it could not take it."""
        if self._queued:
            self.flush()
        assert self.tunnel is not None
        try:
            return self.tunnel.send(address, frame, vhdr)
        except OSError as err:
            vx = self.vx
            vx.stats.tunnel_refused += 1
            vx.tunnel_error = str(err)
            if vx.stats.tunnel_refused == 1:
                log.warning("vnet %s: %s: %s refused a super-frame, sent by the socket "
                            "instead: %s", vx.vnet.name, vx.ifnet.name, self.tunnel.name,
                            err)  # fmt: skip
            return False

    def _open(self, address: tuple[str, int], reuse: bool) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
        self.sockets.append(sock)
        if self.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
        with contextlib.suppress(OSError):  # an old kernel: one datagram per read
            sock.setsockopt(SOL_UDP, UDP_GRO, 1)
        buffers = ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF))
        for force, plain in buffers:
            try:  # beyond net.core.[rw]mem_max with CAP_NET_ADMIN
                sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        self._loop.add_reader(sock.fileno(), self._on_readable, sock)
        return sock

    def _join(self, group: str) -> None:
        """Receive the group's datagrams on a socket of their own; send BUM frames there."""
        local = str(self.vx.cfg.local)
        sock = self._open((group, self.port), reuse=True)
        if self.family == socket.AF_INET:
            mreq = socket.inet_aton(group) + socket.inet_aton(local)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        else:
            mreq6 = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)

    def underlay_mtu(self) -> int | None:
        """Return the smallest route MTU towards the VTEPs (None: no route to any)."""
        level, option = (
            (socket.IPPROTO_IP, IP_MTU)
            if self.family == socket.AF_INET
            else (socket.IPPROTO_IPV6, IPV6_MTU)
        )
        mtus: list[int] = []
        for address in self.vx.flood_to:
            with socket.socket(self.family, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind((str(self.vx.cfg.local), 0))
                    probe.connect((address, self.port))
                    mtus.append(probe.getsockopt(level, option))
                except OSError as err:
                    log.warning(
                        "vnet %s: %s: no route to VTEP %s: %s",
                        self.vx.vnet.name,
                        self.vx.ifnet.name,
                        address,
                        err,
                    )
        return min(mtus) if mtus else None

    def _on_readable(self, sock: socket.socket) -> None:
        """Read datagrams until none is left or the turn's budget is spent; then pass on
        the super-frame the reads built last."""
        now = self._loop.time()
        try:
            self._read(sock, now)
        finally:
            self.vx.release(now)

    def _read(self, sock: socket.socket, now: float) -> None:
        vx = self.vx
        recvmsg = sock.recvmsg
        for _ in range(RX_BUDGET):
            try:
                data, ancillary, _flags, source = recvmsg(READ_SIZE, _CMSG_SPACE)
            except BlockingIOError:
                return
            except OSError as err:
                vx.ifnet.counters.rx_errors += 1
                log.warning("vnet %s: %s: read failed: %s", vx.vnet.name, vx.ifnet.name, err)
                return
            size = 0
            for level, kind, value in ancillary:
                if level == SOL_UDP and kind == UDP_GRO:
                    size = int.from_bytes(value[:4], sys.byteorder)
            address = source[0]
            if size and len(data) > size:
                vx.input_train(data, size, address, now)
            else:
                vx.input(data, address, now)

    def send(self, address: str, frames: list[bytes | bytearray]) -> None:
        """Queue frames for VTEP ``address``; they leave when the current batch is done.

        What one turn of the loop produces (a TAP's batch, a super-frame's
        segments) goes out together, each VTEP's frames in as few
        ``UDP_SEGMENT`` sends as their sizes allow.
        """
        queue = self._pending.get(address)
        if queue is None:
            queue = self._pending[address] = []
        queue.extend(frames)
        self._queued += len(frames)
        if self._queued >= PENDING_MAX:
            self.flush()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self.flush)

    def send_train(self, address: str, train: Train) -> None:
        """Send a super-frame's datagrams to VTEP ``address`` now, in as few
        ``UDP_SEGMENT`` sends as the kernel's limits allow (frames queued before
        leave first: one flow's segments stay in order)."""
        if self._queued:
            self.flush()
        destination = (address, self.port)
        data, size = train.data, train.size
        per_send = max(1, min(GSO_MAX_SEGMENTS, GSO_MAX_BYTES // (size + 8)))
        control = [(SOL_UDP, UDP_SEGMENT, _GSO.pack(size))]
        i = 0
        while i < train.datagrams:
            if not self.gso:
                self._sendmsg((data[i * size : (i + 1) * size],), (), destination)
                i += 1
                continue
            j = min(train.datagrams, i + per_send)
            if self._sendmsg((data[i * size : j * size],), control, destination) or self.gso:
                i = j  # sent, or dropped and counted; else refused: again one by one

    def flush(self) -> None:
        """Send every queued frame now."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending = self._pending
        self._pending = {}
        self._queued = 0
        for address, frames in pending.items():
            self._send_now(address, frames)

    def _send_now(self, address: str, frames: list[bytes | bytearray]) -> None:
        """Send ``frames`` to ``address``: runs of one size (and one shorter frame closing
        the run) in one ``UDP_SEGMENT`` send each, the rest one by one."""
        header = self.vx.header
        stats = self.vx.stats
        destination = (address, self.port)
        count = len(frames)
        i = 0
        while i < count:
            size = len(frames[i])
            limit = min(count, i + max(1, min(GSO_MAX_SEGMENTS, GSO_MAX_BYTES // (size + 8))))
            j = i + 1
            while j < limit and len(frames[j]) == size:
                j += 1
            if j < limit and len(frames[j]) < size:
                j += 1
            if j - i == 1 or not self.gso:
                for frame in frames[i:j]:
                    self._sendmsg([header, frame], (), destination)
                stats.small_sends += j - i
            else:
                parts: list[bytes | bytearray] = []
                for frame in frames[i:j]:
                    parts.append(header)
                    parts.append(frame)
                control = [(SOL_UDP, UDP_SEGMENT, _GSO.pack(size + len(header)))]
                if not self._sendmsg(parts, control, destination) and not self.gso:
                    continue  # UDP_SEGMENT refused just now: the same run again, one by one
                stats.small_sends += 1
            stats.small_datagrams += j - i
            i = j

    def _sendmsg(
        self,
        parts: Sequence[bytes | bytearray | memoryview],
        control: list[tuple[int, int, bytes]] | tuple[()],
        destination: tuple[str, int],
    ) -> bool:
        counters = self.vx.ifnet.counters
        try:
            self.sock.sendmsg(parts, control, 0, destination)
        except BlockingIOError:
            counters.tx_drops["queue_full"] += 1
            return False
        except OSError as err:
            if err.errno == errno.EMSGSIZE:
                counters.tx_drops["vxlan_too_big"] += 1
            elif control and err.errno in (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT):
                self.gso = False  # no segmentation offload: send the datagrams one by one
                log.info("vxlan: UDP_SEGMENT refused (%s), sending datagrams one by one", err)
            else:
                counters.tx_errors += 1
            return False
        return True

    def describe(self) -> str:
        """Return what carries the outer packets, for views."""
        if self.tunnel is not None:
            return f"host, TCP super-frames whole through {self.tunnel.name} (tunnel_gso)"
        if self.tunnel_refused:
            return f"host (tunnel_gso not in use: {self.tunnel_refused})"
        return "host"

    def close(self) -> None:
        """Stop reading, drop what is queued and close the sockets."""
        self.vx.send = closed
        self.vx.send_train = closed
        self.vx.send_super = None
        self.vx.tunnel_gso = ""
        self.vx.tunnel_error = ""
        self.vx.tunnel_receive = ""
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._pending.clear()
        for sock in self.sockets:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets.clear()


def closed(address: str, frames: object) -> None:
    """The send of a VXLAN interface whose device is closed."""
    raise OSError("vxlan device closed")
