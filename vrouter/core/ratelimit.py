"""A token bucket, for "at most N per second" limits (ICMP errors, log lines)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """Holds up to ``rate`` tokens, refilled at ``rate`` per second; starts full."""

    tokens: float = float("inf")
    at: float = 0.0

    def take(self, rate: float, now: float) -> bool:
        """Spend one token if there is one; ``rate`` 0 or less means no limit."""
        if rate <= 0:
            return True
        tokens = min(float(rate), self.tokens + (now - self.at) * rate)
        self.at = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True
