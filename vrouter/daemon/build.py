"""Assemble vnets from a validated config, without touching the host.

Everything here is sans-IO: vnets, interfaces, addresses, epair pairing and
routes are built as objects.  The daemon then attaches devices.  A failure
raises :class:`BuildError` naming the vnet and the object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from vrouter.core.vnet import Vnet, VnetTree
from vrouter.daemon.config import Config, InterfaceConfig
from vrouter.inet import ipv4
from vrouter.link.ifnet import Ifnet
from vrouter.route import state as route_state
from vrouter.route.fib import RouteError
from vrouter.stack import new_tree


class BuildError(Exception):
    """The config could not be turned into vnets."""


def derive_mac(vnet: str, ifname: str) -> bytes:
    """Return a stable locally administered unicast MAC for ``vnet``/``ifname``."""
    digest = hashlib.sha256(f"{vnet}\0{ifname}".encode()).digest()
    return bytes([0x02]) + digest[:5]


@dataclass
class Built:
    """The result: the vnet tree and what the daemon must attach devices to."""

    tree: VnetTree
    taps: list[tuple[Ifnet, InterfaceConfig]] = field(default_factory=list)
    epairs: list[tuple[Ifnet, Ifnet]] = field(default_factory=list)


def build(config: Config, now: float) -> Built:
    """Build every vnet of ``config`` (parents first)."""
    built = Built(new_tree())
    tree = built.tree
    for vcfg in config.vnets:
        vnet = tree.create(vcfg.name)
        vnet.inet.forwarding = vcfg.forwarding
        for icfg in vcfg.interfaces:
            ifp = Ifnet(
                vnet, icfg.name, icfg.type, icfg.mac or derive_mac(vcfg.name, icfg.name), icfg.mtu
            )
            vnet.link.add(ifp)
            for address in icfg.addresses:
                ipv4.add_address(vnet, ifp, address, now)
            if icfg.type == "tap":
                built.taps.append((ifp, icfg))
    seen: set[tuple[str, str]] = set()
    for vcfg in config.vnets:
        for icfg in vcfg.interfaces:
            if icfg.type != "epair" or icfg.peer is None or (vcfg.name, icfg.name) in seen:
                continue
            peer_vnet, peer_if = icfg.peer
            seen.add(icfg.peer)
            built.epairs.append(
                (tree.get(vcfg.name).link.get(icfg.name), tree.get(peer_vnet).link.get(peer_if))
            )
    for vcfg in config.vnets:
        vnet = tree.get(vcfg.name)
        for rcfg in vcfg.routes:
            via_ifp = vnet.link.get(rcfg.interface) if rcfg.interface else None
            try:
                route_state.add_static(vnet, rcfg.prefix, rcfg.type, rcfg.via, via_ifp)
            except RouteError as err:
                raise BuildError(f"vnet {vnet.name}: {err}") from err
    return built


def bring_up(vnet: Vnet, config_up: dict[str, bool], now: float) -> None:
    """Set the vnet's interfaces up as configured (announcing their addresses)."""
    for ifp in vnet.link.interfaces.values():
        if config_up.get(ifp.name, True):
            ipv4.set_up(vnet, ifp, now)
