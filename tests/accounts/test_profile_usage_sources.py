"""Browser chats and API calls both land on the profile, each in its own row: generated through
the serving core as the chat and the /v1 views use it, against the fake upstream."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from accounts import keys
from accounts.models import User
from catalogue.models import LanguageModel, Provider
from gateway.auth import Caller
from gateway.chat_completions.serving import ChatServing
from tests.fake_upstream import FakeUpstream, Reply
from usage.ledger import flush_usage
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def model(fake_upstream: FakeUpstream) -> LanguageModel:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, connect_timeout=2, read_timeout=10)
    return LanguageModel.objects.create(
        public_id="acme/chat-1",
        provider=provider,
        upstream_model="fake-small",
        input_price_per_million=1,
        output_price_per_million=2,
    )


def numbers(page: str, source: str) -> list[str]:
    match = re.search(rf'<tr data-period="recent" data-source="{source}"[^>]*>(.*?)</tr>', page, re.S)
    assert match
    return re.findall(r'<td class="num">([^<]*)</td>', match.group(1))


async def test_browser_chats_and_api_calls_are_counted_apart(
    alice: User, model: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    key, _ = await sync_to_async(keys.create_key)(alice, "laptop")
    body = {
        "model": "acme/chat-1",
        "messages": [{"role": "user", "content": "one two three"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    fake_upstream.queue(Reply(content="a b c d", chunks=4))
    chat = Caller(user=alice, api_key=None, source=UsageRecord.Source.CHAT)
    async for _ in ChatServing(chat, body, stream=True).stream(None):
        pass
    fake_upstream.queue(Reply(content="e f"))
    api = Caller(user=alice, api_key=key, source=UsageRecord.Source.API)
    await ChatServing(api, {"model": "acme/chat-1", "messages": body["messages"]}, stream=False).answer()
    await flush_usage()

    def profile() -> str:
        client = Client()
        client.force_login(alice)
        return client.get("/accounts/profile/").content.decode()

    page = await sync_to_async(profile)()
    chat_row, api_row = numbers(page, "chat"), numbers(page, "api")
    chat_usage = await UsageRecord.objects.aget(source=UsageRecord.Source.CHAT)
    api_usage = await UsageRecord.objects.aget(source=UsageRecord.Source.API)
    assert chat_row[:3] == ["1", str(chat_usage.prompt_tokens), str(chat_usage.completion_tokens)]
    assert api_row[:3] == ["1", str(api_usage.prompt_tokens), str(api_usage.completion_tokens)]
    assert chat_usage.completion_tokens == 4 and chat_usage.api_key_id is None
    assert api_usage.api_key_id == key.pk
    total = numbers(page, "total")
    assert total[0] == "2"
    assert total[4] == f"{chat_usage.cost + api_usage.cost:.4f}"
