"""Live reload: diff the running config against the file, apply only the differences.

This module is long on purpose: the plan and the application of its steps are one table
read together (each kind of step is planned and applied here, side by side).

:func:`plan` is a pure function of two :class:`~vrouter.daemon.config.Config`
objects.  It returns the steps that turn a daemon running the old config into
one running the new, in an order that never needs a name, an address or a
device before it is free:

1. static routes removed (or changed), addresses removed from interfaces that stay;
2. interfaces removed or re-created (a new type, host, peer, MAC, ``up``,
   link-local address, bridge or VLAN setting re-creates it; an epair goes as
   a whole; VLANs before their parents, bridges before their members);
3. vnets removed, children first;
4. sysctl values (a vnet's limits before its other knobs), firewall
   rulesets and DHCP servers of the vnets that stay, parents first; permissions;
5. vnets added, parents first, each with its sysctl values, ruleset and DHCP server;
6. interfaces and epairs created (parents before VLANs, members before bridges);
7. in place: MTU, addresses added, router advertisements, DHCPv6 servers, a
   bridge's spanning tree settings (``stp`` on or off, its priority and
   times, its ports' path costs and priorities);
8. static routes added (or changed); the daemon's log level and admins.

What stays equal is not touched: an interface whose config is unchanged keeps
its TAP fd, neighbour cache and counters; a vnet keeps its firewall states
(a changed ruleset is swapped in like ``pfctl -f``, states kept).  A static
route is kept when its config and the interface it resolves to are the same
and that interface is not re-created.

``[daemon]`` settings other than ``log_level`` and ``admins`` cannot change
live (the control socket, state directory and metrics listener are bound at
start): the plan lists them in ``refused`` and the reload is refused.

Limits are ``vnet.limits.*`` knobs: raised parents first, so a child never
exceeds its parent; an undo restores the earlier values without that check
(the earlier state was consistent, whatever the order of undoing).
Permissions (``[vnets.NAME.permissions]``, ``[daemon] admins``) change the
tree's policy; the control socket's mode follows (0666 with any non-root
principal, else 0660).

:func:`apply` runs the steps through :class:`~vrouter.daemon.ops.Ops`; each
step returns its undo, and a step that fails makes every applied step undo
in reverse order before the error is raised, so the daemon keeps running
the old configuration.  Objects created at run time through the API are not
in either file: the reload leaves them alone unless they collide with it
(then it fails and rolls back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vrouter.core import limits
from vrouter.core.perms import Grants, Policy, Principal
from vrouter.core.sysctl import Value
from vrouter.daemon.config import (
    BridgePortConfig,
    Config,
    ConfigError,
    DaemonConfig,
    FirewallConfig,
    InterfaceConfig,
    MirrorConfig,
    RouteConfig,
    VnetConfig,
    load,
    parse,
)
from vrouter.daemon.ops import OpError, Ops
from vrouter.firewall.rules import Ruleset
from vrouter.mirror.sync import DEFAULT_SYNC, protocol_numbers
from vrouter.route.source import STATIC, source

if TYPE_CHECKING:
    from vrouter.daemon.main import Daemon

log = logging.getLogger("vrouter.reload")

ROUTE_DEL = "route.del"
ADDRESS_DEL = "address.del"
INTERFACE_DESTROY = "interface.destroy"
VNET_DESTROY = "vnet.destroy"
SYSCTL = "sysctl.set"
RULESET = "firewall.ruleset"
DHCP = "dhcp.server"
VNET_CREATE = "vnet.create"
INTERFACE_CREATE = "interface.create"
EPAIR_CREATE = "epair.create"
MTU = "interface.mtu"
ADDRESS_ADD = "address.add"
RA = "interface.ra"
DHCP6 = "interface.dhcp6"
ROUTE_ADD = "route.add"
LOG_LEVEL = "daemon.log_level"
PERMISSIONS = "vnet.permissions"
ADMINS = "daemon.admins"
MIRROR = "vnet.mirror"
STP = "bridge.stp"

Undo = Callable[[], Awaitable[None]]


class ReloadError(Exception):
    """A reload was refused or failed; the running configuration is unchanged."""


@dataclass(frozen=True, slots=True)
class Step:
    """One change of a reload.

    ``target`` is an interface name, a route prefix or a knob name (``""``
    for a whole vnet); ``new`` and ``old`` carry the config values the step
    puts in place and replaces (for an epair, a pair of interface configs).
    """

    action: str
    vnet: str
    target: str = ""
    new: Any = None
    old: Any = None

    def __str__(self) -> str:
        where = f"vnet {self.vnet}" if self.vnet else "daemon"
        if self.action in (ROUTE_DEL, ROUTE_ADD):
            verb = "remove" if self.action == ROUTE_DEL else "add"
            return f"{where}: {verb} route {self.target}"
        if self.action in (ADDRESS_DEL, ADDRESS_ADD):
            verb = "remove" if self.action == ADDRESS_DEL else "add"
            address = self.old if self.action == ADDRESS_DEL else self.new
            return f"{where}: {self.target}: {verb} address {address}"
        if self.action == INTERFACE_DESTROY:
            return f"{where}: destroy interface {self.target}"
        if self.action == INTERFACE_CREATE:
            return f"{where}: create interface {self.target}"
        if self.action == EPAIR_CREATE:
            a, b = self.new
            return f"{where}: create epair {a.name} <-> {a.peer[0]}:{b.name}"
        if self.action == VNET_DESTROY:
            return f"{where}: destroy"
        if self.action == VNET_CREATE:
            return f"{where}: create"
        if self.action == MIRROR:
            old, new = (m.netns if m is not None else "none" for m in (self.old, self.new))
            return f"{where}: mirror {old} -> {new}"
        if self.action == SYSCTL:
            value = "default" if self.new is None else self.new
            return f"{where}: sysctl {self.target} = {value}"
        if self.action == RULESET:
            return f"{where}: replace the firewall ruleset"
        if self.action == DHCP:
            return f"{where}: dhcp server {'on' if self.new else 'off'}"
        if self.action == MTU:
            return f"{where}: {self.target}: mtu {self.old} -> {self.new}"
        if self.action == STP:
            return f"{where}: {self.target}: spanning tree {'on' if self.new.stp else 'off'}"
        if self.action == RA:
            return f"{where}: {self.target}: router advertisements {'on' if self.new else 'off'}"
        if self.action == LOG_LEVEL:
            return f"daemon: log level {self.old} -> {self.new}"
        if self.action == PERMISSIONS:
            grants: Grants = self.new
            manage = ", ".join(map(str, grants.manage)) or "nobody"
            sockets = ", ".join(map(str, grants.sockets)) or "nobody"
            return f"{where}: permissions: manage {manage}; sockets {sockets}"
        if self.action == ADMINS:
            return f"daemon: admins {', '.join(map(str, self.new)) or 'root only'}"
        return f"{where}: {self.action} {self.target}"


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps of a reload, and why it cannot be done live (if it cannot)."""

    steps: tuple[Step, ...]
    refused: tuple[str, ...] = ()


# -- the plan ----------------------------------------------------------------------------

LIVE_DAEMON_KEYS = ("log_level", "admins", "metrics_collectors", "metrics_exclude")
"""``[daemon]`` settings a reload changes; any other change is refused."""
LIVE_INTERFACE_KEYS = ("addresses", "mtu", "ra", "dhcp6")
"""Interface settings changed in place (but a link-local address); any other
change re-creates the interface."""


def daemon_refusals(old: DaemonConfig, new: DaemonConfig) -> list[str]:
    """Return why ``[daemon]`` cannot go from ``old`` to ``new`` live (empty: it can)."""
    reasons = []
    for item in dataclasses.fields(DaemonConfig):
        key = item.name
        before, after = getattr(old, key), getattr(new, key)
        if key not in LIVE_DAEMON_KEYS and before != after:
            reasons.append(
                f"daemon.{key}: cannot change while vrouterd runs ({_show(before)} -> "
                f"{_show(after)}); restart vrouterd to apply it"
            )
    return reasons


def _show(value: object) -> str:
    if isinstance(value, tuple) and len(value) == 2:
        return f"{value[0]}:{value[1]}"
    return "none" if value is None else str(value)


def overlay(config: Config) -> dict[str, dict[str, Value]]:
    """Return, per vnet, the sysctl values ``config`` decides (the rest stay default).

    This is what building the vnets does: a child starts with its parent's
    values (but not its limits: it follows those), then ``forwarding``, the
    firewall's ``enable``/``max_states`` and the ``[sysctl]`` table (limits
    first) are applied in that order.  Each vnet's limits come first in its
    dict, so a reload sets them before the knobs they cap.
    """
    result: dict[str, dict[str, Value]] = {}
    for vcfg in config.vnets:
        parent, sep, _ = vcfg.name.rpartition("/")
        own_limits = {k: v for k, v in vcfg.sysctl if limits.kind_of(k) is not None}
        knobs: dict[str, Value] = dict(own_limits)
        if sep:
            knobs.update(
                (k, v) for k, v in result.get(parent, {}).items() if limits.kind_of(k) is None
            )
        knobs["net.inet.ip.forwarding"] = vcfg.forwarding
        knobs["net.inet6.ip6.forwarding"] = vcfg.forwarding
        if vcfg.firewall is not None:
            knobs["net.pf.enable"] = vcfg.firewall.enable
            if vcfg.firewall.max_states is not None:
                knobs["net.pf.states_max"] = vcfg.firewall.max_states
        knobs.update(vcfg.sysctl)
        result[vcfg.name] = knobs
    return result


def _ruleset_key(fw: FirewallConfig | None) -> object:
    ruleset = fw.ruleset if fw is not None else Ruleset()
    return (ruleset.rules, ruleset.default, tuple(sorted(ruleset.tables.items())), ruleset.nat)


def _fixed(icfg: InterfaceConfig) -> InterfaceConfig:
    """Return ``icfg`` without what can change in place (its link-local address stays)."""
    link_local = tuple(a for a in icfg.addresses if a.version == 6 and a.is_link_local)
    bridge = icfg.bridge
    if bridge is not None:
        bridge = dataclasses.replace(
            bridge, stp=None, ports=tuple(BridgePortConfig(p.name, p.pvid, p.tagged, p.storm_pps)
                                          for p in bridge.ports),
        )  # fmt: skip
    return dataclasses.replace(
        icfg, addresses=link_local, mtu=0, ra=None, dhcp6=None, bridge=bridge
    )


def recreates(old: InterfaceConfig, new: InterfaceConfig) -> bool:
    """Return True if ``old`` cannot become ``new`` in place.

    A new type, host, peer, MAC, ``up``, offload setting or link-local
    address needs a new interface, and so does a bridge's new members, VLAN
    or FDB settings (its members stay: they leave the old bridge and join the
    new one) or a VLAN's new parent or VID; so does any setting added to
    :class:`InterfaceConfig` later, until it learns to change in place.
    """
    return _fixed(old) != _fixed(new)


def _egress(vcfg: VnetConfig, route: RouteConfig) -> tuple[str | None, ...]:
    """Return the interfaces ``route``'s paths leave by under ``vcfg`` (none: not unicast):
    each next hop's most specific connected network's."""
    if route.type != "unicast":
        return ()
    if route.interface is not None:
        return (route.interface,)
    return tuple(
        max(
            ((a.network.prefixlen, i.name) for i in vcfg.interfaces for a in i.addresses
             if via is not None and a.version == via.version and via in a.network),
            key=lambda found: found[0], default=(0, None),
        )[1]
        for via in (route.paths or (route.via,))
    )  # fmt: skip


def plan(old: Config, new: Config) -> Plan:
    """Return the steps that turn a daemon running ``old`` into one running ``new``."""
    refused = tuple(daemon_refusals(old.daemon, new.daemon))
    old_v = {v.name: v for v in old.vnets}
    new_v = {v.name: v for v in new.vnets}
    removed = [v for v in old.vnets if v.name not in new_v]
    added = [v for v in new.vnets if v.name not in old_v]
    kept = [v for v in new.vnets if v.name in old_v]
    # A removed vnet takes its mirror with it; the others' mirrors are made anew.
    mirrors = [
        Step(MIRROR, v.name, new=v.mirror, old=old_v[v.name].mirror if v.name in old_v else None)
        for v in new.vnets
        if v.mirror != (old_v[v.name].mirror if v.name in old_v else None)
    ]

    def interfaces(vcfg: VnetConfig | None) -> dict[str, InterfaceConfig]:
        return {i.name: i for i in vcfg.interfaces} if vcfg is not None else {}

    # Interfaces of kept vnets that must be re-created; an epair goes as a whole, and a
    # bridge with a member that is re-created (so the member joins the new bridge).
    recreated: set[tuple[str, str]] = set()
    for vcfg in kept:
        before = interfaces(old_v[vcfg.name])
        for icfg in vcfg.interfaces:
            prev = before.get(icfg.name)
            if prev is not None and recreates(prev, icfg):
                recreated.add((vcfg.name, icfg.name))
    growing = True
    while growing:
        growing = False
        for vcfg in kept:
            before = interfaces(old_v[vcfg.name])
            for icfg in vcfg.interfaces:
                key = (vcfg.name, icfg.name)
                if icfg.name not in before or key in recreated:
                    continue
                # An epair goes as a whole; a bridge takes a re-created member back.
                if (icfg.type == "epair" and icfg.peer in recreated) or (
                    icfg.bridge is not None
                    and any((vcfg.name, m) in recreated for m in icfg.bridge.members)
                ):
                    recreated.add(key)
                    growing = True

    def gone(vnet: str, name: str) -> bool:
        """Return True if the old interface ``vnet``:``name`` does not survive."""
        if vnet not in new_v:
            return True
        return name not in interfaces(new_v[vnet]) or (vnet, name) in recreated

    def fresh(vnet: str, name: str) -> bool:
        """Return True if the new interface ``vnet``:``name`` is to be created."""
        if vnet not in old_v:
            return True
        return name not in interfaces(old_v[vnet]) or (vnet, name) in recreated

    route_del: list[Step] = []
    route_add: list[Step] = []
    address_del: list[Step] = []
    in_place: list[Step] = []
    destroy_if: list[Step] = []
    create_if: list[Step] = []
    settings: list[Step] = []

    for vcfg in [*kept, *added]:
        name = vcfg.name
        was = old_v.get(name)
        before_routes = {r.prefix: r for r in was.routes} if was is not None else {}
        after_routes = {r.prefix: r for r in vcfg.routes}

        def keeps(
            route: RouteConfig, was: VnetConfig | None = was, vcfg: VnetConfig = vcfg
        ) -> bool:
            if was is None:
                return False
            other = {r.prefix: r for r in was.routes}.get(route.prefix)
            if other is None or other != route:
                return False
            egress = _egress(vcfg, route)
            return egress == _egress(was, other) and not any(
                e is not None and gone(vcfg.name, e) for e in egress
            )

        for prefix, route in before_routes.items():
            if not (prefix in after_routes and keeps(after_routes[prefix])):
                route_del.append(Step(ROUTE_DEL, name, str(prefix), old=route))
        for prefix, route in after_routes.items():
            if not keeps(route):
                route_add.append(Step(ROUTE_ADD, name, str(prefix), new=route))

        before = interfaces(was)
        for icfg in before.values():
            if gone(name, icfg.name):
                if icfg.type == "epair" and icfg.peer is not None:
                    peer_vnet, peer_name = icfg.peer
                    if (
                        peer_vnet in new_v
                        and gone(peer_vnet, peer_name)
                        and icfg.peer
                        < (
                            name,
                            icfg.name,
                        )
                    ):
                        continue  # the other end's step destroys the pair
                    peer_old = interfaces(old_v.get(peer_vnet)).get(peer_name)
                    destroy_if.append(
                        Step(INTERFACE_DESTROY, name, icfg.name, old=(icfg, peer_old))
                    )
                else:
                    destroy_if.append(Step(INTERFACE_DESTROY, name, icfg.name, old=icfg))
                continue
            now = interfaces(vcfg)[icfg.name]
            for address in icfg.addresses:
                if address not in now.addresses:
                    address_del.append(Step(ADDRESS_DEL, name, icfg.name, old=address))
            if now.mtu != icfg.mtu:
                in_place.append(Step(MTU, name, icfg.name, new=now.mtu, old=icfg.mtu))
            for address in now.addresses:
                if address not in icfg.addresses:
                    in_place.append(Step(ADDRESS_ADD, name, icfg.name, new=address))
            if now.ra != icfg.ra:
                in_place.append(Step(RA, name, icfg.name, new=now.ra, old=icfg.ra))
            if now.dhcp6 != icfg.dhcp6:
                in_place.append(Step(DHCP6, name, icfg.name, new=now.dhcp6, old=icfg.dhcp6))
            if now.bridge is not None and icfg.bridge is not None and now.bridge != icfg.bridge:
                in_place.append(Step(STP, name, icfg.name, new=now.bridge, old=icfg.bridge))
        for icfg in vcfg.interfaces:
            if not fresh(name, icfg.name):
                continue
            if icfg.type == "epair" and icfg.peer is not None:
                peer_vnet, peer_name = icfg.peer
                if icfg.peer < (name, icfg.name):
                    continue  # created with the other end
                peer_new = interfaces(new_v[peer_vnet])[peer_name]
                create_if.append(Step(EPAIR_CREATE, name, icfg.name, new=(icfg, peer_new)))
            else:
                create_if.append(Step(INTERFACE_CREATE, name, icfg.name, new=icfg))

    old_knobs = overlay(old)
    new_knobs = overlay(new)
    for vcfg in kept:
        name = vcfg.name
        before_k, after_k = old_knobs[name], new_knobs[name]
        knob_steps: list[Step] = []
        for knob, value in after_k.items():
            if knob not in before_k or before_k[knob] != value:
                knob_steps.append(Step(SYSCTL, name, knob, new=value, old=before_k.get(knob)))
        for knob in sorted(set(before_k) - set(after_k)):
            knob_steps.append(Step(SYSCTL, name, knob, new=None, old=before_k[knob]))
        # A vnet's limits first: a raised limit must be in force before the knobs it caps.
        knob_steps.sort(key=lambda step: limits.kind_of(step.target) is None)
        settings.extend(knob_steps)
        if _ruleset_key(old_v[name].firewall) != _ruleset_key(vcfg.firewall):
            settings.append(Step(RULESET, name, new=vcfg.firewall, old=old_v[name].firewall))
        if old_v[name].dhcp != vcfg.dhcp:
            settings.append(Step(DHCP, name, new=vcfg.dhcp, old=old_v[name].dhcp))
    creating: list[Step] = []
    for vcfg in added:
        creating.append(Step(VNET_CREATE, vcfg.name, new=vcfg))
        creating.extend(
            Step(SYSCTL, vcfg.name, knob, new=value) for knob, value in new_knobs[vcfg.name].items()
        )
        if vcfg.firewall is not None:
            creating.append(Step(RULESET, vcfg.name, new=vcfg.firewall))
        if vcfg.dhcp is not None:
            creating.append(Step(DHCP, vcfg.name, new=vcfg.dhcp))
    destroying = [
        Step(VNET_DESTROY, v.name, old=v)
        for v in sorted(removed, key=lambda v: v.name.count("/"), reverse=True)
    ]
    old_grants = {v.name: v.permissions for v in old.vnets}
    new_grants = {v.name: v.permissions for v in new.vnets}
    for name in [*old_grants, *(n for n in new_grants if n not in old_grants)]:
        before_g, after_g = old_grants.get(name, Grants()), new_grants.get(name, Grants())
        if before_g != after_g:
            settings.append(Step(PERMISSIONS, name, new=after_g, old=before_g))
    daemon: list[Step] = []
    if old.daemon.log_level != new.daemon.log_level:
        daemon.append(Step(LOG_LEVEL, "", new=new.daemon.log_level, old=old.daemon.log_level))
    if old.daemon.admins != new.daemon.admins:
        daemon.append(Step(ADMINS, "", new=new.daemon.admins, old=old.daemon.admins))
    # VLANs go before their parents and bridges before their members; created the other way.
    def rank(step: Step, vnets: dict[str, VnetConfig], cfg: object) -> int:
        return vnets[step.vnet].rank(cfg) if isinstance(cfg, InterfaceConfig) else 0

    destroy_if.sort(key=lambda step: -rank(step, old_v, step.old))
    create_if.sort(key=lambda step: rank(step, new_v, step.new))
    steps = (
        *route_del,
        *address_del,
        *destroy_if,
        *destroying,
        *settings,
        *creating,
        *create_if,
        *in_place,
        *mirrors,
        *route_add,
        *daemon,
    )
    return Plan(steps, refused)


# -- applying it ---------------------------------------------------------------------------


async def _nothing() -> None:
    return None


@functools.cache
def default_values() -> dict[str, Value]:
    """Return every built-in knob's value in a new root vnet."""
    from vrouter.stack import new_tree

    tree = new_tree()
    vnet = tree.create("defaults")
    values = tree.registry.sysctl().snapshot(vnet)
    tree.destroy("defaults")
    return values


class Applier:
    """Runs a plan's steps on :class:`Ops`, keeping each one's undo."""

    def __init__(self, ops: Ops) -> None:
        self.ops = ops
        self.undo: list[tuple[Step, Undo]] = []

    async def run(self, steps: tuple[Step, ...] | list[Step]) -> None:
        """Apply ``steps``; on a failure undo the applied ones in reverse, then raise."""
        for step in steps:
            try:
                undo = await self.step(step)
            except (OpError, OSError, ValueError) as err:
                log.error("reload: %s: failed: %s; rolling back", step, err)
                await self.rollback()
                raise ReloadError(f"{step}: {err}") from err
            except Exception as err:
                log.exception("reload: %s: failed unexpectedly; rolling back", step)
                await self.rollback()
                raise ReloadError(f"{step}: internal error: {err!r}") from err
            except BaseException:
                await self.rollback()
                raise
            self.undo.append((step, undo))
            log.debug("reload: %s", step)

    async def rollback(self) -> None:
        """Undo every applied step, last first; a failing undo is logged and skipped."""
        while self.undo:
            step, undo = self.undo.pop()
            try:
                await undo()
            except Exception as err:
                log.error("reload rollback: cannot undo %s: %s", step, err)
            else:
                log.info("reload rollback: undone: %s", step)

    async def step(self, step: Step) -> Undo:
        """Apply one step; return its undo."""
        ops = self.ops
        action = step.action
        vnet = step.vnet
        if action == ROUTE_DEL:
            route: RouteConfig = step.old
            table = ops.vnet(vnet).route.table(route.prefix.version)
            if table.get(route.prefix, STATIC.name) is None:
                log.info("reload: vnet %s: static route %s is already gone", vnet, route.prefix)
                return _nothing
            ops.remove_route(vnet, route.prefix)
            return lambda: self._add_route(vnet, route)
        if action == ROUTE_ADD:
            route = step.new
            self._add_route_now(vnet, route)
            return lambda: self._del_route(vnet, route)
        if action == ADDRESS_DEL:
            ops.remove_address(vnet, step.target, step.old)
            return lambda: self._sync(ops.add_address, vnet, step.target, step.old)
        if action == ADDRESS_ADD:
            ops.add_address(vnet, step.target, step.new)
            return lambda: self._sync(ops.remove_address, vnet, step.target, step.new)
        if action == INTERFACE_DESTROY:
            return await self._destroy_interface(step)
        if action == INTERFACE_CREATE:
            await ops.create_interface(vnet, step.new)
            return lambda: self._destroy(vnet, step.target)
        if action == EPAIR_CREATE:
            a, b = step.new
            assert a.peer is not None
            ops.create_epair(vnet, a, a.peer[0], b)
            return lambda: self._destroy(vnet, step.target)
        if action == VNET_DESTROY:
            return await self._destroy_vnet(step)
        if action == VNET_CREATE:
            ops.create_vnet(vnet)
            return lambda: self._destroy_vnet_now(vnet)
        if action == SYSCTL:
            if step.new is not None:
                old = ops.set_sysctl(vnet, step.target, step.new)
            else:
                old = self._reset_sysctl(vnet, step.target)
            return lambda: self._restore_sysctl(vnet, step.target, old)
        if action == RULESET:
            fw: FirewallConfig | None = step.new
            previous = ops.replace_ruleset(vnet, fw.ruleset if fw is not None else Ruleset())
            return lambda: self._sync(ops.replace_ruleset, vnet, previous)
        if action == DHCP:
            previous_dhcp = ops.set_dhcp(vnet, step.new)
            return lambda: self._sync(ops.set_dhcp, vnet, previous_dhcp)
        if action == MTU:
            old_mtu = await ops.set_mtu(vnet, step.target, step.new)
            return lambda: self._set_mtu(vnet, step.target, old_mtu)
        if action == STP:
            ops.set_bridge_stp_config(vnet, step.target, step.new)
            return lambda: self._sync(ops.set_bridge_stp_config, vnet, step.target, step.old)
        if action == RA:
            old_ra = ops.set_ra(vnet, step.target, Ops.ra_settings(step.new))
            return lambda: self._sync(ops.set_ra, vnet, step.target, old_ra)
        if action == DHCP6:
            old_dhcp6 = ops.set_dhcp6(vnet, step.target, Ops.dhcp6_settings(step.new))
            return lambda: self._sync(ops.set_dhcp6, vnet, step.target, old_dhcp6)
        if action == PERMISSIONS:
            replaced = _set_grants(ops, vnet, step.new)
            return lambda: self._sync(_set_grants, ops, vnet, replaced)
        if action == ADMINS:
            before = _set_admins(ops, step.new)
            return lambda: self._sync(_set_admins, ops, before)
        if action == MIRROR:
            await self._set_mirror(vnet, step.new, step.old)
            return lambda: self._set_mirror(vnet, step.old, step.new)
        if action == LOG_LEVEL:
            root = logging.getLogger()
            level = root.level
            root.setLevel(str(step.new).upper())
            log.info("log level %s", step.new)
            return lambda: self._sync(root.setLevel, level)
        raise OpError(f"unknown reload step {action!r}")

    async def _set_mirror(
        self, vnet: str, new: MirrorConfig | None, old: MirrorConfig | None
    ) -> None:
        """Put mirror ``new`` in place of ``old`` (None: no mirror); on a failure,
        ``old`` is back."""
        mirrors = self.ops.mirrors
        if mirrors is None:
            raise OpError(f"vnet {vnet}: the daemon runs no mirrors")
        if old is not None:
            await mirrors.destroy(vnet)
        if new is None:
            return
        try:
            await mirrors.create(self.ops.vnet(vnet), new.netns, _protocols(new), new.vrf_dir)
        except Exception:
            if old is not None:
                await mirrors.create(self.ops.vnet(vnet), old.netns, _protocols(old), old.vrf_dir)
            raise

    # undo helpers (coroutines, so every undo is awaited the same way)

    async def _sync(self, fn: Callable[..., object], *args: object) -> None:
        fn(*args)

    async def _restore_sysctl(self, vnet: str, knob: str, value: object) -> None:
        self.ops.set_sysctl(vnet, knob, value, check=False)

    def _reset_sysctl(self, vnet_name: str, knob: str) -> object:
        """Return ``knob`` to its default, as a fresh build would: capped by a limit."""
        old = self.ops.set_sysctl(vnet_name, knob, default_values()[knob], check=False)
        kind = limits.KIND_OF_KNOB.get(knob)
        if kind is not None:
            vnet = self.ops.vnet(vnet_name)
            limits.apply_caps(vnet, self.ops.tree.registry.sysctl(), kinds=(kind,))
        return old

    def _add_route_now(self, vnet: str, route: RouteConfig) -> None:
        static = source(STATIC.name, route.distance)
        paths = [(hop, route.interface) for hop in route.paths]  # ECMP: via is None
        via, interface = (None, None) if paths else (route.via, route.interface)
        self.ops.add_route(
            vnet, route.prefix, route.type, via, interface, static, paths, route.weights
        )

    async def _add_route(self, vnet: str, route: RouteConfig) -> None:
        self._add_route_now(vnet, route)

    async def _del_route(self, vnet: str, route: RouteConfig) -> None:
        self.ops.remove_route(vnet, route.prefix)

    async def _destroy(self, vnet: str, name: str) -> None:
        await self.ops.destroy_interface(vnet, name)

    async def _destroy_vnet_now(self, vnet: str) -> None:
        await self.ops.destroy_vnet(vnet, recursive=True)

    async def _set_mtu(self, vnet: str, name: str, mtu: int) -> None:
        await self.ops.set_mtu(vnet, name, mtu)

    async def _destroy_interface(self, step: Step) -> Undo:
        ops = self.ops
        vnet = ops.vnet(step.vnet)
        if step.target not in vnet.link.interfaces:
            log.info("reload: vnet %s: interface %s is already gone", step.vnet, step.target)
            return _nothing
        await ops.destroy_interface(step.vnet, step.target)
        if isinstance(step.old, tuple):
            icfg, peer = step.old

            async def undo_epair() -> None:
                if peer is not None and icfg.peer is not None and icfg.peer[0] in ops.tree:
                    ops.create_epair(step.vnet, icfg, icfg.peer[0], peer)

            return undo_epair
        icfg = step.old

        async def undo_tap() -> None:
            await ops.create_interface(step.vnet, icfg)

        return undo_tap

    async def _destroy_vnet(self, step: Step) -> Undo:
        """Destroy a vnet, remembering what it held to rebuild it on rollback."""
        ops = self.ops
        vcfg: VnetConfig = step.old
        vnet = ops.vnet(step.vnet)
        knobs = ops.tree.registry.sysctl().snapshot(vnet)
        ruleset = vnet.firewall.fw.ruleset if vnet.holds("firewall") else None
        present = set(vnet.link.interfaces)
        await ops.destroy_vnet(step.vnet)

        async def undo() -> None:
            ops.create_vnet(vcfg.name)
            for knob, value in sorted(knobs.items(), key=lambda kv: limits.kind_of(kv[0]) is None):
                ops.set_sysctl(vcfg.name, knob, value, check=False)
            if ruleset is not None:
                ops.replace_ruleset(vcfg.name, ruleset)
            by_name = {i.name: i for i in vcfg.interfaces}
            for name in sorted(present):
                icfg = by_name.get(name)
                if icfg is None:
                    continue
                if icfg.type != "epair":
                    await ops.create_interface(vcfg.name, icfg)
                    continue
                assert icfg.peer is not None
                peer_vnet, peer_name = icfg.peer
                if peer_vnet in ops.tree and peer_name not in ops.vnet(peer_vnet).link.interfaces:
                    old = self.old_config
                    peer = old.interface(peer_vnet, peer_name) if old is not None else None
                    if peer is not None:
                        ops.create_epair(vcfg.name, icfg, peer_vnet, peer)
            for route in vcfg.routes:
                try:
                    self._add_route_now(vcfg.name, route)
                except OpError as err:
                    log.error("reload rollback: vnet %s: %s", vcfg.name, err)

        return undo

    old_config: Config | None = None
    """The configuration being replaced (rebuilds a destroyed vnet's epairs)."""


def _set_grants(ops: Ops, vnet: str, grants: Grants) -> Grants:
    """Put ``grants`` in force on vnet name ``vnet``; return the ones they replace."""
    policy = ops.tree.policy
    table = dict(policy.grants)
    previous = table.pop(vnet, Grants())
    if grants:
        table[vnet] = grants
    ops.tree.set_policy(Policy(policy.admins, table))
    return previous


def _set_admins(ops: Ops, admins: tuple[Principal, ...]) -> tuple[Principal, ...]:
    """Make ``admins`` the daemon admins; return the ones they replace."""
    policy = ops.tree.policy
    ops.tree.set_policy(Policy(admins, policy.grants))
    return policy.admins


async def apply(ops: Ops, old: Config, new: Config) -> list[Step]:
    """Turn ``old`` into ``new`` on the running vnets; roll back and raise on failure."""
    result = plan(old, new)
    if result.refused:
        raise ReloadError("\n".join(f"{new.path}: {reason}" for reason in result.refused))
    applier = Applier(ops)
    applier.old_config = old
    await applier.run(result.steps)
    return list(result.steps)


# -- the daemon's reload -----------------------------------------------------------------


@dataclass(slots=True)
class ReloadRecord:
    """How the last reload ended, for ``vrouterctl status``."""

    time: float
    result: str
    error: str | None = None
    changes: int = 0

    def describe(self) -> dict[str, object]:
        """Return the record as plain data (``status``)."""
        return {
            "time": round(self.time, 3),
            "result": self.result,
            "error": self.error,
            "changes": self.changes,
        }


async def _read(daemon: Daemon, text: str | None, tops: Sequence[str] | None) -> Config:
    """Return the config to reload: ``text`` (the file's contents) or the file, as this
    process runs it (``tops``: the top-level vnets a worker now runs)."""
    path = daemon.config.path
    try:
        loaded = parse(text, path) if text is not None else await asyncio.to_thread(load, path)
    except ConfigError as err:
        raise ReloadError(str(err)) from None
    return daemon.shape(loaded, tops)


async def check(
    daemon: Daemon, text: str | None = None, tops: Sequence[str] | None = None
) -> list[Step]:
    """Return the steps a reload would take, changing nothing; raise ReloadError as it would."""
    new = await _read(daemon, text, tops)
    result = plan(daemon.config, new)
    if result.refused:
        raise ReloadError("\n".join(f"{new.path}: {reason}" for reason in result.refused))
    return list(result.steps)


async def reload(
    daemon: Daemon, text: str | None = None, tops: Sequence[str] | None = None
) -> list[Step]:
    """Re-read the daemon's config file (or take its ``text``) and apply the differences.

    Record the outcome on the daemon (``reloads``, ``last_reload_success``,
    ``last_reload``); raise ReloadError (the message names the file, key and
    reason) when the file is invalid, the change cannot be done live, or a
    step failed and everything was rolled back.  A worker is given the
    text its front read and the top-level vnets it now runs (``tops``).
    """
    path = daemon.config.path
    started = time.time()
    log.info("reloading %s", path)
    try:
        new = await _read(daemon, text, tops)
        ops = daemon.ops
        if ops is None:
            raise ReloadError("the daemon is still starting")
        steps = await apply(ops, daemon.config, new)
    except ReloadError as err:
        daemon.reloads["failure"] = daemon.reloads.get("failure", 0) + 1
        daemon.last_reload = ReloadRecord(started, "failure", str(err))
        log.error("reload of %s failed, the running configuration is kept:\n%s", path, err)
        raise
    daemon.config = new
    if tops is not None:
        daemon.tops = tuple(tops)
    server = getattr(daemon, "server", None)
    if server is not None:
        server.follow_policy()
    daemon.reloads["success"] = daemon.reloads.get("success", 0) + 1
    daemon.last_reload_success = time.time()
    daemon.last_reload = ReloadRecord(started, "success", None, len(steps))
    if steps:
        log.info("reloaded %s: %d changes", path, len(steps))
        for step in steps:
            log.info("reload: %s", step)
    else:
        log.info("reloaded %s: no changes", path)
    return steps


def _protocols(mirror: MirrorConfig) -> frozenset[int]:
    return DEFAULT_SYNC if mirror.sync is None else protocol_numbers(mirror.sync)
