"""After Redis lost its data (restarted without persistence, flushed), this process's sockets and replies
join their groups again, without anyone reloading a page.

channels_redis keeps group membership in Redis: a Redis that lost its data has forgotten every socket's
conversation group and every reply's control group, and would deliver nothing more to them. One task
per event loop watches a marker key (one GET every CHAT_REJOIN_CHECK_SECONDS): when the marker is
gone or replaced, Redis lost its data, and every member registered here rejoins (replies first, so a
socket's request for a snapshot finds its reply listening).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from typing import TYPE_CHECKING, Protocol

from django.conf import settings

if TYPE_CHECKING:  # imported by the watcher, which only runs with Redis: a worker without it never loads the client
    import redis.asyncio as redis

log = logging.getLogger(__name__)

MARKER_KEY = "chatsite:chat:epoch"


class Member(Protocol):
    # Lower first: replies (0) rejoin before sockets (1).
    REJOIN_ORDER: int

    async def rejoin(self) -> None: ...


_members: weakref.WeakSet[Member] = weakref.WeakSet()
_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()


def register(member: Member) -> None:
    """Have `member` rejoin its groups whenever Redis lost its data (nothing without Redis)."""
    if not settings.REDIS_URL:
        return
    _members.add(member)
    loop = asyncio.get_running_loop()
    task = _watchers.get(loop)
    if task is None or task.done():
        _watchers[loop] = loop.create_task(_watch(str(settings.REDIS_URL)))


def unregister(member: Member) -> None:
    _members.discard(member)


async def _marker(client: redis.Redis) -> bytes | None:
    value = await client.get(MARKER_KEY)
    if value is None:
        await client.set(MARKER_KEY, uuid.uuid4().hex, nx=True)
        value = await client.get(MARKER_KEY)
    return value


async def _watch(url: str) -> None:
    import redis.asyncio as redis
    from redis.exceptions import RedisError

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    seen: bytes | None = None
    try:
        while _members:
            try:
                marker = await _marker(client)
            except (RedisError, OSError):
                marker = None  # down: when it is back, its marker is new (or the old one, if it kept its data)
            if marker is not None:
                if seen is not None and marker != seen:
                    await rejoin_all()
                seen = marker
            await asyncio.sleep(float(settings.CHAT_REJOIN_CHECK_SECONDS))
    finally:
        await client.aclose()


async def rejoin_all() -> None:
    log.warning("Redis lost its data: %d chat sockets and replies join their groups again", len(_members))
    for member in sorted(list(_members), key=lambda m: m.REJOIN_ORDER):
        try:
            await member.rejoin()
        except Exception:
            log.warning("could not rejoin the chat's groups after Redis lost its data", exc_info=True)
