"""The chat socket: one per open conversation, a subscriber of the conversation's group.

Client → server: {"type": "send", "content"}, {"type": "stop"}, {"type": "regenerate"},
{"type": "edit", "id", "content"}, {"type": "sync"}.
Server → client: {"type": "messages", "messages": [...]} on connect, {"type": "message", "message"},
{"type": "delta", "id", "offset", "text"} (offset in UTF-16 units), {"type": "snapshot", "id", "content"},
{"type": "removed", "ids"}, {"type": "conversation", "conversation"}, {"type": "error", "message"}.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conversations import generation, services
from conversations.models import Message

WATCH_SECONDS = 5.0


class ChatConsumer(AsyncJsonWebsocketConsumer):
    conversation_id: int
    group: str
    watchdog: asyncio.Task[None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Replies whose snapshot this socket awaits: frames queued before it are in it, so they are
        # dropped rather than sent ahead of it (the browser would see a gap).
        self.awaiting: set[int] = set()

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user = user
        self.conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        conversation = await database_sync_to_async(services.find_conversation)(user, self.conversation_id)
        if conversation is None:
            await self.close(code=4404)
            return
        self.group = generation.conversation_group(self.conversation_id)
        # Subscribe before reading the stored state, so no frame falls between the two.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await database_sync_to_async(services.expire_stale)(self.conversation_id)
        messages = await database_sync_to_async(services.messages_of)(self.conversation_id)
        await self.send_json({"type": "messages", "messages": [services.message_dict(m) for m in messages]})
        for message in messages:
            if message.status == Message.Status.STREAMING:
                await self._request_snapshot(message.pk)
        self._watch()

    async def disconnect(self, code: int) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "message": "Malformed request."})
            return
        kind = content.get("type")
        try:
            if kind == "send":
                user_message, reply = await database_sync_to_async(services.add_user_message)(
                    self.user, self.conversation_id, content.get("content")
                )
                await self._publish_message(user_message)
                await self._publish_conversation()
                await self._start(reply)
            elif kind == "regenerate":
                removed, reply = await database_sync_to_async(services.regenerate)(self.user, self.conversation_id)
                await self._publish_removed(removed)
                await self._start(reply)
            elif kind == "edit":
                edited, removed, reply = await database_sync_to_async(services.edit_and_resend)(
                    self.user, self.conversation_id, int(content.get("id") or 0), content.get("content")
                )
                await self._publish_message(edited)
                await self._publish_removed(removed)
                await self._start(reply)
            elif kind == "stop":
                for message_id in await database_sync_to_async(services.streaming_ids)(self.conversation_id):
                    await generation.request_stop(message_id)
            elif kind == "sync":
                for message_id in await database_sync_to_async(services.streaming_ids)(self.conversation_id):
                    await self._request_snapshot(message_id)
            else:
                await self.send_json({"type": "error", "message": f"Unknown request type {kind!r}."})
        except services.ChatError as exc:
            await self.send_json({"type": "error", "message": str(exc)})
        except (TypeError, ValueError):
            await self.send_json({"type": "error", "message": "Malformed request."})

    async def _request_snapshot(self, message_id: int) -> None:
        self.awaiting.add(message_id)
        await generation.request_sync(message_id, self.channel_name)

    async def _start(self, reply: Message) -> None:
        await self._publish_message(reply)
        generation.start(self.conversation_id, reply.pk)
        self._watch()

    def _watch(self) -> None:
        if self.watchdog is None or self.watchdog.done():
            self.watchdog = asyncio.create_task(self._watch_stale())

    async def _watch_stale(self) -> None:
        """While a reply streams, notice when its generator died (its worker stopped) and say so."""
        while await database_sync_to_async(services.streaming_ids)(self.conversation_id):
            await asyncio.sleep(WATCH_SECONDS)
            for message in await database_sync_to_async(services.expire_stale)(self.conversation_id):
                await self._publish_message(message)

    async def _publish_message(self, message: Message) -> None:
        payload = services.message_dict(message)
        await self.channel_layer.group_send(self.group, {"type": "chat.message", "message": payload})

    async def _publish_removed(self, ids: list[int]) -> None:
        if ids:
            await self.channel_layer.group_send(self.group, {"type": "chat.removed", "ids": ids})

    async def _publish_conversation(self) -> None:
        conversation = await database_sync_to_async(services.find_conversation)(self.user, self.conversation_id)
        if conversation is not None:
            payload = services.conversation_dict(conversation)
            await self.channel_layer.group_send(self.group, {"type": "chat.conversation", "conversation": payload})

    # Group events, forwarded to the browser.
    async def chat_message(self, event: dict[str, Any]) -> None:
        if event["message"]["status"] != Message.Status.STREAMING:
            self.awaiting.discard(event["message"]["id"])
        await self.send_json({"type": "message", "message": event["message"]})

    async def chat_delta(self, event: dict[str, Any]) -> None:
        if event["id"] in self.awaiting:
            return
        await self.send_json({"type": "delta", "id": event["id"], "offset": event["offset"], "text": event["text"]})

    async def chat_snapshot(self, event: dict[str, Any]) -> None:
        self.awaiting.discard(event["id"])
        await self.send_json({"type": "snapshot", "id": event["id"], "content": event["content"]})

    async def chat_removed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "removed", "ids": event["ids"]})

    async def chat_conversation(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "conversation", "conversation": event["conversation"]})

    async def chat_deleted(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "deleted"})
        with contextlib.suppress(Exception):
            await self.close(code=4410)
