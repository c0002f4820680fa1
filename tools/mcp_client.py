"""MCP servers as clients of the official `mcp` SDK: list their tools (cached briefly), call one, one result shape.

Only network transports: streamable HTTP and the older SSE. Never stdio: no request of ours starts a process.
Every connection goes through the SSRF guard (tools.http), internal addresses only for servers an admin
marked so. A failing, slow or unreachable server becomes a ToolError with a readable message (never the
server's headers); cancelling the caller cancels the call in flight, and closing the session tells the
server (streamable HTTP ends the session with a DELETE, SSE closes its stream).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings

from core.clock import clock
from core.netguard import Guard, Refused
from tools import http
from tools.results import Image, ToolError, ToolResult

# The SDK (with its web framework) weighs about 30 MiB: imported on the first call to a server, so a
# worker that never calls one does not carry it.
if TYPE_CHECKING:
    from mcp import Client
    from mcp import types as mcp_types

STREAMABLE_HTTP = "streamable_http"
SSE = "sse"
# The SDK's own timeouts (HTTP reads, its requests) only as a backstop far beyond any cap: our time cap
# (core.clock) is the one that ends a call, so a slow server always gets the same message, and a test
# decides when it fires.
SDK_BACKSTOP_SECONDS = 3600.0


@dataclass(frozen=True)
class Endpoint:
    """What connecting to one MCP server needs. `headers` carry its credentials: never log or show them."""

    url: str
    transport: str = STREAMABLE_HTTP
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    allow_internal: bool = False
    label: str = ""

    @property
    def cache_key(self) -> str:
        """Changes with the URL, the transport or any credential, so a cached listing never outlives them."""
        material = json.dumps([self.url, self.transport, sorted(self.headers.items()), self.allow_internal])
        return hashlib.sha256(material.encode()).hexdigest()

    @property
    def name(self) -> str:
        return self.label or urlsplit(self.url).hostname or "without a host"


def _refusal(exc: BaseException) -> Refused | None:
    """The guard's refusal somewhere in what the SDK raised (it wraps errors in groups and in its own)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, Refused):
            return current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def _failure(endpoint: Endpoint, exc: BaseException) -> ToolError:
    refused = _refusal(exc)
    if refused is not None:
        return ToolError(f"the MCP server {endpoint.name} is refused: {refused}")
    return ToolError(f"the MCP server {endpoint.name} failed ({exc.__class__.__name__})")


@asynccontextmanager
async def _time_cap(seconds: float) -> AsyncIterator[None]:
    """The body within `seconds` of core.clock, else TimeoutError: also when the SDK turned the cap's
    cancellation into something else on its way out (its SSE transport's task group raises an
    ExceptionGroup of its tasks' errors). A cancellation from outside still propagates as one."""
    cap: asyncio.Timeout | None = None
    try:
        async with clock().timeout(seconds) as cap:
            yield
    except (Exception, asyncio.CancelledError) as exc:
        task = asyncio.current_task()
        if cap is None or not cap.expired() or (task is not None and task.cancelling()):
            raise
        raise TimeoutError from exc


@asynccontextmanager
async def _connected(endpoint: Endpoint) -> AsyncIterator[Client]:
    from mcp import Client
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    if endpoint.transport not in (STREAMABLE_HTTP, SSE):
        raise ToolError(f"the MCP server {endpoint.name} names an unknown transport")
    guard = Guard(allow_internal=endpoint.allow_internal)
    http.check_url(endpoint.url)
    if endpoint.transport == SSE:

        def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> Any:
            return http.client(guard, headers=headers, timeout=timeout, auth=auth)

        transport = sse_client(
            endpoint.url,
            headers=endpoint.headers,
            timeout=SDK_BACKSTOP_SECONDS,
            sse_read_timeout=SDK_BACKSTOP_SECONDS,
            httpx_client_factory=factory,
        )
        async with Client(transport, read_timeout_seconds=SDK_BACKSTOP_SECONDS) as client:
            yield client
        return
    async with (
        http.client(guard, headers=endpoint.headers, timeout=http.Timeout(SDK_BACKSTOP_SECONDS)) as http_client,
        Client(
            streamable_http_client(endpoint.url, http_client=http_client), read_timeout_seconds=SDK_BACKSTOP_SECONDS
        ) as client,
    ):
        yield client


@dataclass
class _Listing:
    expires: float
    tools: list[mcp_types.Tool]
    failure: str = ""  # a listing that failed, remembered as long: a dead server must not hold every request


_listings: dict[str, _Listing] = {}


async def list_tools(endpoint: Endpoint, *, time_cap: float | None = None, fresh: bool = False) -> list[mcp_types.Tool]:
    """The server's tools, from a listing younger than TOOLS_MCP_LIST_TTL seconds (core.clock) when there is one
    and `fresh` is not asked. A failed listing is remembered as long (ToolError again, at once)."""
    now = clock().monotonic()
    cached = None if fresh else _listings.get(endpoint.cache_key)
    if cached is not None and cached.expires > now:
        if cached.failure:
            raise ToolError(cached.failure)
        return cached.tools
    timeout = time_cap or settings.TOOLS_MCP_TIMEOUT
    tools: list[mcp_types.Tool] = []
    try:
        async with _time_cap(timeout), _connected(endpoint) as client:
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor or len(tools) > 1000:
                    break
    except TimeoutError:
        failure = ToolError(f"the MCP server {endpoint.name} did not list its tools within {timeout:g} seconds")
        _listings[endpoint.cache_key] = _Listing(now + settings.TOOLS_MCP_LIST_TTL, [], str(failure))
        raise failure from None
    except Exception as exc:
        failure = _failure(endpoint, exc)
        _listings[endpoint.cache_key] = _Listing(now + settings.TOOLS_MCP_LIST_TTL, [], str(failure))
        raise failure from None
    _listings[endpoint.cache_key] = _Listing(now + settings.TOOLS_MCP_LIST_TTL, tools)
    return tools


def forget_listings() -> None:
    _listings.clear()


def _parts(content: list[mcp_types.ContentBlock]) -> Iterator[str | Image]:
    from mcp import types as mcp_types

    for block in content:
        if isinstance(block, mcp_types.TextContent):
            yield block.text
        elif isinstance(block, mcp_types.ImageContent):
            yield Image(block.data, block.mime_type)
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            yield (
                resource.text if isinstance(resource, mcp_types.TextResourceContents) else f"[resource {resource.uri}]"
            )
        elif isinstance(block, mcp_types.ResourceLink):
            yield f"[resource {block.uri}]"
        elif isinstance(block, mcp_types.AudioContent):
            yield f"[audio ({block.mime_type}) not shown]"


def normalise(result: mcp_types.CallToolResult) -> ToolResult:
    """An MCP tool result as our one result shape: texts joined, images kept, structured data kept."""
    texts = [part for part in _parts(result.content) if isinstance(part, str)]
    images = [part for part in _parts(result.content) if isinstance(part, Image)]
    text = "\n".join(texts)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    return ToolResult(text=text, images=images, structured=result.structured_content, is_error=result.is_error)


async def call_tool(
    endpoint: Endpoint, name: str, arguments: dict[str, Any], *, time_cap: float | None = None
) -> ToolResult:
    """Call one tool. A tool that failed on the server comes back as an error result; a server that failed
    (refused, unreachable, slow, broken) raises ToolError. Cancellation propagates, ending the call."""
    timeout = time_cap or settings.TOOLS_MCP_TIMEOUT
    try:
        async with _time_cap(timeout), _connected(endpoint) as client:
            result = await client.call_tool(name, arguments)
    except TimeoutError:
        raise ToolError(f"the tool {name} of {endpoint.name} did not answer within {timeout:g} seconds") from None
    except Exception as exc:
        raise _failure(endpoint, exc) from None
    return normalise(result)
