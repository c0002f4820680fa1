"""core.clock's time caps: the system clock's are asyncio's; a ManualClock's run out when the test says."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.clock import ManualClock, SystemClock


async def test_a_manual_cap_runs_out_only_when_the_clock_reaches_it() -> None:
    clock = ManualClock()

    async def capped() -> None:
        async with clock.timeout(10):
            await asyncio.Event().wait()

    task = asyncio.ensure_future(capped())
    await asyncio.sleep(0)
    clock.advance(9.5)
    await asyncio.sleep(0.05)
    assert not task.done()
    clock.advance(0.5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task, 60)


async def test_a_manual_cap_runs_out_when_another_thread_advances_the_clock() -> None:
    clock = ManualClock()

    async def capped() -> None:
        async with clock.timeout(1):
            await asyncio.Event().wait()

    task = asyncio.ensure_future(capped())
    await asyncio.sleep(0)
    mover = threading.Thread(target=clock.advance, args=(1,))
    mover.start()
    mover.join()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task, 60)


async def test_a_body_that_ends_in_time_leaves_no_cap_behind() -> None:
    clock = ManualClock()
    async with clock.timeout(1):
        pass
    clock.advance(5)  # nothing left to run out
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with clock.timeout(0):
            await asyncio.Event().wait()


async def test_the_system_clocks_cap_is_asyncios() -> None:
    with pytest.raises(TimeoutError):
        async with SystemClock().timeout(0):
            await asyncio.Event().wait()
