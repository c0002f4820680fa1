"""What goes on the wire to a /v1 client: JSON, errors in the endpoint's shape, server-sent events.

The lowest of the gateway's web modules: gateway.asgi, gateway.endpoint and the endpoints' views
build on it. One SSE writer serves every stream, in one of these formats:

    DATA_ONLY      `data: {...}` frames, then `data: [DONE]` (chat and text completions)
    NAMED          `event: <type>` before each frame, no [DONE] (Responses)
    ANTHROPIC_SSE  named, with Anthropic's `ping` event while the upstream is silent
    GEMINI_SSE     `data: {...}` frames, no [DONE], no keep-alive (Gemini's streamGenerateContent?alt=sse)

A None in the event stream means "the upstream was silent": the format's keep-alive goes out.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from django.http import HttpResponse, StreamingHttpResponse

from gateway.errors import GatewayError
from gateway.translate_anthropic.errors import anthropic_error
from gateway.translate_gemini.common import google_error
from gateway.verbatim import Verbatim


def encode_json(payload: Any) -> bytes:
    """Compact UTF-8 JSON, as json.dumps(separators=(",", ":"), ensure_ascii=False) writes it.

    orjson, because a stream chunk is encoded once per chunk sent (bench/side_by_side.py measures
    what it saves). What it refuses (integers beyond 64 bits an upstream may send) goes through json.
    A Verbatim goes as the text it came as.
    """
    if isinstance(payload, Verbatim):
        return payload.text.encode()
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(encode_json(payload), status=status, content_type="application/json", headers=headers)


OPENAI = "openai"
ANTHROPIC = "anthropic"
GOOGLE = "google"
ANTHROPIC_PATHS = "/v1/messages"  # what answers in Anthropic's shape, before any view decided it
GOOGLE_PATHS = "/v1beta/"  # what answers in Google's shape (Gemini's API), and its methods under /v1:
GOOGLE_METHOD = re.compile(r":(generateContent|streamGenerateContent|countTokens)$")


def error_response(exc: GatewayError, headers: dict[str, str] | None = None, *, shape: str = OPENAI) -> HttpResponse:
    if shape == ANTHROPIC:
        status, payload = anthropic_error(exc)
    elif shape == GOOGLE:
        status, payload = google_error(exc)
    else:
        status, payload = exc.status, exc.to_dict()
    return json_response(payload, status, {**(headers or {}), **exc.headers})


def shape_for(path: str) -> str:
    """The error shape of a path's answers, for errors raised before a view (or outside one)."""
    if path.startswith(GOOGLE_PATHS) or (path.startswith("/v1/models/") and GOOGLE_METHOD.search(path)):
        return GOOGLE
    return ANTHROPIC if path.startswith(ANTHROPIC_PATHS) else OPENAI


def method_not_allowed(allowed: str, *, shape: str = OPENAI) -> HttpResponse:
    exc = GatewayError(405, f"Method not allowed; use {allowed}.", code="method_not_allowed")
    return error_response(exc, {"Allow": allowed}, shape=shape)


@dataclass(frozen=True)
class EventFormat:
    """How a stream's events are framed (see the module's docstring)."""

    named: bool
    keepalive: bytes
    done: bytes = b""


KEEPALIVE = b": keep-alive\n\n"
DATA_ONLY = EventFormat(named=False, keepalive=KEEPALIVE, done=b"data: [DONE]\n\n")
NAMED = EventFormat(named=True, keepalive=KEEPALIVE)
ANTHROPIC_SSE = EventFormat(named=True, keepalive=b'event: ping\ndata: {"type":"ping"}\n\n')
# No keep-alive: Google's SDKs read a comment line as a (broken) JSON answer, and Google sends none.
GEMINI_SSE = EventFormat(named=False, keepalive=b"")


async def sse(
    first: dict[str, Any] | None, events: AsyncIterator[dict[str, Any] | None], form: EventFormat
) -> AsyncIterator[bytes]:
    """The frames of `first` and then of `events`, as `form` writes them."""
    keepalive, named = form.keepalive, form.named

    def frame(event: dict[str, Any] | None) -> bytes:
        if event is None:
            return keepalive
        data = encode_json(event)
        if b"\n" in data:  # a Verbatim's text over several lines: one `data:` line each, as it came
            data = data.replace(b"\n", b"\ndata: ")
        if named:
            return b"event: " + str(event.get("type")).encode() + b"\ndata: " + data + b"\n\n"
        return b"data: " + data + b"\n\n"

    try:
        yield frame(first)
        async for event in events:
            yield frame(event)
        if form.done:
            yield form.done
    finally:
        # Django closes this generator when the client goes away; pass that on to the upstream.
        await events.aclose()  # type: ignore[attr-defined]


class EventStreamResponse(StreamingHttpResponse):
    """A stream of server-sent events whose frames (bytes) the API handler sends as they come.

    gateway.asgi.ApiHandler sends `frames` itself, without the per-frame wrapping Django's
    StreamingHttpResponse does for any iterator (str or bytes, sync or async).
    """

    def __init__(self, frames: AsyncIterator[bytes]) -> None:
        super().__init__(frames, content_type="text/event-stream")
        self.frames = frames
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"


async def event_stream(events: AsyncIterator[dict[str, Any] | None], form: EventFormat) -> EventStreamResponse:
    """A text/event-stream answer; its status is decided by the first event (errors until then raise)."""
    first = await anext(events)
    return EventStreamResponse(sse(first, events, form))
