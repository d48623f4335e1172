"""A DHCP client's state machine for one interface (RFC 2131 4.4), sans-IO.

:class:`Client` takes the time and the server's messages and returns what
to do: :class:`Send` a message (broadcast, or unicast to the server when
renewing), :class:`Bound` (configure this lease) or :class:`Unbound` (take
the address away).  It asks for broadcast replies (the broadcast bit)
until it has an address, so a server's replies reach a vnet that does not
yet own the offered address.

States: INIT → SELECTING (DISCOVER sent) → REQUESTING (REQUEST for the
first offer) → BOUND; at T1 RENEWING (unicast REQUEST to the server), at
T2 REBINDING (broadcast REQUEST), at the end of the lease INIT again.  A
NAK, or the lease running out, unbinds and starts over.  Retransmissions
back off 4, 8, 16 … 64 s (RFC 2131 4.1), renewals are retried at half the
time left (at least 60 s, RFC 2131 4.4.5).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from vrouter.wire import dhcp as wire
from vrouter.wire.dhcp import DhcpMessage

INIT = "init"
SELECTING = "selecting"
REQUESTING = "requesting"
BOUND = "bound"
RENEWING = "renewing"
REBINDING = "rebinding"

PARAMS = bytes([
    wire.OPT_SUBNET_MASK, wire.OPT_ROUTER, wire.OPT_DNS, wire.OPT_DOMAIN, wire.OPT_MTU,
    wire.OPT_BROADCAST, wire.OPT_LEASE_TIME, wire.OPT_SERVER_ID, wire.OPT_T1, wire.OPT_T2,
    wire.OPT_CLASSLESS_ROUTES,
])  # fmt: skip
DEFAULT_LEASE = 3600
FIRST_RETRY = 4.0
LAST_RETRY = 64.0
RESTART = 2.0
"""Seconds before starting over after a NAK or a lease that ran out."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message``: to the server ``server`` (unicast), or broadcast when None."""

    message: DhcpMessage
    server: bytes | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """What a server granted."""

    address: IPv4Interface
    router: IPv4Address | None
    server: bytes
    lease_time: int
    t1: int
    t2: int
    dns: tuple[IPv4Address, ...] = ()


@dataclass(frozen=True, slots=True)
class Bound:
    """Configure ``lease`` (replacing ``previous``, if another)."""

    lease: Lease
    previous: Lease | None


@dataclass(frozen=True, slots=True)
class Unbound:
    """Take the address of ``lease`` away."""

    lease: Lease


Action = Send | Bound | Unbound


def _u32(value: bytes | None) -> int | None:
    return int.from_bytes(value, "big") if value is not None and len(value) == 4 else None


class Client:
    """The DHCP exchange of one interface."""

    def __init__(self, mac: bytes, rng: random.Random | None = None, hostname: str = "") -> None:
        self.mac = mac
        self.rng = rng or random.Random()
        self.hostname = hostname
        self.state = INIT
        self.xid = 0
        self.lease: Lease | None = None
        self.obtained = 0.0
        """When the lease was granted (the REQUEST's time, RFC 2131 4.4.1)."""
        self.sent_at = 0.0
        self.offer: DhcpMessage | None = None
        self.deadline: float | None = None
        self.retry = FIRST_RETRY
        self.stats: dict[str, int] = {"offers": 0, "acks": 0, "naks": 0, "ignored": 0}

    # --- messages -------------------------------------------------------

    def _message(self, kind: int, broadcast: bool) -> DhcpMessage:
        message = DhcpMessage(
            wire.BOOTREQUEST, self.xid, self.mac, flags=wire.FLAG_BROADCAST if broadcast else 0
        )
        message.set(wire.OPT_MESSAGE_TYPE, bytes((kind,)))
        message.set(wire.OPT_CLIENT_ID, b"\x01" + self.mac)
        message.set(wire.OPT_PARAMS, PARAMS)
        message.set(wire.OPT_MAX_SIZE, (1500).to_bytes(2, "big"))
        if self.hostname:
            message.set(wire.OPT_HOSTNAME, self.hostname.encode()[:63])
        return message

    def _discover(self, now: float) -> list[Action]:
        self.state = SELECTING
        self.xid = self.rng.getrandbits(32)
        self.sent_at = now
        self.retry = FIRST_RETRY
        self.deadline = now + self._jitter(self.retry)
        return [Send(self._message(wire.DISCOVER, True))]

    def _request(self, now: float) -> list[Action]:
        """The REQUEST of the current state (SELECTING's answer, a renewal, a rebinding)."""
        if self.state == REQUESTING:
            assert self.offer is not None
            message = self._message(wire.REQUEST, True)
            message.set(wire.OPT_REQUESTED_IP, self.offer.yiaddr)
            server = self.offer.address_option(wire.OPT_SERVER_ID)
            if server is not None:
                message.set(wire.OPT_SERVER_ID, server)
            return [Send(message)]
        assert self.lease is not None
        message = self._message(wire.REQUEST, self.state == REBINDING)
        message.ciaddr = self.lease.address.ip.packed
        return [Send(message, self.lease.server if self.state == RENEWING else None)]

    def _jitter(self, seconds: float) -> float:
        return seconds + self.rng.uniform(-1.0, 1.0)

    # --- entry points ---------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Begin: DISCOVER."""
        return self._discover(now)

    def stop(self) -> list[Action]:
        """End: the address goes (no RELEASE is sent; the lease may be reused later)."""
        lease, self.lease = self.lease, None
        self.state = INIT
        self.deadline = None
        return [Unbound(lease)] if lease is not None else []

    def receive(self, message: DhcpMessage, now: float) -> list[Action]:
        """Take a server's reply."""
        if message.op != wire.BOOTREPLY or message.xid != self.xid or message.chaddr != self.mac:
            self.stats["ignored"] += 1
            return []
        kind = message.type
        if kind == wire.OFFER and self.state == SELECTING:
            if message.yiaddr == wire.ZERO or message.address_option(wire.OPT_SERVER_ID) is None:
                self.stats["ignored"] += 1
                return []
            self.stats["offers"] += 1
            self.offer = message
            self.state = REQUESTING
            self.sent_at = now
            self.retry = FIRST_RETRY
            self.deadline = now + self._jitter(self.retry)
            return self._request(now)
        if kind == wire.ACK and self.state in (REQUESTING, RENEWING, REBINDING):
            return self._bind(message, now)
        if kind == wire.NAK and self.state in (REQUESTING, RENEWING, REBINDING):
            self.stats["naks"] += 1
            actions = self.stop()
            self.deadline = now + RESTART
            return actions
        self.stats["ignored"] += 1
        return []

    def _bind(self, message: DhcpMessage, now: float) -> list[Action]:
        mask = message.address_option(wire.OPT_SUBNET_MASK)
        try:
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{IPv4Address(mask)}").prefixlen if mask else 24
            address = IPv4Interface((message.yiaddr, prefix))
        except ValueError:
            self.stats["ignored"] += 1
            return []
        routers = message.options.get(wire.OPT_ROUTER, b"")
        dns = message.options.get(wire.OPT_DNS, b"")
        time_ = _u32(message.options.get(wire.OPT_LEASE_TIME)) or DEFAULT_LEASE
        t1 = _u32(message.options.get(wire.OPT_T1)) or time_ // 2
        t2 = _u32(message.options.get(wire.OPT_T2)) or time_ * 7 // 8
        t2 = min(max(t2, t1), time_)
        server = message.address_option(wire.OPT_SERVER_ID) or (
            self.lease.server if self.lease is not None else wire.ZERO
        )
        lease = Lease(
            address,
            IPv4Address(routers[:4]) if len(routers) >= 4 else None,
            server,
            time_,
            min(t1, t2),
            t2,
            tuple(IPv4Address(dns[i : i + 4]) for i in range(0, len(dns) - 3, 4)),
        )
        previous = self.lease
        self.lease = lease
        self.obtained = self.sent_at
        self.state = BOUND
        self.stats["acks"] += 1
        self.deadline = self.obtained + lease.t1
        return [Bound(lease, previous)]

    def timer(self, now: float) -> list[Action]:
        """Act on a deadline that passed (retransmit, renew, rebind, expire)."""
        if self.deadline is None or now < self.deadline:
            return []
        if self.state in (INIT, SELECTING):
            if self.state == SELECTING and self.retry < LAST_RETRY:
                self.retry *= 2
                self.deadline = now + self._jitter(self.retry)
                return [Send(self._message(wire.DISCOVER, True))]
            return self._discover(now)
        if self.state == REQUESTING:
            if self.retry >= LAST_RETRY / 4:  # no ACK after a few tries: start over
                return self._discover(now)
            self.retry *= 2
            self.deadline = now + self._jitter(self.retry)
            return self._request(now)
        lease = self.lease
        assert lease is not None
        end, t2 = self.obtained + lease.lease_time, self.obtained + lease.t2
        if now >= end:
            actions = self.stop()
            return actions + self._discover(now)
        if now >= t2:
            self.state = REBINDING
            self.deadline = now + max(min((end - now) / 2, 60.0), 1.0)
        else:
            self.state = RENEWING
            self.deadline = now + max(min((t2 - now) / 2, 60.0), 1.0)
        self.xid = self.rng.getrandbits(32)
        self.sent_at = now
        return self._request(now)
