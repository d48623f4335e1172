"""The two ways a received packet can be wrong.

``IntegrityError``: the bytes cannot be parsed safely (too short, bad length
field, bad checksum).  ``SanityError``: the packet parses but is illegal
(TTL 0 where it matters, a multicast source, an unknown version).

Each error carries a short machine-readable ``reason`` that callers use as the
name of the drop counter, so no drop goes uncounted.
"""

from __future__ import annotations


class WireError(ValueError):
    """A received packet that must be dropped; ``reason`` names the counter."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class IntegrityError(WireError):
    """The bytes cannot be parsed safely (length, checksum)."""


class SanityError(WireError):
    """The packet parsed but is not legal on the wire."""
