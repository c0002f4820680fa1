"""Responses API <-> chat completions (gateway.translate_responses), with the examples of OpenAI's docs.

Every Response and stream event produced is validated against OpenAI's schema, and every chat
request against CreateChatCompletionRequest and our own chat validation.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.chat_completions.protocol import parse_chat_request
from gateway.errors import GatewayError
from gateway.responses_api.protocol import CreateResponse, parse_response_request
from gateway.translate_responses import Ids, ResponseStream, chat_request, output_text, response_from_completion
from tests.openai_schema import validate, validate_event

IDS = Ids("resp_67ccd2bed1ec8190", created_at=1741476542, completed_at=1741476543)
WEATHER_TOOL = {
    "type": "function",
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location", "unit"],
    },
}


def request(**fields: Any) -> CreateResponse:
    return parse_response_request({"model": "gpt-5.4", **fields})


def chat(req: CreateResponse, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body = chat_request(req, history or [])
    validate(body, "CreateChatCompletionRequest")
    parse_chat_request(body)
    return body


def completion(message: dict[str, Any], finish_reason: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1741476542,
        "model": "up",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 36, "completion_tokens": 87, "total_tokens": 123},
        **extra,
    }


def answer(req: CreateResponse, message: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = response_from_completion(req, completion(message, **kwargs), IDS, "gpt-5.4")
    validate(response, "Response")
    return response


# --- requests ---------------------------------------------------------------------------------


def test_text_input_becomes_one_user_message() -> None:
    body = chat(request(input="Tell me a three sentence bedtime story about a unicorn."))
    assert body == {
        "model": "gpt-5.4",
        "messages": [{"role": "user", "content": "Tell me a three sentence bedtime story about a unicorn."}],
    }


def test_instructions_and_developer_messages_become_system_messages() -> None:
    body = chat(
        request(
            instructions="You are a helpful assistant.",
            input=[
                {"role": "developer", "content": "Talk like a pirate."},
                {"role": "user", "content": "Are semicolons optional in JavaScript?"},
            ],
        )
    )
    assert [m["role"] for m in body["messages"]] == ["system", "system", "user"]
    assert body["messages"][0]["content"] == "You are a helpful assistant."


def test_image_input_becomes_image_url_parts() -> None:
    url = "https://upload.wikimedia.org/wikipedia/commons/thumb/d/dd/boardwalk.jpg/2560px-boardwalk.jpg"
    body = chat(
        request(
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is in this image?"},
                        {"type": "input_image", "image_url": url, "detail": "low"},
                    ],
                }
            ]
        )
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "what is in this image?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
    ]


def test_a_function_tool_round_trip_becomes_tool_calls_and_a_tool_message() -> None:
    body = chat(
        request(
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "name": "get_current_weather"},
            parallel_tool_calls=False,
            input=[
                {"role": "user", "content": "What is the weather like in Boston today?"},
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_unLAR8MvFNptuiZK6K6HCy5k",
                    "name": "get_current_weather",
                    "arguments": '{"location":"Boston, MA","unit":"celsius"}',
                    "status": "completed",
                },
                {"type": "function_call_output", "call_id": "call_unLAR8MvFNptuiZK6K6HCy5k", "output": "22C, sunny"},
            ],
        )
    )
    assert body["tools"] == [
        {
            "type": "function",
            "function": {k: WEATHER_TOOL[k] for k in ("name", "description", "parameters")},
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_current_weather"}}
    assert body["parallel_tool_calls"] is False
    _user, call, result = body["messages"]
    assert call == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_unLAR8MvFNptuiZK6K6HCy5k",
                "type": "function",
                "function": {"name": "get_current_weather", "arguments": '{"location":"Boston, MA","unit":"celsius"}'},
            }
        ],
    }
    assert result == {"role": "tool", "tool_call_id": "call_unLAR8MvFNptuiZK6K6HCy5k", "content": "22C, sunny"}


def test_parallel_function_calls_join_the_assistant_message_before_them() -> None:
    call = {"type": "function_call", "name": "f", "arguments": "{}"}
    body = chat(
        request(
            input=[
                {"role": "user", "content": "both"},
                {"role": "assistant", "content": [{"type": "output_text", "text": "Calling two."}]},
                {**call, "call_id": "a"},
                {**call, "call_id": "b"},
                {"type": "function_call_output", "call_id": "a", "output": "1"},
                {"type": "function_call_output", "call_id": "b", "output": [{"type": "input_text", "text": "2"}]},
            ]
        )
    )
    assistant = body["messages"][1]
    assert assistant["content"] == "Calling two."
    assert [c["id"] for c in assistant["tool_calls"]] == ["a", "b"]
    assert [m["content"] for m in body["messages"][2:]] == ["1", "2"]


def test_earlier_turns_come_first_without_their_reasoning() -> None:
    history = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "knock knock."}]},
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "a joke"}]},
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Who's there?", "annotations": [], "logprobs": []}],
        },
    ]
    body = chat(request(input="Orange.", previous_response_id="resp_1", instructions="Be brief."), history)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "knock knock."},
        {"role": "assistant", "content": "Who's there?"},
        {"role": "user", "content": "Orange."},
    ]


def test_an_item_reference_is_resolved_from_earlier_turns_or_refused() -> None:
    history = [{"id": "msg_9", "type": "message", "role": "user", "content": "remember me"}]
    body = chat(request(input=[{"type": "item_reference", "id": "msg_9"}]), history)
    assert body["messages"][-1] == {"role": "user", "content": "remember me"}
    with pytest.raises(GatewayError) as caught:
        chat_request(request(input=[{"type": "item_reference", "id": "msg_404"}]))
    assert caught.value.param == "input[0].id"


def test_json_schema_and_json_object_formats_become_response_format() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    body = chat(
        request(input="x", text={"format": {"type": "json_schema", "name": "person", "schema": schema, "strict": True}})
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": schema, "strict": True},
    }
    assert chat(request(input="x", text={"format": {"type": "json_object"}}))["response_format"] == {
        "type": "json_object"
    }
    assert "response_format" not in chat(request(input="x", text={"format": {"type": "text"}}))


def test_sampling_caps_and_reasoning_map_to_chat_params() -> None:
    body = chat(
        request(
            input="How much wood would a woodchuck chuck?",
            reasoning={"effort": "high", "summary": "auto"},
            max_output_tokens=500,
            temperature=0.2,
            top_p=0.9,
            top_logprobs=2,
            store=False,
            metadata={"k": "v"},
            include=["reasoning.encrypted_content"],
            top_k=40,  # a provider's own parameter passes through
            stream=True,
        )
    )
    assert body["reasoning_effort"] == "high"
    assert body["max_completion_tokens"] == 500
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 40)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    for dropped in ("store", "metadata", "include", "reasoning", "max_output_tokens"):
        assert dropped not in body


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": "x", "tools": [{"type": "web_search_preview"}]}, "tools[0].type"),
        ({"input": "x", "tool_choice": {"type": "file_search"}}, "tool_choice.type"),
        ({"input": "x", "prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"input": [{"type": "computer_call", "id": "cu_1", "call_id": "c", "status": "completed"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x.test/a.pdf"}]}]},
            "input[0].content[0].file_data",
        ),
        (
            {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x.test/a.png"}]}]},
            "input[0].content[0].type",
        ),
    ],
)
def test_what_a_chat_upstream_cannot_do_is_a_400_naming_the_param(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        chat_request(request(**fields))
    assert caught.value.status == 400 and caught.value.param == param
    assert param in caught.value.message


# --- answers ----------------------------------------------------------------------------------


def test_a_completion_becomes_a_response_like_the_docs_example() -> None:
    req = request(input="Tell me a three sentence bedtime story about a unicorn.")
    response = answer(req, {"content": "In a peaceful grove beneath a silver moon..."})
    assert response["id"] == IDS.response_id and response["object"] == "response"
    assert (response["status"], response["completed_at"], response["store"]) == ("completed", 1741476543, True)
    [message] = response["output"]
    assert message["type"] == "message" and message["role"] == "assistant" and message["status"] == "completed"
    assert message["content"] == [
        {
            "type": "output_text",
            "text": "In a peaceful grove beneath a silver moon...",
            "annotations": [],
            "logprobs": [],
        }
    ]
    assert response["usage"] == {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 87,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 123,
    }
    assert output_text(response) == "In a peaceful grove beneath a silver moon..."
    assert (response["tool_choice"], response["tools"], response["metadata"]) == ("auto", [], {})


def test_tool_calls_become_function_call_items() -> None:
    req = request(input="What is the weather like in Boston today?", tools=[WEATHER_TOOL])
    response = answer(
        req,
        {
            "content": None,
            "tool_calls": [
                {
                    "id": "call_unLAR8MvFNptuiZK6K6HCy5k",
                    "type": "function",
                    "function": {"name": "get_current_weather", "arguments": '{"location":"Boston, MA"}'},
                }
            ],
        },
        finish_reason="tool_calls",
    )
    [call] = response["output"]
    assert call["type"] == "function_call" and call["call_id"] == "call_unLAR8MvFNptuiZK6K6HCy5k"
    assert (call["name"], call["arguments"], call["status"]) == (
        "get_current_weather",
        '{"location":"Boston, MA"}',
        "completed",
    )
    assert response["tools"][0]["name"] == "get_current_weather"


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_upstream_reasoning_becomes_a_reasoning_item_before_the_message(field: str) -> None:
    response = answer(request(input="woodchuck?"), {"content": "About 700 pounds.", field: "Think of the riddle."})
    reasoning, message = response["output"]
    assert reasoning["type"] == "reasoning"
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Think of the riddle."}]
    assert message["content"][0]["text"] == "About 700 pounds."


def test_a_reply_cut_by_the_cap_is_incomplete() -> None:
    response = answer(request(input="long", max_output_tokens=16), {"content": "and then"}, finish_reason="length")
    assert response["status"] == "incomplete" and response["completed_at"] is None
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"


def test_estimated_usage_stays_marked() -> None:
    req = request(input="x")
    body = completion({"content": "y"})
    body["usage"] = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "estimated": True}
    response = response_from_completion(req, body, IDS, "m")
    validate(response, "Response")
    assert response["usage"]["estimated"] is True


# --- streams ----------------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "up", "choices": choices, **extra}


def run(stream: ResponseStream, chunks: list[dict[str, Any]], usage: Any = None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for item in chunks:
        events += stream.feed(item)
    events += stream.finish(usage)
    check(events)
    return events


def check(events: list[dict[str, Any]]) -> None:
    for event in events:
        validate_event(json.loads(json.dumps(event)))
    assert [event["sequence_number"] for event in events] == list(range(len(events)))


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def test_a_text_stream_gives_the_spec_sequence() -> None:
    stream = ResponseStream(request(input="Hello!", instructions="You are a helpful assistant.", stream=True), IDS, "m")
    usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    events = run(
        stream,
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hi"}),
            chunk({"content": " there!"}),
            chunk({}, "stop"),
            chunk(None, usage=usage),
        ],
    )
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["Hi", " there!"]
    assert events[6]["text"] == "Hi there!"
    final = events[-1]["response"]
    assert final["status"] == "completed" and output_text(final) == "Hi there!"
    assert final["usage"]["input_tokens"] == 5 and final["usage"]["output_tokens"] == 3
    assert final["output"][0]["id"] == events[2]["item"]["id"] == events[4]["item_id"]
    assert stream.response == final


def test_a_tool_call_stream_gives_function_call_argument_events() -> None:
    stream = ResponseStream(request(input="weather?", tools=[WEATHER_TOOL], stream=True), IDS, "m")
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_current_weather", "arguments": ""},
    }
    events = run(
        stream,
        [
            chunk({"role": "assistant", "content": None, "tool_calls": [call]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Boston"}'}}]}),
            chunk({}, "tool_calls"),
        ],
    )
    assert types(events)[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = events[-3]
    assert (done["name"], done["arguments"]) == ("get_current_weather", '{"location":"Boston"}')
    [item] = events[-1]["response"]["output"]
    assert (item["call_id"], item["arguments"], item["status"]) == ("call_1", '{"location":"Boston"}', "completed")


def test_reasoning_then_text_then_two_tool_calls() -> None:
    stream = ResponseStream(request(input="x", stream=True), IDS, "m")
    events = run(
        stream,
        [
            chunk({"reasoning_content": "Let me "}),
            chunk({"reasoning_content": "think."}),
            chunk({"content": "Checking."}),
            chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
            chunk({}, "tool_calls"),
        ],
        usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    )
    assert types(events)[2:9] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call", "function_call"]
    assert final["output"][0]["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    assert [item["call_id"] for item in final["output"][2:]] == ["a", "b"]
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1, 2, 3]


def test_an_empty_reply_is_one_empty_message() -> None:
    events = run(ResponseStream(request(input="x", stream=True), IDS, "m"), [chunk({}, "stop")])
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == ""


def test_a_stream_cut_by_the_cap_ends_incomplete() -> None:
    events = run(
        ResponseStream(request(input="x", stream=True), IDS, "m"), [chunk({"content": "a"}), chunk({}, "length")]
    )
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_failure_mid_stream_ends_with_response_failed() -> None:
    stream = ResponseStream(request(input="x", stream=True), IDS, "m")
    events = stream.feed(chunk({"content": "partial"}))
    events += stream.fail("The upstream dropped the connection.", 502)
    check(events)
    failed = events[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["error"] == {"code": "server_error", "message": "The upstream dropped the connection."}
    assert failed["response"]["output"][0]["status"] == "incomplete"
    assert stream.finish() == [] and stream.fail("again") == []


def test_a_failure_before_anything_still_starts_the_stream() -> None:
    events = ResponseStream(request(input="x", stream=True), IDS, "m").fail("slow down", 429)
    check(events)
    assert types(events) == ["response.created", "response.in_progress", "response.failed"]
    assert events[-1]["response"]["error"]["code"] == "rate_limit_exceeded"
