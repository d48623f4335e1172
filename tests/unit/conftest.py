"""Shared fixtures for the sans-IO stack tests: vnets, test links and simulated hosts.

Tests get everything through the ``lab`` fixture (test modules cannot import
this file).  A :class:`Lab` owns a fake clock and a vnet tree with the
built-in subsystems.  ``lab.host(...)`` gives a vnet interface whose device
is a test channel, with a simulated station on the other end: the station
records every frame the stack transmits and builds its own frames with dpkt,
so what the stack sends is decoded by an independent implementation.
``lab.epair(...)`` joins two vnets; ``lab.settle()`` pumps epairs and lets
stations answer ARP until nothing moves; ``lab.advance(s)`` moves the clock
and runs every vnet's due timers.

For IPv6, ``lab6`` gives a :class:`Lab6`: interfaces built as vrouterd builds
them (``build.add_interface``/``bring_up``: EUI-64 link-local address, DAD,
RAs), dual-stack stations (:class:`Host6`) that answer Neighbor
Solicitations during ``settle``, and an ``advance`` that stops at every
deadline on the way.
"""

from __future__ import annotations

import ipaddress
import math
import random
import struct
from typing import Any

import dpkt
import pytest

from vrouter.core import tables
from vrouter.core.clock import FakeClock
from vrouter.core.vnet import Vnet
from vrouter.daemon import build
from vrouter.daemon.config import InterfaceConfig, RaConfig
from vrouter.inet import ipv4
from vrouter.link import ether
from vrouter.link.epair import Epair
from vrouter.link.ifnet import Ifnet
from vrouter.stack import new_tree

BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6


class Host:
    """A station on a test channel, at the far end of one vnet interface."""

    def __init__(self, ifp: Ifnet, address: str | None, mac: bytes) -> None:
        self.ifp = ifp
        self.addr = ipaddress.IPv4Address(address) if address is not None else None
        self.mac = mac
        self.frames: list[bytes] = []
        """Every frame the stack transmitted on this link, oldest first."""
        self.auto_arp = True
        """Answer the stack's ARP requests for ``addr`` during ``Lab.settle``."""
        self.mld: list[bytes] = []
        """MLD reports the stack sent (kept apart: tests of other protocols count frames)."""
        ifp.transmit = self._transmit

    def _transmit(self, frame: bytes | bytearray) -> None:
        frame = bytes(frame)
        # An MLD report: IPv6, Hop-by-Hop first, then ICMPv6 type 131, 132 or 143.
        is_mld = frame[12:14] == b"\x86\xdd" and frame[20] == 0 and len(frame) > 62
        if is_mld and frame[54] == 58 and frame[62] in (131, 132, 143):
            self.mld.append(frame)
            return
        self.frames.append(frame)

    @property
    def ip(self) -> bytes:
        """Return the station's address as 4 bytes."""
        assert self.addr is not None
        return self.addr.packed

    # What the stack sent.

    def take(self) -> list[dpkt.ethernet.Ethernet]:
        """Return (decoded) and forget every frame sent so far."""
        frames = [dpkt.ethernet.Ethernet(f) for f in self.frames]
        self.frames.clear()
        return frames

    def take_raw(self) -> list[bytes]:
        """Return (undecoded) and forget every frame sent so far."""
        frames = list(self.frames)
        self.frames.clear()
        return frames

    def take_ip(self) -> list[dpkt.ethernet.Ethernet]:
        """Return the IPv4 frames sent so far (forgetting all frames)."""
        return [f for f in self.take() if f.type == dpkt.ethernet.ETH_TYPE_IP]

    def take_arp(self) -> list[dpkt.arp.ARP]:
        """Return the ARP packets sent so far (forgetting all frames)."""
        return [f.data for f in self.take() if f.type == dpkt.ethernet.ETH_TYPE_ARP]

    # What the station sends.

    def send(self, frame: bytes, now: float) -> None:
        """Deliver ``frame`` to the stack as if received on the interface."""
        ether.input(self.ifp, frame, now)

    def packet(
        self,
        dst: str | bytes,
        p: int,
        data: bytes | dpkt.Packet,
        *,
        ttl: int = 64,
        df: bool = False,
        src: bytes | None = None,
        ident: int = 0x1234,
        tos: int = 0,
    ) -> dpkt.ip.IP:
        """Return an IPv4 packet from this station (checksums filled by dpkt)."""
        dst_b = dst if isinstance(dst, bytes) else ipaddress.IPv4Address(dst).packed
        pkt = dpkt.ip.IP(
            src=src if src is not None else self.ip,
            dst=dst_b,
            p=p,
            ttl=ttl,
            id=ident,
            tos=tos,
            data=data,
        )
        pkt.df = int(df)
        return pkt

    def frame(self, packet: dpkt.ip.IP | bytes, dst_mac: bytes | None = None) -> bytes:
        """Return ``packet`` in an Ethernet frame to the stack's interface."""
        eth = dpkt.ethernet.Ethernet(
            dst=dst_mac if dst_mac is not None else self.ifp.mac,
            src=self.mac,
            type=dpkt.ethernet.ETH_TYPE_IP,
            data=bytes(packet),
        )
        return bytes(eth)

    def ping(
        self,
        dst: str,
        ident: int = 0x4242,
        seq: int = 1,
        payload: bytes = b"vrouter ping payload",
        dst_mac: bytes | None = None,
        **kw: Any,
    ) -> bytes:
        """Return an ICMP echo request frame to ``dst``."""
        echo = dpkt.icmp.ICMP(
            type=dpkt.icmp.ICMP_ECHO,
            data=dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=payload),
        )
        return self.frame(self.packet(dst, dpkt.ip.IP_PROTO_ICMP, echo, **kw), dst_mac)

    def udp(
        self,
        dst: str,
        sport: int = 40000,
        dport: int = 33434,
        payload: bytes = b"probe",
        dst_mac: bytes | None = None,
        **kw: Any,
    ) -> bytes:
        """Return a UDP datagram frame to ``dst`` (checksum filled by dpkt)."""
        datagram = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
        datagram.ulen = len(datagram)
        return self.frame(self.packet(dst, dpkt.ip.IP_PROTO_UDP, datagram, **kw), dst_mac)

    def arp(
        self,
        op: int,
        tpa: str | bytes,
        *,
        spa: str | bytes | None = None,
        sha: bytes | None = None,
        tha: bytes = ZERO_MAC,
        dst_mac: bytes = BROADCAST_MAC,
    ) -> bytes:
        """Return an ARP frame from this station."""

        def packed(a: str | bytes) -> bytes:
            return a if isinstance(a, bytes) else ipaddress.IPv4Address(a).packed

        arp = dpkt.arp.ARP(
            op=op,
            sha=sha if sha is not None else self.mac,
            spa=packed(spa) if spa is not None else self.ip,
            tha=tha,
            tpa=packed(tpa),
        )
        eth = dpkt.ethernet.Ethernet(
            dst=dst_mac,
            src=sha if sha is not None else self.mac,
            type=dpkt.ethernet.ETH_TYPE_ARP,
            data=bytes(arp),
        )
        return bytes(eth)

    def learn_router(self, now: float) -> None:
        """ARP for the router's address, so the stack learns this station's MAC."""
        router = self.ifp.addresses[0].ip
        self.send(self.arp(dpkt.arp.ARP_OP_REQUEST, router.packed), now)
        self.take()

    def answer_arp(self, now: float) -> int:
        """Answer (and remove) pending ARP requests for our address; return how many."""
        if not self.auto_arp or self.addr is None:
            return 0
        keep, replies = [], []
        for raw in self.frames:
            eth = dpkt.ethernet.Ethernet(raw)
            if eth.type == dpkt.ethernet.ETH_TYPE_ARP:
                req = eth.data
                if req.op == dpkt.arp.ARP_OP_REQUEST and req.tpa == self.ip and req.spa != self.ip:
                    replies.append(
                        self.arp(
                            dpkt.arp.ARP_OP_REPLY,
                            req.spa,
                            tha=req.sha,
                            dst_mac=req.sha,
                        )
                    )
                    continue
            keep.append(raw)
        self.frames[:] = keep
        for reply in replies:
            self.send(reply, now)
        return len(replies)


class Lab:
    """A fake clock, a vnet tree, and the test links between them."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.tree = new_tree()
        self.epairs: list[Epair] = []
        self.hosts: list[Host] = []
        self._next_mac = 1

    @property
    def now(self) -> float:
        """Return the fake time."""
        return self.clock.now()

    def mac(self) -> bytes:
        """Return a fresh locally administered unicast MAC."""
        n = self._next_mac
        self._next_mac += 1
        return bytes([0x02, 0x00, 0x5E, 0x00, n >> 8, n & 0xFF])

    def vnet(self, name: str) -> Vnet:
        """Create vnet ``name``."""
        return self.tree.create(name)

    def iface(
        self,
        vnet: Vnet,
        name: str,
        address: str | None = None,
        mtu: int = 1500,
        up: bool = True,
    ) -> Ifnet:
        """Add an interface (no device yet) with an optional address."""
        ifp = Ifnet(vnet, name, "test", self.mac(), mtu)
        vnet.link.add(ifp)
        if address is not None:
            ipv4.add_address(vnet, ifp, ipaddress.IPv4Interface(address), self.now)
        if up:
            ipv4.set_up(vnet, ifp, self.now)
        return ifp

    def host(
        self,
        vnet: Vnet,
        name: str,
        router_address: str | None,
        host_address: str | None,
        *,
        mtu: int = 1500,
        up: bool = True,
    ) -> Host:
        """Add an interface to ``vnet`` whose link is a test channel to a new station."""
        ifp = self.iface(vnet, name, router_address, mtu, up=False)
        host = Host(ifp, host_address, self.mac())
        self.hosts.append(host)
        if up:
            ipv4.set_up(vnet, ifp, self.now)
        return host

    def epair(
        self, a: Vnet, a_name: str, a_address: str, b: Vnet, b_name: str, b_address: str
    ) -> Epair:
        """Join ``a`` and ``b`` with an epair, address both ends and bring them up."""
        ifa = self.iface(a, a_name, a_address, up=False)
        ifb = self.iface(b, b_name, b_address, up=False)
        pair = Epair(ifa, ifb)
        pair.queue_time = 3600.0  # the lab's clock is fake; real time must not age frames
        self.epairs.append(pair)
        ipv4.set_up(a, ifa, self.now)
        ipv4.set_up(b, ifb, self.now)
        self.settle()
        return pair

    def settle(self, now: float | None = None) -> None:
        """Pump every epair and let stations answer ARP until nothing moves."""
        t = self.now if now is None else now
        for _ in range(1000):
            moved = sum(pair.pump(t) for pair in self.epairs)
            moved += sum(host.answer_arp(t) for host in self.hosts)
            if not moved:
                return
        raise AssertionError("the lab network did not settle (forwarding loop?)")

    def run_timers(self) -> int:
        """Run every vnet's due timers at the current time; return how many ran."""
        return sum(vnet.timers.run(self.now) for vnet in self.tree)

    def advance(self, seconds: float) -> float:
        """Move the clock, run due timers, settle; return the new time."""
        self.clock.advance(seconds)
        self.run_timers()
        self.settle()
        return self.now


@pytest.fixture(autouse=True)
def shared_tables_intact() -> Any:
    """Fail a test that wrote a dispatch table shared by vnets in place."""
    yield
    assert tables.intact(), "a shared dispatch table was written in place (use tables.put)"


@pytest.fixture
def lab() -> Lab:
    """Return an empty lab: fake clock at 1000.0 and a vnet tree with link, route, inet."""
    return Lab()


# --- IPv6: dual-stack stations that answer Neighbor Discovery ------------------------

ETH_IP6 = dpkt.ethernet.ETH_TYPE_IP6
NH_ICMP6 = 58
UNSPECIFIED6 = bytes(16)
ND_TYPES = frozenset({133, 134, 135, 136, 137})
"""ICMPv6 types of Neighbor Discovery (RFC 4861): RS, RA, NS, NA, Redirect."""


def packed6(address: str | bytes) -> bytes:
    """Return ``address`` as 16 bytes."""
    return address if isinstance(address, bytes) else ipaddress.IPv6Address(address).packed


def link_local_of(mac: bytes) -> bytes:
    """Return fe80::/64 with the modified EUI-64 identifier of ``mac`` (RFC 4291 appendix A)."""
    iid = bytes([mac[0] ^ 0x02, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]])
    return bytes.fromhex("fe80000000000000") + iid


def solicited_node_of(address: bytes) -> bytes:
    """Return the solicited-node group of ``address`` (ff02::1:ffXX:XXXX, RFC 4291 2.7.1)."""
    return ipaddress.IPv6Address("ff02::1:ff00:0").packed[:13] + address[13:]


def multicast_mac_of(group: bytes) -> bytes:
    """Return the Ethernet address of an IPv6 group (33:33 + low 32 bits, RFC 2464 7)."""
    return b"\x33\x33" + group[12:]


def upper_checksum(src: bytes, dst: bytes, proto: int, data: bytes) -> int:
    """Return the Internet checksum of ``data`` over the IPv6 pseudo-header (RFC 8200 8.1).

    With the checksum field zeroed this is the value to put there; over a
    message whose checksum is right it is 0.
    """
    pseudo = src + dst + struct.pack("!I3xB", len(data), proto)
    return int(dpkt.in_cksum(pseudo + data))


def icmp6_message(type_: int, code: int, body: bytes, src: bytes, dst: bytes) -> bytes:
    """Return an ICMPv6 message (``body`` follows type/code/checksum), checksum filled."""
    raw = bytes(dpkt.icmp6.ICMP6(type=type_, code=code, sum=0, data=body))
    csum = upper_checksum(src, dst, NH_ICMP6, raw)
    return raw[:2] + struct.pack("!H", csum) + raw[4:]


def nd_option(type_: int, value: bytes) -> bytes:
    """Return one ND option (type, length in 8-byte units, value padded)."""
    raw = bytes([type_, 0]) + value
    raw += bytes(-len(raw) % 8)
    return bytes([type_, len(raw) // 8]) + raw[2:]


def nd_options(data: bytes) -> dict[int, list[bytes]]:
    """Return the options in ``data`` by type (values without type and length)."""
    out: dict[int, list[bytes]] = {}
    i = 0
    while i < len(data):
        assert i + 2 <= len(data), "truncated ND option"
        length = data[i + 1] * 8
        assert length > 0, "ND option of length 0"
        assert i + length <= len(data), "ND option runs past the message"
        out.setdefault(data[i], []).append(data[i + 2 : i + length])
        i += length
    return out


class Host6(Host):
    """A dual-stack station: :class:`Host` plus an IPv6 address and its link-local one.

    During ``Lab6.settle`` it answers Neighbor Solicitations for its
    addresses with a solicited, override NA carrying its MAC, the way
    ``Host`` answers ARP (``auto_nd`` turns that off).
    """

    def __init__(self, ifp: Ifnet, address: str | None, address6: str | None, mac: bytes) -> None:
        super().__init__(ifp, address, mac)
        self.addr6 = ipaddress.IPv6Address(address6) if address6 is not None else None
        self.lla = link_local_of(mac)
        """The station's link-local address (16 bytes)."""
        self.auto_nd = True
        """Answer the stack's Neighbor Solicitations during ``Lab6.settle``."""
        self.solicited: list[dpkt.ip6.IP6] = []
        """Every NS this station answered automatically, oldest first."""

    @property
    def ip6(self) -> bytes:
        """Return the station's global IPv6 address as 16 bytes."""
        assert self.addr6 is not None
        return self.addr6.packed

    @property
    def router_lla(self) -> bytes:
        """Return the link-local address of the stack's interface (16 bytes)."""
        return next(a.ip.packed for a in self.ifp.addresses6 if a.is_link_local)

    @property
    def router6(self) -> bytes:
        """Return the first global IPv6 address of the stack's interface (16 bytes)."""
        return next(a.ip.packed for a in self.ifp.addresses6 if not a.is_link_local)

    # What the stack sent.

    def take_ip6(self, nd: bool = False) -> list[dpkt.ethernet.Ethernet]:
        """Return the IPv6 frames sent so far, ND messages only if ``nd`` (forgetting all)."""
        out = []
        for frame in self.take():
            if frame.type != ETH_IP6:
                continue
            packet = frame.data
            is_nd = (
                packet.nxt == NH_ICMP6
                and isinstance(packet.data, dpkt.icmp6.ICMP6)
                and packet.data.type in ND_TYPES
            )
            if nd or not is_nd:
                out.append(frame)
        return out

    def take_nd(self) -> list[dpkt.ethernet.Ethernet]:
        """Return the ND frames sent so far (forgetting all frames)."""
        return [
            f
            for f in self.take_ip6(nd=True)
            if f.data.nxt == NH_ICMP6 and f.data.data.type in ND_TYPES
        ]

    # What the station sends.

    def packet6(
        self,
        dst: str | bytes,
        nxt: int,
        payload: bytes,
        *,
        hlim: int = 64,
        src: str | bytes | None = None,
        fc: int = 0,
        flow: int = 0,
    ) -> bytes:
        """Return an IPv6 packet: the fixed header (built by dpkt) and ``payload`` as is."""
        packet = dpkt.ip6.IP6(
            src=packed6(src) if src is not None else self.ip6,
            dst=packed6(dst),
            nxt=nxt,
            hlim=hlim,
            plen=len(payload),
            data=payload,
        )
        packet.fc = fc
        packet.flow = flow
        return bytes(packet)

    def frame6(self, packet: bytes, dst_mac: bytes | None = None) -> bytes:
        """Return ``packet`` in an Ethernet frame to the stack's interface."""
        eth = dpkt.ethernet.Ethernet(
            dst=dst_mac if dst_mac is not None else self.ifp.mac,
            src=self.mac,
            type=ETH_IP6,
            data=packet,
        )
        return bytes(eth)

    def icmp6(
        self,
        dst: str | bytes,
        type_: int,
        code: int,
        body: bytes,
        *,
        hlim: int = 64,
        src: str | bytes | None = None,
        dst_mac: bytes | None = None,
    ) -> bytes:
        """Return a frame with an ICMPv6 message (checksum filled) to ``dst``."""
        s = packed6(src) if src is not None else self.ip6
        d = packed6(dst)
        message = icmp6_message(type_, code, body, s, d)
        return self.frame6(self.packet6(d, NH_ICMP6, message, hlim=hlim, src=s), dst_mac)

    def ping6(
        self,
        dst: str | bytes,
        ident: int = 0x4242,
        seq: int = 1,
        payload: bytes = b"vrouter ping6 payload",
        **kw: Any,
    ) -> bytes:
        """Return an ICMPv6 echo request frame to ``dst``."""
        body = struct.pack("!HH", ident, seq) + payload
        return self.icmp6(dst, dpkt.icmp6.ICMP6_ECHO_REQUEST, 0, body, **kw)

    def udp6(
        self,
        dst: str | bytes,
        sport: int = 40000,
        dport: int = 33434,
        payload: bytes = b"probe",
        *,
        hlim: int = 64,
        src: str | bytes | None = None,
        dst_mac: bytes | None = None,
        fc: int = 0,
        flow: int = 0,
    ) -> bytes:
        """Return a UDP datagram frame to ``dst`` (checksum filled)."""
        s = packed6(src) if src is not None else self.ip6
        d = packed6(dst)
        datagram = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
        datagram[6:8] = struct.pack("!H", upper_checksum(s, d, 17, bytes(datagram)) or 0xFFFF)
        packet = self.packet6(d, 17, bytes(datagram), hlim=hlim, src=s, fc=fc, flow=flow)
        return self.frame6(packet, dst_mac)

    def nd(
        self,
        type_: int,
        body: bytes,
        *,
        src: str | bytes,
        dst: str | bytes,
        hlim: int = 255,
        code: int = 0,
        dst_mac: bytes | None = None,
    ) -> bytes:
        """Return an ND frame; a multicast ``dst`` goes to its group MAC unless told."""
        d = packed6(dst)
        if dst_mac is None and d[0] == 0xFF:
            dst_mac = multicast_mac_of(d)
        return self.icmp6(d, type_, code, body, hlim=hlim, src=src, dst_mac=dst_mac)

    def ns(
        self,
        target: str | bytes,
        *,
        src: str | bytes | None = None,
        dst: str | bytes | None = None,
        slla: bytes | bool | None = True,
        **kw: Any,
    ) -> bytes:
        """Return an NS for ``target``: from our link-local to its solicited-node group.

        ``slla`` True sends our MAC in a Source Link-Layer Address option,
        bytes send those, False/None none.
        """
        t = packed6(target)
        body = bytes(4) + t
        if slla is True:
            body += nd_option(1, self.mac)
        elif isinstance(slla, bytes):
            body += nd_option(1, slla)
        s = packed6(src) if src is not None else self.lla
        d = packed6(dst) if dst is not None else solicited_node_of(t)
        return self.nd(dpkt.icmp6.ND_NEIGHBOR_SOLICIT, body, src=s, dst=d, **kw)

    def na(
        self,
        target: str | bytes,
        *,
        dst: str | bytes,
        solicited: bool = True,
        override: bool = True,
        router: bool = False,
        tlla: bytes | bool | None = True,
        src: str | bytes | None = None,
        **kw: Any,
    ) -> bytes:
        """Return an NA for ``target`` (from ``target`` itself unless ``src``)."""
        t = packed6(target)
        flags = (0x80000000 if router else 0) | (0x40000000 if solicited else 0)
        flags |= 0x20000000 if override else 0
        body = struct.pack("!I", flags) + t
        if tlla is True:
            body += nd_option(2, self.mac)
        elif isinstance(tlla, bytes):
            body += nd_option(2, tlla)
        s = packed6(src) if src is not None else t
        return self.nd(dpkt.icmp6.ND_NEIGHBOR_ADVERT, body, src=s, dst=dst, **kw)

    def rs(
        self,
        *,
        src: str | bytes | None = None,
        dst: str | bytes = "ff02::2",
        slla: bytes | bool | None = True,
        **kw: Any,
    ) -> bytes:
        """Return a Router Solicitation from our link-local to all-routers."""
        body = bytes(4)
        if slla is True:
            body += nd_option(1, self.mac)
        elif isinstance(slla, bytes):
            body += nd_option(1, slla)
        s = packed6(src) if src is not None else self.lla
        return self.nd(dpkt.icmp6.ND_ROUTER_SOLICIT, body, src=s, dst=dst, **kw)

    def learn_router6(self, now: float) -> None:
        """Solicit the router's global address, so the stack learns this station's MAC."""
        self.send(self.ns(self.router6), now)
        self.take()

    def answer_ns(self, now: float) -> int:
        """Answer (and remove) pending NSs for our addresses; return how many."""
        if not self.auto_nd:
            return 0
        mine = {self.lla} if self.addr6 is None else {self.lla, self.ip6}
        keep, replies = [], []
        for raw in self.frames:
            eth = dpkt.ethernet.Ethernet(raw)
            if eth.type == ETH_IP6:
                packet = eth.data
                message = packet.data
                if (
                    packet.nxt == NH_ICMP6
                    and isinstance(message, dpkt.icmp6.ICMP6)
                    and message.type == dpkt.icmp6.ND_NEIGHBOR_SOLICIT
                    and packet.src != UNSPECIFIED6
                    and bytes(message.data)[4:20] in mine
                ):
                    body = bytes(message.data)
                    slla = nd_options(body[20:]).get(1, [eth.src])[0][:6]
                    self.solicited.append(packet)
                    replies.append(self.na(body[4:20], dst=packet.src, dst_mac=slla))
                    continue
            keep.append(raw)
        self.frames[:] = keep
        for reply in replies:
            self.send(reply, now)
        return len(replies)


class Lab6(Lab):
    """A :class:`Lab` whose interfaces are built like vrouterd's, with IPv6.

    Interfaces are made by ``vrouter.daemon.build.add_interface`` (EUI-64
    link-local address included) and brought up by ``build.bring_up``
    (DAD starts, RAs if ``ra`` is given).  Each vnet's ND random generator
    is seeded with its name, so ReachableTime and RA timing repeat.
    """

    def __init__(self) -> None:
        super().__init__()
        self.configs: dict[tuple[str, str], InterfaceConfig] = {}

    def vnet(self, name: str) -> Vnet:
        """Create vnet ``name`` with a seeded ND random generator."""
        vnet = super().vnet(name)
        vnet.inet6.rng = random.Random(name)
        vnet.inet6.nd.draw_reachable_time(vnet.inet6.rng)
        return vnet

    def iface6(
        self,
        vnet: Vnet,
        name: str,
        addresses: tuple[str, ...] = (),
        *,
        mtu: int = 1500,
        ra: RaConfig | None = None,
    ) -> Ifnet:
        """Add an interface (down, no device yet) as vrouterd builds it from a config."""
        icfg = InterfaceConfig(
            name=name,
            type="test",
            addresses=tuple(ipaddress.ip_interface(a) for a in addresses),
            mtu=mtu,
            mac=self.mac(),
            up=True,
            host=None,
            peer=None,
            ra=ra,
        )
        self.configs[(vnet.name, name)] = icfg
        return build.add_interface(vnet, icfg, self.now)

    def bring_up(self, ifp: Ifnet) -> None:
        """Bring ``ifp`` up as vrouterd does: IPv4, IPv6 (DAD) and RAs."""
        build.bring_up(ifp.vnet, [self.configs[(ifp.vnet.name, ifp.name)]], self.now)

    def host6(
        self,
        vnet: Vnet,
        name: str,
        router_addresses: tuple[str, ...],
        address6: str | None,
        address: str | None = None,
        *,
        mtu: int = 1500,
        ra: RaConfig | None = None,
        up: bool = True,
    ) -> Host6:
        """Add an interface whose link is a test channel to a new dual-stack station."""
        ifp = self.iface6(vnet, name, router_addresses, mtu=mtu, ra=ra)
        host = Host6(ifp, address, address6, self.mac())
        self.hosts.append(host)
        if up:
            self.bring_up(ifp)
        return host

    def epair6(
        self,
        a: Vnet,
        a_name: str,
        a_addresses: tuple[str, ...],
        b: Vnet,
        b_name: str,
        b_addresses: tuple[str, ...],
    ) -> Epair:
        """Join ``a`` and ``b`` with an epair, address both ends and bring them up."""
        ifa = self.iface6(a, a_name, a_addresses)
        ifb = self.iface6(b, b_name, b_addresses)
        pair = Epair(ifa, ifb)
        pair.queue_time = 3600.0  # the lab's clock is fake; real time must not age frames
        self.epairs.append(pair)
        self.bring_up(ifa)
        self.bring_up(ifb)
        self.settle()
        return pair

    def tentative(self) -> list[str]:
        """Return every address still tentative, as ``vnet:interface:address``."""
        return [
            f"{vnet.name}:{a.ifnet.name}:{ipaddress.IPv6Address(a.address)}"
            for vnet in self.tree
            for a in [*vnet.inet6.linklocal.values(), *vnet.inet6.local.values()]
            if a.state == "tentative"
        ]

    def finish_dad(self) -> float:
        """Advance RetransTimer by RetransTimer until no address is tentative."""
        for _ in range(100):
            if not self.tentative():
                return self.now
            self.advance(min(vnet.inet6.nd.retrans_timer for vnet in self.tree))
        raise AssertionError(f"DAD never finished: {self.tentative()}")

    def advance(self, seconds: float) -> float:
        """Move the clock to ``seconds`` from now, stopping at every deadline on the way.

        Unlike :meth:`Lab.advance`, a long step behaves like a driver that
        wakes at each deadline: a timer that re-arms itself RetransTimer after
        it ran fires again within the step, and stations answer in between.
        """
        end = self.now + seconds
        while True:
            pending = [d for v in self.tree if (d := v.timers.next_deadline()) is not None]
            deadline = min(pending, default=None)
            if deadline is None or deadline > end:
                break
            while self.now < deadline:
                self.clock.advance(max(deadline - self.now, math.ulp(self.now)))
            self.run_timers()
            self.settle()
        if end > self.now:
            self.clock.advance(end - self.now)
        self.run_timers()
        self.settle()
        return self.now

    def settle(self, now: float | None = None) -> None:
        """Pump every epair, let stations answer ARP and ND, until nothing moves."""
        t = self.now if now is None else now
        for _ in range(1000):
            moved = sum(pair.pump(t) for pair in self.epairs)
            moved += sum(host.answer_arp(t) for host in self.hosts)
            moved += sum(host.answer_ns(t) for host in self.hosts if isinstance(host, Host6))
            if not moved:
                return
        raise AssertionError("the lab network did not settle (forwarding loop?)")


@pytest.fixture
def lab6() -> Lab6:
    """Return an empty dual-stack lab (fake clock at 1000.0) with ND-answering stations."""
    return Lab6()
