"""Knowledge in the chat for a model that takes tools: it is offered `file_search` over the conversation's (and
its project's, and its own) knowledge bases instead of passages pasted ahead of the question; the passages it
was given stay with the reply as its sources, numbered as it read them. Another user's base is never offered."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from conversations.models import Conversation
from tests.conversations.test_knowledge_chat import OIL, ask, in_project, manuals, store_attachment
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.test_tool_loop import offered, tool_messages

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
    pytest.mark.usefixtures("media", "knowledge_media"),
]

SEARCH_OIL = ToolCall("file_search", '{"query": "engine oil"}', id="call_k")
QUESTION = "How often do I change the engine oil?"


def first_request(fake_upstream: FakeUpstream) -> dict[str, Any]:
    body = fake_upstream.chat_requests()[0].body
    assert body is not None
    return body


async def test_a_model_that_takes_tools_searches_the_bases_and_the_passages_stay_as_sources(
    alice: User, conversation: Conversation, connect: Any, fake_upstream: FakeUpstream
) -> None:
    store = await manuals(alice)
    await sync_to_async(conversation.knowledge_bases.add)(store)
    fake_upstream.queue(Reply(tool_calls=[SEARCH_OIL]), Reply(content="Every 10,000 km [1]."))
    reply = await ask(connect, alice, conversation, QUESTION)

    asked = first_request(fake_upstream)
    assert offered(asked) == ["file_search"]
    assert asked["messages"][-1]["content"] == QUESTION  # nothing pasted
    (result,) = tool_messages(fake_upstream.chat_requests()[-1].body)
    assert result["content"].startswith("[1] oil.md\n# Oil\n\nChange the engine oil every 10,000 km")
    assert reply["content"] == "Every 10,000 km [1]."
    assert reply["sources"][0] == {"n": 1, "filename": "oil.md", "page": None, "section": "Oil", "text": OIL.strip()}
    assert [call["name"] for call in reply["tool_calls"]] == ["file_search"]


async def test_a_projects_bases_are_offered_to_its_chats(
    alice: User, conversation: Conversation, connect: Any, fake_upstream: FakeUpstream
) -> None:
    store = await manuals(alice)
    await in_project(conversation, store)
    fake_upstream.queue(Reply(tool_calls=[ToolCall("file_search", '{"query": "radio code"}')]), Reply(content="[1]"))
    reply = await ask(connect, alice, conversation, "Where is the radio code?")
    assert offered(first_request(fake_upstream)) == ["file_search"]
    assert [s["filename"] for s in reply["sources"]][:1] == ["radio.md"]


async def test_a_chat_without_knowledge_is_offered_no_file_search(
    alice: User, conversation: Conversation, connect: Any, fake_upstream: FakeUpstream
) -> None:
    await manuals(alice)  # alice's, but not attached to this chat
    reply = await ask(connect, alice, conversation, QUESTION)
    assert offered(first_request(fake_upstream)) == [] and reply["sources"] == []


async def test_another_users_base_is_never_offered_even_if_linked(
    alice: User, bob: User, conversation: Conversation, connect: Any, fake_upstream: FakeUpstream
) -> None:
    bobs = await manuals(bob)
    await sync_to_async(conversation.knowledge_bases.add)(bobs)  # a row no view would write
    reply = await ask(connect, alice, conversation, QUESTION)
    asked = first_request(fake_upstream)
    assert offered(asked) == [] and reply["sources"] == []
    assert "10,000 km" not in str(asked)


async def test_a_file_too_long_for_the_context_is_searched_with_the_passages_within_its_room(
    alice: User, conversation: Conversation, connect: Any, fake_upstream: FakeUpstream, ingest_at_once: None
) -> None:
    filler = "The weather was mild and nothing happened. " * 3000  # ~33k tokens; the model reads 4096
    book = await store_attachment(alice, "book.txt", (filler + "\n\nThe vault code is 7341.\n\n" + filler).encode())
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("file_search", '{"query": "vault code"}')]), Reply(content="It is 7341 [1].")
    )
    reply = await ask(connect, alice, conversation, "What is the vault code?", attachments=[book.pk])
    (result,) = tool_messages(fake_upstream.chat_requests()[-1].body)
    assert "The vault code is 7341." in result["content"] and len(result["content"]) < 8_000
    assert reply["status"] == "complete" and [s["filename"] for s in reply["sources"]] == ["book.txt"]
