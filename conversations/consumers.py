"""The chat socket: one per open conversation, a subscriber of the conversation's group.

Client → server: see conversations/frames.py ("send", "edit", "regenerate", "switch", "stop", "sync", "ping").
Server → client: {"type": "messages", "messages": [...]} on connect, {"type": "message", "message"},
{"type": "delta", "id", "offset", "text"} (offset in UTF-16 units), {"type": "reasoning", "id", "offset",
"text"} (the model's thinking, offsets of its own), {"type": "tool", "id", "call"} (a tool call started or ended:
its whole state, conversations.tool_calls), {"type": "snapshot", "id", "content", "reasoning", "tool_calls"},
{"type": "removed", "ids"}, {"type": "conversation", "conversation"}, {"type": "deleted"}, {"type": "pong"},
{"type": "error", "code", "message"} (code: "invalid", "rate_limited", "refused", "session_ended").

Close codes: 4401 the login ended (or there was none), 4404 no such conversation, 4410 it was deleted.
This class only parses and dispatches: the actions are conversations.actions, run as the socket's
user after its session is re-checked (conversations.sessions); the conversation's group events are
the browser's frames already, passed through. Opening a socket starts the chat's sweep
(conversations.sweeper) in a process where the server did not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from accounts.models import User
from conversations import actions, events, frames, generation, rejoin, services, sessions, sweeper
from conversations.models import Message
from conversations.serializers import message_data
from core.db import db
from operations import observe

T = TypeVar("T")

SESSION_ENDED = 4401
NOT_FOUND = 4404
DELETED = 4410
# Group events of this prefix are frames for the browser (conversations.actions, conversations.generation).
CHAT_EVENT = "chat."
# Frames of a reply's text: dropped while the socket awaits that reply's snapshot, which holds them.
TEXT_FRAMES = ("delta", "reasoning")


class SessionEnded(Exception):
    pass


class ChatConsumer(AsyncJsonWebsocketConsumer):
    conversation_id: int
    user: User
    open_watch: observe.Watch | None = None  # counts the socket as open (metrics) from accept to close

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Replies whose snapshot this socket awaits: frames queued before it are in it, so they are
        # dropped rather than sent ahead of it (the browser would see a gap).
        self.awaiting: set[int] = set()
        self.groups_joined: list[str] = []
        self.closing = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=SESSION_ENDED)
            return
        self.user = user
        self.session_key = self.scope["session"].session_key
        self.session = sessions.digest(self.session_key)
        self.conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        if await db(services.find_conversation, user, self.conversation_id) is None:
            await self.close(code=NOT_FOUND)
            return
        self.bucket = frames.FrameBucket(settings.CHAT_SOCKET_FRAMES_PER_SECOND, settings.CHAT_SOCKET_FRAME_BURST)
        # Subscribe before reading the stored state, so no frame falls between the two.
        self.groups_joined = [events.conversation_group(self.conversation_id), events.user_group(user.pk)]
        await self._join_groups()
        await self.accept()
        self.open_watch = observe.chat_socket()
        rejoin.register(self)
        await sweeper.start()
        await self._send_state()

    async def _send_state(self) -> None:
        """The conversation as stored, then the text so far of each reply still being written."""
        messages = await db(services.messages_of, self.conversation_id)
        await self.send_json({"type": "messages", "messages": [message_data(m) for m in messages]})
        for message in messages:
            if message.status == Message.Status.STREAMING:
                await self._request_snapshot(message.pk)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        observe.ended(self.open_watch)
        rejoin.unregister(self)
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # channels' own dispatch first hops to Django's one sync thread to close that thread's stale
        # database connections, for every event: each frame of every socket queued behind that
        # thread (a tenth of the site's CPU with 200 chats streaming). This consumer's database
        # work runs on core.db's threads, which handle their own broken connections.
        # A conversation's events need no handler each: they are the browser's frames already.
        if message["type"].startswith(CHAT_EVENT):
            await self._pass_through(message)
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def send_json(self, content: Any, close: bool = False) -> None:
        if not self.closing:
            await super().send_json(content, close)

    # --- from the browser ---------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if self.closing:
            return
        if not self.bucket.take():
            await self._refuse("rate_limited", "Too many requests on this connection; slow down.")
            return
        try:
            frame = frames.parse(text_data, bytes_data)
        except frames.FrameError as exc:
            await self._refuse("invalid", str(exc))
            return
        if frame.type != "ping":
            # Again before each action: a Redis restarted without its data has forgotten the groups, and this
            # socket would miss every event (its next reply included) until the page is reloaded.
            await self._join_groups()
        await getattr(self, f"_on_{frame.type}")(frame)

    async def _join_groups(self) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)

    REJOIN_ORDER = 1

    async def rejoin(self) -> None:
        """Redis lost its data: join again, then send what the socket may have missed meanwhile, as on connect."""
        if self.closing:
            return
        await self._join_groups()
        await self._send_state()

    async def _on_send(self, frame: frames.Send) -> None:
        self._start(await self._act(actions.do_send, frame.content, frame.attachments))

    async def _on_edit(self, frame: frames.Edit) -> None:
        self._start(await self._act(actions.do_edit, frame.id, frame.content))

    async def _on_regenerate(self, frame: frames.Regenerate) -> None:
        self._start(await self._act(actions.do_regenerate))

    async def _on_switch(self, frame: frames.Switch) -> None:
        await self._act(actions.do_switch, frame.id)

    async def _on_stop(self, frame: frames.Stop) -> None:
        await self._act(actions.do_stop)

    async def _on_sync(self, frame: frames.Sync) -> None:
        for message_id in await self._act(services.own_streaming_ids) or []:
            await self._request_snapshot(message_id)

    async def _on_ping(self, frame: frames.Ping) -> None:
        await self.send_json({"type": "pong"})

    async def _act(self, action: Callable[..., T], *args: Any) -> T | None:
        """Run `action(user, conversation_id, *args)` if the socket's login still holds; None if refused."""
        try:
            return await events.run(self._as_user, action, *args)
        except SessionEnded:
            await self._end_session()
        except services.ChatError as exc:
            await self._refuse("refused", str(exc))
        return None

    def _as_user(self, action: Callable[..., T], *args: Any) -> T:
        user = sessions.still_valid(self.session_key, self.user.pk)
        if user is None:
            raise SessionEnded
        return action(user, self.conversation_id, *args)

    async def _refuse(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    async def _end_session(self) -> None:
        if self.closing:
            return
        await self._refuse("session_ended", "You are signed out. Log in again to go on.")
        self.closing = True
        await self.close(code=SESSION_ENDED)

    # --- replies --------------------------------------------------------------------------------------

    def _start(self, reply: Message | None) -> None:
        if reply is not None:
            generation.start(self.conversation_id, reply.pk)

    async def _request_snapshot(self, message_id: int) -> None:
        self.awaiting.add(message_id)
        await generation.request_sync(message_id, self.channel_name)

    # --- group events -------------------------------------------------------------------------------

    async def _pass_through(self, event: dict[str, Any]) -> None:
        """A conversation's event, sent on as the browser's frame: its fields as they are, "chat." dropped."""
        frame = {**event, "type": event["type"].removeprefix(CHAT_EVENT)}
        kind = frame["type"]
        if kind in TEXT_FRAMES and frame["id"] in self.awaiting:
            return
        if kind == "snapshot":
            self.awaiting.discard(frame["id"])
        elif kind == "message" and frame["message"]["status"] != Message.Status.STREAMING:
            self.awaiting.discard(frame["message"]["id"])
        await self.send_json(frame)
        if kind == "deleted" and not self.closing:
            self.closing = True
            await self.close(code=DELETED)

    async def session_ended(self, event: dict[str, Any]) -> None:
        if event.get("session") == self.session:
            await self._end_session()

    async def session_check(self, event: dict[str, Any]) -> None:
        if not self.closing and await db(sessions.still_valid, self.session_key, self.user.pk) is None:
            await self._end_session()
