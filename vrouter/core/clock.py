"""Time for protocol code: injected, never read from a global.

Protocol functions take ``now`` (seconds, monotonic) as an argument; the
driver reads it from the event loop, tests from a :class:`FakeClock`.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A monotonic clock in seconds."""

    def now(self) -> float:
        """Return the current time."""
        ...


class MonotonicClock:
    """The process's monotonic clock (the same one asyncio's loop uses)."""

    def now(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to, for deterministic tests."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def now(self) -> float:
        """Return the fake time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += seconds
        return self._now
