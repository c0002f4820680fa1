"""Examples from Anthropic's documentation (Messages API, tool use, vision, PDFs, thinking, streaming,
prompt caching, errors), shared by the translation and protocol tests and the fake upstream's tests.

Long opaque values (base64 data, signatures) are shortened; everything else is as the docs show it.
"""

from __future__ import annotations

from typing import Any

MODEL = "claude-opus-4-1-20250805"

HELLO = {"model": MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello, world"}]}
HELLO_ANSWER = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "content": [{"type": "text", "text": "Hello!"}],
    "model": MODEL,
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 6},
}

MULTI_TURN = [
    {"role": "user", "content": "Hello there."},
    {"role": "assistant", "content": "Hi, I'm Claude. How can I help you?"},
    {"role": "user", "content": "Can you explain LLMs in plain English?"},
]

PREFILL = [
    {"role": "user", "content": "What's the Greek name for Sun? (A) Sol (B) Helios (C) Sun"},
    {"role": "assistant", "content": "The best answer is ("},
]

IMAGE_DATA = "/9j/4AAQSkZJRgABAQEASABIAAD"  # a JPEG's first bytes, base64
IMAGE_BASE64 = {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": IMAGE_DATA}}
IMAGE_URL = "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"
IMAGE_BY_URL = {"type": "image", "source": {"type": "url", "url": IMAGE_URL}}
VISION = [{"role": "user", "content": [IMAGE_BASE64, {"type": "text", "text": "Describe this image."}]}]

PDF_DATA = "JVBERi0xLjcKCjEgMCBvYmogICUgZW50cnkgcG9pbnQ"
PDF_BASE64 = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_DATA}}
PDF_URL = "https://assets.anthropic.com/m/1cd9d098ac3e6467/original/Claude-3-Model-Card-October-Addendum.pdf"
PDF_BY_URL = {"type": "document", "source": {"type": "url", "url": PDF_URL}}

GET_WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {
                "type": "string",
                "enum": ["celsius", "fahrenheit"],
                "description": "The unit of temperature, either 'celsius' or 'fahrenheit'",
            },
        },
        "required": ["location"],
    },
}
TOOL_USE_ID = "toolu_01A09q90qw90lq917835lq9"
TOOL_ROUND_TRIP = [
    {"role": "user", "content": "What's the weather like in San Francisco?"},
    {
        "role": "assistant",
        "content": [
            {
                "type": "text",
                "text": "<thinking>I need to use get_weather, and the user wants SF, which is likely San Francisco, "
                "CA.</thinking>",
            },
            {
                "type": "tool_use",
                "id": TOOL_USE_ID,
                "name": "get_weather",
                "input": {"location": "San Francisco, CA", "unit": "celsius"},
            },
        ],
    },
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": TOOL_USE_ID, "content": "15 degrees"}]},
]

THINKING_SIGNATURE = "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL"
THINKING = {"type": "thinking", "thinking": "Let me analyze this step by step...", "signature": THINKING_SIGNATURE}
REDACTED_THINKING = {
    "type": "redacted_thinking",
    "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP",
}

CACHED_SYSTEM = [
    {"type": "text", "text": "You are an AI assistant tasked with analyzing literary works."},
    {"type": "text", "text": "<the entire contents of 'Pride and Prejudice'>", "cache_control": {"type": "ephemeral"}},
]
CACHE_USAGE = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 188086,
    "cache_read_input_tokens": 0,
    "output_tokens": 393,
}

NOT_FOUND = {
    "type": "error",
    "error": {"type": "not_found_error", "message": "The requested resource could not be found."},
}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def basic_stream() -> list[dict[str, Any]]:
    """The docs' basic streaming example: "Hello!" in two deltas, with a ping."""
    return [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": MODEL,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 25, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 15},
        },
        {"type": "message_stop"},
    ]


TOOL_STREAM_FRAGMENTS = ["", '{"location":', ' "San', " Francisc", "o,", ' CA"', ", ", '"unit": "fah', 'renheit"}']


def tool_stream() -> list[dict[str, Any]]:
    """The docs' streaming tool-use example: some text, then get_weather's input in fragments."""
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "stop_sequence": None,
                "usage": {"input_tokens": 472, "output_tokens": 2},
                "content": [],
                "stop_reason": None,
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ","}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": " let's check the weather for San Francisco, CA:"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {},
            },
        },
    ]
    for fragment in TOOL_STREAM_FRAGMENTS:
        events.append(
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": fragment}}
        )
    events += [
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 89},
        },
        {"type": "message_stop"},
    ]
    return events


def thinking_stream() -> list[dict[str, Any]]:
    """The docs' extended-thinking streaming example: thinking deltas, a signature, then the answer."""
    return [
        {
            "type": "message_start",
            "message": {
                "id": "msg_01THINKING",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": MODEL,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 40, "output_tokens": 1},
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {
                "type": "thinking_delta",
                "thinking": "Let me solve this step by step:\n\n1. First break down 27 * 453",
            },
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "\n2. 453 = 400 + 50 + 3"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "27 * 453 = 12,231"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 100},
        },
        {"type": "message_stop"},
    ]
