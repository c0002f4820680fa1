"""Time as the time-based rules read it (rate limits, budgets' periods, cooldowns, time caps), so tests can set it.

Production code asks `clock()`; a test installs a `ManualClock` with `use_clock()` and moves it
forward by exactly the seconds it means, so "trips", "remaining" and "recovers after Retry-After"
are asserted exactly whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
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

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[asyncio.Timeout]:
        """A time cap on the body: asyncio.timeout's (TimeoutError when `seconds` have passed)."""
        return asyncio.timeout(seconds)

    def shared_ms(self) -> int | None:
        """Milliseconds for counters shared between machines; None: the shared store's own clock.

        Redis's TIME is the one clock every worker agrees on, whatever their machines' skew.
        """
        return None


class ManualClock(SystemClock):
    """A clock that stands still until told to move (tests); it starts at the real time unless given one."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        # Caps running on any event loop (an app's loop may be another thread than the test's).
        self._caps: list[_Cap] = []
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        """Move on by `seconds`; the caps this reaches run out (on their own loops), whatever the real time."""
        with self._lock:
            self._now += seconds
            due = [cap for cap in self._caps if cap.deadline <= self._now]
        for cap in due:
            cap.loop.call_soon_threadsafe(self._expire, cap)

    def _expire(self, cap: _Cap) -> None:
        with self._lock:
            entered = cap in self._caps
        if entered and not cap.timeout.expired():
            cap.timeout.reschedule(cap.loop.time())

    @asynccontextmanager
    async def timeout(self, seconds: float) -> AsyncIterator[asyncio.Timeout]:
        """A time cap that runs out only when the clock is advanced to it: a test decides when a cap fires."""
        async with asyncio.timeout(None) as timeout:
            cap = _Cap(self._now + seconds, asyncio.get_running_loop(), timeout)
            with self._lock:
                self._caps.append(cap)
            if seconds <= 0:
                timeout.reschedule(cap.loop.time())
            try:
                yield timeout
            finally:
                with self._lock:
                    self._caps.remove(cap)

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


class _Cap:
    """One ManualClock cap in force: compared by identity, so equal deadlines stay distinct."""

    def __init__(self, deadline: float, loop: asyncio.AbstractEventLoop, timeout: asyncio.Timeout) -> None:
        self.deadline, self.loop, self.timeout = deadline, loop, timeout


_clock: SystemClock = SystemClock()


def clock() -> SystemClock:
    return _clock


def use_clock(new: SystemClock | None) -> SystemClock:
    """Install `new` (None: the system clock) and return the one it replaces."""
    global _clock
    previous, _clock = _clock, new or SystemClock()
    return previous
