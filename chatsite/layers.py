"""The channel layer of a single process (no REDIS_URL): channels' in-memory layer, swept less often.

channels' InMemoryChannelLayer walks every channel and every group membership looking for expired
messages on each `receive` and each `group_send`, so its cost grows with the sockets open: with 200
chat sockets streaming, that walk was a tenth of the site's CPU (bench/chat_sockets.py --profile).
Messages expire after a minute and memberships after a day, so sweeping at most once a second
changes nothing a socket can notice while making each frame's cost independent of the socket count.

Its group_send also makes a task per member and waits for them with as_completed, although an
in-memory send never waits: here each member's send is simply awaited in turn. And its send builds
a new queue for every message (the default of a setdefault), kept only for a channel's first one:
a twentieth of the site's CPU with 200 chats streaming. Here a queue is built only when missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from core.clock import clock

SWEEP_EVERY_SECONDS = 1.0


class SweptInMemoryChannelLayer(InMemoryChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._swept_at = float("-inf")

    def _clean_expired(self) -> None:
        now = clock().monotonic()
        if now - self._swept_at < SWEEP_EVERY_SECONDS:
            return
        self._swept_at = now
        super()._clean_expired()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            await super().send(channel, message)
            return
        assert isinstance(message, dict), "message is not a dict"
        assert "__asgi_channel__" not in message
        self.require_valid_channel_name(channel)
        try:
            queue.put_nowait((time.time() + self.expiry, copy.deepcopy(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):  # as channels' layer does: a full channel misses it
                await self.send(channel, message)
