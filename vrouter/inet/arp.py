"""ARP (RFC 826): the IPv4 resolver of the vnet's neighbour table.

The table (entries, hold queue, sweeping) is the shared
:class:`~vrouter.link.lltable.NeighbourTable` at ``inet.arp``; this module
speaks ARP and drives its entries through their states: ``incomplete``
(request sent, packets held), ``reachable`` (answer seen within
``reachable_time``), ``stale`` (older; still used, and each use sends a
refresh request at most once per ``RETRY_INTERVAL``).  Entries idle for
``stale_time`` are swept.  An incomplete entry retries ``MAX_TRIES`` times,
then drops its queue and hands each held packet to the table's
``unresolved`` hook, where the IP layer answers it with ICMP host
unreachable (RFC 1812 4.3.3.1).  All timing is deadlines on the vnet.

Against a scan of an on-link network (RFC 6583), the table refuses new
resolutions beyond ``net.link.ether.inet.max_incomplete`` entries resolving
or ``net.link.ether.inet.request_rate`` requests a second on the interface
(a retry the rate refuses ends the resolution), and holds at most
``net.link.ether.inet.hold_maxbytes`` of frames; each refusal is counted.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

from vrouter.link.lltable import (
    HOLD_FULL,
    INCOMPLETE,
    INCOMPLETE_FULL,
    RATELIMITED,
    REACHABLE,
    STALE,
    Neighbour,
    NeighbourTable,
    Unresolved,
)
from vrouter.wire.arp import OP_REPLY, OP_REQUEST, ArpPacket
from vrouter.wire.errors import WireError
from vrouter.wire.ethernet import BROADCAST, ETHERTYPE_ARP, HEADER, HEADER_LEN, ZERO

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.arp")

RETRY_INTERVAL = 1.0
"""Seconds between requests for an unanswered neighbour."""
MAX_TRIES = 3
"""Requests sent before a resolution fails."""
STATES = (INCOMPLETE, REACHABLE, STALE)
"""The states an ARP entry takes."""


def new_table(unresolved: Unresolved | None = None) -> NeighbourTable:
    """Return an empty ARP table (reachable 300 s, as ``net.link.ether.inet.max_age``)."""
    return NeighbourTable("arp", unresolved=unresolved)


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
    entry = vnet.inet.arp.add(vnet.timers, ifp, ip, INCOMPLETE, now)
    if entry is None:
        vnet.inet.arpstat.table_full += 1
    return entry


def _confirm(vnet: Vnet, entry: Neighbour, mac: bytes, now: float) -> None:
    """Record ``mac`` for ``entry`` and release its held packets."""
    vnet.inet.arp.confirm(entry, mac, REACHABLE, now)


def output(vnet: Vnet, ifp: Ifnet, nexthop: bytes, frame: bytearray, now: float) -> None:
    """Send ``frame`` (an Ethernet frame whose header is to be filled) to ``nexthop``.

    The destination MAC comes from the cache; without an entry the frame is
    held and a request goes out.
    """
    table = vnet.inet.arp
    entry = table.entries.get((ifp.name, nexthop))
    if entry is not None and entry.state != INCOMPLETE:
        table.send(entry, frame, now)
        if entry.state == STALE and now - entry.last_request >= RETRY_INTERVAL:
            entry.last_request = now
            request(vnet, ifp, nexthop, entry.mac)
        return
    stat = vnet.inet.arpstat
    if entry is None:
        started = table.resolve(vnet.timers, ifp, nexthop, now)
        if isinstance(started, str):
            _refused(vnet, ifp, started)
            return
        entry = started
        _retry(vnet, entry, now)
    dropped = table.hold(entry, frame)
    if dropped == HOLD_FULL:
        stat.hold_full += 1
    elif dropped is not None:
        stat.queue_overflow += 1


def refuse_early(vnet: Vnet, ifp: Ifnet, nexthop: bytes, now: float) -> bool:
    """Drop and count a packet to ``nexthop`` on ``ifp`` (no entry yet) if its
    resolution would be refused; False if it would start (send the packet on).

    Under a scan of an on-link prefix this is the whole cost of each packet:
    no copy, no destination cache entry."""
    reason = vnet.inet.arp.refusal(ifp, nexthop, now)
    if reason is None:
        return False
    _refused(vnet, ifp, reason)
    return True


def _refused(vnet: Vnet, ifp: Ifnet, reason: str) -> None:
    """Count a resolution the table refused, and the packet dropped with it."""
    stat = vnet.inet.arpstat
    if reason == INCOMPLETE_FULL:
        stat.incomplete_full += 1
    elif reason == RATELIMITED:
        stat.ratelimited += 1
    else:
        stat.table_full += 1
    ifp.counters.tx_drops[f"arp_{reason}"] += 1


def _retry(vnet: Vnet, entry: Neighbour, now: float) -> None:
    table = vnet.inet.arp
    if table.entries.get((entry.ifnet.name, entry.ip)) is not entry:
        return
    if entry.probes >= MAX_TRIES:
        vnet.inet.arpstat.timeouts += 1
        table.fail(vnet, entry, now)
        return
    if entry.probes and not table.may_solicit(entry.ifnet, now):
        vnet.inet.arpstat.ratelimited += 1  # under a scan: give up now
        table.fail(vnet, entry, now)
        return
    entry.probes += 1
    entry.last_request = now
    request(vnet, entry.ifnet, entry.ip)
    entry.timer = vnet.timers.schedule(now + RETRY_INTERVAL, lambda t: _retry(vnet, entry, t))
