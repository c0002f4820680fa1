"""The OpenAI-compatible /v1 endpoints: plain async views over gateway.auth and gateway.services.

All of them are plain async Django views, the JSON ones included: DRF's views are synchronous
and would cost a thread hop per request on the hot path. Every error answer is in OpenAI's shape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from gateway import auth, services
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return HttpResponse(body, status=status, content_type="application/json", headers=headers)


def error_response(exc: GatewayError, headers: dict[str, str] | None = None) -> HttpResponse:
    return _json(exc.to_dict(), exc.status, {**(headers or {}), **exc.headers})


async def _error_with_limits(exc: GatewayError, caller: auth.Caller) -> HttpResponse:
    headers = {} if exc.status == 429 else await services.rate_limit_headers(caller)
    return error_response(exc, headers)


def _read_body(request: HttpRequest) -> dict[str, Any]:
    limit = settings.MAX_REQUEST_BYTES
    try:
        raw = request.body
    except RequestDataTooBig:
        raw = None
    if raw is None or len(raw) > limit:
        raise GatewayError(413, f"The request body is larger than the limit of {limit} bytes.", code="too_large")
    try:
        body = json.loads(raw)
    except ValueError:
        raise GatewayError(
            400,
            "We could not parse the JSON body of your request. The body must be a JSON object "
            "(Content-Type: application/json).",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.", code="invalid_json")
    return body


def _frame(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


async def _sse(first: dict[str, Any] | None, events: AsyncIterator[dict[str, Any] | None]) -> AsyncIterator[bytes]:
    try:
        yield KEEPALIVE if first is None else _frame(first)
        async for event in events:
            yield KEEPALIVE if event is None else _frame(event)
        yield DONE
    finally:
        # Django closes this generator when the client goes away; pass that on to the upstream.
        await events.aclose()  # type: ignore[attr-defined]


def method_not_allowed(allowed: str) -> HttpResponse:
    exc = GatewayError(405, f"Method not allowed; use {allowed}.", code="method_not_allowed")
    return error_response(exc, {"Allow": allowed})


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    if request.method != "POST":
        return method_not_allowed("POST")
    body: dict[str, Any] = {}
    problem: GatewayError | None = None
    try:
        body = _read_body(request)
    except GatewayError as exc:
        problem = exc
    hint = body.get("model")
    try:
        caller = await auth.authenticate_bearer(
            request.headers.get("Authorization"), model_hint=hint if isinstance(hint, str) else None
        )
    except GatewayError as exc:
        return error_response(exc)  # an unknown caller learns nothing about its body
    headers: dict[str, str] = {}
    try:
        if problem is not None:
            raise problem
        if body.get("stream") is True:
            events = services.stream_events(
                caller, body, keepalive=settings.GATEWAY_KEEPALIVE_SECONDS, response_headers=headers
            )
            # The first chunk before the answer's status: errors until then are ordinary answers.
            first = await anext(events)
            response = StreamingHttpResponse(_sse(first, events), content_type="text/event-stream", headers=headers)
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response
        answer = await services.create_completion(caller, body, response_headers=headers)
        return _json(answer, headers=headers)
    except GatewayError as exc:
        return await _error_with_limits(exc, caller)
    except StopAsyncIteration:  # services raise before an empty stream ends; defensive only
        return StreamingHttpResponse(iter([DONE]), content_type="text/event-stream")


@csrf_exempt
async def models(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed("GET")
    try:
        caller = await auth.authenticate_bearer(request.headers.get("Authorization"))
    except GatewayError as exc:
        return error_response(exc)
    listed = await auth.list_models(caller)
    headers = await services.rate_limit_headers(caller)
    return _json({"object": "list", "data": [auth.model_card(m) for m in listed]}, headers=headers)


@csrf_exempt
async def model(request: HttpRequest, model_id: str) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed("GET")
    try:
        caller = await auth.authenticate_bearer(request.headers.get("Authorization"))
    except GatewayError as exc:
        return error_response(exc)
    try:
        found = await auth.get_model(model_id, caller)
    except GatewayError as exc:
        return await _error_with_limits(exc, caller)
    return _json(auth.model_card(found), headers=await services.rate_limit_headers(caller))


@csrf_exempt
async def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    exc = GatewayError(404, f"Unknown request URL: {request.method} {request.path}.", code="unknown_url")
    return error_response(exc)
