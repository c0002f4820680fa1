"""A lean Django handler for /v1, the API's hot path.

Django's own middleware (sessions, CSRF, auth, messages, ...) is "async-capable" only through
MiddlewareMixin, which runs each process_request/process_response in a thread hop: about
sixteen hops per request.
None of it applies to a bearer-authenticated JSON API, so /v1 requests go to a Django handler
with a single native-async middleware instead: host validation (ALLOWED_HOSTS), the request id and
the security headers SecurityMiddleware would add. Views, URLs, signals and settings are Django's
as usual. The README's Performance section gives what each shortcut here saves, as bench/ measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.http import Http404, HttpRequest, HttpResponseBase
from django.urls import set_script_prefix

from core.request_id import current_request_id, new_request_id
from gateway.errors import GatewayError
from gateway.wire import EventStreamResponse, error_response, shape_for
from operations import observe

PREFIX = "/v1"  # and Gemini's /v1beta
GEMINI_PREFIX = "/v1beta/"
log = logging.getLogger(__name__)

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]
GetResponse = Callable[[HttpRequest], Any]


def api_middleware(get_response: GetResponse) -> GetResponse:
    async def middleware(request: HttpRequest) -> HttpResponseBase:
        shape = shape_for(request.path)
        try:
            request.get_host()  # validates against ALLOWED_HOSTS
        except DisallowedHost:
            return error_response(GatewayError(400, "Invalid Host header.", code="invalid_host"), shape=shape)
        try:
            response = await get_response(request)
        except Http404:
            response = error_response(_unknown_url(request.path), shape=shape)
        except Exception:
            # Even a bug answers in the API's error shape; the details go to the log only.
            log.exception("unhandled error in %s %s", request.method, request.path)
            response = error_response(
                GatewayError(500, "The server had an error processing your request.", type="server_error"), shape=shape
            )
        response.headers["x-request-id"] = current_request_id.get()
        if settings.SECURE_CONTENT_TYPE_NOSNIFF:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if settings.SECURE_HSTS_SECONDS and request.is_secure():
            response.headers.setdefault("Strict-Transport-Security", f"max-age={settings.SECURE_HSTS_SECONDS}")
        return response

    return middleware


def _unknown_url(path: str) -> GatewayError:
    message = f"Unknown request URL: {path}."
    if not path.startswith((PREFIX + "/", GEMINI_PREFIX)):
        # An SDK given a base URL without its trailing slash joins `/v1` and `chat/completions`.
        message += f" Does the base URL lack its trailing slash? The API's paths start with {PREFIX}/."
    return GatewayError(404, message, code="unknown_url")


class ApiHandler(ASGIHandler):
    """ASGIHandler with `api_middleware` as its only middleware."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        # The view's exceptions reach api_middleware, which answers them in OpenAI's shape;
        # Django's conversion stays outermost as the last resort.
        self._middleware_chain = convert_exception_to_response(api_middleware(self._get_response_async))  # type: ignore[attr-defined]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        # Without Django's per-request ThreadSensitiveContext: it starts a thread for every
        # request for the signal receivers' sync hops, which `handle` below does not make.
        if scope["type"] != "http":
            raise ValueError(f"The API handler serves HTTP only, not {scope['type']}")
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Any, send: Any) -> None:
        """Django's ASGIHandler.handle without its two thread hops per request.

        Django sends request_started (its receivers run in a thread hop) and closes the response in
        another hop. Their receivers (close_old_connections, reset_queries) tend the database
        connections of the thread serving the request; /v1 code never opens one on the loop's
        thread (its database work runs on core.db's threads), so request_started is not sent and
        the response is closed inline (its request_finished then finds no connection to tend).
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None
            body_file.close()
            await self.send_response(error_response, send)
            error_response.close()
            return

        async def process_request() -> HttpResponseBase:
            response = await self.get_response_async(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client went away mid-answer
                await self.send_response(response, send)
            return response

        # As Django does: a client that goes away cancels the view (and so the upstream request).
        listener = asyncio.create_task(self.listen_for_disconnect(receive))
        processor = asyncio.create_task(process_request())
        await asyncio.wait([listener, processor], return_when=asyncio.FIRST_COMPLETED)
        for task in (listener, processor):
            if task.done():
                with contextlib.suppress(RequestAborted):
                    task.result()
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not processor.cancelled():
            processor.result().close()
        body_file.close()

    async def send_response(self, response: HttpResponseBase, send: Any) -> None:
        """Django's, but for event streams: their frames go out as they are, one message each."""
        if not isinstance(response, EventStreamResponse) or response.cookies:
            await super().send_response(response, send)
            return
        headers = [(name.encode("ascii"), value.encode("latin1")) for name, value in response.items()]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        async with contextlib.aclosing(response.frames) as frames:  # type: ignore[type-var]
            async for frame in frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body"})


def with_api_handler(django_app: ASGIApp) -> ASGIApp:
    """An ASGI app sending /v1 requests to the lean handler, everything else to `django_app`."""
    api = observe.observed(ApiHandler())

    async def app(scope: Scope, receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[Any]]) -> None:
        path = scope.get("path", "")
        # Every path under /v1, also without its slash ("/v1chat/completions"), answers as the API does.
        if scope["type"] == "http" and path.startswith(PREFIX):
            new_request_id()
            _key_out_of_query(scope)
            limit = body_limit(path)
            if _declared_length(scope) > limit:
                # Refused before Django reads (and spools to disk) a body we would refuse anyway.
                await _too_large(send, limit)
                return
            await api(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return app


# Room for a multipart form's boundaries and fields around an upload of the largest size allowed.
FORM_OVERHEAD_BYTES = 64 * 1024
UPLOAD_PATH = PREFIX + "/files"


def body_limit(path: str) -> int:
    """The largest body a path takes: an upload's (KNOWLEDGE_MAX_FILE_BYTES) for /v1/files, else MAX_REQUEST_BYTES."""
    if path == UPLOAD_PATH:
        return max(settings.KNOWLEDGE_MAX_FILE_BYTES + FORM_OVERHEAD_BYTES, settings.MAX_REQUEST_BYTES)
    return int(settings.MAX_REQUEST_BYTES)


def _key_out_of_query(scope: Scope) -> None:
    """Gemini's `?key=` moved into the x-goog-api-key header, in place, before anything reads the scope.

    The server's access log writes the query string from this same scope once the answer starts: the
    key must not be in it.
    """
    query = scope.get("query_string", b"")
    if b"key=" not in query:
        return
    pairs = parse_qsl(query.decode("latin1"), keep_blank_values=True)
    keys = [value for name, value in pairs if name == "key"]
    if not keys:
        return
    scope["query_string"] = urlencode([(name, value) for name, value in pairs if name != "key"]).encode("latin1")
    scope["headers"] = [*scope.get("headers", ()), *((b"x-goog-api-key", key.encode("latin1")) for key in keys)]


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _too_large(send: Callable[..., Awaitable[Any]], limit: int) -> None:
    error = GatewayError(413, f"The request body is larger than the limit of {limit} bytes.", code="too_large")
    body = json.dumps(error.to_dict()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"x-request-id", current_request_id.get().encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
