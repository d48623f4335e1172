"""Views: the control operations that only read (``read_only`` in the table).

Each takes the :class:`~vrouter.api.host.Host` and the request's checked
arguments and returns the JSON result.  They read the state the subsystems
keep and change nothing; anyone who can connect may use them.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

from vrouter.api.connection import Rows
from vrouter.api.host import Host, ops_of, vnet_of
from vrouter.api.manage import parse_prefix
from vrouter.api.protocol import ApiError
from vrouter.core import limits, perms
from vrouter.core.errors import OpError
from vrouter.core.perms import Policy
from vrouter.core.sysctl import SysctlError
from vrouter.core.vnet import Vnet
from vrouter.firewall.nat import Binding, Redirect, describe_mapping
from vrouter.firewall.states import State
from vrouter.inet.state import stats_dict
from vrouter.inet6 import slaac
from vrouter.link.bridge import Bridge, FdbEntry
from vrouter.route.fib import Route
from vrouter.route.source import DISTANCES, ROUTESOCK
from vrouter.services.dhcp import state as dhcp
from vrouter.stack import ESSENTIAL, discover


def status(host: Host, args: dict[str, Any]) -> Any:
    return {**host.status(), "caller": _caller_info(host)}


async def config_vnets(host: Host, args: dict[str, Any]) -> Any:
    """Each vnet of this process as a config file has it: ``[name, table]``."""
    return await host.config_vnets()


async def config_dump(host: Host, args: dict[str, Any]) -> Any:
    """The running configuration: ``config`` (the file's path), ``document``, ``text`` (TOML)."""
    return await host.config_dump(await host.config_vnets())


async def config_diff(host: Host, args: dict[str, Any]) -> Any:
    """What differs between the running state and a file: ``file``, ``differences`` (lines)."""
    return await host.config_diff(await host.config_vnets(), args.get("text"), args["source"])


def _caller_info(host: Host) -> dict[str, Any]:
    cred = perms.caller()
    policy = host.tree.policy if host.tree is not None else Policy()
    return {"uid": cred.uid, "gid": cred.gid, "pid": cred.pid, "admin": policy.is_admin(cred)}


def vnet_list(host: Host, args: dict[str, Any]) -> Any:
    return [
        {
            "name": vnet.name,
            "parent": vnet.parent.name if vnet.parent is not None else None,
            "forwarding": vnet.inet.forwarding,
            "interfaces": len(vnet.link.interfaces),
            "routes": len(vnet.route.fib) + len(vnet.route.fib6),
            "neighbours": len(vnet.inet.arp.entries) + len(vnet.inet6.nd.entries),
            "limits": {kind: vnet.limits.effective(kind) for kind in limits.KINDS},
        }
        for vnet in host.tree or ()
    ]


def _in_use(vnet: Vnet) -> dict[str, int | None]:
    """Return what each limit counts in ``vnet`` now (None: not known here)."""
    fw = vnet.view("firewall")
    transport = vnet.view("transport")
    sockets_open = getattr(transport, "sockets", None) if transport is not None else None
    return {
        "interfaces": len(vnet.link.interfaces),
        "routes": len(vnet.route.fib) + len(vnet.route.fib6),
        "neighbours": max(len(vnet.inet.arp.entries), len(vnet.inet6.nd.entries)),
        "states": len(fw.fw.states) + len(fw.fw.nat) if fw is not None else None,
        "sockets": len(sockets_open) if isinstance(sockets_open, dict | list | set) else None,
        "reassembly_bytes": max(vnet.inet.reass.memory(), vnet.inet6.reass.memory()),
        "fdb": vnet.link.bridge.fdb_entries,
    }


def _limit_refusals(vnet: Vnet) -> dict[str, int]:
    """Return, per limit kind, what was refused at it (operation layer and data path).

    Interfaces, routes and sockets are refused by the operation layer; the
    data path counts neighbours (``arp.table_full``, ``icmp6.nd_table_full``),
    states (``pf_states.limit``) and reassembly memory (``*_reass.memory``) at
    the knobs the limits cap.
    """
    counted = vnet.limits.refused
    fw = vnet.view("firewall")
    return {
        "interfaces": counted["interfaces"],
        "routes": counted["routes"],
        "neighbours": vnet.inet.arpstat.table_full + vnet.inet6.icmp.nd_table_full,
        "states": counted["states"] + (fw.fw.states.stats.limit if fw is not None else 0),
        "sockets": counted["sockets"],
        "reassembly_bytes": vnet.inet.reass.stats.memory + vnet.inet6.reass.stats.memory,
        "fdb": vnet.link.bridge.fdb_full,
    }


def vnet_show(host: Host, args: dict[str, Any]) -> Any:
    vnet = vnet_of(host, args)
    in_use = _in_use(vnet)
    refusals = _limit_refusals(vnet)
    described = vnet.limits.describe()
    for kind, info in described.items():
        info["in_use"] = in_use[kind]
        info["refused"] = refusals[kind]
    policy = host.tree.policy if host.tree is not None else Policy()

    def principals(kind: str) -> list[dict[str, str]]:
        rows = [{"principal": str(p), "from": "daemon admins"} for p in policy.admins]
        for name in perms.ancestry(vnet.name):
            grants = policy.grants.get(name)
            if grants is not None:
                # managers may open sockets too
                granted = grants.manage if kind == "manage" else grants.manage + grants.sockets
                rows.extend({"principal": str(p), "from": name} for p in granted)
        return rows

    cred = perms.caller()
    return {
        "name": vnet.name,
        "parent": vnet.parent.name if vnet.parent is not None else None,
        "children": sorted(c.name for c in vnet.children.values()),
        "forwarding": vnet.inet.forwarding,
        "subsystems": [s for s in host.tree.registry.names() if vnet.has(s)]
        if host.tree is not None
        else [],
        "limits": described,
        "permissions": {"manage": principals("manage"), "sockets": principals("sockets")},
        "caller": {
            "uid": cred.uid,
            "manage": perms.may_manage(vnet, cred),
            "sockets": perms.may_open_sockets(vnet, cred),
            "limits": policy.may_set_limits(vnet.name, cred),
        },
    }


def module_list(host: Host, args: dict[str, Any]) -> Any:
    if host.tree is None:
        raise ApiError("the daemon is starting")
    registry = host.tree.registry
    available, problems = discover()
    loaded = [
        {
            "name": s.name,
            "loaded": True,
            "depends": list(s.depends),
            "needed_by": registry.users(s.name),
            "essential": s.name in ESSENTIAL,
            "source": available[s.name].source
            if s.name in available and available[s.name].subsystem is s
            else "loaded at run time",
            "knobs": len(s.knobs),
        }
        for s in registry
    ]
    others = [
        {
            "name": name,
            "loaded": False,
            "depends": list(found.subsystem.depends),
            "needed_by": [],
            "essential": False,
            "source": found.source,
            "knobs": len(found.subsystem.knobs),
        }
        for name, found in sorted(available.items())
        if registry.get(name) is None
    ]
    return {"modules": loaded + others, "problems": problems}


def ifconfig(host: Host, args: dict[str, Any]) -> Any:
    vnet = vnet_of(host, args)
    result = []
    for ifp in vnet.link.interfaces.values():
        info = ifp.describe()
        info["inet6"] = [
            {
                "address": f"{ipaddress.IPv6Address(a.address)}/{a.prefixlen}",
                "state": "deprecated" if a.deprecated and a.usable else a.state,
                "scope": "link" if a.link_local else "global",
            }
            for a in vnet.inet6.addrs_of(ifp)
        ]
        info["ra"] = ifp.name in vnet.inet6.ra
        result.append(info)
    return result


def mirror_show(host: Host, args: dict[str, Any]) -> Any:
    """The vnet's control-plane mirror: its namespace, representors, punt and sync counters."""
    vnet = vnet_of(host, args)
    mirrors = ops_of(host).mirrors
    found = mirrors.describe(vnet.name) if mirrors is not None else None
    if found is None:
        raise OpError(f"vnet {vnet.name} has no mirror")
    return found


def route_show(host: Host, args: dict[str, Any]) -> Any:
    """The routes of a vnet, streamed: ``family``, ``prefix`` (routes within it), ``source``,
    ``limit``; each with its source, distance and state (installed or held)."""
    vnet = vnet_of(host, args)
    family = args.get("family")
    within = None
    if "prefix" in args:
        within = parse_prefix(args["prefix"])
        family = "inet" if within.version == 4 else "inet6"
        if args.get("family") not in (None, family):
            raise ApiError(f"prefix {within} is not of family {args['family']}")
    source = args.get("source")
    if source is not None and source not in DISTANCES and source != ROUTESOCK:
        present = {r.source.name for fib in (vnet.route.fib, vnet.route.fib6) for r in fib}
        if source not in present:
            known = ", ".join(sorted(present | set(DISTANCES)))
            raise ApiError(f"vnet {vnet.name}: no route source {source!r} (known: {known})")
    fibs = [fib for name, fib in (("inet", vnet.route.fib), ("inet6", vnet.route.fib6))
            if family in (None, name)]  # fmt: skip

    def routes() -> Iterator[Route]:  # read a slice at a time as the reply is written
        for fib in fibs:
            for route in fib:
                if source is not None and route.source.name != source:
                    continue
                if within is not None and not route.prefix.subnet_of(within):  # type: ignore[arg-type]
                    continue
                yield route

    limit = args.get("limit")
    tables = {4: vnet.route.fib, 6: vnet.route.fib6}  # kept: the vnet may go mid-stream
    return Rows(
        routes() if limit is None else itertools.islice(routes(), limit),
        lambda route: route.describe(tables[route.version].state(route)),
    )


def ndp_show(host: Host, args: dict[str, Any]) -> Any:
    vnet = vnet_of(host, args)
    now = host.driver.now()
    entries = sorted(vnet.inet6.nd.entries.values(), key=lambda e: (e.ifnet.name, e.ip))
    return Rows(entries, lambda entry: entry.describe(now))


def rtadv_show(host: Host, args: dict[str, Any]) -> Any:
    """What the vnet took from other routers' advertisements as a host."""
    return slaac.describe(vnet_of(host, args), host.driver.now())


def arp_show(host: Host, args: dict[str, Any]) -> Any:
    vnet = vnet_of(host, args)
    now = host.driver.now()
    entries = sorted(vnet.inet.arp.entries.values(), key=lambda e: (e.ifnet.name, e.ip))
    return Rows(entries, lambda entry: entry.describe(now))


def dhcp_leases(host: Host, args: dict[str, Any]) -> Any:
    """The vnet's DHCP server: pools, leases, counters (``serving`` false: none configured)."""
    vnet = vnet_of(host, args)
    if not vnet.has("dhcp"):
        raise ApiError(f"vnet {vnet.name}: the dhcp subsystem is not loaded")
    return dhcp.leases(vnet, host.driver.now())


def _bridges(host: Host, args: dict[str, Any]) -> list[Bridge]:
    vnet = vnet_of(host, args)
    bridges = vnet.link.bridge.bridges
    name = args.get("bridge") or ""
    if not name:
        return list(bridges.values())
    if name not in bridges:
        raise ApiError(f"vnet {vnet.name} has no bridge {name!r}")
    return [bridges[name]]


def bridge_show(host: Host, args: dict[str, Any]) -> Any:
    now = host.driver.now()
    return [bridge.describe(now) for bridge in _bridges(host, args)]


def vxlan_show(host: Host, args: dict[str, Any]) -> Any:
    vnet = vnet_of(host, args)
    vxlans = vnet.link.vxlans
    name = args.get("interface") or ""
    if name and name not in vxlans:
        raise ApiError(f"vnet {vnet.name} has no vxlan interface {name!r}")
    now = host.driver.now()
    chosen = [vxlans[name]] if name else list(vxlans.values())
    for vx in chosen:
        vx.now = max(vx.now, now)
    return [vx.describe() for vx in chosen]


def bridge_fdb(host: Host, args: dict[str, Any]) -> Any:
    now = host.driver.now()
    rows: list[tuple[Bridge, FdbEntry]] = []
    for bridge in _bridges(host, args):
        bridge.now = max(bridge.now, now)
        rows.extend((bridge, entry) for entry in bridge.entries())

    def describe(row: tuple[Bridge, FdbEntry]) -> dict[str, object]:
        bridge, entry = row
        return {"bridge": bridge.ifnet.name, **entry.describe(now, bridge.state.ageing_time)}

    return Rows(rows, describe)


def netstat(host: Host, args: dict[str, Any]) -> Any:
    vnet = vnet_of(host, args)
    inet, inet6 = vnet.inet, vnet.inet6
    result: dict[str, Any] = {
        "ip": stats_dict(inet.stats),
        "ip_reass": stats_dict(inet.reass.stats),
        "icmp": stats_dict(inet.icmp),
        "igmp": stats_dict(inet.igmp),
        "arp": stats_dict(inet.arpstat),
        "ip6": stats_dict(inet6.stats),
        "ip6_reass": stats_dict(inet6.reass.stats),
        "icmp6": stats_dict(inet6.icmp),
        "dhcp6": stats_dict(inet6.dhcp6_stats),
    }
    filter_state = vnet.view("firewall")
    if filter_state is not None:
        result["pf"] = {
            **stats_dict(filter_state.fw.stats),
            "rejects_sent": filter_state.rejects_sent,
            "log_suppressed": filter_state.log_suppressed,
        }
        result["pf_states"] = stats_dict(filter_state.fw.states.stats)
    result["drops"] = _drops_by_reason(vnet)
    tcp = vnet.view("tcp")
    if tcp is not None:
        result["tcp"] = tcp.stats.as_dict()
    result["limits"] = {f"{kind}_refused": n for kind, n in _limit_refusals(vnet).items()}
    return result


def _endpoint_text(address: bytes, port: int) -> str:
    text = str(ipaddress.ip_address(address))
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def sockstat(host: Host, args: dict[str, Any]) -> Any:
    vnet = vnet_of(host, args)
    transport = vnet.view("transport")
    result: dict[str, Any] = {
        "sockets": [s.describe() for s in transport.sockets] if transport is not None else [],
        "route_sockets": sum(
            1 for e in host.endpoints if e.vnet is vnet and e.kind == "route"
        ),
        "stats": stats_dict(transport.stats) if transport is not None else {},
    }
    tcp = vnet.view("tcp")
    if tcp is not None:
        table = tcp.table
        result["tcp_listeners"] = [listener.describe() for listener in table.listeners.values()]
        result["tcp"] = [
            {
                "local": _endpoint_text(conn.local_addr, conn.local_port),
                "remote": _endpoint_text(conn.remote_addr, conn.remote_port),
                **conn.info(),
            }
            for conn in table.connections()
        ]
    return result


def _drops_by_reason(vnet: Vnet) -> dict[str, int]:
    """Return every interface's drops of ``vnet`` summed by reason."""
    total: Counter[str] = Counter()
    for ifp in vnet.link.interfaces.values():
        total.update(ifp.counters.rx_drops)
        total.update(ifp.counters.tx_drops)
    return dict(sorted(total.items()))


def _firewalled(host: Host, args: dict[str, Any]) -> Vnet:
    """Return the request's vnet; refuse if the firewall subsystem is not loaded."""
    return ops_of(host).firewalled(vnet_of(host, args))


def firewall_show(host: Host, args: dict[str, Any]) -> Any:
    state = _firewalled(host, args).view("firewall")
    fw = state.fw
    return {
        "enabled": fw.enabled,
        "default": fw.ruleset.default,
        "rules": fw.ruleset.describe(),
        "nat": fw.ruleset.describe_nat(),
        "mappings": len(fw.nat),
        "states": len(fw.states),
        "max_states": fw.states.max_states,
        "flows": {
            "cached": len(state.flows.entries),
            "learned": state.flows.inserts,
            "hits": state.flows.hits,
        },
    }



def firewall_states(host: Host, args: dict[str, Any]) -> Any:
    vnet = _firewalled(host, args)
    now = host.driver.now()
    fw = vnet.view("firewall").fw
    nat = fw.nat

    def describe(item: State | Binding | Redirect) -> dict[str, object]:
        if not isinstance(item, State):
            return describe_mapping(item, now)
        entry = item.describe(now)
        seen = nat.translation_of(item.proto, item.src, item.sport, item.dst, item.dport)
        if seen:
            entry["translated"] = seen
        return entry

    return Rows([*fw.states, *nat.bindings(), *nat.redirects()], describe)



def sysctl_get(host: Host, args: dict[str, Any]) -> Any:
    vnet = vnet_of(host, args)
    assert host.tree is not None
    tree = host.tree.registry.sysctl()
    names = args["names"] or sorted(tree.knobs)
    try:
        return [tree.knob(name).describe(vnet) for name in names]
    except SysctlError as err:
        raise ApiError(str(err)) from None



async def metrics_scrape(host: Host, args: dict[str, Any]) -> Any:
    """Return this process's metrics as a list of text pieces (a front merges its workers'),
    built and written a slice per loop pass; ``packed``: each piece zlib-compressed and
    base64-encoded as it is written (JSON-escaping the text itself costs far more)."""
    chunks = await host.metrics_chunks(args["collect"], args["exclude"], args["openmetrics"])
    return Rows(chunks, _packed if args["packed"] else str, per_slice=1)


def _packed(text: str) -> str:
    return base64.b64encode(zlib.compress(text.encode(), 1)).decode("ascii")
