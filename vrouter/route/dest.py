"""The destination cache: what forwarding to one address needs, looked up once.

A forwarded packet needs its route (longest-prefix match), the egress
interface and next hop, and the next hop's MAC (a neighbour cache lookup)
for the Ethernet header.  A :class:`Dest` keeps all of that for one
destination address, with the Ethernet addresses (destination and source
MAC) prebuilt, so the packets after the first cost one dict probe.

Each entry records the *generation* it was built under: the FIB's
``generation`` (any route change, and with it any interface address, state
or removal, which change connected routes) plus the neighbour table's
(an entry removed or its MAC changed).  An entry from an older generation
is rebuilt on use.  The neighbour itself is used from the cache only while
it is reachable (confirmed within ``reachable_time``); otherwise the
neighbour layer sends the packet and runs its state machine (stale, probes)
as without a cache.  MTU and the interface's up state are read live.

The cache is bounded: when full it is emptied (a scan of random
destinations costs rebuilds, never memory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vrouter.link.ifnet import Ifnet
    from vrouter.route.fib import Route

LIMIT = 4096
"""Destinations cached per vnet and family before the cache is emptied."""
REACHABLE = "reachable"
"""The neighbour state (ARP and ND spell it alike) in which the cache may be used."""


class Dest:
    """How to reach one destination address."""

    __slots__ = ("generation", "header", "neighbour", "nexthop", "out", "route")

    def __init__(self, route: Route, nexthop: bytes, generation: int) -> None:
        self.route = route
        self.out: Ifnet | None = route.ifnet
        self.nexthop = nexthop
        self.generation = generation
        self.neighbour: Any = None
        """The neighbour entry (a :class:`vrouter.link.lltable.Neighbour`) once resolved."""
        self.header = b""
        """Destination and source MAC for frames to the neighbour."""

    def learn(self, neighbour: Any) -> None:
        """Remember ``neighbour`` (None, or an entry with a MAC) and prebuild the header."""
        out = self.out
        if neighbour is None or out is None:
            self.neighbour = None
            return
        self.neighbour = neighbour
        self.header = neighbour.mac + out.mac

    def send(self, frame: bytearray, now: float, reachable_time: float) -> bool:
        """Send ``frame`` to the cached neighbour if it is still reachable; False if not.

        Reachable: in that state and confirmed within ``reachable_time``
        seconds.  Otherwise the neighbour layer must send it (and age,
        probe or resolve the entry).
        """
        entry = self.neighbour
        if entry is None or entry.state != REACHABLE or now - entry.confirmed > reachable_time:
            return False
        frame[0:12] = self.header
        entry.used = now
        self.out.output(frame)  # type: ignore[union-attr]  # set whenever a neighbour is
        return True


class DestCache:
    """A vnet's destinations of one family."""

    __slots__ = ("entries", "limit", "misses")

    def __init__(self, limit: int = LIMIT) -> None:
        self.entries: dict[bytes, Dest] = {}
        self.limit = limit
        self.misses = 0
        """Lookups that had to build an entry (a new destination or generation)."""

    def build(self, dst: bytes, route: Route, generation: int) -> Dest:
        """Return a new entry for ``dst`` by ``route``, cached."""
        entries = self.entries
        if len(entries) >= self.limit:
            entries.clear()
        self.misses += 1
        dest = entries[dst] = Dest(route, route.gateway or dst, generation)
        return dest

    def clear(self) -> None:
        """Forget every destination."""
        self.entries.clear()
