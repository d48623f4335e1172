"""ARP (RFC 826): the per-vnet neighbour cache, resolution and its hold queue.

States: ``incomplete`` (request sent, packets held), ``reachable`` (answer
seen within ``reachable_time``), ``stale`` (older; still used, and each use
sends a refresh request at most once per ``RETRY_INTERVAL``).  Entries idle
for ``stale_time`` are swept.  An incomplete entry retries ``MAX_TRIES``
times, then drops its queue and answers each held packet with ICMP host
unreachable (RFC 1812 4.3.3.1).  All timing is deadlines on the vnet.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core.timers import Timer
from vrouter.wire.arp import OP_REPLY, OP_REQUEST, ArpPacket
from vrouter.wire.errors import WireError
from vrouter.wire.ethernet import BROADCAST, ETHERTYPE_ARP, HEADER, HEADER_LEN, ZERO

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.arp")

INCOMPLETE = "incomplete"
REACHABLE = "reachable"
STALE = "stale"

RETRY_INTERVAL = 1.0
"""Seconds between requests for an unanswered neighbour."""
MAX_TRIES = 3
"""Requests sent before a resolution fails."""
HOLD_LIMIT = 16
"""Packets held per incomplete neighbour (FreeBSD ``arp_maxhold``); the oldest goes first."""
SWEEP_INTERVAL = 30.0
"""Seconds between sweeps of idle stale entries."""


@dataclass(slots=True)
class Neighbour:
    """One cache entry: an IPv4 address on an interface and its MAC."""

    ifnet: Ifnet
    ip: bytes
    state: str
    mac: bytes = ZERO
    confirmed: float = 0.0
    """When a packet from the neighbour last confirmed the mapping."""
    used: float = 0.0
    """When the entry last carried a packet."""
    tries: int = 0
    last_request: float = -1e9
    hold: deque[bytearray] = field(default_factory=deque)
    timer: Timer | None = None

    def describe(self, now: float) -> dict[str, object]:
        """Return the entry as plain data for the API."""
        return {
            "address": str(ipaddress.IPv4Address(self.ip)),
            "mac": self.mac.hex(":") if self.state != INCOMPLETE else None,
            "interface": self.ifnet.name,
            "state": self.state,
            "age": round(now - self.confirmed, 1) if self.state != INCOMPLETE else None,
            "held": len(self.hold),
        }


@dataclass(slots=True)
class ArpTable:
    """A vnet's neighbour cache and its knobs."""

    entries: dict[tuple[str, bytes], Neighbour] = field(default_factory=dict)
    """Entries by (interface name, IPv4 address)."""
    reachable_time: float = 300.0
    """Seconds a confirmed entry stays reachable (``net.link.ether.inet.max_age``-like)."""
    stale_time: float = 1200.0
    """Seconds an unused stale entry is kept (FreeBSD's ``arpt_keep``)."""
    max_entries: int = 65536
    """Entries allowed before new resolutions are refused."""
    sweeper: Timer | None = None
    generation: int = 0
    """Increases when an entry goes or its MAC changes (destination caches rebuild)."""
    unresolved: Callable[[Vnet, memoryview, float], None] | None = None
    """Told about each IP packet held for a neighbour that never answered (the IP
    layer answers it with ICMP host unreachable)."""

    def clear(self) -> None:
        """Forget every entry and cancel their timers."""
        for entry in self.entries.values():
            if entry.timer is not None:
                entry.timer.cancel()
        self.entries.clear()
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
        self.generation += 1


def _send(ifp: Ifnet, op: int, dst_mac: bytes, spa: bytes, tha: bytes, tpa: bytes) -> None:
    packet = ArpPacket(op, ifp.mac, spa, tha, tpa).emit()
    ifp.output(HEADER.pack(dst_mac, ifp.mac, ETHERTYPE_ARP) + packet)


def _source_for(ifp: Ifnet, target: bytes) -> bytes | None:
    """Return our address on ``ifp`` on the target's network (else the first)."""
    if not ifp.addresses:
        return None
    addr = ipaddress.IPv4Address(target)
    for iface in ifp.addresses:
        if addr in iface.network:
            return iface.ip.packed
    return ifp.addresses[0].ip.packed


def request(vnet: Vnet, ifp: Ifnet, target: bytes, dst_mac: bytes = BROADCAST) -> None:
    """Send a who-has for ``target`` out of ``ifp``."""
    spa = _source_for(ifp, target)
    if spa is None:
        return
    vnet.inet.arpstat.tx_requests += 1
    _send(ifp, OP_REQUEST, dst_mac, spa, ZERO, target)


def announce(vnet: Vnet, ifp: Ifnet, address: bytes) -> None:
    """Send a gratuitous ARP request for our ``address`` (RFC 5227 announcement)."""
    vnet.inet.arpstat.tx_requests += 1
    _send(ifp, OP_REQUEST, BROADCAST, address, ZERO, address)


def input(ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
    """Process an ARP packet received on ``ifp`` (RFC 826 packet reception)."""
    vnet = ifp.vnet
    inet = vnet.inet
    stat = inet.arpstat
    try:
        pkt = ArpPacket.parse(memoryview(frame)[HEADER_LEN:])
    except WireError as err:
        stat.rx_dropped += 1
        ifp.drop(err.reason, error=True)
        return
    if pkt.op == OP_REQUEST:
        stat.rx_requests += 1
    else:
        stat.rx_replies += 1
    if pkt.sha[0] & 1 or pkt.sha == ZERO:
        stat.rx_dropped += 1
        ifp.drop("arp_bad_sender")
        return
    if pkt.sha == ifp.mac:
        ifp.drop("arp_own_frame")
        return
    if pkt.spa in inet.local:
        stat.dupaddr += 1
        ifp.drop("arp_dupaddr")
        log.warning(
            "vnet %s: %s: station %s claims our address %s",
            vnet.name,
            ifp.name,
            pkt.sha.hex(":"),
            ipaddress.IPv4Address(pkt.spa),
        )
        return
    target_ours = inet.local.get(pkt.tpa) is ifp
    table = inet.arp
    entry = table.entries.get((ifp.name, pkt.spa))
    # RFC 826: update an existing entry whatever the target; create one only
    # when the packet is for us.  A probe (sender 0.0.0.0) teaches nothing.
    if pkt.spa != b"\x00\x00\x00\x00":
        if entry is not None:
            _confirm(vnet, entry, pkt.sha, now)
        elif target_ours and _on_link(ifp, pkt.spa):
            entry = _new_entry(vnet, ifp, pkt.spa, now)
            if entry is not None:
                _confirm(vnet, entry, pkt.sha, now)
    if pkt.op == OP_REQUEST and target_ours:
        stat.tx_replies += 1
        _send(ifp, OP_REPLY, pkt.sha, pkt.tpa, pkt.sha, pkt.spa)


def _on_link(ifp: Ifnet, address: bytes) -> bool:
    addr = ipaddress.IPv4Address(address)
    return any(addr in iface.network for iface in ifp.addresses)


def _new_entry(vnet: Vnet, ifp: Ifnet, ip: bytes, now: float) -> Neighbour | None:
    table = vnet.inet.arp
    if len(table.entries) >= table.max_entries:
        vnet.inet.arpstat.table_full += 1
        return None
    entry = Neighbour(ifp, ip, INCOMPLETE, used=now)
    table.entries[(ifp.name, ip)] = entry
    if table.sweeper is None:
        table.sweeper = vnet.timers.schedule(now + SWEEP_INTERVAL, lambda t: _sweep(vnet, t))
    return entry


def _confirm(vnet: Vnet, entry: Neighbour, mac: bytes, now: float) -> None:
    """Record ``mac`` for ``entry`` and release its held packets."""
    if entry.mac != mac and entry.state != INCOMPLETE:  # a resolved MAC changed
        vnet.inet.arp.generation += 1
    entry.mac = mac
    entry.state = REACHABLE
    entry.confirmed = now
    entry.tries = 0
    if entry.timer is not None:
        entry.timer.cancel()
        entry.timer = None
    ifp = entry.ifnet
    while entry.hold:
        frame = entry.hold.popleft()
        frame[0:6] = mac
        frame[6:12] = ifp.mac
        ifp.output(frame)


def output(vnet: Vnet, ifp: Ifnet, nexthop: bytes, frame: bytearray, now: float) -> None:
    """Send ``frame`` (an Ethernet frame whose header is to be filled) to ``nexthop``.

    The destination MAC comes from the cache; without an entry the frame is
    held and a request goes out.
    """
    table = vnet.inet.arp
    entry = table.entries.get((ifp.name, nexthop))
    if entry is not None and entry.state != INCOMPLETE:
        frame[0:6] = entry.mac
        frame[6:12] = ifp.mac
        ifp.output(frame)
        entry.used = now
        if entry.state == REACHABLE and now - entry.confirmed > table.reachable_time:
            entry.state = STALE
        if entry.state == STALE and now - entry.last_request >= RETRY_INTERVAL:
            entry.last_request = now
            request(vnet, ifp, nexthop, entry.mac)
        return
    if entry is None:
        entry = _new_entry(vnet, ifp, nexthop, now)
        if entry is None:
            ifp.counters.tx_drops["arp_table_full"] += 1
            return
        _retry(vnet, entry, now)
    if len(entry.hold) >= HOLD_LIMIT:
        entry.hold.popleft()
        vnet.inet.arpstat.queue_overflow += 1
        ifp.counters.tx_drops["arp_queue_overflow"] += 1
    entry.hold.append(frame)


def reachable(vnet: Vnet, ifp: Ifnet, nexthop: bytes) -> Neighbour | None:
    """Return the entry for ``nexthop`` on ``ifp`` if it is reachable (else None)."""
    entry = vnet.inet.arp.entries.get((ifp.name, nexthop))
    return entry if entry is not None and entry.state == REACHABLE else None


def _retry(vnet: Vnet, entry: Neighbour, now: float) -> None:
    table = vnet.inet.arp
    if table.entries.get((entry.ifnet.name, entry.ip)) is not entry:
        return
    if entry.tries >= MAX_TRIES:
        _fail(vnet, entry, now)
        return
    entry.tries += 1
    entry.last_request = now
    request(vnet, entry.ifnet, entry.ip)
    entry.timer = vnet.timers.schedule(now + RETRY_INTERVAL, lambda t: _retry(vnet, entry, t))


def _fail(vnet: Vnet, entry: Neighbour, now: float) -> None:
    del vnet.inet.arp.entries[(entry.ifnet.name, entry.ip)]  # unresolved: no Dest holds it
    entry.timer = None
    vnet.inet.arpstat.timeouts += 1
    held = list(entry.hold)
    entry.hold.clear()
    entry.ifnet.counters.tx_drops["arp_unresolved"] += len(held)
    unresolved = vnet.inet.arp.unresolved
    if unresolved is not None:
        for frame in held:
            unresolved(vnet, memoryview(frame)[HEADER_LEN:], now)


def _sweep(vnet: Vnet, now: float) -> None:
    table = vnet.inet.arp
    table.sweeper = None
    for key, entry in list(table.entries.items()):
        if entry.state == INCOMPLETE:
            continue
        if entry.state == REACHABLE and now - entry.confirmed > table.reachable_time:
            entry.state = STALE
        if entry.state == STALE and now - max(entry.used, entry.confirmed) > table.stale_time:
            del table.entries[key]
            table.generation += 1
    if table.entries:
        table.sweeper = vnet.timers.schedule(now + SWEEP_INTERVAL, lambda t: _sweep(vnet, t))
