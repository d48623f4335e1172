"""A DHCPv4 server's decisions (RFC 2131 4.3), sans-IO.

:class:`Server` holds the pools of one vnet and its leases.  ``handle``
takes one parsed request, where it arrived (the receiving interface's
addresses, or the relay's ``giaddr``) and the time, and returns the reply
to send, if any; where the reply goes (RFC 2131 4.1) is
:func:`destination`'s business, and writing leases to disk the caller's.

Guarantees:

- a request is served from the pool whose subnet holds ``giaddr`` when
  relayed, ``ciaddr`` when renewing, else the subnet of an address of the
  receiving interface; a request no pool serves is dropped and counted;
- an address is handed to one client at a time: a static lease (by MAC) is
  never offered to another client, an address a client declined is held
  back for a lease time, addresses the vnet itself holds are never offered;
- a client gets its previous address back while nobody else took it (after
  a RELEASE or expiry too), else the address it asks for if free, else the
  lowest free one, else the one whose lease expired longest ago;
- a REQUEST for an address the client may not have is NAKed; a client this
  server has no record of in INIT-REBOOT gets no answer (RFC 2131 4.3.2);
- every request that gets no reply is counted under a reason.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Container
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from vrouter.wire import dhcp as wire
from vrouter.wire.dhcp import DhcpMessage

OFFERED = "offered"
BOUND = "bound"
RELEASED = "released"
DECLINED = "declined"

OFFER_HOLD = 60.0
"""Seconds an offered address is kept for the client that was offered it."""

MAX_LEASES = 65536
"""Leases one vnet keeps (per pool ranges are checked against this at config time)."""


@dataclass(frozen=True, slots=True)
class StaticLease:
    """An address always given to one hardware address."""

    mac: bytes
    address: IPv4Address
    hostname: str | None = None


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """One subnet's addresses and the options handed out with them."""

    subnet: IPv4Network
    first: IPv4Address
    last: IPv4Address
    lease_time: int = 3600
    router: IPv4Address | None = None
    dns: tuple[IPv4Address, ...] = ()
    domain: str | None = None
    mtu: int | None = None
    routes: tuple[tuple[IPv4Network, IPv4Address], ...] = ()
    """Classless static routes (RFC 3442); the default route via ``router`` is added."""
    static: tuple[StaticLease, ...] = ()


@dataclass(slots=True)
class Lease:
    """One client's address; ``expires`` is on the caller's clock."""

    client: str
    mac: bytes
    address: bytes
    pool: IPv4Network
    state: str
    expires: float
    hostname: str = ""
    circuit: str = ""
    """The relay's circuit id (option 82) the client was last heard through."""


@dataclass(slots=True)
class DhcpStats:
    """Counters of one vnet's DHCP server."""

    received: Counter[str] = field(default_factory=Counter)
    """Requests received, by message type (discover, request, …)."""
    relayed: Counter[str] = field(default_factory=Counter)
    """Messages relayed, by direction (``to_server``, ``to_client``)."""
    sent: Counter[str] = field(default_factory=Counter)
    """Replies sent, by message type (offer, ack, nak)."""
    drops: Counter[str] = field(default_factory=Counter)
    """Requests dropped without reply, by reason (malformed ones by their parse error)."""
    expired: int = 0
    """Bound leases that ran out."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """Where a request came from, as the server needs to know it."""

    addresses: tuple[IPv4Interface, ...]
    """IPv4 addresses of the receiving interface."""
    relay_source: bytes | None = None
    """The vnet's address toward ``giaddr`` (its server identifier for relayed requests)."""
    local: Container[bytes] = frozenset()
    """Addresses the vnet holds (never offered)."""


class Pool:
    """A pool's settings and the indexes built from them."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self.first = int(settings.first)
        self.last = int(settings.last)
        self.static_by_mac = {s.mac: s for s in settings.static}
        self.static_addresses = {s.address.packed: s for s in settings.static}
        self.cursor = self.first

    def in_range(self, address: bytes) -> bool:
        """Return True if ``address`` is one of the pool's dynamic addresses."""
        value = int.from_bytes(address, "big")
        return self.first <= value <= self.last and address not in self.static_addresses

    def options(self, server_id: bytes, lease: bool) -> list[tuple[int, bytes]]:
        """Return the options of an ACK or OFFER (``lease``: with lease times)."""
        s = self.settings
        out: list[tuple[int, bytes]] = [(wire.OPT_SERVER_ID, server_id)]
        if lease:
            time = s.lease_time
            out += [
                (wire.OPT_LEASE_TIME, time.to_bytes(4, "big")),
                (wire.OPT_T1, (time // 2).to_bytes(4, "big")),
                (wire.OPT_T2, (time * 7 // 8).to_bytes(4, "big")),
            ]
        out += [
            (wire.OPT_SUBNET_MASK, s.subnet.netmask.packed),
            (wire.OPT_BROADCAST, s.subnet.broadcast_address.packed),
        ]
        if s.router is not None:
            out.append((wire.OPT_ROUTER, s.router.packed))
        if s.dns:
            out.append((wire.OPT_DNS, wire.addresses([a.packed for a in s.dns])))
        if s.domain:
            out.append((wire.OPT_DOMAIN, s.domain.encode()))
        if s.mtu is not None:
            out.append((wire.OPT_MTU, s.mtu.to_bytes(2, "big")))
        if s.routes:
            # A client that takes option 121 ignores the router option (RFC 3442).
            routes = [(n, r.packed) for n, r in s.routes]
            if s.router is not None:
                routes.append((ipaddress.IPv4Network("0.0.0.0/0"), s.router.packed))
            out.append((wire.OPT_CLASSLESS_ROUTES, wire.classless_routes(routes)))
        return out


def client_key(message: DhcpMessage) -> str:
    """Return how a client is known: its client identifier (option 61), else its chaddr."""
    ident = message.options.get(wire.OPT_CLIENT_ID)
    if ident:
        return "id:" + ident.hex()
    return "hw:" + message.chaddr.hex()


class Server:
    """The pools of one vnet and the leases handed out from them."""

    def __init__(self, pools: tuple[PoolSettings, ...]) -> None:
        self.pools = [Pool(p) for p in pools]
        self.by_client: dict[str, Lease] = {}
        self.by_address: dict[bytes, Lease] = {}
        self.stats = DhcpStats()
        self.changed = False
        """Leases changed in a way that must reach stable storage before the reply goes."""
        self.dirty: set[bytes] = set()
        """Addresses whose lease changed since :meth:`records` last took them."""
        self.soonest: float | None = None
        """The earliest end of a lease bound since the caller last looked."""

    # --- leases --------------------------------------------------------

    def reconfigure(self, pools: tuple[PoolSettings, ...]) -> None:
        """Take new pools; leases outside every new pool's subnet are forgotten."""
        self.pools = [Pool(p) for p in pools]
        for lease in list(self.by_address.values()):
            pool = self._pool_holding(lease.address)
            if pool is None:
                self._forget(lease)
            else:
                lease.pool = pool.settings.subnet
        self.changed = True

    def _forget(self, lease: Lease) -> None:
        if lease.state != OFFERED:
            self.dirty.add(lease.address)
        if self.by_client.get(lease.client) is lease:
            del self.by_client[lease.client]
        if self.by_address.get(lease.address) is lease:
            del self.by_address[lease.address]

    def _pool_holding(self, address: bytes) -> Pool | None:
        target = IPv4Address(address)
        return next((p for p in self.pools if target in p.settings.subnet), None)

    def active(self, now: float) -> int:
        """Return how many leases are bound and not expired."""
        return sum(1 for lease in self.by_address.values() if _bound(lease, now))

    def expire(self, now: float) -> bool:
        """Count bound leases that ran out (they stay, for the client to come back); True if any."""
        changed = False
        for lease in self.by_address.values():
            if lease.state == BOUND and lease.expires <= now:
                lease.state = RELEASED
                self.stats.expired += 1
                self.dirty.add(lease.address)
                changed = True
        return changed

    def next_expiry(self) -> float | None:
        """Return when the next bound lease runs out."""
        return min(
            (lease.expires for lease in self.by_address.values() if lease.state == BOUND),
            default=None,
        )

    def records(self, now: float, changed_only: bool = False) -> list[dict[str, object]]:
        """Return the leases to keep across a restart (not mere offers), ``remaining`` in s.

        ``changed_only``: only those changed since the last call, an address
        whose lease went written with the state ``free``.  Either way the
        changes are taken.
        """
        dirty, self.dirty = self.dirty, set()
        if not changed_only:
            return [_record(lease, now) for lease in self.by_address.values()
                    if lease.state != OFFERED]  # fmt: skip
        out: list[dict[str, object]] = []
        for address in sorted(dirty):
            lease = self.by_address.get(address)
            if lease is not None and lease.state != OFFERED:
                out.append(_record(lease, now))
            else:
                out.append({"address": str(IPv4Address(address)), "state": "free"})
        return out

    def restore(self, records: list[dict[str, object]], now: float) -> int:
        """Take leases written by :meth:`records`, a later record of an address or a client
        winning over an earlier one; skip any no pool holds; return how many."""
        taken = 0
        seen: set[bytes] = set()
        for record in reversed(records):
            try:
                address = IPv4Address(str(record["address"])).packed
                if address in seen:
                    continue
                seen.add(address)
                mac = bytes.fromhex(str(record["mac"]))
                client = str(record["client"])
                state = str(record["state"])
                remaining = float(str(record["remaining"]))
                hostname = str(record.get("hostname") or "")
            except (KeyError, ValueError):
                continue
            pool = self._pool_holding(address)
            if pool is None or state not in (BOUND, RELEASED, DECLINED):
                continue
            if address in self.by_address or client in self.by_client:
                continue
            lease = Lease(client, mac, address, pool.settings.subnet, state, now + remaining,
                          hostname)  # fmt: skip
            self.by_address[address] = lease
            if state != DECLINED:
                self.by_client[client] = lease
            taken += 1
        return taken

    def leases(self, now: float) -> list[dict[str, object]]:
        """Return every lease as plain data (``vrouterctl dhcp VNET leases``)."""
        rows = []
        for lease in sorted(self.by_address.values(), key=lambda item: item.address):
            state = lease.state
            if state == BOUND and lease.expires <= now:
                state = "expired"
            rows.append(
                {
                    "address": str(IPv4Address(lease.address)),
                    "mac": wire.mac_text(lease.mac),
                    "client": lease.client,
                    "hostname": lease.hostname,
                    "state": state,
                    "expires_in": max(0, round(lease.expires - now)),
                    "pool": str(lease.pool),
                    "circuit": lease.circuit,
                }
            )
        return rows

    # --- requests ------------------------------------------------------

    def handle(self, message: DhcpMessage, arrival: Arrival, now: float) -> DhcpMessage | None:
        """Answer one request; return the reply (None: no reply, counted)."""
        stats = self.stats
        kind = message.type
        stats.received[wire.TYPE_NAMES[kind]] += 1
        if message.op != wire.BOOTREQUEST:
            stats.drops["not_request"] += 1
            return None
        if message.htype != wire.HTYPE_ETHER or len(message.chaddr) != 6:
            stats.drops["bad_htype"] += 1
            return None
        found = self._select(message, arrival)
        if found is None:
            stats.drops["no_pool"] += 1
            return None
        pool, server_id = found
        if kind == wire.DISCOVER:
            return self._discover(message, pool, server_id, arrival, now)
        if kind == wire.REQUEST:
            return self._request(message, pool, server_id, arrival, now)
        if kind == wire.DECLINE:
            self._decline(message, pool, server_id, now)
        elif kind == wire.RELEASE:
            self._release(message, server_id, now)
        elif kind == wire.INFORM:
            return self._inform(message, pool, server_id)
        else:
            stats.drops["not_request"] += 1
        return None

    def _select(self, message: DhcpMessage, arrival: Arrival) -> tuple[Pool, bytes] | None:
        """Return the pool serving ``message`` and the server identifier to use with it."""
        if message.giaddr != wire.ZERO:
            pool = self._pool_holding(message.giaddr)
            if pool is None or arrival.relay_source is None:
                return None
            return pool, arrival.relay_source
        if message.ciaddr != wire.ZERO:
            pool = self._pool_holding(message.ciaddr)
            if pool is not None:
                subnet = pool.settings.subnet
                mine = next((a for a in arrival.addresses if a.network == subnet), None)
                if mine is not None:
                    return pool, mine.ip.packed
                if arrival.addresses:  # renewing from beyond a relay, unicast to us
                    return pool, arrival.addresses[0].ip.packed
        for address in arrival.addresses:
            for pool in self.pools:
                if pool.settings.subnet == address.network:
                    return pool, address.ip.packed
        return None

    def _free(self, pool: Pool, address: bytes, client: str, arrival: Arrival, now: float) -> bool:
        if not pool.in_range(address) or address in arrival.local:
            return False
        lease = self.by_address.get(address)
        if lease is None or (lease.client == client and lease.state != DECLINED):
            return True
        return lease.expires <= now

    def _allocate(
        self, message: DhcpMessage, pool: Pool, client: str, arrival: Arrival, now: float
    ) -> bytes | None:
        static = pool.static_by_mac.get(message.chaddr)
        if static is not None:
            return static.address.packed
        lease = self.by_client.get(client)
        if (
            lease is not None
            and lease.pool == pool.settings.subnet
            and self._free(pool, lease.address, client, arrival, now)
        ):
            return lease.address
        requested = message.address_option(wire.OPT_REQUESTED_IP)
        if requested is not None and self._free(pool, requested, client, arrival, now):
            return requested
        span = pool.last - pool.first + 1
        start = pool.cursor
        for step in range(span):
            value = pool.first + (start - pool.first + step) % span
            candidate = value.to_bytes(4, "big")
            if candidate not in self.by_address and self._free(
                pool, candidate, client, arrival, now
            ):
                pool.cursor = value + 1 if value < pool.last else pool.first
                return candidate
        expired = sorted(
            (
                old
                for old in self.by_address.values()
                if old.pool == pool.settings.subnet
                and self._free(pool, old.address, client, arrival, now)
            ),
            key=lambda old: old.expires,
        )
        return expired[0].address if expired else None

    def _take(
        self, pool: Pool, message: DhcpMessage, client: str, address: bytes, state: str,
        expires: float,
    ) -> Lease:  # fmt: skip
        """Record ``address`` as ``client``'s, displacing any older holder of either."""
        old = self.by_client.get(client)
        if old is not None and old.address != address:
            self._forget(old)
        other = self.by_address.get(address)
        if other is not None and other.client != client:
            self._forget(other)
        lease = self.by_address.get(address)
        hostname = message.options.get(wire.OPT_HOSTNAME, b"").decode("ascii", "replace")
        if lease is None:
            lease = Lease(client, message.chaddr, address, pool.settings.subnet, state, expires)
            self.by_address[address] = lease
        lease.state = state
        lease.expires = expires
        lease.mac = message.chaddr
        lease.pool = pool.settings.subnet
        if hostname:
            lease.hostname = hostname[:64]
        agent = message.options.get(wire.OPT_RELAY_AGENT)
        if agent is not None:
            lease.circuit = _circuit(agent)
        static = pool.static_addresses.get(address)
        if static is not None and static.hostname:
            lease.hostname = static.hostname
        self.by_client[client] = lease
        return lease

    def _discover(
        self, message: DhcpMessage, pool: Pool, server_id: bytes, arrival: Arrival, now: float
    ) -> DhcpMessage | None:
        client = client_key(message)
        address = self._allocate(message, pool, client, arrival, now)
        if address is None:
            self.stats.drops["pool_exhausted"] += 1
            return None
        lease = self.by_client.get(client)
        if lease is None or lease.address != address or not _bound(lease, now):
            self._take(pool, message, client, address, OFFERED, now + OFFER_HOLD)
        return self._reply(message, wire.OFFER, address, pool.options(server_id, True))

    def _request(
        self, message: DhcpMessage, pool: Pool, server_id: bytes, arrival: Arrival, now: float
    ) -> DhcpMessage | None:
        client = client_key(message)
        lease = self.by_client.get(client)
        chosen = message.address_option(wire.OPT_SERVER_ID)
        requested = message.address_option(wire.OPT_REQUESTED_IP)
        static = pool.static_by_mac.get(message.chaddr)
        if chosen is not None:  # SELECTING
            if chosen != server_id:
                if lease is not None and lease.state == OFFERED:
                    self._forget(lease)  # the client took another server's offer
                self.stats.drops["other_server"] += 1
                return None
            if requested is None or lease is None or lease.address != requested:
                return self._nak(message, server_id, "not the address offered")
            return self._ack(message, pool, client, requested, server_id, now)
        if requested is not None:  # INIT-REBOOT
            if IPv4Address(requested) not in pool.settings.subnet:
                return self._nak(message, server_id, "wrong network")
            if static is not None:
                if static.address.packed != requested:
                    return self._nak(message, server_id, "not this client's address")
                return self._ack(message, pool, client, requested, server_id, now)
            if lease is not None and lease.address == requested:
                if self._free(pool, requested, client, arrival, now):
                    return self._ack(message, pool, client, requested, server_id, now)
                return self._nak(message, server_id, "address no longer available")
            if lease is not None or not self._free(pool, requested, client, arrival, now):
                return self._nak(message, server_id, "not this client's address")
            self.stats.drops["unknown_client"] += 1
            return None
        if message.ciaddr != wire.ZERO:  # RENEWING or REBINDING
            address = message.ciaddr
            if (static is not None and static.address.packed == address) or (
                lease is not None
                and lease.address == address
                and self._free(pool, address, client, arrival, now)
            ):
                return self._ack(message, pool, client, address, server_id, now)
            if IPv4Address(address) in pool.settings.subnet:
                return self._nak(message, server_id, "not this client's address")
            self.stats.drops["unknown_client"] += 1
            return None
        self.stats.drops["bad_request"] += 1
        return None

    def _ack(
        self, message: DhcpMessage, pool: Pool, client: str, address: bytes, server_id: bytes,
        now: float,
    ) -> DhcpMessage:  # fmt: skip
        lease = self._take(pool, message, client, address, BOUND, now + pool.settings.lease_time)
        self.dirty.add(address)
        if self.soonest is None or lease.expires < self.soonest:
            self.soonest = lease.expires
        self.changed = True
        return self._reply(message, wire.ACK, address, pool.options(server_id, True))

    def _nak(self, message: DhcpMessage, server_id: bytes, why: str) -> DhcpMessage:
        reply = self._reply(message, wire.NAK, wire.ZERO, [(wire.OPT_SERVER_ID, server_id)])
        reply.set(wire.OPT_MESSAGE, why.encode())
        reply.ciaddr = wire.ZERO
        if message.giaddr != wire.ZERO:
            reply.flags |= wire.FLAG_BROADCAST  # RFC 2131 4.3.2: the relay broadcasts it
        return reply

    def _decline(self, message: DhcpMessage, pool: Pool, server_id: bytes, now: float) -> None:
        client = client_key(message)
        lease = self.by_client.get(client)
        requested = message.address_option(wire.OPT_REQUESTED_IP)
        chosen = message.address_option(wire.OPT_SERVER_ID)
        if chosen != server_id or lease is None or lease.address != requested:
            self.stats.drops["bad_decline"] += 1
            return
        del self.by_client[client]
        lease.state = DECLINED
        lease.client = "declined"
        lease.expires = now + pool.settings.lease_time
        self.dirty.add(lease.address)
        self.changed = True

    def _release(self, message: DhcpMessage, server_id: bytes, now: float) -> None:
        lease = self.by_client.get(client_key(message))
        chosen = message.address_option(wire.OPT_SERVER_ID)
        if (chosen is not None and chosen != server_id) or lease is None or (
            lease.address != message.ciaddr
        ):
            self.stats.drops["bad_release"] += 1
            return
        lease.state = RELEASED
        lease.expires = now
        self.dirty.add(lease.address)
        self.changed = True

    def _inform(self, message: DhcpMessage, pool: Pool, server_id: bytes) -> DhcpMessage:
        reply = self._reply(message, wire.ACK, wire.ZERO, pool.options(server_id, False))
        return reply

    def _reply(
        self, message: DhcpMessage, kind: int, address: bytes, options: list[tuple[int, bytes]]
    ) -> DhcpMessage:
        reply = DhcpMessage(
            wire.BOOTREPLY,
            message.xid,
            message.chaddr,
            message.htype,
            flags=message.flags,
            ciaddr=message.ciaddr,
            yiaddr=address,
            giaddr=message.giaddr,
        )
        reply.set(wire.OPT_MESSAGE_TYPE, bytes((kind,)))
        for code, value in options:
            reply.set(code, value)
        agent = message.options.get(wire.OPT_RELAY_AGENT)
        if agent is not None:  # RFC 3046 2.2: echoed back to the relay
            reply.set(wire.OPT_RELAY_AGENT, agent)
        self.stats.sent[wire.TYPE_NAMES[kind]] += 1
        return reply


def _record(lease: Lease, now: float) -> dict[str, object]:
    return {
        "client": lease.client,
        "mac": lease.mac.hex(),
        "address": str(IPv4Address(lease.address)),
        "state": lease.state,
        "remaining": max(0.0, lease.expires - now),
        "hostname": lease.hostname,
    }


def _circuit(agent: bytes) -> str:
    """Return the circuit id sub-option of option 82 as text ("" if none)."""
    at = 0
    while at + 2 <= len(agent):
        code, length = agent[at], agent[at + 1]
        if code == 1:
            return agent[at + 2 : at + 2 + length].decode("ascii", "replace")[:64]
        at += 2 + length
    return ""


def _bound(lease: Lease, now: float) -> bool:
    return lease.state == BOUND and lease.expires > now


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a reply goes (RFC 2131 4.1): an IP address and port, and how to reach it."""

    address: bytes
    port: int
    mac: bytes | None
    """The Ethernet destination when sent on the link (None: route it, to a relay)."""


BROADCAST_MAC = b"\xff" * 6


def destination(request: DhcpMessage, reply: DhcpMessage) -> Destination:
    """Return where ``reply`` to ``request`` goes (RFC 2131 4.1)."""
    if request.giaddr != wire.ZERO:
        return Destination(request.giaddr, wire.SERVER_PORT, None)
    if reply.type == wire.NAK:
        return Destination(b"\xff" * 4, wire.CLIENT_PORT, BROADCAST_MAC)
    if request.ciaddr != wire.ZERO:
        return Destination(request.ciaddr, wire.CLIENT_PORT, request.chaddr)
    if request.broadcast:
        return Destination(b"\xff" * 4, wire.CLIENT_PORT, BROADCAST_MAC)
    # Unicast to the client's hardware address and the offered address, without ARP.
    return Destination(reply.yiaddr, wire.CLIENT_PORT, request.chaddr)
