"""gateway.translate_gemini: the pure translations between Gemini's API and OpenAI's chat completions,
with the examples of Google's documentation (function calling, thinking, thought signatures, usage)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.chat_completions.protocol import parse_chat_request
from gateway.errors import GatewayError, UnreadableAnswer
from gateway.gemini_api.protocol import parse_generate_request
from gateway.translate_gemini import (
    ChatToGeminiStream,
    GeminiToChatStream,
    chat_completion_to_gemini,
    chat_to_gemini,
    gemini_to_chat,
    gemini_to_chat_completion,
    google_error,
    json_schema,
)
from usage.tokens import reported_usage

# Google's function-calling example (ai.google.dev/gemini-api/docs/function-calling), as REST sends it.
TEMPERATURE_REQUEST: dict[str, Any] = {
    "model": "gemini-flash",
    "contents": [{"role": "user", "parts": [{"text": "What's the temperature in London?"}]}],
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_current_temperature",
                    "description": "Gets the current temperature for a given location.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "location": {"type": "string", "description": "The city name, e.g. San Francisco"}
                        },
                        "required": ["location"],
                    },
                }
            ]
        }
    ],
}
# Its answer, with the thought signature Gemini 3 puts on a function call (docs: thought-signatures).
TEMPERATURE_ANSWER: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {
                        "functionCall": {"name": "get_current_temperature", "args": {"location": "London"}},
                        "thoughtSignature": "<Signature_A>",
                    }
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 70,
        "candidatesTokenCount": 18,
        "totalTokenCount": 152,
        "thoughtsTokenCount": 64,
        "cachedContentTokenCount": 10,
    },
    "modelVersion": "gemini-3-flash-preview",
    "responseId": "abc",
}


def test_a_function_calling_request_becomes_a_chat_request() -> None:
    body = gemini_to_chat(parse_generate_request(TEMPERATURE_REQUEST))
    assert body == {
        "model": "gemini-flash",
        "messages": [{"role": "user", "content": "What's the temperature in London?"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_current_temperature",
                    "description": "Gets the current temperature for a given location.",
                    "parameters": TEMPERATURE_REQUEST["tools"][0]["functionDeclarations"][0]["parameters"],
                },
            }
        ],
    }
    parse_chat_request(body)  # a valid chat request


def test_a_conversation_with_a_function_call_and_its_response_matches_them_by_name() -> None:
    request = {
        **TEMPERATURE_REQUEST,
        "systemInstruction": {"parts": [{"text": "You are a weather bot."}]},
        "contents": [
            *TEMPERATURE_REQUEST["contents"],
            TEMPERATURE_ANSWER["candidates"][0]["content"],
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "get_current_temperature", "response": {"result": "11C"}}}],
            },
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_current_temperature"]}},
    }
    body = gemini_to_chat(parse_generate_request(request))
    system, _user, assistant, tool = body["messages"]
    assert system == {"role": "system", "content": "You are a weather bot."}
    [call] = assistant["tool_calls"]
    assert call["function"] == {"name": "get_current_temperature", "arguments": '{"location": "London"}'}
    assert call["extra_content"] == {"google": {"thought_signature": "<Signature_A>"}}
    assert tool == {"role": "tool", "tool_call_id": call["id"], "content": "11C"}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_current_temperature"}}


def test_googles_openapi_schema_becomes_json_schema() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "attendees": {"type": "ARRAY", "items": {"type": "STRING"}},
            "note": {"type": "STRING", "nullable": True},
        },
        "required": ["attendees"],
        "propertyOrdering": ["attendees", "note"],
    }
    assert json_schema(schema) == {
        "type": "object",
        "properties": {
            "attendees": {"type": "array", "items": {"type": "string"}},
            "note": {"type": ["string", "null"]},
        },
        "required": ["attendees"],
    }


def test_generation_config_and_thinking_become_chat_fields() -> None:
    request = {
        "model": "m",
        "contents": [{"parts": [{"text": "Hi"}, {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}]}],
        "generationConfig": {
            "temperature": 0.7,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 200,
            "candidateCount": 2,
            "stopSequences": ["x"],
            "responseMimeType": "application/json",
            "thinkingConfig": {"thinkingLevel": "LOW", "includeThoughts": True},
        },
    }
    body = gemini_to_chat(parse_generate_request(request), stream=True)
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hi"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
            ],
        }
    ]
    expected = {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "max_tokens": 200, "n": 2, "stop": ["x"]}
    assert {name: body[name] for name in expected} == expected
    assert body["response_format"] == {"type": "json_object"} and body["reasoning_effort"] == "low"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_a_files_api_file_is_refused_naming_the_part() -> None:
    request = {"model": "m", "contents": [{"parts": [{"fileData": {"fileUri": "files/abc", "mimeType": "video/mp4"}}]}]}
    with pytest.raises(GatewayError) as raised:
        gemini_to_chat(parse_generate_request(request))
    assert raised.value.status == 400 and raised.value.param == "contents[0].parts[0].fileData"


def test_a_gemini_answer_becomes_a_chat_completion_with_its_signature_and_usage() -> None:
    completion = gemini_to_chat_completion(TEMPERATURE_ANSWER)
    [choice] = completion["choices"]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "get_current_temperature", "arguments": '{"location": "London"}'}
    assert call["extra_content"] == {"google": {"thought_signature": "<Signature_A>"}}
    assert completion["usage"] == {
        "prompt_tokens": 70,
        "completion_tokens": 82,
        "total_tokens": 152,
        "prompt_tokens_details": {"cached_tokens": 10},
        "completion_tokens_details": {"reasoning_tokens": 64},
    }


def test_thought_summaries_become_reasoning_and_safety_a_content_filter() -> None:
    answer = {
        "candidates": [
            {
                "content": {"parts": [{"text": "**Planning**", "thought": True}, {"text": "Done."}], "role": "model"},
                "finishReason": "MAX_TOKENS",
            },
            {"content": {"parts": []}, "finishReason": "SAFETY", "index": 1},
        ]
    }
    first, second = gemini_to_chat_completion(answer)["choices"]
    assert first["message"]["content"] == "Done." and first["message"]["reasoning_content"] == "**Planning**"
    assert (first["finish_reason"], second["finish_reason"]) == ("length", "content_filter")
    blocked = gemini_to_chat_completion({"promptFeedback": {"blockReason": "SAFETY"}})
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    with pytest.raises(UnreadableAnswer):
        gemini_to_chat_completion({"nothing": True})


def test_a_chat_request_becomes_a_gemini_request_with_signatures_sent_back() -> None:
    chat = parse_chat_request(
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": "What's the temperature in London?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_current_temperature", "arguments": '{"location": "London"}'},
                            "extra_content": {"google": {"thought_signature": "<Signature_A>"}},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "11C"},
            ],
            "tools": [{"type": "function", "function": {"name": "get_current_temperature", "parameters": {}}}],
            "tool_choice": {"type": "function", "function": {"name": "get_current_temperature"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": {"type": "object"}}},
            "reasoning_effort": "high",
            "n": 1,
        }
    )
    body = chat_to_gemini(chat, max_tokens=500)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "What's the temperature in London?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_current_temperature", "args": {"location": "London"}},
                    "thoughtSignature": "<Signature_A>",
                }
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_current_temperature", "response": {"output": "11C"}}}],
        },
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_current_temperature"]}
    }
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
        "candidateCount": 1,
        "maxOutputTokens": 500,
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 24576},
    }


def test_a_chat_completion_becomes_a_gemini_answer() -> None:
    completion = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Sunny.",
                    "reasoning_content": "Check.",
                    "tool_calls": [
                        {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 8,
            "total_tokens": 18,
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    }
    answer = chat_completion_to_gemini(completion, "acme/m")
    assert answer["candidates"] == [
        {
            "content": {
                "parts": [
                    {"text": "Check.", "thought": True},
                    {"text": "Sunny."},
                    {"functionCall": {"name": "f", "args": {"a": 1}, "id": "call_9"}},
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ]
    assert answer["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 5,
        "thoughtsTokenCount": 3,
        "totalTokenCount": 18,
    }
    assert answer["modelVersion"] == "acme/m" and answer["responseId"] == "chatcmpl-1"


def test_chat_chunks_become_gemini_events_with_whole_function_calls() -> None:
    out = ChatToGeminiStream(model="acme/m")
    events = out.feed({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]})
    events += out.feed({"choices": [{"index": 0, "delta": {"content": "lo"}}]})
    tool = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a"'}}
    events += out.feed({"choices": [{"index": 0, "delta": {"tool_calls": [tool]}}]})
    rest = {"index": 0, "function": {"arguments": ": 1}"}}
    events += out.feed({"choices": [{"index": 0, "delta": {"tool_calls": [rest]}, "finish_reason": "tool_calls"}]})
    [last] = out.finish({"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6})
    assert [e["candidates"][0]["content"]["parts"] for e in events] == [[{"text": "Hel"}], [{"text": "lo"}]]
    assert last["candidates"] == [
        {
            "content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}, "id": "call_1"}}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ]
    assert last["usageMetadata"] == {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}
    failed = out.fail(GatewayError(503, "No deployment is available."))
    assert failed == [{"error": {"code": 503, "message": "No deployment is available.", "status": "UNAVAILABLE"}}]


def test_a_streams_last_usage_counts_thoughts_and_candidates_as_the_answers_does() -> None:
    """The stream's usage is what the relay read from the upstream's chunks (usage.tokens.Usage)."""
    reported = {
        "prompt_tokens": 10,
        "completion_tokens": 8,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    usage = reported_usage(reported)
    assert usage is not None
    out = ChatToGeminiStream(model="acme/m")
    out.feed({"choices": [{"index": 0, "delta": {"content": "Sunny."}, "finish_reason": "stop"}]})
    [last] = out.finish(usage.as_reported())
    message = {"role": "assistant", "content": "Sunny."}
    answer = chat_completion_to_gemini(
        {"choices": [{"message": message, "finish_reason": "stop"}], "usage": reported}, "m"
    )
    assert (
        last["usageMetadata"]
        == answer["usageMetadata"]
        == {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "cachedContentTokenCount": 4,
            "thoughtsTokenCount": 3,
            "totalTokenCount": 18,
        }
    )


def test_gemini_events_become_chat_chunks() -> None:
    translator = GeminiToChatStream()
    first = {"candidates": [{"content": {"parts": [{"text": "Plan", "thought": True}], "role": "model"}, "index": 0}]}
    last = {
        "candidates": [
            {"content": {"parts": TEMPERATURE_ANSWER["candidates"][0]["content"]["parts"]}, "finishReason": "STOP"}
        ],
        "usageMetadata": TEMPERATURE_ANSWER["usageMetadata"],
    }
    [one] = translator.feed(first)
    [two] = translator.feed(last)
    translator.finish()
    assert one["choices"][0]["delta"] == {"role": "assistant", "reasoning_content": "Plan"}
    [call] = two["choices"][0]["delta"]["tool_calls"]
    assert call["index"] == 0 and call["extra_content"] == {"google": {"thought_signature": "<Signature_A>"}}
    assert two["choices"][0]["finish_reason"] == "tool_calls" and two["usage"]["completion_tokens"] == 82
    cut = GeminiToChatStream()
    cut.feed(first)
    with pytest.raises(UnreadableAnswer):
        cut.finish()
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    assert GeminiToChatStream().feed(error) == [error]  # passed on, for the relay to raise


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (502, "UNAVAILABLE"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
    ],
)
def test_our_errors_in_googles_shape(status: int, name: str) -> None:
    assert google_error(GatewayError(status, "m")) == (
        status,
        {"error": {"code": status, "message": "m", "status": name}},
    )


def test_a_function_call_without_a_signature_gets_the_one_google_names_for_other_models_histories() -> None:
    calls = [{"id": f"toolu_{n}", "type": "function", "function": {"name": "f", "arguments": "{}"}} for n in (1, 2)]
    chat = parse_chat_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "Go"},
                {"role": "assistant", "content": "Calling.", "tool_calls": calls},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "a"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "b"},
            ],
        }
    )
    model_turn = chat_to_gemini(chat, max_tokens=10)["contents"][1]
    assert model_turn["parts"] == [
        {"text": "Calling."},
        {
            "functionCall": {"name": "f", "args": {}, "id": "toolu_1"},
            "thoughtSignature": "skip_thought_signature_validator",
        },
        {"functionCall": {"name": "f", "args": {}, "id": "toolu_2"}},
    ]
