"""OpenAI clients of a model whose provider speaks Anthropic's Messages API (the fake Anthropic upstream).

The chat request is translated to a Messages request sent natively (x-api-key, anthropic-version),
and the answer or stream translated back, through the official openai SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from catalogue.models import LanguageModel, Provider
from tests.fake_anthropic import AnthropicReply, FakeAnthropic, Text, Thinking, ToolUse
from tests.gateway.conftest import Gateway, wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

CLAUDE = "anthropic/claude-sonnet"
UPSTREAM_CLAUDE = "claude-sonnet-4-5-20250929"
UPSTREAM_KEY = "sk-ant-upstream-secret-0123456789"
HELLO: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def claude(gateway: Gateway, fake_anthropic: FakeAnthropic) -> Iterator[LanguageModel]:
    provider = Provider.objects.create(
        name="anthropic", kind=Provider.Kind.ANTHROPIC, base_url=fake_anthropic.base_url, read_timeout=5
    )
    provider.set_api_key(UPSTREAM_KEY)
    provider.save()
    fake_anthropic.api_key = UPSTREAM_KEY
    yield LanguageModel.objects.create(
        public_id=CLAUDE,
        provider=provider,
        upstream_model=UPSTREAM_CLAUDE,
        context_length=200000,
        max_output_tokens=4096,
        input_price_per_million=3,
        output_price_per_million=15,
    )


def test_a_chat_completion_is_sent_natively_and_answered_in_openais_shape(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(AnthropicReply(content=[Text("Hello there")], input_tokens=12, output_tokens=3))
    completion = gateway.client().chat.completions.create(model=CLAUDE, messages=HELLO, user="someone@example.com")
    assert completion.model == CLAUDE
    assert completion.choices[0].message.content == "Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 3)
    sent = fake_anthropic.last
    assert sent.path == "/v1/messages" and sent.api_key == UPSTREAM_KEY and sent.version == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.body is not None and sent.body["model"] == UPSTREAM_CLAUDE
    assert sent.body["system"] == "Be brief."
    assert sent.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
    assert sent.body["max_tokens"] == 4096, "Anthropic requires max_tokens: the model's output limit by default"
    assert "someone@example.com" not in sent.raw.decode(), "the end user goes upstream hashed"
    [row] = wait_for_usage(1)
    assert (row.prompt_tokens, row.completion_tokens, row.usage_estimated) == (12, 3, False)


def test_tool_use_and_thinking_come_back_as_tool_calls_and_reasoning_content(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(
        AnthropicReply(content=[Thinking("Paris, so..."), Text("Checking."), ToolUse("get_weather", {"city": "Paris"})])
    )
    completion = gateway.client().chat.completions.create(model=CLAUDE, messages=HELLO, tools=[WEATHER_TOOL])
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content == "Checking."
    assert message.model_extra is not None and message.model_extra["reasoning_content"] == "Paris, so..."
    [call] = message.tool_calls or []
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    sent = fake_anthropic.last.body
    assert sent is not None and sent["tools"][0]["name"] == "get_weather"


def test_a_stream_has_tool_call_deltas_with_indexes_and_usage_last_when_asked(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(
        AnthropicReply(
            content=[
                Thinking("Two cities."),
                ToolUse("get_weather", {"city": "Paris"}, id="toolu_1"),
                ToolUse("get_weather", {"city": "Oslo"}, id="toolu_2"),
            ],
            input_tokens=20,
            output_tokens=9,
        )
    )
    stream = gateway.client().chat.completions.create(
        model=CLAUDE, messages=HELLO, tools=[WEATHER_TOOL], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(chunk.model == CLAUDE for chunk in chunks)
    arguments: dict[int, str] = {}
    ids: dict[int, str] = {}
    reasoning = ""
    for chunk in chunks[:-1]:
        delta = chunk.choices[0].delta
        reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
        for call in delta.tool_calls or ():
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")  # type: ignore[union-attr]
            if call.id:
                ids[call.index] = call.id
    assert reasoning == "Two cities."
    assert ids == {0: "toolu_1", 1: "toolu_2"}
    assert {i: json.loads(a) for i, a in arguments.items()} == {0: {"city": "Paris"}, 1: {"city": "Oslo"}}
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (20, 9)
    assert fake_anthropic.last.body is not None and fake_anthropic.last.body["stream"] is True


async def test_the_async_sdk_streams_text(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(AnthropicReply(content=[Text("one two three")]))
    async with gateway.async_client() as client:
        stream = await client.chat.completions.create(model=CLAUDE, messages=HELLO, stream=True)
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == "one two three"


def test_an_overloaded_upstream_is_retryable_and_answered_in_openais_shape(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(*[AnthropicReply(status=529, error_type="overloaded_error", error_message="Overloaded")] * 3)
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(model=CLAUDE, messages=HELLO)
    assert caught.value.status_code == 503
    error = caught.value.body
    assert isinstance(error, dict) and set(error) >= {"message", "type", "code"}
    assert "unavailable right now" in error["message"]
    assert UPSTREAM_KEY not in json.dumps(error)
    assert len(fake_anthropic.message_requests()) > 1, "a 529 is retried"


def test_an_overloaded_upstream_fails_over_to_the_next_deployment(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(
        AnthropicReply(status=529, error_type="overloaded_error", error_message="Overloaded"),
        AnthropicReply(content=[Text("second try")]),
    )
    completion = gateway.client().chat.completions.create(model=CLAUDE, messages=HELLO)
    assert completion.choices[0].message.content == "second try"
    assert len(fake_anthropic.message_requests()) == 2


def test_an_overloaded_error_event_before_any_content_is_retried(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(AnthropicReply(error_after_deltas=0), AnthropicReply(content=[Text("after all")]))
    stream = gateway.client().chat.completions.create(model=CLAUDE, messages=HELLO, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "after all"


def test_an_upstream_client_error_keeps_its_status_in_openais_shape(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(AnthropicReply(status=400, error_type="invalid_request_error", error_message="bad thing"))
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(model=CLAUDE, messages=HELLO)
    assert isinstance(caught.value.body, dict) and "bad thing" in caught.value.body["message"]


# --- Anthropic in front and behind: passthrough ------------------------------------------------

CACHED_SYSTEM: Any = [{"type": "text", "text": "A long manual. " * 50, "cache_control": {"type": "ephemeral"}}]
SIGNED_TURNS: Any = [
    {"role": "user", "content": "What is 6 x 7?"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "6 x 7 = 42.", "signature": "EqQBCgIYAhIMsigned"},
            {"type": "text", "text": "42"},
        ],
    },
    {"role": "user", "content": [{"type": "text", "text": "And 6 x 8?", "cache_control": {"type": "ephemeral"}}]},
]


def test_an_anthropic_client_of_an_anthropic_model_is_passed_through_unchanged(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(
        AnthropicReply(content=[Thinking("6 x 8 = 48.", signature="sig-48"), Text("48")], cache_read_input_tokens=700)
    )
    body: Any = {
        "model": CLAUDE,
        "max_tokens": 2048,
        "system": CACHED_SYSTEM,
        "messages": SIGNED_TURNS,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "some_new_beta_field": {"keep": [1, 2.5, "é"]},
    }
    answer = gateway.http.post(
        "/v1/messages",
        headers={
            "x-api-key": gateway.secret,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "context-1m-2025-08-07",
        },
        json=body,
    )
    assert answer.status_code == 200, answer.text
    sent = fake_anthropic.last
    assert sent.beta == "context-1m-2025-08-07"
    assert sent.body == {**body, "model": UPSTREAM_CLAUDE}
    expected = json.dumps({**body, "model": UPSTREAM_CLAUDE}, separators=(",", ":"), ensure_ascii=False).encode()
    assert sent.raw == expected
    message = answer.json()
    assert message["model"] == CLAUDE
    assert message["content"][0] == {"type": "thinking", "thinking": "6 x 8 = 48.", "signature": "sig-48"}
    assert message["usage"]["cache_read_input_tokens"] == 700
    [row] = wait_for_usage(1)
    assert row.status == 200 and row.prompt_tokens >= 700


def test_a_streamed_passthrough_relays_anthropics_events_as_they_came(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(
        AnthropicReply(content=[Thinking("8 x 6.", signature="sig-stream"), Text("48")], cache_read_input_tokens=700)
    )
    body: Any = {"model": CLAUDE, "max_tokens": 2048, "system": CACHED_SYSTEM, "messages": SIGNED_TURNS, "stream": True}
    with gateway.http.stream(
        "POST", "/v1/messages", headers={"x-api-key": gateway.secret, "anthropic-beta": "b-1"}, json=body
    ) as answer:
        lines = list(answer.iter_lines())
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    kinds = [event["type"] for event in events]
    assert kinds.count("message_start") == 1 and kinds[-1] == "message_stop"
    assert events[0]["message"]["model"] == CLAUDE
    signatures = [
        e["delta"]["signature"] for e in events if e["type"] == "content_block_delta" and "signature" in e["delta"]
    ]
    assert signatures == ["sig-stream"], "signature deltas survive"
    [delta] = [e for e in events if e["type"] == "message_delta"]
    assert delta["usage"]["output_tokens"] > 0
    sent = fake_anthropic.last
    assert sent.beta == "b-1" and sent.body == {**body, "model": UPSTREAM_CLAUDE}
    [row] = wait_for_usage(1)
    assert row.status == 200 and row.stream and row.prompt_tokens >= 700


def test_the_anthropic_sdk_streams_a_passthrough_with_thinking(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(AnthropicReply(content=[Thinking("Hmm.", signature="sig-sdk"), Text("Done")]))
    client = anthropic.Anthropic(
        base_url=gateway.url, api_key=gateway.secret, max_retries=0, http_client=gateway.app.sdk_client()
    )
    with client.messages.stream(
        model=CLAUDE, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024}, messages=SIGNED_TURNS
    ) as stream:
        final = stream.get_final_message()
    assert final.model == CLAUDE
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.signature == "sig-sdk"
    assert final.content[1].type == "text" and final.content[1].text == "Done"


def test_an_overloaded_passthrough_is_a_529_for_the_anthropic_client(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: LanguageModel
) -> None:
    fake_anthropic.queue(*[AnthropicReply(status=529, error_type="overloaded_error", error_message="Overloaded")] * 5)
    client = anthropic.Anthropic(
        base_url=gateway.url, api_key=gateway.secret, max_retries=0, http_client=gateway.app.sdk_client()
    )
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model=CLAUDE, max_tokens=100, messages=SIGNED_TURNS)
