"""The device of a VXLAN interface whose underlay is a vnet: a UDP socket of that vnet.

With ``underlay = "VNET"`` the outer packets are not a host socket's: they
are datagrams of a socket the daemon opens in vnet ``VNET`` (the overlay's
own vnet or another one in the same worker), bound to (``local``,
``port``).  They leave through that vnet's routing table, neighbour cache,
output firewall and interfaces, and arrive through its input path like any
datagram to that port; the socket shows in the vnet's ``sockstat``.

The underlay MTU is the MTU of the interface the underlay vnet routes each
VTEP through (the smallest of them); an inner frame that would not fit is
dropped and counted by the interface (``vxlan_too_big``), so the vnet never
fragments an outer packet (RFC 7348 4.3).  A datagram the underlay cannot
send (no route, the address gone, the socket closed with its vnet) is
dropped and counted as ``vxlan_underlay``.

With a multicast ``group`` instead of ``remotes``, as on the host, a second
socket bound to the group and port receives the group's datagrams: it joins
the group on the underlay interface that holds ``local`` (the vnet sends
the IGMPv3 or MLDv2 reports a snooping switch needs), and BUM frames leave
to the group through that interface with TTL 1 (``multicast_ttl``), as
Linux's own vxlan devices send them.  Unicast to learnt VTEPs leaves
through the routing table as without a group.

When the underlay vnet is destroyed, the sockets close with it and every
frame is counted as ``vxlan_underlay``; once a vnet of that name exists
again and holds ``local``, :meth:`VnetUnderlay.reopen` opens them anew
(the daemon tries on each vnet, interface and address it adds).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable

from vrouter.core.vnet import Vnet
from vrouter.io.vxlan import closed
from vrouter.link.vxlan import Vxlan
from vrouter.transport import sockets
from vrouter.transport.message import DATA, TO, Message, MessageError
from vrouter.transport.sockets import Socket, SocketError

log = logging.getLogger("vrouter.vxlan")


class UnderlayError(Exception):
    """The underlay vnet cannot carry this VXLAN interface."""


class VnetUnderlay:
    """A UDP socket of the underlay vnet, carrying one VXLAN interface's outer packets."""

    def __init__(self, vx: Vxlan, underlay: Vnet, clock: Callable[[], float]) -> None:
        self.vx = vx
        self.underlay = underlay
        self._clock = clock
        cfg = vx.cfg
        if not underlay.has("transport"):
            raise UnderlayError(f"vnet {underlay.name} has no sockets (module transport unloaded)")
        self.family = cfg.local.version
        self.port = cfg.port
        self.group_ifname: str | None = None
        """The underlay interface the group is joined on (None: no group)."""
        self.sockets: list[Socket] = []
        try:
            self.sock = self._open(str(cfg.local))
            if cfg.group is not None:
                self._join(str(cfg.group))
        except SocketError as err:
            self._close_sockets()
            raise UnderlayError(f"vnet {underlay.name}: {err}") from None
        except UnderlayError:
            self._close_sockets()
            raise
        mtu = self.underlay_mtu()
        if mtu is not None:
            vx.set_underlay_mtu(mtu)
        vx.send = self.send

    def _open(self, address: str) -> Socket:
        sock = sockets.open_socket(self.underlay, self.family, sockets.UDP)
        self.sockets.append(sock)
        sock.privileged = True  # the daemon's own: 4789 is not a program's port
        sock.deliver = self._deliver
        sockets.bind(sock, address, self.port)
        return sock

    def _join(self, group: str) -> None:
        """Receive ``group``'s datagrams on a socket of their own; send BUM frames there."""
        local = self.vx.cfg.local.packed
        if self.family == 4:
            ifp = self.underlay.inet.local.get(local)
        else:
            addr6 = self.underlay.inet6.local.get(local)
            ifp = None if addr6 is None else addr6.ifnet
        if ifp is None:
            where = f"vnet {self.underlay.name}"
            raise UnderlayError(f"{where}: no interface holds {self.vx.cfg.local}")
        sock = self._open(group)
        sockets.request(sock, {"op": "join", "group": group, "interface": ifp.name})
        self.sock.multicast_if = ifp.name
        self.group_ifname = ifp.name

    def underlay_mtu(self) -> int | None:
        """Return the smallest MTU of the interfaces the underlay routes the VTEPs through."""
        if self.group_ifname is not None:
            return self.underlay.link.interfaces[self.group_ifname].mtu
        fib = self.underlay.route.table(self.family)
        mtus = []
        for address in self.vx.flood_to:
            route = fib.lookup(_packed(address))
            if route is None or route.ifnet is None:
                log.warning(
                    "vnet %s: %s: vnet %s has no route to VTEP %s",
                    self.vx.vnet.name,
                    self.vx.ifnet.name,
                    self.underlay.name,
                    address,
                )
                continue
            mtus.append(route.ifnet.mtu)
        return min(mtus) if mtus else None

    def _deliver(self, data: bytes) -> bool:
        """Take one datagram the underlay's socket received: its payload is VXLAN."""
        try:
            message = Message.parse(data)
        except MessageError:
            return False
        if message.kind == DATA:
            source = str(ipaddress.ip_address(message.src))
            self.vx.input(message.payload, source, self._clock())
        return True

    def send(self, address: str, frames: list[bytes | bytearray]) -> None:
        """Send each frame to VTEP ``address`` as one datagram of the underlay vnet."""
        header = self.vx.header
        dst = _packed(address)
        now = self._clock()
        drops = self.vx.ifnet.counters.tx_drops
        for frame in frames:
            if self.sock.closed:
                drops["vxlan_underlay"] += 1
                continue
            message = Message(DATA, self.family, 0, TO, 0, self.port, 0, b"", dst,
                              header + bytes(frame))  # fmt: skip
            try:
                sockets.send(self.sock, message, now)
            except SocketError:
                drops["vxlan_underlay"] += 1

    def flush(self) -> None:
        """Nothing waits: every datagram left when it was sent."""

    @property
    def closed(self) -> bool:
        """Whether the sockets are gone (with the underlay vnet)."""
        return self.sock.closed

    def reopen(self, underlay: Vnet) -> VnetUnderlay:
        """Return a device on ``underlay`` (a vnet of the name this one's had) in this one's
        place, which is closed; an :class:`UnderlayError` leaves this one as it is."""
        device = VnetUnderlay(self.vx, underlay, self._clock)
        self._close_sockets()
        return device

    def _close_sockets(self) -> None:
        for sock in self.sockets:
            if not sock.closed:
                sockets.close(sock)

    def close(self) -> None:
        """Close the sockets; the interface sends nothing more."""
        self.vx.send = closed
        self._close_sockets()

    def describe(self) -> str:
        """Return what carries the outer packets, for views."""
        return f"vnet {self.underlay.name}"


def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed
