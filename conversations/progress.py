"""The partial text of the replies this process writes, saved for all of them in one statement.

A reload shows a reply's text so far, and a reply whose worker died is told by its heartbeat going
stale (services.expire_stale). So while a reply streams, its text is saved every PERSIST_SECONDS
when it changed, and its heartbeat every HEARTBEAT_SECONDS when it did not. One writer per event
loop does this for every reply at once: with 200 replies streaming, a save per reply was 400
statements a second, each a hop to a database thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

from conversations import services
from core.clock import clock
from core.db import db

log = logging.getLogger(__name__)


class Reply(Protocol):
    message_id: int
    content: str
    reasoning: str


class Saved:
    __slots__ = ("at", "length")

    def __init__(self, at: float) -> None:
        self.at = at
        self.length = 0


def due(replies: Iterable[tuple[Reply, Saved]], now: float) -> list[tuple[int, str, str]]:
    """The rows to save at `now` (each marked saved): changed ones and stale heartbeats."""
    rows = []
    for reply, saved in replies:
        length = len(reply.content) + len(reply.reasoning)
        wait = services.PERSIST_SECONDS if length != saved.length else services.HEARTBEAT_SECONDS
        if now - saved.at >= wait:
            saved.at, saved.length = now, length
            rows.append((reply.message_id, reply.content, reply.reasoning))
    return rows


class _Writer:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.replies: dict[int, tuple[Reply, Saved]] = {}
        self.task = loop.create_task(self._run())  # a strong reference: the loop keeps only weak ones

    async def _run(self) -> None:
        try:
            while self.replies:
                await asyncio.sleep(services.PERSIST_SECONDS)
                rows = due(self.replies.values(), clock().monotonic())
                if rows:
                    try:
                        await db(services.save_progress, rows)
                    except Exception:
                        # The next round tries again; the reply itself goes on.
                        log.exception("could not save the progress of %d chat replies", len(rows))
        finally:
            # No await between the loop's last check and this: a reply tracked later gets a new writer.
            if _writers.get(self.loop) is self:
                del _writers[self.loop]


_writers: dict[asyncio.AbstractEventLoop, _Writer] = {}


def track(reply: Reply) -> None:
    """Save `reply`'s progress from now on (its row was just written: the first heartbeat is not due yet)."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = _Writer(loop)
    writer.replies[reply.message_id] = (reply, Saved(clock().monotonic()))


def untrack(reply: Reply) -> None:
    writer = _writers.get(asyncio.get_running_loop())
    if writer is not None:
        writer.replies.pop(reply.message_id, None)


def tracked() -> frozenset[int]:
    """The replies this event loop is writing: alive, whatever their heartbeat in the database says."""
    writer = _writers.get(asyncio.get_running_loop())
    return frozenset(writer.replies) if writer is not None else frozenset()
