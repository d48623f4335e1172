"""TAP devices: Ethernet frames between a kernel interface and an Ifnet.

The device is opened with ``IFF_TAP | IFF_NO_PI`` (python-pytun) and made
non-blocking.  A readable fd is drained in one callback until EAGAIN (at
most ``BATCH`` frames, to stay fair to other fds); writes go straight to the
fd and are queued, bounded, only when the kernel says EAGAIN.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections import deque
from collections.abc import Callable

import pytun  # type: ignore[import-not-found]

from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.tap")

BATCH = 256
"""Frames read per readable event before yielding to the loop."""
TX_QUEUE_LIMIT = 1024
"""Frames held while the kernel refuses writes; beyond it frames are dropped."""
READ_SIZE = 65536


class TapDevice:
    """One TAP device feeding one interface."""

    def __init__(
        self,
        ifnet: Ifnet,
        loop: asyncio.AbstractEventLoop,
        receive: Callable[[Ifnet, bytes, float], None],
        after_batch: Callable[[Ifnet], None],
    ) -> None:
        self.ifnet = ifnet
        self.name = ifnet.name
        self._loop = loop
        self._receive = receive
        self._after_batch = after_batch
        self._tun = pytun.TunTapDevice(name=ifnet.name, flags=pytun.IFF_TAP | pytun.IFF_NO_PI)
        self.fd: int = self._tun.fileno()
        os.set_blocking(self.fd, False)
        self._txq: deque[bytes | bytearray] = deque()
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
        for _ in range(BATCH):
            try:
                frame = read(fd, READ_SIZE)
            except BlockingIOError:
                break
            except OSError as err:
                ifnet.counters.rx_errors += 1
                log.warning("vnet %s: %s: read failed: %s", ifnet.vnet.name, self.name, err)
                break
            receive(ifnet, frame, now)
        self._after_batch(ifnet)

    def write(self, frame: bytes | bytearray) -> None:
        """Send ``frame`` to the kernel; queue it if the kernel is busy."""
        if self._txq:
            self._enqueue(frame)
            return
        try:
            os.write(self.fd, frame)
        except BlockingIOError:
            self._enqueue(frame)
        except OSError as err:
            if err.errno == errno.EIO:  # kernel side down: the cable is unplugged
                self.ifnet.counters.tx_drops["carrier_down"] += 1
                return
            raise

    def _enqueue(self, frame: bytes | bytearray) -> None:
        if len(self._txq) >= TX_QUEUE_LIMIT:
            self.ifnet.counters.tx_drops["queue_full"] += 1
            return
        self._txq.append(frame)
        if not self._writing:
            self._writing = True
            self._loop.add_writer(self.fd, self._on_writable)

    def _on_writable(self) -> None:
        txq = self._txq
        while txq:
            try:
                os.write(self.fd, txq[0])
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
