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

Modules, in the order a file goes through them:

- ``parse``: ``load``/``read``/``parse``, the document, ``[daemon]`` and
  each vnet's own tables (sysctl, limits, permissions, firewall, routes);
- ``interfaces``: one interface and the host side of its TAP;
- ``ra``: an interface's router advertisements;
- ``grammar``: names and addresses (text in, value or reason out);
- ``parsed``: what parsed, with key paths, for the cross-checks;
- ``checks``: what spans sections (hierarchy, limits, peers, uniqueness,
  connected networks, next hops);
- ``model``: the frozen values, their defaults and bounds.

Typed access with key paths (``TomlReader``) is shared with the firewall's
ruleset parser and lives in ``vrouter.core.tomlkeys``.
"""

from __future__ import annotations

from vrouter.daemon.config.model import (
    DEFAULT_VNET,
    BridgeConfig,
    BridgePortConfig,
    Config,
    ConfigError,
    ConfigProblem,
    DaemonConfig,
    Dhcp6Config,
    DhcpConfig,
    FirewallConfig,
    HostConfig,
    InterfaceConfig,
    MirrorConfig,
    RaConfig,
    RaPrefixConfig,
    RouteConfig,
    SocksConfig,
    VnetConfig,
    VxlanConfig,
)
from vrouter.daemon.config.parse import load, parse, read

__all__ = [
    "DEFAULT_VNET",
    "BridgeConfig",
    "BridgePortConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DaemonConfig",
    "Dhcp6Config",
    "DhcpConfig",
    "FirewallConfig",
    "HostConfig",
    "InterfaceConfig",
    "MirrorConfig",
    "RaConfig",
    "RaPrefixConfig",
    "RouteConfig",
    "SocksConfig",
    "VnetConfig",
    "VxlanConfig",
    "load",
    "parse",
    "read",
]
