"""The Responses API's hosted tools run by us: `web_search` (and `web_search_preview`), `mcp`, `file_search`.

When a request offers hosted tools and its model has a route that cannot run them (an upstream speaking
chat completions), the turn is served by the tool loop (tools.loop): every model call a chat step of its
own through the serving core (gateway.chat_completions.tool_loop.StepServing: reserved, routed, ledgered),
our tools run between them, and the client gets one Response whose output lists what happened in order:
`mcp_list_tools` for each MCP server, `web_search_call` and `mcp_call` items as the model called them, the
messages, and the client's own function calls (which end the turn, as they do without hosted tools).
Streamed, each item comes with OpenAI's events. A model every route of which speaks the Responses API
gets the request as it is (its upstream runs the tools), unless it offers `file_search`: the vector stores
are ours, so we run it, for any model.

- `web_search`: the server's search engine (tools.search); without one set up the tool is not offered
  to the model (Codex CLI offers it on every request). `include: ["web_search_call.action.sources"]` adds
  the results' URLs to each call's action.
- `mcp` with a `server_url`: that server, the user's own for this request only (tools.services.request_server:
  never saved, never on an internal address; its `headers` and `authorization` are sent to it alone, never
  echoed, stored or logged). A URL the SSRF guard refuses, or a server that cannot list its tools, is a 400
  naming `tools[i].server_url`.
- `mcp` without a `server_url` (ours): `server_label` names an MCP server registered here that the key
  may use (an admin's, or the user's own), with its stored credentials.
- `file_search`: the caller's own vector stores (knowledge.search: hybrid, OpenAI's attribute `filters`,
  `max_num_results`, `ranking_options.score_threshold`); another user's store is a 404 naming
  `tools[i].vector_store_ids`. Each call is a `file_search_call` item (its `results` when `include` asks for
  `file_search_call.results`); the passages are numbered for the model, and each number the answer cites
  (`[2]`) becomes a `file_citation` annotation on its text (file id, filename, index: where it stands).
- `allowed_tools` (names, or `{"tool_names": [...]}`) narrows a server's tools. Approvals are not served:
  `require_approval` must be "never" (400 naming it otherwise).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from catalogue.models import LanguageModel
from core.db import db
from core.netguard import Guard, Refused
from gateway import routing
from gateway.chat_completions.protocol import invalid_param
from gateway.chat_completions.tool_loop import StepServing, model_call, step_body
from gateway.errors import GatewayError
from gateway.responses_api.approvals import Approved, listing, run_approved
from gateway.responses_api.protocol import (
    HOSTED_TOOL_TYPES,
    CreateResponse,
    FileSearchTool,
    McpTool,
    McpToolFilter,
    WebSearchTool,
)
from gateway.serving.base import check_kind
from gateway.serving.relay import with_keepalives
from gateway.serving.toolloop import open_toolbox
from gateway.translate_responses import ResponseStream
from gateway.translate_responses.hosted import (
    approval_requested,
    file_citations,
    file_search_finished,
    file_search_started,
    mcp_call_finished,
    mcp_call_started,
    mcp_tools_listed,
    web_search_finished,
    web_search_started,
)
from gateway.vector_stores.serving import not_found
from knowledge.filters import FilterError, to_q
from knowledge.models import VectorStore
from knowledge.search import owned_store
from tools import http, services
from tools.file_search import FILE_SEARCH_RESULTS, FileSearch
from tools.loop import Delta, LoopDone, LoopEvent, ToolFinished, ToolStarted, run_loop
from tools.models import McpServer
from tools.registry import Toolbox, ToolChoice
from tools.results import Source, ToolSpec

if TYPE_CHECKING:
    from gateway.responses_api.serving import ResponsesServing

SOURCES = "web_search_call.action.sources"
FILE_RESULTS = "file_search_call.results"
FINAL_EVENTS = frozenset(("response.completed", "response.incomplete"))


def asks_hosted_tools(body: dict[str, Any]) -> bool:
    """Whether a body offers hosted tools: a look at `tools`, all a request without them pays."""
    tools = body.get("tools")
    return isinstance(tools, list) and any(isinstance(t, dict) and t.get("type") in HOSTED_TOOL_TYPES for t in tools)


def runs_them_itself(model: LanguageModel) -> bool:
    """Every route of the model speaks the Responses API, whose upstream runs its hosted tools."""
    return all(d.provider.responses_api for d in routing.routes_of(model))


@dataclass
class Hosted:
    """The hosted tools a request offers, checked: what opening its toolbox needs."""

    web_search: bool = False
    registered: list[str] = field(default_factory=list)  # labels of servers registered here
    own: dict[str, McpTool] = field(default_factory=dict)  # the request's own servers (by URL), by label
    params: dict[str, str] = field(default_factory=dict)  # label -> the param naming that server
    allowed: dict[str, frozenset[str] | None] = field(default_factory=dict)  # label -> tool names kept
    labels: list[str] = field(default_factory=list)  # every MCP server, in the request's order
    approval: dict[str, Callable[[str], bool]] = field(default_factory=dict)  # label -> needs approval(tool)
    file_search: FileSearch | None = None
    file_search_param: str = ""  # the `tools[i]` offering it

    def keeps(self, spec: ToolSpec) -> bool:
        names = self.allowed.get(spec.server_name) if spec.kind == "mcp" else None
        return names is None or spec.remote_name in names

    def needs_approval(self, spec: ToolSpec) -> bool:
        return spec.kind == "mcp" and self.approval[spec.server_name](spec.remote_name)


def _approval(tool: McpTool, param: str) -> Callable[[str], bool]:
    """Whether a call of one of the server's tools waits for the client's approval (OpenAI's default: always)."""
    rule = tool.require_approval
    if rule == "never":
        return lambda name: False
    if rule is None or rule == "always":
        return lambda name: True
    for which in ("always", "never"):
        chosen = getattr(rule, which)
        if chosen is not None and chosen.read_only is not None:
            raise invalid_param(f"{param}.require_approval.{which}.read_only", "read_only is not supported")
    always = set(rule.always.tool_names or ()) if rule.always else set()
    never = set(rule.never.tool_names or ()) if rule.never else set()
    return lambda name: name in always or name not in never


def _allowed(tool: McpTool, param: str) -> frozenset[str] | None:
    allowed = tool.allowed_tools
    if isinstance(allowed, McpToolFilter):
        if allowed.read_only is not None:
            raise invalid_param(f"{param}.allowed_tools.read_only", "filtering MCP tools by read_only is not supported")
        return frozenset(allowed.tool_names) if allowed.tool_names is not None else None
    return frozenset(allowed) if allowed is not None else None


def _mcp(hosted: Hosted, tool: McpTool, param: str) -> None:
    label = tool.server_label
    if label in hosted.allowed:
        raise invalid_param(f"{param}.server_label", f"the server_label '{label}' is given twice")
    if tool.connector_id is not None:
        raise invalid_param(f"{param}.connector_id", "connectors are not supported: give a server_url")
    hosted.approval[label] = _approval(tool, param)
    hosted.allowed[label] = _allowed(tool, param)
    hosted.labels.append(label)
    if tool.server_url is None:
        for secret in ("headers", "authorization"):
            if getattr(tool, secret) is not None:
                raise invalid_param(f"{param}.{secret}", f"{secret} are only sent with a server_url")
        hosted.registered.append(label)
        hosted.params[label] = f"{param}.server_label"
        return
    hosted.own[label] = tool
    hosted.params[label] = f"{param}.server_url"


def _file_search(hosted: Hosted, tool: FileSearchTool, param: str) -> None:
    if hosted.file_search is not None:
        raise invalid_param(f"{param}.type", "file_search is given twice: name all its vector stores in one")
    ranking = tool.ranking_options
    if ranking is not None and ranking.hybrid_search is not None:
        raise invalid_param(f"{param}.ranking_options.hybrid_search", "weighting the hybrid search is not supported")
    if tool.filters is not None:
        try:
            to_q(tool.filters)
        except FilterError as exc:
            raise invalid_param(f"{param}.filters", str(exc)) from None
    hosted.file_search = FileSearch(
        stores=tuple(dict.fromkeys(tool.vector_store_ids)),
        max_results=tool.max_num_results or FILE_SEARCH_RESULTS,
        filters=tool.filters,
        score_threshold=(ranking.score_threshold if ranking else None) or 0.0,
    )
    hosted.file_search_param = param


def hosted_tools(request: CreateResponse) -> Hosted:
    """The request's hosted tools; a 400 naming the field for what is not served."""
    hosted = Hosted()
    for i, tool in enumerate(request.tools or ()):
        if isinstance(tool, WebSearchTool):
            hosted.web_search = True
        elif isinstance(tool, McpTool):
            _mcp(hosted, tool, f"tools[{i}]")
        elif isinstance(tool, FileSearchTool):
            _file_search(hosted, tool, f"tools[{i}]")
    return hosted


def _check_stores(user: Any, hosted: Hosted) -> None:
    """A 404 naming the param for a vector store that is not the user's (or does not exist: not told apart)."""
    for store_id in hosted.file_search.stores if hosted.file_search else ():
        try:
            owned_store(user, store_id)
        except VectorStore.DoesNotExist:
            raise not_found("vector store", store_id, f"{hosted.file_search_param}.vector_store_ids") from None


async def _own_server(user: Any, tool: McpTool, param: str) -> McpServer:
    """The request's own server (never saved); a 400 naming `param` for a URL the SSRF guard refuses (its
    connections are checked again, pinned to the address checked)."""
    assert tool.server_url is not None
    try:
        server = services.request_server(user, tool.server_label, tool.server_url, tool.authorization, tool.headers)
    except ValidationError as exc:
        message = exc.messages[0]
        raise invalid_param(
            param if "URL" in message else param.replace("server_url", "server_label"), message
        ) from None
    try:
        url = http.check_url(server.url)
        await Guard().check(url.host, url.port or (443 if url.scheme == "https" else 80))
    except Refused as exc:
        raise invalid_param(param, f"the MCP server's URL is refused: {exc}") from None
    return server


@dataclass
class Opened:
    """The turn's tools: the toolbox running ours, each server's listing, the tools whose calls wait for an
    approval (offered as the client's: a call of one ends the turn), the calls this turn approved, run."""

    toolbox: Toolbox
    listed: dict[str, list[dict[str, Any]]]
    waiting: dict[str, ToolSpec]
    approved: list[Approved]


async def open_hosted(serving: ResponsesServing, hosted: Hosted) -> Opened:
    """The request's hosted tools: web search, the registered servers it names, its own; the approved calls run
    and the chat request made again with their results."""
    caller = serving.call.caller
    own = [await _own_server(caller.user, tool, hosted.params[label]) for label, tool in hosted.own.items()]
    await db(_check_stores, caller.user, hosted)
    choice = ToolChoice(
        web_search=hosted.web_search, mcp_servers=tuple(hosted.registered), file_search=hosted.file_search
    )
    toolbox = await open_toolbox(caller, choice, "tools", extra_servers=own, params=hosted.params)
    toolbox.keep(hosted.keeps)
    listed = {label: [listing(spec) for spec in toolbox.specs if spec.server_name == label] for label in hosted.labels}
    waiting = {spec.name: spec for spec in toolbox.specs if hosted.needs_approval(spec)}
    approved = await run_approved(toolbox, serving.request, serving.history)
    if approved:
        serving.approvals = {answer.request["id"]: answer.message for answer in approved}
        serving.translate()
    toolbox.keep(lambda spec: spec.name not in waiting)
    return Opened(toolbox, listed, waiting, approved)


class _Render:
    """The loop's events as the Responses API's, through the turn's ResponseStream."""

    def __init__(self, serving: ResponsesServing, opened: Opened) -> None:
        request = serving.request
        self.stream = ResponseStream(request, serving.ids, request.model)
        self.opened = opened
        self.sources = SOURCES in (request.include or ())
        self.file_results = FILE_RESULTS in (request.include or ())
        self.cited: dict[int, tuple[str, str]] = {}  # passage number -> (file id, filename)
        self.items: dict[str, dict[str, Any]] = {}
        self.started = False

    def _id(self, prefix: str) -> str:
        return self.stream.ids.item(prefix, len(self.stream.output))

    def begin(self) -> list[dict[str, Any]]:
        """`response.created`, `.in_progress`, the MCP servers' listings and the approved calls, once."""
        if self.started:
            return []
        self.started = True
        events = self.stream.start()
        for label, tools in self.opened.listed.items():
            error = self.opened.toolbox.unavailable.get(label)
            events += mcp_tools_listed(self.stream, self._id("mcpl"), label, tools, error)
        for answer in self.opened.approved:
            if answer.result is not None:
                asked = answer.request
                item, started = mcp_call_started(
                    self.stream, self._id("mcp"), asked["server_label"], asked["name"], answer.arguments, asked["id"]
                )
                events += started + mcp_call_finished(self.stream, item, answer.result.text, answer.result.is_error)
        return events

    def on(self, event: LoopEvent) -> list[dict[str, Any]]:
        events = self.begin()
        if isinstance(event, Delta):
            delta = {"content": event.text, "reasoning_content": event.reasoning}
            events += self.stream.feed({"choices": [{"index": 0, "delta": delta}]})
        elif isinstance(event, ToolStarted):
            events += self._started(event)
        elif isinstance(event, ToolFinished) and event.call_id in self.items:
            events += self._finished(event)
        elif isinstance(event, LoopDone):
            events += self._done(event)
        return events

    def _started(self, event: ToolStarted) -> list[dict[str, Any]]:
        if event.kind == "web_search":
            query = str(event.arguments.get("query", ""))
            item, events = web_search_started(self.stream, self._id("ws"), query)
        elif event.kind == "file_search":
            query = str(event.arguments.get("query", ""))
            item, events = file_search_started(self.stream, self._id("fs"), query)
        else:
            item, events = mcp_call_started(self.stream, self._id("mcp"), event.server, event.tool, event.arguments)
        self.items[event.call_id] = item
        return events

    def _finished(self, event: ToolFinished) -> list[dict[str, Any]]:
        item = self.items.pop(event.call_id)
        failed = event.state == "failed"
        if event.kind == "web_search":
            urls = [source.url for source in event.result.sources] if self.sources else None
            return web_search_finished(self.stream, item, failed, urls)
        if event.kind == "file_search":
            sources = event.result.sources
            self.cited.update((source.number, (source.file_id, source.title)) for source in sources)
            results = [_file_result(source) for source in sources] if self.file_results else None
            return file_search_finished(self.stream, item, failed, results)
        return mcp_call_finished(self.stream, item, event.result.text, failed)

    def _done(self, done: LoopDone) -> list[dict[str, Any]]:
        """The client's calls as function_call items, the calls waiting for an approval as approval requests."""
        events: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for call in done.message.get("tool_calls") or ():
            spec = self.opened.waiting.get(call.get("function", {}).get("name"))
            if spec is None:
                calls.append({"index": len(calls), **call})
                continue
            arguments = call["function"].get("arguments") or "{}"
            events += approval_requested(self.stream, self._id("mcpr"), spec.server_name, spec.remote_name, arguments)
        if self.cited:
            events += self.stream.annotate(lambda text: file_citations(text, self.cited))
        chunk = {"choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": done.finish_reason}]}
        return events + self.stream.feed(chunk) + self.stream.finish(done.usage.as_dict())


def _file_result(source: Source) -> dict[str, Any]:
    return {
        "file_id": source.file_id,
        "filename": source.title,
        "text": source.snippet,
        "score": source.score,
        "attributes": dict(source.attributes) if source.attributes is not None else None,
    }


class HostedLoop:
    """One Responses turn with hosted tools run by us (see the module's docstring)."""

    def __init__(self, serving: ResponsesServing) -> None:
        self.serving = serving

    async def prepare(self) -> Hosted | None:
        """Parse, find the model, load the earlier turns; None when the model's upstreams run the tools."""
        serving = self.serving
        serving.request = serving.parse(serving.call.body)
        serving.model = await serving.find_model(serving.request.model)
        check_kind(serving.model, serving.kind)
        hosted = hosted_tools(serving.request)
        if hosted.file_search is None and runs_them_itself(serving.model):
            return None
        serving.runs_hosted_tools = True
        await serving.load()
        return hosted

    def step(self, body: dict[str, Any]) -> StepServing:
        serving = self.serving
        return StepServing(serving.call.caller, body, stream=True, headers=serving.headers)

    async def _events(self, opened: Opened) -> AsyncGenerator[LoopEvent, None]:
        chat = self.serving.chat_body
        model = model_call(self.step, {**step_body(chat), "stream": True}, True)
        client_tools = [*(chat.get("tools") or ()), *(spec.as_function() for spec in opened.waiting.values())]
        async for event in run_loop(model, chat["messages"], opened.toolbox, client_tools=client_tools):
            yield event

    async def answer(self, hosted: Hosted) -> dict[str, Any]:
        opened = await open_hosted(self.serving, hosted)
        render = _Render(self.serving, opened)
        async with contextlib.aclosing(self._events(opened)) as events:
            async for event in events:
                render.on(event)
        response = render.stream.response
        await self.serving.keep(response)
        return response

    async def stream(self, hosted: Hosted, keepalive: float | None) -> AsyncGenerator[Any, None]:
        """The events (None for a keep-alive); GatewayError before the first, `response.failed` after it."""
        opened = await open_hosted(self.serving, hosted)
        render = _Render(self.serving, opened)
        events = with_keepalives(self._events(opened), keepalive)
        try:
            async for event in events:
                if event is None:  # the stream starts: what fails later is `response.failed`
                    for out in render.begin():
                        yield out
                    yield None
                    continue
                for out in render.on(event):
                    if out["type"] in FINAL_EVENTS:
                        await self.serving.keep(out["response"])
                    yield out
        except GatewayError as exc:
            if not render.started:
                raise
            for out in render.stream.fail(exc.message, exc.status):
                yield out
        finally:
            await events.aclose()
