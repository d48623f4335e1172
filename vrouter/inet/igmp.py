"""IGMP as a host: a vnet reports the IPv4 groups its sockets joined (RFC 3376).

The IPv4 twin of :mod:`vrouter.inet6.mld`: a snooping switch forwards a
group only to ports that reported it.  Every group but 224.0.0.1 is
reported; joins, leaves and queries are answered as
:mod:`vrouter.core.membership` says.  An IGMPv1 or IGMPv2 query puts the
interface in compatibility for the Older Version Querier Present Timeout:
it answers with IGMPv2 Reports, one per group, sent to the group (an
IGMPv1 querier reads those as well, RFC 2236 4), and sends no Leave.

Reports leave from the interface's first IPv4 address (0.0.0.0 without
one, RFC 3376 4.2.13), TTL 1, with the Router Alert option.  Malformed
queries and queries whose TTL is not 1 are dropped and counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vrouter.core import membership
from vrouter.core.membership import Listener
from vrouter.wire import igmp
from vrouter.wire.errors import WireError
from vrouter.wire.ethernet import ETHERTYPE_IPV4, HEADER
from vrouter.wire.ipv4 import TTL

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

RECORDS_PER_REPORT = 64
"""Group records per Report: 64 * 8 bytes stays far below any MTU."""


def _send(vnet: Vnet, ifp: Ifnet, packet: bytes, dst: bytes) -> None:
    mac = bytes((0x01, 0x00, 0x5E, dst[1] & 0x7F, dst[2], dst[3]))  # RFC 1112 6.4
    ifp.output(HEADER.pack(mac, ifp.mac, ETHERTYPE_IPV4) + packet)
    vnet.inet.igmp.snd_reports += 1


def _report(vnet: Vnet, ifp: Ifnet, records: list[tuple[int, bytes]], older: bool) -> None:
    src = ifp.addresses[0].ip.packed if ifp.addresses else bytes(4)
    membership.reports(
        records,
        older,
        RECORDS_PER_REPORT,
        lambda group: _send(vnet, ifp, igmp.v2_report(src, group), group),
        lambda chunk: _send(vnet, ifp, igmp.v3_report(src, chunk), igmp.ALL_IGMPV3_ROUTERS),
    )


def _listeners(vnet: Vnet) -> dict[str, Listener]:
    return vnet.inet.listeners


def _groups(vnet: Vnet, ifp: Ifnet) -> set[bytes]:
    return vnet.inet.groups.get(ifp.name, set())


SPEAKER = membership.Speaker(_listeners, _groups, igmp.reported, _report)


def join(vnet: Vnet, ifp: Ifnet, group: bytes) -> None:
    """Join IPv4 ``group`` on ``ifp`` (reported if new)."""
    groups = vnet.inet.groups.setdefault(ifp.name, set())
    if group not in groups:
        groups.add(group)
        membership.changed(SPEAKER, ifp, group, True)


def leave(vnet: Vnet, ifp: Ifnet, group: bytes) -> None:
    """Leave IPv4 ``group`` on ``ifp`` (reported if it was joined)."""
    groups = vnet.inet.groups.get(ifp.name)
    if groups is not None and group in groups:
        groups.discard(group)
        membership.changed(SPEAKER, ifp, group, False)


def input(ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float) -> None:
    """Take an IGMP message: queries are answered, everything else is ignored."""
    stats = ifp.vnet.inet.igmp
    message = packet[hlen:]
    if len(message) < 1 or message[0] != igmp.QUERY:
        return  # other hosts' reports and leaves: a host ignores them (RFC 3376 5.2)
    stats.rcv_queries += 1
    if packet[TTL] != 1:
        stats.rcv_bad += 1
        ifp.drop("igmp_invalid", error=True)
        return
    try:
        query = igmp.Query.parse(message)
    except WireError as err:
        stats.rcv_bad += 1
        ifp.drop(err.reason, error=True)
        return
    group = None if query.general else query.group
    membership.query(SPEAKER, ifp, group, query.max_delay, query.version < 3, now)


def forget(vnet: Vnet, ifp: Ifnet) -> None:
    """Drop ``ifp``'s groups, IGMP state and timers (the interface leaves the vnet)."""
    vnet.inet.groups.pop(ifp.name, None)
    membership.forget(SPEAKER, vnet, ifp)
