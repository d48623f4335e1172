"""The control protocol: one JSON object per line, each way.

Request:  ``{"op": "ifconfig", "args": {"vnet": "red"}}``
Response: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``

A malformed request gets an error response on the same connection; the
connection and every other client carry on.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 1 << 20
"""Longest request or response line accepted, in bytes."""


class ApiError(Exception):
    """A request was refused; the message goes back to the client."""


def encode(message: dict[str, Any]) -> bytes:
    """Return ``message`` as one protocol line."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode_request(line: bytes) -> tuple[str, dict[str, Any]]:
    """Parse a request line into (op, args); raise ApiError if it is malformed."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(f"request is not JSON: {err}") from None
    if not isinstance(message, dict):
        raise ApiError("request must be a JSON object")
    op = message.get("op")
    args = message.get("args", {})
    if not isinstance(op, str):
        raise ApiError("request needs a string 'op'")
    if not isinstance(args, dict):
        raise ApiError("'args' must be an object")
    return op, args
