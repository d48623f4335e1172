"""One RIP instance (one vnet, one family): the routing table and its timers, sans-IO.

RFC 2453 (RIPv2) and RFC 2080 (RIPng) behaviour: metric = advertised + 1,
16 is infinity; a route is replaced by a better metric from another router
and follows its current router's news (better or worse); each learned route
times out after ``timeout`` seconds without news and is then advertised
with metric 16 for ``garbage`` seconds before it is forgotten.  Regular
updates go out every ``update`` seconds (jittered by 0.85-1.15), triggered
updates (changed routes only) at most every 1-5 s; split horizon with
poisoned reverse: a route is sent back onto the interface it was learned
from with metric 16.  Directly connected networks of RIP interfaces are
advertised with metric 1.  RIPv2 packets may be authenticated (plaintext,
or keyed MD5 with a non-decreasing sequence number per neighbour, RFC 4822).

Everything takes ``now``; outputs are packets to send (per interface or to
a requester) and forwarding-table operations for the caller to carry out.
Every packet that is not used is counted in :class:`RipStats`.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from vrouter.rip import packet as rip
from vrouter.rip.packet import INFINITY, REQUEST, RESPONSE, Auth, Entry
from vrouter.wire.errors import WireError

Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Reply = tuple[Address, int, bytes]
"""A packet to unicast: (destination, port, data)."""
HOP_LIMIT = 255
"""RIPng multicast packets are sent, and must arrive, with hop limit 255 (RFC 2080 2.5)."""


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 2453 3.8 timers, in seconds."""

    update: float = 30.0
    timeout: float = 180.0
    garbage: float = 120.0


@dataclass(frozen=True, slots=True)
class FibOp:
    """A change the caller makes to the vnet's forwarding table."""

    action: str
    """``add``, ``change`` or ``delete``."""
    prefix: Prefix
    gateway: Address | None = None
    interface: str | None = None


@dataclass(slots=True)
class Route:
    """A route of the RIP table."""

    prefix: Prefix
    metric: int
    interface: str
    gateway: Address | None = None
    """The next hop installed: the sender, or the next hop it named; None when connected."""
    source: Address | None = None
    """The router it came from; None for a directly connected network."""
    tag: int = 0
    expires: float = 0.0
    garbage_at: float | None = None
    changed: bool = True

    @property
    def connected(self) -> bool:
        """Return True for a directly connected network."""
        return self.source is None


@dataclass(slots=True)
class Neighbour:
    """What keyed-MD5 authentication remembers of a neighbour (RFC 4822 3.2.2)."""

    sequence: int
    heard: float


@dataclass(slots=True)
class RipStats:
    """Counters of one instance; every packet not used is counted once."""

    responses: int = 0
    """Responses accepted."""
    requests: int = 0
    """Requests answered."""
    bad_packets: int = 0
    """Packets that did not parse (length, version, command, metric, prefix)."""
    auth_failed: int = 0
    """Packets dropped by authentication (missing, wrong password/key/digest, old sequence)."""
    not_rip_interface: int = 0
    """Packets that arrived on an interface RIP does not run on."""
    from_self: int = 0
    """Our own packets, come back."""
    not_from_port: int = 0
    """Responses not from port 520 (RIPng: 521) (RFC 2453 3.9.2)."""
    off_link: int = 0
    """Responses whose source is not a neighbour on the link (RIPng: not link-local)."""
    bad_hop_limit: int = 0
    """RIPng multicast responses that arrived with a hop limit other than 255."""
    version1: int = 0
    """RIPv1 packets (this instance speaks RIP-2 only)."""
    bad_entries: int = 0
    """Route entries ignored: another address family, or a martian or link-local prefix."""
    updates_sent: int = 0
    triggered_sent: int = 0
    routes_learned: int = 0
    routes_timed_out: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    """Packets dropped, by reason (``rip_badmetric``, ``rip_auth_digest`` ...)."""
    last_drop: str = ""
    """The reason of the last drop (with its detail), for the log."""


@dataclass
class Instance:
    """RIP in one vnet for one family."""

    family: int
    timers: Timers = field(default_factory=Timers)
    rng: random.Random = field(default_factory=random.Random)
    auth: Auth = field(default_factory=Auth)
    clock_offset: float = 0.0
    """Wall clock minus ``now``: MD5 sequence numbers follow the wall clock across restarts."""
    routes: dict[Prefix, Route] = field(default_factory=dict)
    interfaces: dict[str, list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]] = field(
        default_factory=dict
    )
    neighbours: dict[tuple[str, Address], Neighbour] = field(default_factory=dict)
    sequence: int = 0
    """The last keyed-MD5 sequence number sent."""
    next_update: float = 0.0
    next_triggered: float | None = None
    last_triggered: float = -1e9
    stats: RipStats = field(default_factory=RipStats)

    def __post_init__(self) -> None:
        if self.family not in (4, 6):
            raise ValueError(f"family {self.family} is not 4 or 6")
        if self.family == 6 and self.auth.enabled:
            raise ValueError("RIPng has no authentication of its own (RFC 2080 2.2: use IPsec)")

    @property
    def port(self) -> int:
        """Return the RIP port of the family."""
        return rip.PORT_V2 if self.family == 4 else rip.PORT_NG

    # -- interfaces and connected networks ---------------------------------------

    def set_interface(
        self,
        name: str,
        addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface],
        now: float,
    ) -> None:
        """Run RIP on ``name`` with these addresses (its connected networks are advertised)."""
        mine = [a for a in addresses if a.version == self.family and not a.is_link_local]
        self.interfaces[name] = [a for a in addresses if a.version == self.family]
        for address in mine:
            route = self.routes.get(address.network)
            if route is None or not route.connected:
                self.routes[address.network] = Route(address.network, 1, name, expires=now)
        self.next_update = min(self.next_update or now, now)

    def on_link(self, interface: str, address: Address) -> bool:
        """Return True if ``address`` is on a network of ``interface`` (or link-local)."""
        if address.version == 6 and address.is_link_local:
            return True
        return any(address in a.network for a in self.interfaces.get(interface, ()))

    def mine(self, address: Address) -> bool:
        """Return True for one of our own addresses."""
        return any(address == a.ip for addrs in self.interfaces.values() for a in addrs)

    # -- receiving ---------------------------------------------------------------

    def _drop(self, reason: str) -> tuple[list[FibOp], list[Reply]]:
        stats = self.stats
        name = reason.split(":", 1)[0]
        stats.reasons[name] = stats.reasons.get(name, 0) + 1
        stats.last_drop = reason
        return [], []

    def receive(
        self,
        interface: str,
        source: Address,
        port: int,
        data: bytes,
        now: float,
        *,
        ttl: int | None = None,
        destination: Address | None = None,
    ) -> tuple[list[FibOp], list[Reply]]:
        """Process a packet; return forwarding changes and direct answers.

        ``ttl`` (the received TTL or hop limit) and ``destination`` (the
        address the packet was sent to) are checked for RIPng when given.
        """
        stats = self.stats
        if interface not in self.interfaces:
            stats.not_rip_interface += 1
            return self._drop("rip_not_rip_interface")
        if self.mine(source):
            stats.from_self += 1
            return self._drop("rip_from_self")
        try:
            pkt = rip.parse_v2(data) if self.family == 4 else rip.parse_ng(data)
            if self.family == 4 and pkt.version == 2:
                rip.check_auth(pkt, self.auth)
        except rip.AuthError as err:
            stats.auth_failed += 1
            return self._drop(f"{err}")
        except WireError as err:
            stats.bad_packets += 1
            return self._drop(f"{err}")
        if pkt.version == 1 and self.family == 4:
            stats.version1 += 1
            return self._drop("rip_v1")
        md5 = pkt.auth if pkt.auth is not None and pkt.auth.type == rip.AUTH_MD5 else None
        if md5 is not None and not self._sequence_ok(interface, source, md5.sequence, now):
            stats.auth_failed += 1
            return self._drop(f"rip_auth_sequence: {md5.sequence} from {source}")
        stats.bad_entries += pkt.ignored
        if pkt.command == REQUEST:
            stats.requests += 1
            return [], self._answer(interface, source, port, pkt, now)
        # RFC 2453 3.9.2 / RFC 2080 2.4.2: responses come from the RIP port of a neighbour.
        if port != self.port:
            stats.not_from_port += 1
            return self._drop(f"rip_not_from_port: {port}")
        if not self.on_link(interface, source) or (self.family == 6 and not source.is_link_local):
            stats.off_link += 1
            return self._drop(f"rip_off_link: {source}")
        multicast = destination is None or destination.is_multicast
        if self.family == 6 and ttl is not None and multicast and ttl != HOP_LIMIT:
            stats.bad_hop_limit += 1
            return self._drop(f"rip_hop_limit: {ttl}")
        stats.responses += 1
        ops: list[FibOp] = []
        for entry in pkt.entries:
            op = self._learn(interface, source, entry, now)
            if op is not None:
                ops.append(op)
        self._schedule_triggered(now)
        return ops, []

    def _sequence_ok(self, interface: str, source: Address, sequence: int, now: float) -> bool:
        """Keep a neighbour's MD5 sequence numbers from going back (RFC 4822 3.2.2)."""
        key = (interface, source)
        known = self.neighbours.get(key)
        if known is not None and sequence < known.sequence:
            return False
        self.neighbours[key] = Neighbour(sequence, now)
        return True

    def _valid(self, prefix: Prefix) -> bool:
        """Return True for a destination RIP may carry (RFC 2453 3.9.2, RFC 2080 2.4.2)."""
        if prefix.version != self.family:
            return False
        if prefix.prefixlen == 0:
            return True  # the default route
        address = prefix.network_address
        if address.is_multicast or address.is_loopback or address.is_reserved:
            return False
        if isinstance(address, ipaddress.IPv4Address):
            return address not in _THIS_NETWORK
        return not address.is_link_local and not address.is_unspecified

    def _learn(self, interface: str, source: Address, entry: Entry, now: float) -> FibOp | None:
        prefix = entry.prefix
        if not self._valid(prefix):
            self.stats.bad_entries += 1
            return None
        gateway: Address = source
        hop = entry.next_hop
        if hop is not None and self.on_link(interface, hop) and not self.mine(hop):
            gateway = hop  # RFC 2453 4.4: a better next hop on the same link
        metric = min(entry.metric + 1, INFINITY)
        route = self.routes.get(prefix)
        if route is not None and route.connected:
            return None
        if route is None:
            if metric >= INFINITY:
                return None
            self.routes[prefix] = Route(
                prefix,
                metric,
                interface,
                gateway,
                source,
                entry.tag,
                expires=now + self.timers.timeout,
            )
            self.stats.routes_learned += 1
            return FibOp("add", prefix, gateway, interface)
        if route.source == source and route.interface == interface:
            return self._follow(route, metric, gateway, entry.tag, now)
        if metric < route.metric:
            was_reachable = route.metric < INFINITY
            route.metric, route.interface, route.gateway = metric, interface, gateway
            route.source, route.tag = source, entry.tag
            route.expires = now + self.timers.timeout
            route.garbage_at = None
            route.changed = True
            return FibOp("change" if was_reachable else "add", prefix, gateway, interface)
        return None

    def _follow(
        self, route: Route, metric: int, gateway: Address, tag: int, now: float
    ) -> FibOp | None:
        """Take news from the route's own router, better or worse (RFC 2453 3.9.2)."""
        if metric >= INFINITY:
            if route.metric >= INFINITY:
                return None  # already going away: the garbage timer is not restarted
            route.metric = INFINITY
            route.garbage_at = now + self.timers.garbage
            route.changed = True
            return FibOp("delete", route.prefix)
        route.expires = now + self.timers.timeout
        op = None
        if route.metric >= INFINITY:  # it came back before it was forgotten
            route.garbage_at = None
            op = FibOp("add", route.prefix, gateway, route.interface)
        elif gateway != route.gateway:
            op = FibOp("change", route.prefix, gateway, route.interface)
        if (metric, gateway, tag) != (route.metric, route.gateway, route.tag):
            route.changed = True
        route.metric, route.gateway, route.tag = metric, gateway, tag
        return op

    def _answer(
        self, interface: str, source: Address, port: int, pkt: rip.Packet, now: float
    ) -> list[Reply]:
        """Answer a request (RFC 2453 3.9.1, RFC 2080 2.4.1), to the requester's address and port.

        A whole-table request from the RIP port comes from a router and gets
        what a regular update would send it (split horizon); one from any
        other port is a query and gets the table as it is, as do specific
        requests (our metric for each prefix asked about, 16 if unknown).
        """
        if pkt.whole_table_request:
            entries = self._entries(interface, False, split_horizon=port == self.port)
        else:
            entries = []
            for entry in pkt.entries:
                route = self.routes.get(entry.prefix)
                if route is None:
                    entries.append(Entry(entry.prefix, INFINITY, tag=entry.tag))
                else:
                    entries.append(Entry(entry.prefix, route.metric, tag=route.tag))
        return [(source, port, data) for data in self._packets(RESPONSE, entries, now)]

    # -- sending -------------------------------------------------------------------

    def _next_sequence(self, now: float) -> int:
        """Return a sequence number above the last, near the wall clock (as BIRD does)."""
        self.sequence = max(self.sequence + 1, int(now + self.clock_offset)) & 0xFFFFFFFF
        return self.sequence

    def _build(self, command: int, entries: list[Entry], now: float) -> bytes:
        if self.family == 6:
            return rip.build_ng(command, entries)
        sequence = self._next_sequence(now) if self.auth.kind == "md5" else 0
        return rip.build_v2(command, entries, self.auth, sequence)

    def _packets(self, command: int, entries: list[Entry], now: float) -> list[bytes]:
        """Return ``entries`` in as many packets as they need."""
        size = rip.max_entries(self.auth) if self.family == 4 else rip.MAX_ENTRIES
        return [
            self._build(command, entries[i : i + size], now) for i in range(0, len(entries), size)
        ]

    def _entries(
        self, interface: str, only_changed: bool, split_horizon: bool = True
    ) -> list[Entry]:
        """Return the routes to advertise on ``interface``, poisoned where learned there."""
        entries = []
        for route in sorted(self.routes.values(), key=lambda r: (r.prefix.prefixlen, r.prefix)):
            if only_changed and not route.changed:
                continue
            metric = route.metric
            if split_horizon and not route.connected and route.interface == interface:
                metric = INFINITY  # split horizon with poisoned reverse
            entries.append(Entry(route.prefix, metric, tag=route.tag))
        return entries

    def request_table(self, now: float = 0.0) -> bytes:
        """Return a request for the whole table (sent when an interface comes up)."""
        everything = (
            ipaddress.IPv4Network("0.0.0.0/0")
            if self.family == 4
            else ipaddress.IPv6Network("::/0")
        )
        return self._build(REQUEST, [Entry(everything, INFINITY)], now)

    def _schedule_triggered(self, now: float) -> None:
        if any(r.changed for r in self.routes.values()) and self.next_triggered is None:
            earliest = self.last_triggered + self.rng.uniform(1, 5)
            self.next_triggered = max(now, earliest)

    def tick(self, now: float) -> tuple[list[FibOp], list[tuple[str, bytes]]]:
        """Run due timers: expiry, garbage collection, regular and triggered updates.

        Returns forwarding changes and (interface, packet) multicasts to send.
        """
        ops: list[FibOp] = []
        for prefix, route in list(self.routes.items()):
            if route.connected:
                continue
            if route.garbage_at is None and route.metric < INFINITY and now >= route.expires:
                route.metric = INFINITY
                route.garbage_at = now + self.timers.garbage
                route.changed = True
                self.stats.routes_timed_out += 1
                ops.append(FibOp("delete", prefix))
            elif route.garbage_at is not None and now >= route.garbage_at:
                del self.routes[prefix]
        forget = now - self.timers.timeout - self.timers.garbage
        for key, neighbour in list(self.neighbours.items()):
            if neighbour.heard < forget:
                del self.neighbours[key]
        self._schedule_triggered(now)
        out: list[tuple[str, bytes]] = []
        if now >= self.next_update:
            for interface in self.interfaces:
                entries = self._entries(interface, only_changed=False)
                out.extend((interface, p) for p in self._packets(RESPONSE, entries, now))
            self.stats.updates_sent += 1
            for route in self.routes.values():
                route.changed = False
            self.next_triggered = None
            self.next_update = now + self.timers.update * self.rng.uniform(0.85, 1.15)
        elif self.next_triggered is not None and now >= self.next_triggered:
            for interface in self.interfaces:
                entries = self._entries(interface, only_changed=True)
                out.extend((interface, p) for p in self._packets(RESPONSE, entries, now))
            self.stats.triggered_sent += 1
            for route in self.routes.values():
                route.changed = False
            self.next_triggered = None
            self.last_triggered = now
        return ops, out

    def next_deadline(self) -> float:
        """Return when :meth:`tick` next has work."""
        deadlines = [self.next_update]
        if self.next_triggered is not None:
            deadlines.append(self.next_triggered)
        for route in self.routes.values():
            if route.connected:
                continue
            deadlines.append(route.garbage_at if route.garbage_at is not None else route.expires)
        return min(deadlines)

    def installed(self) -> list[Route]:
        """Return the learned routes that should be in the forwarding table."""
        return [r for r in self.routes.values() if not r.connected and r.metric < INFINITY]


_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
