"""Requests both ways (gateway.translate_anthropic): Anthropic's examples as chat bodies, and chat bodies as
Messages bodies. Every chat body produced is checked against OpenAI's schema and our parser, every Messages
body against the anthropic SDK's own types."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import MessageCreateParams
from pydantic import TypeAdapter

from gateway.anthropic_messages.protocol import parse_messages_request
from gateway.chat_completions.protocol import parse_chat_request
from gateway.errors import GatewayError
from gateway.translate_anthropic import messages_body, messages_to_chat
from tests.gateway import anthropic_examples as docs
from tests.openai_schema import validate

# The SDK's request type is a TypedDict; pydantic checks a body against it strictly enough.
_MESSAGES_BODY: TypeAdapter[Any] = TypeAdapter(MessageCreateParams)


def to_chat(**fields: Any) -> dict[str, Any]:
    body = {"model": "acme/chat", "max_tokens": 1024, **fields}
    chat = messages_to_chat(parse_messages_request(body))
    validate(chat, "CreateChatCompletionRequest")
    parse_chat_request(chat)
    return chat


def to_messages(max_tokens: int = 1000, **fields: Any) -> dict[str, Any]:
    body = messages_body(parse_chat_request({"model": "acme/chat", **fields}), max_tokens=max_tokens)
    _MESSAGES_BODY.validate_python(body)
    parse_messages_request(body)
    return body


def refused_to_chat(**fields: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        to_chat(**fields)
    assert caught.value.status == 400
    return caught.value


def refused_to_messages(**fields: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        to_messages(**fields)
    assert caught.value.status == 400
    return caught.value


# --- an Anthropic client, an OpenAI-compatible upstream ---------------------------------------


def test_the_docs_hello_world_becomes_a_chat_request() -> None:
    assert messages_to_chat(parse_messages_request(docs.HELLO)) == {
        "model": docs.MODEL,
        "messages": [{"role": "user", "content": "Hello, world"}],
        "max_tokens": 1024,
    }


def test_a_system_prompt_as_a_string_leads_the_messages() -> None:
    chat = to_chat(system="You are a seasoned data scientist.", messages=docs.MULTI_TURN)
    assert chat["messages"] == [{"role": "system", "content": "You are a seasoned data scientist."}, *docs.MULTI_TURN]


def test_a_system_prompt_in_blocks_loses_only_its_cache_control() -> None:
    chat = to_chat(system=docs.CACHED_SYSTEM, messages=[{"role": "user", "content": "Analyze the major themes."}])
    assert chat["messages"][0] == {
        "role": "system",
        "content": "You are an AI assistant tasked with analyzing literary works.\n\n"
        "<the entire contents of 'Pride and Prejudice'>",
    }


def test_a_multi_turn_conversation_and_a_prefill_keep_their_order() -> None:
    assert to_chat(messages=docs.MULTI_TURN)["messages"] == docs.MULTI_TURN
    assert to_chat(messages=docs.PREFILL)["messages"] == docs.PREFILL


def test_text_blocks_of_a_turn_become_one_string() -> None:
    content = [{"type": "text", "text": "<system-reminder>be brief</system-reminder>"}, {"type": "text", "text": "hi"}]
    chat = to_chat(messages=[{"role": "user", "content": content}])
    assert chat["messages"] == [{"role": "user", "content": "<system-reminder>be brief</system-reminder>\n\nhi"}]


def test_a_base64_image_becomes_a_data_url_and_a_url_image_stays_a_url() -> None:
    chat = to_chat(
        messages=[
            *docs.VISION,
            {"role": "assistant", "content": "An ant."},
            {"role": "user", "content": [docs.IMAGE_BY_URL]},
        ]
    )
    assert chat["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{docs.IMAGE_DATA}"}},
        {"type": "text", "text": "Describe this image."},
    ]
    assert chat["messages"][2]["content"] == [{"type": "image_url", "image_url": {"url": docs.IMAGE_URL}}]


def test_a_base64_pdf_becomes_a_file_part_and_a_text_document_text() -> None:
    text_doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green."},
        "title": "Facts",
    }
    chat = to_chat(
        messages=[{"role": "user", "content": [docs.PDF_BASE64, text_doc, {"type": "text", "text": "Summarize."}]}]
    )
    assert chat["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {"filename": "document.pdf", "file_data": f"data:application/pdf;base64,{docs.PDF_DATA}"},
        },
        {"type": "text", "text": "Facts"},
        {"type": "text", "text": "The grass is green."},
        {"type": "text", "text": "Summarize."},
    ]


@pytest.mark.parametrize(
    ("block", "param"),
    [
        (docs.PDF_BY_URL, "messages.0.content.0.source"),
        (
            {"type": "document", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}},
            "messages.0.content.0.source",
        ),
        (
            {"type": "image", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}},
            "messages.0.content.0.source",
        ),
        (
            {"type": "search_result", "source": "https://x.test", "title": "t", "content": []},
            "messages.0.content.0.type",
        ),
    ],
)
def test_what_only_anthropic_can_read_is_a_400_naming_it(block: dict[str, Any], param: str) -> None:
    error = refused_to_chat(messages=[{"role": "user", "content": [block]}])
    assert error.param == param and error.message.startswith(param)


def test_the_docs_tool_round_trip_becomes_tool_calls_and_a_tool_message() -> None:
    chat = to_chat(tools=[docs.GET_WEATHER], messages=docs.TOOL_ROUND_TRIP)
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "parameters": docs.GET_WEATHER["input_schema"],
            },
        }
    ]
    assert chat["messages"][1:] == [
        {
            "role": "assistant",
            "content": docs.TOOL_ROUND_TRIP[1]["content"][0]["text"],
            "tool_calls": [
                {
                    "id": docs.TOOL_USE_ID,
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"location": "San Francisco, CA", "unit": "celsius"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": docs.TOOL_USE_ID, "content": "15 degrees"},
    ]


def test_tool_results_come_before_the_text_of_their_turn_and_errors_say_so() -> None:
    calls = [
        {"type": "tool_use", "id": "a", "name": "f", "input": {}},
        {"type": "tool_use", "id": "b", "name": "f", "input": {}},
    ]
    results = [
        {"type": "tool_result", "tool_use_id": "a", "content": [{"type": "text", "text": "one"}, docs.IMAGE_BY_URL]},
        {"type": "tool_result", "tool_use_id": "b", "content": "disk full", "is_error": True},
        {"type": "text", "text": "go on"},
    ]
    chat = to_chat(
        tools=[docs.GET_WEATHER],
        messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": calls},
            {"role": "user", "content": results},
        ],
    )
    assert chat["messages"][1]["content"] is None
    assert chat["messages"][2:] == [
        {"role": "tool", "tool_call_id": "a", "content": "one"},
        {"role": "tool", "tool_call_id": "b", "content": "Error: disk full"},
        # OpenAI's tool messages hold text only: the result's image follows in a user turn.
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": docs.IMAGE_URL}}, {"type": "text", "text": "go on"}],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "get_weather"},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        ),
        ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
        ({"type": "any", "disable_parallel_tool_use": True}, {"tool_choice": "required", "parallel_tool_calls": False}),
    ],
)
def test_tool_choice_becomes_openais(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    chat = to_chat(tools=[docs.GET_WEATHER], tool_choice=choice, messages=[{"role": "user", "content": "x"}])
    assert {key: chat[key] for key in ("tool_choice", "parallel_tool_calls") if key in chat} == expected


def test_a_server_tool_is_a_400_naming_it() -> None:
    error = refused_to_chat(
        tools=[docs.GET_WEATHER, {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        messages=[{"role": "user", "content": "x"}],
    )
    assert error.param == "tools.1.type"


def test_sampling_stop_sequences_and_the_user_carry_over() -> None:
    chat = to_chat(
        messages=[{"role": "user", "content": "x"}],
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop_sequences=["\n\nHuman:", "###"],
        metadata={"user_id": "13803d75-b4b5-4c3e-b2a2-6f21399b021b"},
        stream=True,
    )
    assert chat == {
        "model": "acme/chat",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 1024,
        "stop": ["\n\nHuman:", "###"],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "user": "13803d75-b4b5-4c3e-b2a2-6f21399b021b",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_more_stop_sequences_than_openai_takes_is_a_400() -> None:
    assert refused_to_chat(messages=docs.MULTI_TURN, stop_sequences=list("abcde")).param == "stop_sequences"


def test_a_cache_prewarm_is_a_400_for_another_upstream() -> None:
    assert refused_to_chat(messages=docs.MULTI_TURN, max_tokens=0).param == "max_tokens"


def test_thinking_in_the_history_becomes_reasoning_content_and_redacted_thinking_goes() -> None:
    assistant = {
        "role": "assistant",
        "content": [docs.THINKING, docs.REDACTED_THINKING, {"type": "text", "text": "42"}],
    }
    chat = to_chat(
        messages=[{"role": "user", "content": "6 * 7?"}, assistant],
        thinking={"type": "enabled", "budget_tokens": 10000},
    )
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": "42",
        "reasoning_content": "Let me analyze this step by step...",
    }
    assert chat["reasoning_effort"] == "medium"


def test_structured_output_becomes_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    chat = to_chat(messages=docs.MULTI_TURN, output_config={"format": {"type": "json_schema", "schema": schema}})
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def test_anthropic_only_fields_stay_behind() -> None:
    chat = to_chat(
        messages=docs.MULTI_TURN, service_tier="auto", container="container_1", context_management={"edits": []}
    )
    assert set(chat) == {"model", "messages", "max_tokens"}


# --- an OpenAI client, an Anthropic upstream --------------------------------------------------


def test_a_chat_request_becomes_a_messages_body_with_the_output_cap() -> None:
    body = to_messages(
        max_tokens=512,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hello!"},
        ],
    )
    assert body == {
        "model": "acme/chat",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello!"}]}],
        "max_tokens": 512,
        "system": "You are a helpful assistant.\n\nAnswer in French.",
    }


def test_sampling_stops_user_and_stream_carry_over_with_temperature_capped_at_one() -> None:
    body = to_messages(
        messages=[{"role": "user", "content": "x"}],
        temperature=1.6,
        top_p=0.5,
        top_k=20,
        stop="END",
        user="user-1234",
        stream=True,
        stream_options={"include_usage": True},
        seed=7,
        presence_penalty=0.5,
        logit_bias={"50256": -100},
    )
    assert body == {
        "model": "acme/chat",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
        "max_tokens": 1000,
        "metadata": {"user_id": "user-1234"},
        "stop_sequences": ["END"],
        "stream": True,
        "temperature": 1.0,
        "top_k": 20,
        "top_p": 0.5,
    }


def test_images_and_pdfs_become_blocks() -> None:
    body = to_messages(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's in these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{docs.IMAGE_DATA}"}},
                    {"type": "image_url", "image_url": {"url": docs.IMAGE_URL, "detail": "high"}},
                    {
                        "type": "file",
                        "file": {"filename": "card.pdf", "file_data": f"data:application/pdf;base64,{docs.PDF_DATA}"},
                    },
                ],
            }
        ]
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What's in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": docs.IMAGE_DATA}},
        {"type": "image", "source": {"type": "url", "url": docs.IMAGE_URL}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": docs.PDF_DATA},
            "title": "card.pdf",
        },
    ]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "messages[0].content[0].type"),
        ({"type": "file", "file": {"file_id": "file-abc123"}}, "messages[0].content[0].file"),
    ],
)
def test_parts_anthropic_cannot_take_are_a_400_naming_them(part: dict[str, Any], param: str) -> None:
    assert refused_to_messages(messages=[{"role": "user", "content": [part]}]).param == param


def test_openais_tool_round_trip_becomes_tool_use_and_tool_result_blocks() -> None:
    # OpenAI's function-calling guide, with Anthropic's turn structure as the result.
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_current_weather",
                "description": "Get the current weather in a given location",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            },
        }
    ]
    body = to_messages(
        tools=tools,
        tool_choice="auto",
        parallel_tool_calls=False,
        messages=[
            {"role": "user", "content": "What's the weather like in Boston and Paris today?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_current_weather", "arguments": '{\n"location": "Boston, MA"\n}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_current_weather", "arguments": '{"location": "Paris"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "22 degrees"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "18 degrees"}]},
        ],
    )
    assert body["tools"] == [
        {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "input_schema": tools[0]["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_current_weather",
                    "input": {"location": "Boston, MA"},
                },
                {"type": "tool_use", "id": "call_2", "name": "get_current_weather", "input": {"location": "Paris"}},
            ],
        },
        # Consecutive tool messages are one user turn of results, as Anthropic wants them.
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "22 degrees"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "18 degrees"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice_becomes_anthropics(choice: Any, expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    body = to_messages(tools=tools, tool_choice=choice, messages=[{"role": "user", "content": "x"}])
    assert body["tool_choice"] == expected
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]


def test_tool_arguments_that_are_no_json_object_are_a_400_naming_them() -> None:
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]
    error = refused_to_messages(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": calls}])
    assert error.param == "messages[1].tool_calls[0].function.arguments"


def test_more_than_one_choice_and_legacy_functions_are_400s() -> None:
    assert refused_to_messages(messages=[{"role": "user", "content": "x"}], n=2).param == "n"
    assert (
        refused_to_messages(messages=[{"role": "user", "content": "x"}], functions=[{"name": "f"}]).param == "functions"
    )


def test_empty_turns_are_left_out_and_same_role_turns_merged() -> None:
    body = to_messages(
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "second"},
        ]
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]}
    ]
    assert refused_to_messages(messages=[{"role": "user", "content": " "}]).param == "messages"


def test_reasoning_effort_becomes_a_thinking_budget_below_max_tokens() -> None:
    body = to_messages(max_tokens=2048, reasoning_effort="high", messages=[{"role": "user", "content": "x"}])
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2047}
    explicit = {"type": "enabled", "budget_tokens": 1500}
    assert to_messages(thinking=explicit, messages=[{"role": "user", "content": "x"}])["thinking"] == explicit
    assert "thinking" not in to_messages(
        max_tokens=500, reasoning_effort="low", messages=[{"role": "user", "content": "x"}]
    )


def test_a_json_schema_response_format_becomes_structured_output() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = to_messages(
        messages=[{"role": "user", "content": "x"}],
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
