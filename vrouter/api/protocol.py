"""The control protocol: one JSON object per line, each way.

Request:  ``{"op": "ifconfig", "args": {"vnet": "red"}}``
Response: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``;
an error a socket call would raise also names its errno (``"errno": "ECONNREFUSED"``).

A malformed request gets an error response on the same connection; the
connection and every other client carry on.

A daemon with workers forwards requests from its front process to a
worker; the forwarded request also names the original caller
(``"caller": {"pid": .., "uid": .., "gid": .., "groups": [..]}``), which a
worker believes from its front only.
"""

from __future__ import annotations

import errno as errno_mod
import json
from typing import Any

from vrouter.core.perms import Cred

MAX_LINE = 1 << 20
"""Longest request line accepted, in bytes."""
MAX_REPLY = 1 << 30
"""Longest reply line a client takes, in bytes: a view of a million routes fits."""


class ApiError(OSError):
    """A request was refused; the message goes back to the client.

    It is an OSError, so code written for kernel sockets handles it;
    ``errno`` is set where a kernel call would fail with that code
    (EACCES: permission denied, EMFILE: a socket limit, EADDRINUSE …).
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def reply(self) -> dict[str, Any]:
        """Return the error response."""
        name = errno_mod.errorcode.get(self.errno) if self.errno is not None else None
        return {"ok": False, "error": str(self), **({"errno": name} if name else {})}

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> ApiError:
        """Return the error an error response stands for.

        Like ``OSError(errno, …)`` it is of the subclass the errno calls for
        (PermissionError for EACCES, ConnectionRefusedError …), and an ApiError.
        """
        code = getattr(errno_mod, str(reply.get("errno")), None)
        code = code if isinstance(code, int) else None
        kind = _BY_ERRNO.get(code, cls) if code is not None else cls
        return kind(reply.get("error", "request failed"), code)


class ApiPermissionError(ApiError, PermissionError):
    """A request refused for want of rights (EACCES)."""


class ApiConnectionRefusedError(ApiError, ConnectionRefusedError):
    """A connection refused by its peer (ECONNREFUSED)."""


class ApiConnectionResetError(ApiError, ConnectionResetError):
    """A connection reset by its peer (ECONNRESET)."""


class ApiTimeoutError(ApiError, TimeoutError):
    """Nothing came back in time (ETIMEDOUT)."""


_BY_ERRNO: dict[int, type[ApiError]] = {
    errno_mod.EACCES: ApiPermissionError,
    errno_mod.EPERM: ApiPermissionError,
    errno_mod.ECONNREFUSED: ApiConnectionRefusedError,
    errno_mod.ECONNRESET: ApiConnectionResetError,
    errno_mod.ETIMEDOUT: ApiTimeoutError,
}


def encode(message: dict[str, Any]) -> bytes:
    """Return ``message`` as one protocol line (a streamed view is written out whole)."""
    return _ENCODER.encode(message).encode() + b"\n"


def _whole(value: Any) -> Any:
    materialize = getattr(value, "materialize", None)
    if materialize is None:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return materialize()


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_whole)
"""What ``json.dumps`` with these arguments would build for every reply."""
_DECODER = json.JSONDecoder()
"""``json.loads``' own decoder, called without its detection of the encoding."""


def decode_request(line: bytes) -> tuple[str, dict[str, Any]]:
    """Parse a request line into (op, args); raise ApiError if it is malformed."""
    try:
        if line[:1] == b"{" and line[1:2] != b"\0":  # UTF-8, as json.loads would find
            message = _DECODER.decode(line.decode("utf-8", "surrogatepass"))
        else:
            message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(f"request is not JSON: {err}") from None
    except RecursionError:
        raise ApiError("request is not JSON the daemon takes: nested too deeply") from None
    if not isinstance(message, dict):
        raise ApiError("request must be a JSON object")
    op = message.get("op")
    args = message.get("args", {})
    if not isinstance(op, str):
        raise ApiError("request needs a string 'op'")
    if not isinstance(args, dict):
        raise ApiError("'args' must be an object")
    return op, args


def forwarded(op: str, args: dict[str, Any], caller: Cred) -> bytes:
    """Return the request line a front sends a worker on behalf of ``caller``."""
    who = {"pid": caller.pid, "uid": caller.uid, "gid": caller.gid, "groups": sorted(caller.groups)}
    return encode({"op": op, "args": args, "caller": who})


def caller_of(line: bytes) -> Cred | None:
    """Return the caller a forwarded request names (None: none, or not well formed)."""
    try:
        who = json.loads(line).get("caller")
        return Cred(int(who["pid"]), int(who["uid"]), int(who["gid"]), frozenset(who["groups"]))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
