"""Load the daemon's TOML configuration file into typed, frozen objects.

Responsibility: read one TOML file (``load``) or string (``parse``), check
every value in it and build a ``Config``: the daemon settings plus one
``VnetConfig`` per virtual network stack, with its interfaces (their IPv4
and IPv6 addresses, router advertisements and TAP hosts) and static routes.

Guarantees:

- A returned ``Config`` is fully valid: every key is known, every value has
  the right type and range, names follow their grammar, every cross
  reference resolves (route interfaces, next hops on a connected network,
  epair peers that name each other, declared parent vnets) and nothing that
  must be unique is duplicated (TAP names, host netns, addresses, routes).
- IPv4 and IPv6 mix freely. IPv6 link-local addresses (fe80::/10) are per
  link: the same one may sit on several interfaces of a vnet and their
  networks may overlap, but an interface has at most one (it replaces the
  automatic EUI-64 one), a link-local next hop needs ``interface``, and a
  link-local host ``gateway6`` needs no matching host address.
- ``InterfaceConfig.ra`` is complete: omitted values are filled with their
  defaults, and without ``prefixes`` it advertises every global IPv6 network
  of the interface (autonomous only for /64).
- Otherwise ``ConfigError`` is raised carrying *all* problems found, each
  with the file, the dotted key path and the reason, so an operator can fix
  the file in one go. Problems that would only follow from another reported
  problem are not repeated.
- ``Config.vnets`` lists parents before their children and otherwise keeps
  file order; interfaces and routes keep file order.
- A file without ``[vnets]`` configures a single vnet named ``vnet0`` from its
  top-level ``forwarding``, ``interfaces`` and ``routes``.
- An empty ``[vnets]`` table is valid and configures no vnet at all.
- Limits (``[vnets.NAME.limits]``) never exceed the parent vnet's, the
  interfaces and routes a vnet's config declares fit its limits, and a
  capped knob (``net.pf.states_max``, ``max_states`` …) fits its limit.
  They reach ``VnetConfig.sysctl`` as the ``vnet.limits.*`` knobs, first.
- Permission principals (``uid:N``, ``gid:N``, ``user:NAME``,
  ``group:NAME``) parse, and names resolve on this system.
- ``parse`` does no I/O; ``load`` only reads the file (and resolves user
  and group names).

Key paths are dotted (``vnets.red.interfaces.vr-red0.mtu``), list items take
their index in brackets (``vnets.red.routes[1].via``), a name that contains a
character other than ``[A-Za-z0-9_/-]`` is quoted (``interfaces."eth0.100"``),
and the key of a file-level problem (unreadable file, TOML syntax) is ``""``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
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
    Policy,
    Principal,
    PrincipalError,
    parse_principal,
)
from vrouter.core.sysctl import Sysctl, SysctlError
from vrouter.core.tomlkeys import join as _join
from vrouter.core.tomlkeys import type_name as _type_name
from vrouter.firewall.rules import Ruleset, RulesetError, parse_ruleset

__all__ = [
    "DEFAULT_VNET",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DaemonConfig",
    "HostConfig",
    "InterfaceConfig",
    "RaConfig",
    "RaPrefixConfig",
    "RouteConfig",
    "VnetConfig",
    "load",
    "parse",
]

DEFAULT_VNET = "vnet0"
"""Name of the single vnet configured by a file that declares no [vnets]."""

DEFAULT_CONTROL_SOCKET = "/run/vrouter/control.sock"
DEFAULT_STATE_DIR = "/run/vrouter"
DEFAULT_LOG_LEVEL = "info"
DEFAULT_MTU = 1500

LOG_LEVELS = ("debug", "info", "warning", "error")
INTERFACE_TYPES = ("tap", "epair")
ROUTE_TYPES = ("unicast", "blackhole", "reject")
MTU_MIN = 68
MTU_MAX = 65535
IPV6_MTU_MIN = 1280
"""Smallest MTU of a link that carries IPv6 (RFC 8200 section 5)."""
UNIX_PATH_MAX = 107
"""Longest AF_UNIX socket path in bytes (sun_path is 108 including the NUL)."""

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
SLAAC_PREFIX_LENGTH = 64
"""The only prefix length stateless autoconfiguration works with (RFC 4862, 4291)."""


# --------------------------------------------------------------------------
# Public values
# --------------------------------------------------------------------------


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
    (then ``addresses`` may be empty).
    """

    netns: str
    addresses: tuple[IPv4Interface | IPv6Interface, ...]
    gateway: IPv4Address | None
    gateway6: IPv6Address | None = None
    slaac: bool = False


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


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One static route of a vnet (``via`` is of the same family as ``prefix``)."""

    prefix: IPv4Network | IPv6Network
    type: str
    via: IPv4Address | IPv6Address | None
    interface: str | None
    distance: int = 1
    """Administrative distance (1..255); above a protocol's, a floating static route."""


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


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> Config:
    """Read and parse the configuration file at *path*."""
    return parse(read(path), os.fspath(path))


def read(path: str | os.PathLike[str]) -> str:
    """Return the text of the configuration file at *path*; ConfigError if it cannot."""
    file = os.fspath(path)
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigProblem(file, "", f"cannot read file: {reason}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = ConfigProblem(file, "", f"file is not valid UTF-8: {exc}")
        raise ConfigError([problem]) from None


def parse(text: str, path: str = "<string>") -> Config:
    """Parse configuration *text*; *path* names it in problems."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(path, "", f"invalid TOML: {exc}")]) from None
    return _Parser(path).document(document)


# --------------------------------------------------------------------------
# Grammar of names and addresses
# --------------------------------------------------------------------------

_VNET_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_NETNS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_WITH_PREFIX = re.compile(r"([^/]*)/([0-9]{1,3})")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_PORT = re.compile(r"[0-9]{1,5}")
_LIMITED_BROADCAST = IPv4Address("255.255.255.255")
_LINK_LOCAL_NETWORK = IPv6Network("fe80::/10")
_MULTICAST_NETWORK = IPv6Network("ff00::/8")


def _knobs() -> Sysctl:
    """Return the sysctl tree of the built-in subsystems (to check names and values)."""
    from vrouter.stack import builtin_sysctl

    return builtin_sysctl()


def _vnet_name_error(name: str) -> str | None:
    """Return why *name* is not a valid vnet name, or None."""
    for segment in name.split("/"):
        if not _VNET_SEGMENT.fullmatch(segment):
            return (
                f"invalid vnet name {name!r}: each '/'-separated part must be 1-32 "
                "characters from [A-Za-z0-9_-], starting with a letter or digit"
            )
    return None


def _ifname_error(name: str) -> str | None:
    """Return why *name* is not a valid interface name, or None."""
    if not _IFNAME.fullmatch(name) or name in (".", ".."):
        return (
            f"invalid interface name {name!r}: must be 1-15 characters "
            "from [A-Za-z0-9_.-] (Linux IFNAMSIZ)"
        )
    return None


def _is_link_local(address: IPv4Address | IPv6Address) -> bool:
    """Return whether *address* is an IPv6 link-local address (fe80::/10)."""
    return isinstance(address, IPv6Address) and address.is_link_local


def _parse_ip(text: str, whole: str) -> IPv4Address | IPv6Address | str:
    """Parse the address part *text* of value *whole*, or return why not."""
    if ":" not in text:
        try:
            return IPv4Address(text)
        except ipaddress.AddressValueError as exc:
            return f"{whole!r}: invalid IPv4 address: {exc}"
    if "%" in text:
        zone = text.partition("%")[2]
        return (
            f"{whole!r} has a zone index ('%{zone}'); write the address without it "
            "(the interface gives the zone)"
        )
    try:
        return IPv6Address(text)
    except ipaddress.AddressValueError as exc:
        return f"{whole!r}: invalid IPv6 address: {exc}"


def _ipv6_unicast_error(address: IPv6Address, text: str, need: str) -> str | None:
    """Return why IPv6 *address* (written *text*) is not usable unicast, or None."""
    if address.is_multicast:
        return f"{text!r} is a multicast address (ff00::/8); {need}"
    if address.is_unspecified:
        return f"{text!r} is the unspecified address; {need}"
    if address.is_loopback:
        return f"{text!r} is the loopback address; {need}"
    if address.ipv4_mapped is not None:
        return (
            f"{text!r} is an IPv4-mapped address (::ffff:0:0/96), not a real IPv6 address; {need}"
        )
    return None


def _split_prefix(
    text: str, example4: str, example6: str
) -> tuple[IPv4Address | IPv6Address, int] | str:
    """Split ``ADDRESS/PREFIXLEN`` (IPv4 or IPv6) into its parts, or return why not."""
    example = example6 if ":" in text else example4
    match = _WITH_PREFIX.fullmatch(text)
    if match is None:
        if "/" not in text:
            return f"{text!r} has no prefix length; write ADDRESS/PREFIXLEN, e.g. {example}"
        return f"{text!r} is not ADDRESS/PREFIXLEN with a decimal prefix length, e.g. {example}"
    address_text, length_text = match.groups()
    address = _parse_ip(address_text, text)
    if isinstance(address, str):
        return address
    length = int(length_text)
    if length > address.max_prefixlen:
        return f"{text!r}: prefix length {length} is out of range 0..{address.max_prefixlen}"
    return address, length


def _parse_interface_address(text: str) -> IPv4Interface | IPv6Interface | str:
    """Parse an interface address ``A.B.C.D/LEN`` or ``X:X::X/LEN``, or return why not."""
    split = _split_prefix(text, "192.0.2.1/24", "2001:db8::1/64")
    if isinstance(split, str):
        return split
    address, length = split
    if isinstance(address, IPv6Address):
        error = _ipv6_unicast_error(address, text, "an interface needs a unicast address")
        if error is not None:
            return error
        value6 = IPv6Interface((address, length))
        if length < 127 and address == value6.network.network_address:
            return (
                f"{text!r} is the Subnet-Router anycast address of {value6.network}; "
                "an interface needs a host address"
            )
        return value6
    value = IPv4Interface((address, length))
    if length < 31 and address == value.network.network_address:
        return (
            f"{text!r} is the network address of {value.network}; an interface needs a host address"
        )
    if length < 31 and address == value.network.broadcast_address:
        return (
            f"{text!r} is the broadcast address of {value.network}; "
            "an interface needs a host address"
        )
    if address.is_multicast:
        return f"{text!r} is a multicast address; an interface needs a unicast address"
    if address.is_unspecified or address == _LIMITED_BROADCAST:
        return f"{text!r} is not a usable interface address"
    return value


def _parse_network(text: str) -> IPv4Network | IPv6Network | str:
    """Parse a destination prefix ``A.B.C.D/LEN`` or ``X:X::/LEN``, or return why not."""
    split = _split_prefix(
        text,
        "198.51.100.0/24 (or A.B.C.D/32 for one host)",
        "2001:db8::/32 (or ADDRESS/128 for one host)",
    )
    if isinstance(split, str):
        return split
    network = ipaddress.ip_network(split, strict=False)
    if network.network_address != split[0]:
        return f"{text!r} has host bits set; did you mean {network}?"
    return network


def _parse_listen(text: str) -> tuple[str, int] | str:
    """Parse a TCP listen address ``HOST:PORT`` or ``[IPV6]:PORT``, or return why not.

    HOST is an IPv4 address or a host name; an IPv6 address goes in brackets.
    The returned host carries no brackets.
    """
    example = 'e.g. "127.0.0.1:9585" or "[::1]:9585"'
    host, sep, port_text = text.rpartition(":")
    if not sep:
        return f"{text!r} has no port; write HOST:PORT, {example}"
    if not _PORT.fullmatch(port_text):
        return f"{text!r}: port {port_text!r} is not a decimal number; write HOST:PORT, {example}"
    port = int(port_text)
    if not 1 <= port <= 65535:
        return f"{text!r}: port {port} is out of range 1..65535"
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(IPv6Address(host[1:-1])), port
        except ValueError:
            return f"{text!r}: {host[1:-1]!r} in brackets is not an IPv6 address"
    if ":" in host:
        return f'{text!r}: an IPv6 address must be in brackets, e.g. "[::1]:{port}"'
    if not host:
        return (
            f"{text!r} has no host; write 127.0.0.1:{port} for this machine only "
            f"or 0.0.0.0:{port} for every IPv4 address"
        )
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(IPv4Address(host)), port
        except ValueError:
            return f"{text!r}: {host!r} is not an IPv4 address"
    if not _HOSTNAME.fullmatch(host):
        return f"{text!r}: {host!r} is neither an IP address nor a host name"
    return host, port


def _parse_address(text: str) -> IPv4Address | IPv6Address | str:
    """Parse a single address ``A.B.C.D`` or ``X:X::X``, or return why not."""
    if "/" in text:
        return f"{text!r} must be a single address, without a prefix length"
    return _parse_ip(text, text)


def _parse_mac(text: str) -> bytes | str:
    """Parse ``xx:xx:xx:xx:xx:xx`` into 6 bytes, or return why not."""
    if not _MAC.fullmatch(text):
        return f"{text!r} is not a MAC address of the form xx:xx:xx:xx:xx:xx"
    value = bytes.fromhex(text.replace(":", ""))
    if value[0] & 0x01:
        return (
            f"{text!r} is a multicast MAC address (low bit of the first octet set); "
            "an interface needs a unicast one, e.g. 02:00:00:00:00:01"
        )
    if not any(value):
        return f"{text!r} is the all-zero MAC address"
    return value






def _toml_header(name: str) -> str:
    """Return the TOML table header that declares vnet *name*."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return f"[vnets.{name}]"
    return f'[vnets."{name}"]'


# --------------------------------------------------------------------------
# Intermediate results: what parsed, with key paths for cross-checks
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Address:
    value: IPv4Interface | IPv6Interface
    key: str


@dataclass(frozen=True, slots=True)
class _Interface:
    key: str
    name: str
    type: str | None  # None: missing or invalid (already reported)
    addresses: tuple[_Address, ...]
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
        )


@dataclass(frozen=True, slots=True)
class _Route:
    key: str
    prefix: IPv4Network | IPv6Network | None
    type: str | None
    via: IPv4Address | IPv6Address | None
    interface: str | None
    has_via: bool
    has_interface: bool
    distance: int = 1


@dataclass(frozen=True, slots=True)
class _Vnet:
    key: str
    name: str
    name_ok: bool
    forwarding: bool
    interfaces: tuple[_Interface, ...]
    routes: tuple[_Route, ...]
    sysctl: tuple[tuple[str, bool | int | float], ...] = ()
    firewall: FirewallConfig | None = None
    permissions: Grants = NO_GRANTS
    limits: tuple[tuple[str, int], ...] = ()
    """Own limits in file order (kind, value)."""
    limits_key: str = ""
    worker: int | None = None

    def interface(self, name: str) -> _Interface | None:
        for iface in self.interfaces:
            if iface.name == name:
                return iface
        return None

    def config(self) -> VnetConfig:
        routes: list[RouteConfig] = []
        for r in self.routes:
            assert r.prefix is not None and r.type is not None, "only built when valid"
            routes.append(RouteConfig(r.prefix, r.type, r.via, r.interface, r.distance))
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
        )


# --------------------------------------------------------------------------
# The parser: collects problems, never stops at the first
# --------------------------------------------------------------------------

_TOP_KEYS = (
    "daemon",
    "vnets",
    "interfaces",
    "routes",
    "forwarding",
    "sysctl",
    "firewall",
    "limits",
    "permissions",
)
_DEFAULT_VNET_KEYS = (
    "interfaces",
    "routes",
    "forwarding",
    "sysctl",
    "firewall",
    "limits",
    "permissions",
)
_DAEMON_KEYS = (
    "control_socket",
    "state_dir",
    "log_level",
    "metrics",
    "admins",
    "socks",
    "workers",
)
MAX_WORKERS = 64
"""Most forwarding processes one daemon runs."""
_SOCKS_KEYS = ("vnet", "listen", "username", "password")
_VNET_KEYS = (
    "forwarding",
    "interfaces",
    "routes",
    "sysctl",
    "firewall",
    "limits",
    "permissions",
    "worker",
)
_PERMISSION_KEYS = ("manage", "sockets")
_INTERFACE_KEYS = ("type", "addresses", "mtu", "mac", "up", "host", "peer", "ra", "offload")
_HOST_KEYS = ("netns", "addresses", "gateway", "gateway6", "slaac")
_RA_KEYS = (
    "interval",
    "lifetime",
    "hop_limit",
    "managed",
    "other",
    "mtu",
    "prefixes",
    "rdnss",
    "rdnss_lifetime",
)
_RA_PREFIX_KEYS = ("prefix", "onlink", "autonomous", "valid_lifetime", "preferred_lifetime")
_ROUTE_KEYS = ("to", "type", "via", "interface", "distance")


class _Parser:
    """Walks one TOML document, recording every problem it finds."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[ConfigProblem] = []

    # -- reporting and typed access -----------------------------------------

    def problem(self, key: str, reason: str) -> None:
        self.problems.append(ConfigProblem(self.file, key, reason))

    def wrong_type(self, key: str, expected: str, value: object, hint: str = "") -> None:
        self.problem(key, f"expected {expected}, got {_type_name(value)}{hint}")

    def check_keys(
        self,
        table: Mapping[str, object],
        key: str,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
        nested_vnet: str | None = None,
    ) -> None:
        """Report unknown keys in *table* and missing *required* ones."""
        for name, value in table.items():
            if name in allowed:
                continue
            reason = f"unknown key {name!r} (allowed: {', '.join(allowed)})"
            if nested_vnet is not None and isinstance(value, dict):
                child = _toml_header(f"{nested_vnet}/{name}")
                reason += f"; a child vnet is declared as {child}"
            self.problem(_join(key, name), reason)
        for name in required:
            if name not in table:
                self.problem(_join(key, name), f"missing required key {name!r}")

    def table(self, parent: Mapping[str, object], name: str, key: str) -> dict[str, object] | None:
        value = parent.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.wrong_type(_join(key, name), "a table", value)
            return None
        return value

    def string(self, parent: Mapping[str, object], name: str, key: str) -> str | None:
        value = parent.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.wrong_type(_join(key, name), "a string", value)
            return None
        return value

    def boolean(self, parent: Mapping[str, object], name: str, key: str) -> bool | None:
        value = parent.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.wrong_type(_join(key, name), "a boolean (true or false)", value)
            return None
        return value

    def integer(self, parent: Mapping[str, object], name: str, key: str) -> int | None:
        value = parent.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(_join(key, name), "an integer", value)
            return None
        return value

    def number(self, parent: Mapping[str, object], name: str, key: str) -> float | None:
        value = parent.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(_join(key, name), "a number", value)
            return None
        return float(value)

    def choice(
        self,
        parent: Mapping[str, object],
        name: str,
        key: str,
        choices: tuple[str, ...],
    ) -> str | None:
        value = self.string(parent, name, key)
        if value is None:
            return None
        if value not in choices:
            self.problem(_join(key, name), f"{value!r} is not one of: {', '.join(choices)}")
            return None
        return value

    def addresses(
        self, parent: Mapping[str, object], key: str
    ) -> tuple[tuple[_Address, ...], bool]:
        """Parse an ``addresses`` array; return what parsed and whether all did."""
        value = parent.get("addresses")
        if value is None:
            return (), True
        akey = _join(key, "addresses")
        if not isinstance(value, list):
            hint = f'; write addresses = ["{value}"]' if isinstance(value, str) else ""
            self.wrong_type(akey, "an array of strings", value, hint)
            return (), False
        parsed: list[_Address] = []
        complete = True
        for index, item in enumerate(value):
            ikey = f"{akey}[{index}]"
            if not isinstance(item, str):
                self.wrong_type(ikey, "a string", item)
                complete = False
                continue
            address = _parse_interface_address(item)
            if isinstance(address, str):
                self.problem(ikey, address)
                complete = False
                continue
            earlier = next((a for a in parsed if a.value.ip == address.ip), None)
            if earlier is not None:
                self.problem(ikey, f"address {address.ip} is listed twice (also {earlier.key})")
                continue
            parsed.append(_Address(address, ikey))
        return tuple(parsed), complete

    def check_workers(self, vnets: list[_Vnet], workers: int) -> None:
        """A ``worker`` pin is on a top-level vnet (its subtree follows) and names a worker."""
        for vnet in vnets:
            if vnet.worker is None:
                continue
            where = _join(vnet.key, "worker")
            if "/" in vnet.name:
                self.problem(
                    where,
                    f"only a top-level vnet is pinned to a worker; {vnet.name} runs "
                    f"where {vnet.name.partition('/')[0]} runs",
                )
            elif not 0 <= vnet.worker < workers:
                self.problem(
                    where,
                    f"worker {vnet.worker} does not exist: daemon.workers = {workers} "
                    f"(workers 0..{workers - 1})",
                )

    # -- the document --------------------------------------------------------

    def document(self, doc: Mapping[str, object]) -> Config:
        self.check_keys(doc, "", _TOP_KEYS)
        daemon = self.daemon(doc)
        vnets: list[_Vnet] = []
        if "vnets" in doc:
            for name in _DEFAULT_VNET_KEYS:
                if name in doc:
                    self.problem(
                        name,
                        f"top-level {name!r} configures the default vnet {DEFAULT_VNET} "
                        "only when no [vnets] are declared; "
                        f"move it under [vnets.NAME] (e.g. [vnets.{DEFAULT_VNET}])",
                    )
            table = self.table(doc, "vnets", "")
            for name, value in (table or {}).items():
                key = _join("vnets", name)
                if not isinstance(value, dict):
                    self.wrong_type(key, "a table", value)
                    continue
                vnets.append(self.vnet(name, value, key, nested=True))
        else:
            vnets.append(self.vnet(DEFAULT_VNET, doc, "", nested=False))

        self.check_hierarchy(vnets)
        names = {v.name for v in vnets}
        for i, gateway in enumerate(daemon.socks):
            if gateway.vnet not in names:
                self.problem(f"daemon.socks[{i}].vnet", f"no vnet named {gateway.vnet!r}")
        self.check_workers(vnets, daemon.workers)
        self.check_limits(vnets)
        self.check_unique_taps(vnets)
        self.check_unique_netns(vnets)
        self.check_peers(vnets)
        for vnet in vnets:
            self.check_connected(vnet)
            self.check_routes(vnet)

        if self.problems:
            raise ConfigError(self.problems)
        return Config(
            path=self.file,
            daemon=daemon,
            vnets=tuple(v.config() for v in _parents_first(vnets)),
        )

    def daemon(self, doc: Mapping[str, object]) -> DaemonConfig:
        table = self.table(doc, "daemon", "") or {}
        self.check_keys(table, "daemon", _DAEMON_KEYS)
        control_socket = self.path(table, "control_socket") or DEFAULT_CONTROL_SOCKET
        if len(os.fsencode(control_socket)) > UNIX_PATH_MAX:
            self.problem(
                "daemon.control_socket",
                f"{control_socket!r} is {len(os.fsencode(control_socket))} bytes long; "
                f"AF_UNIX socket paths are limited to {UNIX_PATH_MAX} bytes",
            )
        state_dir = self.path(table, "state_dir") or DEFAULT_STATE_DIR
        log_level = self.choice(table, "log_level", "daemon", LOG_LEVELS) or DEFAULT_LOG_LEVEL
        metrics = None
        if "metrics" in table:
            value = table["metrics"]
            if not isinstance(value, str):
                self.wrong_type(
                    "daemon.metrics", "a string", value, '; write metrics = "127.0.0.1:9585"'
                )
            else:
                parsed = _parse_listen(value)
                if isinstance(parsed, str):
                    self.problem("daemon.metrics", parsed)
                else:
                    metrics = parsed
        admins = self.principals(table, "admins", "daemon")
        workers = self.integer(table, "workers", "daemon")
        if workers is not None and not 1 <= workers <= MAX_WORKERS:
            self.problem("daemon.workers", f"{workers} is out of range 1..{MAX_WORKERS}")
            workers = None
        return DaemonConfig(
            control_socket,
            state_dir,
            log_level,
            metrics,
            admins,
            self.socks(table),
            workers or 1,
        )

    def socks(self, table: Mapping[str, object]) -> tuple[SocksConfig, ...]:
        """Parse ``[[daemon.socks]]``: vnet, listen (host:port), optional username/password."""
        value = table.get("socks")
        if value is None:
            return ()
        if not isinstance(value, list):
            self.wrong_type("daemon.socks", "an array of tables ([[daemon.socks]])", value)
            return ()
        gateways = []
        for i, item in enumerate(value):
            key = f"daemon.socks[{i}]"
            if not isinstance(item, dict):
                self.wrong_type(key, "a table", item)
                continue
            self.check_keys(item, key, _SOCKS_KEYS, required=("vnet", "listen"))
            vnet = self.string(item, "vnet", key)
            listen = self.string(item, "listen", key)
            parsed = _parse_listen(listen) if listen is not None else None
            if isinstance(parsed, str):
                self.problem(_join(key, "listen"), parsed)
                parsed = None
            username = self.string(item, "username", key)
            password = self.string(item, "password", key)
            if (username is None) != (password is None):
                self.problem(key, "give both username and password, or neither")
            for name, text in (("username", username), ("password", password)):
                if text is not None and not 1 <= len(text.encode()) <= 255:
                    self.problem(_join(key, name), "must be 1..255 bytes (RFC 1929)")
            if vnet is not None and parsed is not None:
                gateways.append(SocksConfig(vnet, parsed, username, password))
        return tuple(gateways)

    def principals(self, table: Mapping[str, object], name: str, key: str) -> tuple[Principal, ...]:
        """Parse an array of principals (``uid:N``, ``gid:N``, ``user:X``, ``group:X``)."""
        value = table.get(name)
        if value is None:
            return ()
        pkey = _join(key, name)
        if not isinstance(value, list):
            hint = f'; write {name} = ["{value}"]' if isinstance(value, str) else ""
            self.wrong_type(pkey, "an array of strings", value, hint)
            return ()
        found: list[Principal] = []
        for index, item in enumerate(value):
            ikey = f"{pkey}[{index}]"
            if not isinstance(item, str):
                self.wrong_type(ikey, "a string", item)
                continue
            try:
                principal = parse_principal(item)
            except PrincipalError as err:
                self.problem(ikey, str(err))
                continue
            if principal not in found:
                found.append(principal)
        return tuple(found)

    def permissions(self, table: Mapping[str, object], key: str) -> Grants:
        """Check ``[... .permissions]``: ``manage`` and ``sockets`` arrays of principals."""
        perms = self.table(table, "permissions", key)
        if perms is None:
            return Grants()
        pkey = _join(key, "permissions")
        self.check_keys(perms, pkey, _PERMISSION_KEYS)
        return Grants(
            manage=self.principals(perms, "manage", pkey),
            sockets=self.principals(perms, "sockets", pkey),
        )

    def limits(self, table: Mapping[str, object], key: str) -> tuple[tuple[str, int], ...]:
        """Check ``[... .limits]``: known kinds, positive integers (omit a kind: no limit)."""
        lim = self.table(table, "limits", key)
        if lim is None:
            return ()
        lkey = _join(key, "limits")
        self.check_keys(lim, lkey, limits_.KINDS)
        found: list[tuple[str, int]] = []
        for kind in lim:
            if kind not in limits_.KINDS:
                continue
            value = self.integer(lim, kind, lkey)
            if value is None:
                continue
            if not 1 <= value <= limits_.MAXIMUM:
                self.problem(
                    _join(lkey, kind),
                    f"{value} is out of range 1..{limits_.MAXIMUM} "
                    "(leave the key out for no limit of its own)",
                )
                continue
            found.append((kind, value))
        return tuple(found)

    def path(self, table: Mapping[str, object], name: str) -> str | None:
        value = self.string(table, name, "daemon")
        if value is None:
            return None
        key = _join("daemon", name)
        if "\x00" in value:
            self.problem(key, f"{value!r} contains a NUL character")
            return None
        if not value.startswith("/"):
            self.problem(key, f"{value!r} is not an absolute path (must start with '/')")
            return None
        return value

    # -- one vnet -------------------------------------------------------------

    def vnet(self, name: str, table: Mapping[str, object], key: str, nested: bool) -> _Vnet:
        name_ok = True
        if nested:
            self.check_keys(table, key, _VNET_KEYS, nested_vnet=name)
            error = _vnet_name_error(name)
            if error is not None:
                self.problem(key, error)
                name_ok = False
        forwarding = self.boolean(table, "forwarding", key)
        interfaces: list[_Interface] = []
        for iname, value in (self.table(table, "interfaces", key) or {}).items():
            ikey = _join(_join(key, "interfaces"), iname)
            if not isinstance(value, dict):
                self.wrong_type(ikey, "a table", value)
                continue
            interfaces.append(self.interface(iname, value, ikey))
        if forwarding is False:
            for iface in interfaces:
                if iface.advertises:
                    self.problem(
                        iface.ra_key,
                        f"vnet {name} has forwarding = false, and a host does not advertise "
                        "itself as a router; drop 'ra' or set forwarding = true",
                    )
        routes: list[_Route] = []
        rvalue = table.get("routes")
        rkey = _join(key, "routes")
        if isinstance(rvalue, list):
            for index, item in enumerate(rvalue):
                if not isinstance(item, dict):
                    self.wrong_type(f"{rkey}[{index}]", "a table", item)
                    continue
                routes.append(self.route(item, f"{rkey}[{index}]"))
        elif rvalue is not None:
            self.wrong_type(rkey, "an array of tables ([[routes]])", rvalue)
        return _Vnet(
            key=key,
            name=name,
            name_ok=name_ok,
            forwarding=True if forwarding is None else forwarding,
            interfaces=tuple(interfaces),
            routes=tuple(routes),
            sysctl=self.sysctl(table, key),
            firewall=self.firewall(table, key),
            permissions=self.permissions(table, key),
            limits=self.limits(table, key),
            limits_key=_join(key, "limits"),
            worker=self.integer(table, "worker", key) if nested else None,
        )

    def firewall(self, table: Mapping[str, object], key: str) -> FirewallConfig | None:
        """Check ``[... .firewall]``: enable, max_states and the ruleset itself."""
        fw = self.table(table, "firewall", key)
        if fw is None:
            return None
        fkey = _join(key, "firewall")
        enable = self.boolean(fw, "enable", fkey)
        max_states = self.integer(fw, "max_states", fkey)
        if max_states is not None and not 1 <= max_states <= 10_000_000:
            self.problem(_join(fkey, "max_states"), f"{max_states} is out of range 1..10000000")
            max_states = None
        rules_table = {k: v for k, v in fw.items() if k not in ("enable", "max_states")}
        try:
            ruleset = parse_ruleset(rules_table, fkey)
        except RulesetError as err:
            for problem_key, reason in err.problems:
                self.problem(problem_key, reason)
            return None
        return FirewallConfig(True if enable is None else enable, max_states, ruleset)

    def sysctl(
        self, table: Mapping[str, object], key: str
    ) -> tuple[tuple[str, bool | int | float], ...]:
        """Check ``[... .sysctl]``: known knob names, values of the knob's type and range."""
        knobs = _knobs()
        settings: list[tuple[str, bool | int | float]] = []
        skey = _join(key, "sysctl")
        for name, value in (self.table(table, "sysctl", key) or {}).items():
            nkey = f'{skey}."{name}"'
            if limits_.kind_of(name) is not None:
                kind = name.removeprefix(limits_.KNOB_PREFIX)
                self.problem(
                    nkey, f"set limits in the limits table: {_join(_join(key, 'limits'), kind)}"
                )
                continue
            knob = knobs.knobs.get(name)
            if knob is None:
                close = [k for k in knobs.knobs if k.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]]
                hint = (
                    f"; did you mean {close[0]}?"
                    if close
                    else " (vrouterctl sysctl VNET -a lists them)"
                )
                self.problem(nkey, f"unknown sysctl {name!r}{hint}")
                continue
            try:
                settings.append((name, knob.coerce(value)))
            except SysctlError as err:
                self.problem(nkey, str(err).removeprefix(f"{name}: "))
        return tuple(settings)

    def interface(self, name: str, table: Mapping[str, object], key: str) -> _Interface:
        self.check_keys(table, key, _INTERFACE_KEYS, required=("type",))
        error = _ifname_error(name)
        if error is not None:
            self.problem(key, error)
        itype = self.choice(table, "type", key, INTERFACE_TYPES)
        addresses, complete = self.addresses(table, key)
        link_local = [a for a in addresses if _is_link_local(a.value.ip)]
        for extra in link_local[1:]:
            self.problem(
                extra.key,
                f"a second link-local address {extra.value} (also {link_local[0].key}); "
                "an interface has at most one, which replaces its automatic EUI-64 one",
            )

        mtu = self.integer(table, "mtu", key)
        if mtu is not None and not MTU_MIN <= mtu <= MTU_MAX:
            self.problem(_join(key, "mtu"), f"mtu {mtu} is out of range {MTU_MIN}..{MTU_MAX}")
            mtu = None

        mac: bytes | None = None
        mac_text = self.string(table, "mac", key)
        if mac_text is not None:
            parsed_mac = _parse_mac(mac_text)
            if isinstance(parsed_mac, str):
                self.problem(_join(key, "mac"), parsed_mac)
            else:
                mac = parsed_mac

        up = self.boolean(table, "up", key)

        ra_key = _join(key, "ra")
        advertises = table.get("ra") is True or isinstance(table.get("ra"), dict)
        ra = self.ra(table, ra_key, addresses)

        host: HostConfig | None = None
        hkey = _join(key, "host")
        if "host" in table and itype == "epair":
            self.problem(hkey, "'host' is only valid on tap interfaces")
        else:
            host_table = self.table(table, "host", key)
            if host_table is not None:
                host = self.host(host_table, hkey, addresses, name, advertises)

        if mtu is not None and mtu < IPV6_MTU_MIN:
            carries = [a.key for a in addresses if a.value.version == 6][:1]
            if advertises:
                carries.append(ra_key)
            if host is not None and any(a.version == 6 for a in host.addresses):
                carries.append(_join(hkey, "addresses"))
            if host is not None and host.slaac:
                carries.append(_join(hkey, "slaac"))
            if carries:
                self.problem(
                    _join(key, "mtu"),
                    f"mtu {mtu} is below {IPV6_MTU_MIN}, the minimum MTU of a link that "
                    f"carries IPv6 (RFC 8200), and this one does ({', '.join(carries)})",
                )

        peer: tuple[str, str] | None = None
        pkey = _join(key, "peer")
        if itype == "tap" and "peer" in table:
            self.problem(pkey, "'peer' is only valid on epair interfaces")
        elif itype == "epair" and "peer" not in table:
            self.problem(
                pkey,
                'an epair interface needs a peer: peer = "VNET:IFNAME" (e.g. "blue:ep0")',
            )
        else:
            peer_text = self.string(table, "peer", key)
            if peer_text is not None:
                peer = self.peer(peer_text, pkey)

        return _Interface(
            key=key,
            name=name,
            type=itype,
            addresses=addresses,
            addresses_complete=complete,
            mtu=DEFAULT_MTU if mtu is None else mtu,
            mac=mac,
            up=True if up is None else up,
            host=host,
            netns_key=_join(hkey, "netns"),
            peer=peer,
            peer_key=pkey,
            ra=ra,
            ra_key=ra_key,
            advertises=advertises,
            offload=self.offload(table, key, itype),
        )

    def offload(self, table: Mapping[str, object], key: str, itype: str | None) -> bool:
        value = self.boolean(table, "offload", key)
        if value is not None and itype == "epair":
            self.problem(
                _join(key, "offload"), "offload applies to tap interfaces (epairs always carry it)"
            )
        return True if value is None else value

    def peer(self, text: str, key: str) -> tuple[str, str] | None:
        vnet, sep, ifname = text.rpartition(":")
        if not sep or not vnet or not ifname:
            self.problem(key, f'{text!r} is not "VNET:IFNAME" (e.g. "blue:ep0")')
            return None
        ok = True
        for error in (_vnet_name_error(vnet), _ifname_error(ifname)):
            if error is not None:
                self.problem(key, f"peer {text!r}: {error}")
                ok = False
        return (vnet, ifname) if ok else None

    # -- router advertisements --------------------------------------------------

    def ra(
        self, table: Mapping[str, object], key: str, addresses: tuple[_Address, ...]
    ) -> RaConfig | None:
        """Parse an interface's ``ra`` (true, false or a table) at *key*."""
        value = table.get("ra")
        if value is None or value is False:
            return None
        if value is True:
            ra: Mapping[str, object] = {}
        elif isinstance(value, dict):
            ra = value
        else:
            self.wrong_type(key, "a boolean or a table", value)
            return None
        self.check_keys(ra, key, _RA_KEYS)

        interval = DEFAULT_RA_INTERVAL
        floor = 0.0  # the lower bound lifetimes are checked against
        given = self.number(ra, "interval", key)
        if given is not None and not RA_INTERVAL_MIN <= given <= RA_INTERVAL_MAX:
            self.problem(
                _join(key, "interval"),
                f"interval {given:g} is out of range {RA_INTERVAL_MIN}..{RA_INTERVAL_MAX} "
                "seconds (MaxRtrAdvInterval, RFC 4861 section 6.2.1)",
            )
        elif given is not None:
            interval = floor = given
        elif "interval" not in ra:
            floor = interval
        three_intervals = math.ceil(3 * interval)

        lifetime = self.integer(ra, "lifetime", key)
        if lifetime is not None and lifetime != 0 and not floor <= lifetime <= RA_LIFETIME_MAX:
            self.problem(
                _join(key, "lifetime"),
                f"lifetime {lifetime} is out of range: 0 (not a default router) or "
                f"{floor:g}..{RA_LIFETIME_MAX} seconds (at least the interval)",
            )
        hop_limit = self.integer(ra, "hop_limit", key)
        if hop_limit is not None and not 0 <= hop_limit <= 255:
            self.problem(_join(key, "hop_limit"), f"hop_limit {hop_limit} is out of range 0..255")
        managed = self.boolean(ra, "managed", key)
        other = self.boolean(ra, "other", key)
        mtu = self.boolean(ra, "mtu", key)
        rdnss = self.rdnss(ra, key)
        rdnss_lifetime = self.integer(ra, "rdnss_lifetime", key)
        if (
            rdnss_lifetime is not None
            and rdnss_lifetime != 0
            and not floor <= rdnss_lifetime <= LIFETIME_INFINITY
        ):
            self.problem(
                _join(key, "rdnss_lifetime"),
                f"rdnss_lifetime {rdnss_lifetime} is out of range: 0 (stop using the servers) "
                f"or {floor:g}..{LIFETIME_INFINITY} seconds (at least the interval)",
            )

        prefixes: list[RaPrefixConfig] = []
        pkey = _join(key, "prefixes")
        pvalue = ra.get("prefixes")
        if pvalue is None:
            networks: list[IPv6Network] = []
            for address in addresses:
                value6 = address.value
                if (
                    isinstance(value6, IPv6Interface)
                    and not value6.ip.is_link_local
                    and value6.network not in networks
                ):
                    networks.append(value6.network)
            prefixes = [
                RaPrefixConfig(
                    prefix=network,
                    onlink=True,
                    autonomous=network.prefixlen == SLAAC_PREFIX_LENGTH,
                    valid_lifetime=DEFAULT_VALID_LIFETIME,
                    preferred_lifetime=DEFAULT_PREFERRED_LIFETIME,
                )
                for network in networks
            ]
        elif not isinstance(pvalue, list):
            self.wrong_type(pkey, "an array of tables ([[...ra.prefixes]])", pvalue)
        else:
            seen: dict[IPv6Network, str] = {}
            for index, item in enumerate(pvalue):
                ikey = f"{pkey}[{index}]"
                if not isinstance(item, dict):
                    self.wrong_type(ikey, "a table", item)
                    continue
                prefix = self.ra_prefix(item, ikey)
                if prefix is None:
                    continue
                if prefix.prefix in seen:
                    self.problem(
                        _join(ikey, "prefix"),
                        f"duplicate prefix {prefix.prefix} (already {seen[prefix.prefix]})",
                    )
                    continue
                seen[prefix.prefix] = ikey
                prefixes.append(prefix)

        return RaConfig(
            interval=interval,
            lifetime=three_intervals if lifetime is None else lifetime,
            hop_limit=DEFAULT_RA_HOP_LIMIT if hop_limit is None else hop_limit,
            managed=bool(managed),
            other=bool(other),
            mtu=DEFAULT_RA_MTU if mtu is None else mtu,
            prefixes=tuple(prefixes),
            rdnss=rdnss,
            rdnss_lifetime=three_intervals if rdnss_lifetime is None else rdnss_lifetime,
        )

    def rdnss(self, ra: Mapping[str, object], key: str) -> tuple[IPv6Address, ...]:
        value = ra.get("rdnss")
        if value is None:
            return ()
        rkey = _join(key, "rdnss")
        if not isinstance(value, list):
            hint = f'; write rdnss = ["{value}"]' if isinstance(value, str) else ""
            self.wrong_type(rkey, "an array of strings", value, hint)
            return ()
        servers: list[IPv6Address] = []
        keys: dict[IPv6Address, str] = {}
        for index, item in enumerate(value):
            ikey = f"{rkey}[{index}]"
            if not isinstance(item, str):
                self.wrong_type(ikey, "a string", item)
                continue
            parsed = _parse_address(item)
            if isinstance(parsed, str):
                self.problem(ikey, parsed)
                continue
            if isinstance(parsed, IPv4Address):
                self.problem(ikey, f"{item!r} is IPv4; rdnss lists IPv6 DNS servers")
                continue
            error = _ipv6_unicast_error(parsed, item, "a DNS server needs a unicast address")
            if error is not None:
                self.problem(ikey, error)
                continue
            if parsed in keys:
                self.problem(ikey, f"DNS server {parsed} is listed twice (also {keys[parsed]})")
                continue
            keys[parsed] = ikey
            servers.append(parsed)
        return tuple(servers)

    def ra_prefix(self, table: Mapping[str, object], key: str) -> RaPrefixConfig | None:
        self.check_keys(table, key, _RA_PREFIX_KEYS, required=("prefix",))
        prefix: IPv6Network | None = None
        text = self.string(table, "prefix", key)
        if text is not None:
            pkey = _join(key, "prefix")
            parsed = _parse_network(text)
            if isinstance(parsed, str):
                self.problem(pkey, parsed)
            elif isinstance(parsed, IPv4Network):
                self.problem(pkey, f"{text!r} is IPv4; router advertisements carry IPv6 prefixes")
            elif parsed.prefixlen and parsed.subnet_of(_LINK_LOCAL_NETWORK):
                self.problem(
                    pkey, f"{parsed} is link-local; hosts ignore link-local prefixes (RFC 4862)"
                )
            elif parsed.prefixlen and parsed.subnet_of(_MULTICAST_NETWORK):
                self.problem(pkey, f"{parsed} is multicast; advertise a unicast prefix")
            else:
                prefix = parsed
        onlink = self.boolean(table, "onlink", key)
        autonomous = self.boolean(table, "autonomous", key)
        if autonomous and prefix is not None and prefix.prefixlen != SLAAC_PREFIX_LENGTH:
            self.problem(
                _join(key, "autonomous"),
                f"autonomous = true needs a /{SLAAC_PREFIX_LENGTH} prefix (SLAAC forms "
                f"64-bit interface identifiers); {prefix} is /{prefix.prefixlen}, "
                "set autonomous = false",
            )
        valid = self.lifetime(table, "valid_lifetime", key)
        preferred = self.lifetime(table, "preferred_lifetime", key)
        if preferred is not None and valid is not None and preferred > valid:
            self.problem(
                _join(key, "preferred_lifetime"),
                f"preferred_lifetime {preferred} is longer than valid_lifetime {valid}",
            )
        if prefix is None:
            return None
        valid_lifetime = DEFAULT_VALID_LIFETIME if valid is None else valid
        if autonomous is None:
            autonomous = prefix.prefixlen == SLAAC_PREFIX_LENGTH
        return RaPrefixConfig(
            prefix=prefix,
            onlink=True if onlink is None else onlink,
            autonomous=autonomous,
            valid_lifetime=valid_lifetime,
            preferred_lifetime=(
                min(DEFAULT_PREFERRED_LIFETIME, valid_lifetime) if preferred is None else preferred
            ),
        )

    def lifetime(self, table: Mapping[str, object], name: str, key: str) -> int | None:
        """Return a prefix lifetime (0..0xffffffff seconds) or None if absent or bad."""
        value = self.integer(table, name, key)
        if value is not None and not 0 <= value <= LIFETIME_INFINITY:
            self.problem(
                _join(key, name),
                f"{name} {value} is out of range 0..{LIFETIME_INFINITY} seconds "
                f"({LIFETIME_INFINITY} = 0xffffffff is infinity)",
            )
            return None
        return value

    # -- the host side of a tap ---------------------------------------------------

    def host(
        self,
        table: Mapping[str, object],
        key: str,
        tap_addresses: tuple[_Address, ...],
        ifname: str,
        advertised: bool,
    ) -> HostConfig:
        self.check_keys(table, key, _HOST_KEYS, required=("netns",))
        netns = self.string(table, "netns", key)
        if netns is not None and not _NETNS.fullmatch(netns):
            self.problem(
                _join(key, "netns"),
                f"invalid netns name {netns!r}: must be 1-64 characters from "
                "[A-Za-z0-9_.-], starting with a letter or digit",
            )
        addresses, complete = self.addresses(table, key)
        for address in addresses:
            same = next((a for a in tap_addresses if a.value.ip == address.value.ip), None)
            if same is not None:
                self.problem(
                    address.key,
                    f"host address {address.value.ip} is also the router's address ({same.key})",
                )
        slaac = self.boolean(table, "slaac", key)
        if slaac and not advertised:
            self.problem(
                _join(key, "slaac"),
                f"slaac = true, but interface {ifname} sends no router advertisements; "
                "add ra = true to the interface",
            )
        no_addresses = (
            complete and not addresses and not slaac and (slaac is not None or "slaac" not in table)
        )
        if no_addresses:
            self.problem(
                _join(key, "addresses"), "host has no addresses; give addresses or slaac = true"
            )
        gateway = self.gateway(table, key, "gateway", addresses, check=not no_addresses)
        gateway6 = self.gateway(table, key, "gateway6", addresses, check=not no_addresses)
        return HostConfig(
            netns=netns or "",
            addresses=tuple(a.value for a in addresses),
            gateway=gateway if isinstance(gateway, IPv4Address) else None,
            gateway6=gateway6 if isinstance(gateway6, IPv6Address) else None,
            slaac=bool(slaac),
        )

    def gateway(
        self,
        table: Mapping[str, object],
        key: str,
        name: str,
        addresses: tuple[_Address, ...],
        check: bool,
    ) -> IPv4Address | IPv6Address | None:
        """Parse host ``gateway`` (IPv4) or ``gateway6`` (IPv6) *name*.

        With *check*, a gateway must be inside one of the host's address
        networks of its family; a link-local IPv6 one needs none.
        """
        text = self.string(table, name, key)
        if text is None:
            return None
        gkey = _join(key, name)
        parsed = _parse_address(text)
        if isinstance(parsed, str):
            self.problem(gkey, parsed)
            return None
        version = 6 if name == "gateway6" else 4
        if parsed.version != version:
            if version == 4:
                self.problem(
                    gkey,
                    f"gateway {parsed} is IPv6; 'gateway' is the IPv4 default gateway, "
                    f'write gateway6 = "{parsed}"',
                )
            else:
                self.problem(
                    gkey,
                    f"gateway6 {parsed} is IPv4; 'gateway6' is the IPv6 default gateway, "
                    f'write gateway = "{parsed}"',
                )
            return None
        if any(a.value.ip == parsed for a in addresses):
            self.problem(gkey, f"{name} {parsed} is the host's own address")
            return parsed
        if not check or _is_link_local(parsed):
            return parsed
        own = [
            a.value.network
            for a in addresses
            if a.value.version == version and not _is_link_local(a.value.ip)
        ]
        if not any(parsed in network for network in own):
            networks = ", ".join(str(n) for n in own) or "none"
            if version == 4:
                reason = (
                    f"gateway {parsed} is not inside any of the host's address "
                    f"networks ({networks})"
                )
            else:
                reason = (
                    f"gateway6 {parsed} is not inside any of the host's IPv6 address "
                    f"networks ({networks}); a link-local gateway6 (fe80::/10) needs none"
                )
            self.problem(gkey, reason)
        return parsed

    def route(self, table: Mapping[str, object], key: str) -> _Route:
        self.check_keys(table, key, _ROUTE_KEYS, required=("to",))
        prefix: IPv4Network | IPv6Network | None = None
        to = self.string(table, "to", key)
        if to is not None:
            parsed = _parse_network(to)
            if isinstance(parsed, str):
                self.problem(_join(key, "to"), parsed)
            else:
                prefix = parsed
        rtype = self.choice(table, "type", key, ROUTE_TYPES) if "type" in table else "unicast"
        via: IPv4Address | IPv6Address | None = None
        via_text = self.string(table, "via", key)
        if via_text is not None:
            parsed_via = _parse_address(via_text)
            if isinstance(parsed_via, str):
                self.problem(_join(key, "via"), parsed_via)
            elif prefix is not None and parsed_via.version != prefix.version:
                self.problem(
                    _join(key, "via"),
                    f"next hop {parsed_via} is IPv{parsed_via.version} but destination "
                    f"{prefix} is IPv{prefix.version}; they must be of the same family",
                )
            else:
                via = parsed_via
        interface = self.string(table, "interface", key)
        distance = self.integer(table, "distance", key)
        if distance is not None and not 1 <= distance <= 255:
            self.problem(_join(key, "distance"), f"{distance} is not in 1..255")
        return _Route(
            key=key,
            prefix=prefix,
            type=rtype,
            via=via,
            interface=interface,
            has_via="via" in table,
            has_interface="interface" in table,
            distance=distance if distance is not None and 1 <= distance <= 255 else 1,
        )

    # -- cross-checks ----------------------------------------------------------

    def check_hierarchy(self, vnets: list[_Vnet]) -> None:
        declared = {v.name for v in vnets}
        for vnet in vnets:
            if not vnet.name_ok or "/" not in vnet.name:
                continue
            parts = vnet.name.split("/")
            ancestors = ["/".join(parts[:n]) for n in range(1, len(parts))]
            missing = [a for a in ancestors if a not in declared]
            if missing:
                names = ", ".join(repr(m) for m in missing)
                declare = " and ".join(_toml_header(m) for m in missing)
                if len(missing) == 1:
                    reason = f"parent vnet {names} is not declared; declare {declare}"
                else:
                    reason = f"parent vnets {names} are not declared; declare {declare}"
                self.problem(vnet.key, reason)

    def check_limits(self, vnets: list[_Vnet]) -> None:
        """Check limits only narrow down the tree, and each vnet's config fits its own."""
        by_name = {v.name: v for v in vnets}
        effective: dict[str, dict[str, tuple[int, str]]] = {}
        for vnet in _parents_first(vnets):
            parent_name, sep, _ = vnet.name.rpartition("/")
            inherited = dict(effective.get(parent_name, {})) if sep else {}
            mine = dict(inherited)
            for kind, value in vnet.limits:
                noun = limits_.NOUNS[kind]
                above = inherited.get(kind)
                if above is not None and value > above[0]:
                    where = "" if above[1] == parent_name else f", set on {above[1]}"
                    self.problem(
                        _join(vnet.limits_key, kind),
                        f"{noun} limit {value} of vnet {vnet.name} is above the {noun} limit "
                        f"of its parent vnet {parent_name} ({above[0]}{where}); "
                        "a child may only narrow its parent's limits",
                    )
                    continue
                mine[kind] = (value, vnet.name)
            effective[vnet.name] = mine
            self.check_fits(by_name[vnet.name], mine)

    def check_fits(self, vnet: _Vnet, limits: dict[str, tuple[int, str]]) -> None:
        """Report what ``vnet``'s own config declares beyond its limits."""

        def beyond(kind: str, count: int) -> str:
            limit, where = limits[kind]
            source = "" if where == vnet.name else f" (set on {where})"
            return f"{count}, above its {limits_.NOUNS[kind]} limit {limit}{source}"

        if "interfaces" in limits and len(vnet.interfaces) > limits["interfaces"][0]:
            self.problem(
                _join(vnet.key, "interfaces"),
                f"vnet {vnet.name} declares interfaces: "
                f"{beyond('interfaces', len(vnet.interfaces))}",
            )
        if "routes" in limits:
            networks = {
                a.value.network
                for i in vnet.interfaces
                for a in i.addresses
                if not _is_link_local(a.value.ip)
            }
            statics = {r.prefix for r in vnet.routes if r.prefix is not None}
            count = len(networks) + len(statics)  # a static route to a connected one is held
            if count > limits["routes"][0]:
                self.problem(
                    _join(vnet.key, "routes"),
                    f"vnet {vnet.name} declares routes (static and connected): "
                    f"{beyond('routes', count)}",
                )
        knobs: list[tuple[str, str, float]] = [
            (f'{_join(vnet.key, "sysctl")}."{name}"', name, value) for name, value in vnet.sysctl
        ]
        if vnet.firewall is not None and vnet.firewall.max_states is not None:
            knobs.append(
                (
                    _join(_join(vnet.key, "firewall"), "max_states"),
                    "net.pf.states_max",
                    vnet.firewall.max_states,
                )
            )
        for key, name, value in knobs:
            kind = limits_.KIND_OF_KNOB.get(name)
            if kind is not None and kind in limits and value > limits[kind][0]:
                limit, where = limits[kind]
                source = "" if where == vnet.name else f" (set on {where})"
                self.problem(
                    key,
                    f"{name} {value:g} is above the {limits_.NOUNS[kind]} limit {limit} "
                    f"of vnet {vnet.name}{source}",
                )

    def check_unique_taps(self, vnets: list[_Vnet]) -> None:
        owner: dict[str, str] = {}
        for vnet in vnets:
            for iface in vnet.interfaces:
                if iface.type != "tap":
                    continue
                if iface.name in owner:
                    self.problem(
                        iface.key,
                        f"duplicate interface {iface.name!r} (already in vnet "
                        f"{owner[iface.name]}); TAP interfaces are kernel devices, "
                        "so their names must be unique across the daemon",
                    )
                else:
                    owner[iface.name] = vnet.name

    def check_unique_netns(self, vnets: list[_Vnet]) -> None:
        owner: dict[str, str] = {}
        for vnet in vnets:
            for iface in vnet.interfaces:
                if iface.host is None or not iface.host.netns:
                    continue
                netns = iface.host.netns
                if netns in owner:
                    self.problem(
                        iface.netns_key,
                        f"netns {netns!r} is already used by the host of {owner[netns]}",
                    )
                else:
                    owner[netns] = f"interface {iface.name} in vnet {vnet.name}"

    def check_peers(self, vnets: list[_Vnet]) -> None:
        by_name = {v.name: v for v in vnets}
        for vnet in vnets:
            for iface in vnet.interfaces:
                if iface.type != "epair" or iface.peer is None:
                    continue
                me = f"{vnet.name}:{iface.name}"
                peer_vnet_name, peer_name = iface.peer
                peer_text = f"{peer_vnet_name}:{peer_name}"
                if iface.peer == (vnet.name, iface.name):
                    self.problem(iface.peer_key, f"epair {me} cannot peer with itself")
                    continue
                peer_vnet = by_name.get(peer_vnet_name)
                if peer_vnet is None:
                    self.problem(
                        iface.peer_key,
                        f"peer {peer_text}: vnet {peer_vnet_name!r} is not declared",
                    )
                    continue
                peer = peer_vnet.interface(peer_name)
                if peer is None:
                    self.problem(
                        iface.peer_key,
                        f"peer {peer_text}: vnet {peer_vnet_name} has no interface {peer_name!r}",
                    )
                    continue
                if peer.type is None:
                    continue  # its type problem is already reported
                if peer.type != "epair":
                    self.problem(
                        iface.peer_key,
                        f"peer {peer_text} is a {peer.type} interface, not an epair",
                    )
                    continue
                if peer.peer is None:
                    continue  # its missing or bad peer is already reported
                if peer.peer != (vnet.name, iface.name):
                    self.problem(
                        iface.peer_key,
                        f"peer {peer_text} does not point back: its peer is "
                        f"{peer.peer[0]}:{peer.peer[1]}, not {me}; "
                        "both ends of an epair must name each other",
                    )

    def check_connected(self, vnet: _Vnet) -> None:
        """Report an address or connected network used by two interfaces."""
        seen: list[tuple[_Address, _Interface]] = []
        for iface in vnet.interfaces:
            for address in iface.addresses:
                if _is_link_local(address.value.ip):
                    continue  # each interface has its own link-local network
                for other, other_iface in seen:
                    if other_iface is iface or other.value.version != address.value.version:
                        continue
                    if other.value.ip == address.value.ip:
                        self.problem(
                            address.key,
                            f"address {address.value.ip} is already assigned to "
                            f"interface {other_iface.name} in vnet {vnet.name}",
                        )
                        break
                    if other.value.network.overlaps(address.value.network):
                        self.problem(
                            address.key,
                            f"network {address.value.network} overlaps "
                            f"{other.value.network} of interface {other_iface.name} "
                            f"in vnet {vnet.name}",
                        )
                        break
                seen.append((address, iface))

    def check_routes(self, vnet: _Vnet) -> None:
        seen: dict[IPv4Network | IPv6Network, str] = {}
        for route in vnet.routes:
            if route.prefix is not None:
                if route.prefix in seen:
                    self.problem(
                        _join(route.key, "to"),
                        f"duplicate route to {route.prefix} (already {seen[route.prefix]})",
                    )
                else:
                    seen[route.prefix] = route.key
            if route.type in ("blackhole", "reject"):
                for name, present in (
                    ("via", route.has_via),
                    ("interface", route.has_interface),
                ):
                    if present:
                        self.problem(
                            _join(route.key, name),
                            f"a {route.type} route takes no {name!r}",
                        )
                continue
            if route.type != "unicast":
                continue  # bad type already reported
            if not route.has_via and not route.has_interface:
                self.problem(route.key, "a unicast route needs 'via', 'interface' or both")
                continue
            iface: _Interface | None = None
            if route.interface is not None:
                iface = vnet.interface(route.interface)
                if iface is None:
                    known = ", ".join(i.name for i in vnet.interfaces) or "none"
                    self.problem(
                        _join(route.key, "interface"),
                        f"unknown interface {route.interface!r} in vnet {vnet.name} "
                        f"(its interfaces: {known})",
                    )
                    continue
            if route.via is not None and _is_link_local(route.via) and iface is None:
                if not route.has_interface:
                    self.problem(
                        _join(route.key, "interface"),
                        f"a link-local next hop needs 'interface': {route.via} is only "
                        "unique on one link, so name the interface it is reached through",
                    )
                continue
            if route.via is not None:
                self.check_next_hop(vnet, route, route.via, iface)

    def check_next_hop(
        self,
        vnet: _Vnet,
        route: _Route,
        via: IPv4Address | IPv6Address,
        iface: _Interface | None,
    ) -> None:
        """Check *via* is on a connected network (any link for link-local ones)."""
        candidates = vnet.interfaces if iface is None else (iface,)
        if not all(i.addresses_complete for i in candidates):
            return  # a bad address is already reported; do not guess
        key = _join(route.key, "via")
        for candidate in candidates:
            if any(a.value.ip == via for a in candidate.addresses):
                self.problem(
                    key,
                    f"next hop {via} is an address of vnet {vnet.name} itself "
                    f"(interface {candidate.name})",
                )
                return
        if _is_link_local(via):
            return  # every link has fe80::/64; the next hop is on iface's
        if any(
            via in a.value.network
            for c in candidates
            for a in c.addresses
            if a.value.version == via.version
        ):
            return
        if iface is None:
            self.problem(key, f"next hop {via} is not on a connected network of vnet {vnet.name}")
        else:
            self.problem(
                key,
                f"next hop {via} is not on a connected network of vnet {vnet.name} "
                f"via interface {iface.name}",
            )


def _parents_first(vnets: list[_Vnet]) -> list[_Vnet]:
    """Order *vnets* so each parent precedes its children, else file order."""
    by_name = {v.name: v for v in vnets}
    ordered: list[_Vnet] = []
    placed: set[str] = set()

    def place(vnet: _Vnet) -> None:
        if vnet.name in placed:
            return
        placed.add(vnet.name)
        parent, sep, _ = vnet.name.rpartition("/")
        if sep and parent in by_name:
            place(by_name[parent])
        ordered.append(vnet)

    for vnet in vnets:
        place(vnet)
    return ordered
