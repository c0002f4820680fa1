"""Streams both ways (gateway.translate_anthropic): OpenAI chunks as Anthropic's event sequence, checked event
by event against the anthropic SDK's types and accumulated by the SDK itself; Anthropic's documented streams as
OpenAI chunks, checked against OpenAI's schema."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from pydantic import TypeAdapter

from gateway.errors import GatewayError
from gateway.translate_anthropic import ChatToMessagesStream, MessagesToChatStream, UnreadableAnswer
from tests.gateway import anthropic_examples as docs
from tests.openai_schema import validate

_EVENT: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190, "model": "acme/chat"}
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return {**body, "choices": choices, **extra}


USAGE = chunk(None, usage={"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40})


def anthropic_events(chunks: list[dict[str, Any]], *, ping_first: bool = False) -> list[dict[str, Any]]:
    stream = ChatToMessagesStream(model="acme/chat", input_tokens=30, id="msg_fixed")
    events = stream.ping() if ping_first else []
    for item in chunks:
        events += stream.feed(item)
    events += stream.finish()
    for event in events:
        if event["type"] != "ping":
            _EVENT.validate_python(event)
    return events


def accumulated(events: list[dict[str, Any]]) -> Any:
    """What the anthropic SDK's own stream helper makes of the events (a Message)."""
    snapshot, buffers = None, {}
    for event in events:
        if event["type"] != "ping":
            snapshot = accumulate_event(
                event=_EVENT.validate_python(event), current_snapshot=snapshot, json_bufs=buffers
            )
    return snapshot


# --- OpenAI chunks for an Anthropic client ----------------------------------------------------


def test_a_text_stream_becomes_anthropics_event_sequence() -> None:
    events = anthropic_events(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hello"}),
            chunk({"content": "!"}),
            chunk({}, "stop"),
            USAGE,
        ]
    )
    assert events == [
        {
            "type": "message_start",
            "message": {
                "id": "msg_fixed",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "acme/chat",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 30, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {
                "input_tokens": 25,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 15,
            },
        },
        {"type": "message_stop"},
    ]
    message = accumulated(events)
    assert message.content[0].text == "Hello!"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (25, 15)


def test_streamed_tool_calls_become_tool_use_blocks_with_input_json_deltas() -> None:
    def call(index: int, **fields: Any) -> dict[str, Any]:
        return chunk({"tool_calls": [{"index": index, **fields}]})

    events = anthropic_events(
        [
            chunk({"role": "assistant", "content": None}),
            call(0, id="call_1", type="function", function={"name": "get_weather", "arguments": ""}),
            call(0, function={"arguments": '{"location": "San'}),
            call(0, function={"arguments": ' Francisco, CA"}'}),
            call(1, id="call_2", type="function", function={"name": "get_time", "arguments": "{}"}),
            chunk({}, "tool_calls"),
        ]
    )
    kinds = [(e["type"], e.get("index"), (e.get("delta") or e.get("content_block") or {}).get("type")) for e in events]
    assert kinds == [
        ("message_start", None, None),
        ("content_block_start", 0, "tool_use"),
        ("content_block_delta", 0, "input_json_delta"),
        ("content_block_delta", 0, "input_json_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "tool_use"),
        ("content_block_delta", 1, "input_json_delta"),
        ("content_block_stop", 1, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    message = accumulated(events)
    assert [(b.id, b.name, b.input) for b in message.content] == [
        ("call_1", "get_weather", {"location": "San Francisco, CA"}),
        ("call_2", "get_time", {}),
    ]
    assert message.stop_reason == "tool_use"


def test_reasoning_becomes_a_thinking_block_then_the_text_its_own() -> None:
    events = anthropic_events(
        [
            chunk({"reasoning_content": "Let me think"}),
            chunk({"reasoning_content": "..."}),
            chunk({"content": "42"}),
            chunk({}, "stop"),
        ]
    )
    message = accumulated(events)
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content] == [
        ("thinking", "Let me think..."),
        ("text", "42"),
    ]


def test_pings_while_waiting_follow_one_message_start() -> None:
    stream = ChatToMessagesStream(model="acme/chat")
    assert [e["type"] for e in stream.ping()] == ["message_start", "ping"]
    assert stream.ping() == [{"type": "ping"}]
    assert [e["type"] for e in stream.feed(chunk({"content": "hi"}))] == ["content_block_start", "content_block_delta"]


def test_a_failure_mid_stream_ends_it_with_an_error_event() -> None:
    stream = ChatToMessagesStream(model="acme/chat")
    stream.feed(chunk({"content": "hi"}))
    assert stream.fail(GatewayError(503, "Every deployment is down.")) == [
        {"type": "error", "error": {"type": "overloaded_error", "message": "Every deployment is down."}}
    ]
    assert stream.finish() == []


def test_the_callers_usage_replaces_a_missing_one_and_other_choices_are_ignored() -> None:
    stream = ChatToMessagesStream(model="acme/chat")
    stream.feed(
        {**chunk({"content": "a"}), "choices": [{"index": 1, "delta": {"content": "b"}, "finish_reason": None}]}
    )
    end = stream.finish({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
    assert end[-2]["usage"] == {
        "input_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 3,
    }


def test_a_length_finish_is_max_tokens() -> None:
    events = anthropic_events([chunk({"content": "cut"}), chunk({}, "length")])
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"


# --- Anthropic's events for an OpenAI client --------------------------------------------------


def openai_chunks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stream = MessagesToChatStream(created=1694268190)
    chunks: list[dict[str, Any]] = []
    for event in events:
        chunks += stream.feed(event)
    chunks += stream.finish()
    for item in chunks:
        if "error" not in item:
            validate(item, "CreateChatCompletionStreamResponse")
    return chunks


def test_the_docs_basic_stream_becomes_chunks_with_usage_last() -> None:
    chunks = openai_chunks(docs.basic_stream())
    base = {
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": docs.MODEL,
    }
    assert chunks == [
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": "Hello"},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        },
        {**base, "choices": [{"index": 0, "delta": {"content": "!"}, "logprobs": None, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]},
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": 25,
                "completion_tokens": 15,
                "total_tokens": 40,
                "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 0},
            },
        },
    ]


def test_the_docs_tool_stream_becomes_indexed_tool_call_deltas() -> None:
    chunks = openai_chunks(docs.tool_stream())
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    text = "".join(d.get("content") or "" for d in deltas)
    assert text == "Okay, let's check the weather for San Francisco, CA:"
    calls = [call for d in deltas for call in d.get("tool_calls") or ()]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(call["index"] == 0 for call in calls)
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert json.loads(arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["prompt_tokens"] == 472 and chunks[-1]["usage"]["completion_tokens"] == 89


def test_the_docs_thinking_stream_becomes_reasoning_content_then_content() -> None:
    deltas = [c["choices"][0]["delta"] for c in openai_chunks(docs.thinking_stream()) if c["choices"]]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == (
        "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3"
    )
    assert "".join(d.get("content") or "" for d in deltas) == "27 * 453 = 12,231"


def test_an_overloaded_error_right_after_message_start_comes_before_any_chunk() -> None:
    stream = MessagesToChatStream()
    assert stream.feed(docs.basic_stream()[0]) == []
    assert stream.feed(docs.OVERLOADED) == [
        {"error": {"message": "Overloaded", "type": "upstream_error", "param": None, "code": "upstream_overloaded"}}
    ]


def test_usage_reported_late_replaces_the_early_counts() -> None:
    events = docs.basic_stream()
    events[0]["message"]["usage"] = {"input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 1}
    events[-2]["usage"] = {
        "input_tokens": 6,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 0,
        "output_tokens": 21,
    }
    usage = openai_chunks(events)[-1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["prompt_tokens_details"]["cached_tokens"]) == (
        106,
        21,
        100,
    )


def test_unknown_event_types_are_ignored() -> None:
    events = docs.basic_stream()
    events.insert(2, {"type": "content_block_weather", "index": 0, "forecast": "sunny"})
    assert len(openai_chunks(events)) == 4


@pytest.mark.parametrize(
    "event",
    [{"type": "content_block_delta", "index": 0}, {"type": "message_start"}, "not an object", {"no": "type"}],
)
def test_an_unreadable_event_is_refused(event: Any) -> None:
    with pytest.raises(UnreadableAnswer):
        MessagesToChatStream().feed(event)


def test_a_stream_cut_before_message_stop_is_unreadable() -> None:
    stream = MessagesToChatStream()
    for event in docs.basic_stream()[:-2]:
        stream.feed(event)
    with pytest.raises(UnreadableAnswer):
        stream.finish()


def test_a_round_trip_through_anthropics_events_keeps_text_and_tool_calls() -> None:
    original = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Checking."}),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a"'}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        chunk({}, "tool_calls"),
        USAGE,
    ]
    chunks = openai_chunks(anthropic_events(original))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == "Checking."
    calls = [call for d in deltas for call in d.get("tool_calls") or ()]
    assert (calls[0]["id"], calls[0]["function"]["name"]) == ("call_9", "f")
    assert "".join(c["function"]["arguments"] for c in calls) == '{"a": 1}'
    assert chunks[-1]["usage"]["prompt_tokens"] == 25
