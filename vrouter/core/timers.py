"""Per-vnet deadlines: a heap of callbacks that the driver runs when due.

Protocol code never sleeps: it schedules ``callback(now)`` at a deadline.
The vnet reports its earliest deadline; the asyncio driver arms one
``loop.call_at`` for it, tests advance a fake clock and call :meth:`run`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

TimerCallback = Callable[[float], None]


class Timer:
    """A scheduled callback; ``cancel`` makes it a no-op."""

    __slots__ = ("deadline", "callback", "cancelled")

    def __init__(self, deadline: float, callback: TimerCallback) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Stop the callback from running."""
        self.cancelled = True


class Timers:
    """A deadline heap owned by one vnet."""

    __slots__ = ("_heap", "_seq", "owner", "wakeup", "__weakref__")

    def __init__(self, owner: Any = None) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0
        """Scheduled so far: equal deadlines run in the order they were scheduled."""
        self.owner = owner
        """Who the deadlines are for (the vnet), passed to :attr:`wakeup`."""
        self.wakeup: Callable[[Any, float], None] | None = None
        """Called with :attr:`owner` and a deadline earlier than any before; set by the
        driver (one callable for every vnet, which keeps no closure per vnet)."""

    def schedule(self, deadline: float, callback: TimerCallback) -> Timer:
        """Run ``callback(now)`` once ``now >= deadline``."""
        timer = Timer(deadline, callback)
        earliest = self.next_deadline()
        self._seq = seq = self._seq + 1
        heapq.heappush(self._heap, (deadline, seq, timer))
        if self.wakeup is not None and (earliest is None or deadline < earliest):
            self.wakeup(self.owner, deadline)
        return timer

    def next_deadline(self) -> float | None:
        """Return the earliest pending deadline, or None."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run(self, now: float) -> int:
        """Run every callback that is due; return how many ran."""
        heap = self._heap
        ran = 0
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback(now)
                ran += 1
        return ran

    def purge(self) -> int:
        """Drop cancelled timers now instead of at their deadline; return how many.

        A cancelled timer keeps its callback (and what it refers to) until
        its deadline passes; purging lets a destroyed interface go at once.
        """
        live = [entry for entry in self._heap if not entry[2].cancelled]
        dropped = len(self._heap) - len(live)
        if dropped:
            heapq.heapify(live)
            self._heap[:] = live
        return dropped

    def clear(self) -> None:
        """Cancel everything (the vnet is going away)."""
        for _, _, timer in self._heap:
            timer.cancelled = True
        self._heap.clear()

    def __len__(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)


class Deadline:
    """One recurring deadline (say, the next reassembly timeout) kept armed once.

    ``arm`` schedules ``callback`` for ``deadline`` unless an earlier or
    equal one is already pending, so a burst of events does not pile up
    timers on the heap.
    """

    __slots__ = ("_timer",)

    def __init__(self) -> None:
        self._timer: Timer | None = None

    def arm(self, timers: Timers, deadline: float | None, callback: TimerCallback) -> None:
        """Make sure ``callback`` runs at ``deadline`` (None: nothing to wait for)."""
        if deadline is None:
            return
        timer = self._timer
        if timer is not None and not timer.cancelled and timer.deadline <= deadline:
            return
        if timer is not None:
            timer.cancel()
        self._timer = timers.schedule(deadline, callback)

    def cancel(self) -> None:
        """Forget the pending deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
