"""The neighbour table ARP and ND share, as FreeBSD's ``lltable`` serves both.

A table maps (interface, address) to a :class:`Neighbour`: its MAC, its
state, when it was confirmed and used, and the frames held while it
resolves.  The table owns what both resolvers do alike: creating entries
within ``max_entries``, sending a frame through an entry, holding at most
:data:`HOLD_LIMIT` frames per unresolved entry (the oldest goes first),
releasing them once the MAC is known, dropping an entry whose resolution
failed (its held packets go to the ``unresolved`` hook, where the IP layer
answers them with ICMP), sweeping idle stale entries, and bumping
``generation`` whenever an entry goes or its MAC changes, so destination
caches rebuild.

The next hops of multipath (ECMP) routes are watched (``paths``): one whose
resolution fails, or whose probes go unanswered, is *down* for
:data:`PATH_HOLD` seconds or until it answers, and the destination cache
leaves it out of its route's paths meanwhile (the generation moves each way).

A scan of an on-link prefix (RFC 6583) must not cost the neighbours that
are known.  So a new resolution is refused, and its packet dropped, when
``max_incomplete`` entries are resolving already or when the interface's
solicitation rate (``solicit_rate`` a second, a token bucket per
interface) is spent; a retry the rate refuses ends its resolution at once,
so under a scan incomplete entries go after one interval; and all held
frames together stay within ``hold_maxbytes``.  Resolved entries are never
refused nor rate-limited: their refresh and NUD probes go out as usual.

What goes on the wire and the rest of each state machine belong to the
resolvers, :mod:`vrouter.inet.arp` (one table per vnet at ``inet.arp``) and
:mod:`vrouter.inet6.nd` (``inet6.nd``).  Frames dropped on the way out are
counted on the interface as ``<name>_queue_overflow`` and
``<name>_unresolved``; the methods return what happened so each resolver
counts it in its own statistics as well.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core.ratelimit import TokenBucket
from vrouter.core.timers import Timer, Timers
from vrouter.wire.ethernet import DST, HEADER_LEN, SRC

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

INCOMPLETE = "incomplete"
"""Being resolved: solicitations sent, frames held."""
REACHABLE = "reachable"
"""Confirmed within ``reachable_time``."""
STALE = "stale"
"""Confirmed longer ago; still used."""
DELAY = "delay"
"""ND only: used while stale, waiting before the first unicast probe."""
PROBE = "probe"
"""ND only: unicast probes under way."""

PATH_HOLD = 30.0
"""Seconds an ECMP next hop that did not answer stays out of its route's paths
(at most one sweep interval more); then traffic tries it again."""
PATHS_LIMIT = 4096
"""Next hops of multipath routes watched per table before the watch starts over."""
HOLD_LIMIT = 16
"""Frames held per unresolved neighbour (FreeBSD ``arp_maxhold``); the oldest goes first."""
SWEEP_INTERVAL = 30.0
"""Seconds between sweeps of idle stale entries."""

TABLE_FULL = "table_full"
"""A resolution refused: ``max_entries`` reached."""
INCOMPLETE_FULL = "incomplete_full"
"""A resolution refused: ``max_incomplete`` entries are resolving already."""
RATELIMITED = "ratelimited"
"""A resolution refused or ended: the interface's solicitation rate is spent."""
HOLD_FULL = "hold_full"
"""A frame not held: the table's held frames reached ``hold_maxbytes``."""

Unresolved = Callable[["Vnet", memoryview, float], None]
"""Told (vnet, IP packet, now) about each held packet whose next hop never answered."""


@dataclass(slots=True)
class Neighbour:
    """One entry: a neighbour's address on an interface and what is known of it."""

    ifnet: Ifnet
    ip: bytes
    state: str
    mac: bytes = b""
    """The link-layer address; empty until resolved."""
    router: bool = False
    """ND: the neighbour advertised itself as a router (always False for ARP)."""
    confirmed: float = 0.0
    """When a packet from the neighbour last confirmed the mapping."""
    used: float = 0.0
    """When the entry last carried a packet."""
    probes: int = 0
    """Solicitations sent for the current resolution or probe."""
    last_request: float = -1e9
    """ARP: when the last refresh request went out."""
    hold: deque[bytearray] = field(default_factory=deque)
    timer: Timer | None = None

    def describe(self, now: float) -> dict[str, object]:
        """Return the entry as plain data for the API (``arp show``, ``ndp show``)."""
        known = bool(self.mac)
        described: dict[str, object] = {
            "address": str(ipaddress.ip_address(self.ip)),
            "mac": self.mac.hex(":") if known else None,
            "interface": self.ifnet.name,
            "state": self.state,
        }
        if len(self.ip) == 16:
            described["router"] = self.router
        described["age"] = round(now - self.confirmed, 1) if known else None
        described["held"] = len(self.hold)
        return described


@dataclass(slots=True)
class NeighbourTable:
    """A vnet's neighbours of one address family and the knobs they share."""

    name: str
    """``arp`` or ``nd``: the prefix of the interface drop reasons."""
    entries: dict[tuple[str, bytes], Neighbour] = field(default_factory=dict)
    """Entries by (interface name, address)."""
    reachable_time: float = 300.0
    """Seconds a confirmed entry stays reachable (``net.link.ether.inet.max_age`` for ARP)."""
    stale_time: float = 1200.0
    """Seconds an unused stale entry is kept (FreeBSD's ``arpt_keep``)."""
    max_entries: int = 65536
    """Entries allowed before new resolutions are refused."""
    max_incomplete: int = 256
    """Entries resolving at once before new resolutions are refused."""
    solicit_rate: int = 100
    """Solicitations (requests) per second and interface for resolutions; 0: no limit."""
    hold_maxbytes: int = 1 << 20
    """Bytes of frames held for every resolving entry together."""
    incomplete: int = 0
    """Entries in ``incomplete`` now."""
    hold_bytes: int = 0
    """Bytes of frames held now."""
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    """The solicitation rate's bucket of each interface that resolved something."""
    unresolved: Unresolved | None = None
    """Told about each packet held for a neighbour that never answered (the IP
    layer answers it with ICMP unreachable)."""
    sweeper: Timer | None = None
    paths: dict[tuple[str, bytes], float] = field(default_factory=dict)
    """Next hops of multipath routes by (interface name, address): 0.0, or when they
    stopped answering (then they are down, :meth:`path_down`)."""
    generation: int = 0
    """Increases when an entry goes or its MAC changes (destination caches rebuild)."""

    def clear(self) -> None:
        """Forget every entry and cancel their timers."""
        for entry in self.entries.values():
            if entry.timer is not None:
                entry.timer.cancel()
        self.entries = {}  # a new dict: the old one's memory goes back
        self.incomplete = 0
        self.hold_bytes = 0
        self.buckets.clear()
        self.generation += 1
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None

    def flush_interface(self, ifp: Ifnet) -> None:
        """Forget the entries of ``ifp`` (its addresses changed or it left the vnet)."""
        for key in [k for k, e in self.entries.items() if e.ifnet is ifp]:
            entry = self.entries.pop(key)
            if entry.timer is not None:
                entry.timer.cancel()
            self._forget(entry)
        self.buckets.pop(ifp.name, None)
        self.generation += 1

    def _forget(self, entry: Neighbour) -> None:
        """Take a removed ``entry`` out of the incomplete count and the held bytes."""
        if entry.state == INCOMPLETE:
            self.incomplete -= 1
        if entry.hold:
            self.hold_bytes -= sum(len(frame) for frame in entry.hold)
            entry.hold.clear()

    def path_down(self, ifp: Ifnet, ip: bytes) -> bool:
        """Watch ``ip`` on ``ifp`` as an ECMP next hop; return whether it is down now."""
        paths = self.paths
        key = (ifp.name, ip)
        down = paths.get(key)
        if down is None:
            if len(paths) >= PATHS_LIMIT:
                paths.clear()
            paths[key] = 0.0
        return bool(down)

    def _path_failed(self, entry: Neighbour, now: float) -> None:
        key = (entry.ifnet.name, entry.ip)
        if key in self.paths:
            self.paths[key] = now or 1e-9  # true even at time 0
            self.generation += 1

    def reachable(self, ifp: Ifnet, ip: bytes) -> Neighbour | None:
        """Return the entry for ``ip`` on ``ifp`` if it is reachable (else None)."""
        entry = self.entries.get((ifp.name, ip))
        return entry if entry is not None and entry.state == REACHABLE else None

    def add(
        self, timers: Timers, ifp: Ifnet, ip: bytes, state: str, now: float
    ) -> Neighbour | None:
        """Create the entry for ``ip`` on ``ifp`` in ``state``; None when the table is full."""
        if len(self.entries) >= self.max_entries:
            return None
        entry = Neighbour(ifp, ip, state, used=now)
        self.entries[(ifp.name, ip)] = entry
        if state == INCOMPLETE:
            self.incomplete += 1
        if self.sweeper is None:
            self.sweeper = timers.schedule(now + SWEEP_INTERVAL, lambda t: self.sweep(timers, t))
        return entry

    def resolve(self, timers: Timers, ifp: Ifnet, ip: bytes, now: float) -> Neighbour | str:
        """Start resolving ``ip`` on ``ifp``: a new incomplete entry, its first
        solicitation paid for; or the reason it is refused (:data:`TABLE_FULL`,
        :data:`INCOMPLETE_FULL`, :data:`RATELIMITED`)."""
        if self.incomplete >= self.max_incomplete:
            return INCOMPLETE_FULL
        if len(self.entries) >= self.max_entries:
            return TABLE_FULL
        if not self.may_solicit(ifp, now):
            return RATELIMITED
        entry = self.add(timers, ifp, ip, INCOMPLETE, now)
        return TABLE_FULL if entry is None else entry

    def refusal(self, ifp: Ifnet, ip: bytes, now: float) -> str | None:
        """Return why a packet to ``ip`` on ``ifp`` would be refused now: no entry, and
        :meth:`resolve` would refuse to start one.  None: it would go on (an entry
        exists or a resolution would start).  Spends nothing."""
        if (ifp.name, ip) in self.entries:
            return None
        if self.incomplete >= self.max_incomplete:
            return INCOMPLETE_FULL
        if len(self.entries) >= self.max_entries:
            return TABLE_FULL
        bucket = self.buckets.get(ifp.name)
        rate = self.solicit_rate
        if bucket is not None and rate > 0 and bucket.tokens + (now - bucket.at) * rate < 1.0:
            return RATELIMITED
        return None

    def may_solicit(self, ifp: Ifnet, now: float) -> bool:
        """Spend one of ``ifp``'s solicitations for a resolution; False if none is left."""
        bucket = self.buckets.get(ifp.name)
        if bucket is None:
            bucket = self.buckets[ifp.name] = TokenBucket()
        return bucket.take(self.solicit_rate, now)

    def send(self, entry: Neighbour, frame: bytearray, now: float) -> None:
        """Send ``frame`` to the resolved ``entry``; one confirmed too long ago goes stale."""
        ifp = entry.ifnet
        frame[DST] = entry.mac
        frame[SRC] = ifp.mac
        ifp.output(frame)
        entry.used = now
        if entry.state == REACHABLE and now - entry.confirmed > self.reachable_time:
            entry.state = STALE

    def hold(self, entry: Neighbour, frame: bytearray) -> str | None:
        """Keep ``frame`` until ``entry`` resolves; return what was dropped for it, if anything.

        ``queue_overflow``: the entry's oldest frame made room;
        :data:`HOLD_FULL`: the table holds ``hold_maxbytes`` already, ``frame``
        is dropped.
        """
        size = len(frame)
        if self.hold_bytes + size > self.hold_maxbytes:
            entry.ifnet.counters.tx_drops[f"{self.name}_{HOLD_FULL}"] += 1
            return HOLD_FULL
        dropped = None
        if len(entry.hold) >= HOLD_LIMIT:
            self.hold_bytes -= len(entry.hold.popleft())
            entry.ifnet.counters.tx_drops[f"{self.name}_queue_overflow"] += 1
            dropped = "queue_overflow"
        entry.hold.append(frame)
        self.hold_bytes += size
        return dropped

    def confirm(self, entry: Neighbour, mac: bytes, state: str, now: float) -> bool:
        """Record ``mac`` for ``entry`` in ``state`` and send its held frames.

        Return True if frames were held.  Only a reachable entry counts as
        confirmed now.
        """
        if entry.state == INCOMPLETE:
            self.incomplete -= 1
        elif entry.mac != mac:  # a resolved MAC changed
            self.generation += 1
        if self.paths.get((entry.ifnet.name, entry.ip)):  # an ECMP next hop is back
            self.paths[(entry.ifnet.name, entry.ip)] = 0.0
            self.generation += 1
        entry.mac = mac
        entry.state = state
        entry.probes = 0
        if state == REACHABLE:
            entry.confirmed = now
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        ifp = entry.ifnet
        held = list(entry.hold)
        entry.hold.clear()
        self.hold_bytes -= sum(len(frame) for frame in held)
        for frame in held:
            frame[DST] = mac
            frame[SRC] = ifp.mac
            ifp.output(frame)
        return bool(held)

    def fail(self, vnet: Vnet, entry: Neighbour, now: float) -> None:
        """Drop ``entry``, whose resolution got no answer, and hand its held packets on."""
        del self.entries[(entry.ifnet.name, entry.ip)]  # unresolved: no Dest holds it
        entry.timer = None
        held = list(entry.hold)
        self._forget(entry)
        entry.ifnet.counters.tx_drops[f"{self.name}_unresolved"] += len(held)
        self._path_failed(entry, now)
        if self.unresolved is not None:
            for frame in held:
                self.unresolved(vnet, memoryview(frame)[HEADER_LEN:], now)

    def remove(self, entry: Neighbour, now: float = 0.0) -> None:
        """Forget ``entry`` (a resolved one whose probes went unanswered)."""
        del self.entries[(entry.ifnet.name, entry.ip)]
        self._forget(entry)
        self.generation += 1
        self._path_failed(entry, now)

    def sweep(self, timers: Timers, now: float) -> None:
        """Age reachable entries to stale and forget stale ones idle for ``stale_time``."""
        self.sweeper = None
        for key, down in list(self.paths.items()):
            if down and now - down > PATH_HOLD:  # try it again
                self.paths[key] = 0.0
                self.generation += 1
        for key, entry in list(self.entries.items()):
            if entry.state == REACHABLE and now - entry.confirmed > self.reachable_time:
                entry.state = STALE
            if entry.state == STALE and now - max(entry.used, entry.confirmed) > self.stale_time:
                del self.entries[key]
                self.generation += 1
        if self.entries:
            self.sweeper = timers.schedule(now + SWEEP_INTERVAL, lambda t: self.sweep(timers, t))
