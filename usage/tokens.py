"""Token counts: what an upstream reported, and the one estimate used where it reported none.

The estimate sizes rate-limit reservations, checks a chat's history and files against a model's
context, and fills the ledger (flagged `usage_estimated`) when an upstream gives no usage. It is
deliberately generous, about three UTF-8 bytes a token (English averages four characters a token;
CJK text about one character), because under-counting is what fails: a reservation too small is
settled as debt, a history trimmed too little overflows the model's context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

BYTES_PER_TOKEN = 3
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators of one chat message
REQUEST_OVERHEAD_TOKENS = 3  # the reply's priming
NON_TEXT_PART_TOKENS = 85  # an image or audio part: at least OpenAI's low-detail image cost


def tokens_for_bytes(size: int) -> int:
    return -(-size // BYTES_PER_TOKEN)


def estimate_tokens(text: str) -> int:
    return tokens_for_bytes(len(text.encode("utf-8", "replace")))


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return estimate_tokens(content)
    total = 0
    if isinstance(content, list):
        for part in content:
            text = part.get("text") if isinstance(part, dict) else None
            total += estimate_tokens(text) if isinstance(text, str) else NON_TEXT_PART_TOKENS
    return total


def estimate_message_tokens(message: Any) -> int:
    if not isinstance(message, dict):
        return MESSAGE_OVERHEAD_TOKENS
    total = MESSAGE_OVERHEAD_TOKENS + _content_tokens(message.get("content"))
    for extra in ("name", "tool_calls", "function_call"):
        if message.get(extra):
            total += estimate_tokens(json.dumps(message[extra]))
    return total


def estimate_input_tokens(inputs: list[Any]) -> int:
    """The tokens of embedding inputs: texts estimated, token lists counted."""
    return sum(len(item) if isinstance(item, list) else estimate_tokens(str(item)) for item in inputs)


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """The prompt tokens of a chat-completions request body."""
    total = REQUEST_OVERHEAD_TOKENS
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        total += estimate_message_tokens(message)
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"]))
    return total


def message_bytes(message: Any) -> int:
    """The UTF-8 size of what a reply message (or a stream's delta) says, for the completion estimate."""
    if not isinstance(message, dict):
        return 0
    size = 0
    for name in ("content", "reasoning_content", "reasoning", "refusal"):
        value = message.get(name)
        if isinstance(value, str):
            size += len(value.encode("utf-8", "replace"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for name in ("name", "arguments"):
                value = function.get(name)
                if isinstance(value, str):
                    size += len(value.encode("utf-8", "replace"))
    return size


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    cached_tokens: int = 0  # of the prompt's, read from a cache (as the upstream reported them)
    reasoning_tokens: int = 0  # of the completion's, spent thinking (as the upstream reported them)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    def as_reported(self) -> dict[str, Any]:
        """OpenAI's usage object with the details an upstream reported (what `reported_usage` reads)."""
        reported: dict[str, Any] = self.as_dict()
        if self.cached_tokens:
            reported["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.reasoning_tokens:
            reported["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return reported


def reported_usage(value: Any) -> Usage | None:
    """An upstream's usage object (OpenAI's field names), or None when it gave none usable."""
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(
        max(prompt, 0),
        max(completion, 0),
        cached_tokens=_detail(value, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=_detail(value, "completion_tokens_details", "reasoning_tokens"),
    )


def _detail(usage: dict[str, Any], details: str, name: str) -> int:
    """A count inside an upstream's usage details (`prompt_tokens_details.cached_tokens`); 0 when absent."""
    within = usage.get(details)
    value = within.get(name) if isinstance(within, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
