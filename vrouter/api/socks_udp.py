"""SOCKS5 UDP ASSOCIATE (RFC 1928 section 7): a client's datagrams sent from inside a vnet.

After a UDP ASSOCIATE on a gateway's TCP connection, the client sends each
datagram to a relay port on the daemon's machine, prefixed with the SOCKS
UDP header (``RSV RSV FRAG ATYP DST.ADDR DST.PORT``); the relay sends the
payload from a UDP socket of the vnet (one per address family, opened on
first use through the socket service, so the vnet's socket limit and
counters apply) and hands whatever that socket receives back to the client
with the sender in the same header.  The association lasts as long as the
TCP connection.

Only datagrams from the client's address (the TCP connection's peer; its
port too once the first datagram names it) are relayed.  A
datagram that is fragmented (``FRAG`` not 0: fragmentation is not
supported, so it is dropped as the RFC requires), truncated, or addressed
to a name rather than an IP address (vnets have no resolver) is dropped
and counted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from typing import TYPE_CHECKING

from vrouter.api import sockets
from vrouter.api.protocol import ApiError
from vrouter.transport.message import DATA, MAX_MESSAGE, TO, Message, MessageError

if TYPE_CHECKING:
    from vrouter.api.host import Host

log = logging.getLogger("vrouter.socks")

ATYP_IPV4 = 1
ATYP_DOMAIN = 3
ATYP_IPV6 = 4
BATCH = 256
"""Datagrams taken from one descriptor per readable event."""

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse(data: bytes) -> tuple[Address, int, bytes] | None:
    """Return (destination, port, payload) of a client's datagram; None to drop it."""
    if len(data) < 4 or data[0:3] != b"\0\0\0":  # RSV, and FRAG must be 0
        return None
    atyp = data[3]
    if atyp == ATYP_IPV4 and len(data) >= 10:
        address: Address = ipaddress.IPv4Address(data[4:8])
        rest = 8
    elif atyp == ATYP_IPV6 and len(data) >= 22:
        address = ipaddress.IPv6Address(data[4:20])
        rest = 20
    elif atyp == ATYP_DOMAIN and len(data) >= 5 and len(data) >= 7 + data[4]:
        end = 5 + data[4]
        try:
            address = ipaddress.ip_address(data[5:end].decode("ascii").strip("[]"))
        except (UnicodeDecodeError, ValueError):
            return None
        rest = end
    else:
        return None
    (port,) = struct.unpack_from("!H", data, rest)
    return address, port, data[rest + 2 :]


def _plain(host: str) -> Address:
    """Return ``host`` (a socket address, maybe with a scope) as an address, IPv4 if mapped."""
    address = ipaddress.ip_address(host.partition("%")[0])
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def build(source: Address, port: int, payload: bytes) -> bytes:
    """Return ``payload`` from ``source``:``port`` with the SOCKS UDP header, for the client."""
    atyp = ATYP_IPV4 if source.version == 4 else ATYP_IPV6
    return bytes((0, 0, 0, atyp)) + source.packed + struct.pack("!H", port) + payload


class Association:
    """One UDP ASSOCIATE: a relay socket on the daemon's machine, sockets in the vnet."""

    def __init__(self, daemon: Host, vnet: str, client: str, relay_host: str) -> None:
        """Relay for ``client`` (the TCP connection's peer) on ``relay_host`` (its local
        address); an IPv4 client of an IPv6 listener is served over IPv4."""
        self.daemon = daemon
        self.vnet = vnet
        self.client_ip = _plain(client)
        self.client_port = 0
        """0 until the client's first datagram names its port."""
        self.client_addr: tuple[str, int] | tuple[str, int, int, int] | None = None
        """Where answers go (with the scope of a link-local client)."""
        host = _plain(relay_host)
        family = socket.AF_INET6 if host.version == 6 else socket.AF_INET
        self.relay = socket.socket(family, socket.SOCK_DGRAM)
        self.relay.setblocking(False)
        self.relay.bind((relay_host if host.version == 6 else str(host), 0))
        self.ends: dict[int, socket.socket] = {}
        """Our end of the vnet socket of each family (4, 6)."""
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.relay.fileno(), self._from_client)
        self.sent = 0
        self.received = 0
        self.dropped = 0
        self.closed = False

    @property
    def bound(self) -> tuple[Address, int]:
        """Return the relay's address and port (BND.ADDR, BND.PORT of the reply)."""
        host, port = self.relay.getsockname()[:2]
        return ipaddress.ip_address(host), port

    def _from_client(self) -> None:
        for _ in range(BATCH):
            try:
                data, source = self.relay.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError:
                continue  # an ICMP error from the client's side; nothing to relay
            port = source[1]
            if _plain(source[0]) != self.client_ip or (
                self.client_port and port != self.client_port
            ):
                self.dropped += 1
                continue
            self.client_port = port
            self.client_addr = source
            parsed = parse(data)
            if parsed is None:
                self.dropped += 1
                continue
            address, dport, payload = parsed
            try:
                end = self._end(address.version)
                message = Message(
                    DATA,
                    address.version,
                    flags=TO,
                    dport=dport,
                    dst=address.packed,
                    payload=payload,
                )
                end.send(message.emit())
            except (ApiError, OSError) as err:
                self.dropped += 1
                log.debug(
                    "vnet %s: SOCKS5 UDP to %s:%d dropped: %s", self.vnet, address, dport, err
                )
                continue
            self.sent += 1

    def _end(self, family: int) -> socket.socket:
        """Return our end of the vnet's UDP socket of ``family``, opening it the first time."""
        end = self.ends.get(family)
        if end is None:
            args = {"vnet": self.vnet, "family": family, "type": "udp"}
            _, end, endpoint = sockets.open_socket(self.daemon, args)
            end.setblocking(False)
            self.daemon.endpoints.add(endpoint)
            endpoint.start()
            self.ends[family] = end
            self.loop.add_reader(end.fileno(), self._from_vnet, end)
        return end

    def _from_vnet(self, end: socket.socket) -> None:
        for _ in range(BATCH):
            try:
                data = end.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            if not data:  # the vnet went away: a later datagram opens a new socket, or fails
                self.loop.remove_reader(end.fileno())
                for family, mine in list(self.ends.items()):
                    if mine is end:
                        del self.ends[family]
                end.close()
                return
            try:
                message = Message.parse(data)
            except MessageError:
                continue
            if message.kind != DATA or self.client_addr is None:
                continue
            source = ipaddress.ip_address(message.src)
            try:
                self.relay.sendto(build(source, message.sport, message.payload), self.client_addr)
            except OSError:
                self.dropped += 1
                continue
            self.received += 1

    def close(self) -> None:
        """End the association: the relay port and the vnet sockets go."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.relay.fileno())
        self.relay.close()
        for end in self.ends.values():
            self.loop.remove_reader(end.fileno())
            end.close()  # the socket service sees end-of-file and releases the vnet socket
        log.info(
            "vnet %s: SOCKS5 UDP association of %s ended: %d datagrams sent, %d received, "
            "%d dropped",
            self.vnet,
            self.client_ip,
            self.sent,
            self.received,
            self.dropped,
        )
