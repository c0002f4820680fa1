"""Answers: a chat.completion as Gemini's GenerateContentResponse, and the reverse."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from gateway.chat_completions.protocol import reasoning_text
from gateway.errors import UnreadableAnswer
from gateway.translate_gemini.common import (
    FINISH_TO_GEMINI,
    FINISH_TO_OPENAI,
    arguments_object,
    listing,
    mapping,
    usage_to_gemini,
    usage_to_openai,
)
from gateway.translate_gemini.requests import EXTRA


def function_call_part(tool_call: dict[str, Any]) -> dict[str, Any] | None:
    """An OpenAI tool call (complete) as a Gemini functionCall part, its id and thought signature kept."""
    function = mapping(tool_call.get("function"))
    name = function.get("name")
    if not isinstance(name, str) or not name:
        return None
    call: dict[str, Any] = {"name": name, "args": arguments_object(str(function.get("arguments") or ""))}
    if isinstance(tool_call.get("id"), str):
        call["id"] = tool_call["id"]
    part: dict[str, Any] = {"functionCall": call}
    signature = mapping(mapping(tool_call.get(EXTRA)).get("google")).get("thought_signature")
    if isinstance(signature, str):
        part["thoughtSignature"] = signature
    return part


def _candidate(choice: dict[str, Any], position: int) -> dict[str, Any]:
    message = mapping(choice.get("message"))
    parts: list[dict[str, Any]] = []
    thought = reasoning_text(message)
    if thought:
        parts.append({"text": thought, "thought": True})
    text = message.get("content")
    if isinstance(text, str) and text:
        parts.append({"text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append({"text": refusal})
    for tool_call in listing(message.get("tool_calls")):
        part = function_call_part(mapping(tool_call))
        if part is not None:
            parts.append(part)
    finish = choice.get("finish_reason")
    candidate: dict[str, Any] = {
        "content": {"parts": parts or [{"text": ""}], "role": "model"},
        "finishReason": FINISH_TO_GEMINI.get(finish if isinstance(finish, str) else "", "STOP"),
        "index": choice.get("index") if isinstance(choice.get("index"), int) else position,
    }
    return candidate


def chat_completion_to_gemini(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat.completion as a GenerateContentResponse: reasoning as thought parts, tool calls as
    function calls (with their ids), usage with its thoughts and cached tokens."""
    candidates = [_candidate(mapping(choice), i) for i, choice in enumerate(listing(completion.get("choices")))]
    return {
        "candidates": candidates,
        "usageMetadata": usage_to_gemini(completion.get("usage")),
        "modelVersion": model,
        "responseId": str(completion.get("id") or uuid.uuid4().hex),
    }


def tool_call_of(part: dict[str, Any], index: int) -> dict[str, Any]:
    """A Gemini functionCall part as an OpenAI tool call: Gemini's id or one made up, its thought
    signature in `extra_content.google.thought_signature` to go back with the call next turn."""
    call = mapping(part.get("functionCall"))
    given = call.get("id")
    tool_call: dict[str, Any] = {
        "index": index,
        "id": given if isinstance(given, str) and given else f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": str(call.get("name") or ""), "arguments": json.dumps(mapping(call.get("args")))},
    }
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        tool_call[EXTRA] = {"google": {"thought_signature": signature}}
    return tool_call


def read_parts(parts: list[Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """A candidate's parts as (text, thoughts, tool calls)."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts:
        part = mapping(part)
        if "functionCall" in part:
            calls.append(tool_call_of(part, len(calls)))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") is True else texts).append(part["text"])
    return "".join(texts), "".join(thoughts), calls


def finish_reason(reason: Any, calls: bool) -> str:
    if calls and reason in (None, "STOP"):
        return "tool_calls"
    return FINISH_TO_OPENAI.get(reason if isinstance(reason, str) else "", "stop")


def gemini_to_chat_completion(payload: dict[str, Any]) -> dict[str, Any]:
    """A GenerateContentResponse as a chat.completion (model: the caller sets it)."""
    candidates = payload.get("candidates")
    if candidates is None and mapping(payload.get("promptFeedback")).get("blockReason"):
        candidates = [{"content": {"parts": []}, "finishReason": "SAFETY"}]
    if not isinstance(candidates, list):
        raise UnreadableAnswer("an answer without candidates")
    choices = []
    for position, candidate in enumerate(candidates):
        candidate = mapping(candidate)
        text, thoughts, calls = read_parts(listing(mapping(candidate.get("content")).get("parts")))
        message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else ""), "refusal": None}
        if thoughts:
            message["reasoning_content"] = thoughts
        if calls:
            message["tool_calls"] = [{k: v for k, v in call.items() if k != "index"} for call in calls]
        index = candidate.get("index")
        choices.append(
            {
                "index": index if isinstance(index, int) else position,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
            }
        )
    completion: dict[str, Any] = {
        "id": f"chatcmpl-{payload.get('responseId') or uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "",
        "choices": choices,
    }
    usage = usage_to_openai(payload.get("usageMetadata"))
    if usage is not None:
        completion["usage"] = usage
    return completion
