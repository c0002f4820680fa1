"""The chat's upkeep: reading changes nothing; the sweep expires dead replies and idle temporary chats."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from accounts.models import User
from chatsite.asgi import lifespan
from conversations import branches, events, services, sweeper
from conversations.models import Conversation, Message
from tests.conversations.conftest import Connect, streaming_reply, until

LONG_AGO = timedelta(hours=2)


def _stored() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (
        list(Conversation.objects.order_by("pk").values_list("pk", "updated_at", "title", "temporary")),
        list(Message.objects.order_by("pk").values_list("pk", "status", "updated_at", "content", "error")),
    )


def _dead_reply(conversation: Conversation, content: str = "Half a rep") -> Message:
    return streaming_reply(conversation, content, silent_for=timedelta(minutes=5))


def _idle_temporary(owner: User) -> Conversation:
    chat = Conversation.objects.create(owner=owner, temporary=True)
    Conversation.objects.filter(pk=chat.pk).update(updated_at=timezone.now() - LONG_AGO)
    return chat


@pytest.mark.django_db
def test_it_changes_nothing_when_a_chat_page_or_the_apis_messages_are_read(
    client: Client, alice: User, bob: User
) -> None:
    conversation = Conversation.objects.create(owner=alice, title="Kept as it is")
    _dead_reply(conversation)
    Conversation.objects.create(owner=alice, temporary=True)
    _idle_temporary(alice)
    _idle_temporary(bob)
    before = _stored()
    client.force_login(alice)
    api = f"/api/conversations/{conversation.pk}"
    for url in ["/", f"/c/{conversation.pk}/", f"{api}/messages/", f"{api}/export/", f"{api}/export/?format=md"]:
        assert client.get(url).status_code == 200, url
    assert _stored() == before


@pytest.mark.django_db
def test_it_marks_a_dead_workers_replies_interrupted_keeping_their_text(alice: User, bob: User) -> None:
    alices = _dead_reply(Conversation.objects.create(owner=alice))
    bobs = _dead_reply(Conversation.objects.create(owner=bob), "Other")
    live = branches.append(Conversation.objects.create(owner=bob), role="assistant", status="streaming")
    assert sweeper.sweep() == (2, 0)
    stored = Message.objects.in_bulk([alices.pk, bobs.pk, live.pk])
    assert [(m.status, m.content, m.error) for m in (stored[alices.pk], stored[bobs.pk])] == [
        ("interrupted", "Half a rep", services.STOPPED_BY_SERVER),
        ("interrupted", "Other", services.STOPPED_BY_SERVER),
    ]
    assert stored[live.pk].status == "streaming", "its heartbeat is fresh"
    assert sweeper.sweep() == (0, 0)


@pytest.mark.django_db
def test_it_leaves_a_reply_this_process_writes_streaming_whatever_its_heartbeat(alice: User) -> None:
    reply = _dead_reply(Conversation.objects.create(owner=alice))
    assert sweeper.sweep(frozenset({reply.pk})) == (0, 0)
    assert Message.objects.get(pk=reply.pk).status == "streaming"


@pytest.mark.django_db
def test_it_deletes_idle_temporary_chats_of_every_user(alice: User, bob: User) -> None:
    _idle_temporary(alice)
    _idle_temporary(bob)
    fresh = Conversation.objects.create(owner=alice, temporary=True)
    kept = Conversation.objects.create(owner=bob)
    Conversation.objects.filter(pk=kept.pk).update(updated_at=timezone.now() - LONG_AGO)
    assert sweeper.sweep() == (0, 2)
    assert set(Conversation.objects.values_list("pk", flat=True)) == {fresh.pk, kept.pk}


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_it_tells_the_open_sockets_that_a_reply_was_interrupted(
    alice: User, conversation: Conversation, connect: Connect
) -> None:
    reply = await sync_to_async(streaming_reply)(conversation, "Half a rep")
    socket = await connect(alice, conversation.pk)
    shown, _ = await until(socket, lambda f: f["type"] == "messages")
    assert shown["messages"][-1]["status"] == "streaming"
    await sync_to_async(Message.objects.filter(pk=reply.pk).update)(updated_at=timezone.now() - timedelta(minutes=5))
    await events.run(sweeper.sweep)
    told, _ = await until(socket, lambda f: f["type"] == "message")
    assert (told["message"]["id"], told["message"]["status"], told["message"]["content"]) == (
        reply.pk,
        "interrupted",
        "Half a rep",
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_it_sweeps_from_the_servers_start_until_its_stop(alice: User) -> None:
    reply = await sync_to_async(_dead_reply)(await sync_to_async(Conversation.objects.create)(owner=alice))
    received = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if sent == [{"type": "lifespan.startup.complete"}]:
            # What the server started is running, its first round done.
            assert sweeper._sweepers and not sweeper._sweepers[next(iter(sweeper._sweepers))].task.done()
            assert (await sync_to_async(Message.objects.get)(pk=reply.pk)).status == "interrupted"
        return next(received)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await lifespan({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert not sweeper._sweepers
