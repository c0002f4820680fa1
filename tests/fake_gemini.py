"""A scriptable fake of Google's Gemini API: a real HTTP server on loopback, like tests/fake_anthropic.py.

It serves `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse` (server-sent
events, each a GenerateContentResponse; the last with the finish reason and the usage) and
`GET /v1beta/models`, on the machinery of FakeUpstream (the uvicorn thread, the script queue,
disconnect watching). Each test scripts what the next requests get:

    fake_gemini.queue(GeminiReply(parts=[{"text": "Hello there"}]))
    fake_gemini.queue(GeminiReply(parts=[{"text": "Let me see", "thought": True}, {"text": "42"}]))
    fake_gemini.queue(GeminiReply(parts=[{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}]))
    fake_gemini.queue(GeminiReply(status=429, error_status="RESOURCE_EXHAUSTED"))
    fake_gemini.queue(GeminiReply(error_after_parts=1))     # an error event mid-stream
    fake_gemini.queue(GeminiReply(raw_body=b'{ "candidates" : [] }'))        # exactly these bytes
    fake_gemini.queue(GeminiReply(raw_events=[b'{"candidates": []}', ...]))  # each one event's data
    fake_gemini.queue(GeminiReply(total_tokens=4242))      # what `:countTokens` answers

`raw_events` go out framed as Google frames them (`data: ` ... CRLF CRLF; a payload holding a newline
spans several `data:` lines), nothing else added.

Every request is recorded (`requests`, newest last) with its headers (`x-goog-api-key`), its parsed
JSON and its body byte for byte (`raw`). `api_key`, when set, is required as `x-goog-api-key`. The
base URL is the server's root (`http://127.0.0.1:PORT`), as `https://generativelanguage.googleapis.com` is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.fake_upstream import FakeUpstream, Receive, RecordedRequest, Send, _json, read_request

_METHOD = re.compile(r"^/v1beta/models/(?P<model>.+):(?P<method>generateContent|streamGenerateContent|countTokens)$")


@dataclass
class GeminiReply:
    parts: list[dict[str, Any]] = field(default_factory=lambda: [{"text": "Hello from the fake Gemini upstream."}])
    finish_reason: str = "STOP"
    prompt_tokens: int = 7
    candidates_tokens: int = 5
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    status: int = 200
    error_status: str = "INVALID_ARGUMENT"
    error_message: str = "fake gemini error"
    error_after_parts: int | None = None  # an error event after this many parts (streams)
    model_version: str = "gemini-fake-001"
    raw_body: bytes | None = None  # a 200 answer's body, sent as it is
    raw_events: list[bytes] | None = None  # a stream's events' data, sent as they are
    total_tokens: int = 0  # countTokens' count (left out when 0, as Google does)


@dataclass
class RecordedGeminiRequest(RecordedRequest):
    raw: bytes = b""
    query: str = ""

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-goog-api-key")


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


class FakeGemini(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.default: GeminiReply = GeminiReply()  # type: ignore[assignment]
        self.gemini_models = [
            {
                "name": "models/gemini-2.5-flash",
                "displayName": "Gemini 2.5 Flash",
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
        ]

    def reset(self) -> None:
        super().reset()
        self.default = GeminiReply()  # type: ignore[assignment]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def last(self) -> RecordedGeminiRequest:
        return self.requests[-1]  # type: ignore[return-value]

    def awaited_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if _METHOD.match(r.path)]

    async def app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers, raw, parsed = await read_request(scope, receive)
        query = scope.get("query_string", b"").decode()
        record = RecordedGeminiRequest(scope["method"], scope["path"], headers, parsed, raw=raw, query=query)
        with self._lock:
            self.requests.append(record)

        async def answer(status: int, payload: dict[str, Any]) -> None:
            await _json(send, status, payload)
            record.completed = True

        if self.api_key is not None and headers.get("x-goog-api-key") != self.api_key:
            return await answer(400, _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."))
        method, path = scope["method"], scope["path"]
        if method == "GET" and path == "/v1beta/models":
            return await answer(200, {"models": self.gemini_models})
        matched = _METHOD.match(path)
        if method != "POST" or matched is None:
            return await answer(404, _error(404, "NOT_FOUND", f"no route {path}"))
        if not isinstance(parsed, dict) or not (parsed.get("contents") or parsed.get("generateContentRequest")):
            return await answer(400, _error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: required"))
        with self._lock:
            reply = self._script.popleft() if self._script else self.default
        assert isinstance(reply, GeminiReply), "queue GeminiReply objects on the fake Gemini"
        if matched["method"] == "countTokens":
            return await self._count(reply, send, record)
        stream = matched["method"] == "streamGenerateContent"
        await self.watched(receive, record, self._reply(reply, stream, query, send, record))

    async def _count(self, reply: GeminiReply, send: Send, record: RecordedRequest) -> None:
        if reply.status >= 400:
            payload = _error(reply.status, reply.error_status, reply.error_message)
            return await self._send_json(send, record, reply.status, payload)
        counted: dict[str, Any] = {"totalTokens": reply.total_tokens} if reply.total_tokens else {}
        counted["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": reply.total_tokens}]
        await self._send_json(send, record, 200, counted)

    @staticmethod
    def usage(reply: GeminiReply) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "promptTokenCount": reply.prompt_tokens,
            "candidatesTokenCount": reply.candidates_tokens,
        }
        if reply.cached_tokens:
            usage["cachedContentTokenCount"] = reply.cached_tokens
        if reply.thoughts_tokens:
            usage["thoughtsTokenCount"] = reply.thoughts_tokens
        usage["totalTokenCount"] = reply.prompt_tokens + reply.candidates_tokens + reply.thoughts_tokens
        return usage

    def answer_of(self, reply: GeminiReply) -> dict[str, Any]:
        return {
            "candidates": [
                {"content": {"parts": reply.parts, "role": "model"}, "finishReason": reply.finish_reason, "index": 0}
            ],
            "usageMetadata": self.usage(reply),
            "modelVersion": reply.model_version,
            "responseId": "fake-response-1",
        }

    async def _reply(self, reply: GeminiReply, stream: bool, query: str, send: Send, record: RecordedRequest) -> None:
        if reply.status >= 400:
            return await self._send_json(
                send, record, reply.status, _error(reply.status, reply.error_status, reply.error_message)
            )
        if not stream and reply.raw_body is not None:
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": reply.raw_body})
            record.completed = True
            return None
        if not stream:
            return await self._send_json(send, record, 200, self.answer_of(reply))
        assert "alt=sse" in query, "the fake Gemini streams server-sent events only"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        if reply.raw_events is not None:
            for data in reply.raw_events:
                frame = b"data: " + data.replace(b"\n", b"\r\ndata: ") + b"\r\n\r\n"
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            record.completed = True
            return None

        async def emit(event: dict[str, Any]) -> None:
            # Google's frames end with CRLF pairs.
            frame = b"data: " + json.dumps(event).encode() + b"\r\n\r\n"
            await send({"type": "http.response.body", "body": frame, "more_body": True})

        last = len(reply.parts) - 1
        for index, part in enumerate(reply.parts):
            if reply.error_after_parts is not None and index >= reply.error_after_parts:
                await emit(_error(503, "UNAVAILABLE", "The model is overloaded."))
                break
            candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
            event: dict[str, Any] = {"candidates": [candidate], "modelVersion": reply.model_version}
            usage = self.usage(reply)
            if index == last:
                candidate["finishReason"] = reply.finish_reason
                event["usageMetadata"] = usage
            else:
                event["usageMetadata"] = {"promptTokenCount": usage["promptTokenCount"], "totalTokenCount": 0}
            event["responseId"] = "fake-response-1"
            await emit(event)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        record.completed = True

    async def _send_json(self, send: Send, record: RecordedRequest, status: int, payload: dict[str, Any]) -> None:
        await _json(send, status, payload)
        record.completed = True
