"""TCP for programs: listening sockets and byte streams as file descriptors.

``tcp.listen`` gives the program a SOCK_SEQPACKET descriptor; every
connection the vnet accepts arrives on it as one message (JSON: the peer's
address and port) carrying a SOCK_STREAM descriptor (SCM_RIGHTS).
``tcp.connect`` answers once the handshake is done, with the connection's
SOCK_STREAM descriptor (or the error: refused, timed out, unreachable).
The stream descriptor carries the bytes both ways, so asyncio streams,
``socket.makefile`` and select work as on any TCP socket.

Each stream is one end of an AF_UNIX socketpair; the daemon's end sits on
the event loop.  Bytes from the program go into the connection only as far
as its send buffer has room (the daemon stops reading the program until
TCP says writable); bytes for the program are taken from the connection
only as fast as the program reads them, so a slow reader shrinks the
advertised window instead of growing any buffer.  ``shutdown(SHUT_WR)`` by
the program sends a FIN; the peer's FIN reaches the program as end of file;
closing the descriptor closes the connection (a reset if unread data was
left, as TCP does).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from vrouter.api import sockets
from vrouter.api.host import require, vnet_of
from vrouter.api.protocol import ApiError
from vrouter.core import limits
from vrouter.transport.tcp import (
    Acceptable,
    Closed,
    Connected,
    Connection,
    Event,
    Listener,
    PeerClosed,
    Readable,
    Reset,
    TcpError,
    Writable,
)

if TYPE_CHECKING:
    from vrouter.api.host import Host
    from vrouter.core.vnet import Vnet

log = logging.getLogger("vrouter.streams")

CHUNK = 256 * 1024
"""Bytes moved between a program and its connection at a time (one system call)."""
STREAM_SNDBUF = 1 << 20
"""Send buffer of each end of a stream's socketpair: the program runs ahead of the
daemon by up to this much (the default, about 200 KB, held less than one read)."""
FAMILIES = {"inet": 4, "inet6": 6, 4: 4, 6: 6, "4": 4, "6": 6}


def _dispatch(event: Event) -> None:
    """Hand a vnet's TCP event to the endpoint that owns the connection or listener."""
    owner = event.listener.user if isinstance(event, Acceptable) else event.conn.user
    handle = getattr(owner, "handle", None)
    if handle is not None:
        handle(event)


def _hook(vnet: Vnet) -> None:
    if vnet.tcp.on_event is not _dispatch:
        vnet.tcp.on_event = _dispatch


class StreamEndpoint:
    """The daemon's end of one connection's byte stream."""

    def __init__(self, daemon: Host, vnet: Vnet, conn: Connection, end: socket.socket) -> None:
        self.daemon = daemon
        self.vnet = vnet
        self.conn = conn
        self.end = end
        self.loop = asyncio.get_running_loop()
        self.outgoing = memoryview(b"")
        """Bytes read from the program that the connection's send buffer could not take yet
        (views: what is left of a chunk is never copied)."""
        self.reading = False
        self.writing = False
        self.program_done = False
        """The program shut its side (EOF read from it)."""
        self.eof_sent = False
        self.closed = False
        conn.user = self
        end.setblocking(False)
        daemon.streams.add(self)

    def start(self) -> None:
        """Begin moving bytes."""
        self._read_program(True)
        self._to_program()

    def send_first(self, data: bytes) -> None:
        """Send ``data``, which the program sent before the relay started (a SOCKS
        client's optimistic data), ahead of anything it sends from now on."""
        self.outgoing = memoryview(data)
        self._from_program()

    # -- program -> connection -------------------------------------------------------

    def _read_program(self, on: bool) -> None:
        if self.closed or on == self.reading:
            return
        self.reading = on
        if on:
            self.loop.add_reader(self.end.fileno(), self._from_program)
        else:
            self.loop.remove_reader(self.end.fileno())

    def _from_program(self) -> None:
        conn = self.conn
        moved = False
        for _ in range(16):
            if not self.outgoing:
                try:
                    data = self.end.recv(CHUNK)
                except BlockingIOError:
                    break
                except OSError:  # reset (a SOCKS client's RST): so is the connection
                    self.close("the program's socket failed", abort=True)
                    return
                if not data:
                    self._read_program(False)
                    self.program_done = True
                    with contextlib.suppress(TcpError):  # already closing
                        conn.shutdown_write()
                    moved = True
                    break
                self.outgoing = memoryview(data)
            try:
                sent = conn.send(self.outgoing)
            except TcpError as err:
                self.close(f"send failed: {err}")
                return
            moved = moved or sent > 0
            self.outgoing = self.outgoing[sent:]
            if self.outgoing:
                # A short send: TCP reports Writable when its buffer drains.
                self._read_program(False)
                break
        if moved:
            self.vnet.tcp.flush(self.daemon.driver.now())

    # -- connection -> program -------------------------------------------------------

    def _to_program(self) -> None:
        if self.closed:
            return
        conn = self.conn
        send = self.end.send
        took = False
        while ready := min(conn.readable, CHUNK):
            try:  # straight from the receive buffer into the program's socket
                sent = conn.recv_with(send, CHUNK)
            except BlockingIOError:
                sent = 0
            except OSError:  # the program is gone
                self.close("program closed its descriptor", abort=True)
                return
            took = took or sent > 0
            if sent < ready:  # the program's socket is full: go on when it drains
                if not self.writing:
                    self.writing = True
                    self.loop.add_writer(self.end.fileno(), self._writable)
                break
        if took:
            self.vnet.tcp.flush(self.daemon.driver.now())  # a window update
        if conn.at_eof and not self.eof_sent:
            self.eof_sent = True
            with contextlib.suppress(OSError):  # the program is gone already
                self.end.shutdown(socket.SHUT_WR)

    def _writable(self) -> None:
        self.writing = False
        self.loop.remove_writer(self.end.fileno())
        self._to_program()

    # -- events ------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """React to one TCP event of this connection."""
        if isinstance(event, Readable | PeerClosed):
            self._to_program()
        elif isinstance(event, Writable):
            if not self.program_done:
                if self.outgoing:
                    self._from_program()  # hand over what waited, then read again
                if not self.outgoing and not self.program_done:
                    self._read_program(True)
        elif isinstance(event, Reset):
            self.close(f"reset ({errno.errorcode.get(event.error, event.error)})")
        elif isinstance(event, Closed):
            self._to_program()
            self.close("closed")

    def close(self, why: str, abort: bool = False) -> None:
        """Forget the stream (idempotent); ``abort`` resets the connection too."""
        if self.closed:
            return
        if abort:
            self.conn.abort()
            self.vnet.tcp.flush(self.daemon.driver.now())
        self.closed = True
        if self.reading:
            self.loop.remove_reader(self.end.fileno())
        if self.writing:
            self.loop.remove_writer(self.end.fileno())
        self.end.close()
        self.conn.user = None
        self.daemon.streams.discard(self)
        log.debug("vnet %s: tcp %s: %s", self.vnet.name, self.conn.info().get("state"), why)


def _stream_pair(
    daemon: Host, vnet: Vnet, conn: Connection
) -> tuple[socket.socket, StreamEndpoint]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for end in (ours, theirs):
        # What a writer may queue (the kernel caps it at net.core.wmem_max).
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
    return theirs, StreamEndpoint(daemon, vnet, conn, ours)


def _peer(conn: Connection) -> dict[str, Any]:
    return {
        "address": str(ipaddress.ip_address(conn.remote_addr)),
        "port": conn.remote_port,
        "local_address": str(ipaddress.ip_address(conn.local_addr)),
        "local_port": conn.local_port,
    }


class ListenEndpoint:
    """The daemon's end of a listening socket: accepted connections go out as descriptors."""

    def __init__(self, daemon: Host, vnet: Vnet, listener: Listener, end: socket.socket) -> None:
        self.daemon = daemon
        self.vnet = vnet
        self.listener = listener
        self.end = end
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        listener.user = self
        end.setblocking(False)

    def start(self) -> None:
        """Serve: the program closing its descriptor ends the listener."""
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.end.fileno(), self._readable)
        self.daemon.streams.add(self)
        self._accept_all()

    def _readable(self) -> None:
        try:
            data = self.end.recv(1024)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close("closed by the program")

    def handle(self, event: Event) -> None:
        """Pass each new connection to the program."""
        if isinstance(event, Acceptable) and self.loop is not None:
            self._accept_all()

    def _accept_all(self) -> None:
        tcp = self.vnet.tcp
        while not self.closed:
            conn = tcp.accept(self.listener)
            if conn is None:
                return
            theirs, stream = _stream_pair(self.daemon, self.vnet, conn)
            header = json.dumps(_peer(conn)).encode()
            try:
                socket.send_fds(self.end, [header], [theirs.fileno()])
            except OSError as err:  # the program does not accept fast enough
                log.warning("vnet %s: tcp listener: connection dropped: %s", self.vnet.name, err)
                stream.close("the program's accept queue is full", abort=True)
                continue
            finally:
                theirs.close()
            stream.start()

    def close(self, why: str) -> None:
        """Stop listening (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self.loop is not None:
            self.loop.remove_reader(self.end.fileno())
        self.vnet.tcp.close_listener(self.listener, self.daemon.driver.now())
        self.end.close()
        self.daemon.streams.discard(self)
        log.info("vnet %s: tcp listener on port %d closed: %s", self.vnet.name,
                 self.listener.port, why)


def _address(vnet: Vnet, family: int, text: object) -> bytes:
    if text in (None, "", "*"):
        return b""
    try:
        address = ipaddress.ip_address(str(text))
    except ValueError:
        raise ApiError(f"{text!r} is not an address") from None
    if address.version != family:
        raise ApiError(f"{address} is not IPv{family}")
    return b"" if address.is_unspecified else address.packed


def _family(args: dict[str, Any]) -> int:
    family = FAMILIES.get(args.get("family", "inet"))
    if family is None:
        raise ApiError("'family' must be inet or inet6")
    return family


def listen(daemon: Host, args: dict[str, Any]) -> tuple[Any, socket.socket, ListenEndpoint]:
    """Handle ``tcp.listen``: return (result, the program's end, the endpoint)."""
    vnet = vnet_of(daemon, args)
    require(vnet, "tcp")
    family = _family(args)
    port = args.get("port", 0)
    backlog = args.get("backlog", 128)
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ApiError("'port' must be 0..65535")
    if not isinstance(backlog, int) or not 1 <= backlog <= 65535:
        raise ApiError("'backlog' must be 1..65535")
    if 0 < port < 1024 and not args.get("_privileged", True):
        raise ApiError(f"port {port} needs root or a grant to bind")
    try:
        limits.check_sockets(vnet, sockets.in_use(daemon, vnet))
    except limits.LimitError as err:
        raise ApiError(str(err), errno.EMFILE) from None
    _hook(vnet)
    try:
        listener = vnet.tcp.listen(family, _address(vnet, family, args.get("address")), port,
                                   backlog)
    except TcpError as err:
        raise ApiError(f"vnet {vnet.name}: {err}", err.errno) from None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    endpoint = ListenEndpoint(daemon, vnet, listener, ours)
    log.info("vnet %s: tcp listening on port %d", vnet.name, listener.port)
    return {"vnet": vnet.name, "port": listener.port}, theirs, endpoint


async def connect(
    daemon: Host, args: dict[str, Any]
) -> tuple[Any, socket.socket, StreamEndpoint]:
    """Handle ``tcp.connect``: wait for the handshake; return (result, stream end, endpoint)."""
    vnet, conn = await establish(daemon, args)
    theirs, stream = _stream_pair(daemon, vnet, conn)
    return _peer(conn), theirs, stream


async def establish(daemon: Host, args: dict[str, Any]) -> tuple[Vnet, Connection]:
    """Open a TCP connection from a vnet (``tcp.connect``'s arguments) and wait for the
    handshake; return the vnet and the established connection, which belongs to the
    caller until a :class:`StreamEndpoint` takes it.  Raises ApiError (with the errno)."""
    vnet = vnet_of(daemon, args)
    require(vnet, "tcp")
    family = _family(args)
    port = args.get("port")
    if not isinstance(port, int) or not 0 < port <= 65535:
        raise ApiError("'port' must be 1..65535")
    dst = _address(vnet, family, args.get("address"))
    if not dst:
        raise ApiError("tcp.connect needs an 'address'")
    try:
        limits.check_sockets(vnet, sockets.in_use(daemon, vnet))
    except limits.LimitError as err:
        raise ApiError(str(err), errno.EMFILE) from None
    _hook(vnet)
    now = daemon.driver.now()
    try:
        conn = vnet.tcp.connect(dst, port, now)
    except TcpError as err:
        raise ApiError(f"vnet {vnet.name}: {err}", err.errno) from None
    waiter = _Waiter(asyncio.get_running_loop().create_future())
    conn.user = waiter
    vnet.tcp.flush(now)
    try:
        error = await asyncio.wait_for(waiter.done, timeout=float(args.get("timeout", 75)))
    except TimeoutError:
        conn.abort()
        vnet.tcp.flush(daemon.driver.now())
        raise ApiError(f"connect to port {port} timed out", errno.ETIMEDOUT) from None
    if error:
        name = errno.errorcode.get(error, str(error))
        raise ApiError(f"connect to port {port}: {name}: {os.strerror(error)}", error)
    return vnet, conn


class _Waiter:
    """Stands in for the stream until the handshake ends."""

    def __init__(self, done: asyncio.Future[int]) -> None:
        self.done = done

    def handle(self, event: Event) -> None:
        if self.done.done():
            return
        if isinstance(event, Connected):
            self.done.set_result(0)
        elif isinstance(event, Reset):
            self.done.set_result(event.error)
        elif isinstance(event, Closed):
            self.done.set_result(errno.ECONNABORTED)


def close_all(daemon: Host) -> None:
    """Close every listener and stream (shutdown)."""
    for endpoint in list(daemon.streams):
        endpoint.close("daemon stopping")
