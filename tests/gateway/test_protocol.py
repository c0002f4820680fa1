"""Request validation against OpenAI's CreateChatCompletionRequest (gateway.chat_completions.protocol)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.chat_completions.protocol import (
    AssistantMessage,
    DeveloperMessage,
    ImagePart,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
    parse_chat_request,
)
from gateway.errors import GatewayError
from tests.gateway.parsed import read_as_sent

USER = {"role": "user", "content": "hi"}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [USER], **fields}


def refused(payload: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        parse_chat_request(payload)
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    return caught.value


@pytest.mark.parametrize(
    ("role", "kind"),
    [
        ("system", SystemMessage),
        ("developer", DeveloperMessage),
        ("user", UserMessage),
        ("assistant", AssistantMessage),
        ("tool", ToolMessage),
    ],
)
def test_it_accepts_every_role_of_the_spec(role: str, kind: type) -> None:
    message: dict[str, Any] = {"role": role, "content": "x"}
    if role == "tool":
        message["tool_call_id"] = "call_1"
    payload = body(messages=[message])
    request = parse_chat_request(payload)
    read_as_sent(request, payload)
    assert isinstance(request.messages[0], kind)


def test_it_accepts_content_parts_and_an_assistant_tool_call() -> None:
    payload = body(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ]
    )
    request = parse_chat_request(payload)
    read_as_sent(request, payload)
    question, call, answer = request.messages
    assert isinstance(question, UserMessage) and isinstance(question.content, list)
    assert [type(part) for part in question.content] == [TextPart, ImagePart]
    assert isinstance(call, AssistantMessage) and call.tool_calls
    assert isinstance(answer, ToolMessage) and answer.tool_call_id == call.tool_calls[0].id == "c1"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (body(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role"),
        (body(messages=[{"role": "user"}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content[0].text"),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
        (body(messages=[]), "messages"),
        ({"messages": [USER]}, "model"),
        (body(temperature=2.5), "temperature"),
        (body(top_p=-0.1), "top_p"),
        (body(presence_penalty=3), "presence_penalty"),
        (body(n=0), "n"),
        (body(n=129), "n"),
        (body(max_tokens="lots"), "max_tokens"),
        (body(stop=["a", "b", "c", "d", "e"]), "stop"),
        (body(tools=[{"type": "function", "function": {}}]), "tools[0].function.name"),
        (body(tools=[{"type": "shell"}]), "tools[0].type"),
        (body(tools="all"), "tools"),
        (body(mcp_servers="local"), "mcp_servers"),
        (body(mcp_servers=[""]), "mcp_servers[0]"),
        (body(response_format={"type": "xml"}), "response_format.type"),
        (body(response_format={"type": "json_schema"}), "response_format.json_schema"),
        (body(tool_choice="sometimes"), "tool_choice"),
        (body(stream_options={"include_usage": True}), "stream_options"),
        (body(stream=False, stream_options={"include_usage": True}), "stream_options"),
        (body(reasoning_effort="extreme"), "reasoning_effort"),
        (body(service_tier="gold"), "service_tier"),
        (body(modalities=["text", "video"]), "modalities[1]"),
        (body(verbosity="chatty"), "verbosity"),
        (body(prediction={"type": "diff", "content": "x"}), "prediction.type"),
        (body(prediction={"type": "content", "content": []}), "prediction.content"),
        (body(metadata={f"k{i}": "v" for i in range(17)}), "metadata"),
        (body(metadata={"k" * 65: "v"}), "metadata"),
        (body(metadata={"k": 1}), "metadata.k"),
        (body(seed=2**63), "seed"),
        (body(top_logprobs=3), "top_logprobs"),
        (body(top_logprobs=21, logprobs=True), "top_logprobs"),
        (body(parallel_tool_calls=[]), "parallel_tool_calls"),
    ],
)
def test_it_refuses_invalid_requests_naming_the_param(payload: dict[str, Any], param: str) -> None:
    error = refused(payload)
    assert error.param == param
    assert param in error.message


def test_it_refuses_a_body_that_is_no_object() -> None:
    refused([USER])


def test_tools_false_means_no_tools() -> None:
    assert parse_chat_request(body(tools=False)).tools is False


def test_it_keeps_fields_it_does_not_model() -> None:
    request = parse_chat_request(body(top_k=40, min_p=0.05, repetition_penalty=1.1))
    assert request.model_extra == {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1}


def test_stream_options_are_fine_with_stream() -> None:
    request = parse_chat_request(body(stream=True, stream_options={"include_usage": True}))
    assert request.wants_usage_chunk()


def test_it_accepts_the_parameters_newer_clients_send() -> None:
    payload = body(
        messages=[{"role": "developer", "content": "Be brief."}, USER],
        max_completion_tokens=10,
        reasoning_effort="low",
        parallel_tool_calls=False,
        logprobs=True,
        top_logprobs=2,
        seed=-(2**63),
        service_tier="flex",
        prediction={"type": "content", "content": [{"type": "text", "text": "draft"}]},
        modalities=["text"],
        metadata={"team": "search"},
        store=True,
        verbosity="low",
    )
    request = parse_chat_request(payload)
    read_as_sent(request, payload)
    assert request.model_extra == {}, "each is a field of the spec's, not one passed through unread"
    assert request.output_cap(1000) == 10
