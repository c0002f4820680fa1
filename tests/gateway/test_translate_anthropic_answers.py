"""Answers, usage and errors both ways (gateway.translate_anthropic). Anthropic Messages we build are checked
against the anthropic SDK's own types, chat completions against OpenAI's schema."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from gateway.errors import GatewayError
from gateway.translate_anthropic import (
    UnreadableAnswer,
    anthropic_error,
    chat_completion_to_message,
    describe_anthropic_error,
    message_to_chat_completion,
    openai_error,
    usage_to_anthropic,
    usage_to_openai,
)
from tests.gateway import anthropic_examples as docs
from tests.openai_schema import validate


def completion(message: dict[str, Any], finish: str = "stop", usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "acme/chat",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "logprobs": None, "finish_reason": finish}
        ],
        "usage": usage or {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
    }


def to_message(payload: dict[str, Any]) -> dict[str, Any]:
    message = chat_completion_to_message(payload)
    anthropic.types.Message.model_validate(message)
    return message


def to_completion(message: dict[str, Any]) -> dict[str, Any]:
    answer = message_to_chat_completion(message, created=1741569952)
    validate(answer, "CreateChatCompletionResponse")
    return answer


# --- an OpenAI answer for an Anthropic client -------------------------------------------------


def test_a_text_answer_becomes_a_message() -> None:
    assert to_message(completion({"content": "Hello! How can I assist you today?", "refusal": None})) == {
        "id": "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello! How can I assist you today?"}],
        "model": "acme/chat",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 19,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 10,
        },
    }


def test_tool_calls_become_tool_use_blocks_with_parsed_input() -> None:
    calls = [
        {
            "id": "call_abc123",
            "type": "function",
            "function": {"name": "get_current_weather", "arguments": '{\n"location": "Boston, MA"\n}'},
        },
        {"id": "call_def456", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    ]
    message = to_message(completion({"content": None, "tool_calls": calls}, finish="tool_calls"))
    assert message["content"] == [
        {"type": "tool_use", "id": "call_abc123", "name": "get_current_weather", "input": {"location": "Boston, MA"}},
        {"type": "tool_use", "id": "call_def456", "name": "get_time", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"


def test_arguments_that_are_no_json_object_are_kept_as_text() -> None:
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "Paris, please"}}]
    message = to_message(completion({"content": None, "tool_calls": calls}, finish="tool_calls"))
    assert message["content"][0]["input"] == {"arguments": "Paris, please"}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_a_thinking_block_before_the_text(field: str) -> None:
    message = to_message(completion({"content": "12,231", field: "27 * 453: 27 * 400 = 10,800 ..."}))
    assert message["content"] == [
        {"type": "thinking", "thinking": "27 * 453: 27 * 400 = 10,800 ...", "signature": ""},
        {"type": "text", "text": "12,231"},
    ]


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons_become_stop_reasons(finish: str | None, stop_reason: str) -> None:
    payload = completion({"content": "x"})
    payload["choices"][0]["finish_reason"] = finish
    assert to_message(payload)["stop_reason"] == stop_reason


def test_a_refusal_is_the_text_of_a_refusal() -> None:
    message = to_message(completion({"content": None, "refusal": "I can't help with that."}))
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert message["stop_reason"] == "refusal"


def test_cached_prompt_tokens_become_cache_reads() -> None:
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920},
    }
    assert usage_to_anthropic(usage) == {
        "input_tokens": 86,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1920,
        "output_tokens": 300,
    }


# --- an Anthropic answer for an OpenAI client -------------------------------------------------


def test_the_docs_hello_answer_becomes_a_chat_completion() -> None:
    assert to_completion(docs.HELLO_ANSWER) == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": 1741569952,
        "model": docs.MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 6,
            "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 0},
        },
    }


def test_the_docs_tool_use_answer_becomes_tool_calls() -> None:
    message = {**docs.HELLO_ANSWER, "content": docs.TOOL_ROUND_TRIP[1]["content"], "stop_reason": "tool_use"}
    choice = to_completion(message)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"].startswith("<thinking>I need to use get_weather")
    assert choice["message"]["tool_calls"] == [
        {
            "id": docs.TOOL_USE_ID,
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "San Francisco, CA", "unit": "celsius"}'},
        }
    ]


def test_thinking_becomes_reasoning_content_and_redacted_thinking_goes() -> None:
    message = {**docs.HELLO_ANSWER, "content": [docs.THINKING, docs.REDACTED_THINKING, {"type": "text", "text": "42"}]}
    answer = to_completion(message)["choices"][0]["message"]
    assert answer == {
        "role": "assistant",
        "content": "42",
        "reasoning_content": "Let me analyze this step by step...",
        "refusal": None,
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("a_reason_from_the_future", "stop"),
    ],
)
def test_stop_reasons_become_finish_reasons(stop_reason: str, finish: str) -> None:
    assert to_completion({**docs.HELLO_ANSWER, "stop_reason": stop_reason})["choices"][0]["finish_reason"] == finish


def test_cache_reads_and_writes_count_as_prompt_tokens() -> None:
    assert usage_to_openai(docs.CACHE_USAGE) == {
        "prompt_tokens": 21 + 188086,
        "completion_tokens": 393,
        "total_tokens": 21 + 188086 + 393,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 188086},
    }
    read = {**docs.CACHE_USAGE, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 188086}
    assert usage_to_openai(read)["prompt_tokens_details"] == {"cached_tokens": 188086, "cache_creation_tokens": 0}
    # And back: what Anthropic said is what an Anthropic client reads.
    assert usage_to_anthropic(usage_to_openai(docs.CACHE_USAGE)) == docs.CACHE_USAGE


@pytest.mark.parametrize(
    "payload", [{"type": "message"}, {"error": "x"}, [], {**docs.HELLO_ANSWER, "content": "Hello!"}]
)
def test_an_answer_that_is_no_message_is_unreadable(payload: Any) -> None:
    with pytest.raises(UnreadableAnswer):
        message_to_chat_completion(payload)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected_status", "kind"),
    [
        (400, 400, "invalid_request_error"),
        (401, 401, "authentication_error"),
        (403, 403, "permission_error"),
        (404, 404, "not_found_error"),
        (413, 413, "request_too_large"),
        (429, 429, "rate_limit_error"),
        (500, 500, "api_error"),
        (502, 502, "api_error"),
        (503, 529, "overloaded_error"),
        (504, 504, "timeout_error"),
        (405, 405, "invalid_request_error"),
    ],
)
def test_our_errors_take_anthropics_shape(status: int, expected_status: int, kind: str) -> None:
    answer_status, body = anthropic_error(GatewayError(status, "Something specific."))
    assert answer_status == expected_status
    assert body == {"type": "error", "error": {"type": kind, "message": "Something specific."}}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("invalid_request_error", (400, "invalid_request_error", None)),
        ("rate_limit_error", (429, "rate_limit_exceeded", "rate_limit_exceeded")),
        ("overloaded_error", (503, "upstream_error", "upstream_overloaded")),
        ("api_error", (502, "upstream_error", "upstream_error")),
        ("timeout_error", (504, "upstream_error", "upstream_timeout")),
        ("something_new", (502, "upstream_error", "upstream_error")),
    ],
)
def test_anthropics_errors_take_ours(kind: str, expected: tuple[int, str, str | None]) -> None:
    assert openai_error(kind) == expected


def test_the_docs_error_body_is_read() -> None:
    assert describe_anthropic_error(docs.NOT_FOUND) == ("not_found_error", "The requested resource could not be found.")
    assert describe_anthropic_error({"detail": "nope"}) == (None, "")
