"""The driver: connects vnets, devices and deadlines to the asyncio loop.

It keeps every vnet's earliest deadline in one heap and arms one
``loop.call_at`` for the earliest of them (a loop timer per vnet would be
one more object made and freed for every deadline of every vnet, and
uvloop keeps the last few hundred freed ones for reuse wherever they lie
in the heap: after thousands of vnets are destroyed they hold the
allocator's arenas that those vnets filled), pumps epair queues in the
next loop pass (so a burst is handled as a batch, at most ``RX_BUDGET``
frames a turn, like a TAP's; the epairs woken in one pass wait in one list
run by one ``call_soon``, not a loop handle each, for the same reason as
the deadlines' one timer; a small frame that finds its epair idle and
quiet is delivered inline, :mod:`vrouter.link.epair`), and owns the TAP devices,
which share the loop by turns (:mod:`vrouter.io.tap`), and the UDP sockets
of VXLAN interfaces (:mod:`vrouter.io.vxlan`).  Protocol code never
sees the loop.

Deadlines and epair pumps together run at most ``PASS_QUANTUM`` back to
back; the deadlines left wait in their heap, earliest first, the pumps in
one queue, each run a quantum per loop pass after the devices have been
read (a pass costs what it runs, not what waits).
Thousands of vnets can fall due at once (their addresses' DAD ends
together after start-up, each vnet's reports cross its epair), and run in
one go they would hold every vnet's traffic for hundreds of milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from vrouter.core.vnet import Vnet, VnetTree
from vrouter.io.tap import RX_BUDGET, TapDevice
from vrouter.io.underlay import UnderlayError, VnetUnderlay
from vrouter.io.vxlan import VxlanDevice
from vrouter.io.workerwire import WireDevice
from vrouter.link import ether
from vrouter.link.epair import Epair
from vrouter.link.ifnet import Ifnet
from vrouter.link.vxlan import Vxlan

log = logging.getLogger("vrouter.driver")


EPAIR_QUANTUM = 0.0005
"""Seconds one epair pump may take (a batch of super-frames is cut short, 64 small
frames fit): the other interfaces' turns come at most about this late."""

PASS_QUANTUM = 0.002
"""Seconds of deadlines and epair pumps run back to back before the devices are read."""

BUSY_POLL_BACKOFF = 64
"""Most TAP batches let pass without busy-polling after polls that found nothing: the
wait doubles with every miss up to this, and a hit resets it."""


class Later:
    """An epair pump put off to a later loop pass; ``cancel`` drops it."""

    __slots__ = ("callback", "arg", "cancelled")

    def __init__(self, callback: Callable[[Any], None], arg: object) -> None:
        self.callback = callback
        self.arg = arg
        self.cancelled = False

    def cancel(self) -> None:
        """Drop it: it will not run."""
        self.cancelled = True


class Driver:
    """Runs the data path of every vnet on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._wake = self._arm
        """What every vnet's timers call with an earlier deadline (one bound method for all)."""
        self.taps: dict[str, TapDevice] = {}
        self.tap_txqueuelen = 0
        """Transmit queue length given to each TAP created (0: the kernel's default)."""
        self.sparse_first = True
        """Whether TAPs and epairs created let small frames go before bulk ones
        (:mod:`vrouter.link.sparse`)."""
        self.wires: list[WireDevice] = []
        """Epair ends whose peer runs in another worker."""
        self.epairs: list[Epair] = []
        self.vxlans: dict[Ifnet, VxlanDevice | VnetUnderlay] = {}
        """The UDP sockets of VXLAN interfaces."""
        self._deadlines: list[tuple[float, int, str]] = []
        """A heap of (deadline, entry number, vnet name); an entry whose number is not the
        one :attr:`_armed` holds for the vnet is stale and skipped."""
        self._armed: dict[str, tuple[float, int, Vnet]] = {}
        """Each vnet's earliest deadline, the number of its entry in the heap, the vnet."""
        self._entries = 0
        self._stale = 0
        """Stale entries in the heap: once they are half of it, it is rebuilt without them."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._expiring = False
        self._spent = 0.0
        """Seconds of deadlines and pumps run in this loop pass (see ``PASS_QUANTUM``)."""
        self._later: deque[Later] = deque()
        """Deadlines and pumps put off to later passes, oldest first."""
        self._draining = False
        self._pumping: set[int] = set()
        """The ``id`` of every epair whose pump is due (woken, or put off)."""
        self._woken: list[Epair] = []
        """Epairs woken since the last :meth:`_pump_woken`, in order (one loop callback runs
        them all: uvloop keeps the last few hundred freed handles, see above)."""
        self.busy_poll = 0.0
        """Seconds the loop keeps polling the TAPs after a batch before it sleeps (0: never)."""
        self._poller: select.epoll | None = None
        self._polled: dict[int, TapDevice] = {}
        self._answers: select.epoll | None = None
        """Every TAP with ``sparse_first``, polled when an epair pump paused after small
        frames (:meth:`_read_answers`)."""
        self._answering: dict[int, TapDevice] = {}
        self._spin_due = False
        self._skip = 0
        """Batches still to let pass before busy-polling again."""
        self._backoff = 0
        self.spins = 0
        """Busy-polls run, and how many of them found a TAP readable (``spin_hits``)."""
        self.spin_hits = 0

    def now(self) -> float:
        """Return the loop's monotonic time, the clock every vnet runs on."""
        return self.loop.time()

    # deadlines

    def attach_vnet(self, vnet: Vnet) -> None:
        """Start serving ``vnet``'s deadlines."""
        vnet.timers.wakeup = self._wake
        deadline = vnet.timers.next_deadline()
        if deadline is not None:
            self._arm(vnet, deadline)

    def detach_vnet(self, vnet: Vnet) -> None:
        """Stop serving ``vnet``'s deadlines."""
        vnet.timers.wakeup = None
        if self._armed.pop(vnet.name, None) is not None:
            self._went_stale()

    def _arm(self, vnet: Vnet, deadline: float) -> None:
        name = vnet.name
        armed = self._armed.get(name)
        if armed is not None:
            if armed[0] <= deadline:
                return  # (one overdue and waiting for its turn stays, too)
            self._went_stale()
        self._entries = entry = self._entries + 1
        self._armed[name] = (deadline, entry, vnet)
        heapq.heappush(self._deadlines, (deadline, entry, name))
        if deadline < self._timer_at and not self._expiring:
            self._set_timer(deadline)

    def _set_timer(self, deadline: float) -> None:
        """Arm the loop's one timer for ``deadline`` (the heap's earliest, or inf: none)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline < math.inf:
            self._timer = self.loop.call_at(deadline, self._expire)

    def _went_stale(self) -> None:
        """One more heap entry is stale; rebuild the heap once half of it is."""
        self._stale += 1
        heap = self._deadlines
        if self._stale * 2 > len(heap):
            armed = self._armed
            heap[:] = [e for e in heap if (a := armed.get(e[2])) is not None and a[1] == e[1]]
            heapq.heapify(heap)
            self._stale = 0

    def _expire(self) -> None:
        """Run the deadlines that fell due for a quantum, then arm the next.

        What the quantum leaves waits in the heap, earliest first: the timer is armed
        again for it, so it runs in the next loop pass, after the devices are read.
        """
        self._timer = None
        self._timer_at = math.inf
        heap = self._deadlines
        armed = self._armed
        now = self.loop.time()
        self._expiring = True
        try:
            while heap and heap[0][0] <= now and self._spent < PASS_QUANTUM:
                _, entry, name = heapq.heappop(heap)
                current = armed.get(name)
                if current is None or current[1] != entry:
                    self._stale -= 1
                    continue
                self._fire(current[2])
        finally:
            self._expiring = False
            self._set_timer(heap[0][0] if heap else math.inf)

    def _fire(self, vnet: Vnet) -> None:
        del self._armed[vnet.name]
        started = self._begin()
        try:
            vnet.timers.run(self.loop.time())
        except Exception:
            log.exception("vnet %s: timer failed", vnet.name)
        self._spent += max(time.perf_counter() - started, 1e-9)
        deadline = vnet.timers.next_deadline()
        if deadline is not None:
            self._arm(vnet, deadline)

    def _begin(self) -> float:
        """Start timing a deadline or pump; the first of a pass schedules the pass's end."""
        if not self._spent:
            # Queued behind this pass's callbacks: whatever is put off runs after it.
            self.loop.call_soon(self._new_pass)
        return time.perf_counter()

    def _new_pass(self) -> None:
        self._spent = 0.0

    def _put_off(self, callback: Callable[[Any], None], arg: object) -> Later:
        later = Later(callback, arg)
        self._later.append(later)
        if not self._draining:
            self._draining = True
            self.loop.call_soon(self._drain)
        return later

    def _drain(self) -> None:
        """Run what waits, oldest first, for a quantum; once a loop pass while any waits."""
        self._spent = 0.0
        waiting = self._later
        while waiting and self._spent < PASS_QUANTUM:
            later = waiting.popleft()
            if not later.cancelled:
                later.callback(later.arg)
        if waiting:
            self.loop.call_soon(self._drain)
        else:
            self._draining = False

    # devices

    def add_tap(self, ifnet: Ifnet) -> TapDevice:
        """Create the TAP device for ``ifnet`` and start reading it."""
        tap = TapDevice(
            ifnet, self.loop, ether.input, self._after_batch, self.tap_txqueuelen, self.sparse_first
        )
        self.taps[ifnet.name] = tap
        if self.sparse_first:
            if self._answers is None:
                self._answers = select.epoll()
            self._answers.register(tap.fd, select.EPOLLIN)
            self._answering[tap.fd] = tap
        if self.busy_poll > 0.0:
            if self._poller is None:
                self._poller = select.epoll()
            self._poller.register(tap.fd, select.EPOLLIN)
            self._polled[tap.fd] = tap
        return tap

    def remove_tap(self, name: str) -> None:
        """Close the TAP device ``name`` (the kernel interface disappears)."""
        tap = self.taps.pop(name, None)
        if tap is not None:
            if self._polled.pop(tap.fd, None) is not None and self._poller is not None:
                self._poller.unregister(tap.fd)
            if self._answering.pop(tap.fd, None) is not None and self._answers is not None:
                self._answers.unregister(tap.fd)
            tap.close()

    def add_vxlan(self, vx: Vxlan, underlay: Vnet | None = None) -> VxlanDevice | VnetUnderlay:
        """Open the UDP socket(s) of VXLAN interface ``vx``: the host's, or one of vnet
        ``underlay`` (:mod:`vrouter.io.underlay`)."""
        device = (
            VxlanDevice(vx, self.loop)
            if underlay is None
            else VnetUnderlay(vx, underlay, self.loop.time)
        )
        self.vxlans[vx.ifnet] = device
        return device

    def open_vxlan(self, vx: Vxlan, tree: VnetTree) -> VxlanDevice | VnetUnderlay:
        """Open ``vx``'s device: a socket of its underlay vnet if it names one, else the
        host's; an :class:`UnderlayError` says what stood in the way."""
        name = vx.cfg.underlay
        where = f"vnet {vx.vnet.name}: {vx.ifnet.name}"
        if name is not None and name not in tree:
            raise UnderlayError(f"{where}: underlay vnet {name!r} does not run in this process")
        try:
            return self.add_vxlan(vx, None if name is None else tree.get(name))
        except UnderlayError as err:
            raise UnderlayError(f"{where}: {err}") from None
        except OSError as err:
            raise UnderlayError(
                f"{where}: cannot open the VXLAN socket ({vx.cfg.local} port {vx.cfg.port}): {err}"
            ) from err

    def reopen_underlays(self, tree: VnetTree) -> list[Vxlan]:
        """Open anew the sockets of VXLAN interfaces whose underlay vnet was destroyed and
        now exists again (and holds their local address); return the interfaces reopened."""
        reopened = []
        for ifnet, device in list(self.vxlans.items()):
            if not isinstance(device, VnetUnderlay) or not device.closed:
                continue
            name = device.vx.cfg.underlay
            if name is None or name not in tree:
                continue
            try:
                self.vxlans[ifnet] = device.reopen(tree.get(name))
            except UnderlayError as err:
                log.debug("vnet %s: %s: no underlay yet: %s", ifnet.vnet.name, ifnet.name, err)
                continue
            reopened.append(device.vx)
            log.info("vnet %s: %s: underlay vnet %s is back", ifnet.vnet.name, ifnet.name, name)
        return reopened

    def remove_vxlan(self, ifnet: Ifnet) -> bool:
        """Close the sockets of VXLAN interface ``ifnet``; return True if it had any."""
        device = self.vxlans.pop(ifnet, None)
        if device is None:
            return False
        device.close()
        return True

    def add_wire(self, ifnet: Ifnet, sock: socket.socket) -> WireDevice:
        """Attach ``ifnet`` to its end of a wire to another worker."""
        wire = WireDevice(ifnet, sock, self.loop, ether.receive)
        self.wires.append(wire)
        return wire

    def remove_wire(self, ifnet: Ifnet) -> bool:
        """Close the wire ``ifnet`` is an end of, if any; return True if there was one."""
        for wire in self.wires:
            if wire.ifnet is ifnet:
                wire.close()
                self.wires.remove(wire)
                return True
        return False

    def add_epair(self, a: Ifnet, b: Ifnet) -> Epair:
        """Join ``a`` and ``b`` with an epair."""
        epair = Epair(a, b)
        epair.sparse_first = self.sparse_first
        epair.inline = self.loop.time  # an idle path is one pass of Python (see epair)
        epair.wakeup = self._schedule_pump
        self.epairs.append(epair)
        return epair

    def remove_epair(self, epair: Epair) -> None:
        """Destroy ``epair``: frames in flight are dropped, neither end has a device."""
        epair.close()
        self.epairs.remove(epair)

    def _schedule_pump(self, epair: Epair) -> None:
        key = id(epair)
        if key not in self._pumping:
            self._pumping.add(key)
            if not self._woken:
                self.loop.call_soon(self._pump_woken)
            self._woken.append(epair)

    def _pump_woken(self) -> None:
        """Pump each epair woken since the last call, in the order they were woken (one
        woken meanwhile waits for the next loop pass, as with a ``call_soon`` of its own)."""
        woken = self._woken
        self._woken = []
        for epair in woken:
            try:
                self._pump(epair)
            except Exception:  # one epair's failure must not strand the others' pumps
                self._pumping.discard(id(epair))
                log.exception("epair %s: pump failed", epair)

    def _pump(self, epair: Epair) -> None:
        if self._spent >= PASS_QUANTUM:
            self._put_off(self._pump, epair)  # still in _pumping
            return
        self._pumping.discard(id(epair))
        started = self._begin()
        epair.pump(self.loop.time(), RX_BUDGET, EPAIR_QUANTUM, self._answers is not None)
        if epair.paused and self._read_answers():
            # The answers read are small frames too; those that crossed into this epair
            # go now, before its bulk (which waits for the turn already scheduled).
            epair.pump(self.loop.time(), RX_BUDGET, EPAIR_QUANTUM, True)
        self._spent += max(time.perf_counter() - started, 1e-9)

    def _read_answers(self) -> bool:
        """Give a turn now to every TAP that has frames waiting and was not backlogged;
        return True if one had.

        An epair pump paused after its small frames, before bulk ones: a small
        frame written to a TAP has often been answered already (the host's stack
        runs inside the write: a ping's reply, a DNS answer), and the answer would
        otherwise wait for the bulk's turn and the loop's next pass, hundreds of
        microseconds behind super-frames.  A backlogged TAP (bulk of its own) keeps
        its place in the loop's turns.
        """
        answers = self._answers
        if answers is None:
            return False
        read = False
        for fd, _ in answers.poll(0):
            tap = self._answering.get(fd)
            if tap is not None and not tap.backlogged:
                tap.poll()
                read = True
        return read

    def _after_batch(self, ifnet: Ifnet) -> None:
        """Run after each TAP batch: schedule a busy-poll if it is on and not backing off."""
        if self.busy_poll > 0.0 and not self._spin_due:
            if self._skip:
                self._skip -= 1
                return
            self._spin_due = True
            self.loop.call_soon(self._spin)

    def _spin(self) -> None:
        """Poll the TAPs for up to ``busy_poll`` seconds instead of sleeping: a frame that
        comes meanwhile is read without the wake-up.  Runs after the callbacks already
        due; skipped while epairs wait for their pump or work waits put off (there is work
        to do)."""
        self._spin_due = False
        poller = self._poller
        if poller is None or self._pumping or self._later:
            return
        poll = poller.poll
        ready = poll(0)
        if not ready:  # nothing yet: spin (a frame there already needed no polling)
            self.spins += 1
            clock = time.perf_counter
            until = clock() + self.busy_poll
            while not ready:
                if clock() >= until:
                    self._backoff = min(2 * self._backoff + 1, BUSY_POLL_BACKOFF)
                    self._skip = self._backoff
                    return
                ready = poll(0)
            self.spin_hits += 1
            self._backoff = self._skip = 0
        for fd, _ in ready:
            tap = self._polled.get(fd)
            if tap is not None:
                tap.poll()

    def close(self) -> None:
        """Close every device and cancel every deadline."""
        for name in list(self.taps):
            self.remove_tap(name)
        if self._poller is not None:
            self._poller.close()
            self._poller = None
        if self._answers is not None:
            self._answers.close()
            self._answers = None
        for wire in self.wires:
            wire.close()
        self.wires.clear()
        for device in self.vxlans.values():
            device.close()
        self.vxlans.clear()
        self._set_timer(math.inf)
        self._deadlines.clear()
        self._armed.clear()
        self._stale = 0
        self._later.clear()
