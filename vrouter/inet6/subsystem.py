"""The inet6 subsystem: what attaching IPv6 to a vnet sets up, its knobs, its teardown.

Attaching creates the vnet's :class:`~vrouter.inet6.state.Inet6State` with
its ND table (whose failed resolutions the IP layer answers with ICMPv6)
and its first ReachableTime, registers IPv6 in the vnet's EtherType table
and the built-in protocols in its protocol table.  This module wires the
layers together, so it sits above all of them and none imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vrouter.core import tables
from vrouter.core.registry import Subsystem
from vrouter.core.sysctl import Knob, Value, field_knob
from vrouter.inet.fragment import Reassembly
from vrouter.inet6 import ipv6, mld, nd, slaac
from vrouter.inet6.state import Inet6State
from vrouter.wire.ethernet import ETHERTYPE_IPV6

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet


_PROTOCOLS = tables.share(ipv6.BUILTIN_PROTOCOLS)
"""The protocol table of a new vnet (shared, see :mod:`vrouter.core.tables`)."""


def _attach(vnet: Vnet) -> Inet6State:
    state = Inet6State(
        nd=nd.NdTable(unresolved=ipv6.address_unreachable), reass=Reassembly(timeout=60.0)
    )
    state.nd.draw_reachable_time(state.rng)
    link = vnet.link
    link.ethertypes = tables.put(link.ethertypes, ETHERTYPE_IPV6, ipv6.input)
    link.bridge.too_big = tables.put(link.bridge.too_big, ETHERTYPE_IPV6, ipv6.bridged_too_big)
    state.protocols = _PROTOCOLS
    state.ra_input = slaac.ra_input
    state.linklocal_ready = slaac.linklocal_ready
    state.group_changed = mld.changed
    return state


def _detach(vnet: Vnet) -> None:
    link = vnet.link
    link.ethertypes = tables.drop(link.ethertypes, ETHERTYPE_IPV6)
    link.bridge.too_big = tables.drop(link.bridge.too_big, ETHERTYPE_IPV6)
    state = vnet.inet6
    if state.learnt is not None:
        slaac.clear(state.learnt)
    state.nd.clear()
    state.dests.clear()
    state.reass.clear()
    for addr in [*state.local.values(), *state.linklocal.values()]:
        if addr.timer is not None:
            addr.timer.cancel()
            addr.timer = None  # its callback holds the address and the vnet: no cycle left
    for ra in state.ra.values():
        ra.stop()
    state.local.clear()
    state.anycast.clear()
    state.linklocal.clear()
    state.ra.clear()
    state.dhcp6.clear()
    for listener in state.mld.values():
        listener.stop()
    state.mld.clear()
    state.udp_services.clear()


def _get_accept_rtadv(vnet: Vnet) -> Value:
    return vnet.inet6.accept_rtadv


def _set_accept_rtadv(vnet: Vnet, value: Value) -> None:
    was = vnet.inet6.accept_rtadv
    vnet.inet6.accept_rtadv = bool(value)
    if not value:
        slaac.forget(vnet)
    elif not was:
        slaac.solicit_all(vnet)


KNOBS = (
    Knob(
        "net.inet6.ip6.accept_rtadv",
        bool,
        "A host (forwarding 0) configures addresses, default routers, DNS and MTU from "
        "router advertisements; 0 forgets what it learnt",
        _get_accept_rtadv,
        _set_accept_rtadv,
    ),
    field_knob(
        "net.inet6.ip6.maxifprefixes",
        int,
        "Addresses autoconfigured from router advertisements per interface",
        "inet6.max_prefixes",
        0,
        1024,
    ),
    field_knob(
        "net.inet6.ip6.maxifdefrouters",
        int,
        "Default routers learnt from router advertisements per interface",
        "inet6.max_routers",
        0,
        1024,
    ),
    field_knob(
        "net.inet6.ip6.forwarding",
        bool,
        "Forward IPv6 packets not addressed to this vnet (router); 0 makes it a host",
        "inet6.forwarding",
    ),
    field_knob(
        "net.inet6.ip6.hlim",
        int,
        "Hop limit of IPv6 packets this vnet originates",
        "inet6.hop_limit",
        1,
        255,
    ),
    field_knob(
        "net.inet6.icmp6.errratelimit",
        int,
        "ICMPv6 error messages sent per second at most (0: no limit)",
        "inet6.icmp6_errrate",
        0,
        1_000_000,
    ),
    field_knob(
        "net.inet6.ip6.dad_count",
        int,
        "Duplicate Address Detection probes per new address (0: no DAD)",
        "inet6.dad_transmits",
        0,
        10,
    ),
    field_knob(
        "net.inet6.nd6.base_reachable_time",
        float,
        "BaseReachableTime in seconds: a confirmed neighbour stays reachable 0.5-1.5 times it",
        "inet6.nd.base_reachable_time",
        1,
        3600,
    ),
    field_knob(
        "net.inet6.nd6.retrans_timer",
        float,
        "Seconds between neighbour solicitations",
        "inet6.nd.retrans_timer",
        0.1,
        60,
    ),
    field_knob(
        "net.inet6.nd6.stale_time",
        float,
        "Seconds an unused stale neighbour entry is kept",
        "inet6.nd.stale_time",
        1,
        86400 * 7,
    ),
    field_knob(
        "net.inet6.nd6.max_entries",
        int,
        "Neighbour entries allowed in this vnet",
        "inet6.nd.max_entries",
        1,
        1 << 24,
    ),
    field_knob(
        "net.inet6.nd6.max_incomplete",
        int,
        "neighbour entries resolving at once; beyond it new resolutions are refused (a scan)",
        "inet6.nd.max_incomplete",
        1,
        1 << 24,
    ),
    field_knob(
        "net.inet6.nd6.solicit_rate",
        int,
        "Multicast neighbour solicitations per second and interface for resolutions (0: no limit)",
        "inet6.nd.solicit_rate",
        0,
        1_000_000,
    ),
    field_knob(
        "net.inet6.nd6.hold_maxbytes",
        int,
        "Bytes of packets held for all resolving neighbour entries together",
        "inet6.nd.hold_maxbytes",
        0,
        1 << 31,
    ),
    field_knob(
        "net.inet6.ip6.reass.timeout",
        float,
        "Seconds an incomplete IPv6 packet is kept for reassembly",
        "inet6.reass.timeout",
        1,
        600,
    ),
    field_knob(
        "net.inet6.ip6.reass.maxmem",
        int,
        "Bytes of IPv6 fragments held for reassembly at most",
        "inet6.reass.memory_limit",
        0,
        1 << 31,
    ),
)

SUBSYSTEM = Subsystem("inet6", _attach, _detach, depends=("link", "route"), knobs=KNOBS)
