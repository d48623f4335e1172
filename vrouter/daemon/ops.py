"""Run-time operations: the one place that changes running vnets.

The control API and live reload both go through :class:`Ops`: create and
destroy vnets (FreeBSD ``jail -c vnet`` / ``jail -r``), create and destroy
interfaces (TAPs with their host namespace, epairs), move an interface to
another vnet (``ifconfig IF vnet J``), add and remove addresses, add, change
and remove routes (static ones, and route-socket clients' under their own
source: each source touches only its own routes), change an MTU or router
advertisements.

Guarantees:

- Every operation checks everything it can first and raises :class:`OpError`
  naming the vnet and the interface before it changes anything; a step that
  fails later (the kernel refuses a TAP, ``ip netns add`` fails) undoes what
  the operation did so far before raising.
- Destroying frees everything: an interface leaves with its addresses, its
  routes (connected and static), its neighbour entries, multicast groups and
  router advertisements (a final RA with lifetime 0 goes out first); a TAP's
  device is closed (the kernel interface vanishes) and the host namespace
  created for it removed; an epair goes as a whole and its other end
  disappears from its vnet with a log line.  Destroying a vnet destroys its
  interfaces, then detaches every subsystem (neighbour caches, reassembly
  buffers, firewall states, timers) and its deadline in the driver.
- Moving an interface keeps its device running: in the old vnet its
  addresses, routes via it and neighbour entries go; it arrives in the new
  vnet without addresses (an EUI-64 link-local one is generated) and up.
- Limits (:mod:`vrouter.core.limits`) are checked with everything else: an
  interface, an address's connected route or a route of any source (held
  ones too) beyond the vnet's limit is refused ("vnet lab/r1: route limit 100 reached") and
  counted in ``vnet.limits.refused``; a sysctl above a limit, or a limit
  above the parent's, is refused.
- Subsystems load and unload here for the API (``module load|unload``):
  attached to or detached from every vnet, refused when a dependency is
  missing or another loaded subsystem needs it; the essential built-ins
  (:data:`vrouter.stack.ESSENTIAL`) stay.

The module is long on purpose: every run-time change is one method of
:class:`Ops`, checked against the running state and the limits before it
changes anything.  Split by kind of object, the checks that span kinds
(an address against every vnet's interfaces, a bridge member against its
epair, a route against the connected networks) would be split too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import re
import tomllib
from collections.abc import Iterable, Sequence

from vrouter.core import limits, tomlkeys
from vrouter.core.errors import OpError as OpError
from vrouter.core.limits import LimitError
from vrouter.core.registry import RegistryError, Subsystem
from vrouter.core.sysctl import SysctlError, Value
from vrouter.core.vnet import Vnet, VnetError, VnetTree
from vrouter.daemon import build, hostns
from vrouter.daemon.config import (
    BridgeConfig,
    BridgePortConfig,
    Dhcp6Config,
    DhcpConfig,
    HostConfig,
    InterfaceConfig,
    RaConfig,
    VxlanConfig,
)
from vrouter.daemon.config.grammar import parse_mac
from vrouter.firewall import subsystem as firewall
from vrouter.firewall.ruleparse import parse_ruleset
from vrouter.firewall.rules import Ruleset, RulesetError
from vrouter.inet import ipv4
from vrouter.inet6 import dhcp6, ipv6, nd
from vrouter.io.driver import Driver
from vrouter.io.underlay import UnderlayError
from vrouter.link import bridge as bridge_
from vrouter.link import stp as stp_
from vrouter.link import vlan
from vrouter.link import vxlan as vxlan_
from vrouter.link.epair import Epair
from vrouter.link.ifnet import Ifnet
from vrouter.mirror.manager import Mirrors
from vrouter.mirror.sync import Want
from vrouter.route import state as route_state
from vrouter.route.fib import BLACKHOLE, REJECT, UNICAST, Route, RouteError
from vrouter.route.source import CONNECTED, STATIC, Source
from vrouter.services.dhcp import state as dhcp
from vrouter.wire import vxlan as wire_vxlan

log = logging.getLogger("vrouter.ops")

Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = tuple[int, int, int]
"""A network as integers: its bits (32 or 128), address and prefix length."""


def _network(bits: int, net: int, plen: int) -> Prefix:
    """Return the :mod:`ipaddress` network of (``bits``, ``net``, ``plen``)."""
    if bits == 32:
        return ipaddress.IPv4Network((net, plen))
    return ipaddress.IPv6Network((net, plen))


_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
ROUTE_TYPES = (UNICAST, BLACKHOLE, REJECT)
MTU_MIN = 68
MTU_MAX = 65535
IPV6_MTU_MIN = 1280


def check_mtu(where: str, mtu: int, carries_ipv6: bool) -> None:
    """Raise OpError unless ``mtu`` fits a link (one carrying IPv6 needs 1280, RFC 8200)."""
    if not MTU_MIN <= mtu <= MTU_MAX:
        raise OpError(f"{where}: mtu {mtu} is not in {MTU_MIN}..{MTU_MAX}")
    if mtu < IPV6_MTU_MIN and carries_ipv6:
        raise OpError(
            f"{where}: mtu {mtu} is below {IPV6_MTU_MIN}, the minimum MTU of a link "
            "that carries IPv6 (RFC 8200)"
        )


def check_ifname(name: str) -> None:
    """Raise OpError unless ``name`` is a valid interface name (Linux IFNAMSIZ)."""
    if not _IFNAME.fullmatch(name) or name in (".", ".."):
        raise OpError(f"invalid interface name {name!r}: 1-15 characters from [A-Za-z0-9_.-]")


def interface_config(
    name: str,
    kind: str,
    addresses: Iterable[Address] = (),
    mtu: int = 1500,
    host: HostConfig | None = None,
    peer: tuple[str, str] | None = None,
) -> InterfaceConfig:
    """Return the config of an interface created at run time (up, derived MAC, no RAs)."""
    return InterfaceConfig(
        name=name,
        type=kind,
        addresses=tuple(addresses),
        mtu=mtu,
        mac=None,
        up=True,
        host=host,
        peer=peer,
    )


def _mac(vnet: Vnet, text: str) -> bytes:
    """Return MAC ``text`` of a station (a unicast address), or raise OpError."""
    mac = parse_mac(text)
    if isinstance(mac, str):
        raise OpError(f"vnet {vnet.name}: {mac}")
    return mac


class Ops:
    """Changes a running vnet tree, its devices and host namespaces.

    ``ownership`` records the namespaces created (None: no host namespaces,
    as in tests that run without a daemon); ``hosts`` maps each TAP with a
    host to its host config, so destroying the TAP removes the namespace.
    """

    def __init__(
        self, tree: VnetTree, driver: Driver, ownership: hostns.Ownership | None = None
    ) -> None:
        self.tree = tree
        self.driver = driver
        self.ownership = ownership
        self.hosts: dict[str, HostConfig] = {}
        self.tap_qdisc = "kernel"
        """The root qdisc given to the host side of each TAP created (``[daemon] tap_qdisc``)."""
        self.mirrors: Mirrors | None = None
        """The vnets' control-plane mirrors (None: no daemon, as in tests)."""
        self.data_dir: str | None = None
        """Where lease files are kept (None: leases are not written, as in tests)."""
        self._going: set[Vnet] = set()
        """The vnets being destroyed, whose state goes at once with their subsystems'."""

    # -- lookups -----------------------------------------------------------------

    def vnet(self, name: str) -> Vnet:
        """Return vnet ``name`` or raise OpError."""
        try:
            return self.tree.get(name)
        except VnetError as err:
            raise OpError(str(err)) from None

    def interface(self, vnet: Vnet, name: str) -> Ifnet:
        """Return interface ``name`` of ``vnet`` or raise OpError."""
        ifp = vnet.link.interfaces.get(name)
        if ifp is None:
            known = ", ".join(vnet.link.interfaces) or "none"
            raise OpError(f"vnet {vnet.name} has no interface {name!r} (its interfaces: {known})")
        return ifp

    def epair_of(self, ifp: Ifnet) -> Epair | None:
        """Return the epair ``ifp`` is an end of, if any."""
        return next((e for e in self.driver.epairs if e.a is ifp or e.b is ifp), None)

    # -- limits ------------------------------------------------------------------

    @staticmethod
    def check_limit(vnet: Vnet, kind: str, in_use: int, adding: int = 1) -> None:
        """Refuse (OpError, counted and logged) going beyond ``vnet``'s ``kind`` limit."""
        if adding <= 0:
            return
        try:
            vnet.limits.check(kind, in_use, adding)
        except LimitError as err:
            log.warning("%s: refused", err)
            raise OpError(str(err)) from None

    @staticmethod
    def routes_in_use(vnet: Vnet) -> int:
        """Return the routes of ``vnet``, both families (what the route limit counts)."""
        return len(vnet.route.fib) + len(vnet.route.fib6)

    @staticmethod
    def connected_routes(vnet: Vnet, addresses: Iterable[Address]) -> int:
        """Return how many connected routes adding ``addresses`` would install."""
        networks = {
            a.network
            for a in addresses
            if not (a.version == 6 and a.is_link_local)
            and vnet.route.table(a.version).get(a.network, CONNECTED.name) is None
        }
        return len(networks)

    def _check_room(self, vnet: Vnet, interfaces: int, addresses: Iterable[Address]) -> None:
        """Refuse new interfaces with ``addresses`` in ``vnet`` beyond its limits."""
        self.check_limit(vnet, "interfaces", len(vnet.link.interfaces), interfaces)
        self.check_limit(
            vnet, "routes", self.routes_in_use(vnet), self.connected_routes(vnet, addresses)
        )

    def tree_of(self, name: str) -> list[dict[str, object]]:
        """Return the vnet hierarchy under ``name`` ("" for every root) as nested data."""

        def node(vnet: Vnet) -> dict[str, object]:
            return {
                "name": vnet.name,
                "interfaces": sorted(vnet.link.interfaces),
                "children": [node(c) for c in vnet.children.values()],
            }

        if name:
            return [node(self.vnet(name))]
        return [node(v) for v in self.tree if v.parent is None]

    # -- vnets -------------------------------------------------------------------

    def create_vnet(self, name: str) -> Vnet:
        """Create vnet ``name`` (its parent must exist; it inherits its sysctl values)."""
        try:
            vnet = self.tree.create(name)
        except VnetError as err:
            raise OpError(str(err)) from None
        self.driver.attach_vnet(vnet)
        if vnet.parent is not None:
            log.info("vnet %s: created, child of %s", name, vnet.parent.name)
        else:
            log.info("vnet %s: created", name)
        return vnet

    def subtree(self, vnet: Vnet) -> list[Vnet]:
        """Return ``vnet`` and its descendants, deepest first."""
        found: list[Vnet] = []
        for child in list(vnet.children.values()):
            found.extend(self.subtree(child))
        found.append(vnet)
        return found

    async def destroy_vnet(self, name: str, recursive: bool = False) -> list[str]:
        """Destroy vnet ``name`` (with its descendants if ``recursive``); return their names."""
        vnet = self.vnet(name)
        doomed = self.subtree(vnet)
        if len(doomed) > 1 and not recursive:
            children = ", ".join(c.name for c in doomed[:-1])
            raise OpError(
                f"vnet {name} has children ({children}); destroy them first or destroy recursively"
            )
        for victim in doomed:
            if self.mirrors is not None:
                await self.mirrors.destroy(victim.name)
            self._going.add(victim)
            try:
                for ifname in list(victim.link.interfaces):
                    if ifname in victim.link.interfaces:  # an epair end may have gone already
                        await self.destroy_interface(victim.name, ifname)
                self.driver.detach_vnet(victim)
                self.tree.destroy(victim.name)
            finally:
                self._going.discard(victim)
            log.info("vnet %s: destroyed", victim.name)
        return [v.name for v in doomed]

    # -- interfaces --------------------------------------------------------------

    def _check_new_interface(self, vnet: Vnet, icfg: InterfaceConfig) -> None:
        check_ifname(icfg.name)
        if icfg.name in vnet.link.interfaces:
            raise OpError(f"vnet {vnet.name} already has an interface {icfg.name!r}")
        carries_ipv6 = icfg.ra is not None or any(
            a.version == 6 and not a.is_link_local for a in icfg.addresses
        )
        check_mtu(f"vnet {vnet.name}: {icfg.name}", icfg.mtu, carries_ipv6)
        pending: list[Address] = []
        for address in icfg.addresses:
            self._check_address(vnet, None, address, pending, icfg.name)
            pending.append(address)

    def _check_l2(self, vnet: Vnet, icfg: InterfaceConfig) -> None:
        """Refuse a VLAN without its parent, a bridge whose members are missing or taken."""
        where = f"vnet {vnet.name}: {icfg.name}"
        if icfg.vlan is not None:
            parent, vid = icfg.vlan
            if parent not in vnet.link.interfaces:
                raise OpError(f"{where}: no parent interface {parent!r}")
            if (parent, vid) in vnet.link.vlans:
                raise OpError(f"{where}: {parent} already has VLAN {vid}")
            if vnet.link.interfaces[parent].bridge_input is not None:
                raise OpError(f"{where}: {parent} is a bridge member")
            if vnet.link.interfaces[parent].mtu < icfg.mtu:
                parent_mtu = vnet.link.interfaces[parent].mtu
                raise OpError(f"{where}: mtu {icfg.mtu} is larger than {parent}'s ({parent_mtu})")
        if icfg.bridge is None:
            return
        for name in icfg.bridge.members:
            member = vnet.link.interfaces.get(name)
            if member is None:
                raise OpError(f"{where}: no member interface {name!r}")
            self._check_member(where, member, icfg.mtu)

    def _check_member(self, where: str, member: Ifnet, mtu: int) -> None:
        """Refuse a bridge member of the wrong kind, taken, with addresses or a small MTU."""
        name = member.name
        if member.bridge_input is not None:
            raise OpError(f"{where}: {name} is already a bridge member")
        if member.kind not in ("tap", "epair", "vlan", "vxlan"):
            raise OpError(f"{where}: {name} is a {member.kind}, not a tap, epair, vlan or vxlan")
        if member.addresses or any(not a.is_link_local for a in member.addresses6):
            raise OpError(f"{where}: member {name} has addresses; remove them first")
        if vlan.children(member):
            raise OpError(f"{where}: {name} is the parent of VLAN interfaces")
        if member.mtu < mtu:
            raise OpError(f"{where}: mtu {mtu} is larger than member {name}'s ({member.mtu})")

    def _check_address(
        self,
        vnet: Vnet,
        ifp: Ifnet | None,
        address: Address,
        pending: list[Address],
        ifname: str,
    ) -> None:
        """Refuse an address taken in ``vnet`` or whose network overlaps another interface's."""
        where = f"vnet {vnet.name}: {ifname}"
        if address.version == 6 and address.is_link_local:
            if ifp is not None or any(a.version == 6 and a.is_link_local for a in pending):
                raise OpError(
                    f"{where}: an interface has one IPv6 link-local address, set when it is created"
                )
            return
        if address.version == 4 and (
            address.network.prefixlen < 31
            and address.ip in (address.network.network_address, address.network.broadcast_address)
        ):
            raise OpError(f"{where}: {address} is the network or broadcast address of its network")
        for other in vnet.link.interfaces.values():
            for have in other.all_addresses():
                _conflict(where, address, have, other.name, same=other is ifp)
        for have in pending:
            _conflict(where, address, have, ifname, same=True)

    async def create_interface(self, vnet_name: str, icfg: InterfaceConfig) -> Ifnet:
        """Create a TAP (with its host namespace, if any) or a device-less interface."""
        vnet = self.vnet(vnet_name)
        if icfg.type == "epair":
            raise OpError(f"vnet {vnet.name}: {icfg.name}: an epair is created with its peer")
        self._check_new_interface(vnet, icfg)
        self._check_l2(vnet, icfg)
        self._check_room(vnet, 1, icfg.addresses)
        if icfg.type == "tap":
            if icfg.name in self.driver.taps:
                owner = self.driver.taps[icfg.name].ifnet.vnet.name
                raise OpError(
                    f"vnet {vnet.name}: TAP {icfg.name} already exists (in vnet {owner}); "
                    "TAP names are kernel names, unique across the daemon"
                )
            if icfg.host is not None:
                if self.ownership is None:
                    raise OpError(f"vnet {vnet.name}: {icfg.name}: host namespaces need a daemon")
                if hostns.netns_exists(icfg.host.netns):
                    raise OpError(
                        f"vnet {vnet.name}: {icfg.name}: netns {icfg.host.netns} already exists"
                    )
        now = self.driver.now()
        try:
            ifp = build.add_interface(vnet, icfg, now, self.tree.mac_seed)
        except build.BuildError as err:
            if icfg.name in vnet.link.interfaces:
                self.detach(vnet.link.interfaces[icfg.name])
            raise OpError(str(err)) from err
        if icfg.type == "tap":
            try:
                await self._attach_tap(ifp, icfg)
            except BaseException:
                await self._remove_tap(ifp)
                raise
        vx = vxlan_.of(ifp)
        if vx is not None:
            try:
                self.driver.open_vxlan(vx, self.tree)
            except UnderlayError as err:
                self.detach(ifp)
                raise OpError(str(err)) from err
        build.bring_up(vnet, [icfg], self.driver.now())
        if self.mirrors is not None:
            self.mirrors.interface_added(ifp)
        log.info(
            "vnet %s: %s: %s created, mac %s%s",
            vnet.name,
            ifp.name,
            icfg.type,
            ifp.mac.hex(":"),
            f", host netns {icfg.host.netns}" if icfg.host is not None else "",
        )
        self.driver.reopen_underlays(self.tree)
        return ifp

    async def _attach_tap(self, ifp: Ifnet, icfg: InterfaceConfig) -> None:
        try:
            self.driver.add_tap(ifp)
        except OSError as err:
            raise OpError(f"vnet {ifp.vnet.name}: cannot create TAP {ifp.name}: {err}") from err
        host = icfg.host
        try:
            if host is None:
                await asyncio.to_thread(hostns.set_qdisc, None, ifp.name, self.tap_qdisc)
                return
            assert self.ownership is not None
            self.hosts[ifp.name] = host
            await asyncio.to_thread(hostns.create, self.ownership, host)
            await asyncio.to_thread(hostns.configure, host, ifp.name, ifp.mtu)
            await asyncio.to_thread(hostns.set_qdisc, host.netns, ifp.name, self.tap_qdisc)
        except hostns.HostError as err:
            raise OpError(f"vnet {ifp.vnet.name}: {ifp.name}: {err}") from err

    async def _remove_tap(self, ifp: Ifnet) -> None:
        """Undo :meth:`_attach_tap` and forget the interface."""
        if ifp.name in ifp.vnet.link.interfaces:
            self.detach(ifp)
        tap = self.driver.taps.get(ifp.name)
        if tap is not None and tap.ifnet is ifp:
            self.driver.remove_tap(ifp.name)
        host = self.hosts.pop(ifp.name, None)
        if host is not None:
            await self._delete_netns(host.netns)

    async def _delete_netns(self, name: str) -> None:
        ownership = self.ownership
        if ownership is None or name not in ownership.netns:
            return
        try:
            if hostns.netns_exists(name):
                await asyncio.to_thread(hostns.delete, name)
                log.info("removed netns %s", name)
        except hostns.HostError as err:
            log.error("%s", err)
        ownership.netns.remove(name)
        ownership.save()

    def create_epair(
        self, a_vnet: str, a: InterfaceConfig, b_vnet: str, b: InterfaceConfig
    ) -> tuple[Ifnet, Ifnet]:
        """Create an epair between ``a_vnet``:``a`` and ``b_vnet``:``b`` and bring it up."""
        va = self.vnet(a_vnet)
        vb = self.vnet(b_vnet)
        if (a_vnet, a.name) == (b_vnet, b.name):
            raise OpError(f"epair {a_vnet}:{a.name} cannot peer with itself")
        self._check_new_interface(va, a)
        self._check_new_interface(vb, b)
        if va is vb:
            self._check_room(va, 2, [*a.addresses, *b.addresses])
        else:
            self._check_room(va, 1, a.addresses)
            self._check_room(vb, 1, b.addresses)
        now = self.driver.now()
        ifa = build.add_interface(va, a, now, self.tree.mac_seed)
        ifb = build.add_interface(vb, b, now, self.tree.mac_seed)
        self.driver.add_epair(ifa, ifb)
        build.bring_up(va, [a], now)
        build.bring_up(vb, [b], now)
        if self.mirrors is not None:
            self.mirrors.interface_added(ifa)
            self.mirrors.interface_added(ifb)
        log.info("vnet %s: %s: epair to vnet %s %s created", a_vnet, a.name, b_vnet, b.name)
        self.driver.reopen_underlays(self.tree)
        return ifa, ifb

    async def create_tap(
        self, vnet_name: str, name: str, addresses: Iterable[Address], mtu: int
    ) -> Ifnet:
        """Create a TAP ``name`` in ``vnet_name`` (up, derived MAC, no host) and return it."""
        return await self.create_interface(vnet_name, interface_config(name, "tap", addresses, mtu))

    async def create_bridge(
        self,
        vnet_name: str,
        name: str,
        members: Iterable[str],
        addresses: Iterable[Address],
        vlan_filtering: bool = False,
        pvid: int = 1,
        mtu: int | None = None,
        stp: stp_.StpSettings | None = None,
    ) -> Ifnet:
        """Create bridge ``name`` over ``members`` (up); its MTU defaults to its smallest member's.

        The members join as access ports of VLAN 1 with no storm limit and
        the default STP path cost and priority (:meth:`add_bridge_port` sets
        more).  ``stp``: run the spanning tree with these settings (None: no).
        """
        vnet = self.vnet(vnet_name)
        if stp is not None:
            problems = stp.problems()
            if problems:
                raise OpError(f"vnet {vnet.name}: {name}: {'; '.join(problems)}")
        ports = tuple(BridgePortConfig(member) for member in members)
        if mtu is None:
            found = [vnet.link.interfaces.get(p.name) for p in ports]
            mtu = min((m.mtu for m in found if m is not None), default=1500)
        bcfg = BridgeConfig(ports=ports, vlan_filtering=vlan_filtering, pvid=pvid, stp=stp)
        icfg = dataclasses.replace(interface_config(name, "bridge", addresses, mtu), bridge=bcfg)
        return await self.create_interface(vnet.name, icfg)

    async def create_vlan(
        self,
        vnet_name: str,
        parent: str,
        vid: int,
        name: str | None = None,
        addresses: Iterable[Address] = (),
        mtu: int | None = None,
    ) -> Ifnet:
        """Create the 802.1Q sub-interface ``PARENT.VID`` (or ``name``) of ``parent`` (up).

        Its MTU defaults to the parent's, and may not exceed it.
        """
        vnet = self.vnet(vnet_name)
        parent_ifp = self.interface(vnet, parent)
        if not 1 <= vid <= 4094:
            raise OpError(f"vnet {vnet.name}: {parent}: VLAN {vid} is not in 1..4094")
        name = name or f"{parent}.{vid}"
        icfg = dataclasses.replace(
            interface_config(name, "vlan", addresses, parent_ifp.mtu if mtu is None else mtu),
            vlan=(parent, vid),
        )
        return await self.create_interface(vnet.name, icfg)

    async def create_vxlan(
        self,
        vnet_name: str,
        name: str,
        vni: int,
        local: str,
        *,
        port: int = wire_vxlan.PORT,
        remotes: Iterable[str] = (),
        group: str | None = None,
        learning: bool = True,
        addresses: Iterable[Address] = (),
        mtu: int | None = None,
        underlay: str | None = None,
        tunnel_gso: bool = False,
    ) -> Ifnet:
        """Create VXLAN interface ``name`` (up) and open its socket; a bridge then takes it.

        Its MTU defaults to what a 1500-byte underlay carries, lowered to the
        route MTU towards its VTEPs.  ``underlay``: a vnet whose UDP carries
        the outer packets (None: the host's).  ``tunnel_gso``: TCP super-frames
        leave whole through a TAP with UDP-tunnel GSO where the kernel has it
        (:mod:`vrouter.io.vxtunnel`; the socket alone otherwise).
        """
        vnet = self.vnet(vnet_name)
        where = f"vnet {vnet.name}: {name}"
        try:
            local_ip = ipaddress.ip_address(local)
            remote_ips = tuple(ipaddress.ip_address(r) for r in remotes)
            group_ip = None if group is None else ipaddress.ip_address(group)
        except ValueError as err:
            raise OpError(f"{where}: {err}") from None
        if local_ip.is_multicast or local_ip.is_unspecified:
            raise OpError(f"{where}: local {local_ip} is not a unicast address")
        for remote in remote_ips:
            if remote.version != local_ip.version or remote.is_multicast or remote == local_ip:
                raise OpError(
                    f"{where}: remote {remote} is not another unicast address of local's family"
                )
        if group_ip is not None:
            if group_ip.version != local_ip.version or not group_ip.is_multicast:
                raise OpError(
                    f"{where}: group {group_ip} is not a multicast address of local's family"
                )
            if remote_ips:
                raise OpError(f"{where}: either remotes or a group, not both")
        if not 0 <= vni <= wire_vxlan.VNI_MAX:
            raise OpError(f"{where}: VNI {vni} is out of range 0..{wire_vxlan.VNI_MAX}")
        if tunnel_gso and underlay is not None:
            raise OpError(
                f"{where}: tunnel_gso hands super-frames to the host's kernel; "
                "a vnet underlay has none"
            )
        overhead = wire_vxlan.OVERHEAD_V4 if local_ip.version == 4 else wire_vxlan.OVERHEAD_V6
        icfg = dataclasses.replace(
            interface_config(name, "vxlan", addresses, 1500 - overhead if mtu is None else mtu),
            vxlan=VxlanConfig(
                vni, local_ip, port, remote_ips, group_ip, learning, underlay, tunnel_gso
            ),
        )
        return await self.create_interface(vnet.name, icfg)

    def _bridge(self, vnet: Vnet, name: str) -> bridge_.Bridge:
        bridge = bridge_.of(self.interface(vnet, name))
        if bridge is None:
            raise OpError(f"vnet {vnet.name}: {name} is not a bridge")
        return bridge

    def add_bridge_port(
        self,
        vnet_name: str,
        bridge_name: str,
        name: str,
        pvid: int = 1,
        tagged: Iterable[int] = (),
        storm_pps: int = 0,
        path_cost: int = stp_.DEFAULT_PATH_COST,
        port_priority: int = stp_.DEFAULT_PORT_PRIORITY,
        edge: bool = False,
        auto_edge: bool = True,
    ) -> Ifnet:
        """Make interface ``name`` a member of ``bridge_name``; it loses its L3 state.

        ``pvid``: the VLAN of its untagged frames (0: none); ``tagged``: the
        VLANs it carries tagged (both with VLAN filtering); ``storm_pps``:
        broadcast and multicast frames admitted per second (0: no limit);
        ``path_cost``, ``port_priority``: its spanning tree settings;
        ``edge``, ``auto_edge``: its RSTP edge settings.
        """
        port = BridgePortConfig(
            name, pvid, tuple(sorted(set(tagged))), storm_pps, path_cost, port_priority, edge,
            auto_edge,
        )  # fmt: skip
        vnet = self.vnet(vnet_name)
        bridge = self._bridge(vnet, bridge_name)
        member = self.interface(vnet, port.name)
        where = f"vnet {vnet.name}: {bridge_name}"
        if member is bridge.ifnet:
            raise OpError(f"{where}: a bridge cannot be a member of itself")
        sub = vlan.of(member)
        if sub is not None and sub.parent is bridge.ifnet:
            raise OpError(f"{where}: {member.name} is one of its own VLANs")
        self._check_member(where, member, bridge.ifnet.mtu)
        for vid in (port.pvid, *port.tagged):
            if not 0 <= vid <= 4094 or (vid == 0 and vid != port.pvid):
                raise OpError(f"{where}: {member.name}: VLAN {vid} is not in 1..4094")
        if port.storm_pps < 0:
            raise OpError(f"{where}: {member.name}: storm_pps must be 0 or more")
        problems = stp_.port_problems(port.path_cost, port.port_priority)
        if problems:
            raise OpError(f"{where}: {member.name}: {'; '.join(problems)}")
        now = self.driver.now()
        build.strip_l3(vnet, member, now)
        bridge.add_port(
            member, port.pvid, frozenset(port.tagged), port.storm_pps, port.path_cost,
            port.port_priority, now, port.edge, port.auto_edge,
        )  # fmt: skip
        log.info("vnet %s: %s: %s joined the bridge", vnet.name, bridge_name, member.name)
        return member

    def remove_bridge_port(self, vnet_name: str, bridge_name: str, name: str) -> Ifnet:
        """Take member ``name`` out of ``bridge_name``; it is an L3 interface again."""
        vnet = self.vnet(vnet_name)
        bridge = self._bridge(vnet, bridge_name)
        if name not in bridge.ports:
            raise OpError(f"vnet {vnet.name}: {name} is not a member of bridge {bridge_name}")
        member = bridge.remove_port(name, self.driver.now()).ifnet
        build.give_back(vnet, member, self.driver.now())
        log.info("vnet %s: %s: %s left the bridge", vnet.name, bridge_name, name)
        return member

    def set_bridge_stp(
        self,
        vnet_name: str,
        bridge_name: str,
        on: bool | None = None,
        priority: int | None = None,
        hello_time: int | None = None,
        max_age: int | None = None,
        forward_delay: int | None = None,
        protocol: str | None = None,
    ) -> bridge_.Bridge:
        """Turn ``bridge_name``'s spanning tree on or off (None: as it is) and change the
        settings given (None: kept; a bridge without STP starts from the defaults);
        ``protocol``: ``stp`` or ``rstp``."""
        vnet = self.vnet(vnet_name)
        bridge = self._bridge(vnet, bridge_name)
        where = f"vnet {vnet.name}: {bridge_name}"
        base = bridge.stp.settings if bridge.stp is not None else stp_.StpSettings()
        changes: dict[str, int | str] = {
            key: value
            for key, value in (
                ("priority", priority), ("hello_time", hello_time), ("max_age", max_age),
                ("forward_delay", forward_delay), ("protocol", protocol),
            )
            if value is not None
        }
        settings = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
        problems = settings.problems()
        if problems:
            raise OpError(f"{where}: {'; '.join(problems)}")
        if on is None:
            on = bridge.stp is not None
        if not on and changes:
            raise OpError(f"{where}: {', '.join(changes)} need the spanning tree on")
        try:
            bridge.set_stp(settings if on else None, self.driver.now())
        except bridge_.BridgeError as err:
            raise OpError(f"{where}: {err}") from None
        log.info(
            "vnet %s: %s: spanning tree %s", vnet.name, bridge_name,
            f"on ({settings})" if on else "off",
        )  # fmt: skip
        return bridge

    def set_bridge_port_stp(
        self,
        vnet_name: str,
        bridge_name: str,
        name: str,
        path_cost: int | None = None,
        port_priority: int | None = None,
        edge: bool | None = None,
        auto_edge: bool | None = None,
        mcheck: bool = False,
    ) -> bridge_.Port:
        """Change member ``name``'s spanning tree path cost, port priority and RSTP edge
        settings (None: kept); ``mcheck``: have it try RSTP again (17.19.13)."""
        vnet = self.vnet(vnet_name)
        bridge = self._bridge(vnet, bridge_name)
        port = bridge.ports.get(name)
        if port is None:
            raise OpError(f"vnet {vnet.name}: {name} is not a member of bridge {bridge_name}")
        try:
            bridge.set_port_stp(
                name,
                port.path_cost if path_cost is None else path_cost,
                port.priority if port_priority is None else port_priority,
                self.driver.now(),
                edge,
                auto_edge,
            )
            if mcheck:
                bridge.mcheck(name, self.driver.now())
        except bridge_.BridgeError as err:
            raise OpError(f"vnet {vnet.name}: {bridge_name}: {err}") from None
        log.info("vnet %s: %s: %s path cost %d port priority %d edge %s auto_edge %s%s",
                 vnet.name, bridge_name, name, port.path_cost, port.priority, port.edge,
                 port.auto_edge, " mcheck" if mcheck else "")  # fmt: skip
        return port

    def set_bridge_stp_config(self, vnet_name: str, bridge_name: str, bcfg: BridgeConfig) -> None:
        """Put ``bcfg``'s spanning tree settings in place on a running bridge (a reload)."""
        vnet = self.vnet(vnet_name)
        bridge = self._bridge(vnet, bridge_name)
        now = self.driver.now()
        try:
            for pcfg in bcfg.ports:
                if pcfg.name in bridge.ports:
                    bridge.set_port_stp(
                        pcfg.name, pcfg.path_cost, pcfg.port_priority, now, pcfg.edge,
                        pcfg.auto_edge,
                    )  # fmt: skip
            bridge.set_stp(bcfg.stp, now)
        except bridge_.BridgeError as err:
            raise OpError(f"vnet {vnet.name}: {bridge_name}: {err}") from None
        log.info("vnet %s: %s: spanning tree %s", vnet.name, bridge_name,
                 "on" if bcfg.stp is not None else "off")  # fmt: skip

    def _member_bridge(self, vnet: Vnet, port: str) -> bridge_.Bridge:
        """Return the bridge interface ``port`` of ``vnet`` is a member of, or raise OpError."""
        found = bridge_.port_of(self.interface(vnet, port))
        if found is None:
            raise OpError(f"vnet {vnet.name}: {port} is not a member of a bridge")
        return found.bridge

    def add_fdb(
        self,
        vnet_name: str,
        mac_text: str,
        port: str,
        vid: int | None = None,
        dst: str | None = None,
    ) -> bridge_.FdbEntry:
        """Add (or replace) a static FDB entry: MAC ``mac_text`` is behind member ``port`` of
        its bridge (in VLAN ``vid``, None: the port's PVID); on a vxlan port, behind VTEP
        ``dst``."""
        vnet = self.vnet(vnet_name)
        mac = _mac(vnet, mac_text)
        bridge = self._member_bridge(vnet, port)
        try:
            entry = bridge.add_static(mac, port, vid, dst)
        except bridge_.BridgeError as err:
            raise OpError(f"vnet {vnet.name}: {bridge.ifnet.name}: {err}") from None
        log.info(
            "vnet %s: %s: static fdb %s on %s%s",
            vnet.name, bridge.ifnet.name, mac.hex(":"), port, f" dst {dst}" if dst else "",
        )  # fmt: skip
        return entry

    def del_fdb(
        self, vnet_name: str, mac_text: str, port: str, vid: int | None = None
    ) -> bridge_.FdbEntry:
        """Remove the static FDB entry of MAC ``mac_text`` behind member ``port`` (in VLAN
        ``vid``)."""
        vnet = self.vnet(vnet_name)
        mac = _mac(vnet, mac_text)
        bridge = self._member_bridge(vnet, port)
        try:
            entry = bridge.remove_static(mac, port, vid)
        except bridge_.BridgeError as err:
            raise OpError(f"vnet {vnet.name}: {bridge.ifnet.name}: {err}") from None
        log.info("vnet %s: %s: static fdb %s on %s removed", vnet.name, bridge.ifnet.name,
                 mac.hex(":"), port)  # fmt: skip
        return entry

    def create_epair_between(
        self,
        a: tuple[str, str],
        a_addresses: Iterable[Address],
        b: tuple[str, str],
        b_addresses: Iterable[Address],
        mtu: int,
    ) -> tuple[Ifnet, Ifnet]:
        """Create an epair between the ends ``a`` and ``b``, each ``(vnet, interface)``."""
        icfg_a = interface_config(a[1], "epair", a_addresses, mtu, peer=b)
        icfg_b = interface_config(b[1], "epair", b_addresses, mtu, peer=a)
        return self.create_epair(a[0], icfg_a, b[0], icfg_b)

    async def destroy_interface(self, vnet_name: str, name: str) -> list[tuple[str, str]]:
        """Destroy an interface (an epair with both ends); return the (vnet, name)s gone."""
        vnet = self.vnet(vnet_name)
        ifp = self.interface(vnet, name)
        gone: list[tuple[str, str]] = []
        for child in vlan.children(ifp):  # a VLAN goes with its parent
            gone += await self.destroy_interface(vnet.name, child.ifnet.name)
        gone.append((vnet.name, ifp.name))
        epair = self.epair_of(ifp) if ifp.kind == "epair" else None
        if epair is not None:
            peer = epair.b if epair.a is ifp else epair.a
            self.detach(ifp)
            if peer.vnet.link.interfaces.get(peer.name) is peer:
                for child in vlan.children(peer):
                    gone += await self.destroy_interface(peer.vnet.name, child.ifnet.name)
                self.detach(peer)
            self.driver.remove_epair(epair)
            gone.append((peer.vnet.name, peer.name))
            log.info("vnet %s: %s: epair destroyed", vnet.name, ifp.name)
            log.info(
                "vnet %s: %s: gone with its epair peer %s:%s",
                peer.vnet.name,
                peer.name,
                vnet.name,
                ifp.name,
            )
        elif ifp.kind == "tap":
            await self._remove_tap(ifp)
            log.info("vnet %s: %s: tap destroyed", vnet.name, ifp.name)
        elif ifp.kind == "vxlan":
            self.detach(ifp)
            self.driver.remove_vxlan(ifp)
            log.info("vnet %s: %s: vxlan destroyed, its sockets closed", vnet.name, ifp.name)
        else:
            self.detach(ifp)
            if self.driver.remove_wire(ifp):  # the other worker's end sees the cable cut
                log.info("vnet %s: %s: epair to another worker destroyed", vnet.name, ifp.name)
            else:
                log.info("vnet %s: %s: destroyed", vnet.name, ifp.name)
        return gone

    def detach(self, ifp: Ifnet) -> list[Route]:
        """Take ``ifp`` out of its vnet with every piece of state about it.

        Return the routes removed with it; the device is left alone.  A
        bridge gives its members back, a member leaves its bridge.
        """
        vnet = ifp.vnet
        if self.mirrors is not None:
            self.mirrors.interface_removed(ifp)
        now = self.driver.now()
        if vnet.holds("dhcp"):
            dhcp.stop_client(vnet, ifp.name, now)
        build.release_l2(vnet, ifp, now)
        if ifp.kind == "epair" and vnet in self._going and not vnet.listened:
            # Its vnet is being destroyed: the subsystems' detach then clears its addresses,
            # routes, neighbours, groups and timers at once, and what this end would send
            # while they go one by one (MLD done, a last RA) is dropped in flight with the
            # epair; nobody listens for the events.  So nothing is taken away one by one.
            ifp.up = False
            del vnet.link.interfaces[ifp.name]
            return []
        routes = build.strip_l3(vnet, ifp, now)
        ifp.up = False
        del vnet.link.interfaces[ifp.name]
        vnet.timers.purge()
        return routes

    def move_interface(self, vnet_name: str, name: str, to: str) -> Ifnet:
        """Move an interface to vnet ``to`` (``ifconfig IF vnet J``); its device keeps running."""
        vnet = self.vnet(vnet_name)
        ifp = self.interface(vnet, name)
        target = self.vnet(to)
        if target is vnet:
            raise OpError(f"interface {name} is already in vnet {to}")
        if name in target.link.interfaces:
            raise OpError(f"vnet {to} already has an interface {name!r}")
        self._check_movable(vnet, ifp)
        self.check_limit(target, "interfaces", len(target.link.interfaces))
        routes = self.detach(ifp)
        static = [r for r in routes if r.source.name == STATIC.name]
        ifp.vnet = target
        target.link.add(ifp)
        now = self.driver.now()
        ipv6.enable(target, ifp, now)
        ipv4.set_up(target, ifp, now)
        ipv6.set_up(target, ifp, now)
        log.info(
            "vnet %s: %s: moved to vnet %s (addresses and %d static routes left behind)",
            vnet.name,
            name,
            to,
            len(static),
        )
        log.info("vnet %s: %s: arrived from vnet %s, index %d", to, name, vnet.name, ifp.index)
        return ifp

    @staticmethod
    def _check_movable(vnet: Vnet, ifp: Ifnet) -> None:
        """Refuse to move what is tied to other interfaces of its vnet: a bridge or one of
        its members, a VLAN interface or a VLAN's parent (their frames would cross vnets)."""
        where = f"vnet {vnet.name}: {ifp.name}"
        if ifp.kind == "bridge":
            raise OpError(f"{where}: a bridge cannot move to another vnet (destroy it instead)")
        if ifp.bridge_input is not None:
            raise OpError(f"{where}: a bridge member cannot move; take it out of its bridge first")
        if ifp.kind == "vlan":
            raise OpError(f"{where}: a VLAN interface cannot move to another vnet")
        if ifp.kind == "vxlan":
            raise OpError(f"{where}: a VXLAN interface cannot move to another vnet (destroy it)")
        vlans = vnet.link.vlans.items()
        children = [v.ifnet.name for (parent, _), v in vlans if parent == ifp.name]
        if children:
            raise OpError(
                f"{where}: the parent of VLAN interfaces {', '.join(sorted(children))} cannot "
                "move; destroy them first"
            )

    async def set_mtu(self, vnet_name: str, name: str, mtu: int) -> int:
        """Set an interface's MTU (and its host side's); return the old one."""
        vnet = self.vnet(vnet_name)
        ifp = self.interface(vnet, name)
        carries_ipv6 = ifp.name in vnet.inet6.ra or any(not a.is_link_local for a in ifp.addresses6)
        check_mtu(f"vnet {vnet.name}: {name}", mtu, carries_ipv6)
        old = ifp.mtu
        host = self.hosts.get(name) if ifp.kind == "tap" else None
        if host is not None:
            try:
                await asyncio.to_thread(hostns.set_mtu, host.netns, name, mtu)
            except hostns.HostError as err:
                raise OpError(f"vnet {vnet.name}: {name}: {err}") from err
        ifp.mtu = mtu
        log.info("vnet %s: %s: mtu %d -> %d", vnet.name, name, old, mtu)
        return old

    def set_ra(
        self, vnet_name: str, name: str, settings: nd.RaSettings | None
    ) -> nd.RaSettings | None:
        """Advertise ``settings`` on an interface (None: stop); return the old settings."""
        vnet = self.vnet(vnet_name)
        ifp = self.interface(vnet, name)
        now = self.driver.now()
        old = nd.disable_ra(vnet, ifp, now)
        if settings is not None:
            nd.enable_ra(vnet, ifp, settings, now)
        log.info(
            "vnet %s: %s: router advertisements %s",
            vnet.name,
            name,
            "on" if settings is not None else "off",
        )
        return old

    def set_dhcp6(
        self, vnet_name: str, name: str, settings: dhcp6.Dhcp6Settings | None
    ) -> dhcp6.Dhcp6Settings | None:
        """Serve stateless DHCPv6 ``settings`` on an interface (None: stop); return the old."""
        vnet = self.vnet(vnet_name)
        ifp = self.interface(vnet, name)
        old = dhcp6.disable(vnet, ifp) if settings is None else dhcp6.enable(vnet, ifp, settings)
        state = "on" if settings is not None else "off"
        log.info("vnet %s: %s: DHCPv6 server %s", vnet.name, name, state)
        return old

    @staticmethod
    def dhcp6_settings(cfg: Dhcp6Config | None) -> dhcp6.Dhcp6Settings | None:
        """Return the server's view of a DHCPv6 config (None stays None)."""
        return build.dhcp6_settings(cfg) if cfg is not None else None

    def lease_file(self, vnet_name: str) -> str | None:
        """Return where vnet ``vnet_name`` keeps its DHCP leases (None: nowhere)."""
        if self.data_dir is None:
            return None
        return os.path.join(self.data_dir, "dhcp", vnet_name.replace("/", "+") + ".leases")

    def set_dhcp(self, vnet_name: str, cfg: DhcpConfig | None) -> DhcpConfig | None:
        """Serve DHCP in a vnet as ``cfg`` says (None: stop); return the old config.

        Leases are kept across a change of pools while their subnet still has a pool.
        """
        vnet = self.vnet(vnet_name)
        pools = cfg.pools if cfg is not None else ()
        relays = dict(cfg.relays) if cfg is not None else {}
        for name in relays:
            self.interface(vnet, name)
        try:
            previous, relayed = dhcp.configure(
                vnet, pools, relays, self.lease_file(vnet.name), self.driver.now()
            )
        except ValueError as err:
            raise OpError(f"vnet {vnet.name}: dhcp: {err}") from err
        log.info(
            "vnet %s: dhcp server %s, relay %s",
            vnet.name,
            ", ".join(str(p.subnet) for p in pools) if pools else "off",
            ", ".join(relays) if relays else "off",
        )
        if not previous and not relayed:
            return None
        return DhcpConfig(previous, tuple(sorted(relayed.items())))

    @staticmethod
    def ra_settings(cfg: RaConfig | None) -> nd.RaSettings | None:
        """Return the ND layer's view of an RA config (None stays None)."""
        return build.ra_settings(cfg) if cfg is not None else None

    # -- addresses ---------------------------------------------------------------

    def add_address(self, vnet_name: str, name: str, address: Address) -> None:
        """Add ``address`` to an interface (a connected route comes with it)."""
        vnet = self.vnet(vnet_name)
        ifp = self.interface(vnet, name)
        self._check_address(vnet, ifp, address, [], name)
        self.check_limit(
            vnet, "routes", self.routes_in_use(vnet), self.connected_routes(vnet, [address])
        )
        now = self.driver.now()
        if isinstance(address, ipaddress.IPv4Interface):
            ipv4.add_address(vnet, ifp, address, now)
        else:
            ipv6.add_address(vnet, ifp, address, now)
        log.info("vnet %s: %s: address %s added", vnet.name, name, address)
        self.driver.reopen_underlays(self.tree)

    def remove_address(self, vnet_name: str, name: str, address: Address) -> None:
        """Remove ``address`` from an interface with its connected route and neighbours."""
        vnet = self.vnet(vnet_name)
        ifp = self.interface(vnet, name)
        if address not in ifp.all_addresses():
            have = ", ".join(str(a) for a in ifp.all_addresses()) or "none"
            raise OpError(f"vnet {vnet.name}: {name} has no address {address} (it has: {have})")
        if isinstance(address, ipaddress.IPv4Interface):
            ipv4.remove_address(vnet, ifp, address)
        else:
            if address.is_link_local:
                raise OpError(
                    f"vnet {vnet.name}: {name}: the link-local address goes with the interface"
                )
            ipv6.remove_address(vnet, ifp, address)
        log.info("vnet %s: %s: address %s removed", vnet.name, name, address)

    # -- routes ------------------------------------------------------------------

    def add_route(
        self,
        vnet_name: str,
        prefix: Prefix,
        type_: str = UNICAST,
        via: IPAddress | None = None,
        interface: str | None = None,
        source: Source = STATIC,
        paths: Sequence[tuple[IPAddress | None, str | None]] = (),
        weights: Sequence[int] = (),
    ) -> Route:
        """Add a route of ``source`` (``via`` must be on a connected network).

        The source must hold no route to ``prefix`` yet; the route is held
        when another source's route to it is preferred (a lower distance, or
        the same and there first): see :meth:`Fib.state`.
        """
        vnet = self.vnet(vnet_name)
        route = self._resolve(vnet, prefix, type_, via, interface, source, paths, weights)
        existing = vnet.route.table(prefix.version).get(prefix, source.name)
        if existing is not None:
            raise OpError(f"vnet {vnet.name}: a {source.name} route to {prefix} already exists")
        self.check_limit(vnet, "routes", self.routes_in_use(vnet))
        fib = vnet.route.table(prefix.version)
        fib.add(route)
        if log.isEnabledFor(logging.INFO):  # a feed of a million routes: skip the text
            log.info(
                "vnet %s: route %s added (%s, %s, %s)",
                vnet.name,
                prefix,
                _route_text(route),
                source,
                fib.state(route),
            )
        return route

    def change_route(
        self,
        vnet_name: str,
        prefix: Prefix,
        type_: str = UNICAST,
        via: IPAddress | None = None,
        interface: str | None = None,
        source: Source = STATIC,
        paths: Sequence[tuple[IPAddress | None, str | None]] = (),
        weights: Sequence[int] = (),
    ) -> Route:
        """Replace ``source``'s route to ``prefix``; return the new one.

        Everything is checked before the old route goes: a refused change
        leaves it as it was.
        """
        vnet = self.vnet(vnet_name)
        route = self._resolve(vnet, prefix, type_, via, interface, source, paths, weights)
        fib = vnet.route.table(prefix.version)
        if fib.get(prefix, source.name) is None:
            raise OpError(self.missing_route(vnet, prefix, source.name))
        fib.replace(route)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "vnet %s: route %s changed (%s, %s, %s)",
                vnet.name,
                prefix,
                _route_text(route),
                source,
                fib.state(route),
            )
        return route

    def _resolve(
        self,
        vnet: Vnet,
        prefix: Prefix,
        type_: str,
        via: IPAddress | None,
        interface: str | None,
        source: Source,
        paths: Sequence[tuple[IPAddress | None, str | None]] = (),
        weights: Sequence[int] = (),
    ) -> Route:
        """Check a route's fields and return it, not yet added.

        ``paths`` (next hop, interface), two or more, make a multipath (ECMP)
        route; ``via`` and ``interface`` are then None.  ``weights``, one per
        path if any, share its flows unequally (:mod:`vrouter.route.weight`).
        """
        if type_ not in ROUTE_TYPES:
            raise OpError(f"route type {type_!r}: expected unicast, blackhole or reject")
        if type_ != UNICAST and (via is not None or interface is not None or paths):
            raise OpError(f"a {type_} route takes no next hop or interface")
        if paths and (via is not None or interface is not None):
            raise OpError("a route has either one next hop or a list of paths")
        if source.name == CONNECTED.name:
            raise OpError(f"vnet {vnet.name}: connected routes come with interface addresses")
        hops = [
            (hop, self.interface(vnet, name) if name is not None else None)
            for hop, name in (paths or [(via, interface)])
        ]
        for hop, _ in hops:
            if hop is not None and any(
                hop == a.ip for i in vnet.link.interfaces.values() for a in i.all_addresses()
            ):
                raise OpError(f"vnet {vnet.name}: next hop {hop} is an address of the vnet itself")
        try:
            if paths:
                return route_state.resolve_multipath(vnet, prefix, hops, source, weights)
            return route_state.resolve(vnet, prefix, type_, via, hops[0][1], source)
        except RouteError as err:
            raise OpError(f"vnet {vnet.name}: {err}") from None

    def remove_route(self, vnet_name: str, prefix: Prefix, source: str = STATIC.name) -> Route:
        """Remove ``source``'s route to exactly ``prefix`` (another source's may take over)."""
        vnet = self.vnet(vnet_name)
        fib = vnet.route.table(prefix.version)
        if fib.get(prefix, source) is None:
            raise OpError(self.missing_route(vnet, prefix, source))
        route = fib.delete(prefix, source)
        successor = fib.get(prefix)
        log.info(
            "vnet %s: route %s removed (%s)%s",
            vnet.name,
            prefix,
            route.source,
            f", {successor.source} route installed" if successor is not None else "",
        )
        return route

    def put_routes(
        self, vnet_name: str, routes: Sequence[tuple[Net, Source, Want]]
    ) -> list[tuple[int, str]]:
        """Add or change many routes (network as integers, source, what it should be), each as
        :meth:`add_route` or :meth:`change_route` would (a route of its source to its
        prefix is changed, else added); return the refused ones: (place in ``routes``,
        why).  A refused change leaves the route as it was.

        Made for a routing feed (the mirror's sync): its routes share a few next
        hops, so each distinct next hop is checked once, not once a route; the
        route limit is counted and logged once a call, not once a refused route.
        Route monitors are told of every route as usual.  A network is (32 or 128 bits,
        address, length): no :mod:`ipaddress` network is built but for a next hop
        checked (a route of the feed built from a network object took twice as long).
        """
        vnet = self.vnet(vnet_name)
        # By family and the identities of source and want (a feed shares them).
        checked: dict[tuple[int, int, int], Route | str] = {}
        refused: list[tuple[int, str]] = []
        limit = vnet.limits.effective("routes")
        room = None if limit is None else limit - self.routes_in_use(vnet)
        full = False
        for at, ((bits, net, plen), source, want) in enumerate(routes):
            hops = (bits, id(source), id(want))
            model = checked.get(hops)
            if model is None:
                prefix = _network(bits, net, plen)
                via, interface = (None, None) if want.paths else (want.via, want.interface)
                try:
                    model = self._resolve(vnet, prefix, want.type, via, interface, source,
                                          want.paths, want.weights)  # fmt: skip
                except OpError as err:
                    model = str(err)
                checked[hops] = model
            if isinstance(model, str):
                refused.append((at, model))
                continue
            fib = vnet.route.table(4 if bits == 32 else 6)
            try:
                route = route_state.like_at(model, bits, net, plen)
            except RouteError as err:
                refused.append((at, str(err)))
                continue
            if (
                room is not None
                and room <= 0
                and fib.get(_network(bits, net, plen), source.name) is None
            ):
                full = True
                refused.append((at, f"vnet {vnet.name}: route limit reached"))
                continue
            try:
                fib.add(route)  # a feed's routes are mostly new: no lookup first
            except RouteError:  # the source has a route there: change it
                fib.replace(route)
                continue
            room = room - 1 if room is not None else None
        if full:
            with contextlib.suppress(OpError):  # counted and logged once
                self.check_limit(vnet, "routes", self.routes_in_use(vnet))
        return refused

    def remove_routes(self, vnet_name: str, routes: Iterable[tuple[Prefix, str]]) -> int:
        """Remove each (prefix, source name) route that exists, as :meth:`remove_route`
        would, without a log line each; return how many went."""
        vnet = self.vnet(vnet_name)
        removed = 0
        for prefix, source in routes:
            fib = vnet.route.table(prefix.version)
            if fib.get(prefix, source) is not None:
                fib.delete(prefix, source)
                removed += 1
        return removed

    @staticmethod
    def missing_route(vnet: Vnet, prefix: Prefix, source: str) -> str:
        """Return why ``source`` has no route to ``prefix`` to remove or change."""
        routes = vnet.route.table(prefix.version).routes(prefix)
        if not routes:
            return f"vnet {vnet.name} has no route to {prefix}"
        if [r.source.name for r in routes] == [CONNECTED.name]:
            owner = routes[0].ifnet.name if routes[0].ifnet is not None else "?"
            return (
                f"vnet {vnet.name}: the route to {prefix} is connected (interface {owner}); "
                "remove the address instead"
            )
        others = ", ".join(r.source.name for r in routes)
        return f"vnet {vnet.name} has no {source} route to {prefix} (its routes there: {others})"

    def describe_route(self, vnet_name: str, route: Route) -> dict[str, object]:
        """Return ``route`` as plain data with its state (installed, held or gone)."""
        return route_state.describe(self.vnet(vnet_name), route)

    # -- sysctl and firewall -------------------------------------------------------

    def set_sysctl(self, vnet_name: str, knob: str, value: object, *, check: bool = True) -> object:
        """Set one sysctl; return the old value.

        A limit (``vnet.limits.*``) may not exceed the parent's, a capped knob
        (``net.pf.states_max`` …) not the vnet's limit; ``check=False`` skips
        those two checks, for a rollback restoring an earlier state in any order.
        """
        vnet = self.vnet(vnet_name)
        sysctl = self.tree.registry.sysctl()
        try:
            checked = sysctl.knob(knob).coerce(value)
            old = sysctl.get(vnet, knob)
            kind = limits.kind_of(knob)
            if kind is not None:
                limits.set_limit(vnet, kind, int(checked), sysctl, check=check)
            else:
                if check:
                    vnet.limits.check_knob(knob, checked)
                sysctl.set(vnet, knob, checked)
        except LimitError as err:
            raise OpError(str(err)) from None
        except SysctlError as err:
            raise OpError(f"vnet {vnet.name}: {err}") from None
        if old != checked:
            log.info("vnet %s: sysctl %s: %s -> %s", vnet.name, knob, old, checked)
        return old

    def replace_ruleset(
        self, vnet_name: str, ruleset: Ruleset, source: str | None = None
    ) -> Ruleset:
        """Put ``ruleset`` in force, keeping states; return the old one."""
        vnet = self.firewalled(self.vnet(vnet_name))
        old = vnet.firewall.fw.ruleset
        firewall.replace_ruleset(vnet, ruleset)
        log.info(
            "vnet %s: firewall ruleset replaced%s: %d rules, default %s",
            vnet.name,
            f" from {source}" if source else "",
            len(ruleset.rules),
            ruleset.default,
        )
        return old

    def set_sysctls(self, vnet_name: str, settings: dict[str, object]) -> list[dict[str, object]]:
        """Set several sysctls of one vnet, all or none; return each name, old and new value.

        Every value is checked first, so a bad one changes nothing.  Limits
        are set before the knobs they cap (a raised limit makes room for
        them), each against the parent's; the capped knobs then against the
        limits, counting one set in the same call.
        """
        vnet = self.vnet(vnet_name)
        sysctl = self.tree.registry.sysctl()
        try:
            checked = {name: sysctl.knob(name).coerce(value) for name, value in settings.items()}
            order = sorted(checked, key=lambda name: limits.kind_of(name) is None)
            pending = {k: int(v) for k, v in checked.items() if limits.kind_of(k) is not None}
            for name in order:
                kind = limits.kind_of(name)
                if kind is not None:
                    vnet.limits.check_setting(kind, pending[name])
                elif limits.KIND_OF_KNOB.get(name) is not None:
                    _check_knob(vnet, name, checked[name], pending)
        except SysctlError as err:  # LimitError is one
            raise OpError(str(err)) from None
        result: list[dict[str, object]] = []
        for name in order:
            value = checked[name]
            old = sysctl.get(vnet, name)
            sysctl.set(vnet, name, value)
            log.info("vnet %s: sysctl %s: %s -> %s", vnet.name, name, old, value)
            result.append({"name": name, "old": old, "value": value})
        return result

    def load_ruleset(self, vnet_name: str, text: str, source: str) -> Ruleset:
        """Parse the TOML ruleset ``text`` (read from ``source``) and put it in force.

        Nothing changes if it does not parse: OpError lists each problem as
        ``SOURCE: KEY: REASON``.
        """
        self.firewalled(self.vnet(vnet_name))
        try:
            ruleset = parse_ruleset(tomlkeys.loads(text))
        except tomllib.TOMLDecodeError as err:
            raise OpError(f"{source}: {err}") from None
        except RulesetError as err:
            raise OpError(
                "\n".join(f"{source}: {key}: {reason}" for key, reason in err.problems)
            ) from None
        self.replace_ruleset(vnet_name, ruleset, source)
        return ruleset

    def flush_states(self, vnet_name: str) -> int:
        """Forget every firewall state of the vnet; return how many there were."""
        vnet = self.firewalled(self.vnet(vnet_name))
        flushed = firewall.flush_states(vnet)
        log.info("vnet %s: firewall: %d states and NAT mappings flushed", vnet.name, flushed)
        return flushed

    @staticmethod
    def firewalled(vnet: Vnet) -> Vnet:
        """Return ``vnet``; OpError if the firewall subsystem is not loaded in it."""
        if not vnet.has("firewall"):
            raise OpError(
                f"vnet {vnet.name}: the firewall subsystem is not loaded "
                "(vrouterctl module load firewall)"
            )
        return vnet

    # -- subsystems ----------------------------------------------------------------

    def load_module(self, name: str) -> Subsystem:
        """Load subsystem ``name`` (a built-in or an entry point) into every vnet."""
        from vrouter.stack import discover

        registry = self.tree.registry
        if registry.get(name) is not None:
            raise OpError(f"subsystem {name} is already loaded")
        available, problems = discover()
        for problem in problems:
            log.warning("subsystems: %s", problem)
        found = available.get(name)
        if found is None:
            known = ", ".join(sorted(set(available) - set(registry.names()))) or "none"
            raise OpError(f"no subsystem named {name!r} to load (loadable: {known})")
        subsystem = found.subsystem
        missing = [d for d in subsystem.depends if registry.get(d) is None]
        if missing:
            raise OpError(
                f"cannot load {name}: it needs {', '.join(missing)}, which is not loaded "
                "(load that first)"
            )
        try:
            self.tree.load(subsystem)
        except RegistryError as err:
            raise OpError(str(err)) from None
        log.info("subsystem %s loaded (%s) into %d vnets", name, found.source, len(self.tree))
        return subsystem

    def unload_module(self, name: str) -> Subsystem:
        """Detach subsystem ``name`` from every vnet and unload it."""
        from vrouter.stack import ESSENTIAL

        registry = self.tree.registry
        if registry.get(name) is None:
            raise OpError(f"subsystem {name} is not loaded (loaded: {', '.join(registry.names())})")
        users = registry.users(name)
        if users:
            needs = ", ".join(f"{user} needs {name}" for user in users)
            raise OpError(f"cannot unload {name}: {needs} (unload {', '.join(users)} first)")
        if name in ESSENTIAL:
            raise OpError(
                f"cannot unload {name}: it is essential (every vnet's interfaces, addresses "
                "and control-plane views use it)"
            )
        try:
            subsystem = self.tree.unload(name)
        except RegistryError as err:
            raise OpError(str(err)) from None
        log.info("subsystem %s unloaded from %d vnets", name, len(self.tree))
        return subsystem


def _conflict(where: str, address: Address, have: Address, owner: str, same: bool) -> None:
    """Refuse an address in use, or a network overlapping another interface's."""
    if have.version != address.version or (have.version == 6 and have.is_link_local):
        return
    if have.ip == address.ip:
        raise OpError(f"{where}: address {address.ip} is already assigned to interface {owner}")
    if not same and have.network.overlaps(address.network):
        raise OpError(
            f"{where}: network {address.network} overlaps {have.network} of interface {owner}"
        )


def _route_text(route: Route) -> str:
    if route.type != UNICAST:
        return route.type
    if route.nexthops:
        return ", ".join(_route_text(Route(route.prefix, UNICAST, n.gateway, n.ifnet))
                         + (f" weight {n.weight}" if n.weight != 1 else "")
                         for n in route.nexthops)  # fmt: skip
    parts = []
    if route.gateway is not None:
        parts.append(f"via {ipaddress.ip_address(route.gateway)}")
    if route.ifnet is not None:
        parts.append(f"dev {route.ifnet.name}")
    return " ".join(parts)


def _check_knob(vnet: Vnet, name: str, value: Value, pending: dict[str, int]) -> None:
    """Refuse a capped knob above the vnet's limit, counting a limit set in the same request."""
    kind = limits.KIND_OF_KNOB[name]
    new_limit = pending.get(limits.knob_name(kind))
    if new_limit is None:
        vnet.limits.check_knob(name, value)
        return
    parent = vnet.limits.parent.effective(kind) if vnet.limits.parent is not None else None
    bounds = [b for b in (new_limit or None, parent) if b is not None]
    if bounds and value > min(bounds):
        noun = limits.NOUNS[kind]
        raise LimitError(
            f"vnet {vnet.name}: {name} {value} is above the vnet's {noun} limit {min(bounds)}"
        )
