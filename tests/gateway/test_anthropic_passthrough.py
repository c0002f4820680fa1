"""Anthropic in front and behind: the request goes through as the client wrote it, never translated.

Checks, the output cap and the reservation read the Messages request itself, so what only Anthropic
serves (server tools, a cache pre-warm with max_tokens 0, documents by file id) reaches an Anthropic
upstream; the same request to a model with a deployment of another API is a 400 before anything is
reserved or sent.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from catalogue.models import Deployment, LanguageModel
from tests.fake_anthropic import AnthropicReply, FakeAnthropic, Text
from tests.gateway.conftest import Gateway, wait_for_usage
from tests.gateway.test_anthropic_upstream import CLAUDE, UPSTREAM_CLAUDE, claude  # noqa: F401
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

ONLY_ON_ANTHROPIC: Any = {
    "model": CLAUDE,
    "max_tokens": 300,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "document", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}},
                {"type": "text", "text": "What does the report say about the weather in Paris?"},
            ],
        }
    ],
    "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
    "container": {"skills": []},
}


def _client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=gateway.secret, max_retries=0, http_client=gateway.app.sdk_client()
    )


def test_what_only_anthropic_serves_reaches_an_anthropic_upstream_as_sent(
    gateway: Gateway,
    fake_anthropic: FakeAnthropic,
    claude: LanguageModel,  # noqa: F811
) -> None:
    fake_anthropic.queue(AnthropicReply(content=[Text("Sunny.")], input_tokens=30, output_tokens=2))
    message = _client(gateway).messages.create(
        **ONLY_ON_ANTHROPIC, extra_headers={"anthropic-beta": "files-api-2025-04-14"}
    )
    assert message.content[0].type == "text" and message.content[0].text == "Sunny."
    sent = json.loads(fake_anthropic.last.raw)
    assert sent == {**ONLY_ON_ANTHROPIC, "model": UPSTREAM_CLAUDE}
    assert fake_anthropic.last.beta == "files-api-2025-04-14"
    [row] = wait_for_usage(1)
    assert (row.status, row.prompt_tokens, row.completion_tokens) == (200, 30, 2)


def test_a_cache_prewarm_with_no_output_reaches_an_anthropic_upstream(
    gateway: Gateway,
    fake_anthropic: FakeAnthropic,
    claude: LanguageModel,  # noqa: F811
) -> None:
    fake_anthropic.queue(AnthropicReply(content=[], input_tokens=40, output_tokens=0))
    prewarm = {**ONLY_ON_ANTHROPIC, "max_tokens": 0}
    _client(gateway).messages.create(**prewarm)
    assert json.loads(fake_anthropic.last.raw)["max_tokens"] == 0


def test_the_same_request_to_a_model_also_on_another_api_is_a_400_before_anything_is_reserved(
    gateway: Gateway,
    fake_anthropic: FakeAnthropic,
    claude: LanguageModel,  # noqa: F811
) -> None:
    Deployment.objects.create(model=claude, provider=gateway.provider, upstream_model="chat-backup", priority=1)
    with pytest.raises(anthropic.BadRequestError) as refused:
        _client(gateway).messages.create(**ONLY_ON_ANTHROPIC)
    assert "reach only models on Anthropic" in refused.value.message
    assert fake_anthropic.message_requests() == []
    assert UsageRecord.objects.filter(status=200).count() == 0


def test_an_output_cap_above_the_models_is_refused_in_anthropics_shape_without_translating(
    gateway: Gateway,
    fake_anthropic: FakeAnthropic,
    claude: LanguageModel,  # noqa: F811
) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        _client(gateway).messages.create(**{**ONLY_ON_ANTHROPIC, "max_tokens": 8000})
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "max_tokens is too large: 8000" in refused.value.message
    assert fake_anthropic.message_requests() == []


def test_count_tokens_reads_anthropics_own_shapes(
    gateway: Gateway,
    claude: LanguageModel,  # noqa: F811
) -> None:
    body = {key: value for key, value in ONLY_ON_ANTHROPIC.items() if key not in ("max_tokens", "container")}
    counted = _client(gateway).messages.count_tokens(**body).input_tokens
    longer = dict(body, messages=[*body["messages"], {"role": "assistant", "content": "Sunny, " * 200}])
    assert 0 < counted < _client(gateway).messages.count_tokens(**longer).input_tokens
