"""A scriptable fake OpenAI-compatible upstream: a real HTTP server on loopback.

It serves `POST /v1/chat/completions` (streaming and not) and `GET /v1/models` from a raw ASGI
app under uvicorn in a background thread; `POST /v1/completions`, `POST /v1/embeddings` and (while
`speaks_responses` is true) `POST /v1/responses` too, see tests/fake_upstream_openai.py. Each test
scripts what the next requests get:

    fake_upstream.queue(Reply(content="Hello there", chunks=5, delay=0.01))
    fake_upstream.queue(Reply(status=429, error_message="slow down"))      # error before the first byte
    fake_upstream.queue(Reply(chunks=3, fail_after_chunks=2))              # error event after two chunks
    fake_upstream.queue(Reply(drop_after_chunks=1))                        # connection dropped mid-stream
    fake_upstream.queue(reply := Reply(chunks=9, hold_after_chunks=3))     # ... reply.released.set() goes on
    fake_upstream.queue(Reply(hang=True))                                  # never answers
    fake_upstream.queue(Reply(drop=True))                                  # connection dropped before answering
    fake_upstream.queue(Reply(status=429, retry_after="30"))               # with a Retry-After header
    fake_upstream.queue(Reply(garbage=True))                               # 200 with a body that isn't JSON
    fake_upstream.queue(Reply(tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')]))
    fake_upstream.queue(Reply(reasoning="Let me think."))                  # reasoning_content first
    fake_upstream.queue(Reply(takes=0.5))        # the test's ManualClock moves 0.5 s before the first byte

A request with nothing queued gets `fake_upstream.default` (a short successful reply). Every chat
request is recorded (`fake_upstream.requests`, newest last) with its headers and JSON body, and with
`disconnected` (a threading.Event set when the client went away before the reply was complete) and
`completed` (the whole reply was sent). `wait_disconnected(timeout)` tells whether the gateway
cancelled. `models` is what `GET /v1/models` lists; `api_key`, when set, is required as the bearer.

Usage: for a non-streamed reply `usage=True` puts a usage object in the body. For a stream, the usage
chunk (choices []) is sent when the request asked with `stream_options.include_usage`, unless
`usage=False`. Prompt tokens are the words of all messages; completion tokens are the chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from core.clock import ManualClock, clock
from tests import fake_upstream_openai

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class ToolCall:
    name: str
    arguments: str
    id: str = "call_fake_1"


@dataclass
class Reply:
    content: str = "Hello from the fake upstream."
    chunks: int | None = None  # how many content pieces a stream has; default: one per word
    delay: float = 0.0  # seconds between chunks
    first_delay: float = 0.0  # seconds before the first byte (headers included)
    # Seconds the test's clock (core.clock, a ManualClock) moves on before the first byte: a slow
    # upstream as the gateway measures it, without waiting.
    takes: float = 0.0
    usage: bool = True
    n: int = 1
    tool_calls: list[ToolCall] | None = None
    finish_reason: str | None = None  # default: "tool_calls" with tool calls, else "stop"
    status: int = 200
    error_message: str = "fake upstream error"
    error_type: str = "invalid_request_error"
    error_code: str | None = None
    fail_after_chunks: int | None = None  # stream an error event after this many chunks
    drop_after_chunks: int | None = None  # drop the connection after this many chunks
    # Stop after this many chunks until the test sets `released` (or the client goes away): a test can
    # look at a reply mid-stream however slow the machine is.
    hold_after_chunks: int | None = None
    released: threading.Event = field(default_factory=threading.Event)
    hang: bool = False  # send nothing until the client goes away
    garbage: bool = False  # a 200 whose body is not JSON
    drop: bool = False  # drop the connection before answering anything
    retry_after: str | None = None  # a Retry-After header on an error answer
    model: str | None = None  # the model name to answer with; default: the requested one
    reasoning: str | None = None  # reasoning text sent before the content
    reasoning_field: str = "reasoning_content"  # where chat answers put it (some upstreams say "reasoning")
    reasoning_tokens: int = 0  # reported in the usage (completion_tokens_details), on top of the chunks
    usage_extra: dict[str, Any] = field(default_factory=dict)  # more fields of the usage object, as given


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    received_at: float = field(default_factory=time.monotonic)
    disconnected: threading.Event = field(default_factory=threading.Event)
    disconnected_at: float | None = None
    completed: bool = False

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class FakeUpstream:
    def __init__(self) -> None:
        self.default = Reply()
        self.models: list[dict[str, Any]] = [
            {"id": "fake-small", "object": "model", "created": 1700000000, "owned_by": "fake"},
            {"id": "fake-large", "object": "model", "created": 1700000001, "owned_by": "fake"},
        ]
        self.api_key: str | None = None
        self.speaks_responses = False  # answer POST /v1/responses (else 404, as chat-only servers do)
        self.embedding_dims = 8
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- scripting ---------------------------------------------------------------------------
    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
        self.default = Reply()
        self.api_key = None
        self.speaks_responses = False
        self.embedding_dims = 8

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The requests whose path ends with `path` (e.g. "/responses", "/embeddings")."""
        return [r for r in self.requests if r.path.endswith(path)]

    def awaited_requests(self) -> list[RecordedRequest]:
        """The requests `wait_for_requests` counts: chat completions here."""
        return self.chat_requests()

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until `count` requests came (a condition, so a slow machine only waits longer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.awaited_requests()) >= count:
                return True
            time.sleep(0.01)
        return False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, port: int = 0) -> FakeUpstream:
        """Serve on `port` (0: a free one); a given port lets a test bring a "dead" upstream back."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, interface="asgi3", log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- the ASGI app ------------------------------------------------------------------------
    async def app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers, _raw, parsed = await read_request(scope, receive)
        record = RecordedRequest(scope["method"], scope["path"], headers, parsed)
        with self._lock:
            self.requests.append(record)

        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            await _json(send, 401, _error("Incorrect API key provided", "invalid_request_error", "invalid_api_key"))
            record.completed = True
            return
        if scope["method"] == "GET" and scope["path"] == "/v1/models":
            await _json(send, 200, {"object": "list", "data": self.models})
            record.completed = True
            return
        if scope["method"] != "POST" or scope["path"] not in self._routes():
            await _json(send, 404, _error(f"no route {scope['path']}", "invalid_request_error", None))
            record.completed = True
            return

        with self._lock:
            reply = self._script.popleft() if self._script else self.default

        await self.watched(receive, record, self._answer(reply, parsed or {}, send, record))

    async def watched(self, receive: Receive, record: RecordedRequest, answering: Awaitable[None]) -> None:
        """Answer (await `answering`) while watching for the client going away (noted on `record`)."""
        watcher = asyncio.ensure_future(self._watch_disconnect(receive, record))
        try:
            await answering
        finally:
            if record.completed:
                watcher.cancel()
            else:
                # Give the disconnect a moment to be noticed, then stop watching.
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(watcher), timeout=2)
                watcher.cancel()

    def _routes(self) -> set[str]:
        routes = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}
        return routes | {"/v1/responses"} if self.speaks_responses else routes

    async def _watch_disconnect(self, receive: Receive, record: RecordedRequest) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not record.completed:
                    record.disconnected_at = time.monotonic()
                    record.disconnected.set()
                return

    async def _answer(self, reply: Reply, request: dict[str, Any], send: Send, record: RecordedRequest) -> None:
        if reply.takes:
            manual = clock()
            assert isinstance(manual, ManualClock), "Reply(takes=...) needs the test's `clock` fixture"
            manual.advance(reply.takes)
        if reply.first_delay and await _sleep_or_disconnect(reply.first_delay, record):
            return
        if reply.hang:
            await _sleep_or_disconnect(3600, record)
            return
        if reply.drop:
            raise ConnectionAbortedError("fake upstream drops the connection before answering")
        if reply.status >= 400:
            extra = [(b"retry-after", reply.retry_after.encode())] if reply.retry_after else []
            error = _error(reply.error_message, reply.error_type, reply.error_code)
            await _json(send, reply.status, error, extra)
            record.completed = True
            return
        if reply.garbage:
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": b"<html>definitely not json"})
            record.completed = True
            return
        model = reply.model or str(request.get("model", "fake"))
        if record.path == "/v1/embeddings":
            await _json(send, 200, fake_upstream_openai.embeddings(request, model, self.embedding_dims, reply.usage))
            record.completed = True
        elif record.path in ("/v1/completions", "/v1/responses"):
            text = record.path == "/v1/completions"
            if request.get("stream"):
                streamer = fake_upstream_openai.stream_completion if text else fake_upstream_openai.stream_response
                await self._stream_with(streamer, reply, request, model, send, record, named=not text)
            else:
                answer = fake_upstream_openai.completion if text else fake_upstream_openai.response
                await _json(send, 200, answer(reply, request, model))
                record.completed = True
        elif request.get("stream"):
            await self._stream(reply, request, model, send, record)
        else:
            await _json(send, 200, _completion(reply, request, model))
            record.completed = True

    async def _stream_with(
        self,
        streamer: Any,
        reply: Reply,
        request: dict[str, Any],
        model: str,
        send: Send,
        record: RecordedRequest,
        *,
        named: bool,
    ) -> None:
        """An event stream written by `streamer`; `named` adds each event's `event:` line (Responses)."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )

        async def event(payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            name = f"event: {payload['type']}\n" if named and isinstance(payload, dict) else ""
            await send({"type": "http.response.body", "body": f"{name}data: {data}\n\n".encode(), "more_body": True})

        async def pause() -> bool:
            return bool(reply.delay) and await _sleep_or_disconnect(reply.delay, record)

        await streamer(reply, request, model, event, pause)
        if not record.disconnected.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            record.completed = True

    async def _stream(
        self, reply: Reply, request: dict[str, Any], model: str, send: Send, record: RecordedRequest
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )

        async def event(payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await send({"type": "http.response.body", "body": f"data: {data}\n\n".encode(), "more_body": True})

        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        pieces = _pieces(reply)
        if reply.reasoning:
            pieces = [{reply.reasoning_field: reply.reasoning}, *pieces]
        for index in range(reply.n):
            await event(
                {
                    **base,
                    "choices": [{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                }
            )
        for sent, piece in enumerate(pieces):
            if reply.drop_after_chunks is not None and sent >= reply.drop_after_chunks:
                raise ConnectionAbortedError("fake upstream drops the connection")
            if reply.fail_after_chunks is not None and sent >= reply.fail_after_chunks:
                await event(_error(reply.error_message, "server_error", reply.error_code))
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                record.completed = True
                return
            if sent and reply.delay and await _sleep_or_disconnect(reply.delay, record):
                return
            if sent == reply.hold_after_chunks and await _wait_or_disconnect(reply.released, record):
                return
            for index in range(reply.n):
                await event({**base, "choices": [{"index": index, "delta": piece, "finish_reason": None}]})
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        for index in range(reply.n):
            await event({**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
        wants_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        if reply.usage and wants_usage:
            await event({**base, "choices": [], "usage": _usage(request, reply, len(pieces) * reply.n)})
        await event("[DONE]")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        record.completed = True


def _pieces(reply: Reply) -> list[dict[str, Any]]:
    if reply.tool_calls:
        deltas: list[dict[str, Any]] = []
        for position, call in enumerate(reply.tool_calls):
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": position,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            half = len(call.arguments) // 2
            for part in (call.arguments[:half], call.arguments[half:]):
                deltas.append({"tool_calls": [{"index": position, "function": {"arguments": part}}]})
        return deltas
    words = reply.content.split(" ")
    count = reply.chunks or len(words)
    size = max(1, -(-len(reply.content) // count))
    texts = (
        [reply.content[i : i + size] for i in range(0, len(reply.content), size)]
        if reply.chunks
        else [word if i == 0 else " " + word for i, word in enumerate(words)]
    )
    return [{"content": text} for text in texts]


def _usage(request: dict[str, Any], reply: Reply, chunks: int) -> dict[str, Any]:
    prompt = 0
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            prompt += len(content.split())
        elif isinstance(content, list):
            prompt += sum(len(str(part.get("text", "")).split()) for part in content if isinstance(part, dict))
    completion_tokens = chunks + reply.reasoning_tokens
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    if reply.reasoning_tokens:
        usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
    return {**usage, **reply.usage_extra}


def _completion(reply: Reply, request: dict[str, Any], model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.reasoning:
        message[reply.reasoning_field] = reply.reasoning
    if reply.tool_calls:
        message["content"] = None
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in reply.tool_calls
        ]
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": index, "message": message, "finish_reason": finish, "logprobs": None} for index in range(reply.n)
        ],
    }
    if reply.usage:
        body["usage"] = _usage(request, reply, len(_pieces(reply)) * reply.n)
    return body


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


async def _json(
    send: Send, status: int, payload: dict[str, Any], extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": body})


async def _wait_or_disconnect(event: threading.Event, record: RecordedRequest) -> bool:
    """Wait until the event is set or the client went away; True when it went away."""
    while not event.is_set():
        if record.disconnected.is_set():
            return True
        await asyncio.sleep(0.01)
    return record.disconnected.is_set()


async def read_request(scope: dict[str, Any], receive: Receive) -> tuple[dict[str, str], bytes, Any]:
    """A request's headers (lower-case names), raw body, and body as JSON (None when it is not)."""
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return headers, raw, parsed


async def _sleep_or_disconnect(seconds: float, record: RecordedRequest) -> bool:
    """Sleep, waking early when the client went away; True when it did."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if record.disconnected.is_set():
            return True
        await asyncio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
    return record.disconnected.is_set()
