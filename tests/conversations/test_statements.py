"""What the chat's busiest actions ask of the database: a bounded number of statements, whatever the history."""

from __future__ import annotations

import time
from typing import Any

import pytest

from accounts.models import User
from catalogue.models import LanguageModel
from conversations import actions, services
from conversations.models import Conversation, Message
from conversations.serializers import message_data
from gateway.lookups import MISSING, lookups

pytestmark = pytest.mark.django_db(transaction=True)


def _rights_cache_serves() -> None:
    """As on a running worker: the rights cache's listener is up (it connects on first use)."""
    deadline = time.monotonic() + 20
    while not lookups.trusted():
        assert time.monotonic() < deadline, "the rights cache's listener did not start"
        time.sleep(0.01)


def test_sending_takes_ten_statements_and_finishing_four_however_long_the_conversation(
    alice: User, chat_model: LanguageModel, django_assert_max_num_queries: Any
) -> None:
    _rights_cache_serves()
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    reply = actions.do_send(alice, conversation.pk, "Question")  # the first send reads the model into the cache
    services.finish(reply.pk, "Answer", Message.Status.COMPLETE)
    for turn in range(3):
        with django_assert_max_num_queries(10):
            reply = actions.do_send(alice, conversation.pk, f"Question {turn}")
        with django_assert_max_num_queries(4):
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


def test_a_send_after_its_model_is_disabled_behind_the_caches_back_moves_to_a_usable_one(
    alice: User, chat_model: LanguageModel
) -> None:
    _rights_cache_serves()
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    reply = actions.do_send(alice, conversation.pk, "Question")
    services.finish(reply.pk, "Answer", Message.Status.COMPLETE)
    assert lookups.get("model", chat_model.public_id) is not None  # served from the cache from now on

    LanguageModel.objects.filter(pk=chat_model.pk).update(enabled=False)  # no signal: only the database tells
    deadline = time.monotonic() + 20
    while lookups.get("model", chat_model.public_id) is not MISSING:
        assert time.monotonic() < deadline, "the change did not reach the cache"
        time.sleep(0.01)

    reply = actions.do_send(alice, conversation.pk, "Again")
    assert reply.model is not None and reply.model.public_id == "fake/large"
    conversation.refresh_from_db()
    assert conversation.model is not None and conversation.model.public_id == "fake/large"
