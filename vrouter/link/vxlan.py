"""VXLAN interfaces (RFC 7348): one L2 segment stretched over a UDP underlay.

A VXLAN interface is an Ifnet of kind ``vxlan`` with a VNI, a local VTEP
address and a UDP port; it is normally a bridge member, so the inner frames
are bridged like any port's.  This module is sans-IO: the device behind it
(:mod:`vrouter.io.vxlan`, a host UDP socket) calls :meth:`Vxlan.input` with
each received datagram and its source VTEP, and :meth:`Vxlan.transmit`
hands it the encapsulated frames through ``Vxlan.send``.

Sending: a unicast frame whose destination MAC was learnt goes to that
MAC's VTEP; broadcast, multicast and unknown unicast (BUM) go to every
static remote VTEP (head-end replication) or, with a ``group``, once to the
multicast group.  An outer packet that would exceed the underlay's MTU is
never sent (the socket also forbids the kernel to fragment): it is dropped
and counted as ``vxlan_too_big``, and the bridge the interface is a member
of tells the inner sender with ICMP (:meth:`vrouter.link.bridge.Port.too_big`).
TCP super-frames are segmented here and leave as one batch per VTEP, which the device sends with one
``UDP_SEGMENT`` system call; a device with UDP-tunnel GSO (``send_super``) takes them whole
instead and has the kernel segment them.

Receiving: a datagram too short for the VXLAN and an inner Ethernet header
(``vxlan_truncated``), without the I flag (``vxlan_bad_flags``), or for
another VNI (``vxlan_unknown_vni``) is dropped and counted on the interface.
Otherwise the inner source MAC is learnt behind the sending VTEP (unless
``learning`` is off) and the inner frame is received on the interface.  The
datagrams of one read (``UDP_GRO``) go through :meth:`Vxlan.input_many`,
which joins one TCP flow's segments into a super-frame first
(:mod:`vrouter.link.gro`), so the bridge and a TAP see one frame where the
sender's TSO made one.

The MAC → VTEP table ages like a bridge's FDB (``net.link.bridge.ageing_time``)
and counts to the vnet's FDB entries (``net.link.bridge.fdb_max``).  A static
entry (:meth:`Vxlan.add_static`, from a bridge's static FDB entry with a
``dst``) sends one MAC's frames to one VTEP, listed or not; it neither ages
nor moves when the MAC shows up behind another VTEP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vrouter.core.timers import Timer
from vrouter.link import ether, gro, tso
from vrouter.link.ifnet import Ifnet
from vrouter.link.offload import (
    GSO_ECN,
    GSO_TCPV4,
    GSO_TCPV6,
    OffloadBuffer,
    VirtioHdr,
    headers_len,
    resolve,
    tcp_offset,
    vhdr_of,
)
from vrouter.wire import vlan as wire_vlan
from vrouter.wire import vxlan as wire
from vrouter.wire.errors import IntegrityError, SanityError
from vrouter.wire.ethernet import HEADER_LEN, mac_to_str

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.bridge import BridgeState

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Send = Callable[[str, list[bytes | bytearray]], None]
"""Sends frames to one VTEP: each leaves as the interface's header + the frame, one datagram."""
TooBig = Callable[[bytes | bytearray, int], None]
"""Answers a frame too big for the underlay: (the frame, the largest IP packet that fits)."""
SendTrain = Callable[[str, tso.Train], None]
"""Sends a super-frame's datagrams (:func:`vrouter.link.tso.cut`) to one VTEP."""
SendSuper = Callable[[str, bytes | bytearray, VirtioHdr], bool]
"""Sends a TCP super-frame whole to one VTEP, the kernel segmenting it (False: it
could not, the frame is to be cut here)."""
_TCP_GSO = (GSO_TCPV4, GSO_TCPV6)


class VxlanError(Exception):
    """A VXLAN operation was refused."""


@dataclass(slots=True)
class Vtep:
    """A remote VTEP: configured (static) or only learnt from, and what went to and from it."""

    address: str
    static: bool
    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0

    def describe(self, macs: list[dict[str, object]]) -> dict[str, object]:
        """Return the VTEP and the MACs learnt behind it as plain data."""
        return {
            "address": self.address,
            "static": self.static,
            "rx_packets": self.rx_packets,
            "rx_bytes": self.rx_bytes,
            "tx_packets": self.tx_packets,
            "tx_bytes": self.tx_bytes,
            "macs": macs,
        }


@dataclass(slots=True)
class VxlanStats:
    """MAC table events and BUM replication."""

    learned: int = 0
    moved: int = 0
    """A MAC seen behind another VTEP than the one it was learnt behind."""
    aged: int = 0
    fdb_full: int = 0
    flooded: int = 0
    """Frames sent to every remote VTEP (or the group) because they were BUM."""
    batches: int = 0
    """Reads that brought several datagrams at once (the underlay's GRO)."""
    coalesced: int = 0
    """Inner frames received as part of a super-frame of their TCP flow."""
    whole: int = 0
    """TCP super-frames handed whole to the kernel to segment (``tunnel_gso``)."""
    tunnel_refused: int = 0
    received_whole: int = 0
    """TCP super-frames received whole from the kernel (``tunnel_gso``: a VTEP's tunnel
    super-frame redirected to the TAP, its outer headers stripped here)."""
    received_tunnel: int = 0
    """Frames of any kind received through the tunnel TAP (the rest: on the socket)."""
    """Super-frames the kernel refused to take whole (then sent by the socket)."""
    small_sends: int = 0
    """Sends of the frames queued during a loop pass (ACKs, anything but a TCP
    super-frame's segments): one per VTEP and run of one size, ``UDP_SEGMENT``."""
    small_datagrams: int = 0
    """Datagrams those sends carried."""


class MacEntry:
    """Behind which VTEP one inner MAC was last seen (or is, for a static entry)."""

    __slots__ = ("mac", "vtep", "seen", "static")

    def __init__(self, mac: bytes, vtep: Vtep, seen: float, static: bool = False) -> None:
        self.mac = mac
        self.vtep = vtep
        self.seen = seen
        self.static = static
        """Configured (a bridge's static FDB entry with ``dst``): never ages or moves."""


@dataclass(slots=True)
class VxlanConfigured:
    """What a VXLAN interface is made of (the config's ``VxlanConfig``, resolved)."""

    vni: int
    local: Address
    port: int = wire.PORT
    remotes: tuple[Address, ...] = ()
    group: Address | None = None
    learning: bool = True
    underlay: str | None = None
    """The vnet whose UDP carries the outer packets (None: the host's)."""
    tunnel_gso: bool = False
    """TCP super-frames leave whole through a TAP with UDP-tunnel GSO, where the kernel
    has it (:mod:`vrouter.io.vxtunnel`)."""


class Vxlan:
    """One VXLAN interface: its Ifnet, its VTEPs and its MAC table."""

    def __init__(self, ifnet: Ifnet, cfg: VxlanConfigured, bridges: BridgeState) -> None:
        self.ifnet = ifnet
        self.cfg = cfg
        self.vni = cfg.vni
        self.header = wire.header(cfg.vni)
        self.outer = wire.OUTER_V4 if cfg.local.version == 4 else wire.OUTER_V6
        """Bytes the underlay adds to an inner frame."""
        self.overhead = self.outer + wire.INNER_ETHERNET
        self.underlay_mtu = ifnet.mtu + self.overhead
        """The underlay's MTU; the device sets it from the route to the VTEPs."""
        self.bridges = bridges
        self.vteps: dict[str, Vtep] = {str(a): Vtep(str(a), True) for a in cfg.remotes}
        self.flood_to: tuple[str, ...] = (
            (str(cfg.group),) if cfg.group is not None else tuple(self.vteps)
        )
        """Where BUM frames go: the group, or every static VTEP."""
        self.macs: dict[bytes, MacEntry] = {}
        self.stats = VxlanStats()
        self.now = 0.0
        self.send: Send = _no_device
        self.too_big: TooBig = no_answer
        """Set by the bridge the interface is a member of: ICMP back to the sender."""
        self.send_train: SendTrain = self._send_frame_by_frame
        """A device without UDP_SEGMENT (a vnet's own UDP) leaves this one: through ``send``."""
        self.send_super: SendSuper | None = None
        """Set by a device with UDP-tunnel GSO (:mod:`vrouter.io.vxtunnel`)."""
        self.tunnel_gso = ""
        """With ``tunnel_gso``: the TAP that takes super-frames, or why none does."""
        self.tunnel_error = ""
        self.tunnel_receive = ""
        """With ``tunnel_gso``: the device whose VXLAN datagrams are redirected to the TAP
        (received whole), or why none is ("" before it is tried)."""
        """Why the kernel last refused a super-frame on that TAP ("" if it never did)."""
        self._held: gro.Joining | None = None
        """A super-frame received but not yet passed on: the next read may extend it."""
        self._sweep: Timer | None = None
        ifnet.transmit = self.transmit

    @property
    def vnet(self) -> Vnet:
        """Return the vnet the interface is in."""
        return self.ifnet.vnet

    def set_underlay_mtu(self, mtu: int) -> None:
        """Record the underlay's MTU and lower the interface's MTU to what it carries."""
        self.underlay_mtu = mtu
        self.ifnet.mtu = min(self.ifnet.mtu, mtu - self.overhead)

    # -- receiving -----------------------------------------------------------------------

    def input(self, datagram: bytes | bytearray, source: str, now: float) -> None:
        """Take one UDP payload from VTEP ``source``: check it, learn, receive the inner frame."""
        if self._held is not None:
            self.release(now)
        frame = self.decap(datagram, source, now)
        if frame is not None:
            ether.receive(self.ifnet, frame, now)

    def input_many(self, datagrams: list[bytes], source: str, now: float) -> None:
        """Take several UDP payloads from ``source`` (one read): TCP segments of one flow
        among the inner frames are received as one super-frame (:mod:`vrouter.link.gro`)."""
        if self._held is not None:
            self.release(now)
        frames: list[bytes | bytearray] = []
        for datagram in datagrams:
            frame = self.decap(datagram, source, now)
            if frame is not None:
                frames.append(frame)
        self._receive_many(frames, now)

    def _receive_many(self, frames: list[bytes | bytearray], now: float) -> None:
        """Receive the inner frames of one read, one flow's segments joined."""
        ifp = self.ifnet
        stats = self.stats
        stats.batches += 1
        joined = gro.coalesce(frames) if len(frames) > 1 else frames
        stats.coalesced += (
            len(frames) - len(joined) + sum(1 for f in joined if f.__class__ is OffloadBuffer)
        )
        for frame in joined:
            ether.receive(ifp, frame, now)

    def input_train(self, data: bytes, size: int, source: str, now: float) -> None:
        """Take one read of several UDP payloads from ``source``, each ``size`` bytes but
        the last: one TCP flow's segments, checked in one pass, are appended to the
        super-frame the reads before built, or begin one
        (:class:`vrouter.link.gro.Joining`); any other read goes through
        :meth:`input_many`."""
        first = self.decap(data[:size], source, now)
        if first is None:  # not this VNI: the others are looked at one by one
            self.input_many(_split(data, size, size), source, now)
            return
        skip = wire.HEADER_LEN
        held = self._held
        used = 0 if held is None else held.add(data, size, skip)
        if not used:
            started = gro.Joining.start(data, size, skip)
            if held is not None:
                self.release(now)
            if started is None:
                rest = [self.decap(d, source, now) for d in _split(data, size, size)]
                self._receive_many([first, *(f for f in rest if f is not None)], now)
                return
            self._held, used = started
        count = -(-used // size)
        vtep = self.vteps[source]
        vtep.rx_packets += count - 1
        vtep.rx_bytes += used - size
        self.stats.batches += 1
        self.stats.coalesced += count
        if used < len(data):
            self.input(data[used:], source, now)

    def input_whole(
        self, data: bytes, start: int, source: str, vhdr: VirtioHdr | None, now: float
    ) -> None:
        """Take one UDP payload, ``data[start:]``, that came whole through the tunnel TAP
        from VTEP ``source``; ``vhdr`` is its inner frame's offload header (a TCP
        super-frame, or a partial checksum), None for an ordinary frame."""
        if self._held is not None:
            self.release(now)
        if not self.accept(memoryview(data)[start:], source, now):
            return
        skip = start + wire.HEADER_LEN
        stats = self.stats
        stats.received_tunnel += 1
        if vhdr is None:
            ether.receive(self.ifnet, data[skip:], now)
            return
        frame = OffloadBuffer(data)
        del frame[:skip]  # a bytearray drops its head in place
        frame.vhdr = vhdr
        if vhdr.gso_type:
            stats.received_whole += 1
        ether.receive(self.ifnet, frame, now)

    def release(self, now: float) -> None:
        """Receive the super-frame held back for the next read to extend (the device
        calls this when it has read all there was)."""
        held = self._held
        if held is not None:
            self._held = None
            ether.receive(self.ifnet, held.finish(), now)

    def decap(
        self, datagram: bytes | bytearray, source: str, now: float
    ) -> bytes | bytearray | None:
        """Check one UDP payload and learn its source MAC; return the inner frame (None:
        dropped and counted)."""
        return datagram[wire.HEADER_LEN :] if self.accept(datagram, source, now) else None

    def accept(self, datagram: bytes | bytearray | memoryview, source: str, now: float) -> bool:
        """Check one UDP payload and learn its source MAC; False if it is dropped (and
        counted)."""
        ifp = self.ifnet
        self.now = now
        try:
            vni = wire.parse(datagram)
        except IntegrityError:
            ifp.counters.rx_packets += 1
            ifp.drop("vxlan_truncated", error=True)
            return False
        except SanityError:
            ifp.counters.rx_packets += 1
            ifp.drop("vxlan_bad_flags", error=True)
            return False
        if vni != self.vni:
            ifp.counters.rx_packets += 1
            ifp.drop("vxlan_unknown_vni")
            return False
        vtep = self.vteps.get(source)
        if vtep is None:
            vtep = self.vteps[source] = Vtep(source, False)
        vtep.rx_packets += 1
        vtep.rx_bytes += len(datagram)
        if self.cfg.learning and not datagram[wire.HEADER_LEN + 6] & 1:
            src = bytes(datagram[wire.HEADER_LEN + 6 : wire.HEADER_LEN + 12])
            entry = self.macs.get(src)
            if entry is None:
                self.learn(src, vtep, now)
            elif entry.static:
                pass
            elif entry.vtep is not vtep:
                entry.vtep = vtep
                entry.seen = now
                self.stats.moved += 1
            else:
                entry.seen = now
        return True

    # -- the MAC table -------------------------------------------------------------------

    def learn(self, mac: bytes, vtep: Vtep, now: float) -> None:
        """Record that ``mac`` is behind ``vtep``, if the vnet's FDB has room."""
        state = self.bridges
        if state.fdb_entries >= state.fdb_max:
            self.stats.fdb_full += 1
            state.fdb_full += 1
            return
        self.macs[mac] = MacEntry(mac, vtep, now)
        state.fdb_entries += 1
        self.stats.learned += 1
        if self._sweep is None:
            self._sweep = self.vnet.timers.schedule(now + state.ageing_time, self._age)

    def add_static(self, mac: bytes, address: str) -> MacEntry:
        """Send frames to ``mac`` to VTEP ``address`` only (replacing what was learnt)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise VxlanError(f"{address!r} is not an IP address") from None
        local = self.cfg.local
        if ip.version != local.version or ip.is_multicast or ip.is_unspecified or ip == local:
            raise VxlanError(
                f"{self.ifnet.name}: dst {ip} is not a remote unicast address of local "
                f"{local}'s family"
            )
        state = self.bridges
        if mac not in self.macs:
            if state.fdb_entries >= state.fdb_max:
                raise VxlanError(
                    f"vnet {self.vnet.name}: FDB full ({state.fdb_max} entries, "
                    "net.link.bridge.fdb_max)"
                )
            state.fdb_entries += 1
        vtep = self.vteps.get(str(ip))
        if vtep is None:
            vtep = self.vteps[str(ip)] = Vtep(str(ip), False)
        entry = self.macs[mac] = MacEntry(mac, vtep, self.now, static=True)
        return entry

    def remove_static(self, mac: bytes) -> None:
        """Undo :meth:`add_static` (a MAC learnt since is left alone)."""
        entry = self.macs.get(mac)
        if entry is None or not entry.static:
            return
        del self.macs[mac]
        self.bridges.fdb_entries -= 1
        address = entry.vtep.address
        if not entry.vtep.static and not any(e.vtep.address == address for e in self.macs.values()):
            del self.vteps[address]

    def _age(self, now: float) -> None:
        """The ageing timer: forget MACs silent for the ageing time, rearm for the next."""
        self._sweep = None
        ageing = self.bridges.ageing_time
        oldest: float | None = None
        for mac in list(self.macs):
            entry = self.macs[mac]
            if entry.static:
                continue
            if now - entry.seen >= ageing:
                del self.macs[mac]
                self.bridges.fdb_entries -= 1
                self.stats.aged += 1
            elif oldest is None or entry.seen < oldest:
                oldest = entry.seen
        for address in [a for a, v in self.vteps.items() if not v.static]:
            if not any(e.vtep.address == address for e in self.macs.values()):
                del self.vteps[address]
        if oldest is not None:
            self._sweep = self.vnet.timers.schedule(oldest + ageing, self._age)

    def flush(self) -> None:
        """Forget every learnt MAC and VTEP, stop the ageing timer."""
        self.bridges.fdb_entries -= len(self.macs)
        self.macs.clear()
        for address in [a for a, v in self.vteps.items() if not v.static]:
            del self.vteps[address]
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None

    def close(self) -> None:
        """Undo everything: the MAC table, its timer, the device."""
        self.flush()
        self._held = None
        self.send = _no_device
        self.send_train = _no_device
        self.ifnet.transmit = _no_device

    # -- sending -------------------------------------------------------------------------

    def transmit(self, frame: bytes | bytearray) -> None:
        """The interface's device: encapsulate ``frame`` towards its VTEP(s)."""
        vhdr = vhdr_of(frame)
        if vhdr is not None and vhdr.gso_type & ~GSO_ECN in _TCP_GSO:
            if self.send_super is not None and self._send_super(frame, vhdr):
                return
            train = tso.cut(frame, tcp_offset(frame, vhdr), vhdr.gso_size, self.header)
            self._transmit_train(frame, train)
            return
        frames: list[bytes | bytearray] = [frame] if vhdr is None else list(resolve(frame, vhdr))
        limit = self.underlay_mtu - self.outer
        if len(frames[0]) > limit or len(frames[-1]) > limit:
            self._refuse(frames[0] if len(frames[0]) > limit else frames[-1])
            return
        targets = self._targets(frame)
        size = sum(len(f) for f in frames) + len(frames) * wire.HEADER_LEN
        for address in targets:
            self._count_tx(address, len(frames), size)
            self.send(address, frames)

    def _transmit_train(self, frame: bytes | bytearray, train: tso.Train) -> None:
        """Send a TCP super-frame's datagrams, all in one go, towards its VTEP(s)."""
        if train.size + self.outer - wire.HEADER_LEN > self.underlay_mtu:
            self._refuse(frame)
            return
        for address in self._targets(frame):
            self._count_tx(address, train.datagrams, len(train.data))
            self.send_train(address, train)

    def _send_super(self, frame: bytes | bytearray, vhdr: VirtioHdr) -> bool:
        """Hand a TCP super-frame whole to ``send_super`` for each of its VTEPs; False
        (nothing sent) if its segments would not fit the underlay or the first VTEP's
        send could not take it."""
        send_super = self.send_super
        assert send_super is not None
        headers = headers_len(frame, vhdr)
        if headers + vhdr.gso_size + self.outer > self.underlay_mtu:
            return False
        segments = max(1, -(-(len(frame) - headers) // vhdr.gso_size))
        size = len(frame) + (segments - 1) * headers + segments * wire.HEADER_LEN
        first = True
        for address in self._targets(frame):
            if not send_super(address, frame, vhdr):
                if first:
                    return False
                self.ifnet.counters.tx_errors += 1
                continue
            first = False
            self.stats.whole += 1
            self._count_tx(address, segments, size)
        return True

    def _send_frame_by_frame(self, address: str, train: tso.Train) -> None:
        """Send a super-frame's datagrams through ``send``, each as one frame."""
        data, size, skip = train.data, train.size, wire.HEADER_LEN
        self.send(address, [bytes(data[at + skip : at + size]) for at in range(0, len(data), size)])

    def _targets(self, frame: bytes | bytearray) -> tuple[str, ...]:
        """Return the VTEP(s) ``frame`` goes to: the one its MAC was learnt behind, or
        every flooding target (none: dropped and counted)."""
        entry = None if frame[0] & 1 else self.macs.get(bytes(frame[0:6]))
        if entry is not None and (entry.static or self.now - entry.seen < self.bridges.ageing_time):
            return (entry.vtep.address,)
        self.stats.flooded += 1
        if not self.flood_to:
            self.ifnet.counters.tx_drops["vxlan_no_remote"] += 1
        return self.flood_to

    def _refuse(self, frame: bytes | bytearray) -> None:
        """Drop a frame too big for the underlay, count it, and have the sender told."""
        self.ifnet.counters.tx_drops["vxlan_too_big"] += 1
        tagged = frame[12] == 0x81 and frame[13] == 0
        eth = wire_vlan.TAGGED_HEADER_LEN if tagged else HEADER_LEN
        self.too_big(frame, self.underlay_mtu - self.outer - eth)

    def _count_tx(self, address: str, packets: int, size: int) -> None:
        vtep = self.vteps.get(address)
        if vtep is not None:
            vtep.tx_packets += packets
            vtep.tx_bytes += size

    # -- views ---------------------------------------------------------------------------

    def describe(self) -> dict[str, object]:
        """Return the interface, its VTEPs and their learnt MACs as plain data."""
        ageing = self.bridges.ageing_time
        now = self.now
        by_vtep: dict[str, list[dict[str, object]]] = {a: [] for a in self.vteps}
        for entry in sorted(self.macs.values(), key=lambda e: e.mac):
            if not entry.static and now - entry.seen >= ageing:
                continue
            by_vtep.setdefault(entry.vtep.address, []).append(
                {
                    "mac": mac_to_str(entry.mac),
                    "static": entry.static,
                    "age": None if entry.static else round(max(0.0, now - entry.seen), 1),
                    "expires": (
                        None if entry.static else round(max(0.0, entry.seen + ageing - now), 1)
                    ),
                }
            )
        cfg = self.cfg
        return {
            "name": self.ifnet.name,
            "vni": self.vni,
            "local": str(cfg.local),
            "port": cfg.port,
            "group": None if cfg.group is None else str(cfg.group),
            "learning": cfg.learning,
            "underlay": "host" if cfg.underlay is None else f"vnet {cfg.underlay}",
            "up": self.ifnet.up,
            "mtu": self.ifnet.mtu,
            "underlay_mtu": self.underlay_mtu,
            "macs": len(self.macs),
            "stats": {
                "learned": self.stats.learned,
                "moved": self.stats.moved,
                "aged": self.stats.aged,
                "fdb_full": self.stats.fdb_full,
                "flooded": self.stats.flooded,
                "batches": self.stats.batches,
                "coalesced": self.stats.coalesced,
                "whole": self.stats.whole,
                "tunnel_refused": self.stats.tunnel_refused,
                "received_whole": self.stats.received_whole,
                "received_tunnel": self.stats.received_tunnel,
                "small_sends": self.stats.small_sends,
                "small_datagrams": self.stats.small_datagrams,
            },
            "tunnel_gso": self.tunnel_gso,
            "tunnel_error": self.tunnel_error,
            "tunnel_receive": self.tunnel_receive,
            "drops": {
                **{k: v for k, v in self.ifnet.counters.rx_drops.items() if k.startswith("vxlan")},
                **{k: v for k, v in self.ifnet.counters.tx_drops.items() if k.startswith("vxlan")},
            },
            "vteps": [
                self.vteps[a].describe(by_vtep.get(a, []))
                for a in sorted(self.vteps, key=_address_key)
            ],
        }


def _split(data: bytes, size: int, start: int) -> list[bytes]:
    """Return the datagrams of a GRO read from ``start`` on, ``size`` bytes each but the last."""
    return [data[offset : offset + size] for offset in range(start, len(data), size)]


def _address_key(text: str) -> tuple[int, int]:
    address = ipaddress.ip_address(text)
    return address.version, int(address)


def no_answer(frame: bytes | bytearray, mtu: int) -> None:
    """What a VXLAN interface outside a bridge does about a frame too big: nothing more."""


def _no_device(*args: object) -> None:
    raise OSError("vxlan interface has no device attached")


def of(ifp: Ifnet) -> Vxlan | None:
    """Return the VXLAN interface ``ifp`` is, if it is one."""
    return ifp.vnet.link.vxlans.get(ifp.name) if ifp.kind == "vxlan" else None


def create(ifp: Ifnet, cfg: VxlanConfigured) -> Vxlan:
    """Make ``ifp`` (kind ``vxlan``) a VXLAN interface of its vnet."""
    table = ifp.vnet.link.vxlans
    if ifp.name in table:
        raise VxlanError(f"{ifp.name} is already a vxlan interface")
    for other in table.values():
        if (other.cfg.local, other.cfg.port) == (cfg.local, cfg.port):
            raise VxlanError(
                f"{other.ifnet.name} already uses {cfg.local} port {cfg.port} "
                f"(one VNI per local address and port)"
            )
    vx = Vxlan(ifp, cfg, ifp.vnet.link.bridge)
    table[ifp.name] = vx
    return vx


def destroy(ifp: Ifnet) -> Vxlan | None:
    """Undo :func:`create`: the MAC table and its timer go."""
    vx = ifp.vnet.link.vxlans.pop(ifp.name, None)
    if vx is not None:
        vx.close()
    return vx
