"""The browser chat counts against the user's limits and shows a refusal as a readable reason."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from catalogue.models import LanguageModel
from conversations.models import Conversation, Message
from core.clock import ManualClock
from tests.conversations.conftest import Connect, finished, until
from tests.fake_upstream import FakeUpstream, Reply
from usage.models import Limit, UsageRecord

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def _memory_store(settings: Any) -> None:
    settings.REDIS_URL = None


@sync_to_async
def _stored(conversation: Conversation) -> list[tuple[str, str, str]]:
    return [(m.role, m.status, m.content) for m in conversation.messages.order_by("created_at", "id")]


async def _send(connect: Connect, user: User, conversation: Conversation, text: str) -> dict[str, Any]:
    socket = await connect(user, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": text})
    done, _ = await until(socket, finished)
    return done["message"]


async def test_over_the_request_limit_the_reply_says_when_to_retry_and_the_message_is_kept(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    await Limit.objects.acreate(user=alice, requests_per_minute=1)
    fake_upstream.queue(Reply(content="First answer"))
    assert (await _send(connect, alice, conversation, "first"))["status"] == "complete"

    refused = await _send(connect, alice, conversation, "second, typed with care")
    assert refused["status"] == "error"
    assert "Rate limit reached for your account on requests per minute" in refused["error"]
    assert "try again in" in refused["error"]
    assert len(fake_upstream.chat_requests()) == 1
    stored = await _stored(conversation)
    assert ("user", "complete", "second, typed with care") in stored


async def test_with_the_budget_spent_the_chat_says_so(
    alice: User,
    conversation: Conversation,
    chat_model: LanguageModel,
    connect: Connect,
) -> None:
    await Limit.objects.acreate(budget_usd=Decimal("0.50"), budget_period="day")
    await UsageRecord.objects.acreate(user=alice, model_public_id="x", cost=Decimal("0.50"))
    refused = await _send(connect, alice, conversation, "hello")
    assert refused["status"] == "error"
    assert "exceeded your current quota" in refused["error"] and "$0.50 daily budget" in refused["error"]
    assert await Message.objects.filter(conversation=conversation, role="user", content="hello").aexists()


async def test_the_default_limits_an_admin_sets_bind_every_users_chat(
    alice: User,
    bob: User,
    conversation: Conversation,
    chat_model: LanguageModel,
    fake_upstream: FakeUpstream,
    connect: Connect,
    clock: ManualClock,
) -> None:
    await Limit.objects.acreate(requests_per_minute=1)  # the default: no user, no key
    fake_upstream.queue(Reply(content="Alice's answer"), Reply(content="Bob's answer"))
    assert (await _send(connect, alice, conversation, "first"))["status"] == "complete"
    refused = await _send(connect, alice, conversation, "second")
    assert refused["status"] == "error" and "requests per minute" in refused["error"]

    # Each user has the default to themselves: bob is not held back by alice's use.
    bobs = await Conversation.objects.acreate(owner=bob, model=chat_model)
    assert (await _send(connect, bob, bobs, "mine"))["status"] == "complete"
    assert len(fake_upstream.chat_requests()) == 2

    clock.advance(60)  # the bucket refills: alice may chat again
    fake_upstream.queue(Reply(content="Later"))
    assert (await _send(connect, alice, conversation, "third"))["status"] == "complete"
