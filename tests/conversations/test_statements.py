"""What the chat's busiest actions ask of the database: a bounded number of statements, whatever the history."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from catalogue.models import LanguageModel
from conversations import actions, services
from conversations.models import Conversation, Message
from conversations.serializers import message_data

pytestmark = pytest.mark.django_db(transaction=True)


def test_sending_takes_eleven_statements_however_long_the_conversation(
    alice: User, chat_model: LanguageModel, django_assert_max_num_queries: Any
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    for turn in range(3):
        with django_assert_max_num_queries(11):
            reply = actions.do_send(alice, conversation.pk, f"Question {turn}")
        services.finish(reply.pk, f"Answer {turn}", Message.Status.COMPLETE)

    # What went out was complete without asking more: versions and files of both new messages.
    question = Message.objects.get(conversation=conversation, content="Question 2")
    with django_assert_max_num_queries(0):
        shown = message_data(reply)
    assert shown["siblings"] == [reply.pk] and shown["attachments"] == [] and shown["parent"] == question.pk


def test_regenerating_keeps_the_earlier_reply_as_a_version_in_what_it_publishes(
    alice: User, chat_model: LanguageModel
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    first = actions.do_send(alice, conversation.pk, "Hello")
    services.finish(first.pk, "Hi", Message.Status.COMPLETE)
    second = actions.do_regenerate(alice, conversation.pk)
    assert message_data(second)["siblings"] == [first.pk, second.pk]
