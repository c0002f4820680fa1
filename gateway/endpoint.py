"""One decorator for the /v1 endpoints: method, body, key auth, error shape, rate-limit headers.

    @endpoint("POST", body=True)
    async def chat_completions(call: ApiCall) -> HttpResponseBase: ...

    @endpoint("POST", body=True, shape=ANTHROPIC)
    async def messages(call: ApiCall) -> HttpResponseBase: ...

The handler gets the authenticated caller, the parsed body and the path's ids (each one text the
database can hold: a NUL or a lone surrogate is a 400 naming it before any query); a GatewayError it raises becomes an
answer in the endpoint's error shape (with the caller's x-ratelimit-* headers, but on a 429, which
carries its own), and headers it puts in `call.headers` are added to its answer. OpenAI's endpoints
take the key as a bearer token; Anthropic's take it as `x-api-key` too, and answer errors in
Anthropic's shape ({"type": "error", "error": {"type", "message"}}, gateway.translate_anthropic).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from core.inputs import BadInput, parse_json, unstorable, unstorable_in
from gateway import auth, services
from gateway.errors import GatewayError
from gateway.translate_anthropic.errors import anthropic_error


@dataclass
class ApiCall:
    request: HttpRequest
    caller: auth.Caller
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)  # added to the handler's answer


Handler = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def encode_json(payload: Any) -> bytes:
    """Compact UTF-8 JSON, as json.dumps(separators=(",", ":"), ensure_ascii=False) writes it.

    orjson: 0.2 us instead of 7 us for a stream chunk, which is encoded once per chunk sent
    (CPU per streamed request of 20 chunks 2.1 -> 1.9 ms with bench/side_by_side.py). What it
    refuses (integers beyond 64 bits an upstream may send) goes through json.
    """
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(encode_json(payload), status=status, content_type="application/json", headers=headers)


OPENAI = "openai"
ANTHROPIC = "anthropic"
ANTHROPIC_PATHS = "/v1/messages"  # what answers in Anthropic's shape, before any view decided it


def error_response(exc: GatewayError, headers: dict[str, str] | None = None, *, shape: str = OPENAI) -> HttpResponse:
    status, payload = anthropic_error(exc) if shape == ANTHROPIC else (exc.status, exc.to_dict())
    return json_response(payload, status, {**(headers or {}), **exc.headers})


def shape_for(path: str) -> str:
    """The error shape of a path's answers, for errors raised before a view (or outside one)."""
    return ANTHROPIC if path.startswith(ANTHROPIC_PATHS) else OPENAI


def method_not_allowed(allowed: str, *, shape: str = OPENAI) -> HttpResponse:
    exc = GatewayError(405, f"Method not allowed; use {allowed}.", code="method_not_allowed")
    return error_response(exc, {"Allow": allowed}, shape=shape)


# Deep enough for tools' JSON schemas, shallow enough that walking a body stays cheap.
MAX_JSON_DEPTH = 64
# Only JSON escapes can carry a NUL or a lone surrogate into parsed strings (raw ones are invalid JSON
# or invalid UTF-8), so bodies without such an escape skip the walk over every string.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def read_json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object; GatewayError 413 above MAX_REQUEST_BYTES, 400 when it is no JSON object,
    is nested deeper than MAX_JSON_DEPTH, or holds text no one can store or send on (NUL, lone surrogates)."""
    limit = settings.MAX_REQUEST_BYTES
    try:
        raw = request.body
    except RequestDataTooBig:
        raw = None
    if raw is None or len(raw) > limit:
        raise GatewayError(413, f"The request body is larger than the limit of {limit} bytes.", code="too_large")
    try:
        body = parse_json(raw, max_bytes=limit, max_depth=MAX_JSON_DEPTH)
    except BadInput as exc:
        reason = str(exc).rstrip(".")
        raise GatewayError(
            400,
            f"We could not parse the JSON body of your request ({reason[:1].lower()}{reason[1:]}). The body must "
            "be a JSON object (Content-Type: application/json).",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.", code="invalid_json")
    if _SUSPECT_ESCAPE.search(raw):
        found = unstorable_in(body)
        if found is not None:
            where, reason = found
            # The offending text may be a key: name it with its surrogates escaped, or the answer can't be sent.
            where = where.encode("utf-8", "backslashreplace").decode()
            raise GatewayError(400, f"Invalid value for '{where}': {reason}.", param=where, code="invalid_value")
    return body


def check_path_ids(ids: dict[str, Any]) -> None:
    """GatewayError 400 naming the first path id no row can have (PostgreSQL refuses NUL in a query)."""
    for name, value in ids.items():
        reason = unstorable(value) if isinstance(value, str) else None
        if reason is not None:
            raise GatewayError(400, f"Invalid {name}: {reason}.", param=name, code="invalid_value")


def _secret(request: HttpRequest, shape: str) -> str:
    authorization = request.headers.get("Authorization")
    if shape == ANTHROPIC:
        return auth.anthropic_secret(request.headers.get("x-api-key"), authorization)
    return auth.bearer_secret(authorization)


def endpoint(method: str, *, body: bool = False, shape: str = OPENAI) -> Callable[[Handler], Handler]:
    """A /v1 view answering `method` for key-authenticated callers (see the module's docstring)."""

    def decorate(handler: Handler) -> Handler:
        @csrf_exempt
        @functools.wraps(handler)
        async def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method != method:
                return method_not_allowed(method, shape=shape)
            payload: dict[str, Any] = {}
            problem: GatewayError | None = None
            if body:
                try:
                    payload = read_json_body(request)
                except GatewayError as exc:
                    problem = exc
            hint = payload.get("model")
            try:
                caller = await auth.authenticate_key(
                    _secret(request, shape), model_hint=hint if isinstance(hint, str) else None
                )
            except GatewayError as exc:
                return error_response(exc, shape=shape)  # an unknown caller learns nothing about its body
            call = ApiCall(request, caller, payload)
            try:
                if problem is not None:
                    raise problem
                check_path_ids(kwargs)
                response = await handler(call, *args, **kwargs)
            except GatewayError as exc:
                headers = {} if exc.status == 429 else await services.rate_limit_headers(caller)
                return error_response(exc, headers, shape=shape)
            for name, value in call.headers.items():
                response.headers.setdefault(name, value)
            return response

        return view

    return decorate
