"""Epair: a virtual cable between two interfaces, usually in two vnets.

Like FreeBSD's ``if_epair``, a frame sent on one end arrives on the other.
Delivery is queued, not a direct call: a routing loop between vnets then
costs a queue entry per hop instead of a Python stack frame, and each vnet
processes frames in batches.  Whoever owns the loop (the driver, or a test)
calls :meth:`Epair.pump` after ``wakeup`` tells it frames are waiting.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from vrouter.link import ether
from vrouter.link.ifnet import Ifnet
from vrouter.link.offload import vhdr_of

QUEUE_LIMIT = 1024
"""Frames in flight per direction before the sender sees ``queue_full``."""


class Epair:
    """Two interfaces joined back to back."""

    def __init__(self, a: Ifnet, b: Ifnet) -> None:
        self.a = a
        self.b = b
        self._pending: deque[tuple[Ifnet, bytes | bytearray]] = deque()
        self.wakeup: Callable[[Epair], None] | None = None
        a.transmit = self._sender(b)
        b.transmit = self._sender(a)

    def _sender(self, peer: Ifnet) -> Callable[[bytes | bytearray], None]:
        def transmit(frame: bytes | bytearray) -> None:
            if len(self._pending) >= QUEUE_LIMIT:
                raise OSError("epair queue full")
            was_idle = not self._pending
            # An offload buffer is handed over as is (its sender is done with
            # it); ordinary frames become immutable bytes for the peer.
            self._pending.append((peer, frame if vhdr_of(frame) is not None else bytes(frame)))
            if was_idle and self.wakeup is not None:
                self.wakeup(self)

        return transmit

    def pump(self, now: float, budget: int = 4096) -> int:
        """Deliver up to ``budget`` queued frames; return how many."""
        pending = self._pending
        done = 0
        while pending and done < budget:
            peer, frame = pending.popleft()
            ether.receive(peer, frame, now)
            done += 1
        if pending and self.wakeup is not None:
            self.wakeup(self)
        return done

    def close(self) -> None:
        """Cut the cable: drop frames in flight; both ends then have no device."""
        self._pending.clear()
        self.wakeup = None
        self.a.transmit = self.b.transmit = _cut

    @property
    def pending(self) -> int:
        """Return the number of frames waiting for delivery."""
        return len(self._pending)


def _cut(frame: bytes | bytearray) -> None:
    raise OSError("epair destroyed")
