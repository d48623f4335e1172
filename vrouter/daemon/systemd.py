"""systemd integration: the sd_notify protocol and the watchdog, without libsystemd.

The service manager passes ``$NOTIFY_SOCKET`` (a filesystem path, or an
abstract socket name written with a leading ``@``); each notification is one
datagram of newline-separated ``KEY=VALUE`` assignments (sd_notify(3)).  With
``$NOTIFY_SOCKET`` unset (not under systemd, or ``Type=simple``) every call
here does nothing and returns False, so the daemon calls them unconditionally.

A failure to notify is logged and never raised: the service manager's timeouts
(start, watchdog) are what reports a daemon that cannot reach it.

Guarantees:

- ``ready``/``reloading``/``stopping`` send exactly the assignments
  ``Type=notify-reload`` expects (``RELOADING=1`` carries ``MONOTONIC_USEC``,
  systemd.service(5));
- ``STATUS=`` text is one line: newlines become spaces;
- ``watchdog_interval`` follows sd_watchdog_enabled(3): ``$WATCHDOG_USEC``
  must be a positive integer and ``$WATCHDOG_PID``, when set, must be this
  process; the returned interval is half the timeout, as the man page advises.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("vrouter.systemd")

SEND_TIMEOUT = 1.0
"""Seconds a notification may wait for room in the manager's socket buffer."""


def _address(env: Mapping[str, str]) -> str | None:
    """Return the notify socket's address from ``env``, or None if there is none."""
    path = env.get("NOTIFY_SOCKET", "")
    if path.startswith("@"):
        return "\0" + path[1:]
    if path.startswith("/"):
        return path
    if path:
        # vsock: addresses (systemd 254, for VMs) and anything newer are not ours.
        log.warning("NOTIFY_SOCKET=%r: unsupported address, not notifying", path)
    return None


def notify(*assignments: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``assignments`` (``"KEY=VALUE"``) in one datagram; return True if sent."""
    address = _address(os.environ if env is None else env)
    if address is None:
        return False
    message = "\n".join(assignments).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(SEND_TIMEOUT)
            sock.sendto(message, address)
    except OSError as err:
        log.warning("sd_notify %s: %s", ", ".join(a.split("=", 1)[0] for a in assignments), err)
        return False
    return True


def _status(text: str) -> str:
    return "STATUS=" + " ".join(text.splitlines())


def ready(status: str | None = None) -> bool:
    """Tell the manager start-up (or a reload) has finished: ``READY=1``."""
    return notify("READY=1", *([_status(status)] if status is not None else []))


def monotonic_usec() -> int:
    """Return CLOCK_MONOTONIC in microseconds, the clock systemd compares with."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def reloading(status: str | None = None) -> bool:
    """Tell the manager a reload has begun: ``RELOADING=1`` with ``MONOTONIC_USEC``."""
    return notify(
        "RELOADING=1",
        f"MONOTONIC_USEC={monotonic_usec()}",
        *([_status(status)] if status is not None else []),
    )


def stopping(status: str | None = None) -> bool:
    """Tell the manager shutdown has begun: ``STOPPING=1``."""
    return notify("STOPPING=1", *([_status(status)] if status is not None else []))


def status(text: str) -> bool:
    """Set the one-line status ``systemctl status`` shows: ``STATUS=``."""
    return notify(_status(text))


def watchdog() -> bool:
    """Send one watchdog keep-alive: ``WATCHDOG=1``."""
    return notify("WATCHDOG=1")


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Return the seconds between keep-alives (half the timeout), or None if disabled."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid is not None:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 2 / 1_000_000


class Watchdog:
    """Keep-alives from the event loop itself, every ``interval`` seconds.

    The next ping is armed by the previous one with ``loop.call_later``, so a
    loop that stops turning (a blocking call, an endless callback) stops the
    pings, and the manager's ``WatchdogSec=`` restarts the daemon.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.interval = interval
        self.sent = 0
        """Keep-alives sent so far."""
        self._handle: asyncio.TimerHandle | None = None

    @classmethod
    def start(cls, loop: asyncio.AbstractEventLoop) -> Watchdog | None:
        """Ping now and then every half timeout if the manager asked; else return None."""
        interval = watchdog_interval()
        if interval is None:
            return None
        dog = cls(loop, interval)
        dog._tick()
        log.debug("watchdog: keep-alive every %.3gs", interval)
        return dog

    def _tick(self) -> None:
        if watchdog():
            self.sent += 1
        self._handle = self.loop.call_later(self.interval, self._tick)

    def cancel(self) -> None:
        """Stop pinging."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
