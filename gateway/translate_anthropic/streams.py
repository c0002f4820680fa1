"""Streams: small stateful translators, OpenAI chunks -> Anthropic events and the reverse."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gateway.anthropic_messages.protocol import TextBlock, ThinkingBlock, ToolUseBlock
from gateway.anthropic_messages.stream_protocol import (
    STREAM_EVENT,
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ErrorEvent,
    InputJsonDelta,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    TextDelta,
    ThinkingDelta,
)
from gateway.chat_completions.protocol import reasoning_text
from gateway.errors import GatewayError
from gateway.translate_anthropic.answers import UnreadableAnswer, usage_to_anthropic, usage_to_openai
from gateway.translate_anthropic.common import FINISH_TO_STOP, STOP_TO_FINISH, mapping
from gateway.translate_anthropic.errors import anthropic_error, openai_error


@dataclass
class ChatToMessagesStream:
    """OpenAI's chat chunks in, Anthropic's stream events out (as dicts, `type` first).

        stream = ChatToMessagesStream(model="acme/chat", input_tokens=estimate)
        events = stream.ping()           # while waiting: message_start first, then pings
        events = stream.feed(chunk)      # per chunk: block starts, deltas and stops
        events = stream.finish(usage)    # message_delta (stop reason, usage) and message_stop
        events = stream.fail(error)      # an error event, ending the stream

    `input_tokens` goes out in message_start (Anthropic's clients show it at once); the upstream's
    real count, known at the end, goes out in message_delta, which replaces it.
    """

    model: str
    input_tokens: int = 0
    id: str = ""
    started: bool = False
    _block: int = -1  # index of the open block, -1 for none
    _open_kind: str = ""  # "text", "thinking" or "tool:<openai index>"
    _tools: dict[int, int] = field(default_factory=dict)  # OpenAI tool index -> our block index
    _finish: str | None = None
    _usage: dict[str, int] | None = None
    _closed: bool = False

    def start(self) -> list[dict[str, Any]]:
        if self.started:
            return []
        self.started = True
        self.id = self.id or f"msg_{uuid.uuid4().hex}"
        return [
            {
                "type": "message_start",
                "message": {
                    "id": self.id,
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": self.model,
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": self.input_tokens, "output_tokens": 1},
                },
            }
        ]

    def ping(self) -> list[dict[str, Any]]:
        return [*self.start(), {"type": "ping"}]

    def _stop_block(self) -> list[dict[str, Any]]:
        if self._block < 0 or not self._open_kind:
            return []
        self._open_kind = ""
        return [{"type": "content_block_stop", "index": self._block}]

    def _open(self, kind: str, block: dict[str, Any]) -> list[dict[str, Any]]:
        events = self._stop_block()
        self._block += 1
        self._open_kind = kind
        events.append({"type": "content_block_start", "index": self._block, "content_block": block})
        return events

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self._block, "delta": delta}

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        events = self.start()
        if chunk.get("usage"):
            self._usage = usage_to_anthropic(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # an Anthropic client asked for one answer
            delta = choice.get("delta")
            if isinstance(delta, dict):
                events.extend(self._feed_delta(delta))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def _feed_delta(self, delta: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        thought = reasoning_text(delta)
        if thought:
            if self._open_kind != "thinking":
                events += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            events.append(self._delta({"type": "thinking_delta", "thinking": thought}))
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._open_kind != "text":
                events += self._open("text", {"type": "text", "text": ""})
            events.append(self._delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                events += self._feed_call(call)
        return events

    def _feed_call(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        """One tool-call delta. OpenAI-compatible servers stream calls one after another, so a call
        starting closes the previous block; a late fragment of an already closed call is dropped."""
        index = call.get("index", 0) if isinstance(call.get("index"), int) else 0
        function = mapping(call.get("function"))
        events: list[dict[str, Any]] = []
        kind = f"tool:{index}"
        if index not in self._tools:
            events += self._open(
                kind,
                {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
                    "name": function.get("name") or "",
                    "input": {},
                },
            )
            self._tools[index] = self._block
        elif self._open_kind != kind:
            return events
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return events

    def finish(self, usage: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The end of a complete answer: the last block's stop, message_delta and message_stop.

        `usage` (OpenAI's shape) replaces what the chunks reported: the caller's estimate when the
        upstream reported none.
        """
        if self._closed:
            return []
        self._closed = True
        events = self.start() + self._stop_block()
        usage = usage_to_anthropic(usage) if usage is not None else self._usage or {"output_tokens": 0}
        stop_reason = FINISH_TO_STOP.get(self._finish or "stop", "end_turn")
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": usage,
            }
        )
        events.append({"type": "message_stop"})
        return events

    def fail(self, error: GatewayError) -> list[dict[str, Any]]:
        """A failure after the stream began: Anthropic's error event ends it."""
        if self._closed:
            return []
        self._closed = True
        return [*self.start(), anthropic_error(error)[1]]


# =============================================================================================
# An Anthropic stream for an OpenAI client


@dataclass
class MessagesToChatStream:
    """Anthropic's stream events (the `data` of each) in, OpenAI's chat chunks out.

        stream = MessagesToChatStream()
        for event in events: chunks = stream.feed(event)   # UnreadableAnswer for a malformed one
        chunks = stream.finish()                           # UnreadableAnswer if message_stop never came

    The role chunk waits for the first content, so an error event right after message_start (an
    `overloaded_error`) comes before anything was relayed, while the request can still be retried.
    The last chunk carries the usage (choices: []), as an upstream asked with include_usage would.
    An `error` event becomes one {"error": {...}} payload in OpenAI's shape, ending the stream.
    """

    created: int = field(default_factory=lambda: int(time.time()))
    id: str = ""
    model: str = ""
    _role_sent: bool = False
    _tools: dict[int, int] = field(default_factory=dict)  # Anthropic block index -> OpenAI tool index
    _usage: dict[str, Any] = field(default_factory=dict)
    _finish: str | None = None
    done: bool = False

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def feed(self, payload: Any) -> list[dict[str, Any]]:
        try:
            event = STREAM_EVENT.validate_python(payload)
        except ValidationError:
            raise UnreadableAnswer("an unreadable stream event") from None
        if isinstance(event, MessageStartEvent):
            self.id = event.message.id
            self.model = event.message.model
            self._usage.update(event.message.usage.model_dump(exclude_none=True))
            return []
        if isinstance(event, ContentBlockStartEvent):
            return self._start(event)
        if isinstance(event, ContentBlockDeltaEvent):
            return self._delta(event)
        if isinstance(event, MessageDeltaEvent):
            self._usage.update(event.usage.model_dump(exclude_none=True))
            self._finish = STOP_TO_FINISH.get(event.delta.stop_reason or "", "stop")
            return [self._chunk({}, self._finish)]
        if isinstance(event, MessageStopEvent):
            self.done = True
            if self._finish is None:
                self._finish = "stop"
                return [self._chunk({}, "stop"), self._usage_chunk()]
            return [self._usage_chunk()]
        if isinstance(event, ErrorEvent):
            self.done = True
            _status, type_, code = openai_error(event.error.type)
            return [{"error": {"message": event.error.message, "type": type_, "param": None, "code": code}}]
        return []  # ping, content_block_stop, and event types newer than this code

    def _start(self, event: ContentBlockStartEvent) -> list[dict[str, Any]]:
        block = event.content_block
        if isinstance(block, ToolUseBlock):
            position = self._tools[event.index] = len(self._tools)
            call = {
                "index": position,
                "id": block.id,
                "type": "function",
                "function": {"name": block.name, "arguments": ""},
            }
            chunks = [self._chunk({"tool_calls": [call]})]
            if block.input:  # Anthropic starts with {}, and streams the input; some servers send it whole
                more = json.dumps(block.input, ensure_ascii=False)
                chunks.append(self._chunk({"tool_calls": [{"index": position, "function": {"arguments": more}}]}))
            return chunks
        if isinstance(block, TextBlock) and block.text:
            return [self._chunk({"content": block.text})]
        if isinstance(block, ThinkingBlock) and block.thinking:
            return [self._chunk({"reasoning_content": block.thinking})]
        return []

    def _delta(self, event: ContentBlockDeltaEvent) -> list[dict[str, Any]]:
        delta = event.delta
        if isinstance(delta, TextDelta):
            return [self._chunk({"content": delta.text})] if delta.text else []
        if isinstance(delta, ThinkingDelta):
            return [self._chunk({"reasoning_content": delta.thinking})] if delta.thinking else []
        if isinstance(delta, InputJsonDelta) and event.index in self._tools and delta.partial_json:
            call = {"index": self._tools[event.index], "function": {"arguments": delta.partial_json}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # signatures, citations: nothing an OpenAI client reads

    def _usage_chunk(self) -> dict[str, Any]:
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = usage_to_openai(self._usage)
        return chunk

    def finish(self) -> list[dict[str, Any]]:
        """At the end of the upstream's answer; an answer cut before message_stop is unreadable."""
        if not self.done:
            raise UnreadableAnswer("a stream that ended before message_stop")
        return []

    @property
    def usage(self) -> dict[str, Any]:
        """What the upstream reported so far, in OpenAI's shape (for a ledger row of a cut stream)."""
        return usage_to_openai(self._usage)
