"""The fake Anthropic upstream speaks Anthropic's API as the anthropic SDK expects it (tests/fake_anthropic.py).

The SDK talks to it over real HTTP on loopback: if the fake's events or shapes drifted from Anthropic's,
the SDK's own parsing and stream accumulation would fail here first.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from tests.fake_anthropic import AnthropicReply, FakeAnthropic, RedactedThinking, Text, Thinking, ToolUse
from tests.gateway import anthropic_examples as docs

KEY = "sk-ant-fake-0123456789"


@pytest.fixture
def client(fake_anthropic: FakeAnthropic) -> anthropic.Anthropic:
    fake_anthropic.api_key = KEY
    return anthropic.Anthropic(base_url=fake_anthropic.base_url, api_key=KEY, max_retries=0)


def test_a_message_is_answered_and_the_request_recorded_byte_for_byte(
    fake_anthropic: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    fake_anthropic.queue(AnthropicReply(content=[Text("Hello!")], input_tokens=12, output_tokens=6))
    message = client.messages.create(**docs.HELLO, extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    assert message.content[0].text == "Hello!"
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == ("end_turn", 12, 6)
    sent = fake_anthropic.last
    assert KEY in (sent.api_key, sent.authorization.removeprefix("Bearer "))  # newer SDKs send a bearer
    assert sent.beta == "prompt-caching-2024-07-31" and sent.version
    assert json.loads(sent.raw) == sent.body == docs.HELLO


def test_a_stream_has_anthropics_event_sequence_with_thinking_and_tool_use(
    fake_anthropic: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    fake_anthropic.queue(
        AnthropicReply(
            content=[
                Thinking("Let me check the weather."),
                RedactedThinking(),
                Text("Checking."),
                ToolUse("get_weather", {"location": "Paris"}),
            ]
        )
    )
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    frames = httpx.post(
        f"{fake_anthropic.base_url}/v1/messages", headers=headers, json={**docs.HELLO, "stream": True}, timeout=30
    ).text
    names = [line.removeprefix("event: ") for line in frames.splitlines() if line.startswith("event: ")]
    assert names[:4] == ["message_start", "content_block_start", "ping", "content_block_delta"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    fake_anthropic.queue(
        AnthropicReply(
            content=[
                Thinking("Let me check the weather."),
                RedactedThinking(),
                Text("Checking."),
                ToolUse("get_weather", {"location": "Paris"}),
            ]
        )
    )
    with client.messages.stream(**docs.HELLO) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert message.content[0].thinking == "Let me check the weather."
    assert message.content[0].signature.startswith("EqQB")
    assert message.content[3].input == {"location": "Paris"}
    assert message.stop_reason == "tool_use"


def test_an_overloaded_error_mid_stream_and_a_529_reach_the_sdk_as_overloaded(
    fake_anthropic: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    fake_anthropic.queue(AnthropicReply(content=[Text("one two three")], error_after_deltas=1))
    with pytest.raises(anthropic.APIStatusError) as mid_stream, client.messages.stream(**docs.HELLO) as stream:
        for _ in stream:
            pass
    assert "overloaded_error" in str(mid_stream.value)
    fake_anthropic.queue(AnthropicReply(status=529, error_type="overloaded_error", error_message="Overloaded"))
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(**docs.HELLO)


def test_count_tokens_models_and_a_wrong_key(fake_anthropic: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake_anthropic.token_count = 14
    count = client.messages.count_tokens(
        model=docs.MODEL, system="You are a scientist", messages=[{"role": "user", "content": "Hello, Claude"}]
    )
    assert count.input_tokens == 14
    assert [model.id for model in client.models.list()][:1] == ["claude-opus-4-1-20250805"]
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=fake_anthropic.base_url, api_key="sk-ant-wrong", max_retries=0).messages.create(
            **docs.HELLO
        )
