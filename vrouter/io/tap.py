"""TAP devices: Ethernet frames between a kernel interface and an Ifnet.

The device is opened with ``IFF_TAP | IFF_NO_PI | IFF_VNET_HDR``
(python-pytun) and made non-blocking.  Every frame carries a virtio-net
header; with offloads on (``TUNSETOFFLOAD``: checksum, TSO4, TSO6, ECN) the
host hands over partial checksums and TCP super-frames, which travel on as
:class:`~vrouter.link.offload.OffloadBuffer` and leave whole where the egress
accepts them (see :mod:`vrouter.link.offload`).  With offloads off, the
host sends ordinary frames, and whatever the daemon writes here is
completed and segmented first.  A readable fd is drained in one callback until EAGAIN (at
most ``BATCH`` frames, to stay fair to other fds); writes go straight to the
fd and are queued, bounded, only when the kernel says EAGAIN.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
from collections import deque
from collections.abc import Callable

import pytun  # type: ignore[import-not-found]

from vrouter.link import offload
from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.tap")

BATCH = 256
"""Frames read per readable event before yielding to the loop."""
TX_QUEUE_LIMIT = 1024
"""Frames held while the kernel refuses writes; beyond it frames are dropped."""
READ_SIZE = 65536 + 64 + offload.HEADER_LEN
"""A whole super-frame (64 KiB of IP plus Ethernet) and its virtio-net header."""

TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN


class TapDevice:
    """One TAP device feeding one interface."""

    def __init__(
        self,
        ifnet: Ifnet,
        loop: asyncio.AbstractEventLoop,
        receive: Callable[[Ifnet, bytes | bytearray, float], None],
        after_batch: Callable[[Ifnet], None],
    ) -> None:
        self.ifnet = ifnet
        self.name = ifnet.name
        self._loop = loop
        self._receive = receive
        self._after_batch = after_batch
        self._tun = pytun.TunTapDevice(
            name=ifnet.name, flags=pytun.IFF_TAP | pytun.IFF_NO_PI | pytun.IFF_VNET_HDR
        )
        self.fd: int = self._tun.fileno()
        try:
            fcntl.ioctl(self.fd, TUNSETVNETHDRSZ, offload.HEADER_LEN.to_bytes(4, "little"))
            fcntl.ioctl(self.fd, TUNSETOFFLOAD, OFFLOADS if ifnet.offload else 0)
        except OSError:
            self._tun.close()
            raise
        os.set_blocking(self.fd, False)
        self._txq: deque[list[bytes | bytearray]] = deque()
        self._writing = False
        self._closed = False
        ifnet.transmit = self.write
        loop.add_reader(self.fd, self._on_readable)

    def _on_readable(self) -> None:
        fd = self.fd
        read = os.read
        receive = self._receive
        ifnet = self.ifnet
        now = self._loop.time()
        hlen = offload.HEADER_LEN
        for _ in range(BATCH):
            try:
                data = read(fd, READ_SIZE)
            except BlockingIOError:
                break
            except OSError as err:
                ifnet.counters.rx_errors += 1
                log.warning("vnet %s: %s: read failed: %s", ifnet.vnet.name, self.name, err)
                break
            if data[0] & offload.F_NEEDS_CSUM or data[1]:
                receive(
                    ifnet, offload.tag(memoryview(data)[hlen:], offload.VirtioHdr.parse(data)), now
                )
            else:
                receive(ifnet, data[hlen:], now)
        self._after_batch(ifnet)

    def write(self, frame: bytes | bytearray) -> None:
        """Send ``frame`` to the kernel; queue it if the kernel is busy."""
        vhdr = offload.vhdr_of(frame)
        parts = [offload.NO_HEADER if vhdr is None else vhdr.emit(), frame]
        if self._txq:
            self._enqueue(parts)
            return
        try:
            os.writev(self.fd, parts)
        except BlockingIOError:
            self._enqueue(parts)
        except OSError as err:
            if err.errno == errno.EIO:  # kernel side down: the cable is unplugged
                self.ifnet.counters.tx_drops["carrier_down"] += 1
                return
            raise

    def _enqueue(self, parts: list[bytes | bytearray]) -> None:
        if len(self._txq) >= TX_QUEUE_LIMIT:
            self.ifnet.counters.tx_drops["queue_full"] += 1
            return
        self._txq.append(parts)
        if not self._writing:
            self._writing = True
            self._loop.add_writer(self.fd, self._on_writable)

    def _on_writable(self) -> None:
        txq = self._txq
        while txq:
            try:
                os.writev(self.fd, txq[0])
            except BlockingIOError:
                return
            except OSError:
                self.ifnet.counters.tx_errors += 1
            txq.popleft()
        self._writing = False
        self._loop.remove_writer(self.fd)

    def close(self) -> None:
        """Stop reading and writing and close the device (the kernel interface goes)."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self.fd)
        if self._writing:
            self._loop.remove_writer(self.fd)
        self._txq.clear()
        self._tun.close()
