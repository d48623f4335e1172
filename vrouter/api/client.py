"""A synchronous client of the control socket.

Some replies carry a file descriptor (SCM_RIGHTS) with their line, e.g. a
capture's socket; :meth:`ControlClient.call_fd` receives those.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from typing import Any

from vrouter.api.protocol import MAX_REPLY, ApiError, encode

DEFAULT_SOCKET = "/run/vrouter/control.sock"
PIPELINE = 64
"""Requests :meth:`ControlClient.calls` can be given at once without either side
blocking on a full socket (their replies fit in its buffer)."""


class ControlClient:
    """One connection to vrouterd's control socket."""

    def __init__(self, path: str = DEFAULT_SOCKET, timeout: float = 10.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError:
            self._sock.close()
            raise
        self._file = self._sock.makefile("rb")

    def call(self, op: str, **args: Any) -> Any:
        """Send one request and return its result; raise ApiError on refusal."""
        self._sock.sendall(encode({"op": op, "args": args}))
        line = self._file.readline(MAX_REPLY + 1)
        if not line:
            raise ConnectionError("vrouterd closed the control connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ApiError.from_reply(reply)
        return reply.get("result")

    def calls(self, requests: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Send ``(op, args)`` requests at once and return their results, in order.

        The daemon answers the requests of a connection one after the other,
        so a request may depend on an earlier one; sending them together
        saves a round trip each.  Send a bounded number (the replies wait in
        the socket until they are read): :data:`PIPELINE` at a time is safe.
        Every reply is read; then the first refusal, if any, is raised.
        """
        self._sock.sendall(b"".join(encode({"op": op, "args": args}) for op, args in requests))
        replies = []
        for _ in requests:
            line = self._file.readline(MAX_REPLY + 1)
            if not line:
                raise ConnectionError("vrouterd closed the control connection")
            replies.append(json.loads(line))
        for reply in replies:
            if not reply.get("ok"):
                raise ApiError.from_reply(reply)
        return [reply.get("result") for reply in replies]

    def call_fd(self, op: str, **args: Any) -> tuple[Any, int]:
        """Send one request whose reply carries a descriptor; return (result, fd).

        The caller owns the descriptor.  Raise ApiError on refusal (no
        descriptor comes with a refusal; any that did is closed).
        """
        self._sock.sendall(encode({"op": op, "args": args}))
        # Read the reply with recvmsg, not through the buffered file: the
        # descriptor rides with its first byte.  The server sends nothing
        # unasked, so the file's buffer is empty and no byte is read twice.
        line = b""
        fds: list[int] = []
        try:
            while not line.endswith(b"\n"):
                if len(line) > MAX_REPLY:
                    raise ConnectionError("vrouterd sent an overlong reply")
                data, got, _, _ = socket.recv_fds(self._sock, 65536, 4)
                fds.extend(got)
                if not data:
                    raise ConnectionError("vrouterd closed the control connection")
                line += data
            reply = json.loads(line)
            if not reply.get("ok"):
                raise ApiError.from_reply(reply)
            if len(fds) != 1:
                raise ConnectionError(f"vrouterd passed {len(fds)} descriptors, expected 1")
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return reply.get("result"), fds[0]

    def close(self) -> None:
        """Close the connection."""
        self._file.close()
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
