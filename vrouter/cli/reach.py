"""Reaching vrouterd from ``vrouterctl``: one request, and the exit status when it fails.

As the help says: 1 when vrouterd refuses (its reason is printed) or its reply
cannot be read, 2 when it cannot be reached at all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from vrouter.api.client import ControlClient
from vrouter.api.protocol import ApiError

T = TypeVar("T")


def ask(socket_path: str, call: Callable[[ControlClient], T]) -> T:
    """Return what ``call`` gets on a connection to vrouterd; say why and exit if it fails."""
    try:
        client = ControlClient(socket_path)
    except OSError as err:
        raise _fail(f"cannot reach vrouterd at {socket_path}: {err}", 2) from None
    with client:
        try:
            return call(client)
        except ApiError as err:
            raise _fail(str(err), 1) from None
        except (ConnectionError, ValueError) as err:  # a reply cut short or not JSON
            raise _fail(f"vrouterd's reply could not be read: {err}", 1) from None
        except OSError as err:
            raise _fail(f"cannot reach vrouterd at {socket_path}: {err}", 2) from None


def _fail(message: str, status: int) -> SystemExit:
    print(f"vrouterctl: {message}", file=sys.stderr)
    return SystemExit(status)
