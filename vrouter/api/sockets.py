"""The socket service: sockets in a vnet, handed to programs as file descriptors.

``socket.open`` (vnet, family, type, protocol) creates the socket in the vnet
and passes the program one end of an AF_UNIX SOCK_SEQPACKET pair (SCM_RIGHTS);
the daemon keeps the other end on its event loop.  One message per datagram
each way, in the format of :mod:`vrouter.transport.message`: the program can
select/epoll/asyncio on its descriptor like on any socket.  When the program
closes it (or dies) the daemon sees end-of-file and releases the socket; when
the vnet goes away, the daemon closes its end and the program sees end-of-file.

A program that does not read loses datagrams (counted), never the daemon's
time: the daemon's end is non-blocking.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
from typing import TYPE_CHECKING, Any

from vrouter.api.host import require, vnet_of
from vrouter.api.protocol import ApiError
from vrouter.core import limits
from vrouter.transport import routesock, sockets
from vrouter.transport.message import DATA, ERROR, MAX_MESSAGE, Message

if TYPE_CHECKING:
    from vrouter.api.host import Host
    from vrouter.core.vnet import Vnet
    from vrouter.daemon.ops import Ops

log = logging.getLogger("vrouter.sockets")

SNDBUF = 1 << 20
"""Bytes queued towards a program before its datagrams are dropped."""

FAMILIES = {"inet": 4, "inet6": 6, 4: 4, 6: 6, "4": 4, "6": 6}
TYPES = {"udp": sockets.UDP, "dgram": sockets.UDP, "raw": sockets.RAW, "route": "route"}


def _pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SNDBUF)
    return ours, theirs


def _sender(end: socket.socket) -> Any:
    def deliver(data: bytes) -> bool:
        try:
            end.send(data)
        except (BlockingIOError, OSError):
            return False
        return True

    return deliver


class Endpoint:
    """The daemon's end of one program socket (UDP, raw or route)."""

    def __init__(
        self, daemon: Host, vnet: Vnet, end: socket.socket, kind: str, sock: sockets.Socket | None
    ) -> None:
        self.daemon = daemon
        self.vnet = vnet
        self.end = end
        self.kind = kind
        self.sock = sock
        self.loop: asyncio.AbstractEventLoop | None = None
        self.deliver = _sender(end)
        self.closed = False
        self.session = routesock.Session(vnet) if kind == "route" else None

    def start(self) -> None:
        """Start serving the program's messages."""
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.end.fileno(), self._readable)
        if self.kind == "route":
            self.vnet.listen(self._event)
        log.info(
            "vnet %s: %s socket opened",
            self.vnet.name,
            self.kind if self.sock is None else f"{self.sock.kind}{self.sock.family}",
        )

    def _readable(self) -> None:
        now = self.daemon.driver.now()
        for _ in range(256):
            try:
                data = self.end.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.close("closed by the program")
                return
            if self.sock is not None:
                sockets.handle(self.sock, data, now)
            else:
                self._route_message(data)

    def _route_message(self, data: bytes) -> None:
        seq: object = None
        try:
            message = Message.parse(data)
            body = message.json()
            seq = body.get("seq") if isinstance(body, dict) else None
            if self.daemon.ops is None:
                raise routesock.RouteSocketError(errno.EAGAIN, "the daemon is starting")
            reply = routesock.request(self.daemon.ops, self.vnet, body, self.session)
            answer = {"type": body["type"], "seq": seq, "ok": True, **reply}
            kind = DATA
        except (routesock.RouteSocketError, ValueError) as err:
            code = getattr(err, "errno", errno.EINVAL)
            answer = {"seq": seq, "ok": False, "errno": code, "error": str(err)}
            answer.update(getattr(err, "fields", {}))
            kind = ERROR
        except Exception as err:  # a bug: logged, and the program still gets its answer
            log.exception("vnet %s: route socket request failed", self.vnet.name)
            answer = {"seq": seq, "ok": False, "errno": errno.EIO}
            answer["error"] = f"internal error: {err}"
            kind = ERROR
        self.deliver(Message(kind, payload=json.dumps(answer).encode()).emit())

    def _event(self, event: dict[str, object]) -> None:
        self.deliver(Message(DATA, payload=json.dumps(event).encode()).emit())

    def vnet_closed(self, sock: sockets.Socket) -> None:
        """The vnet released ``sock`` (it is being destroyed): end the program's socket."""
        if sock is self.sock:
            self.close("its vnet is gone")

    def _end_session(self, session: routesock.Session, ops: Ops) -> None:
        loop = self.loop or asyncio.get_running_loop()
        try:
            session.end(ops, loop.call_later)
        except Exception:  # a bug: logged; the socket still closes
            log.exception("vnet %s: ending a route socket's session failed", self.vnet.name)

    def close(self, why: str) -> None:
        """Release the socket and close the daemon's end (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self.loop is not None:
            self.loop.remove_reader(self.end.fileno())
        if self.kind == "route":
            self.vnet.unlisten(self._event)
        if self.session is not None and self.daemon.ops is not None:
            self._end_session(self.session, self.daemon.ops)
        if self.sock is not None:
            if self.vnet_closed in self.vnet.transport.on_close:
                self.vnet.transport.on_close.remove(self.vnet_closed)
            sockets.close(self.sock)
        self.end.close()
        self.daemon.endpoints.discard(self)
        log.info("vnet %s: %s socket closed: %s", self.vnet.name, self.kind, why)


def in_use(daemon: Host, vnet: Vnet) -> int:
    """Return the program sockets open in ``vnet`` (what its ``sockets`` limit counts):
    UDP, raw and route sockets, TCP listeners and connections."""
    return sum(1 for e in daemon.endpoints if e.vnet is vnet) + sum(
        1 for e in daemon.streams if e.vnet is vnet
    )


def open_socket(daemon: Host, args: dict[str, Any]) -> tuple[Any, socket.socket, Endpoint]:
    """Handle ``socket.open``: create the socket; return (result, the program's end, endpoint).

    The control server passes the program's end with the reply and then
    starts the endpoint (or closes it if the descriptor could not be passed).
    """
    vnet = vnet_of(daemon, args)
    family = FAMILIES.get(args.get("family", "inet"))
    kind = TYPES.get(str(args.get("type", "udp")))
    if family is None:
        raise ApiError("'family' must be inet or inet6")
    if kind is None:
        raise ApiError("'type' must be udp, raw or route")
    proto = args.get("protocol", 0)
    if not isinstance(proto, int) or isinstance(proto, bool):
        raise ApiError("'protocol' must be a number")
    try:
        limits.check_sockets(vnet, in_use(daemon, vnet))
    except limits.LimitError as err:
        raise ApiError(str(err), errno.EMFILE) from None
    sock = None
    if kind != "route":
        require(vnet, "transport")
        try:
            sock = sockets.open_socket(vnet, family, kind, proto)
        except sockets.SocketError as err:
            raise ApiError(f"vnet {vnet.name}: {err}", err.errno) from None
        sock.privileged = bool(args.get("_privileged", True))
    ours, theirs = _pair()
    endpoint = Endpoint(daemon, vnet, ours, kind, sock)
    if sock is not None:
        sock.deliver = endpoint.deliver
        vnet.transport.on_close.append(endpoint.vnet_closed)
    result = {
        "vnet": vnet.name,
        "family": "inet" if family == 4 else "inet6",
        "type": kind,
        "protocol": proto,
    }
    return result, theirs, endpoint


def close_all(daemon: Host) -> None:
    """Close every program socket (shutdown)."""
    for endpoint in list(daemon.endpoints):
        endpoint.close("daemon stopping")
