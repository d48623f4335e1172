"""Cross-checks: what spans more than one section of a configuration.

Responsibility: once every section has been read, check the vnet hierarchy,
limits down the tree and what each vnet declares against them, worker pins,
TAP and netns names unique across the daemon, epair peers that name each
other, addresses and connected networks used once per vnet, and routes
(duplicates, next hops on a connected network).  A problem that only
follows from one already reported is not repeated.
"""

from __future__ import annotations

from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
)

from vrouter.core import limits as limits_
from vrouter.core.tomlkeys import TomlReader
from vrouter.core.tomlkeys import join as _join
from vrouter.daemon.config.grammar import (
    is_link_local,
    toml_header,
)
from vrouter.daemon.config.parsed import (
    ParsedAddress,
    ParsedInterface,
    ParsedRoute,
    ParsedVnet,
    parents_first,
)


def check_workers(r: TomlReader, vnets: list[ParsedVnet], workers: int) -> None:
    """A ``worker`` pin is on a top-level vnet (its subtree follows) and names a worker."""
    for vnet in vnets:
        if vnet.worker is None:
            continue
        where = _join(vnet.key, "worker")
        if "/" in vnet.name:
            r.problem(
                where,
                f"only a top-level vnet is pinned to a worker; {vnet.name} runs "
                f"where {vnet.name.partition('/')[0]} runs",
            )
        elif not 0 <= vnet.worker < workers:
            r.problem(
                where,
                f"worker {vnet.worker} does not exist: daemon.workers = {workers} "
                f"(workers 0..{workers - 1})",
            )


def check_hierarchy(r: TomlReader, vnets: list[ParsedVnet]) -> None:
    """Report a child vnet whose parents are not declared."""
    declared = {v.name for v in vnets}
    for vnet in vnets:
        if not vnet.name_ok or "/" not in vnet.name:
            continue
        parts = vnet.name.split("/")
        ancestors = ["/".join(parts[:n]) for n in range(1, len(parts))]
        missing = [a for a in ancestors if a not in declared]
        if missing:
            names = ", ".join(repr(m) for m in missing)
            declare = " and ".join(toml_header(m) for m in missing)
            if len(missing) == 1:
                reason = f"parent vnet {names} is not declared; declare {declare}"
            else:
                reason = f"parent vnets {names} are not declared; declare {declare}"
            r.problem(vnet.key, reason)


def check_limits(r: TomlReader, vnets: list[ParsedVnet]) -> None:
    """Check limits only narrow down the tree, and each vnet's config fits its own."""
    by_name = {v.name: v for v in vnets}
    effective: dict[str, dict[str, tuple[int, str]]] = {}
    for vnet in parents_first(vnets):
        parent_name, sep, _ = vnet.name.rpartition("/")
        inherited = dict(effective.get(parent_name, {})) if sep else {}
        mine = dict(inherited)
        for kind, value in vnet.limits:
            noun = limits_.NOUNS[kind]
            above = inherited.get(kind)
            if above is not None and value > above[0]:
                where = "" if above[1] == parent_name else f", set on {above[1]}"
                r.problem(
                    _join(vnet.limits_key, kind),
                    f"{noun} limit {value} of vnet {vnet.name} is above the {noun} limit "
                    f"of its parent vnet {parent_name} ({above[0]}{where}); "
                    "a child may only narrow its parent's limits",
                )
                continue
            mine[kind] = (value, vnet.name)
        effective[vnet.name] = mine
        check_fits(r, by_name[vnet.name], mine)


def check_fits(r: TomlReader, vnet: ParsedVnet, limits: dict[str, tuple[int, str]]) -> None:
    """Report what ``vnet``'s own config declares beyond its limits."""

    def beyond(kind: str, count: int) -> str:
        limit, where = limits[kind]
        source = "" if where == vnet.name else f" (set on {where})"
        return f"{count}, above its {limits_.NOUNS[kind]} limit {limit}{source}"

    if "interfaces" in limits and len(vnet.interfaces) > limits["interfaces"][0]:
        r.problem(
            _join(vnet.key, "interfaces"),
            f"vnet {vnet.name} declares interfaces: {beyond('interfaces', len(vnet.interfaces))}",
        )
    if "routes" in limits:
        networks = {
            a.value.network
            for i in vnet.interfaces
            for a in i.addresses
            if not is_link_local(a.value.ip)
        }
        statics = {r.prefix for r in vnet.routes if r.prefix is not None}
        count = len(networks) + len(statics)  # a static route to a connected one is held
        if count > limits["routes"][0]:
            r.problem(
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
            r.problem(
                key,
                f"{name} {value:g} is above the {limits_.NOUNS[kind]} limit {limit} "
                f"of vnet {vnet.name}{source}",
            )


def check_unique_taps(r: TomlReader, vnets: list[ParsedVnet]) -> None:
    """Report a TAP name used twice: TAPs are kernel devices, one namespace for all vnets."""
    owner: dict[str, str] = {}
    for vnet in vnets:
        for iface in vnet.interfaces:
            if iface.type != "tap":
                continue
            if iface.name in owner:
                r.problem(
                    iface.key,
                    f"duplicate interface {iface.name!r} (already in vnet "
                    f"{owner[iface.name]}); TAP interfaces are kernel devices, "
                    "so their names must be unique across the daemon",
                )
            else:
                owner[iface.name] = vnet.name


def check_unique_netns(r: TomlReader, vnets: list[ParsedVnet]) -> None:
    """Report a host netns used by two TAP hosts."""
    owner: dict[str, str] = {}
    for vnet in vnets:
        for iface in vnet.interfaces:
            if iface.host is None or not iface.host.netns:
                continue
            netns = iface.host.netns
            if netns in owner:
                r.problem(
                    iface.netns_key,
                    f"netns {netns!r} is already used by the host of {owner[netns]}",
                )
            else:
                owner[netns] = f"interface {iface.name} in vnet {vnet.name}"


def check_peers(r: TomlReader, vnets: list[ParsedVnet]) -> None:
    """Report epair peers that are missing, not epairs or do not name each other."""
    by_name = {v.name: v for v in vnets}
    for vnet in vnets:
        for iface in vnet.interfaces:
            if iface.type != "epair" or iface.peer is None:
                continue
            me = f"{vnet.name}:{iface.name}"
            peer_vnet_name, peer_name = iface.peer
            peer_text = f"{peer_vnet_name}:{peer_name}"
            if iface.peer == (vnet.name, iface.name):
                r.problem(iface.peer_key, f"epair {me} cannot peer with itself")
                continue
            peer_vnet = by_name.get(peer_vnet_name)
            if peer_vnet is None:
                r.problem(
                    iface.peer_key,
                    f"peer {peer_text}: vnet {peer_vnet_name!r} is not declared",
                )
                continue
            peer = peer_vnet.interface(peer_name)
            if peer is None:
                r.problem(
                    iface.peer_key,
                    f"peer {peer_text}: vnet {peer_vnet_name} has no interface {peer_name!r}",
                )
                continue
            if peer.type is None:
                continue  # its type problem is already reported
            if peer.type != "epair":
                r.problem(
                    iface.peer_key,
                    f"peer {peer_text} is a {peer.type} interface, not an epair",
                )
                continue
            if peer.peer is None:
                continue  # its missing or bad peer is already reported
            if peer.peer != (vnet.name, iface.name):
                r.problem(
                    iface.peer_key,
                    f"peer {peer_text} does not point back: its peer is "
                    f"{peer.peer[0]}:{peer.peer[1]}, not {me}; "
                    "both ends of an epair must name each other",
                )


def check_connected(r: TomlReader, vnet: ParsedVnet) -> None:
    """Report an address or connected network used by two interfaces."""
    seen: list[tuple[ParsedAddress, ParsedInterface]] = []
    for iface in vnet.interfaces:
        for address in iface.addresses:
            if is_link_local(address.value.ip):
                continue  # each interface has its own link-local network
            for other, other_iface in seen:
                if other_iface is iface or other.value.version != address.value.version:
                    continue
                if other.value.ip == address.value.ip:
                    r.problem(
                        address.key,
                        f"address {address.value.ip} is already assigned to "
                        f"interface {other_iface.name} in vnet {vnet.name}",
                    )
                    break
                if other.value.network.overlaps(address.value.network):
                    r.problem(
                        address.key,
                        f"network {address.value.network} overlaps "
                        f"{other.value.network} of interface {other_iface.name} "
                        f"in vnet {vnet.name}",
                    )
                    break
            seen.append((address, iface))


def check_routes(r: TomlReader, vnet: ParsedVnet) -> None:
    """Report duplicate routes, misplaced via/interface and next hops not reachable."""
    seen: dict[IPv4Network | IPv6Network, str] = {}
    for route in vnet.routes:
        if route.prefix is not None:
            if route.prefix in seen:
                r.problem(
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
                    r.problem(
                        _join(route.key, name),
                        f"a {route.type} route takes no {name!r}",
                    )
            continue
        if route.type != "unicast":
            continue  # bad type already reported
        if not route.has_via and not route.has_interface:
            r.problem(route.key, "a unicast route needs 'via', 'interface' or both")
            continue
        iface: ParsedInterface | None = None
        if route.interface is not None:
            iface = vnet.interface(route.interface)
            if iface is None:
                known = ", ".join(i.name for i in vnet.interfaces) or "none"
                r.problem(
                    _join(route.key, "interface"),
                    f"unknown interface {route.interface!r} in vnet {vnet.name} "
                    f"(its interfaces: {known})",
                )
                continue
        if route.via is not None and is_link_local(route.via) and iface is None:
            if not route.has_interface:
                r.problem(
                    _join(route.key, "interface"),
                    f"a link-local next hop needs 'interface': {route.via} is only "
                    "unique on one link, so name the interface it is reached through",
                )
            continue
        if route.via is not None:
            check_next_hop(r, vnet, route, route.via, iface)
        for at, hop in enumerate(route.paths):
            key = f"{_join(route.key, 'via')}[{at}]"
            if is_link_local(hop) and iface is None:
                r.problem(key, f"a link-local next hop needs 'interface': {hop}")
            else:
                check_next_hop(r, vnet, route, hop, iface, key)


def check_next_hop(
    r: TomlReader,
    vnet: ParsedVnet,
    route: ParsedRoute,
    via: IPv4Address | IPv6Address,
    iface: ParsedInterface | None,
    key: str | None = None,
) -> None:
    """Check *via* is on a connected network (any link for link-local ones)."""
    candidates = vnet.interfaces if iface is None else (iface,)
    if not all(i.addresses_complete for i in candidates):
        return  # a bad address is already reported; do not guess
    key = key or _join(route.key, "via")
    for candidate in candidates:
        if any(a.value.ip == via for a in candidate.addresses):
            r.problem(
                key,
                f"next hop {via} is an address of vnet {vnet.name} itself "
                f"(interface {candidate.name})",
            )
            return
    if is_link_local(via):
        return  # every link has fe80::/64; the next hop is on iface's
    if any(
        via in a.value.network
        for c in candidates
        for a in c.addresses
        if a.value.version == via.version
    ):
        return
    if iface is None:
        r.problem(key, f"next hop {via} is not on a connected network of vnet {vnet.name}")
    else:
        r.problem(
            key,
            f"next hop {via} is not on a connected network of vnet {vnet.name} "
            f"via interface {iface.name}",
        )


def check_underlays(r: TomlReader, vnets: list[ParsedVnet], workers: int) -> None:
    """A vxlan ``underlay`` names a declared vnet that runs in the same worker."""
    by_name = {v.name: v for v in vnets}
    for vnet in vnets:
        for iface in vnet.interfaces:
            if iface.vxlan is None or iface.vxlan.underlay is None:
                continue
            key = _join(iface.key, "underlay")
            name = iface.vxlan.underlay
            under = by_name.get(name)
            if under is None:
                r.problem(key, f"vnet {name!r} is not declared")
            elif workers > 1 and _top(vnet.name) != _top(name):
                mine, theirs = (by_name.get(_top(n)) for n in (vnet.name, name))
                pins = (mine.worker if mine else None, theirs.worker if theirs else None)
                if pins[0] is None or pins[0] != pins[1]:
                    r.problem(
                        key,
                        f"vnet {name} must run in the worker of vnet {vnet.name}: "
                        f"pin both top-level vnets to one worker (worker = N)",
                    )


def _top(name: str) -> str:
    return name.partition("/")[0]
