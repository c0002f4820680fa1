"""The chat's upkeep, one task per server process: replies whose worker died become interrupted,
temporary chats left behind are deleted.

A reply is written by a task that outlives its tab (conversations.generation), beating a heartbeat
while it writes (conversations.progress). A reply still "streaming" whose heartbeat went stale has
no writer left anywhere: its worker died or was killed. Every SWEEP_SECONDS this task marks such
replies interrupted, their text so far kept, and tells their open sockets; and it deletes the
temporary chats idle for temporary.IDLE. This is the one place either happens: pages, the REST API
and sockets only read.

It starts with the server (chatsite.asgi's lifespan), or with the process's first chat socket under a
server without lifespan (daphne); whoever starts it waits for its first round, so a reply its dead
predecessor left is shown interrupted from the start.
"""

from __future__ import annotations

import asyncio
import logging

from conversations import actions, events, progress, temporary

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0


class _Sweeper:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.swept_once = asyncio.Event()
        self.task = loop.create_task(self._run())  # a strong reference: the loop keeps only weak ones

    async def _run(self) -> None:
        try:
            while True:
                try:
                    await events.run(sweep, progress.tracked())
                except Exception:
                    log.exception("the chat's sweep failed; the next one tries again")
                self.swept_once.set()
                await asyncio.sleep(SWEEP_SECONDS)
        finally:
            self.swept_once.set()  # nobody is to wait for a round that will not come
            if _sweepers.get(self.loop) is self:
                del _sweepers[self.loop]


_sweepers: dict[asyncio.AbstractEventLoop, _Sweeper] = {}


def sweep(alive: frozenset[int] = frozenset()) -> tuple[int, int]:
    """One round: replies whose worker died (but those in `alive`) marked interrupted, idle temporary
    chats deleted; returns how many of each."""
    return len(actions.do_expire_stale(alive)), temporary.sweep()


async def start() -> None:
    """Sweep in this event loop from now on (once however often called); returns after the first round."""
    loop = asyncio.get_running_loop()
    sweeper = _sweepers.get(loop)
    if sweeper is None:
        sweeper = _sweepers[loop] = _Sweeper(loop)
    await sweeper.swept_once.wait()


async def stop() -> None:
    sweeper = _sweepers.pop(asyncio.get_running_loop(), None)
    if sweeper is not None:
        sweeper.task.cancel()
        await asyncio.gather(sweeper.task, return_exceptions=True)
