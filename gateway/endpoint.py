"""One decorator for the /v1 endpoints: method, body, key auth, error shape, rate-limit headers.

    @endpoint("POST", body=True, reserves=True)
    async def chat_completions(call: ApiCall) -> HttpResponseBase: ...

    @endpoint("POST", body=True, reserves=True, shape=ANTHROPIC)
    async def messages(call: ApiCall) -> HttpResponseBase: ...

The handler gets the authenticated caller, the parsed body and the path's ids (each one text the
database can hold: a NUL or a lone surrogate is a 400 naming it before any query); a GatewayError it raises becomes an
answer in the endpoint's error shape (with the caller's x-ratelimit-* headers, but on a 429, which
carries its own), and headers it puts in `call.headers` are added to its answer. The x-ratelimit-*
headers of an answer are set here: a handler that `reserves` gets them from its reservation (the
serving core writes them into `call.headers`), any other from the caller's limits as they stand. OpenAI's endpoints
take the key as a bearer token; Anthropic's take it as `x-api-key` too, and answer errors in
Anthropic's shape ({"type": "error", "error": {"type", "message"}}, gateway.translate_anthropic);
Gemini's (/v1beta) take it as `x-goog-api-key` or `?key=` too, and answer errors in Google's shape
({"error": {"code", "message", "status"}}, gateway.translate_gemini).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from core.inputs import BadInput, parse_json, unstorable, unstorable_in
from gateway import auth
from gateway.errors import GatewayError
from gateway.serving.base import Serving
from gateway.strict import streams
from gateway.wire import (
    ANTHROPIC,
    GOOGLE,
    OPENAI,
    EventFormat,
    error_response,
    event_stream,
    json_response,
    method_not_allowed,
    shape_for,
)
from usage import limits


@dataclass
class ApiCall:
    request: HttpRequest
    caller: auth.Caller
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)  # added to the handler's answer


Handler = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


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
    if shape == GOOGLE:
        return auth.google_secret(request.headers.get("x-goog-api-key"), authorization)
    return auth.bearer_secret(authorization)


def endpoint(
    method: str, *, body: bool = False, reserves: bool = False, shape: str = OPENAI
) -> Callable[[Handler], Handler]:
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
            # The model named by the body, or by the path (Gemini's): looked up with the key when storable.
            hint = payload.get("model", kwargs.get("model"))
            try:
                caller = await auth.authenticate_key(
                    _secret(request, shape), model_hint=hint if isinstance(hint, str) and not unstorable(hint) else None
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
                headers = {} if exc.status == 429 else await limits.peek_headers(caller)
                return error_response(exc, headers, shape=shape)
            if not reserves:
                call.headers.update(await limits.peek_headers(caller))
            for name, value in call.headers.items():
                response.headers.setdefault(name, value)
            return response

        return view

    return decorate


def serving_endpoint(serving: type[Serving[Any]], form: EventFormat | None, *, shape: str = OPENAI) -> Handler:
    """The POST view of an endpoint served by the serving core: a JSON answer, or a stream in `form`
    when the body asks for one (never, for an endpoint without a `form`)."""

    @endpoint("POST", body=True, reserves=True, shape=shape)
    async def view(call: ApiCall) -> HttpResponseBase:
        stream = form is not None and serving.PROTOCOL is not None and streams(serving.PROTOCOL, call.body)
        sent_on = {name: call.request.headers[name] for name in serving.SENT_ON if name in call.request.headers}
        served = serving(
            call.caller,
            call.body,
            stream=stream,
            headers=call.headers,
            sent_on=sent_on,
            cache_control=call.request.headers.get("Cache-Control", ""),
        )
        if form is not None and stream:
            return await event_stream(served.stream(settings.GATEWAY_KEEPALIVE_SECONDS), form)
        return json_response(await served.answer())

    return view


def by_method(**views: Handler) -> Handler:
    """One path's view answering each method with its own view (`GET=..., POST=...`); others get a 405."""
    allowed = ", ".join(views)

    @csrf_exempt
    async def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        chosen = views.get(request.method or "")
        if chosen is None:
            return method_not_allowed(allowed)
        return await chosen(request, *args, **kwargs)

    return view


@csrf_exempt
async def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Anything else under /v1: a 404 in the path's error shape, not an HTML page."""
    exc = GatewayError(404, f"Unknown request URL: {request.method} {request.path}.", code="unknown_url")
    return error_response(exc, shape=shape_for(request.path))
