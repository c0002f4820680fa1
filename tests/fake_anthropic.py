"""A scriptable fake of Anthropic's API: a real HTTP server on loopback, like tests/fake_upstream.py.

It serves `POST /v1/messages` (JSON, or server-sent events with Anthropic's event sequence),
`POST /v1/messages/count_tokens` and `GET /v1/models`, on the machinery of FakeUpstream (the
uvicorn thread, the script queue, disconnect watching). Each test scripts what the next requests get:

    fake_anthropic.queue(AnthropicReply(content=[Text("Hello there")]))
    fake_anthropic.queue(AnthropicReply(content=[Thinking("Let me see..."), Text("42")]))
    fake_anthropic.queue(AnthropicReply(content=[Text("Checking."), ToolUse("get_weather", {"city": "Paris"})]))
    fake_anthropic.queue(AnthropicReply(status=529, error_type="overloaded_error", error_message="Overloaded"))
    fake_anthropic.queue(AnthropicReply(error_after_deltas=2))   # an overloaded_error event mid-stream
    fake_anthropic.queue(AnthropicReply(drop_after_deltas=1))    # the connection dropped mid-stream
    fake_anthropic.queue(AnthropicReply(hang=True))              # never answers

A stream is what Anthropic sends: `event:` and `data:` lines; message_start (input usage), a ping,
then per block content_block_start, its deltas (text_delta, input_json_delta in fragments,
thinking_delta then signature_delta) and content_block_stop; message_delta (stop reason, output
usage) and message_stop. A non-streamed answer is the Message those events build.

Every request is recorded (`requests`, newest last) with its headers (`x-api-key`,
`anthropic-version`, `anthropic-beta`), its parsed JSON and its body byte for byte (`raw`), so
passthrough tests can compare exactly what reached Anthropic. `api_key`, when set, is required as
`x-api-key` (or, as Anthropic now also takes it, a bearer token); `anthropic-version` is required
as Anthropic requires it. The base URL is the server's
root (`http://127.0.0.1:PORT`), as `https://api.anthropic.com` is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.fake_upstream import FakeUpstream, Receive, RecordedRequest, Send, _json, _sleep_or_disconnect, read_request


@dataclass
class Text:
    text: str
    chunks: int | None = None  # how many text_deltas; default: one per word


@dataclass
class ToolUse:
    name: str
    input: dict[str, Any]
    id: str = "toolu_01A09q90qw90lq917835lq9"
    fragments: int = 3  # how many input_json_delta pieces the input's JSON is cut into


@dataclass
class Thinking:
    thinking: str
    signature: str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


@dataclass
class RedactedThinking:
    data: str = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"


Block = Text | ToolUse | Thinking | RedactedThinking


@dataclass
class AnthropicReply:
    content: list[Block] = field(default_factory=lambda: [Text("Hello from the fake Anthropic upstream.")])
    stop_reason: str | None = None  # default: "tool_use" with a tool use, else "end_turn"
    stop_sequence: str | None = None
    input_tokens: int | None = None  # default: the words of the request's system and messages
    output_tokens: int | None = None  # default: the number of deltas
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    delay: float = 0.0  # seconds between deltas
    first_delay: float = 0.0  # seconds before the first byte (headers included)
    ping: bool = True  # a ping after message_start, as Anthropic sends
    status: int = 200
    error_type: str = "invalid_request_error"
    error_message: str = "fake anthropic error"
    retry_after: str | None = None  # a Retry-After header on an error answer
    error_after_deltas: int | None = None  # an error event (error_event_type) after this many deltas (0: first)
    error_event_type: str = "overloaded_error"
    drop_after_deltas: int | None = None  # drop the connection after this many deltas
    hang: bool = False  # send nothing until the client goes away
    model: str | None = None  # the model to answer with; default: the requested one
    id: str = "msg_01XFDUDYJgAACzvnptvVoYEL"


@dataclass
class RecordedAnthropicRequest(RecordedRequest):
    raw: bytes = b""  # the body exactly as it arrived

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-api-key")

    @property
    def version(self) -> str | None:
        return self.headers.get("anthropic-version")

    @property
    def beta(self) -> str | None:
        return self.headers.get("anthropic-beta")


def _error(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def _words(value: Any) -> int:
    """The words of a system prompt or a message's content, for the default input token count."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(item.get("text") or item.get("content") or "") for item in value if isinstance(item, dict))
    return 0


def input_tokens(request: dict[str, Any]) -> int:
    messages = request.get("messages") or []
    return _words(request.get("system")) + sum(_words(m.get("content")) for m in messages if isinstance(m, dict))


def _pieces(text: str, count: int | None) -> list[str]:
    if count:
        size = max(1, -(-len(text) // count))
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]
    words = text.split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def _block_events(index: int, block: Block) -> list[dict[str, Any]]:
    """content_block_start, the deltas and content_block_stop of one block."""
    start: dict[str, Any]
    deltas: list[dict[str, Any]]
    if isinstance(block, Text):
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block.text, block.chunks)]
    elif isinstance(block, ToolUse):
        start = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
        encoded = json.dumps(block.input)
        size = max(1, -(-len(encoded) // block.fragments))
        deltas = [{"type": "input_json_delta", "partial_json": ""}]  # Anthropic opens with an empty one
        deltas += [
            {"type": "input_json_delta", "partial_json": encoded[i : i + size]} for i in range(0, len(encoded), size)
        ]
    elif isinstance(block, Thinking):
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _pieces(block.thinking, None)]
        deltas.append({"type": "signature_delta", "signature": block.signature})
    else:
        start = {"type": "redacted_thinking", "data": block.data}
        deltas = []
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *({"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas),
        {"type": "content_block_stop", "index": index},
    ]


def _block_json(block: Block) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUse):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if isinstance(block, Thinking):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    return {"type": "redacted_thinking", "data": block.data}


class FakeAnthropic(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.default: AnthropicReply = AnthropicReply()  # type: ignore[assignment]
        self.require_version = True
        self.token_count: int | None = None  # what count_tokens answers; default: the words
        self.models = [
            {
                "type": "model",
                "id": "claude-opus-4-1-20250805",
                "display_name": "Claude Opus 4.1",
                "created_at": "2025-08-05T00:00:00Z",
            },
            {
                "type": "model",
                "id": "claude-sonnet-4-5-20250929",
                "display_name": "Claude Sonnet 4.5",
                "created_at": "2025-09-29T00:00:00Z",
            },
        ]

    def reset(self) -> None:
        super().reset()
        self.default = AnthropicReply()  # type: ignore[assignment]
        self.require_version = True
        self.token_count = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def last(self) -> RecordedAnthropicRequest:
        return self.requests[-1]  # type: ignore[return-value]

    def message_requests(self) -> list[RecordedAnthropicRequest]:
        return [r for r in self.requests if r.path == "/v1/messages"]  # type: ignore[misc]

    def awaited_requests(self) -> list[RecordedRequest]:
        return self.message_requests()  # type: ignore[return-value]

    # -- the ASGI app ------------------------------------------------------------------------
    async def app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers, raw, parsed = await read_request(scope, receive)
        record = RecordedAnthropicRequest(scope["method"], scope["path"], headers, parsed, raw=raw)
        with self._lock:
            self.requests.append(record)

        async def answer(status: int, payload: dict[str, Any]) -> None:
            await _json(send, status, payload)
            record.completed = True

        # Anthropic takes a key as x-api-key, and lately as a bearer token too (newer SDKs send that).
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key is not None and self.api_key not in (headers.get("x-api-key"), bearer):
            return await answer(401, _error("authentication_error", "invalid x-api-key"))
        if self.require_version and not headers.get("anthropic-version"):
            return await answer(400, _error("invalid_request_error", "anthropic-version: header is required"))
        method, path = scope["method"], scope["path"]
        if method == "GET" and path == "/v1/models":
            first, last = self.models[0]["id"], self.models[-1]["id"]
            return await answer(200, {"data": self.models, "has_more": False, "first_id": first, "last_id": last})
        if method == "POST" and path == "/v1/messages/count_tokens":
            if not isinstance(parsed, dict):
                return await answer(400, _error("invalid_request_error", "the body must be a JSON object"))
            count = self.token_count if self.token_count is not None else input_tokens(parsed)
            return await answer(200, {"input_tokens": count})
        if method != "POST" or path != "/v1/messages":
            return await answer(404, _error("not_found_error", f"no route {path}"))
        if not isinstance(parsed, dict):
            return await answer(400, _error("invalid_request_error", "the body must be a JSON object"))

        with self._lock:
            reply = self._script.popleft() if self._script else self.default
        assert isinstance(reply, AnthropicReply), "queue AnthropicReply objects on the fake Anthropic"
        await self.watched(receive, record, self._reply(reply, parsed, send, record))

    async def _reply(self, reply: AnthropicReply, request: dict[str, Any], send: Send, record: RecordedRequest) -> None:
        if reply.first_delay and await _sleep_or_disconnect(reply.first_delay, record):
            return
        if reply.hang:
            await _sleep_or_disconnect(3600, record)
            return
        if reply.status >= 400:
            body = json.dumps(_error(reply.error_type, reply.error_message)).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if reply.retry_after is not None:
                headers.append((b"retry-after", reply.retry_after.encode()))
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            record.completed = True
            return
        events = self._events(reply, request)
        if request.get("stream"):
            await self._stream(reply, events, send, record)
        else:
            await _json(send, 200, self._message(reply, request, events))
            record.completed = True

    def _events(self, reply: AnthropicReply, request: dict[str, Any]) -> list[dict[str, Any]]:
        """The whole event sequence of the reply (the JSON answer is the Message it builds)."""
        blocks = [event for index, block in enumerate(reply.content) for event in _block_events(index, block)]
        deltas = sum(1 for event in blocks if event["type"] == "content_block_delta")
        stop = reply.stop_reason or ("tool_use" if any(isinstance(b, ToolUse) for b in reply.content) else "end_turn")
        usage = {
            "input_tokens": reply.input_tokens if reply.input_tokens is not None else input_tokens(request),
            "cache_creation_input_tokens": reply.cache_creation_input_tokens,
            "cache_read_input_tokens": reply.cache_read_input_tokens,
            "output_tokens": 1,
        }
        start = {
            "type": "message_start",
            "message": {
                "id": reply.id,
                "type": "message",
                "role": "assistant",
                "model": reply.model or str(request.get("model", "")),
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            },
        }
        output = reply.output_tokens if reply.output_tokens is not None else max(deltas, 1)
        end = [
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": reply.stop_sequence},
                "usage": {"output_tokens": output},
            },
            {"type": "message_stop"},
        ]
        # As in Anthropic's own example streams, the ping follows the first block's start.
        head = [start, *blocks[:1]]
        return [*head, *([{"type": "ping"}] if reply.ping else []), *blocks[1:], *end]

    def _message(self, reply: AnthropicReply, request: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
        message = dict(events[0]["message"])
        delta = next(event for event in events if event["type"] == "message_delta")
        message["content"] = [_block_json(block) for block in reply.content]
        message["stop_reason"] = delta["delta"]["stop_reason"]
        message["stop_sequence"] = delta["delta"]["stop_sequence"]
        message["usage"] = {**message["usage"], "output_tokens": delta["usage"]["output_tokens"]}
        return message

    async def _stream(
        self, reply: AnthropicReply, events: list[dict[str, Any]], send: Send, record: RecordedRequest
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")],
            }
        )

        async def emit(event: dict[str, Any]) -> None:
            frame = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})

        sent = 0  # deltas sent
        for event in events:
            if event["type"] in ("content_block_start", "content_block_delta"):
                if reply.drop_after_deltas is not None and sent >= reply.drop_after_deltas:
                    raise ConnectionAbortedError("the fake Anthropic drops the connection")
                if reply.error_after_deltas is not None and sent >= reply.error_after_deltas:
                    message = "Overloaded" if reply.error_event_type == "overloaded_error" else reply.error_message
                    await emit(_error(reply.error_event_type, message))
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    record.completed = True
                    return
            if event["type"] == "content_block_delta":
                if sent and reply.delay and await _sleep_or_disconnect(reply.delay, record):
                    return
                sent += 1
            await emit(event)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        record.completed = True
