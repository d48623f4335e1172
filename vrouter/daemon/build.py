"""Assemble vnets from a validated config, without touching the host.

Everything here is sans-IO: vnets, interfaces, addresses, epair pairing,
router advertisement settings and routes are built as objects.  The daemon
then attaches devices and brings interfaces up.  A failure raises
:class:`BuildError` naming the vnet and the object.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

from vrouter.core.vnet import Vnet, VnetTree
from vrouter.daemon.config import Config, Dhcp6Config, InterfaceConfig, RaConfig
from vrouter.firewall import subsystem as firewall
from vrouter.inet import igmp, ipv4
from vrouter.inet6 import dhcp6, ipv6, mld, nd, slaac
from vrouter.link import bridge as bridge_
from vrouter.link import vlan
from vrouter.link import vxlan as vxlan_
from vrouter.link.ifnet import Ifnet
from vrouter.link.state import LinkError
from vrouter.route import state as route_state
from vrouter.route.fib import Route, RouteError
from vrouter.route.source import source
from vrouter.services.dhcp import state as dhcp
from vrouter.stack import new_tree
from vrouter.wire.ndp import PrefixInfo


class BuildError(Exception):
    """The config could not be turned into vnets."""


def derive_mac(vnet: str, ifname: str, seed: bytes = b"") -> bytes:
    """Return a stable locally administered unicast MAC for ``vnet``/``ifname``, ``seed``
    (the installation's, :mod:`vrouter.daemon.macseed`) mixed in."""
    digest = hashlib.sha256(seed + f"{vnet}\0{ifname}".encode()).digest()
    return bytes([0x02]) + digest[:5]


def dhcp6_settings(cfg: Dhcp6Config) -> dhcp6.Dhcp6Settings:
    """Return the server's view of an interface's DHCPv6 config."""
    return dhcp6.Dhcp6Settings(tuple(a.packed for a in cfg.dns), cfg.domains, cfg.refresh)


def ra_settings(cfg: RaConfig) -> nd.RaSettings:
    """Return the ND layer's view of an interface's RA config."""
    return nd.RaSettings(
        interval=cfg.interval,
        lifetime=cfg.lifetime,
        hop_limit=cfg.hop_limit,
        managed=cfg.managed,
        other=cfg.other,
        mtu=cfg.mtu,
        prefixes=tuple(
            PrefixInfo(
                p.prefix.network_address.packed,
                p.prefix.prefixlen,
                p.onlink,
                p.autonomous,
                p.valid_lifetime,
                p.preferred_lifetime,
            )
            for p in cfg.prefixes
        ),
        rdnss=tuple(a.packed for a in cfg.rdnss),
        rdnss_lifetime=cfg.rdnss_lifetime,
    )


@dataclass
class Built:
    """The result: the vnet tree and what the daemon must attach devices to."""

    tree: VnetTree
    taps: list[tuple[Ifnet, InterfaceConfig]] = field(default_factory=list)
    epairs: list[tuple[Ifnet, Ifnet]] = field(default_factory=list)
    wired: list[Ifnet] = field(default_factory=list)
    """Epair ends whose peer vnet runs in another worker (``vrouter.daemon.workers``)."""
    vxlans: list[vxlan_.Vxlan] = field(default_factory=list)
    """VXLAN interfaces, whose UDP sockets the daemon opens."""


def add_interface(vnet: Vnet, icfg: InterfaceConfig, now: float, seed: bytes = b"") -> Ifnet:
    """Create ``icfg``'s interface in ``vnet`` with its addresses (down).

    Without a configured MAC it gets one derived from the names and ``seed``.
    A VLAN rides on its parent (which must exist), a bridge takes its members
    (which must exist, and lose any L3 state): see :func:`attach_l2`.
    """
    mac = icfg.mac or derive_mac(vnet.name, icfg.name, seed)
    if icfg.vlan is not None:
        mac = vnet.link.get(icfg.vlan[0]).mac
    ifp = Ifnet(vnet, icfg.name, icfg.type, mac, icfg.mtu)
    ifp.offload = icfg.offload
    vnet.link.add(ifp)
    attach_l2(vnet, ifp, icfg, now)
    for address in icfg.addresses:
        if isinstance(address, ipaddress.IPv4Interface):
            ipv4.add_address(vnet, ifp, address, now)
        else:
            ipv6.add_address(vnet, ifp, address, now)
    ipv6.enable(vnet, ifp, now)
    return ifp


def attach_l2(vnet: Vnet, ifp: Ifnet, icfg: InterfaceConfig, now: float) -> None:
    """Make ``ifp`` the VLAN, VXLAN or bridge ``icfg`` describes (nothing for other types)."""
    try:
        if icfg.vlan is not None:
            vlan.attach(ifp, vnet.link.get(icfg.vlan[0]), icfg.vlan[1])
        xcfg = icfg.vxlan
        if xcfg is not None:
            vxlan_.create(
                ifp,
                vxlan_.VxlanConfigured(
                    xcfg.vni,
                    xcfg.local,
                    xcfg.port,
                    xcfg.remotes,
                    xcfg.group,
                    xcfg.learning,
                    xcfg.underlay,
                    xcfg.tunnel_gso,
                ),
            )
        bcfg = icfg.bridge
        if bcfg is None:
            return
        bridge = bridge_.create(ifp, bcfg.vlan_filtering, bcfg.pvid)
        for port in bcfg.ports:
            member = vnet.link.get(port.name)
            strip_l3(vnet, member, now)
            bridge.add_port(
                member, port.pvid, frozenset(port.tagged), port.storm_pps, port.path_cost,
                port.port_priority, now, port.edge, port.auto_edge,
            )  # fmt: skip
        for entry in bcfg.fdb:
            dst = None if entry.dst is None else str(entry.dst)
            bridge.add_static(entry.mac, entry.port, entry.vid, dst)
        if bcfg.stp is not None:
            bridge.set_stp(bcfg.stp, now)
    except (bridge_.BridgeError, vxlan_.VxlanError, ValueError, LinkError) as err:
        raise BuildError(f"vnet {vnet.name}: {icfg.name}: {err}") from err


def strip_l3(vnet: Vnet, ifp: Ifnet, now: float) -> list[Route]:
    """Take every L3 trace of ``ifp`` away: addresses, routes, neighbours, groups, RAs.

    Return the routes removed with it.  The interface stays in its vnet
    (a bridge member; :meth:`Ops.detach` then removes it).
    """
    nd.disable_ra(vnet, ifp, now)
    slaac.forget_interface(vnet, ifp)
    dhcp6.disable(vnet, ifp)
    routes = route_state.remove_interface_routes(vnet, ifp)
    for v4 in list(ifp.addresses):
        ipv4.remove_address(vnet, ifp, v4)
    vnet.inet.arp.flush_interface(ifp)
    for v6 in list(ifp.addresses6):
        ipv6.remove_address(vnet, ifp, v6)
    vnet.inet6.nd.flush_interface(ifp)
    vnet.inet6.groups.pop(ifp.name, None)
    mld.forget(vnet, ifp)
    igmp.forget(vnet, ifp)
    return routes


def release_l2(vnet: Vnet, ifp: Ifnet, now: float) -> list[Ifnet]:
    """Undo :func:`attach_l2` for ``ifp`` (or take it out of its bridge, for a member).

    Return the members a bridge gave back: they are L3 interfaces again (a
    link-local address; announced if up).
    """
    vlan.detach(ifp)
    vxlan_.destroy(ifp)
    port = bridge_.port_of(ifp)
    if port is not None:
        port.bridge.remove_port(ifp.name)
    bridge = bridge_.of(ifp)
    if bridge is None:
        return []
    members = [p.ifnet for p in bridge.ports.values()]
    bridge_.destroy(ifp)
    for member in members:
        give_back(vnet, member, now)
    return members


def give_back(vnet: Vnet, member: Ifnet, now: float) -> None:
    """Make ``member``, out of its bridge, an L3 interface again (a link-local address; up)."""
    ipv6.enable(vnet, member, now)
    if member.up:
        member.up = False
        ipv4.set_up(vnet, member, now)
        ipv6.set_up(vnet, member, now)


def build(config: Config, now: float, mac_seed: bytes = b"") -> Built:
    """Build every vnet of ``config`` (parents first); ``mac_seed`` goes into derived MACs."""
    built = Built(new_tree())
    tree = built.tree
    tree.mac_seed = mac_seed
    for vcfg in config.vnets:
        vnet = tree.create(vcfg.name)
        vnet.inet.forwarding = vcfg.forwarding
        vnet.inet6.forwarding = vcfg.forwarding
        if vcfg.firewall is not None:
            firewall.replace_ruleset(vnet, vcfg.firewall.ruleset)
            if vcfg.firewall.max_states is not None:
                vnet.firewall.fw.states.max_states = vcfg.firewall.max_states
            firewall.set_enabled(vnet, vcfg.firewall.enable)
        sysctl = tree.registry.sysctl()
        for name, value in vcfg.sysctl:
            sysctl.set(vnet, name, value)
        for icfg in sorted(vcfg.interfaces, key=vcfg.rank):
            ifp = add_interface(vnet, icfg, now, mac_seed)
            if icfg.type == "tap":
                built.taps.append((ifp, icfg))
            vx = vxlan_.of(ifp)
            if vx is not None:
                built.vxlans.append(vx)
    seen: set[tuple[str, str]] = set()
    for vcfg in config.vnets:
        for icfg in vcfg.interfaces:
            if icfg.type != "epair" or icfg.peer is None or (vcfg.name, icfg.name) in seen:
                continue
            peer_vnet, peer_if = icfg.peer
            if peer_vnet not in tree:
                built.wired.append(tree.get(vcfg.name).link.get(icfg.name))
                continue
            seen.add(icfg.peer)
            built.epairs.append(
                (tree.get(vcfg.name).link.get(icfg.name), tree.get(peer_vnet).link.get(peer_if))
            )
    for vcfg in config.vnets:
        vnet = tree.get(vcfg.name)
        for rcfg in vcfg.routes:
            via_ifp = vnet.link.get(rcfg.interface) if rcfg.interface else None
            try:
                static = source("static", rcfg.distance)
                if rcfg.paths:
                    hops = [(hop, via_ifp) for hop in rcfg.paths]
                    route = route_state.resolve_multipath(
                        vnet, rcfg.prefix, hops, static, rcfg.weights
                    )
                    vnet.route.table(rcfg.prefix.version).add(route)
                    continue
                route_state.add_static(vnet, rcfg.prefix, rcfg.type, rcfg.via, via_ifp, static)
            except RouteError as err:
                raise BuildError(f"vnet {vnet.name}: {err}") from err
    return built


def bring_up(vnet: Vnet, interfaces: list[InterfaceConfig], now: float) -> None:
    """Set the vnet's interfaces up as configured: announce, start DAD and RAs."""
    for icfg in interfaces:
        ifp = vnet.link.get(icfg.name)
        if not icfg.up:
            continue
        if ifp.bridge_input is not None:  # a bridge member: up, but no L3 of its own
            ifp.up = True
            port = bridge_.port_of(ifp)
            if port is not None and port.bridge.stp is not None:
                port.bridge.stp.check_links(now)  # its spanning tree port starts at once
            continue
        ipv4.set_up(vnet, ifp, now)
        ipv6.set_up(vnet, ifp, now)
        if icfg.ra is not None:
            nd.enable_ra(vnet, ifp, ra_settings(icfg.ra), now)
        if icfg.dhcp6 is not None:
            dhcp6.enable(vnet, ifp, dhcp6_settings(icfg.dhcp6))
        if icfg.dhcp and vnet.has("dhcp"):
            dhcp.start_client(vnet, ifp, now)
