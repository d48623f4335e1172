"""A synchronous client of the control socket."""

from __future__ import annotations

import json
import socket
from typing import Any

from vrouter.api.protocol import MAX_LINE, ApiError, encode

DEFAULT_SOCKET = "/run/vrouter/control.sock"


class Client:
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
        line = self._file.readline(MAX_LINE + 1)
        if not line:
            raise ConnectionError("vrouterd closed the control connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ApiError(reply.get("error", "request failed"))
        return reply.get("result")

    def close(self) -> None:
        """Close the connection."""
        self._file.close()
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
