"""Holding Python's cyclic garbage collector off while a long job runs in slices.

A full collection walks every tracked object: with a million routes in a
FIB that is most of a second, all in one loop pass, so every vnet stops
forwarding meanwhile.  A job spread over many loop passes (a metrics
scrape, a streamed view) allocates enough to set one off; :func:`held`
keeps the collector off while such jobs run and turns it back on when the
last one ends.  The collector is the process's, so the count of jobs
holding it is too.

Turned back on, the collector soon runs a full collection: with 10,000
vnets (1.5 million tracked objects) that is about 4 seconds on a busy
2-core machine, a stall of every vnet, and a scrape's allocations set one
off.  :func:`settle`, called once a daemon has built its vnets, collects
and then freezes what is alive (``gc.freeze``): full collections walk only
what came later.  Start-up itself runs held, parse and build: a
collection then would walk every vnet built so far, again and again.
A :class:`Burst` holds it while control requests keep coming (vnets
created and destroyed by the thousand), within bounds.  A
frozen object is never collected, so a vnet of the
start-up configuration destroyed later leaves whatever of it a reference
cycle holds (once: what is built afterwards is collected as usual).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator

_holders = [0, False]
"""How many jobs hold the collector off, and whether it was on when the first began."""


def begin() -> None:
    """Hold the collector off until the matching :func:`end` (and every overlapping hold's)."""
    if _holders[0] == 0:
        _holders[1] = gc.isenabled()
        gc.disable()
    _holders[0] += 1


def end() -> None:
    """End a hold :func:`begin` started."""
    _holders[0] -= 1
    if _holders[0] == 0 and _holders[1]:
        gc.enable()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Keep the cyclic garbage collector off until this and every overlapping hold end."""
    begin()
    try:
        yield
    finally:
        end()


YOUNG = 10_000
"""Allocations of container objects, less those freed, that set off a collection of the
youngest generation once a daemon has started (Python's default: 700)."""


def settle(collected: bool = False) -> None:
    """Collect once, then keep every object alive now out of later collections
    (``gc.freeze``); from now on the youngest generation is collected every
    :data:`YOUNG` allocations.

    ``collected``: the caller collected before building its vnets (the
    parse's garbage, while the heap was small) and building makes no cyclic
    garbage (tests/unit/daemon/test_startup_garbage.py), so the collection
    here, a walk of every object of every vnet that finds nothing (1.5 s at
    20,000 vnets), is left out; a reference cycle left by building would be
    kept, frozen, for ever.

    Called inside a hold, the collector finds nothing left of start-up when it
    is turned back on.  With the default 700, creating vnets at run time (about
    80 container objects each) sets off a full collection at every 25 % of
    growth of the heap: 12 of them, 2.6-3.9 s of CPU, for 10,000 vnets created
    through the control API; with 10,000 there is one (0.03 s), and the young
    collections, fewer and larger, cost about as much as before.
    """
    if not collected:
        gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])


BURST_IDLE = 0.25
"""Seconds without a control request that end a burst (and its hold on the collector)."""
BURST_CAP = 2_000_000
"""Container objects allocated (less those freed) during a burst after which the collector
runs anyway: what garbage a burst can leave uncollected is bounded by it."""
BURST_LONGEST = 10.0
"""Seconds after which a burst's hold ends even if requests keep coming."""


class Burst:
    """Holds the collector off while control requests come one after another.

    Creating and destroying vnets at run time allocates about 60 container
    objects per vnet; collected every :data:`YOUNG` allocations, each vnet is
    walked by a young and a middle collection (and the full ones) whether it
    lives on or is destroyed a moment later, about half of what creating it
    costs.  Held over a burst of requests, a vnet destroyed within the burst
    is freed by reference counting (a destroyed vnet leaves no reference cycle)
    without ever being walked; what stays is walked once the burst ends (the
    control socket idle :data:`BURST_IDLE` s): one young collection of all of
    it, while no request waits.  A burst ends sooner after :data:`BURST_CAP`
    allocations or :data:`BURST_LONGEST` seconds, so memory cannot run away
    and the collector still runs under a steady stream of requests.

    A burst that destroyed vnets, at least a quarter as many as are left
    (``vnets`` counts them), ends with a full collection instead: it is what
    empties the interpreter's free lists (tuples, dicts, lists, floats freed
    as the vnets went), a few hundred objects scattered over the heap that
    otherwise keep most of the allocator's arenas those vnets filled, and
    the process's memory, at its high-water mark.  It walks what was not
    frozen at start-up (:func:`settle`), no more than a young collection
    walks after a burst of creations.
    """

    __slots__ = ("_held", "_began", "_last", "_timer", "_vnets", "_most")

    def __init__(self, vnets: Callable[[], int] = lambda: 0) -> None:
        self._held = False
        self._began = self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._vnets = vnets
        self._most = 0
        """The most vnets there were during the burst."""

    @property
    def held(self) -> bool:
        """Whether this burst holds the collector now."""
        return self._held

    def request(self) -> None:
        """A control request is being answered (call it in the running loop)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        vnets = self._vnets()
        if not self._held:
            self._held = True
            self._began = self._last = now
            self._most = vnets
            begin()
            self._timer = loop.call_at(now + BURST_IDLE, self._check)
        elif gc.get_count()[0] >= BURST_CAP or now - self._began >= BURST_LONGEST:
            self.end()  # the next allocation sets off a collection; the next request holds again
        else:
            self._last = now
            self._most = max(self._most, vnets)

    def _check(self) -> None:
        self._timer = None
        if not self._held:
            return
        loop = asyncio.get_running_loop()
        idle_at = self._last + BURST_IDLE
        if loop.time() >= idle_at:
            self.end()
            left = self._vnets()
            if self._most > left and (self._most - left) * 4 >= left:
                gc.collect()
        else:
            self._timer = loop.call_at(idle_at, self._check)

    def end(self) -> None:
        """End the hold now, if there is one (the server is closing, or a bound is reached)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held:
            self._held = False
            end()
