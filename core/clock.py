"""Time as the time-based rules read it (rate limits, budgets' periods, cooldowns), so tests can set it.

Production code asks `clock()`; a test installs a `ManualClock` with `use_clock()` and moves it
forward by exactly the seconds it means, so "trips", "remaining" and "recovers after Retry-After"
are asserted exactly whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


class SystemClock:
    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def shared_ms(self) -> int | None:
        """Milliseconds for counters shared between machines; None: the shared store's own clock.

        Redis's TIME is the one clock every worker agrees on, whatever their machines' skew.
        """
        return None


class ManualClock(SystemClock):
    """A clock that stands still until told to move (tests); it starts at the real time unless given one."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)

    async def sleep(self, seconds: float) -> None:
        """Returns at once, the clock `seconds` later: a test sees the wait without waiting."""
        self.advance(seconds)

    def shared_ms(self) -> int:
        return int(self._now * 1000)


_clock: SystemClock = SystemClock()


def clock() -> SystemClock:
    return _clock


def use_clock(new: SystemClock | None) -> SystemClock:
    """Install `new` (None: the system clock) and return the one it replaces."""
    global _clock
    previous, _clock = _clock, new or SystemClock()
    return previous
