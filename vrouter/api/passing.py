"""Requests answered with a file descriptor: captures, program sockets, TCP.

A handler here returns a :class:`PassFd`: the reply line carries its
socket (SCM_RIGHTS) on the same connection, and once the client has it
:meth:`PassFd.passed` starts what feeds it; if it cannot be passed,
:meth:`PassFd.failed` undoes it.

``capture`` gives the client the reading end of a socket pair whose other
end is fed by a capture on the interface (:mod:`vrouter.link.capture`).  The
server ends a capture when its reader closes or sends anything, when the
interface or its vnet goes away (checked every ``CAPTURE_SWEEP`` seconds),
and at shutdown; the reader then sees end of file.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Protocol

from vrouter.api import sockets, streams
from vrouter.api.host import Host, vnet_of
from vrouter.api.protocol import ApiError
from vrouter.link import capture
from vrouter.link.ifnet import Ifnet
from vrouter.link.state import LinkError

log = logging.getLogger("vrouter.api")


class CaptureHome(Protocol):
    """Where running captures are kept (the control server)."""

    captures: set[CapturePass]

    def sweep_captures_soon(self) -> None:
        """Check the captures' interfaces now and then while any run."""
        ...


class PassFd:
    """A handler's answer whose reply line carries ``sock`` to the client (SCM_RIGHTS)."""

    def __init__(self, result: Any, sock: socket.socket) -> None:
        self.result = result
        self.sock = sock
        """Passed with the reply, then closed here."""

    def passed(self, server: CaptureHome) -> None:
        """Run once the client has the descriptor."""

    def failed(self) -> None:
        """Run when the descriptor could not be passed."""


class _SocketPass(PassFd):
    """A program socket: its descriptor rides with the reply, then the endpoint starts."""

    def __init__(self, result: Any, theirs: socket.socket, endpoint: sockets.Endpoint) -> None:
        super().__init__(result, theirs)
        self.endpoint = endpoint

    def passed(self, server: CaptureHome) -> None:
        self.endpoint.daemon.endpoints.add(self.endpoint)
        self.endpoint.start()

    def failed(self) -> None:
        self.endpoint.close("could not be passed")


def socket_open(host: Host, args: dict[str, Any]) -> PassFd:
    return _SocketPass(*sockets.open_socket(host, args))


class _StreamPass(PassFd):
    """A TCP listener or stream: its descriptor rides with the reply, then it starts."""

    def __init__(
        self,
        result: Any,
        theirs: socket.socket,
        endpoint: streams.StreamEndpoint | streams.ListenEndpoint,
    ) -> None:
        super().__init__(result, theirs)
        self.endpoint = endpoint

    def passed(self, server: CaptureHome) -> None:
        self.endpoint.start()

    def failed(self) -> None:
        if isinstance(self.endpoint, streams.StreamEndpoint):
            self.endpoint.close("could not be passed", abort=True)
        else:
            self.endpoint.close("could not be passed")


def tcp_listen(host: Host, args: dict[str, Any]) -> PassFd:
    return _StreamPass(*streams.listen(host, args))


async def tcp_connect(host: Host, args: dict[str, Any]) -> PassFd:
    return _StreamPass(*await streams.connect(host, args))


class CapturePass(PassFd):
    """A capture on an interface sending to the daemon's end of a socket pair."""

    def __init__(
        self, result: Any, reader: socket.socket, hook: capture.Capture, end: socket.socket
    ) -> None:
        super().__init__(result, reader)
        self.hook = hook
        self.end = end
        self.server: CaptureHome | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        hook.on_close = lambda _hook: self.close("reader closed")

    @property
    def ifnet(self) -> Ifnet:
        """Return the interface captured."""
        return self.hook.ifnet

    def passed(self, server: CaptureHome) -> None:
        self.server = server
        server.captures.add(self)
        # The reader never writes: its end becomes readable when it closes.
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.end.fileno(), self.close, "reader closed")
        self.hook.attach()
        server.sweep_captures_soon()
        log.info(
            "vnet %s: %s: capture started: direction %s, snaplen %d, filter %r",
            self.ifnet.vnet.name,
            self.ifnet.name,
            self.result["direction"],
            self.result["snaplen"],
            self.result["filter"],
        )

    def failed(self) -> None:
        self.end.close()

    def alive(self, host: Host) -> bool:
        """Return whether the interface (and its vnet) still exists and the capture runs."""
        ifp = self.ifnet
        tree = host.tree
        return (
            self.hook.attached
            and tree is not None
            and ifp.vnet.name in tree
            and tree.get(ifp.vnet.name) is ifp.vnet
            and ifp.vnet.link.interfaces.get(ifp.name) is ifp
        )

    def close(self, why: str) -> None:
        """End the capture: detach the capture and close the daemon's end (idempotent)."""
        if self.server is None:
            return
        self.server.captures.discard(self)
        self.server = None
        self.hook.detach()
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(self.end.fileno())
        self.end.close()
        log.info(
            "vnet %s: %s: capture ended (%s): %d frames to the filter, %d dropped",
            self.ifnet.vnet.name,
            self.ifnet.name,
            why,
            self.hook.sent,
            self.hook.dropped,
        )


def capture_start(host: Host, args: dict[str, Any]) -> Any:
    vnet = vnet_of(host, args)
    name = args["interface"]
    try:
        ifp = vnet.link.get(name)
    except LinkError as err:
        raise ApiError(f"vnet {vnet.name}: {err}") from None
    snaplen, direction, expression = args["snaplen"], args["direction"], args["filter"]
    try:
        program = capture.compile_filter(expression, snaplen)
        end, reader = capture.socket_pair(program)
    except capture.FilterError as err:
        raise ApiError(str(err)) from None
    hook = capture.Capture(
        ifp, capture.sender(end), inbound=direction != "out", outbound=direction != "in"
    )
    result = {
        "vnet": vnet.name,
        "interface": ifp.name,
        "snaplen": snaplen,
        "direction": direction,
        "filter": expression,
        "instructions": len(program),
    }
    return CapturePass(result, reader, hook, end)


