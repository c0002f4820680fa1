"""Replies' partial text is saved for all of them in one statement, changed ones often, idle ones as a heartbeat."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from catalogue.models import LanguageModel
from conversations import branches, progress, services
from conversations.models import Conversation, Message


@dataclass
class Writing:
    message_id: int
    content: str = ""
    reasoning: str = ""


def test_a_changed_reply_is_due_every_persist_interval_and_an_idle_one_at_each_heartbeat() -> None:
    busy, idle = Writing(1), Writing(2)
    replies = [(busy, progress.Saved(100.0)), (idle, progress.Saved(100.0))]

    busy.content = "Once"
    assert progress.due(replies, 100.0 + services.PERSIST_SECONDS / 2) == []
    assert progress.due(replies, 100.0 + services.PERSIST_SECONDS) == [(1, "Once", "")]
    assert progress.due(replies, 100.0 + services.PERSIST_SECONDS) == [], "saved: not due again at once"

    busy.content, busy.reasoning = "Once upon", "thinking"
    at = 100.0 + 2 * services.PERSIST_SECONDS
    assert progress.due(replies, at) == [(1, "Once upon", "thinking")]
    heartbeat = 100.0 + services.HEARTBEAT_SECONDS
    assert progress.due(replies, heartbeat - 0.01) == []
    # Both unchanged since: each beats once its last save is a heartbeat old.
    assert progress.due(replies, heartbeat) == [(2, "", "")]
    assert progress.due(replies, at + services.HEARTBEAT_SECONDS) == [(1, "Once upon", "thinking")]


@pytest.mark.django_db
def test_one_statement_saves_every_streaming_reply_and_leaves_finished_ones_alone(
    alice: User, chat_model: LanguageModel
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    question = branches.append(conversation, role=Message.Role.USER, content="Go")
    writing = [
        branches.add(conversation, question.pk, role=Message.Role.ASSISTANT, status=Message.Status.STREAMING)
        for _ in range(3)
    ]
    finished = branches.add(conversation, question.pk, role=Message.Role.ASSISTANT, content="Done.")
    # Text that an array literal would have to quote: quotes, backslashes, braces, commas, NULL, emoji.
    awkward = 'He said "hi", {not json} \\ NULL 😀\n'

    with CaptureQueriesContext(connection) as queries:
        services.save_progress(
            [(writing[0].pk, awkward, ""), (writing[1].pk, "", "Let me think"), (writing[2].pk, "x", "y"),
             (finished.pk, "overwritten?", "")]
        )  # fmt: skip
    assert len(queries) == 1

    saved = {m.pk: (m.content, m.reasoning) for m in Message.objects.filter(conversation=conversation)}
    assert saved[writing[0].pk] == (awkward, "")
    assert saved[writing[1].pk] == ("", "Let me think")
    assert saved[writing[2].pk] == ("x", "y")
    assert saved[finished.pk] == ("Done.", ""), "a finished reply keeps its final text"
