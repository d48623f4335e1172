"""The destination cache: what forwarding to one address needs, looked up once.

A forwarded packet needs its route's next hop (longest-prefix match,
:meth:`vrouter.route.fib.Fib.lookup_nhop`: a :class:`~vrouter.route.fib.Nhop`
shared by the routes going the same way), the egress interface and gateway,
and the gateway's MAC (a neighbour cache lookup) for the Ethernet header.
A :class:`Dest` keeps all of that for one destination address, with the
Ethernet addresses (destination and source MAC) prebuilt, so the packets
after the first cost one dict probe.

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

A multipath (ECMP) route's entry holds one entry per usable path in
``paths``: the IP layer picks one by a hash of the packet's flow
(:func:`flow4`, :func:`flow6`: addresses, protocol and, for TCP, UDP and
SCTP packets that are not fragments, ports), so a flow keeps to one path
while flows spread over all, each path taking its weight's share (the
entries are repeated by weight).  The packets of each path are counted on
its :class:`vrouter.route.fib.Nexthop` (``use``), besides the next hop's.
A path out of an interface that is not up, or to a next hop that stopped answering ARP or ND
(:meth:`vrouter.link.lltable.NeighbourTable.path_down`), is left out: an
interface coming up, like a next hop going down or back, moves a generation
(:meth:`vrouter.route.fib.Fib.touch`), one removed takes its paths with it
(:func:`vrouter.route.state.remove_interface_routes`).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any
from zlib import crc32

from vrouter.route.weight import spread

if TYPE_CHECKING:
    from vrouter.link.ifnet import Ifnet
    from vrouter.link.lltable import NeighbourTable
    from vrouter.route.entry import Nexthop, Nhop

LIMIT = 4096
"""Destinations cached per vnet and family before the cache is emptied."""
REACHABLE = "reachable"
"""The neighbour state (ARP and ND spell it alike) in which the cache may be used."""
put_header = struct.Struct("12s").pack_into
"""``put_header(frame, 0, dest.header)`` writes both MACs: one call, cheaper than the
slice assignment ``frame[0:12] = dest.header``."""


class Dest:
    """How to reach one destination address."""

    __slots__ = ("generation", "header", "hop", "neighbour", "nexthop", "nhop", "out", "paths")

    def __init__(
        self, nhop: Nhop, nexthop: bytes, generation: int, out: Ifnet | None = None
    ) -> None:
        self.nhop = nhop
        """The next hop of the destination's route."""
        self.out: Ifnet | None = out if out is not None else nhop.ifnet
        self.nexthop = nexthop
        self.generation = generation
        self.neighbour: Any = None
        """The neighbour entry (a :class:`vrouter.link.lltable.Neighbour`) once resolved."""
        self.header = b""
        """Destination and source MAC for frames to the neighbour."""
        self.paths: tuple[Dest, ...] | None = None
        """A multipath route's entries, one per usable path, repeated by weight
        (:func:`vrouter.route.weight.spread`); None: one path."""
        self.hop: Nexthop | None = None
        """The path of a multipath route this entry stands for (its packets are counted there)."""

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
        put_header(frame, 0, self.header)
        entry.used = now
        self.out.output(frame)  # type: ignore[union-attr]  # set whenever a neighbour is
        return True


def _path(nhop: Nhop, nexthop: Nexthop, dst: bytes, generation: int) -> Dest:
    """Return the entry of one path of multipath next hop ``nhop`` to ``dst``."""
    dest = Dest(nhop, nexthop.gateway or dst, generation, nexthop.ifnet)
    dest.hop = nexthop
    return dest


class DestCache:
    """A vnet's destinations of one family."""

    __slots__ = ("entries", "limit", "misses")

    def __init__(self, limit: int = LIMIT) -> None:
        self.entries: dict[bytes, Dest] = {}
        self.limit = limit
        self.misses = 0
        """Lookups that had to build an entry (a new destination or generation)."""

    def build(
        self, dst: bytes, nhop: Nhop, generation: int, neighbours: NeighbourTable | None = None
    ) -> Dest:
        """Return a new entry for ``dst`` by next hop ``nhop``, cached.

        A multipath route's paths leave out those whose interface is not up
        and, given the family's ``neighbours``, those whose next hop is down.
        """
        entries = self.entries
        if len(entries) >= self.limit:
            entries.clear()
        self.misses += 1
        dest = entries[dst] = Dest(nhop, nhop.gateway or dst, generation)
        if nhop.nexthops:
            usable = [
                nexthop
                for nexthop in nhop.nexthops
                if nexthop.ifnet.up
                and not (
                    neighbours is not None
                    and neighbours.path_down(nexthop.ifnet, nexthop.gateway or dst)
                )
            ]
            if usable:  # none up: the first path, as a route of one path
                paths = [_path(nhop, nexthop, dst, generation) for nexthop in usable]
                dest.paths = spread(paths, [nexthop.weight for nexthop in usable])
        return dest

    def clear(self) -> None:
        """Forget every destination."""
        self.entries.clear()


_PORTS = frozenset({6, 17, 132})
"""Protocols whose first 4 bytes are source and destination port (TCP, UDP, SCTP)."""


def flow4(frame: bytes | bytearray) -> int:
    """Return the flow hash of the IPv4 packet in Ethernet ``frame`` (header checked).

    CRC-32 of the protocol, the addresses and, for TCP, UDP and SCTP packets that
    are not fragments, the ports; without IP options the ports follow the addresses,
    and one call over both gives what two chained ones would.
    """
    proto = frame[23]
    if proto in _PORTS and not (frame[20] & 0x3F or frame[21]):  # not a fragment
        if frame[14] == 0x45:  # no options: addresses and ports in one run
            return crc32(frame[26:38], proto)
        start = 14 + ((frame[14] & 0x0F) << 2)
        return crc32(frame[start : start + 4], crc32(frame[26:34], proto))
    return crc32(frame[26:34], proto)  # source and destination address


def flow6(frame: bytes | bytearray) -> int:
    """Return the flow hash of the IPv6 packet in Ethernet ``frame`` (header checked).

    Ports are read only right after the fixed header (no extension headers).
    """
    proto = frame[20]
    if proto in _PORTS:  # addresses and ports in one run: as two chained calls would give
        return crc32(frame[22:58], proto)
    return crc32(frame[22:54], proto)
