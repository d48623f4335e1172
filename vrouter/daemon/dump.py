"""The running configuration as a config file: ``vrouterctl config dump`` and ``config diff``.

Responsibility: turn what a daemon runs into the TOML document of a
configuration file that would build the same thing, and compare it with a
file.  Both sides go through one canonical form, so a file and the dump of
the daemon it started compare equal however the file was written:

- :func:`running_vnets` reads each vnet of a process into a
  :class:`~vrouter.daemon.config.VnetConfig` (what a config file would have
  to say to make it) with its knob values;
- :func:`file_vnets` does the same for a parsed :class:`Config`, from what
  building it would set (:func:`vrouter.daemon.reload.overlay`);
- :func:`vnet_table` writes either as the canonical table of one vnet:
  interfaces and routes by name and prefix, defaults left out, a knob only
  where it differs from what the vnet would have without it (its parent's
  value, or the default; lowered to the vnet's limit), the firewall's own
  table as it was written (:attr:`~vrouter.firewall.rules.Ruleset.source`);
- :func:`document` joins ``[daemon]`` and the vnets; :func:`render` writes
  TOML (tomli-w); :func:`differences` lists what differs, one line each.

Guarantees: the rendered document parses (``vrouterd --check`` accepts it)
and a daemon started from it dumps the same document.  Only objects of the
config and control-API source are written: connected routes, routes of route
sockets, routing daemons and the mirror, neighbours, states and automatic
link-local addresses are not configuration.  What only a config file can
say (a TAP's host, router advertisements, a vnet's worker, its mirror, its
DHCP server and relays, an interface's DHCP client, the ``[daemon]`` table)
comes from the configuration the process runs; an address a DHCP client
leased or SLAAC configured is not configuration.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import tomli_w

from vrouter.core import limits
from vrouter.core.errors import OpError
from vrouter.core.perms import Grants
from vrouter.core.sysctl import Value
from vrouter.core.tomlkeys import join
from vrouter.core.vnet import Vnet, VnetTree
from vrouter.daemon.build import derive_mac
from vrouter.daemon.config import (
    BridgeConfig,
    BridgePortConfig,
    Config,
    ConfigError,
    DaemonConfig,
    FirewallConfig,
    HostConfig,
    InterfaceConfig,
    RaConfig,
    RouteConfig,
    VnetConfig,
    VxlanConfig,
    parse,
    read,
)
from vrouter.daemon.config.model import (
    DEFAULT_MTU,
    DEFAULT_TAP_QDISC,
    DEFAULT_TAP_TXQUEUELEN,
    StaticFdbConfig,
)
from vrouter.daemon.reload import default_values, overlay
from vrouter.firewall.rules import Ruleset
from vrouter.link import bridge as bridge_
from vrouter.link import stp as stp_
from vrouter.link import vlan as vlan_
from vrouter.link import vxlan as vxlan_
from vrouter.link.ifnet import Ifnet
from vrouter.route.entry import Route
from vrouter.route.source import DISTANCES
from vrouter.stack import builtin_sysctl
from vrouter.wire.ipv6 import link_local_from_mac
from vrouter.wire.vxlan import PORT as VXLAN_PORT

Table = dict[str, Any]
Knobs = Mapping[str, Value]
Epairs = Sequence[tuple[Ifnet, Ifnet]]
"""The two ends of each epair of a process."""

FORWARDING = ("net.inet.ip.forwarding", "net.inet6.ip6.forwarding")
PF_ENABLE = "net.pf.enable"
PF_STATES_MAX = "net.pf.states_max"
STATIC = "static"

HEADER = (
    "# The running configuration of vrouterd, written by `vrouterctl config dump`:\n"
    "# objects of the config file and the control API (no learnt routes).\n\n"
)


# -- knobs ----------------------------------------------------------------------------


@functools.cache
def config_knobs() -> frozenset[str]:
    """Return the knobs a config file may set (``[sysctl]``): the built-in ones, no limits."""
    return frozenset(k for k in builtin_sysctl().knobs if limits.kind_of(k) is None)


def capped(values: Knobs, limit: Mapping[str, int | None]) -> dict[str, Value]:
    """Return ``values`` with each capped knob lowered to the limit in force, as a build does."""
    out = dict(values)
    for kind, names in limits.CAPPED_KNOBS.items():
        cap = limit.get(kind)
        for name in names:
            value = out.get(name)
            if cap is not None and isinstance(value, int) and value > cap:
                out[name] = cap
    return out


# -- one vnet: the canonical table ----------------------------------------------------


def _address_texts(
    addresses: Iterable[ipaddress.IPv4Interface | ipaddress.IPv6Interface],
) -> list[str]:
    """Return the addresses as text, IPv4 first, each family in its own order."""
    listed = list(addresses)
    return [str(a) for a in listed if a.version == 4] + [str(a) for a in listed if a.version == 6]


def _host_table(host: HostConfig) -> Table:
    table: Table = {"netns": host.netns}
    if host.addresses:
        table["addresses"] = _address_texts(host.addresses)
    if host.gateway is not None:
        table["gateway"] = str(host.gateway)
    if host.gateway6 is not None:
        table["gateway6"] = str(host.gateway6)
    if host.slaac:
        table["slaac"] = True
    if host.dhcp:
        table["dhcp"] = True
    return table


def _ra_table(ra: RaConfig) -> Table:
    table: Table = {
        "interval": ra.interval,
        "lifetime": ra.lifetime,
        "hop_limit": ra.hop_limit,
        "managed": ra.managed,
        "other": ra.other,
        "mtu": ra.mtu,
        "prefixes": [
            {
                "prefix": str(p.prefix),
                "onlink": p.onlink,
                "autonomous": p.autonomous,
                "valid_lifetime": p.valid_lifetime,
                "preferred_lifetime": p.preferred_lifetime,
            }
            for p in ra.prefixes
        ],
    }
    if ra.rdnss:
        table["rdnss"] = [str(a) for a in ra.rdnss]
        table["rdnss_lifetime"] = ra.rdnss_lifetime
    return table


def _bridge_table(bridge: BridgeConfig) -> Table:
    table: Table = {"members": list(bridge.members)}
    if bridge.vlan_filtering:
        table["vlan_filtering"] = True
        if bridge.pvid != 1:
            table["pvid"] = bridge.pvid
    ports: Table = {}
    for port in bridge.ports:
        settings: Table = {}
        if bridge.vlan_filtering and port.pvid != 1:
            settings["pvid"] = port.pvid
        if bridge.vlan_filtering and port.tagged:
            settings["tagged"] = sorted(port.tagged)
        if port.storm_pps:
            settings["storm_pps"] = port.storm_pps
        if port.path_cost != stp_.DEFAULT_PATH_COST:
            settings["path_cost"] = port.path_cost
        if port.port_priority != stp_.DEFAULT_PORT_PRIORITY:
            settings["port_priority"] = port.port_priority
        if port.edge:
            settings["edge"] = True
        if not port.auto_edge:
            settings["auto_edge"] = False
        if settings:
            ports[port.name] = settings
    if ports:
        table["ports"] = ports
    if bridge.stp is not None:
        table["stp"] = True
        defaults = stp_.StpSettings()
        if bridge.stp.protocol != defaults.protocol:
            table["stp_protocol"] = bridge.stp.protocol
        for key in ("priority", "hello_time", "max_age", "forward_delay"):
            if getattr(bridge.stp, key) != getattr(defaults, key):
                table[key] = getattr(bridge.stp, key)
    pvids = {p.name: p.pvid for p in bridge.ports}
    fdb = []
    for entry in sorted(bridge.fdb, key=lambda e: (e.port, e.mac)):
        item: Table = {"mac": entry.mac.hex(":"), "port": entry.port}
        if bridge.vlan_filtering and entry.vid is not None and entry.vid != pvids.get(entry.port):
            item["vid"] = entry.vid
        if entry.dst is not None:
            item["dst"] = str(entry.dst)
        fdb.append(item)
    if fdb:
        table["fdb"] = fdb
    return table


def interface_table(vnet: str, icfg: InterfaceConfig) -> Table:
    """Return the canonical table of interface ``icfg`` of vnet ``vnet`` (defaults left out)."""
    table: Table = {"type": icfg.type}
    if icfg.addresses:
        table["addresses"] = _address_texts(icfg.addresses)
    if icfg.mtu != DEFAULT_MTU:
        table["mtu"] = icfg.mtu
    if icfg.mac is not None and icfg.vlan is None and icfg.mac != derive_mac(vnet, icfg.name):
        table["mac"] = icfg.mac.hex(":")
    if not icfg.up:
        table["up"] = False
    if icfg.host is not None:
        table["host"] = _host_table(icfg.host)
    if icfg.peer is not None:
        table["peer"] = f"{icfg.peer[0]}:{icfg.peer[1]}"
    if icfg.ra is not None:
        table["ra"] = _ra_table(icfg.ra)
    if icfg.dhcp:
        table["dhcp"] = True
    if icfg.dhcp6 is not None:
        dhcp6: Table = {"dns": [str(a) for a in icfg.dhcp6.dns]}
        if icfg.dhcp6.domains:
            dhcp6["domains"] = list(icfg.dhcp6.domains)
        if icfg.dhcp6.refresh is not None:
            dhcp6["refresh"] = icfg.dhcp6.refresh
        table["dhcp6"] = dhcp6
    if icfg.type == "tap" and not icfg.offload:
        table["offload"] = False
    if icfg.bridge is not None:
        table.update(_bridge_table(icfg.bridge))
    if icfg.vlan is not None:
        table["parent"], table["vid"] = icfg.vlan
    if icfg.vxlan is not None:
        table.update(_vxlan_table(icfg.vxlan))
    return table


def _vxlan_table(vxlan: VxlanConfig) -> Table:
    table: Table = {"vni": vxlan.vni, "local": str(vxlan.local)}
    if vxlan.port != VXLAN_PORT:
        table["port"] = vxlan.port
    if vxlan.remotes:
        table["remotes"] = [str(a) for a in vxlan.remotes]
    if vxlan.group is not None:
        table["group"] = str(vxlan.group)
    if not vxlan.learning:
        table["learning"] = False
    if vxlan.underlay is not None:
        table["underlay"] = vxlan.underlay
    if vxlan.tunnel_gso:
        table["tunnel_gso"] = True
    return table


def _egress(vcfg: VnetConfig, via: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Return the interface whose most specific network holds ``via`` (as a route resolves it)."""
    best: tuple[int, str] | None = None
    for icfg in sorted(vcfg.interfaces, key=vcfg.rank):
        for iface in icfg.addresses:
            if (
                iface.version == via.version
                and via in iface.network
                and (best is None or iface.network.prefixlen > best[0])
            ):
                best = (iface.network.prefixlen, icfg.name)
    return best[1] if best is not None else None


def route_table(vcfg: VnetConfig, route: RouteConfig) -> Table:
    """Return the canonical table of a static route: its egress interface always named."""
    table: Table = {"to": str(route.prefix)}
    if route.type != "unicast":
        table["type"] = route.type
    if route.via is not None:
        table["via"] = str(route.via)
    elif route.paths:
        weights = route.weights or (1,) * len(route.paths)
        table["via"] = [
            str(hop) if weight == 1 else f"{hop} weight {weight}"
            for hop, weight in zip(route.paths, weights, strict=True)
        ]
    interface = route.interface
    if interface is None and route.via is not None and route.type == "unicast":
        interface = _egress(vcfg, route.via)
    elif interface is None and route.paths:  # named when every path leaves by it
        egresses = {_egress(vcfg, hop) for hop in route.paths}
        interface = egresses.pop() if len(egresses) == 1 else None
    if interface is not None:
        table["interface"] = interface
    if route.distance != DISTANCES[STATIC]:
        table["distance"] = route.distance
    return table


def _route_order(table: Table) -> tuple[int, int, int, str]:
    network = ipaddress.ip_network(table["to"])
    return network.version, int(network.network_address), network.prefixlen, str(table)


def _trivial(ruleset: Ruleset | None) -> bool:
    return ruleset is None or (
        not ruleset.rules and not ruleset.nat and not ruleset.tables and ruleset.default == "pass"
    )


def _grants_table(grants: Grants) -> Table:
    table: Table = {}
    if grants.manage:
        table["manage"] = [str(p) for p in grants.manage]
    if grants.sockets:
        table["sockets"] = [str(p) for p in grants.sockets]
    return table


def vnet_table(vcfg: VnetConfig, values: Knobs, baseline: Knobs) -> Table:
    """Return the canonical table of a vnet.

    ``values`` are its knob values, ``baseline`` what it would have without
    any setting of its own (its parent's, or the defaults; capped by its
    limits).  ``vcfg`` gives everything else; its own ``forwarding``,
    ``sysctl`` and firewall ``enable``/``max_states`` are read from ``values``.
    """
    table: Table = {}
    knobs = config_knobs()
    handled = {*FORWARDING, PF_ENABLE, PF_STATES_MAX}
    forwarding = values.get(FORWARDING[0], True)
    forwarding6 = values.get(FORWARDING[1], forwarding)
    # A vnet with router advertisements in its config that stopped forwarding at run
    # time: a file cannot say so with `forwarding` (a host sends no RAs), but with knobs.
    table["forwarding"] = bool(forwarding) or any(i.ra is not None for i in vcfg.interfaces)
    sysctl = {
        name: values[name]
        for name in sorted(values)
        if name in knobs and name not in handled and values[name] != baseline.get(name)
    }
    if forwarding != table["forwarding"] or forwarding6 != forwarding:
        sysctl.update((name, values[name]) for name in FORWARDING if name in values)
    ruleset = vcfg.firewall.ruleset if vcfg.firewall is not None else None
    enable = bool(values.get(PF_ENABLE, False))
    states_max = values.get(PF_STATES_MAX)
    own_states_max = states_max is not None and states_max != baseline.get(PF_STATES_MAX)
    if PF_ENABLE in values and (enable or own_states_max or not _trivial(ruleset)):
        firewall: Table = {"enable": enable}
        if own_states_max:
            firewall["max_states"] = states_max
        if ruleset is not None and not _trivial(ruleset):
            firewall.update(ruleset.source or {})
        table["firewall"] = firewall
    own_limits = vcfg.limits
    if own_limits:
        table["limits"] = {k: own_limits[k] for k in limits.KINDS if k in own_limits}
    if sysctl:
        table["sysctl"] = sysctl
    grants = _grants_table(vcfg.permissions)
    if grants:
        table["permissions"] = grants
    if vcfg.worker is not None:
        table["worker"] = vcfg.worker
    if vcfg.dhcp is not None and vcfg.dhcp.source is not None:
        table["dhcp"] = dict(vcfg.dhcp.source)
    if vcfg.mirror is not None:
        mirror: Table = {"netns": vcfg.mirror.netns}
        if vcfg.mirror.sync is not None:
            mirror["sync"] = list(vcfg.mirror.sync)
        if vcfg.mirror.vrf_dir is not None:
            mirror["vrf_dir"] = vcfg.mirror.vrf_dir
        table["mirror"] = mirror
    interfaces = {i.name: interface_table(vcfg.name, i) for i in vcfg.interfaces}
    if interfaces:
        table["interfaces"] = {name: interfaces[name] for name in sorted(interfaces)}
    routes = sorted((route_table(vcfg, r) for r in vcfg.routes), key=_route_order)
    if routes:
        table["routes"] = routes
    return table


# -- the whole document ---------------------------------------------------------------


def _listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def daemon_table(daemon: DaemonConfig) -> Table:
    """Return the ``[daemon]`` table (what it leaves at the default is left out)."""
    table: Table = {
        "control_socket": daemon.control_socket,
        "state_dir": daemon.state_dir,
        "data_dir": daemon.data_dir,
        "log_level": daemon.log_level,
        "log_format": daemon.log_format,
    }
    if daemon.metrics is not None:
        table["metrics"] = _listen(*daemon.metrics)
    if daemon.metrics_collectors is not None:
        table["metrics_collectors"] = list(daemon.metrics_collectors)
    if daemon.metrics_exclude:
        table["metrics_exclude"] = list(daemon.metrics_exclude)
    if daemon.admins:
        table["admins"] = [str(p) for p in daemon.admins]
    if daemon.workers != 1:
        table["workers"] = daemon.workers
    if daemon.tap_qdisc != DEFAULT_TAP_QDISC:
        table["tap_qdisc"] = daemon.tap_qdisc
    if daemon.tap_txqueuelen != DEFAULT_TAP_TXQUEUELEN:
        table["tap_txqueuelen"] = daemon.tap_txqueuelen
    if not daemon.sparse_first:
        table["sparse_first"] = False
    if daemon.busy_poll:
        table["busy_poll"] = daemon.busy_poll
    socks = []
    for gateway in daemon.socks:
        item: Table = {"vnet": gateway.vnet, "listen": _listen(*gateway.listen)}
        if gateway.username is not None and gateway.password is not None:
            item["username"], item["password"] = gateway.username, gateway.password
        socks.append(item)
    if socks:
        table["socks"] = socks
    return table


def document(daemon: DaemonConfig, vnets: Iterable[tuple[str, Table]]) -> Table:
    """Return the whole document: ``[daemon]`` and the vnets, parents first (by name)."""
    ordered = sorted(vnets)
    return {"daemon": daemon_table(daemon), "vnets": dict(ordered)}


def render(doc: Table) -> str:
    """Return ``doc`` as the text of a config file."""
    return HEADER + tomli_w.dumps(doc)


# -- the two sides --------------------------------------------------------------------


def _parent(name: str) -> str | None:
    parent, sep, _ = name.rpartition("/")
    return parent if sep else None


def _effective_limits(own: Mapping[str, Mapping[str, int]], name: str) -> dict[str, int | None]:
    """Return the limit in force in vnet ``name`` by kind, from every vnet's own limits."""
    found: dict[str, int | None] = dict.fromkeys(limits.KINDS)
    at: str | None = name
    while at is not None:
        for kind, value in own.get(at, {}).items():
            best = found.get(kind)
            found[kind] = value if best is None else min(best, value)
        at = _parent(at)
    return found


def file_vnets(config: Config) -> list[tuple[str, Table]]:
    """Return the canonical table of every vnet ``config`` declares."""
    defaults = default_values()
    decided = overlay(config)
    own = {v.name: v.limits for v in config.vnets}
    values: dict[str, dict[str, Value]] = {}
    tables = []
    for vcfg in config.vnets:  # parents first
        limit = _effective_limits(own, vcfg.name)
        values[vcfg.name] = capped({**defaults, **decided[vcfg.name]}, limit)
        parent = _parent(vcfg.name)
        base = values[parent] if parent is not None and parent in values else defaults
        tables.append((vcfg.name, vnet_table(vcfg, values[vcfg.name], capped(base, limit))))
    return tables


def _peer(other: Ifnet | None, known: InterfaceConfig | None) -> tuple[str, str] | None:
    if other is not None:
        return other.vnet.name, other.name
    return known.peer if known is not None else None  # an end wired to another worker


def _bridge(ifp: Ifnet) -> BridgeConfig | None:
    bridge = bridge_.of(ifp)
    if bridge is None:
        return None
    ports = tuple(
        BridgePortConfig(
            name, port.pvid, tuple(sorted(port.tagged)), port.storm_pps, port.path_cost,
            port.priority, port.edge, port.auto_edge,
        )
        for name, port in bridge.ports.items()
    )
    fdb = tuple(
        StaticFdbConfig(
            mac,
            entry.port.ifnet.name,
            vid if bridge.vlan_filtering else None,
            None if entry.dst is None else ipaddress.ip_address(entry.dst),
        )
        for vid, table in bridge.tables.items()
        for mac, entry in table.items()
        if entry.static
    )
    stp = bridge.stp.settings if bridge.stp is not None else None
    return BridgeConfig(ports, bridge.vlan_filtering, bridge.pvid or 1, fdb, stp)


def running_interface(
    ifp: Ifnet,
    known: InterfaceConfig | None,
    other: Ifnet | None,
    host: HostConfig | None,
    seed: bytes = b"",
) -> InterfaceConfig:
    """Return the config that would make interface ``ifp`` as it runs.

    ``known``: the interface of the same name and type in the running
    configuration (its router advertisements and, for a wired epair, its
    peer); ``other``: the other end of its epair in this process, if any.
    """
    auto = ipaddress.IPv6Address(link_local_from_mac(ifp.mac))
    dhcp = known is not None and known.dhcp  # its IPv4 address is leased, not configured
    learnt = {v for (name, v) in ifp.vnet.inet6.host_ra.addresses if name == ifp.name}
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = [
        *(() if dhcp else ifp.addresses),
        *(
            a
            for a in ifp.addresses6
            if not (a.is_link_local and a.ip == auto) and a.ip.packed not in learnt  # SLAAC's
        ),
    ]
    sub = vlan_.of(ifp)
    overlay = vxlan_.of(ifp)
    vxlan = None
    if overlay is not None:
        c = overlay.cfg
        vxlan = VxlanConfig(
            c.vni,
            c.local,
            c.port,
            tuple(c.remotes),
            c.group,
            c.learning,
            c.underlay,
            c.tunnel_gso,
        )
    return InterfaceConfig(
        name=ifp.name,
        type=ifp.kind,
        addresses=tuple(addresses),
        # a VXLAN interface's MTU is lowered at start to what its underlay carries
        mtu=known.mtu if known is not None and vxlan is not None else ifp.mtu,
        # a MAC derived from the names (and the installation's seed) is no setting
        mac=None if ifp.mac == derive_mac(ifp.vnet.name, ifp.name, seed) else ifp.mac,
        up=ifp.up,
        host=host,
        peer=_peer(other, known) if ifp.kind == "epair" else None,
        ra=known.ra if known is not None else None,
        offload=ifp.offload if ifp.kind == "tap" else True,
        bridge=_bridge(ifp),
        vlan=(sub.parent.name, sub.vid) if sub is not None else None,
        dhcp=dhcp,
        vxlan=vxlan,
        dhcp6=known.dhcp6 if known is not None else None,
    )


def running_routes(vnet: Vnet) -> tuple[RouteConfig, ...]:
    """Return the vnet's static routes (the config's and the control API's)."""
    found = []
    for fib in (vnet.route.fib, vnet.route.fib6):
        for route in fib:
            if route.source.name != STATIC:
                continue
            found.append(_running_route(route))
    return tuple(found)


def _running_route(route: Route) -> RouteConfig:
    """Return ``route`` (a static one) as the config says it: a multipath route by its
    paths and weights, with the interface every path leaves by, if one."""
    hops = route.nexthops
    if hops and all(hop.gateway is not None for hop in hops):
        interfaces = {hop.ifnet.name for hop in hops}
        weights = tuple(hop.weight for hop in hops)
        return RouteConfig(
            prefix=route.prefix,
            type=route.type,
            via=None,
            interface=interfaces.pop() if len(interfaces) == 1 else None,
            distance=route.source.distance,
            paths=tuple(ipaddress.ip_address(hop.gateway) for hop in hops if hop.gateway),
            weights=weights if any(weight != 1 for weight in weights) else (),
        )
    return RouteConfig(
        prefix=route.prefix,
        type=route.type,
        via=ipaddress.ip_address(route.gateway) if route.gateway else None,
        interface=route.ifnet.name if route.ifnet is not None else None,
        distance=route.source.distance,
    )


def running_vnets(
    tree: VnetTree,
    config: Config,
    epairs: Epairs,
    hosts: Mapping[str, HostConfig],
) -> Iterator[tuple[str, Table]]:
    """Yield the canonical table of every vnet of ``tree`` as it runs, parents first.

    ``config``: the configuration the process runs (what only a file says);
    ``epairs``: the process's epairs; ``hosts``: the host of each TAP by name.
    A caller may run the loop between two vnets (a vnet gone meanwhile is
    left out).
    """
    defaults = default_values()
    knobs = config_knobs()
    sysctl = tree.registry.sysctl()
    by_name = {v.name: v for v in config.vnets}
    declared = {(v.name, i.name): i for v in config.vnets for i in v.interfaces}
    ends = {id(a): b for a, b in epairs} | {id(b): a for a, b in epairs}
    values: dict[str, dict[str, Value]] = {}
    for vnet in sorted(tree, key=lambda v: v.name):  # parents first
        if vnet.name not in tree or tree.get(vnet.name) is not vnet:
            continue  # destroyed while the loop ran
        own = by_name.get(vnet.name)
        interfaces = []
        for ifp in vnet.link.interfaces.values():
            known = declared.get((vnet.name, ifp.name))
            if known is not None and known.type != ifp.kind:
                known = None
            host = hosts.get(ifp.name) if ifp.kind == "tap" else None
            interfaces.append(running_interface(ifp, known, ends.get(id(ifp)), host, tree.mac_seed))
        snapshot = sysctl.snapshot(vnet)
        values[vnet.name] = {k: v for k, v in snapshot.items() if k in knobs}
        own_limits = tuple(
            (limits.knob_name(kind), value) for kind, value in vnet.limits.own.items() if value
        )
        firewall = None
        filter_state = vnet.view("firewall")
        if filter_state is not None:
            firewall = FirewallConfig(True, None, filter_state.fw.ruleset)
        vcfg = VnetConfig(
            name=vnet.name,
            forwarding=True,
            interfaces=tuple(interfaces),
            routes=running_routes(vnet),
            sysctl=own_limits,
            firewall=firewall,
            permissions=tree.policy.grants.get(vnet.name, Grants()),
            worker=own.worker if own is not None else None,
            mirror=own.mirror if own is not None else None,
            dhcp=own.dhcp if own is not None else None,
        )
        limit = {kind: vnet.limits.effective(kind) for kind in limits.KINDS}
        parent = _parent(vnet.name)
        base = values.get(parent, defaults) if parent is not None else defaults
        yield vnet.name, vnet_table(vcfg, values[vnet.name], capped(base, limit))


# -- the replies of config.dump and config.diff ----------------------------------------


def _pairs(vnets: Iterable[Sequence[Any]]) -> list[tuple[str, Table]]:
    return [(str(name), table) for name, table in vnets]


def dump_reply(config: Config, vnets: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Return ``config.dump``'s answer: the file's path, the document and its text.

    It reads nothing of the running daemon: a thread may run it.
    """
    doc = document(config.daemon, _pairs(vnets))
    return {"config": config.path, "document": doc, "text": render(doc)}


def diff_reply(
    config: Config, vnets: Iterable[Sequence[Any]], text: str | None, source: str
) -> dict[str, Any]:
    """Return ``config.diff``'s answer: the file compared and the differences.

    ``text`` None compares the daemon's own file (read again).  OpError
    lists the file's problems if it is not a valid configuration.  It reads
    nothing of the running daemon: a thread may run it.
    """
    path = config.path if text is None else source
    try:
        wanted = parse(read(path) if text is None else text, path)
    except ConfigError as err:
        raise OpError(f"cannot compare with {path}:\n{err}") from None
    lines = differences(
        document(wanted.daemon, file_vnets(wanted)), document(config.daemon, _pairs(vnets))
    )
    return {"file": path, "differences": lines}


# -- what differs ---------------------------------------------------------------------

_IDENTITY = {"routes": "to", "fdb": "mac", "prefixes": "prefix", "socks": "listen"}
"""The key that names an item of each array of tables (others: the item's index)."""


def _show(value: object) -> str:
    """Return ``value`` as TOML writes it, on one line (tables and arrays inline)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{join('', k)} = {_show(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


def _items(key: str, value: list[Any]) -> dict[str, Any]:
    ident = _IDENTITY.get(key.rpartition(".")[2])
    return {
        f"{key}[{item.get(ident) if ident is not None else index}]": item
        for index, item in enumerate(value)
    }


def _tables(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, dict) for i in value)


def _one_side(sign: str, key: str, value: object, lines: list[str]) -> None:
    if isinstance(value, dict) and value:
        for name, item in value.items():
            _one_side(sign, join(key, name), item, lines)
    elif _tables(value):
        for label, item in _items(key, value).items():  # type: ignore[arg-type]
            lines.append(f"{sign} {label} = {_show(item)}")
    else:
        lines.append(f"{sign} {key} = {_show(value)}")


def _walk(old: object, new: object, key: str, lines: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for name in [*old, *(n for n in new if n not in old)]:
            where = join(key, name)
            if name not in new:
                _one_side("-", where, old[name], lines)
            elif name not in old:
                _one_side("+", where, new[name], lines)
            else:
                _walk(old[name], new[name], where, lines)
    elif (_tables(old) or _tables(new)) and isinstance(old, list) and isinstance(new, list):
        before, after = _items(key, old), _items(key, new)
        for label in [*before, *(n for n in after if n not in before)]:
            if label not in after:
                lines.append(f"- {label} = {_show(before[label])}")
            elif label not in before:
                lines.append(f"+ {label} = {_show(after[label])}")
            else:
                _walk(before[label], after[label], label, lines)
    elif old != new:
        lines.append(f"~ {key} = {_show(old)} -> {_show(new)}")


def differences(file_doc: Table, running_doc: Table) -> list[str]:
    """Return what differs between a file and the running state, one line each.

    ``- KEY = VALUE``: in the file only; ``+ KEY = VALUE``: running only;
    ``~ KEY = FILE -> RUNNING``: both, with other values.  Keys are dotted
    paths as in a config file's problems (``vnets.red.sysctl."net.inet.ip.ttl"``);
    an item of an array of tables is named by its ``to`` (routes), ``mac``
    (FDB), ``prefix`` (RA prefixes), ``listen`` (SOCKS) or its index.
    """
    lines: list[str] = []
    _walk(file_doc, running_doc, "", lines)
    return lines
