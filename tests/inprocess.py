"""The ASGI application called in process, through httpx.ASGITransport: no server, no socket.

`InProcessApp` runs `chatsite.asgi.application` on an event loop of its own thread (for the whole
session, like a server's loop), so the synchronous clients tests use (httpx.Client, the openai
SDK) reach it too:

    app = InProcessApp()
    app.client().get("/v1/models")                       # httpx.Client
    openai.OpenAI(base_url=app.url + "/v1", http_client=app.client(), ...)
    openai.AsyncOpenAI(base_url=app.url + "/v1", http_client=app.async_client(), ...)

Answers arrive whole (ASGITransport buffers them): tests of the wire itself (a client that goes
away mid-stream, framing as it arrives) use a live server process instead (tests/live_server.py).
Async tests may also use `httpx.ASGITransport(app=application)` directly, in their own loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import httpx2

T = TypeVar("T")

URL = "http://127.0.0.1"


class _SyncASGITransport(httpx.BaseTransport):
    """httpx's ASGITransport, driven from synchronous code on the app's own loop."""

    def __init__(self, app: InProcessApp) -> None:
        self._app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        async_request = httpx.Request(request.method, request.url, headers=request.headers, content=body)

        async def call() -> httpx.Response:
            response = await self._app.transport.handle_async_request(async_request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)

        return self._app.run(call())


class _AsyncASGITransport(httpx.AsyncBaseTransport):
    """The same from async code on any loop: the app still runs on its own loop, as behind a server."""

    def __init__(self, app: InProcessApp) -> None:
        self._app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)

        async def call() -> tuple[int, httpx.Headers, bytes]:
            response = await self._app.transport.handle_async_request(forwarded)
            return response.status_code, response.headers, await response.aread()

        future = asyncio.run_coroutine_threadsafe(call(), self._app.loop)
        status, headers, content = await asyncio.wrap_future(future)
        return httpx.Response(status, headers=headers, content=content, request=request)


class _SyncSdkBridge(httpx2.BaseTransport):
    """httpx2 (the anthropic SDK's fork of httpx, which refuses httpx's clients) on an httpx transport."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        forwarded = httpx.Request(request.method, str(request.url), headers=request.headers.raw, content=request.read())
        response = self._inner.handle_request(forwarded)
        content = response.read()
        return httpx2.Response(response.status_code, headers=response.headers.raw, content=content, request=request)


class _AsyncSdkBridge(httpx2.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        forwarded = httpx.Request(request.method, str(request.url), headers=request.headers.raw, content=body)
        response = await self._inner.handle_async_request(forwarded)
        content = await response.aread()
        return httpx2.Response(response.status_code, headers=response.headers.raw, content=content, request=request)


class InProcessApp:
    def __init__(self) -> None:
        from chatsite.asgi import application

        self.url = URL
        self.transport = httpx.ASGITransport(app=application)  # type: ignore[arg-type]
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="asgi-app", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the app's loop (e.g. `flush_usage()`, which belongs to that loop)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(transport=_SyncASGITransport(self), base_url=self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=_AsyncASGITransport(self), base_url=self.url, **kwargs)

    def sdk_client(self, **kwargs: Any) -> httpx2.Client:
        """An httpx2.Client on the app, for SDKs built on httpx2 (anthropic's)."""
        return httpx2.Client(transport=_SyncSdkBridge(_SyncASGITransport(self)), base_url=self.url, **kwargs)

    def async_sdk_client(self, **kwargs: Any) -> httpx2.AsyncClient:
        """An httpx2.AsyncClient on the app, for SDKs built on httpx2 (anthropic's)."""
        return httpx2.AsyncClient(transport=_AsyncSdkBridge(_AsyncASGITransport(self)), base_url=self.url, **kwargs)

    def flush(self) -> None:
        """Wait until the app's usage rows are written (its ledger writes after each answer)."""
        from usage.ledger import flush_usage

        self.run(flush_usage())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
