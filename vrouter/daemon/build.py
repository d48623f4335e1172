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
from vrouter.daemon.config import Config, InterfaceConfig, RaConfig
from vrouter.firewall import subsystem as firewall
from vrouter.inet import ipv4
from vrouter.inet6 import ipv6, nd
from vrouter.link.ifnet import Ifnet
from vrouter.route import state as route_state
from vrouter.route.fib import RouteError
from vrouter.route.source import source
from vrouter.stack import new_tree
from vrouter.wire.ndp import PrefixInfo


class BuildError(Exception):
    """The config could not be turned into vnets."""


def derive_mac(vnet: str, ifname: str) -> bytes:
    """Return a stable locally administered unicast MAC for ``vnet``/``ifname``."""
    digest = hashlib.sha256(f"{vnet}\0{ifname}".encode()).digest()
    return bytes([0x02]) + digest[:5]


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


def add_interface(vnet: Vnet, icfg: InterfaceConfig, now: float) -> Ifnet:
    """Create ``icfg``'s interface in ``vnet`` with its addresses (down)."""
    mac = icfg.mac or derive_mac(vnet.name, icfg.name)
    ifp = Ifnet(vnet, icfg.name, icfg.type, mac, icfg.mtu)
    ifp.offload = icfg.offload
    vnet.link.add(ifp)
    for address in icfg.addresses:
        if isinstance(address, ipaddress.IPv4Interface):
            ipv4.add_address(vnet, ifp, address, now)
        else:
            ipv6.add_address(vnet, ifp, address, now)
    ipv6.enable(vnet, ifp, now)
    return ifp


def build(config: Config, now: float) -> Built:
    """Build every vnet of ``config`` (parents first)."""
    built = Built(new_tree())
    tree = built.tree
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
        for icfg in vcfg.interfaces:
            ifp = add_interface(vnet, icfg, now)
            if icfg.type == "tap":
                built.taps.append((ifp, icfg))
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
        ipv4.set_up(vnet, ifp, now)
        ipv6.set_up(vnet, ifp, now)
        if icfg.ra is not None:
            nd.enable_ra(vnet, ifp, ra_settings(icfg.ra), now)
