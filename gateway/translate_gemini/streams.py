"""Streams: chat chunks as Gemini's streamed GenerateContentResponses, and the reverse.

Gemini streams (`streamGenerateContent?alt=sse`) are `data:` events, each a GenerateContentResponse
holding the new parts; the last carries the finish reason and the usage. A function call comes
whole, in one event.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway.chat_completions.protocol import reasoning_text
from gateway.errors import GatewayError, UnreadableAnswer
from gateway.translate_gemini.answers import finish_reason, function_call_part, read_parts
from gateway.translate_gemini.common import (
    FINISH_TO_GEMINI,
    google_error,
    listing,
    mapping,
    usage_to_gemini,
    usage_to_openai,
)


def _index(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


@dataclass
class _Choice:
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)  # OpenAI tool-call index -> call so far
    finish: str | None = None


@dataclass
class ChatToGeminiStream:
    """Chat chunks (ours, after the upstream's were read) as a Gemini client's stream events.

    Text and reasoning go out as they come; a tool call's arguments come in fragments and go out
    whole, as Gemini sends function calls, with the finish reason and the usage at the end (`finish`).
    """

    model: str
    response_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    choices: dict[int, _Choice] = field(default_factory=dict)

    def _event(self, candidates: list[dict[str, Any]]) -> dict[str, Any]:
        return {"candidates": candidates, "modelVersion": self.model, "responseId": self.response_id}

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        candidates = []
        for choice in listing(chunk.get("choices")):
            choice = mapping(choice)
            index = _index(choice.get("index"), 0)
            state = self.choices.setdefault(index, _Choice())
            delta = mapping(choice.get("delta"))
            parts: list[dict[str, Any]] = []
            thought = reasoning_text(delta)
            if thought:
                parts.append({"text": thought, "thought": True})
            if isinstance(delta.get("content"), str) and delta["content"]:
                parts.append({"text": delta["content"]})
            for piece in listing(delta.get("tool_calls")):
                self._gather(state, mapping(piece))
            if isinstance(choice.get("finish_reason"), str):
                state.finish = choice["finish_reason"]
            if parts:
                candidates.append({"content": {"parts": parts, "role": "model"}, "index": index})
        return [self._event(candidates)] if candidates else []

    @staticmethod
    def _gather(state: _Choice, piece: dict[str, Any]) -> None:
        position = _index(piece.get("index"), len(state.calls))
        call = state.calls.setdefault(position, {"function": {"name": "", "arguments": ""}})
        for name in ("id", "extra_content"):
            if piece.get(name):
                call[name] = piece[name]
        function = mapping(piece.get("function"))
        for name in ("name", "arguments"):
            if isinstance(function.get(name), str):
                call["function"][name] += function[name]

    def finish(self, usage: dict[str, Any]) -> list[dict[str, Any]]:
        """The last event: the function calls gathered, each choice's finish reason, the usage."""
        candidates = []
        for index, state in sorted(self.choices.items()):
            parts = [part for call in state.calls.values() if (part := function_call_part(call)) is not None]
            candidate: dict[str, Any] = {"content": {"parts": parts or [{"text": ""}], "role": "model"}}
            candidate["finishReason"] = FINISH_TO_GEMINI.get(state.finish or "stop", "STOP")
            candidate["index"] = index
            candidates.append(candidate)
        event = self._event(candidates or [{"content": {"parts": [{"text": ""}], "role": "model"}, "index": 0}])
        event["usageMetadata"] = usage_to_gemini(usage)
        return [event]

    def fail(self, error: GatewayError) -> list[dict[str, Any]]:
        return [google_error(error)[1]]


@dataclass
class GeminiToChatStream:
    """A Gemini upstream's stream events as chat chunks (each with the usage so far, which the relay
    reads and takes out); an error event passes as it is, for the relay to raise."""

    completion_id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))
    started: set[int] = field(default_factory=set)
    calls: dict[int, int] = field(default_factory=dict)  # candidate index -> tool calls so far
    finished: bool = False

    def feed(self, payload: Any) -> list[dict[str, Any]]:
        if not isinstance(payload, dict):
            raise UnreadableAnswer("an unreadable stream event")
        if "error" in payload:
            return [payload]
        choices = []
        for position, candidate in enumerate(listing(payload.get("candidates"))):
            candidate = mapping(candidate)
            index = _index(candidate.get("index"), position)
            text, thoughts, calls = read_parts(listing(mapping(candidate.get("content")).get("parts")))
            delta: dict[str, Any] = {}
            if index not in self.started:
                self.started.add(index)
                delta["role"] = "assistant"
            if thoughts:
                delta["reasoning_content"] = thoughts
            if text:
                delta["content"] = text
            if calls:
                first = self.calls.get(index, 0)
                delta["tool_calls"] = [{**call, "index": first + call["index"]} for call in calls]
                self.calls[index] = first + len(calls)
            reason = candidate.get("finishReason")
            finish = finish_reason(reason, bool(self.calls.get(index))) if reason else None
            self.finished = self.finished or finish is not None
            choices.append({"index": index, "delta": delta, "logprobs": None, "finish_reason": finish})
        if not choices and mapping(payload.get("promptFeedback")).get("blockReason"):
            self.finished = True
            delta = {"role": "assistant", "content": ""}
            choices.append({"index": 0, "delta": delta, "logprobs": None, "finish_reason": "content_filter"})
        if not choices:
            return []
        chunk: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": "",
            "choices": choices,
        }
        usage = usage_to_openai(payload.get("usageMetadata"))
        if usage is not None:
            chunk["usage"] = usage
        return [chunk]

    def finish(self) -> None:
        if not self.finished:
            raise UnreadableAnswer("a stream that ended before its finish reason")
