"""What the parser found, with key paths, before the cross-checks.

Responsibility: the intermediate values (``ParsedVnet``, ``ParsedInterface``,
``ParsedRoute``, ``ParsedAddress``) that remember where in the file each
part came from, so a cross-check can name the key it is about, and that
build the frozen ``VnetConfig``/``InterfaceConfig`` once no problem was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)

from vrouter.core import limits as limits_
from vrouter.core.perms import (
    NO_GRANTS,
    Grants,
)
from vrouter.daemon.config.model import (
    BridgeConfig,
    Dhcp6Config,
    DhcpConfig,
    FirewallConfig,
    HostConfig,
    InterfaceConfig,
    MirrorConfig,
    RaConfig,
    RouteConfig,
    VnetConfig,
    VxlanConfig,
)


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """An interface or host address and its key path."""

    value: IPv4Interface | IPv6Interface
    key: str


@dataclass(frozen=True, slots=True)
class ParsedInterface:
    """An interface as read, with the key paths its cross-checks report at."""

    key: str
    name: str
    type: str | None  # None: missing or invalid (already reported)
    addresses: tuple[ParsedAddress, ...]
    addresses_complete: bool  # False if some address failed (already reported)
    mtu: int
    mac: bytes | None
    up: bool
    host: HostConfig | None
    netns_key: str
    peer: tuple[str, str] | None
    peer_key: str
    ra: RaConfig | None
    ra_key: str
    advertises: bool  # ra = true or a table, even if it had problems
    offload: bool = True
    bridge: BridgeConfig | None = None
    vlan: tuple[str, int] | None = None
    vxlan: VxlanConfig | None = None
    dhcp6: Dhcp6Config | None = None
    dhcp: bool = False

    def config(self) -> InterfaceConfig:
        assert self.type is not None, "only built when no problem was found"
        return InterfaceConfig(
            name=self.name,
            type=self.type,
            addresses=tuple(a.value for a in self.addresses),
            mtu=self.mtu,
            mac=self.mac,
            up=self.up,
            host=self.host,
            peer=self.peer,
            ra=self.ra,
            offload=self.offload,
            bridge=self.bridge,
            vlan=self.vlan,
            vxlan=self.vxlan,
            dhcp6=self.dhcp6,
            dhcp=self.dhcp,
        )


@dataclass(frozen=True, slots=True)
class ParsedRoute:
    """A static route as read; a part that is absent or was wrong (and reported) is None."""

    key: str
    prefix: IPv4Network | IPv6Network | None
    type: str | None
    via: IPv4Address | IPv6Address | None
    interface: str | None
    has_via: bool
    has_interface: bool
    distance: int = 1
    paths: tuple[IPv4Address | IPv6Address, ...] = ()
    weights: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedVnet:
    """A vnet as read, with its interfaces and routes, before the cross-checks."""

    key: str
    name: str
    name_ok: bool
    forwarding: bool
    interfaces: tuple[ParsedInterface, ...]
    routes: tuple[ParsedRoute, ...]
    sysctl: tuple[tuple[str, bool | int | float], ...] = ()
    firewall: FirewallConfig | None = None
    permissions: Grants = NO_GRANTS
    limits: tuple[tuple[str, int], ...] = ()
    """Own limits in file order (kind, value)."""
    limits_key: str = ""
    worker: int | None = None
    mirror: MirrorConfig | None = None
    dhcp: DhcpConfig | None = None

    def interface(self, name: str) -> ParsedInterface | None:
        for iface in self.interfaces:
            if iface.name == name:
                return iface
        return None

    def config(self) -> VnetConfig:
        routes: list[RouteConfig] = []
        for r in self.routes:
            assert r.prefix is not None and r.type is not None, "only built when valid"
            routes.append(
                RouteConfig(r.prefix, r.type, r.via, r.interface, r.distance, r.paths, r.weights)
            )
        limits = tuple((limits_.knob_name(kind), value) for kind, value in self.limits)
        return VnetConfig(
            name=self.name,
            forwarding=self.forwarding,
            interfaces=tuple(i.config() for i in self.interfaces),
            routes=tuple(routes),
            sysctl=limits + self.sysctl,
            firewall=self.firewall,
            permissions=self.permissions,
            worker=self.worker,
            mirror=self.mirror,
            dhcp=self.dhcp,
        )


def parents_first(vnets: list[ParsedVnet]) -> list[ParsedVnet]:
    """Order *vnets* so each parent precedes its children, else file order.

    No recursive closure: one refers to itself, a cycle that would keep every
    parsed vnet until the collector runs (start-up holds it off).
    """
    by_name = {v.name: v for v in vnets}
    ordered: list[ParsedVnet] = []
    placed: set[str] = set()
    for vnet in vnets:
        chain: list[ParsedVnet] = []  # the vnet and its ancestors not placed yet, child first
        while vnet.name not in placed:
            placed.add(vnet.name)
            chain.append(vnet)
            parent, sep, _ = vnet.name.rpartition("/")
            if not sep or parent not in by_name:
                break
            vnet = by_name[parent]
        ordered.extend(reversed(chain))
    return ordered
