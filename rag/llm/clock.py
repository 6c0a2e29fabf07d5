"""Time as a dependency: breakers, token buckets, deadlines and cache expiry read it from here,
so tests move a manual clock instead of sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds for intervals in this process (breaker cool-down, buckets, deadlines)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, for what outlives the process (cache expiry, budget days)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


SYSTEM_CLOCK: Clock = SystemClock()
