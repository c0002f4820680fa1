"""POST /v1/chat/completions through the official openai SDK, sync and async, streamed and not.

Every answer and every chunk is validated against OpenAI's published schema.
"""

from __future__ import annotations

from typing import Any

from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL, UPSTREAM_MODEL, Gateway
from tests.openai_schema import validate

MESSAGES: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


def test_it_answers_a_completion_with_our_model_id(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="Hello there"))
    completion = gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello there"
    assert completion.model == MODEL
    validate(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    sent = fake_upstream.last
    assert sent.body is not None and sent.body["model"] == UPSTREAM_MODEL
    assert sent.body["messages"] == MESSAGES
    assert sent.authorization == "Bearer sk-upstream-secret-0123456789"
    assert completion.usage is not None and completion.usage.completion_tokens > 0


async def test_the_async_sdk_gets_a_completion(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="Async hello"))
    async with gateway.async_client() as client:
        completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].message.content == "Async hello"
    assert completion.model == MODEL


def test_it_streams_chunks_with_our_model_id_and_no_usage_chunk_unasked(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="one two three four"))
    stream = gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    chunks = list(stream)
    for chunk in chunks:
        validate(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
        assert chunk.model == MODEL
        assert chunk.choices, "no usage chunk unless asked"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "one two three four"
    assert chunks[-1].choices[0].finish_reason == "stop"
    # We still asked the upstream for usage, for our own accounting.
    assert fake_upstream.last.body is not None
    assert fake_upstream.last.body["stream_options"] == {"include_usage": True}


async def test_the_async_sdk_streams_and_gets_the_usage_chunk_when_asking(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="a b c", chunks=3))
    async with gateway.async_client() as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    for chunk in chunks:
        validate(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])


def test_a_usage_chunk_is_estimated_when_the_upstream_sends_none(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="some words here", usage=False))
    stream = gateway.client().chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    last = list(stream)[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0


def test_tool_call_deltas_pass_through_intact(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', id="call_42")]))
    tools: Any = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
    ]
    stream = gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES, tools=tools, stream=True)
    chunks = list(stream)
    for chunk in chunks:
        validate(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    calls = [call for c in chunks for call in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id == "call_42" and calls[0].function is not None and calls[0].function.name == "get_weather"
    assert "".join(c.function.arguments or "" for c in calls if c.function) == '{"city": "Paris"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert fake_upstream.last.body is not None and fake_upstream.last.body["tools"] == tools


def test_a_non_streamed_tool_call_validates(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(tool_calls=[ToolCall("lookup", '{"q": 1}')]))
    completion = gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    validate(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    message = completion.choices[0].message
    assert message.tool_calls and message.tool_calls[0].function.arguments == '{"q": 1}'  # type: ignore[union-attr]


def test_n_choices_keep_their_indexes_when_streamed(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="x y", n=2))
    chunks = list(gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES, n=2, stream=True))
    texts = {0: "", 1: ""}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == {0: "x y", 1: "x y"}


def test_fields_we_do_not_model_reach_the_upstream_untouched(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    gateway.client().chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        temperature=0.2,
        max_tokens=50,
        extra_body={"top_k": 40, "min_p": 0.05, "chat_template_kwargs": {"thinking": False}},
    )
    sent = fake_upstream.last.body
    assert sent is not None
    assert sent["top_k"] == 40 and sent["min_p"] == 0.05 and sent["chat_template_kwargs"] == {"thinking": False}
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 50


def test_tools_false_means_no_tools_upstream(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES, extra_body={"tools": False})
    assert fake_upstream.last.body is not None and "tools" not in fake_upstream.last.body


def test_content_part_messages_are_accepted(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    parts = [{"type": "text", "text": "Describe"}, {"type": "text", "text": "it"}]
    messages: Any = [{"role": "user", "content": parts}]
    completion = gateway.client().chat.completions.create(model=MODEL, messages=messages)
    assert completion.choices[0].message.content
    assert fake_upstream.last.body is not None and fake_upstream.last.body["messages"] == messages
