"""What the control API needs of the process it serves: the :class:`Host` protocol.

The API does not import the daemon: handlers get a :class:`Host`, which
:class:`vrouter.daemon.main.Daemon` satisfies (a test can hand in anything
shaped like it).  It holds the vnet tree, the operations that change it
(``ops``, used under ``lock``), the driver (the clock, epairs), the program
sockets the socket service keeps, and the daemon-wide answers a view needs
(status, metrics text, a reload).
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from vrouter.api.protocol import ApiError
from vrouter.core.vnet import Vnet, VnetError, VnetTree

if TYPE_CHECKING:
    from vrouter.api.sockets import Endpoint
    from vrouter.daemon.config import Config
    from vrouter.daemon.ops import Ops
    from vrouter.io.driver import Driver


class Host(Protocol):
    """The running process, as the control API sees it."""

    tree: VnetTree | None
    """The vnets (None while starting)."""
    ops: Ops | None
    """The only code that changes vnets (None while starting); call it under ``lock``."""
    lock: asyncio.Lock
    """Serializes changes, reloads, start-up and shutdown."""
    driver: Driver
    config: Config
    endpoints: set[Endpoint]
    """Program sockets of the socket service."""
    streams: set[Any]
    """TCP listeners and streams of programs."""
    spec: Any
    """What a front told this worker (None: not a worker)."""

    def status(self) -> dict[str, Any]:
        """Return the daemon-wide part of ``status``."""
        ...

    async def metrics_chunks(
        self, collect: Sequence[str], exclude: Sequence[str], openmetrics: bool
    ) -> list[str]:
        """Return this process's metrics in pieces, in the text format or OpenMetrics."""
        ...

    async def config_vnets(self) -> list[list[Any]]:
        """Return ``[name, table]`` of each vnet of this process, as a config file has it."""
        ...

    async def config_dump(self, vnets: list[list[Any]]) -> dict[str, Any]:
        """Return the running configuration made of ``vnets`` (every process's ``config_vnets``)."""
        ...

    async def config_diff(
        self, vnets: list[list[Any]], text: str | None, source: str
    ) -> dict[str, Any]:
        """Return what differs between the running ``vnets`` and a config file.

        ``text``: the file's text (None: the daemon's own file, read again).
        """
        ...

    async def reload_request(
        self, text: str | None, tops: Sequence[str] | None, check: bool
    ) -> list[str]:
        """Reload (``check``: only see whether it would work); return the changes.

        Raise :class:`~vrouter.core.errors.OpError` with the reason if it fails.
        """
        ...


def vnet_of(host: Host, args: dict[str, Any], key: str = "vnet") -> Vnet:
    """Return the vnet argument ``key`` names; ApiError if there is none."""
    name = args.get(key)
    if not isinstance(name, str):
        raise ApiError(f"this request needs {key!r} (a vnet name)")
    if host.tree is None:
        raise ApiError("the daemon is starting")
    try:
        return host.tree.get(name)
    except VnetError as err:
        raise ApiError(str(err)) from None


def ops_of(host: Host) -> Ops:
    """Return the host's operations; ApiError while it is starting."""
    if host.ops is None:
        raise ApiError("the daemon is starting")
    return host.ops


def require(vnet: Vnet, subsystem: str) -> None:
    """Refuse a request needing ``subsystem`` in a vnet where it is not loaded.

    The error is ApiError EPROTONOSUPPORT, what ``socket()`` gives for a
    protocol whose module is not loaded (``vrouterctl module unload tcp``).
    """
    if not vnet.has(subsystem):
        raise ApiError(
            f"vnet {vnet.name}: subsystem {subsystem} is not loaded", errno.EPROTONOSUPPORT
        )
