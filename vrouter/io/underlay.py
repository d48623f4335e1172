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

Only unicast VTEPs (``remotes``, head-end replication) are served this way;
a multicast ``group`` needs the host underlay.
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
from vrouter.transport.sockets import SocketError

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
        if cfg.group is not None:
            raise UnderlayError("a multicast group needs the host underlay (no 'underlay')")
        if not underlay.has("transport"):
            raise UnderlayError(f"vnet {underlay.name} has no sockets (module transport unloaded)")
        self.family = cfg.local.version
        self.port = cfg.port
        self.sock = sockets.open_socket(underlay, self.family, sockets.UDP)
        self.sock.privileged = True  # the daemon's own: 4789 is not a program's port
        self.sock.deliver = self._deliver
        try:
            sockets.bind(self.sock, str(cfg.local), cfg.port)
        except SocketError as err:
            sockets.close(self.sock)
            raise UnderlayError(f"vnet {underlay.name}: {err}") from None
        mtu = self.underlay_mtu()
        if mtu is not None:
            vx.set_underlay_mtu(mtu)
        vx.send = self.send

    def underlay_mtu(self) -> int | None:
        """Return the smallest MTU of the interfaces the underlay routes the VTEPs through."""
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

    def close(self) -> None:
        """Close the socket; the interface sends nothing more."""
        self.vx.send = closed
        sockets.close(self.sock)

    def describe(self) -> str:
        """Return what carries the outer packets, for views."""
        return f"vnet {self.underlay.name}"


def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed
