"""Epair: a virtual cable between two interfaces, usually in two vnets.

Like FreeBSD's ``if_epair``, a frame sent on one end arrives on the other.
Delivery is queued, not a direct call: a routing loop between vnets then
costs a queue entry per hop instead of a Python stack frame, and each vnet
processes frames in batches.  Whoever owns the loop (the driver, or a test)
calls :meth:`Epair.pump` after ``wakeup`` tells it frames are waiting.

One exception, when the owner gives the epair a clock (``inline``): a small
frame that finds the epair idle in both directions, and its own direction
quiet for ``INLINE_QUIET`` before it, is delivered at once, a direct call,
as long as no other such delivery is running (one level deep, in the whole
process: what the peer sends meanwhile is queued, so a routing loop still
costs a queue entry per hop).  A busy link (a flood, a TCP stream and its
ACKs) keeps the queue: its batches, its pump's share of the loop and small
frames first stay as they were.  An idle path is then one pass of
Python instead of two with a loop callback between them: after the daemon
slept, its code runs cold and every piece of it costs many times what it
costs warm, so the queue, the callback and the pump were a third of a
ping's way through two vnets (``bench/RESULTS.md``).  A frame that finds
others queued (a burst, bulk) waits behind them, in order, as before.

The queue is bounded by count (``QUEUE_LIMIT``) and by time: a frame that
waited longer than ``QUEUE_TIME`` when its turn comes is dropped (counted
``queue_stale`` on the receiving end), so a sender faster than its peer
meets a short queue, not seconds of delay; a pump may be bounded by time too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from time import monotonic as _monotonic

from vrouter.link import ether
from vrouter.link.ifnet import Ifnet
from vrouter.link.offload import OffloadBuffer
from vrouter.link.sparse import BULK_LEN, BulkQueue, flow_key

QUEUE_LIMIT = 1024
"""Frames in flight per direction before the sender sees ``queue_full``."""
QUEUE_TIME = 0.02
"""Seconds a frame may wait for delivery; an older one is dropped at its turn."""
INLINE_QUIET = 0.002
"""Seconds without a frame in its direction before a small frame may cross inline."""


class Epair:
    """Two interfaces joined back to back."""

    __slots__ = (
        "a", "b", "_pending", "_bulk", "sparse_first", "wakeup", "queue_time", "paused",
        "inline", "_last", "__weakref__",
    )  # fmt: skip

    def __init__(self, a: Ifnet, b: Ifnet) -> None:
        self.a = a
        self.b = b
        self._pending: deque[tuple[Ifnet, bytes | bytearray, float]] | None = None
        """Frames in flight, None while there are none (a deque is 600 bytes, and an
        idle epair holds no queue: it is made for a burst and dropped when drained)."""
        self._bulk: BulkQueue[tuple[Ifnet, bytes | bytearray, float]] | None = None
        """Bulk frames in flight, behind the small frames of other flows (None: none)."""
        self.sparse_first = True
        """Small frames of other flows go before bulk ones (:mod:`vrouter.link.sparse`)."""
        self.wakeup: Callable[[Epair], None] | None = None
        self.queue_time = QUEUE_TIME
        """Seconds a frame may wait (``QUEUE_TIME``)."""
        self.inline: Callable[[], float] | None = None
        """The clock a small frame that finds the epair idle is delivered with, at once
        (the driver's loop time); None: every frame is queued for :meth:`pump`."""
        self._last = [-INLINE_QUIET, -INLINE_QUIET]
        """When a frame was last sent towards a and towards b (``time.monotonic``)."""
        self.paused = False
        """The last :meth:`pump` stopped after small frames, before bulk ones (asked to)."""
        a.transmit = self.to_b  # bound methods: no closure (4 objects) per end
        b.transmit = self.to_a

    def to_a(self, frame: bytes | bytearray) -> None:
        """Send ``frame`` from end b to end a."""
        self._send(self.a, frame, 0)

    def to_b(self, frame: bytes | bytearray) -> None:
        """Send ``frame`` from end a to end b."""
        self._send(self.b, frame, 1)

    def _send(self, peer: Ifnet, frame: bytes | bytearray, way: int) -> None:
        pending = self._pending
        bulk = self._bulk
        sent = _monotonic()
        last = self._last
        quiet = sent - last[way] >= INLINE_QUIET
        last[way] = sent
        if (
            quiet
            and pending is None
            and bulk is None
            and self.inline is not None
            and not _delivering
            and len(frame) <= BULK_LEN
        ):
            self._deliver(peer, frame, self.inline)
            return
        if pending is None:  # idle: a queue for this burst
            pending = self._pending = deque()
            was_idle = not bulk
        else:
            if len(pending) + (len(bulk) if bulk is not None else 0) >= QUEUE_LIMIT:
                raise OSError("epair queue full")
            was_idle = not pending and not bulk
        # An offload buffer is handed over as is (its sender is done with
        # it; its header is not parsed here); ordinary frames become
        # immutable bytes for the peer.
        if frame.__class__ is not OffloadBuffer:
            frame = bytes(frame)
        item = (peer, frame, sent)
        if (bulk or len(frame) > BULK_LEN) and self.sparse_first:
            key = flow_key(frame)
            if len(frame) > BULK_LEN or (bulk is not None and bulk.holds(key)):
                if bulk is None:
                    bulk = self._bulk = BulkQueue()
                bulk.push(key, item)
            else:
                pending.append(item)
        else:
            pending.append(item)
        if was_idle and self.wakeup is not None:
            self.wakeup(self)

    def _deliver(self, peer: Ifnet, frame: bytes | bytearray, clock: Callable[[], float]) -> None:
        """Deliver ``frame`` to ``peer`` now (the epair is idle); epair sends meanwhile queue."""
        global _delivering
        _delivering = True
        try:  # as pump: a bug costs that frame only
            ether.input(peer, frame if frame.__class__ is OffloadBuffer else bytes(frame), clock())
        except Exception:
            ether.failed(peer)
        finally:
            _delivering = False

    def pump(
        self, now: float, budget: int = 4096, quantum: float = 0.0, pause: bool = False
    ) -> int:
        """Deliver up to ``budget`` queued frames, for at most ``quantum`` seconds if
        given; return how many (dropped stale ones included).  Small frames go before
        bulk ones (:mod:`vrouter.link.sparse`); with ``pause``, a turn that delivered
        small frames stops before the bulk ones (``paused`` is then True): what the
        small frames set off (a host's answer, in the TAP it was written to) can be
        read before the bulk's turn."""
        self.paused = False
        pending = self._pending
        if pending is None:
            return 0
        done = 0
        small = 0
        clock = _monotonic
        receive = ether.input
        start = clock()
        stale = start - self.queue_time
        deadline = start + quantum if quantum > 0.0 else float("inf")
        while done < budget:
            if pending:
                peer, frame, queued = pending.popleft()
                small += 1
            elif self._bulk:
                if small and pause:
                    self.paused = True
                    break
                peer, frame, queued = self._bulk.pop()
            else:
                break
            done += 1
            if queued < stale:
                peer.counters.rx_drops["queue_stale"] += 1
                continue
            try:  # ether.receive without the call: a bug costs that frame only
                receive(peer, frame, now)
            except Exception:
                ether.failed(peer)
            if clock() >= deadline:
                break
        if self._bulk is not None and not self._bulk:
            self._bulk = None
        if not pending and self._bulk is None:
            self._pending = None
        elif self.wakeup is not None:
            self.wakeup(self)
        return done

    def close(self) -> None:
        """Cut the cable: drop frames in flight; both ends then have no device."""
        self._pending = None
        self._bulk = None
        self.wakeup = None
        self.a.transmit = self.b.transmit = _cut

    @property
    def pending(self) -> int:
        """Return the number of frames waiting for delivery."""
        bulk = len(self._bulk) if self._bulk is not None else 0
        return (len(self._pending) if self._pending is not None else 0) + bulk


_delivering = False
"""An inline delivery is running (:meth:`Epair._send`): every epair queues meanwhile."""


def _cut(frame: bytes | bytearray) -> None:
    raise OSError("epair destroyed")
