"""MLD as a listener: a vnet reports the IPv6 groups its interfaces joined (RFC 3810).

A switch that snoops (a Linux bridge with ``multicast_snooping`` on) forwards
a group's traffic only to ports that reported it, so a vnet behind one must
report its solicited-node groups (or ND stops reaching it), all-routers
when it forwards, and the groups its sockets joined.  ff02::1 and groups of
scope 0 or 1 are never reported (RFC 3810 6).

- **Joining or leaving** a group sends an unsolicited State Change Report
  (CHANGE_TO_EXCLUDE with no sources for a join, CHANGE_TO_INCLUDE for a
  leave) at once and once more within a second (Robustness Variable 2,
  Unsolicited Report Interval 1 s).
- **A query** is answered after a random delay within its Maximum Response
  Delay: a general query with one Report of every group (MODE_IS_EXCLUDE),
  a group-specific query with that group if joined.  An MLDv1 query puts
  the interface in MLDv1 compatibility for the Older Version Querier
  Present Timeout (RFC 3810 8.2.1), during which it answers with MLDv1
  Reports, one per group, sent to the group.

Reports leave from the interface's link-local address (the unspecified
address while it is tentative, RFC 3810 5.2.13), hop limit 1, with the
Router Alert option.  Queries failing RFC 3810 5.1.14 (hop limit 1, a
link-local source) or malformed are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core.timers import Timer
from vrouter.wire import icmp6, mld
from vrouter.wire.errors import WireError
from vrouter.wire.ethernet import ETHERTYPE_IPV6, HEADER
from vrouter.wire.ipv6 import HOP_LIMIT, SRC, UNSPECIFIED, is_link_local, multicast_mac

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

ROBUSTNESS = 2
UNSOLICITED_REPORT_INTERVAL = 1.0
QUERY_INTERVAL = 125.0
QUERY_RESPONSE_INTERVAL = 10.0
OLDER_VERSION_TIMEOUT = ROBUSTNESS * QUERY_INTERVAL + QUERY_RESPONSE_INTERVAL
RECORDS_PER_REPORT = 60
"""Group records per Report: 60 * 20 bytes stays within the 1280-byte minimum MTU."""


@dataclass(slots=True)
class Listener:
    """MLD state of one interface."""

    answer: Timer | None = None
    """The pending answer to a query."""
    asked: set[bytes] | None = None
    """The groups the pending answer is about (None: every group, a general query)."""
    changes: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    """Groups with a state change still to report: (record type, reports left)."""
    change_timer: Timer | None = None
    v1_until: float = 0.0
    """MLDv1 compatibility lasts until then (an MLDv1 querier is present)."""

    def stop(self) -> None:
        """Cancel both timers."""
        for timer in (self.answer, self.change_timer):
            if timer is not None:
                timer.cancel()
        self.answer = self.change_timer = None


def _listener(vnet: Vnet, ifp: Ifnet) -> Listener:
    listeners = vnet.inet6.mld
    found = listeners.get(ifp.name)
    if found is None:
        found = listeners[ifp.name] = Listener()
    return found


def _reported(vnet: Vnet, ifp: Ifnet) -> list[bytes]:
    return sorted(g for g in vnet.inet6.groups.get(ifp.name, ()) if mld.reported(g))


def _send(vnet: Vnet, ifp: Ifnet, packet: bytes, dst: bytes) -> None:
    ifp.output(HEADER.pack(multicast_mac(dst), ifp.mac, ETHERTYPE_IPV6) + packet)
    vnet.inet6.icmp.out_mld_reports += 1


def _source(vnet: Vnet, ifp: Ifnet) -> bytes:
    return next(
        (a.address for a in vnet.inet6.addrs_of(ifp) if a.link_local and a.usable), UNSPECIFIED
    )


def _report(vnet: Vnet, ifp: Ifnet, records: list[tuple[int, bytes]], now: float) -> None:
    """Send ``records`` as MLDv2 Reports, or as MLDv1 Reports in compatibility mode."""
    src = _source(vnet, ifp)
    if _listener(vnet, ifp).v1_until > now:
        for kind, group in records:
            if kind != mld.CHANGE_TO_INCLUDE:  # an MLDv1 host's Done is optional; none is sent
                _send(vnet, ifp, mld.v1_report(src, group), group)
        return
    for start in range(0, len(records), RECORDS_PER_REPORT):
        chunk = records[start : start + RECORDS_PER_REPORT]
        _send(vnet, ifp, mld.v2_report(src, chunk), mld.ALL_MLDV2_ROUTERS)


# --- state changes ------------------------------------------------------------------------


def changed(ifp: Ifnet, group: bytes, joined: bool) -> None:
    """Report that ``ifp`` joined or left ``group`` (from :func:`vrouter.inet6.nd.join`)."""
    vnet = ifp.vnet
    if not mld.reported(group) or not ifp.up or vnet.link.interfaces.get(ifp.name) is not ifp:
        return
    listener = _listener(vnet, ifp)
    kind = mld.CHANGE_TO_EXCLUDE if joined else mld.CHANGE_TO_INCLUDE
    listener.changes[group] = (kind, ROBUSTNESS)
    if listener.change_timer is None:
        # As soon as the vnet's timers run, with the time they give.
        listener.change_timer = vnet.timers.schedule(0.0, lambda t: _send_changes(vnet, ifp, t))


def _send_changes(vnet: Vnet, ifp: Ifnet, now: float) -> None:
    listener = _listener(vnet, ifp)
    listener.change_timer = None
    if not listener.changes or vnet.link.interfaces.get(ifp.name) is not ifp or not ifp.up:
        listener.changes.clear()
        return
    records = [(kind, group) for group, (kind, _) in sorted(listener.changes.items())]
    _report(vnet, ifp, records, now)
    listener.changes = {
        group: (kind, left - 1) for group, (kind, left) in listener.changes.items() if left > 1
    }
    if listener.changes:
        delay = vnet.inet6.rng.uniform(0, UNSOLICITED_REPORT_INTERVAL)
        listener.change_timer = vnet.timers.schedule(
            now + delay, lambda t: _send_changes(vnet, ifp, t)
        )


# --- queries ------------------------------------------------------------------------------


def query_input(ifp: Ifnet, packet: memoryview, message: icmp6.Icmp6Message, now: float) -> None:
    """Schedule the answer to a Multicast Listener Query (RFC 3810 6.2, 8.2.1)."""
    vnet = ifp.vnet
    stat = vnet.inet6.icmp
    stat.in_mld_queries += 1
    if packet[HOP_LIMIT] != 1 or not is_link_local(bytes(packet[SRC])):  # RFC 3810 5.1.14
        stat.mld_bad += 1
        ifp.drop("mld_invalid", error=True)
        return
    try:
        query = mld.Query.parse(message.data)
    except WireError as err:
        stat.mld_bad += 1
        ifp.drop(err.reason, error=True)
        return
    listener = _listener(vnet, ifp)
    if query.version == 1:
        listener.v1_until = now + OLDER_VERSION_TIMEOUT
    if not query.general and query.group not in vnet.inet6.groups.get(ifp.name, ()):
        return
    when = now + vnet.inet6.rng.uniform(0, max(query.max_delay, 0.0))
    if listener.answer is not None:
        if listener.asked is None or query.general:
            listener.asked = None if query.general else listener.asked
        elif listener.asked is not None:
            listener.asked.add(query.group)
        if listener.answer.deadline <= when:
            return
        listener.answer.cancel()
    else:
        listener.asked = None if query.general else {query.group}
    listener.answer = vnet.timers.schedule(when, lambda t: _answer(vnet, ifp, t))


def _answer(vnet: Vnet, ifp: Ifnet, now: float) -> None:
    listener = _listener(vnet, ifp)
    listener.answer = None
    asked, listener.asked = listener.asked, None
    if vnet.link.interfaces.get(ifp.name) is not ifp or not ifp.up:
        return
    groups = [g for g in _reported(vnet, ifp) if asked is None or g in asked]
    if groups:
        _report(vnet, ifp, [(mld.MODE_IS_EXCLUDE, g) for g in groups], now)


def forget(vnet: Vnet, ifp: Ifnet) -> None:
    """Drop ``ifp``'s MLD state and its timers (the interface leaves the vnet)."""
    listener = vnet.inet6.mld.pop(ifp.name, None)
    if listener is not None:
        listener.stop()
