"""Sockets in any vnet, for any Python program.

::

    from vrouter.client import Client
    blue = Client().socket("blue", socket.AF_INET, socket.SOCK_DGRAM)
    blue.bind(("0.0.0.0", 9999)); data, peer = blue.recvfrom(2048)

A :class:`VSocket` looks like a ``socket.socket`` of its kind: ``bind``,
``connect``, ``sendto``/``send``, ``recvfrom``/``recv``, options, and a
``fileno()`` that select/epoll/asyncio can wait on.  TCP: ``client.listen``
returns a :class:`TcpListener` whose ``accept`` gives each connection as a
plain SOCK_STREAM ``socket.socket`` (makefile, asyncio streams, select all
work); ``client.create_connection`` connects from a vnet.  ``recvmsg_info``
also returns where the datagram arrived (destination address, interface
index, TTL — like IP_PKTINFO).  :class:`RouteSocket` reads and changes a
vnet's routes and streams its route/address/interface events.
:func:`create_datagram_endpoint` is the asyncio form.

The descriptor is one end of a SOCK_SEQPACKET pair whose other end lives in
vrouterd; closing the socket, or the program ending, releases everything
the daemon holds for it.
"""

from __future__ import annotations

import asyncio
import collections
import errno as errno_mod
import ipaddress
import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from vrouter.api.client import DEFAULT_SOCKET, ControlClient
from vrouter.api.protocol import ApiError
from vrouter.transport.message import (
    CTRL,
    DATA,
    ERROR,
    FROM,
    MAX_MESSAGE,
    REPLY,
    TO,
    Message,
    control,
)

Address = tuple[str, int]
_Stream = socket.socket
"""A connection's byte stream (``Client.socket`` shadows the module's name in the class)."""


@dataclass(frozen=True, slots=True)
class Info:
    """Where a datagram arrived: the address it was sent to, the interface, the TTL."""

    dst: str
    dport: int
    ifindex: int
    ttl: int


class VSocket:
    """A UDP or raw IP socket in a vnet."""

    def __init__(self, sock: socket.socket, family: int, kind: str) -> None:
        self._sock = sock
        self.family = family
        self.kind = kind
        self._width = 4 if family == socket.AF_INET else 16
        self._queue: collections.deque[Message] = collections.deque()
        self._timeout: float | None = None

    # -- plumbing ------------------------------------------------------------------

    def fileno(self) -> int:
        """Return the descriptor to wait on (readable: a datagram or an error waits)."""
        return self._sock.fileno()

    def settimeout(self, timeout: float | None) -> None:
        """Bound blocking receives (None: block)."""
        self._timeout = timeout
        self._sock.settimeout(timeout)

    def close(self) -> None:
        """Release the socket (the daemon frees its side at once)."""
        self._sock.close()

    def __enter__(self) -> VSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self) -> Message:
        data = self._sock.recv(MAX_MESSAGE)
        if not data:
            raise ConnectionResetError(errno_mod.ECONNRESET, "vrouterd closed this socket")
        return Message.parse(data)

    def _request(self, body: dict[str, Any]) -> dict[str, Any]:
        self._sock.send(control(CTRL, body))
        while True:
            message = self._receive()
            if message.kind == REPLY:
                reply: dict[str, Any] = message.json()
                if not reply.get("ok"):
                    raise OSError(reply.get("errno", errno_mod.EINVAL), reply.get("error"))
                return reply
            self._queue.append(message)

    def _pack(self, address: str) -> bytes:
        return ipaddress.ip_address(address).packed

    # -- the socket API --------------------------------------------------------------

    def bind(self, address: Address | str) -> None:
        """Bind to (address, port); port 0 picks an ephemeral port."""
        host, port = (address, 0) if isinstance(address, str) else address
        self._request({"op": "bind", "address": host, "port": port})

    def connect(self, address: Address | str) -> None:
        """Fix the peer (datagrams from others are then not received)."""
        host, port = (address, 0) if isinstance(address, str) else address
        self._request({"op": "connect", "address": host, "port": port})

    def getsockname(self) -> Address:
        """Return the bound (address, port)."""
        reply = self._request({"op": "getsockname"})
        return reply["address"], reply["port"]

    def setsockopt(self, name: str, value: object) -> None:
        """Set an option: ttl, multicast_ttl, broadcast, reuse, bindtodevice,
        multicast_if or (raw IPv6) checksum."""
        self._request({"op": "setsockopt", "name": name, "value": value})

    def join_group(self, group: str, interface: str) -> None:
        """Receive multicast ``group`` on ``interface`` (IP_ADD_MEMBERSHIP)."""
        self._request({"op": "join", "group": group, "interface": interface})

    def leave_group(self, group: str, interface: str) -> None:
        """Stop receiving ``group`` on ``interface``."""
        self._request({"op": "leave", "group": group, "interface": interface})

    def sendto(
        self,
        data: bytes,
        address: Address | str,
        *,
        source: str | None = None,
        ifindex: int = 0,
        ttl: int = 0,
    ) -> int:
        """Send ``data`` to (address, port) (raw sockets: the address alone)."""
        host, port = (address, 0) if isinstance(address, str) else address
        flags = TO | (FROM if source else 0)
        message = Message(
            DATA,
            4 if self._width == 4 else 6,
            ttl,
            flags,
            0,
            port,
            ifindex,
            self._pack(source) if source else b"",
            self._pack(host),
            data,
        )
        self._sock.send(message.emit())
        return len(data)

    def send(self, data: bytes) -> int:
        """Send ``data`` to the connected peer."""
        self._sock.send(Message(DATA, payload=data).emit())
        return len(data)

    def recvmsg_info(self, bufsize: int = 65535) -> tuple[bytes, Address, Info]:
        """Receive one datagram: (data, (source, port), where it arrived)."""
        while True:
            message = self._queue.popleft() if self._queue else self._receive()
            if message.kind == ERROR:
                body = message.json()
                raise OSError(body.get("errno", errno_mod.EIO), body.get("error"))
            if message.kind == DATA:
                source = str(ipaddress.ip_address(message.src))
                info = Info(
                    str(ipaddress.ip_address(message.dst)),
                    message.dport,
                    message.ifindex,
                    message.ttl,
                )
                return message.payload[:bufsize], (source, message.sport), info

    def recvfrom(self, bufsize: int = 65535) -> tuple[bytes, Address]:
        """Receive one datagram and its (source, port)."""
        data, source, _ = self.recvmsg_info(bufsize)
        return data, source

    def recv(self, bufsize: int = 65535) -> bytes:
        """Receive one datagram."""
        return self.recvmsg_info(bufsize)[0]


class RouteSocket:
    """A vnet's routing socket: requests and the stream of change events.

    ``source`` names the protocol the routes it adds belong to (``rip``,
    ``bgp`` …; None: the daemon's ``routesock``); it changes and deletes only
    routes of that source.  ``distance`` overrides the source's default
    administrative distance.
    """

    def __init__(
        self, sock: socket.socket, source: str | None = None, distance: int | None = None
    ) -> None:
        self._sock = sock
        self._seq = 0
        self._events: collections.deque[dict[str, Any]] = collections.deque()
        self._source: dict[str, Any] = {"source": source} if source is not None else {}
        if distance is not None:
            self._source["distance"] = distance

    def fileno(self) -> int:
        """Return the descriptor (readable when an event waits)."""
        return self._sock.fileno()

    def close(self) -> None:
        """Release the socket."""
        self._sock.close()

    def _read(self) -> tuple[int, dict[str, Any]]:
        data = self._sock.recv(MAX_MESSAGE)
        if not data:
            raise ConnectionResetError(errno_mod.ECONNRESET, "vrouterd closed this socket")
        message = Message.parse(data)
        body: dict[str, Any] = message.json()
        return message.kind, body

    def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Send one route message and return its reply (events meanwhile are kept)."""
        self._seq += 1
        seq = self._seq
        self._sock.send(
            Message(DATA, payload=json.dumps({"type": type_, "seq": seq, **fields}).encode()).emit()
        )
        while True:
            kind, body = self._read()
            if body.get("seq") == seq:
                if kind == ERROR or not body.get("ok"):
                    raise OSError(body.get("errno", errno_mod.EINVAL), body.get("error"))
                return body
            self._events.append(body)

    def add(
        self,
        prefix: str,
        gateway: str | None = None,
        interface: str | None = None,
        route_type: str = "unicast",
    ) -> dict[str, Any]:
        """Add a route of this socket's source (RTM_ADD); its ``state`` is installed or held."""
        return self._route("RTM_ADD", prefix, gateway, interface, route_type)

    def change(
        self,
        prefix: str,
        gateway: str | None = None,
        interface: str | None = None,
        route_type: str = "unicast",
    ) -> dict[str, Any]:
        """Replace this socket's source's route to ``prefix`` (RTM_CHANGE)."""
        return self._route("RTM_CHANGE", prefix, gateway, interface, route_type)

    def _route(
        self,
        kind: str,
        prefix: str,
        gateway: str | None,
        interface: str | None,
        route_type: str,
    ) -> dict[str, Any]:
        reply = self.request(
            kind,
            prefix=prefix,
            gateway=gateway,
            interface=interface,
            route_type=route_type,
            **self._source,
        )
        return cast("dict[str, Any]", reply["route"])

    def delete(self, prefix: str) -> dict[str, Any]:
        """Delete this socket's source's route to ``prefix`` (RTM_DELETE)."""
        source = {"source": self._source["source"]} if "source" in self._source else {}
        return cast("dict[str, Any]", self.request("RTM_DELETE", prefix=prefix, **source)["route"])

    def get(self, destination: str | None = None, prefix: str | None = None) -> dict[str, Any]:
        """Return the route used for ``destination``, or the route to exactly ``prefix``."""
        fields = {"prefix": prefix} if prefix else {"destination": destination}
        return cast("dict[str, Any]", self.request("RTM_GET", **fields)["route"])

    def interfaces(self) -> list[dict[str, Any]]:
        """Return the vnet's interfaces (RTM_IFINFO)."""
        return cast("list[dict[str, Any]]", self.request("RTM_IFINFO")["interfaces"])

    def addresses(self) -> list[dict[str, Any]]:
        """Return the vnet's addresses."""
        return cast("list[dict[str, Any]]", self.request("RTM_GETADDRS")["addresses"])

    def next_event(self, timeout: float | None = None) -> dict[str, Any]:
        """Return the next change event (RTM_ADD, RTM_DELETE, RTM_NEWADDR, …)."""
        if self._events:
            return self._events.popleft()
        self._sock.settimeout(timeout)
        try:
            while True:
                _, body = self._read()
                if "seq" not in body:
                    return body
        finally:
            self._sock.settimeout(None)

    def pending_events(self) -> list[dict[str, Any]]:
        """Return the events that have arrived, without waiting."""
        found = list(self._events)
        self._events.clear()
        self._sock.setblocking(False)
        try:
            while True:
                _, body = self._read()
                if "seq" not in body:
                    found.append(body)
        except BlockingIOError:
            return found
        finally:
            self._sock.setblocking(True)

    def events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield events as they come (until the timeout passes without one)."""
        while True:
            try:
                yield self.next_event(timeout)
            except TimeoutError:
                return


class TcpListener:
    """A listening TCP socket in a vnet: ``accept`` returns each connection's stream socket."""

    def __init__(self, sock: socket.socket, port: int) -> None:
        self._sock = sock
        self.port = port
        """The port it listens on (the ephemeral one when 0 was asked for)."""

    def fileno(self) -> int:
        """Return the descriptor (readable when a connection waits)."""
        return self._sock.fileno()

    def settimeout(self, timeout: float | None) -> None:
        """Bound ``accept`` (None: block)."""
        self._sock.settimeout(timeout)

    def accept(self) -> tuple[socket.socket, Address]:
        """Return the next connection: a SOCK_STREAM socket and the peer's (address, port)."""
        data, fds, _, _ = socket.recv_fds(self._sock, 4096, 1)
        if not data or not fds:
            for fd in fds:
                os.close(fd)
            raise ConnectionResetError(errno_mod.ECONNRESET, "vrouterd closed this listener")
        peer = json.loads(data)
        return socket.socket(fileno=fds[0]), (peer["address"], peer["port"])

    def close(self) -> None:
        """Stop listening."""
        self._sock.close()

    def __enter__(self) -> TcpListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_KINDS: dict[int, str] = {socket.SOCK_DGRAM: "udp", socket.SOCK_RAW: "raw"}


class Client:
    """A connection to vrouterd that hands out sockets in its vnets."""

    def __init__(self, path: str = DEFAULT_SOCKET) -> None:
        self._control = ControlClient(path)

    def socket(
        self, vnet: str, family: int = socket.AF_INET, type: int = socket.SOCK_DGRAM, proto: int = 0
    ) -> VSocket:
        """Return a new socket in ``vnet`` (SOCK_DGRAM: UDP; SOCK_RAW: IP protocol ``proto``)."""
        kind = _KINDS.get(type)
        if kind is None or family not in (socket.AF_INET, socket.AF_INET6):
            raise OSError(errno_mod.EINVAL, "family AF_INET/AF_INET6, type SOCK_DGRAM/SOCK_RAW")
        name = "inet" if family == socket.AF_INET else "inet6"
        _, fd = self._control.call_fd(
            "socket.open", vnet=vnet, family=name, type=kind, protocol=proto
        )
        return VSocket(socket.socket(fileno=fd), family, kind)

    def listen(
        self,
        vnet: str,
        address: Address | int = ("0.0.0.0", 0),
        family: int | None = None,
        backlog: int = 128,
    ) -> TcpListener:
        """Listen for TCP connections in ``vnet`` on (address, port) or a port."""
        host, port = ("", address) if isinstance(address, int) else address
        if family is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
        result, fd = self._control.call_fd(
            "tcp.listen",
            vnet=vnet,
            family="inet" if family == socket.AF_INET else "inet6",
            address=host,
            port=port,
            backlog=backlog,
        )
        return TcpListener(socket.socket(fileno=fd), result["port"])

    def create_connection(
        self, vnet: str, address: Address, timeout: float = 75.0
    ) -> _Stream:
        """Open a TCP connection from ``vnet``; return its SOCK_STREAM socket once established.

        Raises ConnectionRefusedError, TimeoutError or OSError as a kernel
        socket would (the daemon's reason is in the message).
        """
        host, port = address
        family = "inet6" if ":" in host else "inet"
        try:
            _, fd = self._control.call_fd(
                "tcp.connect", vnet=vnet, family=family, address=host, port=port, timeout=timeout
            )
        except ApiError as err:
            # OSError picks the subclass: ConnectionRefusedError, TimeoutError, ...
            raise OSError(err.errno or errno_mod.EHOSTUNREACH, str(err)) from None
        return socket.socket(fileno=fd)

    def route_socket(
        self, vnet: str, source: str | None = None, distance: int | None = None
    ) -> RouteSocket:
        """Return a routing socket for ``vnet`` whose routes are ``source``'s."""
        _, fd = self._control.call_fd("socket.open", vnet=vnet, type="route")
        return RouteSocket(socket.socket(fileno=fd), source, distance)

    def close(self) -> None:
        """Close the control connection (sockets already handed out stay open)."""
        self._control.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Transport(asyncio.DatagramTransport):
    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: VSocket, protocol: asyncio.DatagramProtocol
    ) -> None:
        super().__init__()
        self._loop = loop
        self._vsock = sock
        self._protocol = protocol
        self._closing = False
        sock._sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data, peer, _ = self._vsock.recvmsg_info()
            except BlockingIOError:
                return
            except OSError as err:
                if isinstance(err, ConnectionResetError):
                    self.close()
                    return
                self._protocol.error_received(err)
                continue
            self._protocol.datagram_received(data, peer)

    def sendto(self, data: Any, addr: Any = None) -> None:
        if addr is None:
            self._vsock.send(bytes(data))
        else:
            self._vsock.sendto(bytes(data), addr)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._vsock.fileno())
        self._vsock.close()
        self._loop.call_soon(self._protocol.connection_lost, None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._vsock if name == "socket" else default


async def create_datagram_endpoint(
    client: Client,
    protocol_factory: Callable[[], asyncio.DatagramProtocol],
    vnet: str,
    family: int = socket.AF_INET,
    local_addr: Address | None = None,
    remote_addr: Address | None = None,
) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
    """Open a UDP endpoint in ``vnet``, like ``loop.create_datagram_endpoint``."""
    loop = asyncio.get_running_loop()
    sock = client.socket(vnet, family, socket.SOCK_DGRAM)
    if local_addr is not None:
        sock.bind(local_addr)
    if remote_addr is not None:
        sock.connect(remote_addr)
    protocol = protocol_factory()
    transport = _Transport(loop, sock, protocol)
    protocol.connection_made(transport)
    return transport, protocol
