"""The prompt tokens of a Messages request, estimated on Anthropic's own shapes (no translation).

What `/v1/messages` reserves with and `/v1/messages/count_tokens` answers: the same per-text and
per-part rates as a chat request's estimate (usage.tokens), so one prompt costs the same estimate
whichever API it came through.
"""

from __future__ import annotations

import json
from typing import Any

from usage.tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    NON_TEXT_PART_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
    estimate_tokens,
)

_TEXT_FIELDS = ("text", "thinking")


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return estimate_tokens(block)
    if not isinstance(block, dict):
        return 0
    for name in _TEXT_FIELDS:
        if isinstance(block.get(name), str):
            return estimate_tokens(block[name])
    kind = block.get("type")
    if kind == "tool_use":
        return estimate_tokens(str(block.get("name", ""))) + estimate_tokens(json.dumps(block.get("input")))
    if kind == "tool_result":
        return _content_tokens(block.get("content"))
    return NON_TEXT_PART_TOKENS  # images, documents, blocks of server tools


def _content_tokens(content: Any) -> int:
    if isinstance(content, list):
        return sum(_block_tokens(block) for block in content)
    return _block_tokens(content)


def estimate_messages_tokens(body: dict[str, Any]) -> int:
    """The prompt tokens of a Messages (or count_tokens) request body, as parsed."""
    total = REQUEST_OVERHEAD_TOKENS
    if body.get("system"):
        total += MESSAGE_OVERHEAD_TOKENS + _content_tokens(body["system"])
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        total += MESSAGE_OVERHEAD_TOKENS + (_content_tokens(message.get("content")) if isinstance(message, dict) else 0)
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"]))
    return total
