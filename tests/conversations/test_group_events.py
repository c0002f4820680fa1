"""What a conversation's group events become on its sockets: the browser's frames, byte for byte."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import User
from conversations.events import conversation_group, layer
from conversations.models import Conversation
from tests.conversations.conftest import Connect, streaming_reply, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def _opened(connect: Connect, user: User, conversation: Conversation) -> WebsocketCommunicator:
    socket = await connect(user, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    return socket


async def _shown(socket: WebsocketCommunicator, conversation: Conversation, event: dict[str, object]) -> str:
    await layer().group_send(conversation_group(conversation.pk), event)
    return str(await socket.receive_from(timeout=10))


@pytest.mark.parametrize(
    ("event", "frame"),
    [
        (
            {"type": "chat.delta", "id": 7, "offset": 3, "text": "h\u00e9"},
            '{"type": "delta", "id": 7, "offset": 3, "text": "h\\u00e9"}',
        ),
        (
            {"type": "chat.reasoning", "id": 7, "offset": 0, "text": "Hmm"},
            '{"type": "reasoning", "id": 7, "offset": 0, "text": "Hmm"}',
        ),
        (
            {"type": "chat.snapshot", "id": 7, "content": "So far", "reasoning": ""},
            '{"type": "snapshot", "id": 7, "content": "So far", "reasoning": ""}',
        ),
        (
            {"type": "chat.message", "message": {"id": 7, "status": "complete", "content": "Done"}},
            '{"type": "message", "message": {"id": 7, "status": "complete", "content": "Done"}}',
        ),
        ({"type": "chat.removed", "ids": [4, 5]}, '{"type": "removed", "ids": [4, 5]}'),
        (
            {"type": "chat.conversation", "conversation": {"id": 1, "title": "T"}},
            '{"type": "conversation", "conversation": {"id": 1, "title": "T"}}',
        ),
    ],
)
async def test_it_sends_each_group_event_as_the_browsers_frame(
    alice: User, conversation: Conversation, connect: Connect, event: dict[str, object], frame: str
) -> None:
    socket = await _opened(connect, alice, conversation)
    assert await _shown(socket, conversation, event) == frame


async def test_it_says_the_conversation_was_deleted_and_closes(
    alice: User, conversation: Conversation, connect: Connect
) -> None:
    socket = await _opened(connect, alice, conversation)
    assert await _shown(socket, conversation, {"type": "chat.deleted"}) == '{"type": "deleted"}'
    assert await socket.receive_output(timeout=10) == {"type": "websocket.close", "code": 4410}


async def test_it_holds_back_a_replys_text_until_its_snapshot_has_arrived(
    alice: User, conversation: Conversation, connect: Connect
) -> None:
    reply = await sync_to_async(streaming_reply)(conversation)
    socket = await _opened(connect, alice, conversation)
    delta = {"type": "chat.delta", "id": reply.pk, "offset": 0, "text": "a"}
    await layer().group_send(conversation_group(conversation.pk), delta)  # in the snapshot it awaits: dropped
    snapshot = await _shown(
        socket, conversation, {"type": "chat.snapshot", "id": reply.pk, "content": "a", "reasoning": ""}
    )
    assert snapshot == f'{{"type": "snapshot", "id": {reply.pk}, "content": "a", "reasoning": ""}}'
    later = await _shown(socket, conversation, {**delta, "offset": 1, "text": "b"})
    assert later == f'{{"type": "delta", "id": {reply.pk}, "offset": 1, "text": "b"}}'
