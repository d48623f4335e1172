"""SOCKS5 gateways (RFC 1928): unmodified programs open TCP connections from inside a vnet.

A gateway listens on an address of the daemon's machine (``[[daemon.socks]]``)
and serves CONNECT: the connection to the requested address leaves from the
gateway's vnet, through its routes, firewall and TCP; then bytes are relayed
both ways until either side closes.  The relay is the socket service's
stream pump (:class:`~vrouter.api.streams.StreamEndpoint`) working on the
client's own socket, taken out of asyncio after the handshake: bytes go
between the vnet's connection and the client with one system call each way,
no socketpair and no asyncio stream in between.  Authentication: none, or
username/password (RFC 1929) when the config gives them.  The destination
must be an IP address — a domain name in the request is accepted only if it
is an IP literal (``curl --socks5-hostname`` sends those), since vnets have no
resolver of their own.  UDP ASSOCIATE relays the client's datagrams through
UDP sockets of the vnet for as long as the TCP connection stays open
(:mod:`vrouter.api.socks_udp`).  BIND is refused ("command not supported").
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import logging
import os
import socket
import struct
import weakref
from typing import TYPE_CHECKING

from vrouter.api import socks_udp, streams
from vrouter.api.protocol import ApiError

if TYPE_CHECKING:
    from vrouter.api.host import Host
    from vrouter.daemon.config import SocksConfig

log = logging.getLogger("vrouter.socks")

VERSION = 5
NO_AUTH = 0x00
USERPASS = 0x02
NO_ACCEPTABLE = 0xFF
CONNECT = 1
UDP_ASSOCIATE = 3
ATYP_IPV4 = 1
ATYP_DOMAIN = 3
ATYP_IPV6 = 4
SUCCEEDED = 0
GENERAL_FAILURE = 1
NOT_ALLOWED = 2
NETWORK_UNREACHABLE = 3
HOST_UNREACHABLE = 4
CONNECTION_REFUSED = 5
TTL_EXPIRED = 6
COMMAND_NOT_SUPPORTED = 7
ADDRESS_NOT_SUPPORTED = 8
HANDSHAKE_TIMEOUT = 30.0
MAX_ASSOCIATIONS = 256
"""UDP associations one gateway holds at once (each takes descriptors of the daemon's)."""


class Gateway:
    """One SOCKS5 listener feeding one vnet."""

    def __init__(self, daemon: Host, config: SocksConfig) -> None:
        self.daemon = daemon
        self.config = config
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.relays: weakref.WeakSet[streams.StreamEndpoint] = weakref.WeakSet()
        """The relays of established CONNECTs (each forgotten once closed)."""
        self.connections = 0
        self.associations = 0
        """UDP ASSOCIATE requests granted."""
        self.associations_open: set[socks_udp.Association] = set()

    async def start(self) -> None:
        """Listen on the configured address."""
        host, port = self.config.listen
        self.server = await asyncio.start_server(self._client, host, port)
        log.info("vnet %s: SOCKS5 gateway on %s:%d", self.config.vnet, host, port)

    async def close(self) -> None:
        """Stop listening and end the relays."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for task in list(self.tasks):
            task.cancel()
        for relay in list(self.relays):
            relay.close("SOCKS5 gateway closed", abort=True)

    def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target = await asyncio.wait_for(self._handshake(reader, writer), HANDSHAKE_TIMEOUT)
            if target is None:
                return
            command, host, port = target
            if command == UDP_ASSOCIATE:
                await self._associate(reader, writer, host, port)
                return
            family = "inet6" if ":" in host else "inet"
            try:
                vnet, conn = await streams.establish(
                    self.daemon,
                    {"vnet": self.config.vnet, "family": family, "address": host, "port": port},
                )
            except ApiError as err:
                await self._reply(writer, _REPLY_BY_ERRNO.get(err.errno or 0, GENERAL_FAILURE))
                log.info("vnet %s: SOCKS5 CONNECT %s:%d failed: %s", self.config.vnet, host,
                         port, err)
                return
            client: socket.socket | None = None
            try:
                client, early = _take_socket(reader, writer)
                bound = ipaddress.ip_address(conn.local_addr)
                client.sendall(_reply_bytes(SUCCEEDED, bound, conn.local_port))  # fresh: no wait
                relay = streams.StreamEndpoint(self.daemon, vnet, conn, client)
            except BaseException:  # the client went away: so does the vnet's connection
                conn.abort()
                vnet.tcp.flush(self.daemon.driver.now())
                if client is not None:
                    client.close()
                raise
            relay.start()
            if early:  # sent before our reply (optimistic data): it goes first
                relay.send_first(early)
            self.relays.add(relay)
            self.connections += 1
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _associate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        """Serve a UDP ASSOCIATE until the client closes the TCP connection.

        Datagrams are taken from the address of the TCP connection's client;
        its port is learnt from the first one (the ``host``:``port`` of the
        request is not relied on: behind a NAT it is not what arrives).  The
        relay listens on the address the client reached the gateway at.
        """
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        if len(self.associations_open) >= MAX_ASSOCIATIONS:
            await self._reply(writer, GENERAL_FAILURE)
            log.warning(
                "vnet %s: SOCKS5 UDP ASSOCIATE from %s refused: %d associations already",
                self.config.vnet, peer[0], MAX_ASSOCIATIONS,
            )  # fmt: skip
            return
        try:
            association = socks_udp.Association(self.daemon, self.config.vnet, peer[0], local[0])
        except OSError as err:
            await self._reply(writer, GENERAL_FAILURE)
            log.warning("vnet %s: SOCKS5 UDP ASSOCIATE failed: %s", self.config.vnet, err)
            return
        self.associations_open.add(association)
        try:
            address, relay_port = association.bound
            await self._reply(writer, SUCCEEDED, address, relay_port)
            self.associations += 1
            log.info(
                "vnet %s: SOCKS5 UDP association for %s on %s port %d",
                self.config.vnet, peer[0], address, relay_port,
            )  # fmt: skip
            while await reader.read(4096):
                pass  # anything more on the TCP connection is ignored (RFC 1928 7)
        finally:
            association.close()
            self.associations_open.discard(association)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[int, str, int] | None:
        """Negotiate and read the request; return (command, host, port), None if refused."""
        version, count = await reader.readexactly(2)
        if version != VERSION:
            return None
        methods = await reader.readexactly(count)
        want = USERPASS if self.config.username is not None else NO_AUTH
        if want not in methods:
            writer.write(bytes([VERSION, NO_ACCEPTABLE]))
            await writer.drain()
            return None
        writer.write(bytes([VERSION, want]))
        await writer.drain()
        if want == USERPASS and not await self._authenticate(reader, writer):
            return None
        version, command, _, atyp = await reader.readexactly(4)
        if atyp == ATYP_IPV4:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif atyp == ATYP_IPV6:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        elif atyp == ATYP_DOMAIN:
            (length,) = await reader.readexactly(1)
            name = (await reader.readexactly(length)).decode("ascii", "replace")
            try:
                host = str(ipaddress.ip_address(name.strip("[]")))
            except ValueError:
                if command != UDP_ASSOCIATE:
                    await reader.readexactly(2)
                    await self._reply(writer, HOST_UNREACHABLE)
                    log.info("vnet %s: SOCKS5: %r is not an IP address (vnets have no resolver)",
                             self.config.vnet, name)
                    return None
                # The client's expected address: the server may ignore it (RFC 1928 7),
                # and does (PySocks sends a name here by default).
                host = ""
        else:
            await self._reply(writer, ADDRESS_NOT_SUPPORTED)
            return None
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command not in (CONNECT, UDP_ASSOCIATE):
            await self._reply(writer, COMMAND_NOT_SUPPORTED)
            return None
        return command, host, port

    async def _authenticate(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> bool:
        _, ulen = await reader.readexactly(2)
        user = await reader.readexactly(ulen)
        (plen,) = await reader.readexactly(1)
        password = await reader.readexactly(plen)
        good = hmac.compare_digest(user, (self.config.username or "").encode()) and (
            hmac.compare_digest(password, (self.config.password or "").encode())
        )
        writer.write(bytes([1, 0 if good else 1]))
        await writer.drain()
        if not good:
            log.warning("vnet %s: SOCKS5: bad username or password", self.config.vnet)
        return good

    async def _reply(self, writer: asyncio.StreamWriter, code: int,
                     address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
                     port: int = 0) -> None:
        if address is None:
            address = ipaddress.IPv4Address(0)
        writer.write(_reply_bytes(code, address, port))
        await writer.drain()


def _reply_bytes(code: int, address: ipaddress.IPv4Address | ipaddress.IPv6Address,
                 port: int) -> bytes:
    """Return a reply (RFC 1928 6) with the bound address and port."""
    atyp = ATYP_IPV4 if address.version == 4 else ATYP_IPV6
    return bytes([VERSION, code, 0, atyp]) + address.packed + struct.pack("!H", port)


def _take_socket(reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> tuple[socket.socket, bytes]:
    """Take the client's socket out of asyncio: return it (blocking, a duplicate of the
    transport's descriptor, which is closed without a FIN) and the bytes the stream
    reader had already read past the handshake."""
    transport = writer.transport
    transport.pause_reading()  # type: ignore[attr-defined]
    raw = writer.get_extra_info("socket")
    client = socket.socket(raw.family, raw.type, raw.proto, fileno=os.dup(raw.fileno()))
    # No public way to ask a StreamReader what it holds; it is a bytearray.
    early = bytes(reader._buffer)  # type: ignore[attr-defined]
    transport.abort()
    return client, early


_REPLY_BY_ERRNO = {
    errno.ECONNREFUSED: CONNECTION_REFUSED,
    errno.ETIMEDOUT: HOST_UNREACHABLE,
    errno.EHOSTUNREACH: HOST_UNREACHABLE,
    errno.ENETUNREACH: NETWORK_UNREACHABLE,
    errno.EACCES: NOT_ALLOWED,
    errno.EPERM: NOT_ALLOWED,
}
"""RFC 1928 6 reply codes for the errors a CONNECT from the vnet can end with."""
