"""TAP devices: Ethernet frames between a kernel interface and an Ifnet.

The device is opened with ``IFF_TAP | IFF_NO_PI | IFF_VNET_HDR``
(python-pytun) and made non-blocking.  Every frame carries a virtio-net
header; with offloads on (``TUNSETOFFLOAD``: checksum, TSO4, TSO6, ECN) the
host hands over partial checksums and TCP super-frames, which travel on as
:class:`~vrouter.link.offload.OffloadBuffer` and leave whole where the egress
accepts them (see :mod:`vrouter.link.offload`).  With offloads off, the
host sends ordinary frames, and whatever the daemon writes here is
completed and segmented first.  Writes go straight to the fd and are queued
only when the kernel says EAGAIN, bounded by count (``TX_QUEUE_LIMIT``) and
by time (``TX_QUEUE_TIME``: a frame that waited longer is dropped, counted
``queue_stale``, rather than sent late).

Reading is scheduled fairly between interfaces (deficit round robin by
time, as NAPI budgets a device per poll).  Each readable callback is one
turn of one interface: it reads and processes frames until the queue is
empty, its :class:`RxShare` is spent (``RX_QUANTUM`` seconds, plus what the
last turn left unspent or minus what it overran), or ``RX_BUDGET`` frames
are done, then returns to the loop.  The fd is level-triggered, so a
backlogged interface is served again in the next loop pass, after every
other readable fd had its turn: a flood into one vnet slows the others by
at most about one quantum per pass.  An overrun is paid back by at most
``RX_DEBT_QUANTA`` skipped turns: a turn is timed by the wall clock, and a
process preempted mid-turn (a busy machine) would otherwise owe the whole
preemption, skipped a quantum per loop pass, which during a metrics scrape
(a slice per pass) held an interface's frames for seconds.  What a flooded
interface cannot take stays in the kernel's TAP queue, and the kernel drops
the excess there (its ``tx_dropped`` of the TAP); the device reads that
count while it is backlogged and shows it as the interface's
``rx_overload`` drops.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

import pytun  # type: ignore[import-not-found]

from vrouter.link import ether, offload, sparse
from vrouter.link.ifnet import Ifnet
from vrouter.link.offload import NO_HEADER, OffloadBuffer

log = logging.getLogger("vrouter.tap")

RX_QUANTUM = 0.0001
"""Seconds of work one interface gets per turn (its share of a loop pass)."""
RX_BUDGET = 64
"""Frames one interface may process per turn, however cheap they are."""
RX_DEBT_QUANTA = 4
"""Most quanta an overrun may owe: turns skipped to pay it back, at most."""
OVERLOAD_REFRESH = 0.1
"""Seconds between reads of the kernel's drop count while an interface is backlogged."""
TX_QUEUE_LIMIT = 1024
"""Frames held while the kernel refuses writes; beyond it frames are dropped."""
TX_QUEUE_TIME = 0.02
"""Seconds a frame may wait for the kernel to take it; an older one is dropped."""
WRITE_JOINED = 2048
"""Frames up to this size are written joined to their header with one ``write``: the
copy costs less than ``writev``'s two buffers (532 against 378 ns for 70 bytes to
/dev/null); a super-frame goes out with ``writev``, uncopied."""
READ_SIZE = 65536 + 64 + offload.HEADER_LEN
"""A whole super-frame (64 KiB of IP plus Ethernet) and its virtio-net header."""
BULK_READ = sparse.BULK_LEN + offload.HEADER_LEN
"""A read longer than this is a bulk frame (:mod:`vrouter.link.sparse`)."""
BULK_LIMIT = 64
"""Bulk frames an interface holds read ahead; beyond it the rest stay in the kernel."""
BULK_AHEAD = 0.005
"""Seconds the oldest bulk frame held may have waited for the reader to read on past
it: a reader that falls further behind leaves the rest in the kernel's queue."""

_HEADER_LEN = offload.HEADER_LEN
_NEEDS_CSUM = offload.F_NEEDS_CSUM

SIOCSIFTXQLEN = 0x8943
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN


class RxShare:
    """One interface's share of the loop: deficit round robin by time.

    Every turn adds ``quantum`` to the deficit and may spend it; a turn that
    overran (one costly frame, say a super-frame cut into segments) pays it
    back from the next turns, which are skipped while the deficit stays
    negative.  A turn that emptied the queue forgets its balance: only a
    backlogged interface carries credit or debt, at most one quantum of
    credit and ``debt`` quanta of debt.
    """

    __slots__ = ("quantum", "frames", "deficit", "turns", "skipped", "debt", "ended")

    def __init__(
        self, quantum: float = RX_QUANTUM, frames: int = RX_BUDGET, debt: int = RX_DEBT_QUANTA
    ) -> None:
        self.quantum = quantum
        self.frames = frames
        """Frames a turn may process at most."""
        self.debt = debt * quantum
        """Seconds an overrun may owe at most."""
        self.deficit = 0.0
        """Seconds this interface may still spend (negative: owed)."""
        self.turns = 0
        """Turns taken."""
        self.skipped = 0
        """Turns skipped to pay back an overrun."""
        self.ended = 0.0
        """When the last turn ended or was skipped (the clock ``grant`` is given)."""

    def grant(self, now: float | None = None) -> float:
        """Start a turn at ``now``; return the seconds it may take (0: skip it, the debt
        is not paid).

        A skipped turn pays back a quantum: the other interfaces' turns of one loop
        pass.  A pass that took longer, doing other work (a route sync's turn, a
        program preempted on a busy machine), pays back the time it took: skipped a
        quantum at a time, a few sparse frames that overran (a TAP write done by the
        kernel inline) waited four such passes each, and a 100-a-second ping queued
        up for seconds."""
        deficit = self.deficit + self.quantum
        if now is not None:
            if deficit <= 0.0:
                deficit = min(self.deficit + max(now - self.ended, self.quantum), self.quantum)
            self.ended = now
        if deficit <= 0.0:
            self.deficit = deficit
            self.skipped += 1
            return 0.0
        self.deficit = deficit
        self.turns += 1
        return deficit

    def spent(self, seconds: float, backlogged: bool, end: float = 0.0) -> None:
        """End the turn (at ``end``): ``seconds`` were used; ``backlogged`` if frames may
        remain."""
        self.ended = end
        if backlogged:
            self.deficit = max(min(self.deficit - seconds, self.quantum), -self.debt)
        else:
            self.deficit = 0.0


def _open_counter(path: str) -> int | None:
    """Open a sysfs counter to re-read with ``pread`` (None if there is none)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def read_counter(fd: int | None) -> int:
    """Return the value of a sysfs counter opened with :func:`_open_counter` (0 if none)."""
    if fd is None:
        return 0
    try:
        return int(os.pread(fd, 32, 0))
    except (OSError, ValueError):
        return 0


def set_txqueuelen(name: str, length: int) -> None:
    """Set the transmit queue length of interface ``name`` (``ip link set NAME txqueuelen``).

    For a TAP it is the queue of frames the host sent that the daemon has not
    read yet (the kernel drops beyond it); it stays with the device when it
    moves to another namespace, unlike a qdisc.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, SIOCSIFTXQLEN, struct.pack("16si12x", name.encode(), length))


class TapDevice:
    """One TAP device feeding one interface."""

    def __init__(
        self,
        ifnet: Ifnet,
        loop: asyncio.AbstractEventLoop,
        receive: Callable[[Ifnet, bytes | bytearray, float], None],
        after_batch: Callable[[Ifnet], None],
        txqueuelen: int = 0,
        sparse_first: bool = True,
    ) -> None:
        self.ifnet = ifnet
        self.txqueuelen = txqueuelen
        """The host side's transmit queue length set at creation (0: the kernel's default)."""
        self.name = ifnet.name
        self._loop = loop
        self._receive = receive
        self._after_batch = after_batch
        self._dropped_fd: int | None = None
        self.fd: int = self._open(ifnet)
        os.set_blocking(self.fd, False)
        self._dropped_base = read_counter(self._dropped_fd)
        self._dropped_read = 0.0
        self._overloaded = False
        self.share = RxShare()
        self.clock: Callable[[], float] = time.perf_counter
        """Measures each turn (a fake clock in tests)."""
        self._txq: deque[tuple[float, list[bytes | bytearray]]] = deque()
        self.sparse_first = sparse_first
        """Small frames of other flows go before bulk frames read in the same turn."""
        self._bulk: sparse.BulkQueue[tuple[float, bytes]] = sparse.BulkQueue()
        """Bulk frames read ahead: (when read, the frame as read)."""
        self._kicked = False
        self._writing = False
        self._closed = False
        ifnet.transmit = self.write
        loop.add_reader(self.fd, self._on_readable)

    def _open(self, ifnet: Ifnet) -> int:
        """Create the TAP device with its offloads; return its fd."""
        self._tun = pytun.TunTapDevice(
            name=ifnet.name, flags=pytun.IFF_TAP | pytun.IFF_NO_PI | pytun.IFF_VNET_HDR
        )
        fd: int = self._tun.fileno()
        try:
            fcntl.ioctl(fd, TUNSETVNETHDRSZ, offload.HEADER_LEN.to_bytes(4, "little"))
            fcntl.ioctl(fd, TUNSETOFFLOAD, OFFLOADS if ifnet.offload else 0)
            if self.txqueuelen > 0:
                set_txqueuelen(ifnet.name, self.txqueuelen)
        except OSError:
            self._tun.close()
            raise
        # The kernel counts frames it dropped because the TAP queue was full
        # as the TAP's tx_dropped.  The file stays valid when the interface
        # moves to a host namespace, so it is opened now, before that.
        self._dropped_fd = _open_counter(f"/sys/class/net/{ifnet.name}/statistics/tx_dropped")
        return fd

    def _on_readable(self) -> None:
        """One turn of this interface: frames until empty, or its share is spent.

        The per-frame loop is the daemon's innermost: the virtio-net header is
        split off here (as :func:`vrouter.link.offload.received` does, without
        the call) and ``receive`` is guarded here, so a frame whose processing
        raises costs that frame only (:func:`vrouter.link.ether.failed`).
        """
        share = self.share
        clock = self.clock
        allowed = share.grant(clock())
        if allowed <= 0.0:
            if self._bulk:
                self._kick()
            return  # paying back an overrun; the fd stays readable
        fd = self.fd
        read = os.read
        receive = self._receive
        ifnet = self.ifnet
        now = self._loop.time()
        bulk = self._bulk if self.sparse_first else None
        held = None if bulk is None else bulk.items  # tested per frame: a deque's truth
        flow_key = sparse.flow_key
        start = clock()
        deadline = start + allowed
        backlogged = True
        small = 0
        for _ in range(share.frames):
            if held and (len(held) >= BULK_LIMIT or held[0][1][0] < start - BULK_AHEAD):
                break  # the rest waits in the kernel
            try:
                data = read(fd, READ_SIZE)
            except BlockingIOError:
                backlogged = False
                break
            except OSError as err:
                ifnet.counters.rx_errors += 1
                log.warning("vnet %s: %s: read failed: %s", ifnet.vnet.name, self.name, err)
                backlogged = False
                break
            if held is not None and (len(data) > BULK_READ or held):
                assert bulk is not None
                key = flow_key(data, _HEADER_LEN)
                if len(data) > BULK_READ or bulk.holds(key):
                    bulk.push(key, (start, data))
                    continue
            small += 1
            if data[0] & _NEEDS_CSUM or data[1]:  # offload work: keep the header bytes
                tagged = OffloadBuffer(data)  # offload.tag_raw without the call
                tagged.raw = data[:_HEADER_LEN]
                del tagged[:_HEADER_LEN]  # a bytearray drops its head in place
                frame: bytes | bytearray = tagged
            else:
                frame = data[_HEADER_LEN:]
            try:
                receive(ifnet, frame, now)
            except Exception:
                ether.failed(ifnet)
            if clock() >= deadline:
                break
        if bulk:
            # What the small frames set off (an epair's delivery, another device's
            # turn) goes first: bulk is processed in a turn that found none.
            if not small:
                self._drain(deadline, now)
            if bulk:
                backlogged = True
                self._kick()
        end = clock()
        share.spent(end - start, backlogged, end)
        if backlogged:
            if not self._overloaded or end - self._dropped_read >= OVERLOAD_REFRESH:
                self._overloaded = True
                self._count_overload(end)
        elif self._overloaded:  # the queue emptied: the kernel has stopped dropping
            self._overloaded = False
            self._count_overload(end)
        self._after_batch(ifnet)

    def _drain(self, deadline: float, now: float) -> None:
        """Process bulk frames held read ahead, at least one, more while the turn lasts."""
        bulk = self._bulk
        clock = self.clock
        receive = self._receive
        ifnet = self.ifnet
        received = offload.received
        while bulk:
            try:
                receive(ifnet, received(bulk.pop()[1]), now)
            except Exception:
                ether.failed(ifnet)
            if clock() >= deadline:
                break

    @property
    def backlogged(self) -> bool:
        """The last turn left frames in the kernel's queue (and none has emptied it since)."""
        return self._overloaded

    def poll(self) -> None:
        """Take a turn now: the driver's busy-polling found the device readable."""
        if not self._closed:
            self._on_readable()

    def _kick(self) -> None:
        """Give this interface another turn soon: bulk frames wait that the fd does not
        announce (the kernel's queue may be empty)."""
        if not self._kicked and not self._closed:
            self._kicked = True
            self._loop.call_soon(self._kicked_turn)

    def _kicked_turn(self) -> None:
        self._kicked = False
        if not self._closed:
            self._on_readable()

    def _count_overload(self, now: float) -> None:
        """Show what the kernel dropped from the TAP queue as ``rx_overload``."""
        self._dropped_read = now
        dropped = read_counter(self._dropped_fd) - self._dropped_base
        if dropped > 0:
            self.ifnet.counters.rx_drops["rx_overload"] = dropped

    def write(self, frame: bytes | bytearray) -> None:
        """Send ``frame`` to the kernel; queue it if the kernel is busy."""
        # offload.header_bytes without the call: the bytes as they came, or none
        header = frame.raw if frame.__class__ is OffloadBuffer else NO_HEADER
        if self._txq:
            self._enqueue([header, frame])
            return
        try:
            if len(frame) <= WRITE_JOINED:
                os.write(self.fd, header + frame)
            else:
                os.writev(self.fd, [header, frame])
        except BlockingIOError:
            self._enqueue([header, frame])
        except OSError as err:
            if err.errno == errno.EIO:  # kernel side down: the cable is unplugged
                self.ifnet.counters.tx_drops["carrier_down"] += 1
                return
            raise

    def _enqueue(self, parts: list[bytes | bytearray]) -> None:
        if len(self._txq) >= TX_QUEUE_LIMIT:
            self.ifnet.counters.tx_drops["queue_full"] += 1
            return
        self._txq.append((time.monotonic(), parts))
        if not self._writing:
            self._writing = True
            self._loop.add_writer(self.fd, self._on_writable)

    def _on_writable(self) -> None:
        txq = self._txq
        stale = time.monotonic() - TX_QUEUE_TIME
        while txq:
            queued, parts = txq[0]
            if queued < stale:
                self.ifnet.counters.tx_drops["queue_stale"] += 1
                txq.popleft()
                continue
            try:
                os.writev(self.fd, parts)
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
        self._bulk.clear()
        if self._dropped_fd is not None:
            os.close(self._dropped_fd)
            self._dropped_fd = None
        self._close_device()

    def _close_device(self) -> None:
        """Close the TAP device (the kernel interface goes)."""
        self._tun.close()
