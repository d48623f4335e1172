"""The validated configuration: frozen values, their defaults and bounds.

Responsibility: the types a parsed configuration is made of (``Config``,
``DaemonConfig``, ``VnetConfig``, ``InterfaceConfig`` …), the problems an
invalid one is reported with (``ConfigProblem``, ``ConfigError``), and the
defaults and ranges the parser fills in and checks against.  Nothing here
reads TOML; a value of these types is only built from a file that passed
every check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    Policy,
    Principal,
)
from vrouter.daemon.logs import DEFAULT_FORMAT as DEFAULT_LOG_FORMAT
from vrouter.firewall.rules import Ruleset
from vrouter.link.stp import DEFAULT_PATH_COST, DEFAULT_PORT_PRIORITY, StpSettings
from vrouter.services.dhcp.relay import RelaySettings
from vrouter.services.dhcp.server import PoolSettings

DEFAULT_VNET = "vnet0"
"""Name of the single vnet configured by a file that declares no [vnets]."""

DEFAULT_CONTROL_SOCKET = "/run/vrouter/control.sock"
DEFAULT_STATE_DIR = "/run/vrouter"
DEFAULT_DATA_DIR = "/var/lib/vrouter"
"""Where what must outlive a reboot is kept (DHCP leases): systemd's StateDirectory."""
DEFAULT_LOG_LEVEL = "info"
DEFAULT_MTU = 1500
TAP_QDISCS = ("auto", "fq_codel", "fq", "pfifo_fast", "pfifo", "noqueue", "kernel")
"""Root queueing disciplines ``[daemon] tap_qdisc`` may give the host side of the
daemon's TAPs; ``kernel`` leaves the system default alone, ``auto`` is fq_codel
where the kernel has it and the system default elsewhere."""
DEFAULT_TAP_QDISC = "auto"
DEFAULT_TAP_TXQUEUELEN = 1000
MAX_TAP_TXQUEUELEN = 100_000
MAX_BUSY_POLL = 1000
"""Most microseconds ``[daemon] busy_poll`` may spin after a batch."""

LOG_LEVELS = ("debug", "info", "warning", "error")
INTERFACE_TYPES = ("tap", "epair", "bridge", "vlan", "vxlan")
ROUTE_TYPES = ("unicast", "blackhole", "reject")
MTU_MIN = 68
MTU_MAX = 65535
IPV6_MTU_MIN = 1280
"""Smallest MTU of a link that carries IPv6 (RFC 8200 section 5)."""
UNIX_PATH_MAX = 107
"""Longest AF_UNIX socket path in bytes (sun_path is 108 including the NUL)."""
MAX_WORKERS = 64
"""Most forwarding processes one daemon runs."""

# Router advertisements (RFC 4861 section 6.2.1, RFC 8106 for RDNSS)
RA_INTERVAL_MIN = 4
RA_INTERVAL_MAX = 1800
DEFAULT_RA_INTERVAL = 600.0
"""MaxRtrAdvInterval when not given; the router lifetime defaults to 3 times it."""
RA_LIFETIME_MAX = 9000
DEFAULT_RA_HOP_LIMIT = 64
DEFAULT_RA_MTU = False
"""RFC 4861 AdvLinkMTU default 0: no MTU option unless ``mtu = true``."""
LIFETIME_INFINITY = 0xFFFFFFFF
"""A prefix or RDNSS lifetime that never expires."""
DEFAULT_VALID_LIFETIME = 2592000
"""AdvValidLifetime default: 30 days."""
DEFAULT_PREFERRED_LIFETIME = 604800
"""AdvPreferredLifetime default: 7 days (at most the valid lifetime)."""
VID_MIN = 1
VID_MAX = 4094
"""802.1Q VLAN IDs a vlan interface or a bridge port may use (0 and 4095 are reserved)."""
STORM_PPS_MAX = 10_000_000
SLAAC_PREFIX_LENGTH = 64
"""The only prefix length stateless autoconfiguration works with (RFC 4862, 4291)."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a configuration file."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        """Return ``FILE: KEY: REASON`` (``FILE: REASON`` for file-level)."""
        if self.key:
            return f"{self.file}: {self.key}: {self.reason}"
        return f"{self.file}: {self.reason}"


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` lists every reason why."""

    problems: list[ConfigProblem]

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__(problems)
        self.problems = list(problems)

    def __str__(self) -> str:
        """Return one ``FILE: KEY: REASON`` line per problem."""
        return "\n".join(str(p) for p in self.problems)


@dataclass(frozen=True, slots=True)
class HostConfig:
    """The host side of a TAP: a network namespace with addresses.

    ``slaac``: the host accepts router advertisements and autoconfigures
    (then ``addresses`` may be empty); ``dhcp``: a DHCP client run in the
    namespace configures it (``addresses`` may be empty too).
    """

    netns: str
    addresses: tuple[IPv4Interface | IPv6Interface, ...]
    gateway: IPv4Address | None
    gateway6: IPv6Address | None = None
    slaac: bool = False
    dhcp: bool = False
    """The host takes its IPv4 address by DHCP (a client run in the namespace, not by us)."""


@dataclass(frozen=True, slots=True)
class RaPrefixConfig:
    """One prefix information option of a router advertisement.

    Lifetimes are in seconds; ``LIFETIME_INFINITY`` never expires.
    """

    prefix: IPv6Network
    onlink: bool
    autonomous: bool
    valid_lifetime: int
    preferred_lifetime: int


@dataclass(frozen=True, slots=True)
class RaConfig:
    """Router advertisements sent on one interface (times in seconds).

    ``interval`` is MaxRtrAdvInterval; ``lifetime`` the router lifetime (0:
    not a default router); ``mtu``: include an MTU option with the
    interface MTU; ``rdnss``: recursive DNS servers (RFC 8106).
    """

    interval: float
    lifetime: int
    hop_limit: int
    managed: bool
    other: bool
    mtu: bool
    prefixes: tuple[RaPrefixConfig, ...]
    rdnss: tuple[IPv6Address, ...]
    rdnss_lifetime: int


@dataclass(frozen=True, slots=True)
class Dhcp6Config:
    """A stateless DHCPv6 server on one interface (RFC 8415 Information-request).

    ``dns``: recursive DNS servers; ``domains``: the search list;
    ``refresh``: the information refresh time in seconds (None: not sent).
    """

    dns: tuple[IPv6Address, ...]
    domains: tuple[str, ...]
    refresh: int | None = None


@dataclass(frozen=True, slots=True)
class BridgePortConfig:
    """One member of a bridge: its VLANs (with filtering) and storm control.

    ``pvid``: the VLAN of untagged frames (0: none, a pure trunk);
    ``tagged``: the VLANs it carries tagged; ``storm_pps``: broadcast and
    multicast frames admitted per second (0: no limit); ``path_cost`` and
    ``port_priority``: its spanning tree settings (used while ``stp`` is on);
    ``edge`` and ``auto_edge``: its RSTP edge settings (``stp_protocol = "rstp"``).
    """

    name: str
    pvid: int = 1
    tagged: tuple[int, ...] = ()
    storm_pps: int = 0
    path_cost: int = DEFAULT_PATH_COST
    port_priority: int = DEFAULT_PORT_PRIORITY
    edge: bool = False
    auto_edge: bool = True


@dataclass(frozen=True, slots=True)
class StaticFdbConfig:
    """A static FDB entry: ``mac`` is behind member ``port`` (in VLAN ``vid``, None: its PVID);
    on a vxlan member, ``dst`` is the remote VTEP it is behind."""

    mac: bytes
    port: str
    vid: int | None = None
    dst: IPv4Address | IPv6Address | None = None


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """What makes an interface a bridge: its members, VLAN filtering, static entries."""

    ports: tuple[BridgePortConfig, ...]
    vlan_filtering: bool = False
    pvid: int = 1
    """The bridge's own VLAN (with filtering): what its interface sends and receives untagged."""
    fdb: tuple[StaticFdbConfig, ...] = ()
    stp: StpSettings | None = None
    """The spanning tree's settings (None: no STP)."""

    @property
    def members(self) -> tuple[str, ...]:
        """Return the member interface names, in order."""
        return tuple(p.name for p in self.ports)


@dataclass(frozen=True, slots=True)
class VxlanConfig:
    """What makes an interface a VXLAN one: its VNI, local VTEP, port and remote VTEPs.

    BUM frames go to every ``remotes`` VTEP (head-end replication) or to
    ``group`` (one of the two); ``learning`` records inner source MACs
    behind the VTEP they came from.  ``underlay`` names a vnet whose own
    UDP socket carries the outer packets instead of the host's; ``tunnel_gso``
    hands TCP super-frames to the kernel whole, where it can segment them, and
    takes the VTEPs' whole from it.
    """

    vni: int
    local: IPv4Address | IPv6Address
    port: int = 4789
    remotes: tuple[IPv4Address | IPv6Address, ...] = ()
    group: IPv4Address | IPv6Address | None = None
    learning: bool = True
    underlay: str | None = None
    """The vnet whose UDP carries the outer packets (None: a socket of the host's)."""
    tunnel_gso: bool = False
    """TCP super-frames leave whole through a TAP with UDP-tunnel GSO (Linux 6.17+), and
    the VTEPs' arrive whole through it (a tc redirect from the device holding ``local``)."""


@dataclass(frozen=True, slots=True)
class InterfaceConfig:
    """One interface of a vnet; ``ra`` None sends no router advertisements."""

    name: str
    type: str
    addresses: tuple[IPv4Interface | IPv6Interface, ...]
    mtu: int
    mac: bytes | None
    up: bool
    host: HostConfig | None
    peer: tuple[str, str] | None
    ra: RaConfig | None = None
    offload: bool = True
    """Take TCP super-frames and partial checksums from the host (tap only)."""
    bridge: BridgeConfig | None = None
    """Members and settings of a ``bridge`` interface."""
    vlan: tuple[str, int] | None = None
    """(parent interface, VID) of a ``vlan`` interface."""
    vxlan: VxlanConfig | None = None
    """VNI, VTEPs and port of a ``vxlan`` interface."""
    dhcp6: Dhcp6Config | None = None
    """A stateless DHCPv6 server on the interface (None: none)."""
    dhcp: bool = False
    """The interface takes its IPv4 address and a default route by DHCP."""


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One static route of a vnet (``via`` is of the same family as ``prefix``)."""

    prefix: IPv4Network | IPv6Network
    type: str
    via: IPv4Address | IPv6Address | None
    interface: str | None
    distance: int = 1
    """Administrative distance (1..255); above a protocol's, a floating static route."""
    paths: tuple[IPv4Address | IPv6Address, ...] = ()
    """The next hops of a multipath (ECMP) route (``via`` a list; ``via`` is then None)."""
    weights: tuple[int, ...] = ()
    """The weight of each of ``paths`` (``"ADDR weight N"``); empty when all are 1."""


@dataclass(frozen=True, slots=True)
class VnetConfig:
    """One virtual network stack."""

    name: str
    forwarding: bool
    interfaces: tuple[InterfaceConfig, ...]
    routes: tuple[RouteConfig, ...]
    sysctl: tuple[tuple[str, bool | int | float], ...] = ()
    """Knob settings, values already checked against the knob: the ``[limits]``
    first (as ``vnet.limits.KIND``), then ``[sysctl]`` in file order."""
    firewall: FirewallConfig | None = None
    """The vnet's firewall, if it has a ``[vnets.NAME.firewall]`` table."""
    permissions: Grants = NO_GRANTS
    """Who may manage the vnet or open sockets in it (``[vnets.NAME.permissions]``)."""
    worker: int | None = None
    """The worker a top-level vnet is pinned to (None: the daemon chooses)."""
    mirror: MirrorConfig | None = None
    """The vnet's control-plane mirror, if it has a ``[vnets.NAME.mirror]`` table."""
    dhcp: DhcpConfig | None = None
    """The vnet's DHCP server, if it has a ``[vnets.NAME.dhcp]`` table."""

    def rank(self, icfg: InterfaceConfig) -> int:
        """Return when ``icfg`` is created among the vnet's interfaces (destroyed in reverse).

        0: TAPs and epairs; 1: VLANs on them; 2: bridges (over those); 3: VLANs on bridges.
        """
        if icfg.type == "bridge":
            return 2
        if icfg.vlan is not None:
            parent = next((i for i in self.interfaces if i.name == icfg.vlan[0]), None)
            return 3 if parent is not None and parent.type == "bridge" else 1
        return 0

    def ports(self) -> dict[str, str]:
        """Return the bridge of every interface that is a bridge member, by member name."""
        return {
            port: icfg.name
            for icfg in self.interfaces
            if icfg.bridge is not None
            for port in icfg.bridge.members
        }

    @property
    def limits(self) -> dict[str, int]:
        """Return the vnet's own limits by kind (``[vnets.NAME.limits]``)."""
        found = {}
        for name, value in self.sysctl:
            kind = limits_.kind_of(name)
            if kind is not None:
                found[kind] = int(value)
        return found


@dataclass(frozen=True, slots=True)
class MirrorConfig:
    """A vnet's control-plane mirror (netns mode): its namespace, the protocols synced."""

    netns: str
    sync: tuple[str, ...] | None = None
    """Kernel route protocols synced into the vnet (None: the default set)."""
    vrf_dir: str | None = None
    """A directory the namespace is also bound into, for a routing daemon with a netns
    VRF backend (FRR's ``zebra -n``) that serves every namespace there."""


@dataclass(frozen=True, slots=True)
class DhcpConfig:
    """A vnet's DHCPv4 server (its pools, each keyed by its subnet) and relays (by interface)."""

    pools: tuple[PoolSettings, ...]
    relays: tuple[tuple[str, RelaySettings], ...] = ()
    source: Mapping[str, object] | None = field(default=None, compare=False)
    """The table it was read from, written back by ``vrouterctl config dump``."""


@dataclass(frozen=True, slots=True)
class FirewallConfig:
    """A vnet's firewall: on or off, its state limit and its ruleset."""

    enable: bool
    max_states: int | None
    ruleset: Ruleset


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """Process-wide daemon settings."""

    control_socket: str
    state_dir: str
    log_level: str
    metrics: tuple[str, int] | None = None
    """Where the Prometheus exporter listens: (host, port), the host without
    IPv6 brackets; None (no ``metrics`` key) runs no exporter."""
    admins: tuple[Principal, ...] = ()
    """Who may do daemon-wide operations (reload, modules, top-level vnets)."""
    socks: tuple[SocksConfig, ...] = ()
    """SOCKS5 gateways into vnets (``[[daemon.socks]]``)."""
    workers: int = 1
    """Forwarding processes, each running whole top-level vnets (``vrouter.daemon.workers``)."""
    log_format: str = DEFAULT_LOG_FORMAT
    """How log lines are written: ``text`` or ``json`` (``vrouter.daemon.logs``)."""
    metrics_collectors: tuple[str, ...] | None = None
    """The metrics sources served (``link``, ``inet``, ``process`` …; None: all of them);
    a scrape's ``collect[]=`` picks among these."""
    metrics_exclude: tuple[str, ...] = ()
    """Metric family names never served, as shell patterns (``vrouter_tcp_*``)."""
    data_dir: str = DEFAULT_DATA_DIR
    """Where state that outlives a reboot is written (``dhcp/VNET.leases``)."""
    tap_qdisc: str = DEFAULT_TAP_QDISC
    """The root qdisc of the host side of every TAP the daemon creates (``TAP_QDISCS``)."""
    tap_txqueuelen: int = DEFAULT_TAP_TXQUEUELEN
    """The host side's transmit queue length, in frames: the TAP's queue towards the
    daemon (the kernel drops beyond it)."""
    sparse_first: bool = True
    """TAP readers and epairs let the small frames of other flows go before bulk frames
    (TCP super-frames) (``vrouter.link.sparse``)."""
    busy_poll: int = 0
    """Microseconds the loop keeps polling the TAPs after a batch before it sleeps (0: it
    sleeps at once; ``vrouter.io.driver``)."""


@dataclass(frozen=True, slots=True)
class SocksConfig:
    """A SOCKS5 gateway: a listener on the daemon's machine whose CONNECTs leave from a vnet."""

    vnet: str
    listen: tuple[str, int]
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, validated configuration file."""

    path: str
    daemon: DaemonConfig
    vnets: tuple[VnetConfig, ...]

    def interface(self, vnet: str, name: str) -> InterfaceConfig | None:
        """Return interface ``name`` of vnet ``vnet``, if the configuration has it."""
        for vcfg in self.vnets:
            if vcfg.name == vnet:
                return next((i for i in vcfg.interfaces if i.name == name), None)
        return None

    def policy(self) -> Policy:
        """Return the rights this configuration grants (admins, grants by vnet name)."""
        return Policy(
            self.daemon.admins, {v.name: v.permissions for v in self.vnets if v.permissions}
        )
