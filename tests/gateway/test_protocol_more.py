"""Request validation of the Responses, Completions and Embeddings APIs against OpenAI's schema."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.embeddings.protocol import parse_embedding_request
from gateway.errors import GatewayError
from gateway.responses_api.protocol import (
    FunctionCallItem,
    FunctionCallOutputItem,
    ItemReference,
    MessageItem,
    OtherType,
    ReasoningItem,
    parse_response_request,
)
from gateway.text_completions.protocol import parse_completion_request
from tests.gateway.parsed import read_as_sent
from tests.openai_schema import validate


def refused(parse: Any, payload: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        parse(payload)
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    return caught.value


# --- Responses --------------------------------------------------------------------------------


def responses(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "input": "hi", **fields}


@pytest.mark.parametrize(
    ("payload", "items"),
    [
        (responses(), [str]),
        (responses(input=[{"role": "user", "content": "hi"}]), [MessageItem]),
        (
            responses(
                input=[
                    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
                    {"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
                    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "42"},
                    {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
                    {"type": "item_reference", "id": "msg_1"},
                    {"type": "web_search_call", "id": "ws_1", "status": "completed"},
                ],
                tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}, {"type": "web_search"}],
                tool_choice={"type": "function", "name": "f"},
                text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}},
                reasoning={"effort": "minimal", "summary": "auto"},
                max_output_tokens=16,
                metadata={"k": "v"},
                store=False,
                include=["reasoning.encrypted_content"],
                previous_response_id="resp_1",
                stream=True,
                stream_options={"include_obfuscation": False},
                prompt_cache_key="codex-session",
            ),
            # A web search call is no item of ours to read: it is passed on as it came.
            [
                MessageItem,
                MessageItem,
                FunctionCallItem,
                FunctionCallOutputItem,
                ReasoningItem,
                ItemReference,
                OtherType,
            ],
        ),
    ],
)
def test_responses_accepts_what_the_spec_and_codex_send(payload: dict[str, Any], items: list[type]) -> None:
    # Not checked against the schema: its `oneOf` of input items matches an explicit message item
    # twice (EasyInputMessage and InputMessage), which its discriminator means to allow.
    request = parse_response_request(payload)
    read_as_sent(request, payload)
    kinds = [type(item) for item in request.input] if isinstance(request.input, list) else [str]
    assert kinds == items


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": "m"}, "input"),
        (responses(input=[{"role": "wizard", "content": "x"}]), "input[0].role"),
        (responses(input=[{"role": "user", "content": [{"type": "input_text"}]}]), "input[0].content[0].text"),
        (responses(input=[{"role": "user", "content": [{"type": "input_image"}]}]), "input[0].content[0]"),
        (responses(input=[{"type": "function_call", "name": "f", "arguments": "{}"}]), "input[0].call_id"),
        (responses(input=[{"type": "function_call_output", "call_id": "c"}]), "input[0].output"),
        (responses(tools=[{"type": "function"}]), "tools[0].name"),
        (responses(tool_choice="sometimes"), "tool_choice"),
        (responses(tool_choice={"type": "function"}), "tool_choice.name"),
        (responses(text={"format": {"type": "xml"}}), "text.format.type"),
        (responses(text={"format": {"type": "json_schema", "name": "x"}}), "text.format.schema"),
        (responses(max_output_tokens=15), "max_output_tokens"),
        (responses(temperature=3), "temperature"),
        (responses(reasoning={"effort": "huge"}), "reasoning.effort"),
        (responses(metadata={"k": "v" * 513}), "metadata"),
        (responses(stream_options={"include_obfuscation": True}), "stream_options"),
        (responses(background=True), "background"),
        (responses(conversation="conv_1"), "conversation"),
    ],
)
def test_responses_refuses_invalid_requests_naming_the_param(payload: dict[str, Any], param: str) -> None:
    error = refused(parse_response_request, payload)
    assert error.param == param and param in error.message


def test_responses_input_as_items_and_store_default() -> None:
    request = parse_response_request(responses(input="Hello!"))
    assert request.input_items() == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}
    ]
    assert request.stores() and not parse_response_request(responses(store=False)).stores()


def test_responses_output_cap_is_the_request_s_or_the_model_s() -> None:
    assert parse_response_request(responses()).output_cap(4096) == 4096
    assert parse_response_request(responses(max_output_tokens=100)).output_cap(4096) == 100
    with pytest.raises(GatewayError) as caught:
        parse_response_request(responses(max_output_tokens=5000)).output_cap(4096)
    assert caught.value.param == "max_output_tokens"


# --- Completions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "prompts"),
    [("Say this is a test", 1), (["a", "b"], 2), ([1, 2, 3], 1), ([[1], [2, 3]], 2)],
)
def test_completions_accept_every_prompt_shape(prompt: Any, prompts: int) -> None:
    payload = {"model": "m", "prompt": prompt, "n": 2, "suffix": "!", "echo": True, "logprobs": 2, "stop": ["\n"]}
    validate(payload, "CreateCompletionRequest")
    request = parse_completion_request(payload)
    read_as_sent(request, payload)
    assert request.choices() == 2 * prompts


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"prompt": "x"}, "model"),
        ({"model": "m"}, "prompt"),
        ({"model": "m", "prompt": []}, "prompt"),
        ({"model": "m", "prompt": ["a", 1]}, "prompt[1]"),
        ({"model": "m", "prompt": "x", "logprobs": 6}, "logprobs"),
        ({"model": "m", "prompt": "x", "max_tokens": -1}, "max_tokens"),
        ({"model": "m", "prompt": "x", "n": 0}, "n"),
        ({"model": "m", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "m", "prompt": "x", "n": 3, "best_of": 2}, "best_of"),
        ({"model": "m", "prompt": "x", "best_of": 2, "stream": True}, "best_of"),
        ({"model": "m", "prompt": "x", "stream_options": {"include_usage": True}}, "stream_options"),
    ],
)
def test_completions_refuse_invalid_requests_naming_the_param(payload: dict[str, Any], param: str) -> None:
    error = refused(parse_completion_request, payload)
    assert error.param == param and param in error.message


def test_completions_output_cap_defaults_to_the_model_s() -> None:
    assert parse_completion_request({"model": "m", "prompt": "x"}).output_cap(512) == 512
    with pytest.raises(GatewayError) as caught:
        parse_completion_request({"model": "m", "prompt": "x", "max_tokens": 513}).output_cap(512)
    assert caught.value.param == "max_tokens"


# --- Embeddings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "count"),
    [("The food was delicious", 1), (["a", "b", "c"], 3), ([1, 2, 3], 1), ([[1, 2], [3]], 2)],
)
def test_embeddings_accept_every_input_shape(value: Any, count: int) -> None:
    payload = {"model": "m", "input": value, "encoding_format": "base64", "dimensions": 256, "user": "u"}
    validate(payload, "CreateEmbeddingRequest")
    request = parse_embedding_request(payload)
    read_as_sent(request, payload)
    assert len(request.inputs()) == count


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "m"}, "input"),
        ({"input": "x"}, "model"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": [[]]}, "input[0]"),
        ({"model": "m", "input": ["x"] * 2049}, "input"),
        ({"model": "m", "input": [True]}, "input[0]"),
        ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
    ],
)
def test_embeddings_refuse_invalid_requests_naming_the_param(payload: dict[str, Any], param: str) -> None:
    error = refused(parse_embedding_request, payload)
    assert error.param == param and param in error.message


def test_embeddings_keep_a_provider_s_own_fields() -> None:
    request = parse_embedding_request({"model": "m", "input": "x", "input_type": "query"})
    assert request.model_extra == {"input_type": "query"}
