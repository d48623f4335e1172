"""The front's connections to its workers: one per purpose, and one per client.

A :class:`Channel` is one connection to a worker's control socket, one
request at a time; a :class:`WorkerProcess` is the front's handle on a
worker (its process and its channels for the front's own requests:
reloads, metrics); a :class:`Session` is one client's connection to the
front, with a connection of its own to each worker it reaches, so a
descriptor a worker passes (a capture, a socket) goes on to that client
as it came.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import TYPE_CHECKING, Any

from vrouter.api.protocol import MAX_REPLY, ApiError, encode, forwarded
from vrouter.core.perms import ROOT, Cred

if TYPE_CHECKING:
    from vrouter.daemon.front import Front

RELOAD_TIMEOUT = 120.0
"""Seconds a worker has to check or apply its share of a reload."""


class Channel:
    """One connection to a worker's control socket, one request at a time."""

    def __init__(self, sock: socket.socket, limit: int = MAX_REPLY) -> None:
        self.sock = sock
        self.limit = limit
        """Longest reply line taken (a metrics scrape's is longer than any request's)."""
        self._buffer = bytearray()
        self.lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str, limit: int = MAX_REPLY) -> Channel:
        """Connect to the worker's socket at ``path`` without blocking the loop."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, path)
        except OSError:
            sock.close()
            raise
        return cls(sock, limit)

    async def call(self, line: bytes) -> tuple[bytes, list[int]]:
        """Send a request line; return the reply line and any descriptors that came with it."""
        async with self.lock:
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(self.sock, line)
            fds: list[int] = []
            try:
                searched = 0  # bytes of the buffer known to hold no newline
                while (end := self._buffer.find(b"\n", searched)) < 0:
                    searched = len(self._buffer)
                    if searched > self.limit:
                        raise ConnectionError("the worker sent an overlong reply")
                    await self._readable(loop)
                    try:
                        data, got, _, _ = socket.recv_fds(self.sock, 65536, 4)
                    except BlockingIOError:
                        continue
                    fds.extend(got)
                    if not data:
                        raise ConnectionError("the worker closed the connection")
                    self._buffer += data
            except BaseException:
                for fd in fds:
                    os.close(fd)
                raise
            reply = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            return reply + b"\n", fds

    async def _readable(self, loop: asyncio.AbstractEventLoop) -> None:
        ready: asyncio.Future[None] = loop.create_future()
        fd = self.sock.fileno()
        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            loop.remove_reader(fd)

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


class WorkerProcess:
    """One worker as the front sees it."""

    def __init__(self, index: int, control: str) -> None:
        self.index = index
        self.control = control
        self.process: asyncio.subprocess.Process | None = None
        self.channels: dict[str, Channel] = {}
        """The front's own connections, one per purpose (``admin``, ``metrics``), so a
        slow scrape never stands in a reload's way, nor a timed-out one breaks it."""

    @property
    def pid(self) -> int | None:
        """Return the worker's pid while it runs."""
        process = self.process
        return process.pid if process is not None and process.returncode is None else None

    async def ask(
        self,
        op: str,
        args: dict[str, Any],
        *,
        purpose: str = "admin",
        timeout: float = RELOAD_TIMEOUT,
        limit: int = MAX_REPLY,
    ) -> Any:
        """Make a request of the worker as the daemon itself; return its result.

        Raise ApiError if it refuses, or does not answer within ``timeout``
        seconds (the connection for ``purpose`` is then closed and reopened
        next time).
        """
        try:
            channel = self.channels.get(purpose)
            if channel is None:
                channel = self.channels[purpose] = await Channel.open(self.control, limit)
            line, fds = await asyncio.wait_for(channel.call(forwarded(op, args, ROOT)), timeout)
        except (OSError, TimeoutError) as err:
            self.forget(purpose)
            why = "no answer in time" if isinstance(err, TimeoutError) else str(err)
            raise ApiError(f"worker {self.index} is not answering: {why}") from None
        for fd in fds:
            os.close(fd)
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ApiError.from_reply(reply)
        return reply.get("result")

    def forget(self, purpose: str | None = None) -> None:
        """Close the front's connection for ``purpose`` (None: all of them)."""
        for key in [purpose] if purpose is not None else list(self.channels):
            channel = self.channels.pop(key, None)
            if channel is not None:
                channel.close()


Answer = tuple[bytes, int | None]
"""A reply line and the descriptor riding with it, if any."""


class Session:
    """One client connection: its own connection to each worker it reaches."""

    def __init__(self, front: Front, cred: Cred) -> None:
        self.front = front
        self.cred = cred
        self.channels: dict[int, Channel] = {}

    async def forward(self, index: int, op: str, args: dict[str, Any]) -> Answer:
        """Pass the request to worker ``index``; return its reply as it came."""
        worker = self.front.workers[index]
        try:
            channel = self.channels.get(index)
            if channel is None:
                channel = self.channels[index] = await Channel.open(worker.control)
            line, fds = await channel.call(forwarded(op, args, self.cred))
        except OSError as err:
            self.drop(index)
            return encode(ApiError(f"worker {index} is not answering: {err}").reply()), None
        for extra in fds[1:]:
            os.close(extra)
        return line, fds[0] if fds else None

    async def results(self, op: str, args: dict[str, Any]) -> list[Any]:
        """Ask every worker; return their results in worker order or raise the first refusal."""
        results = []
        for index in range(len(self.front.workers)):
            line, fd = await self.forward(index, op, args)
            if fd is not None:
                os.close(fd)
            reply = json.loads(line)
            if not reply.get("ok"):
                raise ApiError.from_reply(reply)
            results.append(reply.get("result"))
        return results

    async def joined(self, op: str, args: dict[str, Any]) -> list[Any]:
        """Ask every worker for a list; return the lists joined in worker order."""
        return [item for result in await self.results(op, args) for item in result]

    def drop(self, index: int) -> None:
        """Forget the connection to worker ``index``."""
        channel = self.channels.pop(index, None)
        if channel is not None:
            channel.close()

    def close(self) -> None:
        """Close every connection to the workers."""
        for index in list(self.channels):
            self.drop(index)
