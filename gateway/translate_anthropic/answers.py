"""Answers: an OpenAI answer for an Anthropic client, and the reverse; usage both ways."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pydantic import ValidationError

from gateway.anthropic_messages.protocol import MessageResponse, TextBlock, ThinkingBlock, ToolUseBlock
from gateway.chat_completions.protocol import reasoning_text
from gateway.errors import UnreadableAnswer
from gateway.translate_anthropic.common import (
    FINISH_TO_STOP,
    STOP_TO_FINISH,
    count,
    json_object,
    mapping,
)


def usage_to_anthropic(usage: Any) -> dict[str, int]:
    """OpenAI's usage as Anthropic's: cached prompt tokens are cache reads, not input tokens."""
    usage = mapping(usage)
    prompt = count(usage.get("prompt_tokens"))
    details = mapping(usage.get("prompt_tokens_details"))
    cached = min(count(details.get("cached_tokens")), prompt)
    created = min(count(details.get("cache_creation_tokens")), prompt - cached)
    return {
        "input_tokens": prompt - cached - created,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": cached,
        "output_tokens": count(usage.get("completion_tokens")),
    }


def message_id(completion_id: Any) -> str:
    """Anthropic's `msg_` id for an answer, traceable to the upstream's id when it gave one."""
    if isinstance(completion_id, str) and completion_id:
        return "msg_" + completion_id.removeprefix("chatcmpl-")
    return f"msg_{uuid.uuid4().hex}"


def _tool_input(arguments: Any) -> dict[str, Any]:
    """A call's arguments as the object Anthropic's `input` must be.

    Small models sometimes emit arguments that are no JSON object; those are kept, as text, under
    `arguments` rather than lost.
    """
    if isinstance(arguments, dict):
        return arguments
    text = arguments if isinstance(arguments, str) else ""
    parsed = json_object(text)
    return parsed if parsed is not None else {"arguments": text}


def chat_completion_to_message(completion: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion (its first choice) as an Anthropic Message."""
    choices = completion.get("choices")
    choice = mapping(choices[0] if isinstance(choices, list) and choices else None)
    message = mapping(choice.get("message"))
    content: list[dict[str, Any]] = []
    thought = reasoning_text(message)
    if thought:
        content.append({"type": "thinking", "thinking": thought, "signature": ""})
    text = message.get("content")
    if isinstance(text, list):  # a few servers answer with parts
        text = "".join(part.get("text", "") for part in text if isinstance(part, dict))
    refusal = message.get("refusal")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    elif isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            content.append(
                {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
                    "name": function.get("name", ""),
                    "input": _tool_input(function.get("arguments")),
                }
            )
    finish = choice.get("finish_reason")
    stop_reason = "refusal" if refusal and not text else FINISH_TO_STOP.get(finish or "stop", "end_turn")
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": completion.get("model", ""),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage_to_anthropic(completion.get("usage")),
    }


# =============================================================================================
# An Anthropic answer for an OpenAI client


def usage_to_openai(usage: Any) -> dict[str, Any]:
    """Anthropic's usage as OpenAI's: prompt tokens include cache reads and writes, as OpenAI counts them.

    `prompt_tokens_details.cache_creation_tokens` is ours: OpenAI has no cache writes.
    """
    usage = mapping(usage)
    fresh = count(usage.get("input_tokens"))
    read = count(usage.get("cache_read_input_tokens"))
    created = count(usage.get("cache_creation_input_tokens"))
    completion = count(usage.get("output_tokens"))
    prompt = fresh + read + created
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": created},
    }


def message_to_chat_completion(payload: Any, *, created: int | None = None) -> dict[str, Any]:
    """An Anthropic Message as a chat.completion with one choice; UnreadableAnswer when it is no Message.

    Thinking goes out as `reasoning_content` (ours, as DeepSeek, vLLM and others send it); redacted
    thinking and the results of Anthropic's server tools have no OpenAI equivalent and are left out.
    """
    try:
        message = MessageResponse.model_validate(payload)
    except ValidationError:
        raise UnreadableAnswer("an answer that is no Message") from None
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ThinkingBlock):
            thoughts.append(block.thinking)
        elif isinstance(block, ToolUseBlock):
            arguments = json.dumps(block.input, ensure_ascii=False)
            calls.append({"id": block.id, "type": "function", "function": {"name": block.name, "arguments": arguments}})
    answer: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if thoughts:
        answer["reasoning_content"] = "".join(thoughts)
    answer["refusal"] = None
    if calls:
        answer["tool_calls"] = calls
    finish = STOP_TO_FINISH.get(message.stop_reason or "", "stop")
    return {
        "id": message.id,
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": message.model,
        "choices": [{"index": 0, "message": answer, "logprobs": None, "finish_reason": finish}],
        "usage": usage_to_openai(message.usage.model_dump()),
    }
