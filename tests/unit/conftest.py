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
"""

from __future__ import annotations

import ipaddress
from typing import Any

import dpkt
import pytest

from vrouter.core.clock import FakeClock
from vrouter.core.vnet import Vnet
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
        ifp.transmit = self._transmit

    def _transmit(self, frame: bytes | bytearray) -> None:
        self.frames.append(bytes(frame))

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


@pytest.fixture
def lab() -> Lab:
    """Return an empty lab: fake clock at 1000.0 and a vnet tree with link, route, inet."""
    return Lab()
