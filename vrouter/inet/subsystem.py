"""The inet subsystem: what attaching IPv4 to a vnet sets up, its knobs, its teardown.

Attaching creates the vnet's :class:`~vrouter.inet.state.InetState` with its
ARP table (whose failed resolutions the IP layer answers with ICMP),
registers IPv4 and ARP in the vnet's EtherType table and the built-in IP
protocols in its protocol table.  This module wires the layers together,
so it sits above all of them and none imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vrouter.core import tables
from vrouter.core.registry import Subsystem
from vrouter.core.sysctl import field_knob
from vrouter.inet import arp, igmp, ipv4
from vrouter.inet.fragment import Reassembly
from vrouter.inet.state import InetState
from vrouter.wire.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4
from vrouter.wire.igmp import PROTO as IGMP

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet


_PROTOCOLS = tables.share({**ipv4.BUILTIN_PROTOCOLS, IGMP: igmp.input})
"""The protocol table of a new vnet (shared, see :mod:`vrouter.core.tables`)."""


def _attach(vnet: Vnet) -> InetState:
    state = InetState(
        arp=arp.new_table(unresolved=ipv4.host_unreachable), reass=Reassembly(timeout=30.0)
    )
    link = vnet.link
    link.ethertypes = tables.put(link.ethertypes, ETHERTYPE_IPV4, ipv4.input)
    link.ethertypes = tables.put(link.ethertypes, ETHERTYPE_ARP, arp.input)
    link.bridge.too_big = tables.put(link.bridge.too_big, ETHERTYPE_IPV4, ipv4.bridged_too_big)
    link.bridge.announce = tables.put(link.bridge.announce, ETHERTYPE_IPV4, ipv4.announce)
    state.protocols = _PROTOCOLS
    return state


def _detach(vnet: Vnet) -> None:
    link = vnet.link
    link.ethertypes = tables.drop(tables.drop(link.ethertypes, ETHERTYPE_IPV4), ETHERTYPE_ARP)
    link.bridge.too_big = tables.drop(link.bridge.too_big, ETHERTYPE_IPV4)
    link.bridge.announce = tables.drop(link.bridge.announce, ETHERTYPE_IPV4)
    vnet.inet.arp.clear()
    vnet.inet.dests.clear()
    vnet.inet.reass.clear()
    vnet.inet.local.clear()
    for listener in vnet.inet.listeners.values():
        listener.stop()
    vnet.inet.listeners.clear()
    vnet.inet.groups.clear()


KNOBS = (
    field_knob(
        "net.inet.ip.forwarding",
        bool,
        "Forward IPv4 packets not addressed to this vnet (router); 0 makes it a host",
        "inet.forwarding",
    ),
    field_knob(
        "net.inet.ip.ttl", int, "TTL of IPv4 packets this vnet originates", "inet.ttl", 1, 255
    ),
    field_knob(
        "net.inet.icmp.errratelimit",
        int,
        "ICMP error messages sent per second at most (0: no limit)",
        "inet.icmp_errrate",
        0,
        1_000_000,
    ),
    field_knob(
        "net.link.ether.inet.max_age",
        float,
        "Seconds an ARP entry stays reachable after confirmation before it is refreshed",
        "inet.arp.reachable_time",
        1,
        86400,
    ),
    field_knob(
        "net.link.ether.inet.stale_time",
        float,
        "Seconds an unused stale ARP entry is kept",
        "inet.arp.stale_time",
        1,
        86400 * 7,
    ),
    field_knob(
        "net.link.ether.inet.max_entries",
        int,
        "ARP entries allowed in this vnet",
        "inet.arp.max_entries",
        1,
        1 << 24,
    ),
    field_knob(
        "net.link.ether.inet.max_incomplete",
        int,
        "ARP entries resolving at once; beyond it new resolutions are refused (a scan)",
        "inet.arp.max_incomplete",
        1,
        1 << 24,
    ),
    field_knob(
        "net.link.ether.inet.request_rate",
        int,
        "ARP requests per second and interface for resolutions (0: no limit)",
        "inet.arp.solicit_rate",
        0,
        1_000_000,
    ),
    field_knob(
        "net.link.ether.inet.hold_maxbytes",
        int,
        "Bytes of packets held for all resolving ARP entries together",
        "inet.arp.hold_maxbytes",
        0,
        1 << 31,
    ),
    field_knob(
        "net.inet.ip.reass.timeout",
        float,
        "Seconds an incomplete IPv4 datagram is kept for reassembly",
        "inet.reass.timeout",
        1,
        600,
    ),
    field_knob(
        "net.inet.ip.reass.maxmem",
        int,
        "Bytes of IPv4 fragments held for reassembly at most",
        "inet.reass.memory_limit",
        0,
        1 << 31,
    ),
)

SUBSYSTEM = Subsystem("inet", _attach, _detach, depends=("link", "route"), knobs=KNOBS)
