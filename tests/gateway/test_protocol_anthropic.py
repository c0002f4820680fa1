"""Request validation against Anthropic's Messages API (gateway.anthropic_messages.protocol)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.anthropic_messages.protocol import (
    CustomTool,
    ImageBlock,
    OtherBlock,
    ServerTool,
    ToolResultBlock,
    parse_count_tokens_request,
    parse_messages_request,
)
from gateway.anthropic_messages.stream_protocol import STREAM_EVENT, MessageStartEvent, OtherEvent
from gateway.errors import GatewayError
from tests.gateway import anthropic_examples as docs
from tests.gateway.parsed import read_as_sent

USER = {"role": "user", "content": "Hello, Claude"}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 1024, "messages": [USER], **fields}


def refused(payload: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        parse_messages_request(payload)
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    return caught.value


@pytest.mark.parametrize(
    "messages",
    [
        docs.MULTI_TURN,
        docs.PREFILL,
        docs.VISION,
        docs.TOOL_ROUND_TRIP,
        [{"role": "user", "content": [docs.PDF_BASE64, docs.PDF_BY_URL]}],
    ],
)
def test_it_accepts_the_docs_examples(messages: list[dict[str, Any]]) -> None:
    payload = body(messages=messages, tools=[docs.GET_WEATHER])
    request = parse_messages_request(payload)
    read_as_sent(request, payload)
    blocks = [block for message in request.messages if isinstance(message.content, list) for block in message.content]
    assert not [block for block in blocks if isinstance(block, OtherBlock)], "each block is read by its type"
    assert request.tools is not None and isinstance(request.tools[0], CustomTool)


def test_it_reads_blocks_tools_and_thinking_by_their_types() -> None:
    thinking_turn = {
        "role": "assistant",
        "content": [docs.THINKING, docs.REDACTED_THINKING, {"type": "text", "text": "ok"}],
    }
    request = parse_messages_request(
        body(
            system=docs.CACHED_SYSTEM,
            messages=[*docs.TOOL_ROUND_TRIP, thinking_turn, {"role": "user", "content": [docs.IMAGE_BY_URL]}],
            tools=[docs.GET_WEATHER, {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
            thinking={"type": "enabled", "budget_tokens": 16000},
            tool_choice={"type": "tool", "name": "get_weather"},
        )
    )
    assert isinstance(request.tools[0], CustomTool) and isinstance(request.tools[1], ServerTool)
    assert isinstance(request.messages[2].content[0], ToolResultBlock)
    assert isinstance(request.messages[4].content[0], ImageBlock)
    assert request.system[1].cache_control.type == "ephemeral"


def test_it_keeps_fields_and_blocks_it_does_not_model() -> None:
    search = {
        "type": "search_result",
        "source": "https://x.test",
        "title": "t",
        "content": [{"type": "text", "text": "x"}],
    }
    request = parse_messages_request(
        body(
            messages=[{"role": "user", "content": [search]}],
            container="container_011CQ",
            context_management={"edits": [{"type": "clear_tool_uses_20250919"}]},
        )
    )
    assert isinstance(request.messages[0].content[0], OtherBlock)
    assert request.messages[0].content[0].model_extra["title"] == "t"
    assert set(request.model_extra) == {"container", "context_management"}


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "m", "messages": [USER]}, "max_tokens"),
        (body(max_tokens=-1), "max_tokens"),
        (body(max_tokens="lots"), "max_tokens"),
        ({"max_tokens": 5, "messages": [USER]}, "model"),
        (body(messages=[]), "messages"),
        (body(messages=[{"role": "user"}]), "messages.0.content"),
        (body(messages=[{"role": "wizard", "content": "x"}]), "messages.0.role"),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages.0.role"),
        (body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages.0.content.0.text"),
        (
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "x"}}
                        ],
                    }
                ]
            ),
            "messages.0.content.0.source.media_type",
        ),
        (
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "document", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}
                        ],
                    }
                ]
            ),
            "messages.0.content.0.source.media_type",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "ftp", "url": "x"}}]}]),
            "messages.0.content.0.source.type",
        ),
        (body(messages=[{"role": "user", "content": [{"type": "tool_result"}]}]), "messages.0.content.0.tool_use_id"),
        (
            body(
                messages=[
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "x"}]}
                ]
            ),
            "messages.0.content.0.input",
        ),
        (
            body(messages=[{"role": "assistant", "content": [{"type": "thinking", "thinking": "hm"}]}]),
            "messages.0.content.0.signature",
        ),
        (body(system=[{"type": "text"}]), "system.0.text"),
        (body(temperature=1.5), "temperature"),
        (body(top_p=1.5), "top_p"),
        (body(top_k=-1), "top_k"),
        (body(stop_sequences="###"), "stop_sequences"),
        (body(metadata={"user_id": 5}), "metadata.user_id"),
        (body(tools=[{"name": "get_weather"}]), "tools.0.input_schema"),
        (body(tools=[{"type": "web_search_20250305"}]), "tools.0.name"),
        (body(tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (body(tool_choice={"type": "tool"}), "tool_choice.name"),
        (body(thinking={"type": "enabled", "budget_tokens": 100}), "thinking.budget_tokens"),
        (
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/png", "data": "x"},
                                "cache_control": {"type": "forever"},
                            }
                        ],
                    }
                ]
            ),
            "messages.0.content.0.cache_control.type",
        ),
    ],
)
def test_it_refuses_invalid_requests_naming_the_param_as_anthropic_does(payload: dict[str, Any], param: str) -> None:
    error = refused(payload)
    assert error.param == param
    assert error.message.startswith(f"{param}: ")


def test_a_system_role_in_messages_is_a_system_turn_and_another_role_is_explained() -> None:
    parse_messages_request(body(messages=[{"role": "system", "content": "Be brief."}, USER]))
    assert "top-level `system` parameter" in refused(body(messages=[{"role": "developer", "content": "x"}])).message


def test_it_refuses_a_body_that_is_no_object() -> None:
    refused([USER])


def test_count_tokens_takes_no_max_tokens() -> None:
    request = parse_count_tokens_request({"model": "m", "system": "You are a scientist", "messages": [USER]})
    assert request.system == "You are a scientist"
    with pytest.raises(GatewayError) as caught:
        parse_count_tokens_request({"model": "m", "messages": []})
    assert caught.value.param == "messages"


def test_stream_events_are_read_by_type_and_new_ones_are_kept() -> None:
    start = STREAM_EVENT.validate_python(docs.basic_stream()[0])
    assert isinstance(start, MessageStartEvent) and start.message.usage.input_tokens == 25
    assert isinstance(STREAM_EVENT.validate_python({"type": "brand_new_event", "x": 1}), OtherEvent)
    for event in [*docs.basic_stream(), *docs.tool_stream(), *docs.thinking_stream(), docs.OVERLOADED]:
        assert not isinstance(STREAM_EVENT.validate_python(event), OtherEvent)
