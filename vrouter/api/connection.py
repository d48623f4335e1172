"""The control connection: who is calling, request lines in, replies (and descriptors) out.

Used by the control server and by a front alike.  A connection carries one
JSON line per request and per reply (:mod:`vrouter.api.protocol`); the
caller is identified by ``SO_PEERCRED``/``SO_PEERGROUPS``; a reply may
carry one descriptor (SCM_RIGHTS), sent after every earlier byte.
"""

from __future__ import annotations

import array
import asyncio
import itertools
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from vrouter.api.protocol import encode
from vrouter.core import gcpause
from vrouter.core.perms import Cred

PASS_TIMEOUT = 10.0
"""Seconds to wait for earlier replies to leave before passing a descriptor."""
ROWS_PER_SLICE = 512
"""Rows of a streamed view encoded per loop pass (the data path runs in between)."""


class Rows:
    """A view's result that is a list of any length, written a slice at a time.

    ``items`` is a snapshot taken when the request was answered (a list), or
    an iterator over one that is only read a slice at a time (a big table:
    its rows are gathered as they are written); ``describe`` turns one item
    into its JSON value when its slice is written.  The reply is still one
    JSON line, ``{"ok":true,"result":[...]}``: clients need nothing new, and
    no loop pass spends longer than one slice on it.
    """

    def __init__(
        self, items: Iterable[Any], describe: Callable[[Any], Any], per_slice: int = ROWS_PER_SLICE
    ) -> None:
        self.items = items
        self.describe = describe
        self.per_slice = per_slice
        """Items encoded per loop pass (fewer for big ones: pieces of a metrics scrape)."""

    def materialize(self) -> list[Any]:
        """Return the whole list at once (for a reply that is not streamed)."""
        return [self.describe(item) for item in self.items]


async def write_rows(writer: asyncio.StreamWriter, rows: Rows) -> None:
    """Write ``rows`` as one reply line, a slice per loop pass, waiting for the reader.

    The cyclic garbage collector is held off meanwhile: a full collection over
    a big table would be one long pause (:mod:`vrouter.core.gcpause`).
    """
    writer.write(b'{"ok":true,"result":[')
    items, describe, dumps = iter(rows.items), rows.describe, _COMPACT.encode
    step = rows.per_slice
    first = True
    with gcpause.held():
        while piece := list(itertools.islice(items, step)):
            chunk = ",".join(dumps(describe(item)) for item in piece)
            writer.write((chunk if first else "," + chunk).encode())
            first = False
            await writer.drain()
            await asyncio.sleep(0)
    writer.write(b"]}\n")


_COMPACT = json.JSONEncoder(separators=(",", ":"))


def peer_cred(sock: Any) -> Cred:
    """Return who is on the other end of the Unix socket ``sock`` (SO_PEERCRED, SO_PEERGROUPS)."""
    size = struct.calcsize("3i")
    pid, uid, gid = struct.unpack(
        "3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
    )
    groups: frozenset[int] = frozenset()
    option = getattr(socket, "SO_PEERGROUPS", 59)
    for count in (64, 65536):
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, option, 4 * count)
        except OSError:
            continue  # ERANGE: more groups than fit; or not supported
        groups = frozenset(struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))
        break
    return Cred(pid, uid, gid, groups)


class Replies:
    """A connection's replies, held while the requests already read are answered and
    written together when the loop next turns (or before a reply written otherwise:
    :meth:`flush`).

    A client that sends requests in a batch (``ControlClient.calls``) then gets
    one write, and one wake-up, per batch instead of one per reply.
    """

    __slots__ = ("writer", "_held")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Send ``data`` after every earlier reply, when the loop next turns."""
        if not self._held:
            asyncio.get_running_loop().call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        """Write every held reply now (before writing to ``writer`` directly)."""
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            if not self.writer.is_closing():
                self.writer.write(data)


async def serve_lines(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    respond: Callable[[bytes, Replies], Awaitable[None]],
) -> None:
    """Serve one control connection: ``respond`` to each request line, in order, until
    the client closes it; then close it.  A line longer than MAX_LINE gets an
    error and ends the connection (it cannot be resynchronized)."""
    replies = Replies(writer)
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                replies.write(encode({"ok": False, "error": "request line too long"}))
                break
            if not line:
                break
            await respond(line, replies)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        replies.flush()
        writer.close()


async def send_with_fd(writer: asyncio.StreamWriter, line: bytes, fd: int) -> None:
    """Send ``line`` with descriptor ``fd`` attached, after every earlier byte.

    Raise ConnectionError if it cannot be sent (the caller still owns ``fd``).
    """
    try:
        transport = writer.transport
        transport.set_write_buffer_limits(high=0)  # drain() now waits for an empty buffer
        try:
            await asyncio.wait_for(writer.drain(), PASS_TIMEOUT)
        finally:
            transport.set_write_buffer_limits()
        fds = array.array("i", [fd])
        # The transport's own socket object cannot sendmsg; a duplicate of its
        # descriptor writes to the same connection.
        conn = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
        with conn:
            sent = conn.sendmsg(
                [line],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)],
                socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL,
            )
    except (OSError, TimeoutError) as err:
        raise ConnectionError(f"cannot pass a descriptor: {err}") from err
    if sent < len(line):
        writer.write(line[sent:])


