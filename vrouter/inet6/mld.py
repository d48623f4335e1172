"""MLD as a listener: a vnet reports the IPv6 groups its interfaces joined (RFC 3810).

A switch that snoops (a Linux bridge with ``multicast_snooping`` on) forwards
a group's traffic only to ports that reported it, so a vnet behind one must
report its solicited-node groups (or ND stops reaching it), all-routers
when it forwards, and the groups its sockets joined.  ff02::1 and groups of
scope 0 or 1 are never reported (RFC 3810 6).  How joins, leaves and
queries are answered is :mod:`vrouter.core.membership`; an MLDv1 query
puts the interface in MLDv1 compatibility (RFC 3810 8.2.1): MLDv1 Reports,
one per group, sent to the group (and no Done on a leave).

Reports leave from the interface's link-local address (the unspecified
address while it is tentative, RFC 3810 5.2.13), hop limit 1, with the
Router Alert option.  Queries failing RFC 3810 5.1.14 (hop limit 1, a
link-local source) or malformed are dropped and counted.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from vrouter.core import membership
from vrouter.core.membership import Listener
from vrouter.wire import icmp6, mld
from vrouter.wire.errors import WireError
from vrouter.wire.ethernet import ETHERTYPE_IPV6, HEADER
from vrouter.wire.ipv6 import HOP_LIMIT, SRC, UNSPECIFIED, is_link_local, multicast_mac

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

RECORDS_PER_REPORT = 60
"""Group records per Report: 60 * 20 bytes stays within the 1280-byte minimum MTU."""


def _send(vnet: Vnet, ifp: Ifnet, packet: bytes, dst: bytes) -> None:
    ifp.output(HEADER.pack(multicast_mac(dst), ifp.mac, ETHERTYPE_IPV6) + packet)
    vnet.inet6.icmp.out_mld_reports += 1


def _report(vnet: Vnet, ifp: Ifnet, records: list[tuple[int, bytes]], older: bool) -> None:
    src = next(
        (a.address for a in vnet.inet6.addrs_of(ifp) if a.link_local and a.usable), UNSPECIFIED
    )
    membership.reports(
        records,
        older,
        RECORDS_PER_REPORT,
        lambda group: _send(vnet, ifp, mld.v1_report(src, group), group),
        lambda chunk: _send(vnet, ifp, mld.v2_report(src, chunk), mld.ALL_MLDV2_ROUTERS),
    )


def _listeners(vnet: Vnet) -> dict[str, Listener]:
    return vnet.inet6.mld


def _groups(vnet: Vnet, ifp: Ifnet) -> Collection[bytes]:
    return vnet.inet6.groups.get(ifp.name, {})


SPEAKER = membership.Speaker(_listeners, _groups, mld.reported, _report)


def changed(ifp: Ifnet, group: bytes, joined: bool) -> None:
    """Report that ``ifp`` joined or left ``group`` (from :func:`vrouter.inet6.nd.join`)."""
    membership.changed(SPEAKER, ifp, group, joined)


def query_input(ifp: Ifnet, packet: memoryview, message: icmp6.Icmp6Message, now: float) -> None:
    """Schedule the answer to a Multicast Listener Query (RFC 3810 6.2, 8.2.1)."""
    stat = ifp.vnet.inet6.icmp
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
    group = None if query.general else query.group
    membership.query(SPEAKER, ifp, group, query.max_delay, query.version == 1, now)


def forget(vnet: Vnet, ifp: Ifnet) -> None:
    """Drop ``ifp``'s MLD state and its timers (the interface leaves the vnet)."""
    membership.forget(SPEAKER, vnet, ifp)
