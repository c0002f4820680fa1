"""The prompt tokens of a generateContent request, estimated on Gemini's own shapes (no translation).

What Gemini's endpoints reserve with and countTokens answers: the same per-text and per-part rates as
a chat request's estimate (usage.tokens), so one prompt costs the same estimate whichever API it came
through.
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


def _part_tokens(part: Any) -> int:
    if not isinstance(part, dict):
        return 0
    if isinstance(part.get("text"), str):
        return estimate_tokens(part["text"])
    for name in ("functionCall", "function_call", "functionResponse", "function_response"):
        if isinstance(part.get(name), dict):
            return estimate_tokens(json.dumps(part[name], ensure_ascii=False))
    return NON_TEXT_PART_TOKENS  # inline data, files, code execution


def _content_tokens(content: Any) -> int:
    parts = content.get("parts") if isinstance(content, dict) else None
    return MESSAGE_OVERHEAD_TOKENS + sum(_part_tokens(part) for part in (parts if isinstance(parts, list) else ()))


def estimate_gemini_tokens(body: dict[str, Any]) -> int:
    """The prompt tokens of a generateContent (or countTokens) request body, as parsed."""
    total = REQUEST_OVERHEAD_TOKENS
    system = body.get("systemInstruction", body.get("system_instruction"))
    if system:
        total += _content_tokens(system)
    contents = body.get("contents")
    total += sum(_content_tokens(content) for content in (contents if isinstance(contents, list) else ()))
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"], ensure_ascii=False))
    return total
