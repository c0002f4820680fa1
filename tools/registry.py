"""The tools a user's request may offer a model, and running the calls the model makes: what the gateway and the
chat call.

    toolbox = await Toolbox.open(user, ToolChoice(web_search=True, fetch=True, mcp_servers=None))
    tools = [spec.as_function() for spec in toolbox.specs]          # offered to the model
    results = await toolbox.run_all([ToolCall(name, arguments, call_id), ...])

A run never raises for a tool's failure: refused, unreachable, slow, broken or unknown tools come back as
error results the model reads. Cancelling the caller cancels the calls in flight. Every run is recorded
(tools.models.ToolCall) and its result is capped at TOOLS_RESULT_MAX_CHARS before it reaches the model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from core.clock import clock
from core.db import db
from tools import fetch, file_search, limits, mcp_client, search, services, site
from tools.file_search import FileSearch
from tools.models import McpServer
from tools.models import ToolCall as ToolCallRecord
from tools.results import ToolCall, ToolError, ToolResult, ToolSpec, function_name

logger = logging.getLogger(__name__)

WEB_SEARCH = ToolSpec(
    name="web_search",
    description="Search the web. Returns numbered results (title, URL, snippet); cite them as [1], [2].",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to search for"}},
        "required": ["query"],
    },
    kind="web_search",
)
FETCH = ToolSpec(
    name="fetch",
    description="Read a web page (http or https URL) and return its main text.",
    parameters={
        "type": "object",
        "properties": {"url": {"type": "string", "description": "The page's URL"}},
        "required": ["url"],
    },
    kind="fetch",
)


@dataclass(frozen=True)
class ToolChoice:
    """What a request turned on: the built-in tools, and MCP servers by name (None: every one the user may use)."""

    web_search: bool = False
    fetch: bool = False
    mcp_servers: tuple[str, ...] | None = ()
    # The user's vector stores a `file_search` tool searches (None: no such tool).
    file_search: FileSearch | None = None


class Toolbox:
    """The tools offered to one user's request, and the runner of their calls."""

    def __init__(
        self,
        user: Any,
        specs: list[ToolSpec],
        servers: dict[int, McpServer],
        unavailable: dict[str, str],
        api_key_id: int | None = None,
    ):
        self.user = user
        self.specs = specs
        self.unavailable = unavailable  # server name -> why its tools are not offered
        self.api_key_id = api_key_id  # the key the calls are recorded against (None: the chat)
        self._servers = servers
        self.file_search: FileSearch | None = None
        self._cited = 0  # file_search passages numbered so far
        self._by_name = {spec.name: spec for spec in specs}

    def offers(self, name: str) -> bool:
        return name in self._by_name

    def spec(self, name: str) -> ToolSpec:
        return self._by_name[name]

    def keep(self, wanted: Callable[[ToolSpec], bool]) -> None:
        """Offer only the tools `wanted` says yes to (a client's allow-list of a server's tools)."""
        self.specs = [spec for spec in self.specs if wanted(spec)]
        self._by_name = {spec.name: spec for spec in self.specs}

    @classmethod
    async def open(
        cls, user: Any, choice: ToolChoice, api_key_id: int | None = None, extra_servers: Sequence[McpServer] = ()
    ) -> Toolbox:
        """The tools of `choice` the user may use. `extra_servers`: servers a request names by URL (unsaved,
        the user's own for this request: never on internal addresses, never with stored credentials)."""
        specs: list[ToolSpec] = []
        await site.refresh()  # the admin's search engine
        if choice.web_search and search.configured_engine() is not None:
            specs.append(WEB_SEARCH)
        if choice.fetch:
            specs.append(FETCH)
        if choice.file_search is not None:
            # VectorStore.DoesNotExist for a store that is not the user's: the caller answers it as a 404.
            await db(file_search.check_stores, user, choice.file_search.stores)
            specs.append(file_search.FILE_SEARCH)
        servers: dict[int, McpServer] = {}
        if choice.mcp_servers is None or choice.mcp_servers:
            query = services.servers_for(user)
            if choice.mcp_servers is not None:
                query = query.filter(name__in=choice.mcp_servers)
            servers = {server.pk: server async for server in query.order_by("name", "pk")}
        for position, server in enumerate(extra_servers, 1):
            servers[-position] = server  # no row: a negative id the record leaves out
        listings = await asyncio.gather(
            *(mcp_client.list_tools(server.endpoint()) for server in servers.values()), return_exceptions=True
        )
        unavailable: dict[str, str] = {}
        taken = {spec.name for spec in specs}
        for (server_id, server), listing in zip(servers.items(), listings, strict=True):
            if isinstance(listing, BaseException):
                if not isinstance(listing, ToolError):
                    raise listing
                unavailable[server.name] = str(listing)
                continue
            for tool in listing:
                name = function_name(server.name, tool.name, taken)
                description = tool.description or tool.title or tool.name
                specs.append(
                    ToolSpec(name, description, dict(tool.input_schema), "mcp", server_id, server.name, tool.name)
                )
        toolbox = cls(user, specs, servers, unavailable, api_key_id)
        toolbox.file_search = choice.file_search
        return toolbox

    async def run_all(self, calls: Iterable[ToolCall]) -> list[ToolResult]:
        """Independent calls at once; the results in the calls' order."""
        return list(await asyncio.gather(*(self.run(call) for call in calls)))

    async def run(self, call: ToolCall, *, time_cap: float | None = None) -> ToolResult:
        spec = self._by_name.get(call.name)
        if spec is None:
            return ToolResult.error(f"there is no tool named {call.name} in this request")
        started = clock().monotonic()
        refusal = await limits.refusal(self.user)
        if refusal is not None:
            await self._record(spec, ToolCallRecord.Status.REFUSED, started, 0)
            return ToolResult.error(refusal)
        try:
            result = await self._execute(spec, call.arguments, time_cap)
            status = ToolCallRecord.Status.TOOL_ERROR if result.is_error else ToolCallRecord.Status.OK
        except ToolError as exc:
            result, status = ToolResult.error(str(exc)), ToolCallRecord.Status.FAILED
        except asyncio.CancelledError:
            await self._record(spec, ToolCallRecord.Status.CANCELLED, started, 0)
            raise
        except Exception as exc:
            logger.error("tool %s failed unexpectedly: %s", spec.name, exc.__class__.__name__)
            result, status = ToolResult.error(f"the tool {spec.name} failed"), ToolCallRecord.Status.FAILED
        result = result.capped(settings.TOOLS_RESULT_MAX_CHARS)
        await self._record(spec, status, started, result.size)
        return result

    async def _execute(self, spec: ToolSpec, arguments: dict[str, Any], time_cap: float | None) -> ToolResult:
        if spec.kind == "web_search":
            engine = search.configured_engine()
            query = arguments.get("query")
            if engine is None:
                raise ToolError("web search is not set up on this server")
            if not isinstance(query, str) or not query.strip():
                raise ToolError("web_search needs a non-empty 'query' string")
            sources = await engine.search(query.strip(), settings.TOOLS_SEARCH_RESULTS)
            return ToolResult(text=search.format_results(sources), sources=sources)
        if spec.kind == "file_search":
            assert self.file_search is not None
            result = await file_search.run(self.user, self.file_search, arguments, self._cited + 1)
            self._cited += len(result.sources)
            return result
        if spec.kind == "fetch":
            url = arguments.get("url")
            if not isinstance(url, str) or not url.strip():
                raise ToolError("fetch needs a 'url' string")
            return await fetch.read_page(url.strip())
        assert spec.server_id is not None
        server = self._servers[spec.server_id]
        cap = min(time_cap, settings.TOOLS_MCP_TIMEOUT) if time_cap is not None else None
        return await mcp_client.call_tool(server.endpoint(), spec.remote_name, arguments, time_cap=cap)

    async def _record(self, spec: ToolSpec, status: str, started: float, size: int) -> None:
        await ToolCallRecord.objects.acreate(
            user=self.user,
            api_key_id=self.api_key_id,
            created_at=clock().now(),
            tool=spec.remote_name or spec.name,
            kind=spec.kind,
            server_id=spec.server_id if spec.server_id and spec.server_id > 0 else None,
            duration_ms=max(0, int((clock().monotonic() - started) * 1000)),
            status=status,
            result_size=size,
        )


async def available_tools(user: Any, choice: ToolChoice) -> list[ToolSpec]:
    """The tools `user` may be offered for `choice` (JSON schemas for the model)."""
    return (await Toolbox.open(user, choice)).specs
