"""The socket's JSON of a message or conversation is the API's, call after call, from several threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.models import User
from catalogue.models import LanguageModel
from conversations import branches
from conversations.models import Attachment, Conversation, Message
from conversations.serializers import ConversationSerializer, MessageSerializer, conversation_data, message_data

pytestmark = pytest.mark.django_db


def test_each_message_gets_its_own_files_and_versions_in_the_socket_shape(
    alice: User, chat_model: LanguageModel
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model, title="Files")
    question = branches.append(conversation, role=Message.Role.USER, content="Read this")
    Attachment.objects.create(
        owner=alice, message=question, file="x/notes.txt", name="notes.txt", size=5, kind="document",
        content_type="text/plain", tokens=2,
    )  # fmt: skip
    first = branches.add(conversation, question.pk, role=Message.Role.ASSISTANT, content="One", model=chat_model)
    second = branches.add(conversation, question.pk, role=Message.Role.ASSISTANT, content="Two", model=chat_model)

    for message in (question, first, second, question, second):
        fresh = Message.objects.get(pk=message.pk)
        assert message_data(fresh) == dict(MessageSerializer(fresh).data)
    assert [a["name"] for a in message_data(question)["attachments"]] == ["notes.txt"]
    assert message_data(Message.objects.get(pk=first.pk))["attachments"] == []
    assert message_data(Message.objects.get(pk=second.pk))["siblings"] == [first.pk, second.pk]
    assert conversation_data(conversation) == dict(ConversationSerializer(conversation).data)


def test_threads_serialising_at_once_each_get_their_own_message(alice: User, chat_model: LanguageModel) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    messages = []
    parent = None
    for index in range(40):
        message = branches.add(conversation, parent, role=Message.Role.USER, content=f"message {index}")
        message.sibling_ids = [message.pk]  # type: ignore[attr-defined]
        message._prefetched_objects_cache = {"attachments": []}  # no query from the threads
        messages.append(message)
        parent = message.pk

    with ThreadPoolExecutor(max_workers=8) as pool:
        shapes = list(pool.map(message_data, messages * 20))
    assert [s["content"] for s in shapes] == [m.content for m in messages] * 20
    assert [s["id"] for s in shapes] == [m.pk for m in messages] * 20
