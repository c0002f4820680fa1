"""The OpenAI-compatible /v1 endpoints: plain async views over gateway.services.

All of them are plain async Django views, the JSON ones included: DRF's views are synchronous
and would cost a thread hop per request on the hot path. `gateway.endpoint` gives each its
method, auth and error shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from catalogue.cards import model_card
from catalogue.models import LanguageModel
from catalogue.preparing import preparing
from gateway import auth, messages, responses, services
from gateway.completions import create_text_completion, stream_text_completion
from gateway.embeddings import create_embeddings
from gateway.endpoint import (
    ANTHROPIC,
    ApiCall,
    encode_json,
    endpoint,
    error_response,
    json_response,
    method_not_allowed,
    shape_for,
)
from gateway.errors import GatewayError
from gateway.protocol import ChatCompletionRequest
from gateway.protocol_anthropic import MessagesRequest
from gateway.protocol_completions import CreateCompletionRequest
from gateway.protocol_responses import CreateResponse
from gateway.strict import streams

KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"


def _frame(chunk: dict[str, Any]) -> bytes:
    return b"data: " + encode_json(chunk) + b"\n\n"


async def _sse(first: dict[str, Any] | None, events: AsyncIterator[dict[str, Any] | None]) -> AsyncIterator[bytes]:
    try:
        yield KEEPALIVE if first is None else _frame(first)
        async for event in events:
            yield KEEPALIVE if event is None else _frame(event)
        yield DONE
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


async def event_stream(events: AsyncIterator[dict[str, Any] | None]) -> StreamingHttpResponse:
    """A text/event-stream answer; its status is decided by the first event (errors until then raise)."""
    first = await anext(events)
    response = EventStreamResponse(_sse(first, events))
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@endpoint("POST", body=True)
async def chat_completions(call: ApiCall) -> HttpResponseBase:
    if streams(ChatCompletionRequest, call.body):
        keepalive = settings.GATEWAY_KEEPALIVE_SECONDS
        return await event_stream(
            services.stream_events(call.caller, call.body, keepalive=keepalive, response_headers=call.headers)
        )
    answer = await services.create_completion(call.caller, call.body, response_headers=call.headers)
    return json_response(answer)


@endpoint("POST", body=True)
async def completions(call: ApiCall) -> HttpResponseBase:
    if streams(CreateCompletionRequest, call.body):
        keepalive = settings.GATEWAY_KEEPALIVE_SECONDS
        return await event_stream(
            stream_text_completion(call.caller, call.body, keepalive=keepalive, response_headers=call.headers)
        )
    return json_response(await create_text_completion(call.caller, call.body, response_headers=call.headers))


@endpoint("POST", body=True)
async def embeddings(call: ApiCall) -> HttpResponseBase:
    return json_response(await create_embeddings(call.caller, call.body, response_headers=call.headers))


async def _typed_sse(
    first: dict[str, Any] | None, events: AsyncIterator[dict[str, Any] | None]
) -> AsyncIterator[bytes]:
    """Events named by their `type` (`event:` lines, as OpenAI's Responses streams), no [DONE]."""
    try:
        event, more = first, True
        while more:
            if event is None:
                yield KEEPALIVE
            else:
                yield b"event: " + str(event.get("type")).encode() + b"\ndata: " + encode_json(event) + b"\n\n"
            event = await anext(events, _END)
            more = event is not _END
    finally:
        await events.aclose()  # type: ignore[attr-defined]


_END: Any = object()


@endpoint("POST", body=True)
async def create_response(call: ApiCall) -> HttpResponseBase:
    if streams(CreateResponse, call.body):
        keepalive = settings.GATEWAY_KEEPALIVE_SECONDS
        events = responses.stream_response(call.caller, call.body, keepalive=keepalive, response_headers=call.headers)
        first = await anext(events)  # errors until the first event are answered with their status
        response = EventStreamResponse(_typed_sse(first, events))
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    return json_response(await responses.create_response(call.caller, call.body, response_headers=call.headers))


@endpoint("GET")
async def _get_response(call: ApiCall, response_id: str) -> HttpResponseBase:
    found = await responses.retrieve(call.caller, response_id)
    call.headers.update(await services.rate_limit_headers(call.caller))
    return json_response(found)


@endpoint("DELETE")
async def _delete_response(call: ApiCall, response_id: str) -> HttpResponseBase:
    deleted = await responses.delete(call.caller, response_id)
    call.headers.update(await services.rate_limit_headers(call.caller))
    return json_response(deleted)


@csrf_exempt
async def stored_response(request: HttpRequest, response_id: str) -> HttpResponseBase:
    """GET or DELETE /v1/responses/{id}."""
    if request.method == "DELETE":
        return await _delete_response(request, response_id=response_id)
    if request.method == "GET":
        return await _get_response(request, response_id=response_id)
    return method_not_allowed("GET, DELETE")


@endpoint("GET")
async def response_input_items(call: ApiCall, response_id: str) -> HttpResponseBase:
    listed = await responses.list_input_items(call.caller, response_id, call.request.GET)
    call.headers.update(await services.rate_limit_headers(call.caller))
    return json_response(listed)


async def _anthropic_sse(first: dict[str, Any], events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        event: dict[str, Any] | None = first
        while event is not None:
            yield b"event: " + event["type"].encode() + b"\ndata: " + encode_json(event) + b"\n\n"
            event = await anext(events, None)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


@endpoint("POST", body=True, shape=ANTHROPIC)
async def create_message(call: ApiCall) -> HttpResponseBase:
    # anthropic-version and anthropic-beta are accepted as sent: the answer's shape is the same for all.
    beta = call.request.headers.get("anthropic-beta")
    if streams(MessagesRequest, call.body):
        keepalive = settings.GATEWAY_KEEPALIVE_SECONDS
        events = messages.stream_message(
            call.caller, call.body, keepalive=keepalive, beta=beta, response_headers=call.headers
        )
        first = await anext(events)  # errors until the first event are answered with their status
        response = EventStreamResponse(_anthropic_sse(first, events))
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    return json_response(
        await messages.create_message(call.caller, call.body, beta=beta, response_headers=call.headers)
    )


@endpoint("POST", body=True, shape=ANTHROPIC)
async def count_tokens(call: ApiCall) -> HttpResponseBase:
    counted = await messages.count_tokens(call.caller, call.body)
    call.headers.update(await services.rate_limit_headers(call.caller))
    return json_response(counted)


@endpoint("GET")
async def models(call: ApiCall) -> HttpResponseBase:
    listed = await auth.list_models(call.caller)
    kind = call.request.GET.get("kind")
    if kind is not None:
        if kind not in LanguageModel.Kind.values:
            raise GatewayError(
                400, f"Unknown kind {kind[:40]!r}: one of {', '.join(LanguageModel.Kind.values)}.", param="kind"
            )
        listed = [m for m in listed if m.kind == kind]
    call.headers.update(await services.rate_limit_headers(call.caller))
    cards = [model_card(m) for m in listed]
    # Ours: models this server is still preparing (the bundled local model during `make run`'s first minutes).
    coming = [{"id": i, "status": s} for i, s in preparing().items() if all(c["id"] != i for c in cards)]
    return json_response({"object": "list", "data": cards, **({"preparing": coming} if coming else {})})


@endpoint("GET")
async def model(call: ApiCall, model: str) -> HttpResponseBase:
    found = await auth.get_model(model, call.caller)
    call.headers.update(await services.rate_limit_headers(call.caller))
    return json_response(model_card(found))


@csrf_exempt
async def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    exc = GatewayError(404, f"Unknown request URL: {request.method} {request.path}.", code="unknown_url")
    return error_response(exc, shape=shape_for(request.path))
