"""Bridges: one L2 segment made of several interfaces of a vnet (FreeBSD ``if_bridge``).

This module is long on purpose: the forwarding paths (the fast one and the
full one), the FDB and the places where the spanning tree switches a port's
path are one data path, read and changed together (the protocol itself is
:mod:`vrouter.link.stp`).

A bridge is an Ifnet of kind ``bridge``.  Its members (ports: TAPs, epair
ends, VLAN sub-interfaces) hand every frame they receive to
:meth:`Port.input` instead of the EtherType demux (``Ifnet.bridge_input``
is set while an interface is a member), so a port has no address and is no
L3 interface.  The bridge learns each source MAC on the port it came from,
forwards known unicast to that port only, and floods broadcast, multicast
and unknown unicast to every other port.  What is addressed to the bridge
(its MAC, broadcast, multicast) is also received on the bridge's own Ifnet,
so an address there makes the vnet route for the whole segment; what the
vnet sends through that Ifnet is forwarded the same way.

Forwarding database (FDB): a learnt entry ages out after
``net.link.bridge.ageing_time`` seconds without a frame from its MAC
(checked at every lookup, and swept by a timer); static entries (config)
never do.  The vnet's entries, every bridge together and static ones
included, are bounded by ``net.link.bridge.fdb_max``, which the vnet's
``fdb`` limit caps (:mod:`vrouter.core.limits`).  A source that finds the
table full is not learnt (``fdb_full``); its frames are still forwarded,
and frames to it are flooded.

VLAN filtering (``vlan_filtering``, Linux's ``vlan_filtering 1``): each port
has a PVID (untagged and priority-tagged frames arriving there belong to
it; 0: such frames are dropped) and a set of tagged VLANs.  Inside the
bridge a frame travels untagged with its VID beside it; it leaves a port
untagged in the port's PVID, tagged in the port's tagged VLANs, and not at
all elsewhere.  The FDB is per VLAN.  The bridge itself is a port whose
PVID is the bridge's: frames of that VLAN reach its Ifnet untagged, frames
of a VLAN that has a ``vlan`` sub-interface on the bridge reach it tagged
(the sub-interface then gets them).  Without filtering, tags are not looked
at: everything is VLAN 0 and a tagged frame crosses as it is.

Storm control: a port with ``storm_pps`` admits at most that many
broadcast and multicast frames per second (a token bucket); the rest are
dropped as ``storm_control``.

Every frame a port refuses is counted there by reason: ``bridge_down``,
``src_multicast`` (a group address as source), ``src_own_mac`` (our own
frame came back: a loop), ``vlan_untagged`` (no PVID), ``vlan_not_member``,
``vlan_reserved_vid``, ``vlan_truncated``, ``storm_control``, ``same_port``
(the destination sits on the port the frame came from) and, leaving,
``mtu_exceeded`` and ``port_down``.

Spanning tree (``stp``, off by default; :mod:`vrouter.link.stp`): a port
that is not forwarding takes its frames through :meth:`Port.held` instead
(BPDUs go to the STP, a learning port learns, nothing is forwarded: counted
as ``stp_blocking``, ``stp_listening``, ``stp_learning``, ``stp_disabled``),
floods pass it by and a unicast frame to it is dropped as
``stp_discarding``.  Without STP a loop (two epairs between the same
bridges, a host that bridges two of its TAPs) makes broadcasts circle for
ever and the FDB flap; storm control bounds the rate per port, not the
loop.  See docs/bridges.md.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core import tables
from vrouter.core.ratelimit import TokenBucket
from vrouter.core.timers import Timer
from vrouter.link import ether
from vrouter.link import rstp as rstp_
from vrouter.link import stp as stp_
from vrouter.link import vlan as vlan_
from vrouter.link import vxlan as vxlan_
from vrouter.link.ifnet import Ifnet
from vrouter.link.offload import OffloadBuffer, tag_raw
from vrouter.wire import stp as wire_stp
from vrouter.wire import vlan as wire_vlan
from vrouter.wire.ethernet import HEADER_LEN, mac_to_str

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet

DEFAULT_AGEING_TIME = 300
"""Seconds a learnt MAC stays without traffic (IEEE 802.1D, Linux, FreeBSD's ``timeout``)."""
DEFAULT_FDB_MAX = 8192
"""FDB entries per vnet, every bridge together."""
_MAX_TAGGED_FRAME = HEADER_LEN + wire_vlan.TAG_LEN
_MACS = struct.Struct("6s6s").unpack_from
"""Destination and source MAC of a frame as bytes, in one call (no slices made first)."""


TooBig = Callable[[Ifnet, memoryview, int, float], "bytes | None"]
"""Builds the ICMP error about an IP packet too big for a port: (the interface to source it
from, the packet, the MTU it did not fit, now) -> the error's IP packet (None: none may be
sent)."""


Announce = Callable[[Ifnet, float], None]
"""Announces the addresses of (interface, now) to the segment."""


class BridgeError(Exception):
    """A bridge operation was refused (a port twice, an unknown port)."""


@dataclass(slots=True)
class BridgeState:
    """The link layer's per-vnet bridging state and knobs (``vnet.link.bridge``)."""

    bridges: dict[str, Bridge] = field(default_factory=dict)
    """Bridges by the name of their Ifnet."""
    ageing_time: int = DEFAULT_AGEING_TIME
    """``net.link.bridge.ageing_time``."""
    fdb_max: int = DEFAULT_FDB_MAX
    """``net.link.bridge.fdb_max``: FDB entries in the whole vnet."""
    fdb_entries: int = 0
    """FDB entries now, every bridge together."""
    fdb_full: int = 0
    """Sources not learnt because the vnet's FDB was full."""
    too_big: dict[int, TooBig] = field(default_factory=tables.empty)
    """ICMP "too big" builders by EtherType, registered by the IP layers (inet, inet6;
    changed only through :func:`vrouter.core.tables.put`: vnets share it)."""
    announce: dict[int, Announce] = field(default_factory=tables.empty)
    """Who announces a bridge's own addresses again when the spanning tree moved its paths
    (inet: gratuitous ARP), by EtherType; shared like ``too_big``."""


@dataclass(slots=True)
class PortCounters:
    """What one port did; the member's Ifnet counts the frames and bytes themselves."""

    forwarded: int = 0
    """Frames this port received and the bridge sent on to one port (or the bridge itself)."""
    flooded: int = 0
    """Frames this port received that the bridge flooded."""
    sent: int = 0
    """Frames the bridge sent out of this port."""
    learned: int = 0
    """Source MACs learnt on this port (new or moved here)."""
    drops: Counter[str] = field(default_factory=Counter)
    """Frames refused, by reason (see the module docstring)."""

    def describe(self) -> dict[str, object]:
        """Return the counters as plain data."""
        return {
            "forwarded": self.forwarded,
            "flooded": self.flooded,
            "sent": self.sent,
            "learned": self.learned,
            "drops": dict(sorted(self.drops.items())),
        }


@dataclass(slots=True)
class BridgeStats:
    """Per-bridge FDB events."""

    learned: int = 0
    moved: int = 0
    """A MAC seen on another port than the one it was learnt on (relearnt there)."""
    aged: int = 0
    fdb_full: int = 0
    too_big: int = 0
    """ICMP errors (fragmentation needed, packet too big) sent back for frames a port
    could not carry."""


class FdbEntry:
    """Where one MAC of one VLAN was last seen."""

    __slots__ = ("mac", "vid", "port", "seen", "static", "dst")

    def __init__(
        self, mac: bytes, vid: int, port: Port, seen: float, static: bool, dst: str | None = None
    ) -> None:
        self.mac = mac
        self.vid = vid
        self.port = port
        self.seen = seen
        self.static = static
        self.dst = dst
        """The remote VTEP of a static entry on a VXLAN port (None: the port's own lookup)."""

    def describe(self, now: float, ageing: int) -> dict[str, object]:
        """Return the entry as plain data (``age`` None for a static one)."""
        return {
            "mac": mac_to_str(self.mac),
            "vlan": self.vid,
            "port": self.port.ifnet.name,
            "static": self.static,
            "age": None if self.static else round(max(0.0, now - self.seen), 1),
            "expires": None if self.static else round(max(0.0, self.seen + ageing - now), 1),
            "dst": self.dst,
        }


class Port:
    """One member of a bridge: its VLANs, storm control and counters."""

    __slots__ = (
        "bridge", "ifnet", "pvid", "tagged", "storm_pps", "bucket", "counters",
        "forwarding", "stp", "path_cost", "priority", "edge", "auto_edge",
    )  # fmt: skip

    def __init__(
        self,
        bridge: Bridge,
        ifnet: Ifnet,
        pvid: int = 1,
        tagged: frozenset[int] = frozenset(),
        storm_pps: int = 0,
    ) -> None:
        self.bridge = bridge
        self.ifnet = ifnet
        self.pvid = pvid
        """VLAN of untagged frames arriving here, and sent untagged (0: none)."""
        self.tagged = tagged
        """VLANs carried tagged on this port."""
        self.storm_pps = storm_pps
        """Broadcast and multicast frames admitted per second (0: no limit)."""
        self.bucket = TokenBucket()
        self.counters = PortCounters()
        self.forwarding = True
        """The port forwards (always without STP; in the forwarding state with it)."""
        self.stp: stp_.StpPort | rstp_.RstpPort | None = None
        """The port's spanning tree state while the bridge runs STP or RSTP."""
        self.path_cost = stp_.DEFAULT_PATH_COST
        self.priority = stp_.DEFAULT_PORT_PRIORITY
        """STP path cost and port priority (kept while STP is off)."""
        self.edge = False
        self.auto_edge = True
        """RSTP: an edge port (forwards at once), or one that becomes edge when it hears
        no BPDU (kept while STP is off; STP does not use them)."""

    def admits(self, vid: int) -> bool:
        """Return True if the port carries VLAN ``vid``."""
        return vid == self.pvid or vid in self.tagged

    def input(self, ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
        """Take a frame the member received (``Ifnet.bridge_input``; length >= 14 checked).

        The fast path first: a unicast frame between two stations both known
        (the source on this port, the destination on another, not aged) on a
        bridge that is up and filters no VLAN goes straight to the other port,
        with what the whole path below would count; anything else takes it.
        """
        bridge = self.bridge
        plain = bridge.plain
        if plain is not None and not (frame[0] | frame[6]) & 1 and bridge.ifnet.up:
            dst, src = _MACS(frame)
            to = plain.get(dst)
            by = plain.get(src)
            if (
                to is not None
                and by is not None
                and by.port is self
                and to.port is not self
                and (to.static or now - to.seen < bridge.state.ageing_time)
            ):
                bridge.now = now
                by.seen = now
                self.counters.forwarded += 1
                # Untagged out of a bridge without VLAN filtering: as send() would,
                # straight to the interface's output where nothing else applies.
                port = to.port
                out = port.ifnet
                if (
                    out.up
                    and port.forwarding
                    and len(frame) <= out.mtu + _MAX_TAGGED_FRAME
                    and (out.offload or frame.__class__ is bytes)
                ):
                    port.counters.sent += 1
                    out.output(frame)
                else:
                    port.send(frame, 0)
                return
        bridge.now = now
        if not bridge.ifnet.up:
            self.counters.drops["bridge_down"] += 1
            return
        if frame[0] == 1 and self.stp is not None and frame[0:6] == wire_stp.GROUP:
            self.stp.receive(frame, now)
            return
        if frame[6] & 1:
            self.counters.drops["src_multicast"] += 1
            ifp.counters.rx_errors += 1
            return
        if bridge.vlan_filtering:
            vid = self.classify(frame)
            if vid < 0:
                return
            if vid and frame[12] == 0x81 and frame[13] == 0:
                frame = vlan_.strip(frame)
        else:
            vid = 0
        group = frame[0] & 1
        if group and self.storm_pps and not self.bucket.take(self.storm_pps, now):
            self.counters.drops["storm_control"] += 1
            return
        src = bytes(frame[6:12])  # bytes(b) is b for bytes: a copy only for bytearrays
        table = bridge.tables.get(vid)
        entry = table.get(src) if table is not None else None
        if entry is None:
            if src == bridge.ifnet.mac:
                self.counters.drops["src_own_mac"] += 1
                return
            bridge.learn(self, vid, src, now)
        elif entry.port is not self:
            if not entry.static:
                bridge.move(entry, self, now)
        else:
            entry.seen = now
        if group:
            self.counters.flooded += 1
            bridge.flood(self, frame, vid)
            bridge.deliver(frame, vid, now)
            return
        dst = bytes(frame[0:6])
        if dst == bridge.ifnet.mac:
            self.counters.forwarded += 1
            bridge.deliver(frame, vid, now)
            return
        entry = table.get(dst) if table is not None else None
        if entry is None or (not entry.static and now - entry.seen >= bridge.state.ageing_time):
            self.counters.flooded += 1
            bridge.flood(self, frame, vid)
            return
        if entry.port is self:
            self.counters.drops["same_port"] += 1
            return
        self.counters.forwarded += 1
        entry.port.send(frame, vid)

    def held(self, ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
        """Take a frame the member received while STP keeps the port from forwarding:
        a BPDU goes to the STP, a learning port learns the source, nothing goes on."""
        bridge = self.bridge
        bridge.now = now
        sp = self.stp
        if frame[0] == 1 and sp is not None and frame[0:6] == wire_stp.GROUP:
            sp.receive(frame, now)
            return
        state = sp.state if sp is not None else stp_.PortState.DISABLED
        self.counters.drops[_HELD_REASONS[state]] += 1
        if state != stp_.PortState.LEARNING or frame[6] & 1 or not bridge.ifnet.up:
            return
        vid = 0
        if bridge.vlan_filtering:
            vid = self.classify(frame)
            if vid < 0:
                return
        src = bytes(frame[6:12])
        table = bridge.tables.get(vid)
        entry = table.get(src) if table is not None else None
        if entry is None:
            if src != bridge.ifnet.mac:
                bridge.learn(self, vid, src, now)
        elif entry.port is not self:
            if not entry.static:
                bridge.move(entry, self, now)
        else:
            entry.seen = now

    def classify(self, frame: bytes | bytearray) -> int:
        """Return the VLAN a frame arriving here belongs to (-1: dropped and counted)."""
        if frame[12] == 0x81 and frame[13] == 0:
            if len(frame) < wire_vlan.TAGGED_HEADER_LEN:
                self.counters.drops["vlan_truncated"] += 1
                self.ifnet.counters.rx_errors += 1
                return -1
            vid = ((frame[14] << 8) | frame[15]) & wire_vlan.VID_MASK
            if vid == 4095:
                self.counters.drops["vlan_reserved_vid"] += 1
                self.ifnet.counters.rx_errors += 1
                return -1
            if vid:
                if vid in self.tagged:
                    return vid
                self.counters.drops["vlan_not_member"] += 1
                return -1
            # VID 0: priority-tagged, treated as untagged (the tag is dropped below)
            if not self.pvid:
                self.counters.drops["vlan_untagged"] += 1
                return -1
            return self.pvid
        if not self.pvid:
            self.counters.drops["vlan_untagged"] += 1
            return -1
        return self.pvid

    def send(self, frame: bytes | bytearray, vid: int) -> None:
        """Send a frame of VLAN ``vid`` out of this port (tagged as the port carries it)."""
        ifp = self.ifnet
        if not ifp.up:
            self.counters.drops["port_down"] += 1
            return
        if not self.forwarding:
            self.counters.drops["stp_discarding"] += 1
            return
        if self.bridge.vlan_filtering and vid != self.pvid:
            frame = vlan_.insert(frame, vid)
        if len(frame) > ifp.mtu + _MAX_TAGGED_FRAME and frame.__class__ is not OffloadBuffer:
            self.counters.drops["mtu_exceeded"] += 1
            self.too_big(frame, ifp.mtu)
            return
        self.counters.sent += 1
        vlan_.output(ifp, frame)

    def too_big(self, frame: bytes | bytearray, mtu: int) -> None:
        """Tell the sender of an IP ``frame`` that did not leave here (its packet exceeds
        ``mtu``) with ICMP, as Linux does for a bridged vxlan; the frame is dropped."""
        bridge = self.bridge
        if frame[12] == 0x81 and frame[13] == 0:
            if not bridge.vlan_filtering or len(frame) < wire_vlan.TAGGED_HEADER_LEN:
                return
            vid = wire_vlan.tci_of(frame) & wire_vlan.VID_MASK
            start = wire_vlan.TAGGED_HEADER_LEN
        else:
            vid = self.pvid
            start = HEADER_LEN
        bridge.answer_too_big(frame, start, vid, mtu)

    def describe(self, now: float = 0.0) -> dict[str, object]:
        """Return the port as plain data for the API."""
        return {
            "name": self.ifnet.name,
            "kind": self.ifnet.kind,
            "up": self.ifnet.up,
            "pvid": self.pvid,
            "tagged": sorted(self.tagged),
            "storm_pps": self.storm_pps,
            "path_cost": self.path_cost,
            "port_priority": self.priority,
            "edge": self.edge,
            "auto_edge": self.auto_edge,
            "stp": None if self.stp is None else self.stp.describe(now),
            "counters": self.counters.describe(),
        }


_HELD_REASONS = {state: f"stp_{state.name.lower()}" for state in stp_.PortState}
"""Drop reason of a frame received on a port in each STP state (forwarding never used)."""


class Bridge:
    """One bridge: its Ifnet, its ports and its forwarding database."""

    def __init__(
        self, ifnet: Ifnet, state: BridgeState, vlan_filtering: bool = False, pvid: int = 1
    ) -> None:
        self.ifnet = ifnet
        self.state = state
        self.vlan_filtering = vlan_filtering
        self.pvid = pvid if vlan_filtering else 0
        """The bridge's own VLAN: what its Ifnet sends and receives untagged."""
        self.ports: dict[str, Port] = {}
        """Members by interface name, in the order they joined."""
        self.tables: dict[int, dict[bytes, FdbEntry]] = {}
        """The FDB: VLAN -> MAC -> entry (VLAN 0 only without filtering)."""
        self.plain = None if vlan_filtering else self.tables.setdefault(0, {})
        """Without VLAN filtering, the one table (the fast path's); None with filtering."""
        self.stats = BridgeStats()
        self.now = 0.0
        """The time of the latest frame, for sends from the vnet (which carry no time)."""
        self._sweep: Timer | None = None
        self._tc_sweep: Timer | None = None
        self.stp: stp_.Stp | rstp_.Rstp | None = None
        """The spanning tree, while ``stp`` is on (its ``protocol``: STP or RSTP)."""
        ifnet.transmit = self.transmit

    @property
    def vnet(self) -> Vnet:
        """Return the vnet the bridge is in."""
        return self.ifnet.vnet

    # -- ports ---------------------------------------------------------------------------

    def add_port(
        self,
        ifp: Ifnet,
        pvid: int = 1,
        tagged: frozenset[int] = frozenset(),
        storm_pps: int = 0,
        path_cost: int = stp_.DEFAULT_PATH_COST,
        priority: int = stp_.DEFAULT_PORT_PRIORITY,
        now: float | None = None,
        edge: bool = False,
        auto_edge: bool = True,
    ) -> Port:
        """Make ``ifp`` a member; it then receives for the bridge only (with STP: blocking
        first, if its link is up; ``path_cost`` and ``priority`` are its STP settings)."""
        if ifp.vnet is not self.vnet:
            raise BridgeError(f"{ifp.name} is not in vnet {self.vnet.name}")
        if ifp is self.ifnet:
            raise BridgeError(f"bridge {self.ifnet.name} cannot be a member of itself")
        if ifp.bridge_input is not None:
            raise BridgeError(f"{ifp.name} is already a member of a bridge")
        problems = stp_.port_problems(path_cost, priority)
        if problems:
            raise BridgeError(f"{ifp.name}: {'; '.join(problems)}")
        port = Port(self, ifp, pvid if self.vlan_filtering else 0, tagged, storm_pps)
        port.path_cost, port.priority = path_cost, priority
        port.edge, port.auto_edge = edge, auto_edge
        self.ports[ifp.name] = port
        ifp.bridge_input = port.input
        vx = vxlan_.of(ifp)
        if vx is not None:
            vx.too_big = port.too_big
        if self.stp is not None:
            port.stp = self.stp.add_port(port, priority, path_cost, self._now(now))
        return port

    def remove_port(self, name: str, now: float | None = None) -> Port:
        """Release member ``name``: its FDB entries go, it receives for itself again."""
        port = self.ports.get(name)
        if port is None:
            raise BridgeError(f"{name} is not a member of bridge {self.ifnet.name}")
        if self.stp is not None and port.stp is not None:
            port.stp.remove(self._now(now))
            port.stp = None
        del self.ports[name]
        port.forwarding = True
        port.ifnet.bridge_input = None
        vx = vxlan_.of(port.ifnet)
        if vx is not None:
            vx.too_big = vxlan_.no_answer
        for table in self.tables.values():
            for mac in [m for m, e in table.items() if e.port is port]:
                self._forget(table.pop(mac))
        return port

    def close(self) -> None:
        """Release every port and the whole FDB, stop the ageing and STP timers."""
        if self.stp is not None:
            self.stp.close()
            self.stp = None
            for port in self.ports.values():
                port.stp = None
        for name in list(self.ports):
            self.remove_port(name)
        for table in self.tables.values():
            for entry in table.values():
                self._forget(entry)
        self.tables.clear()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        if self._tc_sweep is not None:
            self._tc_sweep.cancel()
            self._tc_sweep = None
        self.ifnet.transmit = _closed

    # -- spanning tree ---------------------------------------------------------------------

    def _now(self, now: float | None) -> float:
        return self.now if now is None else max(self.now, now)

    def set_stp(self, settings: stp_.StpSettings | None, now: float) -> None:
        """Run STP with ``settings`` (None: stop it, every port forwards at once).

        Started, every port whose link is up begins blocking; running, new
        settings apply in place (802.1D 8.8.3-8.8.4); a new ``protocol``
        starts the other one over (every port discarding again).
        """
        self.now = now = self._now(now)
        if settings is not None:
            problems = settings.problems()
            if problems:
                raise BridgeError("; ".join(problems))
        if settings is None:
            if self.stp is None:
                return
            stp, self.stp = self.stp, None
            stp.close()
            if self._tc_sweep is not None:
                self._tc_sweep.cancel()
                self._tc_sweep = None
            for port in self.ports.values():
                port.stp = None
                self._port_state(port, stp_.PortState.BLOCKING, stp_.PortState.FORWARDING)
            return
        if self.stp is not None and self.stp.protocol == settings.protocol:
            self.stp.configure(settings, now)
            return
        if self.stp is not None:
            self.stp.close()
            for port in self.ports.values():
                if port.stp is not None and port.stp.state != stp_.PortState.DISABLED:
                    self._port_state(port, port.stp.state, stp_.PortState.BLOCKING)
                port.stp = None
        kind = rstp_.Rstp if settings.protocol == "rstp" else stp_.Stp
        self.stp = kind(self, settings, self.vnet.timers, self._port_state, now)
        for port in self.ports.values():
            port.stp = self.stp.add_port(port, port.priority, port.path_cost, now)
        self.stp.config_bpdu_generation(now)

    def set_port_stp(
        self, name: str, path_cost: int, priority: int, now: float,
        edge: bool | None = None, auto_edge: bool | None = None,
    ) -> Port:  # fmt: skip
        """Change member ``name``'s STP path cost and port priority (and RSTP edge
        settings: None keeps them)."""
        port = self.ports.get(name)
        if port is None:
            raise BridgeError(f"{name} is not a member of bridge {self.ifnet.name}")
        problems = stp_.port_problems(path_cost, priority)
        if problems:
            raise BridgeError(f"{name}: {'; '.join(problems)}")
        port.path_cost, port.priority = path_cost, priority
        if edge is not None:
            port.edge = edge
        if auto_edge is not None:
            port.auto_edge = auto_edge
        if port.stp is not None:
            port.stp.set(priority, path_cost, self._now(now))
        return port

    def mcheck(self, name: str, now: float) -> Port:
        """Have member ``name`` try RSTP again where it fell back to STP (17.19.13)."""
        port = self.ports.get(name)
        if port is None:
            raise BridgeError(f"{name} is not a member of bridge {self.ifnet.name}")
        if not isinstance(port.stp, rstp_.RstpPort):
            raise BridgeError(f"bridge {self.ifnet.name} does not run RSTP")
        port.stp.stp.mcheck(port.stp, self._now(now))
        return port

    def _port_state(self, port: Port, old: stp_.PortState, new: stp_.PortState) -> None:
        """Switch ``port``'s path for its new STP state; leaving learning or forwarding for
        blocking or disabled, it forgets what it learnt.  A port that starts or stops
        forwarding moves paths: the bridge announces its addresses again."""
        was = port.forwarding
        port.forwarding = new == stp_.PortState.FORWARDING
        if port.ifnet.bridge_input is not None:
            port.ifnet.bridge_input = port.input if port.forwarding else port.held
        if port.forwarding != was:
            self.announce(self.now)
        if new in (stp_.PortState.BLOCKING, stp_.PortState.DISABLED) and old in (
            stp_.PortState.LEARNING,
            stp_.PortState.FORWARDING,
        ):
            self.flush_port(port)

    def announce(self, now: float) -> None:
        """Announce the bridge's own addresses out of its forwarding ports (gratuitous
        ARP): the stations' bridges, whose FDB may point where our MAC no longer is
        (a Linux bridge ages it only when its FDB sweep comes round), learn it again."""
        if self.ifnet.up:
            for announce in self.state.announce.values():
                announce(self.ifnet, now)

    def flush_port(self, port: Port) -> int:
        """Forget the MACs learnt on ``port`` (static entries stay); return how many."""
        gone = 0
        for table in self.tables.values():
            for mac in [m for m, e in table.items() if e.port is port and not e.static]:
                self._forget(table.pop(mac))
                gone += 1
        return gone

    def topology_change(self, now: float, forward_delay: float) -> None:
        """A topology change began: learnt MACs age after ``forward_delay`` while it lasts,
        and the bridge announces its own addresses again."""
        self.announce(now)
        if self._tc_sweep is None:
            self._tc_sweep = self.vnet.timers.schedule(now + forward_delay, self._tc_age)

    def _tc_age(self, now: float) -> None:
        """While the topology change lasts, forget MACs silent for the forward delay."""
        self._tc_sweep = None
        stp = self.stp
        if stp is None or not stp.tc:
            return
        window = stp.forward_delay
        oldest = self._expire(now, window)
        at = now + window if oldest is None else min(oldest + window, now + window)
        self._tc_sweep = self.vnet.timers.schedule(max(at, now + 0.1), self._tc_age)

    # -- the FDB -------------------------------------------------------------------------

    def learn(self, port: Port, vid: int, mac: bytes, now: float) -> None:
        """Record that ``mac`` of VLAN ``vid`` is behind ``port``, if the FDB has room."""
        state = self.state
        if state.fdb_entries >= state.fdb_max:
            self.stats.fdb_full += 1
            state.fdb_full += 1
            return
        table = self.tables.get(vid)
        if table is None:
            table = self.tables[vid] = {}
        table[mac] = FdbEntry(mac, vid, port, now, False)
        state.fdb_entries += 1
        self.stats.learned += 1
        port.counters.learned += 1
        if self._sweep is None:
            self._sweep = self.vnet.timers.schedule(now + state.ageing_time, self._age)

    def move(self, entry: FdbEntry, port: Port, now: float) -> None:
        """Relearn a MAC seen on another port than its entry's."""
        entry.port = port
        entry.seen = now
        self.stats.moved += 1
        port.counters.learned += 1

    def add_static(
        self, mac: bytes, port_name: str, vid: int | None = None, dst: str | None = None
    ) -> FdbEntry:
        """Add (or replace) a static entry (never ages) for ``mac`` behind member ``port_name``.

        ``vid`` None: the port's PVID (0 without VLAN filtering).  ``dst``: on
        a VXLAN port, the remote VTEP the MAC is behind (Linux ``bridge fdb
        append MAC dev VX dst ADDR``), also a static entry of the port's own.
        """
        port = self.ports.get(port_name)
        if port is None:
            raise BridgeError(f"{port_name} is not a member of bridge {self.ifnet.name}")
        vid = self._static_vid(port, vid)
        vx = vxlan_.of(port.ifnet)
        if dst is not None and vx is None:
            raise BridgeError(f"{port_name} is not a vxlan interface: dst needs one")
        table = self.tables.setdefault(vid, {})
        old = table.get(mac)
        if old is None and self.state.fdb_entries >= self.state.fdb_max:
            raise BridgeError(
                f"vnet {self.vnet.name}: FDB full ({self.state.fdb_max} entries, "
                "net.link.bridge.fdb_max)"
            )
        if dst is not None and vx is not None:
            try:
                vx.add_static(mac, dst)
            except vxlan_.VxlanError as err:
                raise BridgeError(str(err)) from None
        if old is None:
            self.state.fdb_entries += 1
        elif old.dst is not None and (dst is None or old.port is not port):
            self._forget_dst(old)
        entry = table[mac] = FdbEntry(mac, vid, port, self.now, True, dst)
        return entry

    def remove_static(self, mac: bytes, port_name: str, vid: int | None = None) -> FdbEntry:
        """Remove the static entry for ``mac`` behind member ``port_name`` (``vid`` as in
        :meth:`add_static`)."""
        port = self.ports.get(port_name)
        if port is None:
            raise BridgeError(f"{port_name} is not a member of bridge {self.ifnet.name}")
        vid = self._static_vid(port, vid)
        table = self.tables.get(vid, {})
        entry = table.get(mac)
        if entry is None or not entry.static or entry.port is not port:
            where = f" in VLAN {vid}" if self.vlan_filtering else ""
            raise BridgeError(
                f"bridge {self.ifnet.name} has no static entry for {mac_to_str(mac)} "
                f"on {port_name}{where}"
            )
        self._forget(table.pop(mac))
        return entry

    def _static_vid(self, port: Port, vid: int | None) -> int:
        """Return the VLAN a static entry of ``port`` goes in (``vid`` None: its PVID)."""
        if not self.vlan_filtering:
            return 0
        if vid is None:
            vid = port.pvid
        if not port.admits(vid):
            raise BridgeError(f"port {port.ifnet.name} does not carry VLAN {vid}")
        return vid

    def _forget(self, entry: FdbEntry) -> None:
        """Account for an entry taken out of the FDB (and its VXLAN port's static MAC)."""
        self.state.fdb_entries -= 1
        if entry.dst is not None:
            self._forget_dst(entry)

    @staticmethod
    def _forget_dst(entry: FdbEntry) -> None:
        vx = vxlan_.of(entry.port.ifnet)
        if vx is not None:
            vx.remove_static(entry.mac)

    def entries(self) -> list[FdbEntry]:
        """Return the FDB's live entries (aged ones excluded), by VLAN then MAC."""
        ageing = self.state.ageing_time
        return sorted(
            (
                e
                for table in self.tables.values()
                for e in table.values()
                if e.static or self.now - e.seen < ageing
            ),
            key=lambda e: (e.vid, e.mac),
        )

    def _expire(self, now: float, window: float) -> float | None:
        """Forget the learnt MACs silent for ``window`` seconds; return when the oldest
        one left was last seen (None if none is left)."""
        oldest: float | None = None
        for table in self.tables.values():
            for mac in list(table):
                entry = table[mac]
                if entry.static:
                    continue
                if now - entry.seen >= window:
                    del table[mac]
                    self.state.fdb_entries -= 1
                    self.stats.aged += 1
                elif oldest is None or entry.seen < oldest:
                    oldest = entry.seen
        return oldest

    def _age(self, now: float) -> None:
        """The ageing timer: drop entries unused for the ageing time, rearm for the next."""
        self._sweep = None
        self.now = max(self.now, now)
        ageing = self.state.ageing_time
        oldest = self._expire(now, ageing)
        if oldest is not None:
            self._sweep = self.vnet.timers.schedule(oldest + ageing, self._age)

    # -- forwarding ------------------------------------------------------------------------

    def flood(self, ingress: Port | None, frame: bytes | bytearray, vid: int) -> None:
        """Send ``frame`` out of every port of VLAN ``vid`` but ``ingress``."""
        filtering = self.vlan_filtering
        shared = frame.__class__ is OffloadBuffer
        for port in self.ports.values():
            if port is ingress or not port.forwarding or (filtering and not port.admits(vid)):
                continue
            # A buffer with offload work may be edited in place further on
            # (an epair hands it over as is): each port gets its own.
            port.send(tag_raw(frame, frame.raw) if shared else frame, vid)  # type: ignore[union-attr]

    def deliver(self, frame: bytes | bytearray, vid: int, now: float) -> None:
        """Receive a frame of VLAN ``vid`` on the bridge's own Ifnet, if it is for it."""
        if vid != self.pvid:
            if (self.ifnet.name, vid) not in self.vnet.link.vlans:
                return
            frame = vlan_.insert(frame, vid)
        ether.input(self.ifnet, frame, now)

    def answer_too_big(self, frame: bytes | bytearray, start: int, vid: int, mtu: int) -> None:
        """Send the sender of ``frame`` (VLAN ``vid``, its IP packet at ``start``) the ICMP
        error for a packet over ``mtu``, from the bridge's interface of that VLAN: only if
        the IP layer may and the interface has an address to send it from."""
        builder = self.state.too_big.get((frame[start - 2] << 8) | frame[start - 1])
        if vid == self.pvid:
            ifp: Ifnet | None = self.ifnet
        else:
            sub = self.vnet.link.vlans.get((self.ifnet.name, vid))
            ifp = sub.ifnet if sub is not None else None
        if builder is None or ifp is None or not ifp.up or frame[6] & 1:
            return
        packet = builder(ifp, memoryview(frame)[start:], mtu, self.now)
        if packet is None:
            return
        self.stats.too_big += 1
        reply = bytes(frame[6:12]) + self.ifnet.mac + bytes(frame[start - 2 : start]) + packet
        self.forward_own(reply, vid)

    def transmit(self, frame: bytes | bytearray) -> None:
        """The bridge Ifnet's device: forward what the vnet sends into the segment."""
        vid = self.pvid
        if self.vlan_filtering and frame[12] == 0x81 and frame[13] == 0:
            vid = wire_vlan.tci_of(frame) & wire_vlan.VID_MASK
            frame = vlan_.strip(frame)
        self.forward_own(frame, vid)

    def forward_own(self, frame: bytes | bytearray, vid: int) -> None:
        """Forward an untagged frame of VLAN ``vid`` the bridge itself sends."""
        if frame[0] & 1:
            self.flood(None, frame, vid)
            return
        table = self.tables.get(vid)
        entry = table.get(bytes(frame[0:6])) if table is not None else None
        if entry is None or (not entry.static and self.now - entry.seen >= self.state.ageing_time):
            self.flood(None, frame, vid)
            return
        entry.port.send(frame, vid)

    def describe(self, now: float | None = None) -> dict[str, object]:
        """Return the bridge and its ports as plain data for the API."""
        now = self._now(now)
        return {
            "name": self.ifnet.name,
            "mac": mac_to_str(self.ifnet.mac),
            "up": self.ifnet.up,
            "vlan_filtering": self.vlan_filtering,
            "pvid": self.pvid,
            "ageing_time": self.state.ageing_time,
            "stp": None if self.stp is None else self.stp.describe(now),
            "fdb_entries": sum(len(t) for t in self.tables.values()),
            "stats": {
                "learned": self.stats.learned,
                "moved": self.stats.moved,
                "aged": self.stats.aged,
                "fdb_full": self.stats.fdb_full,
                "too_big": self.stats.too_big,
            },
            "ports": [port.describe(now) for port in self.ports.values()],
        }


def _closed(frame: bytes | bytearray) -> None:
    raise OSError("bridge destroyed")


def of(ifp: Ifnet) -> Bridge | None:
    """Return the bridge ``ifp`` is, if it is one."""
    return ifp.vnet.link.bridge.bridges.get(ifp.name) if ifp.kind == "bridge" else None


def port_of(ifp: Ifnet) -> Port | None:
    """Return the port ``ifp`` is of some bridge, if it is a member."""
    for bridge in ifp.vnet.link.bridge.bridges.values():
        port = bridge.ports.get(ifp.name)
        if port is not None and port.ifnet is ifp:
            return port
    return None


def create(ifp: Ifnet, vlan_filtering: bool = False, pvid: int = 1) -> Bridge:
    """Make ``ifp`` (kind ``bridge``) a bridge of its vnet."""
    state = ifp.vnet.link.bridge
    if ifp.name in state.bridges:
        raise BridgeError(f"{ifp.name} is already a bridge")
    bridge = Bridge(ifp, state, vlan_filtering, pvid)
    state.bridges[ifp.name] = bridge
    return bridge


def destroy(ifp: Ifnet) -> Bridge | None:
    """Undo :func:`create`: release the members and the FDB."""
    bridge = ifp.vnet.link.bridge.bridges.pop(ifp.name, None)
    if bridge is not None:
        bridge.close()
    return bridge
