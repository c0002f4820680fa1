"""Versions instead of overwrites: the message tree, switching branches, the history that goes upstream."""

from __future__ import annotations

import importlib

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import User
from conversations import branches
from conversations.models import Conversation, Message
from tests.conversations.conftest import Browser, Connect, finished, until
from tests.fake_upstream import FakeUpstream, Reply
from tests.signed_in import session_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def shown(conversation: Conversation) -> list[str]:
    return [m.content for m in branches.active_path(conversation.pk)]


async def test_it_keeps_three_versions_after_two_regenerations_and_switches_between_them(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content="One"), Reply(content="Two"), Reply(content="Three"))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Hi"})
    first, _ = await until(socket, finished)
    await socket.send_json_to({"type": "regenerate"})
    await until(socket, finished)
    await socket.send_json_to({"type": "regenerate"})
    third, _ = await until(socket, finished)
    ids = third["message"]["siblings"]
    assert len(ids) == 3 and ids[0] == first["message"]["id"] and ids[2] == third["message"]["id"]

    await socket.send_json_to({"type": "switch", "id": ids[0]})
    removed, _ = await until(socket, lambda f: f["type"] == "removed")
    assert removed["ids"] == [ids[2]]
    back, _ = await until(socket, lambda f: f["type"] == "message")
    assert (back["message"]["id"], back["message"]["content"], back["message"]["siblings"]) == (ids[0], "One", ids)
    assert await sync_to_async(shown)(conversation) == ["Hi", "One"]

    # The choice is stored: a socket opened later (a reload) shows the same branch.
    later = await connect(alice, conversation.pk)
    opened, _ = await until(later, lambda f: f["type"] == "messages")
    assert [m["content"] for m in opened["messages"]] == ["Hi", "One"]
    assert opened["messages"][1]["siblings"] == ids


async def test_it_sends_upstream_the_history_of_the_branch_on_screen(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content="A1"), Reply(content="A2"), Reply(content="B1"), Reply(content="A3"))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Q1"})
    await until(socket, finished)
    await socket.send_json_to({"type": "send", "content": "Q2"})
    await until(socket, finished)
    q1 = (await sync_to_async(branches.active_path)(conversation.pk))[0]
    await socket.send_json_to({"type": "edit", "id": q1.pk, "content": "Q1 edited"})
    await until(socket, finished)
    assert fake_upstream.last.body is not None
    assert fake_upstream.last.body["messages"] == [{"role": "user", "content": "Q1 edited"}]

    # Back to the first version of Q1: its old answers and follow-up are all still there.
    await socket.send_json_to({"type": "switch", "id": q1.pk})
    await until(socket, lambda f: f["type"] == "message" and f["message"]["content"] == "A2")
    assert await sync_to_async(shown)(conversation) == ["Q1", "A1", "Q2", "A2"]
    await socket.send_json_to({"type": "send", "content": "Q3"})
    await until(socket, finished)
    assert fake_upstream.last.body is not None
    assert [m["content"] for m in fake_upstream.last.body["messages"]] == ["Q1", "A1", "Q2", "A2", "Q3"]


async def test_it_refuses_a_switch_while_a_reply_is_written_or_to_a_message_of_another_conversation(
    alice: User, bob: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    bobs = await sync_to_async(Conversation.objects.create)(owner=bob, model=conversation.model)
    bobs_message = await sync_to_async(branches.append)(bobs, role="user", content="Bob's secret")
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "switch", "id": bobs_message.pk})
    error, _ = await until(socket, lambda f: f["type"] == "error")
    assert error["code"] == "refused" and "not in this conversation" in error["message"]
    assert "secret" not in str(error)

    held = Reply(content="slow words here", chunks=3, hold_after_chunks=1)
    fake_upstream.queue(held)
    await socket.send_json_to({"type": "send", "content": "Hi"})
    reply, _ = await until(socket, lambda f: f["type"] == "message" and f["message"]["role"] == "assistant")
    await socket.send_json_to({"type": "switch", "id": reply["message"]["id"]})
    error, _ = await until(socket, lambda f: f["type"] == "error")
    assert "still being written" in error["message"]
    held.released.set()
    await until(socket, finished)


@pytest.mark.parametrize("action", ["switch", "regenerate"])
async def test_it_rechecks_the_session_before_a_switch_or_a_regeneration(
    action: str, alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content="One"), Reply(content="Two"))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Hi"})
    await until(socket, finished)
    await socket.send_json_to({"type": "regenerate"})
    done, _ = await until(socket, finished)
    session = await sync_to_async(session_key)(alice)
    signed_in = await connect(alice, conversation.pk, session=session)
    await until(signed_in, lambda f: f["type"] == "messages")
    await Session.objects.filter(session_key=session).adelete()
    await signed_in.send_json_to({"type": action, "id": done["message"]["siblings"][0]})
    error, _ = await until(signed_in, lambda f: f["type"] == "error")
    assert error["code"] == "session_ended"
    assert await sync_to_async(shown)(conversation) == ["Hi", "Two"], "nothing switched"
    assert len(fake_upstream.requests) == 2, "nothing regenerated"


async def test_it_refuses_another_user_a_regeneration_a_switch_or_a_branch(
    alice: User, bob: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect, browser: Browser
) -> None:
    fake_upstream.queue(Reply(content="One"), Reply(content="Two"))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Private question"})
    await until(socket, finished)
    await socket.send_json_to({"type": "regenerate"})
    await until(socket, finished)
    await connect(bob, conversation.pk, expect=False)
    as_bob = await browser(bob)
    for query in ("", "?branches=all"):
        answer = await as_bob.get(f"/api/conversations/{conversation.pk}/messages/{query}")
        assert answer.status_code == 404
        assert "Private" not in answer.text
    assert len(fake_upstream.requests) == 2


async def test_it_returns_the_branch_shown_or_every_branch_on_request(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect, browser: Browser
) -> None:
    fake_upstream.queue(Reply(content="One"), Reply(content="Two"))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Hi"})
    await until(socket, finished)
    await socket.send_json_to({"type": "regenerate"})
    await until(socket, finished)
    as_alice = await browser(alice)
    url = f"/api/conversations/{conversation.pk}/messages/"
    active = (await as_alice.get(url)).json()["results"]
    assert [m["content"] for m in active] == ["Hi", "Two"]
    assert active[1]["parent"] == active[0]["id"] and len(active[1]["siblings"]) == 2
    every = (await as_alice.get(url + "?branches=all")).json()["results"]
    assert [m["content"] for m in every] == ["Hi", "One", "Two"]
    bad = await as_alice.get(url + "?branches=some")
    assert bad.status_code == 400 and "branches" in bad.text


def test_it_migrates_linear_conversations_into_chains(alice: User) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("conversations", "0004_a_stop_is_no_error")])
    old = executor.loader.project_state([("conversations", "0004_a_stop_is_no_error")]).apps
    OldConversation = old.get_model("conversations", "Conversation")
    OldMessage = old.get_model("conversations", "Message")
    conversation = OldConversation.objects.create(owner_id=alice.pk, title="Old")
    for i, role in enumerate(["user", "assistant", "user", "assistant"]):
        OldMessage.objects.create(conversation=conversation, role=role, content=f"m{i}")
    empty = OldConversation.objects.create(owner_id=alice.pk, title="Empty")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    migrated = Conversation.objects.get(pk=conversation.pk)
    path = branches.active_path(migrated.pk)
    assert [m.content for m in path] == ["m0", "m1", "m2", "m3"]
    assert [m.parent_id for m in path] == [None, path[0].pk, path[1].pk, path[2].pk]
    assert Message.objects.filter(conversation=migrated).count() == 4
    assert branches.active_path(empty.pk) == []


def test_the_migration_module_keeps_its_agreed_name() -> None:
    assert importlib.import_module("conversations.migrations.0005_branches_thinking")


def test_it_shows_the_newest_version_when_none_is_marked_active(alice: User, conversation: Conversation) -> None:
    question = branches.append(conversation, role="user", content="Q")
    older = branches.append(conversation, role="assistant", content="old")
    newer = branches.add(conversation, question.pk, role="assistant", content="new")
    Message.objects.filter(pk__in=[older.pk, newer.pk]).update(active=False)
    path = branches.active_path(conversation.pk)
    assert [m.content for m in path] == ["Q", "new"]
    assert path[1].sibling_ids == [older.pk, newer.pk]  # type: ignore[attr-defined]
    assert [m.content for m in branches.ancestors(newer)] == ["Q"]


def test_it_treats_another_users_conversation_as_gone_in_a_switch(
    alice: User, bob: User, conversation: Conversation
) -> None:
    from conversations import actions, services

    question = branches.append(conversation, role="user", content="Q")
    first = branches.append(conversation, role="assistant", content="one")
    branches.add(conversation, question.pk, role="assistant", content="two")
    with pytest.raises(services.ConversationGone):
        actions.do_switch(bob, conversation.pk, first.pk)
    assert shown(conversation) == ["Q", "two"]
    actions.do_switch(alice, conversation.pk, first.pk)
    assert shown(conversation) == ["Q", "one"]
