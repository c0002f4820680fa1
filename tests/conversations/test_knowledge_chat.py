"""Knowledge in the chat for a model that takes no tools: the passages of a conversation's (or its project's)
knowledge bases go to the model ahead of the question and stay with the reply as its sources (a model that
takes tools searches them itself: test_knowledge_tool_chat.py); a file too long for the context is searched
instead of refused; a share shows the cited passages alone; another user hears nothing of them."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from catalogue.models import LanguageModel
from conversations import files, shares
from conversations.models import Attachment, Conversation, Message, Project
from knowledge.models import StoredFile, VectorStore
from tests.conversations.conftest import Browser, Connect, finished, until
from tests.conversations.knowledge_fixtures import a_store, ingested
from tests.fake_upstream import FakeUpstream

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
    pytest.mark.usefixtures("media", "knowledge_media"),
]

OIL = "# Oil\n\nChange the engine oil every 10,000 km with grade 5W-30.\n"
RADIO = "# Radio\n\nThe radio code is on a card in the glovebox.\n"


@pytest.fixture(autouse=True)
def without_tools(chat_model: LanguageModel) -> None:
    chat_model.tools = False
    chat_model.save(update_fields=["tools"])


@sync_to_async
def manuals(user: User) -> VectorStore:
    store = a_store(user, "Manuals")
    ingested(store, "oil.md", OIL)
    ingested(store, "radio.md", RADIO)
    return store


@sync_to_async
def in_project(conversation: Conversation, store: VectorStore) -> None:
    project = Project.objects.create(owner=conversation.owner, name="Car")
    project.knowledge_bases.add(store)
    conversation.project = project
    conversation.save(update_fields=["project"])


async def ask(connect: Connect, user: User, conversation: Conversation, question: str, **extra: Any) -> dict[str, Any]:
    socket = await connect(user, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": question, **extra})
    reply, _ = await until(socket, finished, seconds=60)
    return dict(reply["message"])


def question_sent(fake_upstream: FakeUpstream) -> Any:
    body = fake_upstream.last.body
    assert body is not None
    return body["messages"][-1]["content"]


async def test_an_attached_bases_passages_reach_the_model_and_stay_with_the_reply_as_sources(
    alice: User, conversation: Conversation, connect: Connect, fake_upstream: FakeUpstream, browser: Browser
) -> None:
    store = await manuals(alice)
    await sync_to_async(conversation.knowledge_bases.add)(store)
    reply = await ask(connect, alice, conversation, "How often do I change the engine oil?")

    sent = question_sent(fake_upstream)
    assert '<source n="1" from="oil.md">' in sent and "every 10,000 km" in sent
    assert sent.endswith("\n\nHow often do I change the engine oil?")
    assert reply["sources"][0] == {
        "n": 1,
        "filename": "oil.md",
        "page": None,
        "section": "Oil",
        "text": "# Oil\n\nChange the engine oil every 10,000 km with grade 5W-30.",
    }
    # After a reload: the page's data and the API carry them.
    client = await browser(alice)
    page = await client.get(f"/c/{conversation.pk}/")
    initial = json.loads(re.search(r'id="chat-initial"[^>]*>(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    assert initial["messages"][-1]["sources"] == reply["sources"]
    listed = (await client.get(f"/api/conversations/{conversation.pk}/messages/")).json()
    assert listed["results"][-1]["sources"] == reply["sources"]


async def test_a_projects_bases_are_searched_by_its_chats(
    alice: User, conversation: Conversation, connect: Connect, fake_upstream: FakeUpstream
) -> None:
    store = await manuals(alice)
    await in_project(conversation, store)
    reply = await ask(connect, alice, conversation, "Where is the radio code?")
    assert [s["filename"] for s in reply["sources"]][:1] == ["radio.md"]
    assert "glovebox" in question_sent(fake_upstream)


async def test_a_chat_without_knowledge_sends_the_question_alone(
    alice: User, conversation: Conversation, connect: Connect, fake_upstream: FakeUpstream
) -> None:
    await manuals(alice)  # alice's, but not attached to this chat
    reply = await ask(connect, alice, conversation, "How often do I change the engine oil?")
    assert reply["sources"] == []
    assert question_sent(fake_upstream) == "How often do I change the engine oil?"


async def test_another_users_base_is_never_searched_even_if_linked(
    alice: User, bob: User, conversation: Conversation, connect: Connect, fake_upstream: FakeUpstream
) -> None:
    bobs = await manuals(bob)
    await sync_to_async(conversation.knowledge_bases.add)(bobs)  # a row no view would write
    reply = await ask(connect, alice, conversation, "How often do I change the engine oil?")
    assert reply["sources"] == []
    assert "10,000 km" not in question_sent(fake_upstream)


async def test_another_users_socket_is_refused_and_hears_no_sources(
    alice: User, bob: User, conversation: Conversation, connect: Connect
) -> None:
    store = await manuals(alice)
    await sync_to_async(conversation.knowledge_bases.add)(store)
    await ask(connect, alice, conversation, "How often do I change the engine oil?")
    await connect(bob, conversation.pk, expect=False)


@sync_to_async
def store_attachment(user: User, name: str, data: bytes) -> Attachment:
    return files.store(user, name, data)


async def test_a_file_too_long_for_the_context_is_searched_instead_of_refused(
    alice: User, conversation: Conversation, connect: Connect, fake_upstream: FakeUpstream, ingest_at_once: None
) -> None:
    filler = "The weather was mild and nothing happened. " * 3000  # ~33k tokens; the model reads 4096
    book = await store_attachment(alice, "book.txt", (filler + "\n\nThe vault code is 7341.\n\n" + filler).encode())
    reply = await ask(connect, alice, conversation, "What is the vault code?", attachments=[book.pk])

    sent = question_sent(fake_upstream)
    assert "The vault code is 7341." in sent and f'<file name="book.txt">{files.RETRIEVED_NOTE}</file>' in sent
    assert len(sent) < 20_000  # passages, not the book
    assert reply["status"] == "complete" and reply["sources"][0]["filename"] == "book.txt"

    @sync_to_async
    def own_base() -> tuple[VectorStore, Attachment]:
        row = Conversation.objects.get(pk=conversation.pk)
        assert row.own_knowledge is not None
        return row.own_knowledge, Attachment.objects.get(pk=book.pk)

    store, attachment = await own_base()
    assert attachment.retrieved and attachment.message_id is not None
    assert store.owner_id == alice.pk

    @sync_to_async
    def delete_chat() -> None:
        Conversation.objects.get(pk=conversation.pk).delete()

    await delete_chat()
    assert not await sync_to_async(VectorStore.objects.filter(pk=store.pk).exists)()
    assert not await sync_to_async(StoredFile.objects.filter(owner=alice).exists)()


async def test_a_message_too_long_itself_is_still_refused_and_nothing_is_lost(
    alice: User, conversation: Conversation, connect: Connect, ingest_at_once: None
) -> None:
    note = await store_attachment(alice, "note.txt", b"a short note")
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "word " * 19_000, "attachments": [note.pk]})
    refused, _ = await until(socket, lambda f: f["type"] == "error")
    assert "more than fake/small reads at once" in refused["message"]
    assert not await sync_to_async(Message.objects.filter(conversation=conversation).exists)()
    assert (await sync_to_async(Attachment.objects.get)(pk=note.pk)).message_id is None


async def test_a_share_shows_the_cited_passages_and_nothing_else_of_the_base(
    alice: User, conversation: Conversation, connect: Connect, fake_upstream: FakeUpstream
) -> None:
    store = await manuals(alice)
    await sync_to_async(conversation.knowledge_bases.add)(store)
    await ask(connect, alice, conversation, "How often do I change the engine oil?")
    share, token = await sync_to_async(shares.create)(alice, conversation.pk)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_application()), base_url="http://127.0.0.1"
    ) as anonymous:
        page = (await anonymous.get(f"/s/{token}/")).text
    cited = share.snapshot["messages"][-1]["sources"]
    assert cited and all(set(s) == {"n", "filename", "page", "section", "text"} for s in cited)
    assert "every 10,000 km" in page
    cited_text = " ".join(s["text"] for s in cited)
    assert ("glovebox" in page) == ("glovebox" in cited_text)  # only what was cited
    assert store.public_id not in page and "file-" not in page


def _application() -> Any:
    from chatsite.asgi import application

    return application
