"""The control operations: one declarative record each, the only list of them.

Every request the control socket serves is an :class:`Operation` in
:data:`TABLE`: its name, what it does, its arguments (:mod:`vrouter.api.schema`,
checked before anything runs), who may make it (a rights rule), whether it
only reads, how the server runs its handler, and how a front routes it to
a worker.  Everything else is derived from this table:

- the control server (:mod:`vrouter.api.server`) looks the operation up,
  checks its arguments and the caller's rights, and runs its handler;
- the front of a daemon with workers (:mod:`vrouter.daemon.front`) routes
  it by :attr:`Operation.route`;
- ``vrouterctl`` checks the requests it builds against the same schemas.

Adding an operation is one record here, one handler (a view in
:mod:`vrouter.api.views`, a change in :mod:`vrouter.api.manage` calling
:class:`~vrouter.daemon.ops.Ops`, or a descriptor-passing request in
:mod:`vrouter.api.passing`) and its tests.

This module is light on purpose (no protocol code is imported), so the
CLI can use it.

Rights (:mod:`vrouter.core.perms`): a rule returns the rights a request
needs, each ``("manage"|"sockets"|"limits", vnet)`` or ``("admin", what)``;
views (``read_only``) need none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from vrouter.api.protocol import ApiError
from vrouter.api.schema import Arg, by_name, check
from vrouter.core import limits, perms
from vrouter.core.perms import Cred, Policy

if TYPE_CHECKING:
    from vrouter.api.host import Host

Need = tuple[str, str]
"""One right a request needs: ``("manage"|"sockets"|"limits", vnet)`` or ``("admin", what)``."""
Rule = Callable[["Host", Mapping[str, Any]], list[Need]]

SNAPLEN_MAX: Final = 262144
"""Largest capture snapshot length (:data:`vrouter.link.capture.SNAPLEN_MAX`)."""


# -- how an operation runs and where a front sends it ------------------------------------


RUNS: Final = frozenset({"call", "locked", "await"})
"""``call``: a plain function, answered at once (views, descriptor passing);
``locked``: a coroutine run under the daemon's lock (every change to the vnets);
``await``: a coroutine run outside the lock (it waits for the network)."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where a front sends a request.

    ``vnet``: to the worker running the vnet named by argument ``keys[0]``
    (worker 0 if none or unknown); ``together``: all vnets named by ``keys``
    (``VNET`` or ``VNET:INTERFACE``) must run in one worker, which gets it;
    ``every``: to every worker, answered with the first worker's result
    (every worker must apply it); ``join``: to every worker, the lists
    they answer joined; ``front``: the front answers it itself (see
    :attr:`Operation.front`).
    """

    kind: str
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("vnet", "together", "every", "join", "front"):
            raise ValueError(f"unknown route kind {self.kind!r}")


BY_VNET: Final = Route("vnet", ("vnet",))
ANY_WORKER: Final = Route("vnet")
FRONT: Final = Route("front")


@dataclass(frozen=True, slots=True)
class Operation:
    """One control operation."""

    name: str
    summary: str
    handler: str
    """``MODULE.FUNCTION`` in :mod:`vrouter.api`: ``views``, ``manage``, ``passing``, ``execs``."""
    args: tuple[Arg, ...] = ()
    rights: Rule | None = None
    """What a caller needs (None: a view, open to anyone who can connect)."""
    runs: str = "call"
    route: Route = BY_VNET
    binds: bool = False
    """It binds ports: the server adds ``_privileged`` (may bind below 1024) from the caller."""
    front: str | None = None
    """The front's own handler (a method of :class:`~vrouter.daemon.front.Front`), if any."""
    declared: Mapping[str, Arg] = field(init=False, repr=False, compare=False)
    """:attr:`args` by name, made once (every request is checked against it)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "declared", by_name(self.args))
        if self.runs not in RUNS:
            raise ValueError(f"{self.name}: unknown way to run {self.runs!r}")
        if (self.route.kind == "front") != (self.front is not None):
            raise ValueError(f"{self.name}: a front route needs a front handler, and only it")

    @property
    def read_only(self) -> bool:
        """Return whether the operation only reads (needs no rights)."""
        return self.rights is None

    def check(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``args`` checked against the schema (a new dict); ApiError if they do not fit."""
        return check(self.name, self.declared, args)


def lookup(name: str) -> Operation:
    """Return operation ``name``; ApiError naming the known ones if there is none."""
    op = TABLE.get(name)
    if op is None:
        raise ApiError(f"unknown op {name!r}; known: {', '.join(sorted(TABLE))}")
    return op


# -- rights rules ------------------------------------------------------------------------


def _name(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    return value if isinstance(value, str) and value else None


def on(key: str, right: str = "manage") -> Rule:
    """Return the rule "``right`` on the vnet named by argument ``key``" (a VNET:IF names VNET)."""

    def rule(host: Host, args: Mapping[str, Any]) -> list[Need]:
        name = _name(args, key)
        return [(right, name.partition(":")[0])] if name is not None else []

    return rule


def both(*rules: Rule) -> Rule:
    """Return the rule needing everything each of ``rules`` needs."""

    def rule(host: Host, args: Mapping[str, Any]) -> list[Need]:
        return [need for each in rules for need in each(host, args)]

    return rule


def of_parent(verb: str) -> Rule:
    """Return the rule for creating or destroying vnet ``name``: manage its parent."""

    def rule(host: Host, args: Mapping[str, Any]) -> list[Need]:
        name = _name(args, "name")
        if name is None:
            return []
        parent = perms.parent_of(name)
        if parent is None:
            return [("admin", f"{verb} top-level vnet {name}")]
        return [("manage", parent)]

    return rule


def admin(what: str) -> Rule:
    """Return the rule "daemon admins only"; ``what`` may name the ``{name}`` argument."""

    def rule(host: Host, args: Mapping[str, Any]) -> list[Need]:
        return [("admin", what.format(name=_name(args, "name") or "?"))]

    return rule


def _interface_destroy(host: Host, args: Mapping[str, Any]) -> list[Need]:
    """Manage the interface's vnet, and the other end's vnet if it is an epair."""
    vnet_name, ifname = _name(args, "vnet"), _name(args, "interface")
    if vnet_name is None:
        return []
    needs: list[Need] = [("manage", vnet_name)]
    tree = host.tree
    if ifname is None or tree is None or vnet_name not in tree:
        return needs
    ifp = tree.get(vnet_name).link.interfaces.get(ifname)
    if ifp is not None:
        for epair in host.driver.epairs:
            if ifp in (epair.a, epair.b):
                peer = epair.b if epair.a is ifp else epair.a
                needs.append(("manage", peer.vnet.name))
    return needs


def _sysctl_set(host: Host, args: Mapping[str, Any]) -> list[Need]:
    """Manage the vnet; its own limits need whoever may manage its parent."""
    needs = on("vnet")(host, args)
    settings = args.get("settings")
    if needs and isinstance(settings, dict) and any(limits.kind_of(k) for k in settings):
        needs.append(("limits", needs[0][1]))
    return needs


def _socket(host: Host, args: Mapping[str, Any]) -> list[Need]:
    """Sockets in the vnet; a route socket (it adds and deletes routes) needs manage."""
    right = "manage" if args.get("type") == "route" else "sockets"
    return on("vnet", right)(host, args)


def refusal(policy: Policy, cred: Cred, needs: list[Need]) -> str | None:
    """Return why ``cred`` may not do what needs ``needs`` under ``policy`` (None: it may)."""
    for right, target in needs:
        if right == "manage" and not policy.may_manage(target, cred):
            return f"permission denied: {cred} may not manage vnet {target}"
        if right == "sockets" and not policy.may_open_sockets(target, cred):
            return f"permission denied: {cred} may not open sockets in vnet {target}"
        if right == "limits" and not policy.may_set_limits(target, cred):
            parent = perms.parent_of(target)
            who = "daemon admins" if parent is None else f"managers of vnet {parent}"
            return (
                f"permission denied: {cred} may not change the limits of vnet {target} "
                f"(only {who} may)"
            )
        if right == "admin" and not policy.is_admin(cred):
            return f"permission denied: {cred} may not {target} (daemon admins only)"
    return None


# -- the table ---------------------------------------------------------------------------

VNET: Final = Arg("vnet", "text", "a vnet name", required=True)
INTERFACE: Final = Arg("interface", "text", "an interface name", required=True)
NAME: Final = Arg("name", "text", "a vnet name", required=True)
MTU: Final = Arg("mtu", "int", "the MTU", default=1500)
FAMILY: Final = Arg("family", "text", "inet or inet6", default="inet", choices=("inet", "inet6"))
ADDRESS: Final = Arg("address", "text", "ADDR/LEN", required=True)
PREFIX: Final = Arg("prefix", "text", "the destination, ADDR/LEN", required=True)
ADDRESSES: Final = Arg("addresses", "texts", "ADDR/LEN addresses", default=[])
BRIDGE: Final = Arg("bridge", "text", "the bridge's name", required=True)
FDB_MAC: Final = Arg("mac", "text", "the station's MAC address", required=True)
FDB_PORT: Final = Arg("port", "text", "the bridge member it is behind", required=True)
STP_PATH_COST: Final = Arg("path_cost", "int", "its spanning tree path cost", default=100,
                          low=1, high=65535)
STP_PORT_PRIORITY: Final = Arg("port_priority", "int", "its spanning tree port priority",
                              default=32, low=0, high=63)
STP_BRIDGE: Final = (
    Arg("priority", "int", "the bridge priority (default 32768; lower wins the root election)",
        low=0, high=65535),
    Arg("hello_time", "int", "seconds between Configuration BPDUs (2)", low=1, high=10),
    Arg("max_age", "int", "seconds the root's information lasts unheard (20); "
        "2 x (forward_delay - 1) >= max_age >= 2 x (hello_time + 1)", low=6, high=40),
    Arg("forward_delay", "int", "seconds in listening, then in learning (15)", low=2, high=30),
    Arg("stp_protocol", "text", "stp (802.1D, default) or rstp (802.1w rapid spanning tree)",
        choices=("stp", "rstp")),
)
STP_EDGE: Final = (
    Arg("edge", "bool", "RSTP: an edge port (a station, no bridge): forwards at once"),
    Arg("auto_edge", "bool", "RSTP: become edge when no BPDU is heard for 3 s (default true)"),
)
FDB_VLAN: Final = Arg("vlan", "int", "its VLAN (with filtering; default: the port's PVID)",
                      low=1, high=4094)

_OPS: tuple[Operation, ...] = (
    # -- the daemon
    Operation("status", "the daemon's version, uptime and reloads", "views.status",
              route=FRONT, front="_status"),
    Operation("reload", "re-read the config file and apply what changed", "manage.reload",
              rights=admin("reload the configuration"), runs="await",
              route=FRONT, front="_reload_request"),
    Operation("metrics.scrape", "this process's metrics in the Prometheus text format",
              "views.metrics_scrape",
              args=(Arg("collect", "texts", "sources to read (none: the config's)", default=[]),
                    Arg("exclude", "texts", "family name patterns to leave out", default=[]),
                    Arg("openmetrics", "bool", "OpenMetrics instead of text", default=False),
                    Arg("packed", "bool", "pieces zlib-compressed, base64", default=False)),
              rights=admin("read the metrics through the control socket"), runs="await",
              route=ANY_WORKER),
    Operation("config.dump", "the running configuration, as a config file", "views.config_dump",
              rights=admin("read the running configuration"), runs="await", route=FRONT,
              front="_config_dump"),
    Operation("config.diff", "what differs between the running state and a config file",
              "views.config_diff",
              args=(Arg("text", "str", "the file's text (none: the daemon's own file)"),
                    Arg("source", "text", "where the text came from", default="<config>")),
              rights=admin("read the running configuration"), runs="await", route=FRONT,
              front="_config_diff"),
    Operation("config.vnets", "the running configuration of this process's vnets",
              "views.config_vnets", rights=admin("read the running configuration"),
              runs="await", route=Route("join")),
    Operation("module.list", "subsystems loaded and loadable", "views.module_list",
              route=ANY_WORKER),
    Operation("module.load", "attach a subsystem to every vnet", "manage.module_load",
              args=(Arg("name", "text", "the subsystem's name", required=True),),
              rights=admin("load subsystem {name}"), runs="locked", route=Route("every")),
    Operation("module.unload", "detach a subsystem from every vnet", "manage.module_unload",
              args=(Arg("name", "text", "the subsystem's name", required=True),),
              rights=admin("unload subsystem {name}"), runs="locked", route=Route("every")),
    # -- vnets
    Operation("vnet.list", "every vnet with its counts and limits", "views.vnet_list",
              route=Route("join")),
    Operation("vnet.show", "one vnet: limits, permissions, what the caller may do",
              "views.vnet_show", args=(VNET,)),
    Operation("vnet.tree", "the vnet hierarchy (or one vnet's subtree)", "manage.vnet_tree",
              args=(Arg("name", "str", "a vnet name", default=""),), runs="locked",
              route=FRONT, front="_vnet_tree"),
    Operation("vnet.create", "create a vnet (a/b: a child of a)", "manage.vnet_create",
              args=(Arg("name", "text", "the new vnet's name", required=True),),
              rights=of_parent("create"), runs="locked", route=FRONT, front="_vnet_create"),
    Operation("vnet.destroy", "destroy a vnet and all it holds", "manage.vnet_destroy",
              args=(Arg("name", "text", "the vnet's name", required=True),
                    Arg("recursive", "bool", "destroy its children too", default=False)),
              rights=of_parent("destroy"), runs="locked", route=FRONT, front="_vnet_destroy"),
    # -- interfaces and addresses
    Operation("ifconfig", "the interfaces of a vnet", "views.ifconfig", args=(VNET,)),
    Operation("tap.create", "create a TAP interface in a vnet", "manage.tap_create",
              args=(Arg("vnet", "text", "the vnet to create it in", required=True),
                    Arg("interface", "text", "the TAP's name", required=True),
                    Arg("addresses", "texts", "ADDR/LEN addresses", default=[]), MTU),
              rights=on("vnet"), runs="locked"),
    Operation("epair.create", "create an epair between two vnets", "manage.epair_create",
              args=(Arg("a", "text", "one end, VNET:INTERFACE", required=True),
                    Arg("b", "text", "the other end, VNET:INTERFACE", required=True),
                    Arg("a_addresses", "texts", "ADDR/LEN addresses of end a", default=[]),
                    Arg("b_addresses", "texts", "ADDR/LEN addresses of end b", default=[]), MTU),
              rights=both(on("a"), on("b")), runs="locked", route=Route("together", ("a", "b"))),
    Operation("interface.move", "move an interface to another vnet", "manage.interface_move",
              args=(Arg("vnet", "text", "the vnet the interface is in", required=True),
                    INTERFACE, Arg("to", "text", "the vnet to move it to", required=True)),
              rights=both(on("vnet"), on("to")), runs="locked",
              route=Route("together", ("vnet", "to"))),
    Operation("interface.destroy", "destroy an interface (an epair: both ends)",
              "manage.interface_destroy",
              args=(Arg("vnet", "text", "the vnet the interface is in", required=True),
                    INTERFACE),
              rights=_interface_destroy, runs="locked"),
    Operation("address.add", "add an address to an interface", "manage.address_add",
              args=(VNET, INTERFACE, ADDRESS), rights=on("vnet"), runs="locked"),
    Operation("address.del", "remove an address from an interface", "manage.address_del",
              args=(VNET, INTERFACE, ADDRESS), rights=on("vnet"), runs="locked"),
    # -- routes and neighbours
    Operation("mirror.show", "a vnet's control-plane mirror: namespace, representors, counters",
              "views.mirror_show", args=(VNET,)),
    Operation("mirror.exec", "run a program in a vnet's mirror as the caller",
              "execs.exec_start",
              args=(VNET, Arg("argv", "texts", "the program and its arguments", required=True),
                    Arg("env", "scalars", "its environment", default={}),
                    Arg("cwd", "str", "its working directory (absolute)", default="/")),
              rights=on("vnet")),
    Operation("route.show", "the routes of a vnet", "views.route_show",
              args=(VNET, Arg("family", "text", "inet or inet6", choices=("inet", "inet6")),
                    Arg("prefix", "text", "only routes within this ADDR/LEN"),
                    Arg("source", "text", "only routes of this source (static, rip …)"),
                    Arg("limit", "int", "at most this many routes", low=0, high=10**9))),
    Operation("route.add", "add a static route", "manage.route_add",
              args=(VNET, PREFIX,
                    Arg("type", "text", "the route's type", default="unicast",
                        choices=("unicast", "blackhole", "reject")),
                    Arg("via", "text", "the next hop's address"),
                    Arg("interface", "text", "the interface it leaves through"),
                    Arg("paths", "texts", "the next hops of a multipath (ECMP) route, "
                        "each ADDR or ADDR%INTERFACE, optionally followed by ' weight N' "
                        "(1-256; instead of via and interface)"),
                    Arg("distance", "int", "administrative distance (a floating static route)",
                        low=1, high=255)),
              rights=on("vnet"), runs="locked"),
    Operation("route.del", "remove a static route", "manage.route_del",
              args=(VNET, PREFIX), rights=on("vnet"), runs="locked"),
    Operation("arp.show", "the ARP cache of a vnet", "views.arp_show", args=(VNET,)),
    Operation("dhcp.leases", "a vnet's DHCP server: its leases and counters",
              "views.dhcp_leases", args=(VNET,)),
    # -- bridges and VLANs
    Operation("bridge.create", "create a bridge over interfaces of a vnet", "manage.bridge_create",
              args=(VNET, INTERFACE,
                    Arg("members", "texts",
                        "member interfaces (tap, epair, vlan, vxlan; no addresses)", default=[]),
                    ADDRESSES,
                    Arg("vlan_filtering", "bool", "filter by VLAN (access and trunk ports)",
                        default=False),
                    Arg("pvid", "int", "the bridge's own VLAN (with filtering)", default=1,
                        low=1, high=4094),
                    Arg("mtu", "int", "the MTU (default: the smallest member's)"),
                    Arg("stp", "bool", "run the spanning tree (802.1D STP or RSTP)",
                        default=False),
                    *STP_BRIDGE),
              rights=on("vnet"), runs="locked"),
    Operation("bridge.port.add", "make an interface a member of a bridge", "manage.bridge_port_add",
              args=(VNET, BRIDGE, INTERFACE,
                    Arg("pvid", "int", "the VLAN of untagged frames (0: none, a trunk)",
                        default=1, low=0, high=4094),
                    Arg("tagged", "ints", "the VLANs carried tagged", default=[], low=1,
                        high=4094),
                    Arg("storm_pps", "int", "broadcast and multicast frames/s admitted (0: any)",
                        default=0, low=0),
                    STP_PATH_COST, STP_PORT_PRIORITY, *STP_EDGE),
              rights=on("vnet"), runs="locked"),
    Operation("bridge.stp", "turn a bridge's spanning tree (802.1D STP or RSTP) on or off, set "
              "its protocol, priority and times", "manage.bridge_stp",
              args=(VNET, BRIDGE,
                    Arg("stp", "bool", "run STP (default: as it is)"), *STP_BRIDGE),
              rights=on("vnet"), runs="locked"),
    Operation("bridge.port.stp", "set a bridge member's spanning tree path cost, priority and "
              "RSTP edge settings; mcheck", "manage.bridge_port_stp",
              args=(VNET, BRIDGE, INTERFACE,
                    Arg("path_cost", "int", "the port's path cost (default 100)", low=1,
                        high=65535),
                    Arg("port_priority", "int", "the port's priority (default 32)", low=0,
                        high=63),
                    *STP_EDGE,
                    Arg("mcheck", "bool", "RSTP: try RSTP again where the port fell back to STP",
                        default=False)),
              rights=on("vnet"), runs="locked"),
    Operation("bridge.port.del", "take a member out of a bridge", "manage.bridge_port_del",
              args=(VNET, BRIDGE, INTERFACE), rights=on("vnet"), runs="locked"),
    Operation("bridge.fdb.add", "add a static FDB entry (a MAC behind a bridge member)",
              "manage.bridge_fdb_add",
              args=(VNET, FDB_MAC, FDB_PORT, FDB_VLAN,
                    Arg("dst", "str", "on a vxlan port: the remote VTEP the MAC is behind",
                        default="")),
              rights=on("vnet"), runs="locked"),
    Operation("bridge.fdb.del", "remove a static FDB entry", "manage.bridge_fdb_del",
              args=(VNET, FDB_MAC, FDB_PORT, FDB_VLAN), rights=on("vnet"), runs="locked"),
    Operation("vlan.create", "create an 802.1Q VLAN interface on a parent", "manage.vlan_create",
              args=(VNET, Arg("parent", "text", "the parent interface", required=True),
                    Arg("vid", "int", "the VLAN ID", required=True, low=1, high=4094),
                    Arg("interface", "text", "its name (default: PARENT.VID)"),
                    ADDRESSES, Arg("mtu", "int", "the MTU (default: the parent's)")),
              rights=on("vnet"), runs="locked"),
    Operation("vxlan.create", "create a VXLAN interface (a bridge member to be)",
              "manage.vxlan_create",
              args=(VNET, INTERFACE,
                    Arg("vni", "int", "the VXLAN network identifier", required=True, low=0,
                        high=(1 << 24) - 1),
                    Arg("local", "text",
                        "the local VTEP address (the host's, or the underlay vnet's)",
                        required=True),
                    Arg("port", "int", "the UDP port", default=4789, low=1, high=65535),
                    Arg("remotes", "texts", "static remote VTEPs (head-end replication)",
                        default=[]),
                    Arg("group", "str", "a multicast group instead of remotes", default=""),
                    Arg("learning", "bool", "learn inner MACs behind their VTEP", default=True),
                    ADDRESSES,
                    Arg("mtu", "int", "the MTU (default: 1500 - 50, or - 70 over IPv6)"),
                    Arg("underlay", "str", "a vnet whose UDP carries the outer packets "
                        "(default: the host's)", default=""),
                    Arg("tunnel_gso", "bool", "TCP super-frames leave whole through a TAP "
                        "with UDP-tunnel GSO, the kernel segments them, and arrive whole "
                        "through it (Linux 6.17+; the socket alone where it cannot)",
                        default=False)),
              rights=on("vnet"), runs="locked"),
    Operation("bridge.show", "the bridges of a vnet: ports, VLANs, counters", "views.bridge_show",
              args=(VNET, Arg("bridge", "str", "one bridge (none: every bridge)", default=""))),
    Operation("bridge.fdb", "the forwarding databases of a vnet's bridges", "views.bridge_fdb",
              args=(VNET, Arg("bridge", "str", "one bridge (none: every bridge)", default=""))),
    Operation("vxlan.show", "the VXLAN interfaces of a vnet: remote VTEPs and their MACs",
              "views.vxlan_show",
              args=(VNET, Arg("interface", "str", "one interface (none: every one)", default=""))),
    Operation("ndp.show", "the IPv6 neighbour cache of a vnet", "views.ndp_show", args=(VNET,)),
    Operation("rtadv.show", "what a host vnet learnt from router advertisements: default "
              "routers, addresses, DNS servers, search domains, MTU", "views.rtadv_show",
              args=(VNET,)),
    # -- statistics and knobs
    Operation("netstat", "protocol statistics of a vnet", "views.netstat", args=(VNET,)),
    Operation("sockstat", "sockets programs hold in a vnet", "views.sockstat", args=(VNET,)),
    Operation("sysctl.get", "read sysctl knobs of a vnet", "views.sysctl_get",
              args=(VNET, Arg("names", "texts", "sysctl names (none: every knob)", default=[]))),
    Operation("sysctl.set", "set sysctl knobs of a vnet, all or none", "manage.sysctl_set",
              args=(VNET, Arg("settings", "scalars", "sysctl name -> value", required=True)),
              rights=_sysctl_set, runs="locked"),
    # -- the firewall
    Operation("firewall.show", "the rules with their counters", "views.firewall_show",
              args=(VNET,)),
    Operation("firewall.states", "tracked flows", "views.firewall_states", args=(VNET,)),
    Operation("firewall.load", "replace the ruleset atomically", "manage.firewall_load",
              args=(VNET, Arg("text", "str", "the TOML ruleset", required=True),
                    Arg("source", "text", "where the ruleset came from", default="<ruleset>")),
              rights=on("vnet"), runs="locked"),
    Operation("firewall.flush", "forget every state", "manage.firewall_flush",
              args=(VNET,), rights=on("vnet"), runs="locked"),
    # -- descriptors passed to the caller
    Operation("capture", "capture an interface's frames (a socket passed back)",
              "passing.capture_start",
              args=(VNET, Arg("interface", "text", "an interface name", required=True),
                    Arg("snaplen", "int", "bytes kept per frame", default=SNAPLEN_MAX,
                        low=1, high=SNAPLEN_MAX),
                    Arg("direction", "text", "in, out or both", default="both",
                        choices=("in", "out", "both")),
                    Arg("filter", "str", "a tcpdump expression", default="")),
              rights=on("vnet")),
    Operation("socket.open", "open a UDP, raw or route socket in a vnet", "passing.socket_open",
              args=(VNET, FAMILY,
                    Arg("type", "text", "udp, raw or route", default="udp",
                        choices=("udp", "raw", "route")),
                    Arg("protocol", "int", "the IP protocol number", default=0, low=0, high=255)),
              rights=_socket, binds=True),
    Operation("tcp.listen", "listen on a TCP port of a vnet", "passing.tcp_listen",
              args=(VNET, FAMILY, Arg("address", "str", "the local address (none: any)"),
                    Arg("port", "int", "the port (0: any)", default=0, low=0, high=65535),
                    Arg("backlog", "int", "pending connections", default=128,
                        low=1, high=65535)),
              rights=_socket, binds=True),
    Operation("tcp.connect", "open a TCP connection from a vnet", "passing.tcp_connect",
              args=(VNET, FAMILY, Arg("address", "text", "the address to connect to",
                                      required=True),
                    Arg("port", "int", "the port", required=True, low=1, high=65535),
                    Arg("timeout", "number", "seconds to wait for the handshake",
                        default=75, low=0.001, high=3600)),
              rights=_socket, runs="await"),
)  # fmt: skip

TABLE: Final[Mapping[str, Operation]] = {op.name: op for op in _OPS}
"""Every control operation by name."""
