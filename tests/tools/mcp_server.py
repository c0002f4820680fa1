"""A real MCP server built with the `mcp` SDK, for the tools' tests: served on loopback over streamable HTTP
(at /mcp), over the older SSE transport (at /legacy/sse), and at /secure/mcp behind a bearer token.

Tools: `add` answers, `fail` raises, `meet` answers once two calls of it are in at once, `hang` never
answers (it sets `hang_started`, and `hang_cancelled` when the server sees the call cancelled), `pixel`
returns an image, `weather` returns structured data.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import Image, MCPServer
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount

TOKEN = "mcp-test-token"
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

hang_started = threading.Event()
hang_cancelled = threading.Event()
calls: list[str] = []
# `meet` answers only once two calls of it are in the server at the same time.
meeting = threading.Barrier(2)
requests: list[str] = []  # every HTTP request's path, as the server received it


class Weather(BaseModel):
    city: str
    celsius: float


def build(name: str = "test-tools") -> MCPServer:
    server: MCPServer = MCPServer(name)

    @server.tool()
    def add(a: int, b: int) -> str:
        """Add two integers."""
        calls.append("add")
        return str(a + b)

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails."""
        raise RuntimeError(f"failed on purpose: {reason}")

    @server.tool()
    async def hang() -> str:
        """Never answers."""
        hang_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            hang_cancelled.set()
            raise
        return "never"

    @server.tool()
    async def meet() -> str:
        """Answers when a second call of it has arrived."""
        await asyncio.to_thread(meeting.wait, 60)
        return "met"

    @server.tool()
    def pixel() -> Image:
        """A one-pixel PNG."""
        return Image(data=PIXEL, format="png")

    @server.tool()
    def weather(city: str) -> Weather:
        """The weather in a city, as data."""
        return Weather(city=city, celsius=21.5)

    return server


class RequireBearer:
    """An ASGI wrapper answering 401 to any request without the token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if headers.get(b"authorization") != f"Bearer {self.token}".encode():
                await JSONResponse({"error": "invalid_token"}, status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def app() -> Recorder:
    """Streamable HTTP at /mcp, SSE at /sse (+ /messages/), the token-guarded server at /secure/mcp."""
    open_app = build().streamable_http_app()
    sse_app = build("test-tools-sse").sse_app()
    secure_app = build("test-tools-secure").streamable_http_app()

    async def lifespan(_: Starlette) -> Any:
        async with open_app.router.lifespan_context(open_app), secure_app.router.lifespan_context(secure_app):
            yield

    return Recorder(
        Starlette(
            routes=[
                Mount("/secure", app=RequireBearer(secure_app, TOKEN)),
                Mount("/legacy", app=sse_app),
                Mount("/", app=open_app),
            ],
            lifespan=asynccontextmanager(lifespan),
        )
    )


class Recorder:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            requests.append(scope["path"])
        await self.app(scope, receive, send)
