"""Anthropic's server tools and MCP connector, run by us: the tool loop (tools.loop) behind /v1/messages.

    "tools": [{"type": "web_search_20250305", "name": "web_search"},
              {"type": "web_fetch_20250910", "name": "web_fetch"}, ...the client's own tools]
    "mcp_servers": [{"type": "url", "name": "docs", "url": "https://...", "authorization_token": "..."}]

A server named in `mcp_servers` is one the key may use when its name and URL are those of a registered
server (its stored credentials are used); any other is the request's own, reached with only the token
the request carries, never on an internal address. `tool_configuration` (`enabled`, `allowed_tools`) is
honoured. The request runs on the chat translation (gateway.translate_anthropic), one chat step at a time
through the serving core. This is for a model with a deployment not speaking Anthropic's API: a model
served only by Anthropic gets the request as it is (gateway.anthropic_messages.serving). The answer
carries `server_tool_use` / `web_search_tool_result` / `web_fetch_tool_result` and `mcp_tool_use` /
`mcp_tool_result` blocks as Anthropic documents them (gateway.translate_anthropic.server_blocks),
streamed as whole blocks.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from catalogue.models import Provider
from gateway.anthropic_messages.protocol import (
    RUN_BY_US,
    McpServerDefinition,
    MessagesRequest,
    ServerTool,
    parse_messages_request,
)
from gateway.anthropic_messages.serving import MessagesServing, stream_error
from gateway.chat_completions.protocol import parse_chat_request
from gateway.chat_completions.serving import ChatServing
from gateway.chat_completions.tool_loop import StepServing, model_call
from gateway.errors import GatewayError
from gateway.routing import routes_of
from gateway.serving.relay import with_keepalives
from gateway.serving.toolloop import open_toolbox
from gateway.translate_anthropic import anthropic_error, messages_to_chat
from gateway.translate_anthropic.common import FINISH_TO_STOP
from gateway.translate_anthropic.server_blocks import result_block, server_counts, use_block
from tools import services
from tools.loop import Delta, LoopDone, LoopEvent, ToolFinished, ToolStarted, run_loop
from tools.models import McpServer
from tools.registry import Toolbox, ToolChoice
from tools.results import ToolSpec

WEB_SEARCH = "web_search_20250305"
WEB_FETCH = "web_fetch_20250910"


def wants_server_tools(body: dict[str, Any]) -> bool:
    """Whether a Messages body asks for a tool we run (a plain request pays a look at its tools' types)."""
    if "mcp_servers" in body:
        return True
    tools = body.get("tools")
    return isinstance(tools, list) and any(isinstance(tool, dict) and tool.get("type") in RUN_BY_US for tool in tools)


async def _servers(caller_user: Any, definitions: list[McpServerDefinition]) -> tuple[list[str], list[McpServer]]:
    """The registered servers named (by name and URL), and the request's own servers."""
    registered = {server.name: server.url async for server in services.servers_for(caller_user)}
    names: list[str] = []
    extra: list[McpServer] = []
    for position, definition in enumerate(definitions):
        configuration = definition.tool_configuration
        if configuration is not None and configuration.enabled is False:
            continue
        if registered.get(definition.name) == definition.url:
            names.append(definition.name)
            continue
        try:
            extra.append(
                services.request_server(caller_user, definition.name, definition.url, definition.authorization_token)
            )
        except ValidationError as exc:
            param = f"mcp_servers.{position}"
            raise GatewayError(400, f"{param}: {exc.messages[0]}", param=param, code="invalid_value") from None
    return names, extra


def _allowed(definitions: list[McpServerDefinition]) -> dict[str, set[str]]:
    return {
        d.name: set(d.tool_configuration.allowed_tools)
        for d in definitions
        if d.tool_configuration is not None and d.tool_configuration.allowed_tools is not None
    }


@dataclass
class Writer:
    """The loop's events as Anthropic's stream events, and the Message's content blocks as they end."""

    model: str
    input_tokens: int
    id: str = field(default_factory=lambda: f"msg_{uuid.uuid4().hex}")
    content: list[dict[str, Any]] = field(default_factory=list)
    text_open: bool = False

    def start(self) -> list[dict[str, Any]]:
        message = self.message([], None, {"input_tokens": self.input_tokens, "output_tokens": 1})
        return [{"type": "message_start", "message": message}]

    def message(self, content: list[dict[str, Any]], stop: str | None, usage: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "content": content,
            "model": self.model,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }

    def _close_text(self) -> list[dict[str, Any]]:
        if not self.text_open:
            return []
        self.text_open = False
        return [{"type": "content_block_stop", "index": len(self.content) - 1}]

    def text(self, text: str) -> list[dict[str, Any]]:
        events = []
        if not self.text_open:
            self.content.append({"type": "text", "text": ""})
            self.text_open = True
            events.append(
                {
                    "type": "content_block_start",
                    "index": len(self.content) - 1,
                    "content_block": {"type": "text", "text": ""},
                }
            )
        self.content[-1]["text"] += text
        events.append(
            {
                "type": "content_block_delta",
                "index": len(self.content) - 1,
                "delta": {"type": "text_delta", "text": text},
            }
        )
        return events

    def block(self, block: dict[str, Any]) -> list[dict[str, Any]]:
        """A whole block: its start (the input, for a tool use, as one input_json_delta) and its stop."""
        events = self._close_text()
        index = len(self.content)
        self.content.append(block)
        if "input" in block:
            events.append({"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}})
            partial = json.dumps(block["input"], ensure_ascii=False)
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": partial},
                }
            )
        else:
            events.append({"type": "content_block_start", "index": index, "content_block": block})
        events.append({"type": "content_block_stop", "index": index})
        return events

    def done(self, done: LoopDone) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The last events (client tool uses, message_delta, message_stop) and the whole Message."""
        events = self._close_text()
        for call in done.message.get("tool_calls") or ():
            function = call.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError:
                arguments = {}
            use = {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": arguments,
            }
            events += self.block(use)
        stop = FINISH_TO_STOP.get(done.finish_reason, "end_turn")
        usage = {
            "input_tokens": done.usage.prompt_tokens,
            "output_tokens": done.usage.completion_tokens,
            "server_tool_use": server_counts(self.content),
        }
        events.append({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage})
        events.append({"type": "message_stop"})
        return events, self.message(self.content, stop, usage)

    def feed(self, event: LoopEvent) -> list[dict[str, Any]]:
        if isinstance(event, Delta):
            return self.text(event.text) if event.text else []
        if isinstance(event, ToolStarted):
            return self.block(use_block(event))
        if isinstance(event, ToolFinished):
            return self.block(result_block(event))
        return []


class MessagesToolLoop:
    """A Messages request with tools we run (see the module's docstring)."""

    def __init__(self, serving: ChatServing) -> None:
        self.caller = serving.call.caller
        self.body = serving.call.body
        self.headers = serving.headers

    def step(self, body: dict[str, Any]) -> ChatServing:
        return StepServing(self.caller, body, stream=bool(body.get("stream")), headers=self.headers)

    async def toolbox(self, request: MessagesRequest) -> Toolbox:
        kinds = {tool.type for tool in request.tools or () if isinstance(tool, ServerTool)}
        definitions = request.mcp_servers or []
        names, extra = await _servers(self.caller.user, definitions)
        choice = ToolChoice(web_search=WEB_SEARCH in kinds, fetch=WEB_FETCH in kinds, mcp_servers=tuple(names))
        toolbox = await open_toolbox(self.caller, choice, "mcp_servers", extra)
        allowed = _allowed(definitions)

        def wanted(spec: ToolSpec) -> bool:
            return (
                spec.kind != "mcp" or spec.server_name not in allowed or spec.remote_name in allowed[spec.server_name]
            )

        toolbox.keep(wanted)
        return toolbox

    async def events(self, stream: bool) -> AsyncGenerator[LoopEvent, None]:
        request = parse_messages_request(self.body)
        chat_body = messages_to_chat(request.without_our_tools())
        parse_chat_request(chat_body)
        toolbox = await self.toolbox(request)
        client_tools = chat_body.pop("tools", [])
        base = {name: value for name, value in chat_body.items() if name != "messages"}
        base["stream"] = stream
        model = model_call(self.step, base, stream)
        async for event in run_loop(model, chat_body["messages"], toolbox, client_tools=client_tools):
            yield event

    async def answer(self) -> dict[str, Any]:
        writer = Writer(self.body["model"], 0)
        async for event in self.events(False):
            if isinstance(event, LoopDone):
                return writer.done(event)[1]
            writer.feed(event)
        raise AssertionError("the loop ended without its last event")

    async def stream(self, keepalive: float | None) -> AsyncGenerator[Any, None]:
        """Anthropic's events (None for a keep-alive); GatewayError before the first, an error event after."""
        writer = Writer(self.body["model"], 0)
        started = False
        async with aclosing(with_keepalives(self.events(True), keepalive)) as events:
            try:
                async for event in events:
                    if not started:
                        started = True
                        for item in writer.start():
                            yield item
                    if event is None:
                        yield None
                        continue
                    for item in writer.done(event)[0] if isinstance(event, LoopDone) else writer.feed(event):
                        yield item
            except GatewayError as exc:
                if not started:
                    raise
                yield anthropic_error(stream_error(exc))[1]


class MessagesEndpointServing(MessagesServing):
    """POST /v1/messages: as Anthropic's upstreams serve it, or the tool loop when the body asks for tools we run
    and the model has a deployment that cannot run them (one not speaking Anthropic's API)."""

    async def runs_ours(self) -> bool:
        if not wants_server_tools(self.call.body):
            return False
        try:
            model = await self.find_model(str(self.call.body.get("model") or ""))
        except GatewayError:
            return False  # the plain path refuses it, with its ledger row
        return any(d.provider.kind != Provider.Kind.ANTHROPIC for d in routes_of(model))

    async def answer(self) -> dict[str, Any]:
        if await self.runs_ours():
            return await MessagesToolLoop(self).answer()
        return await super().answer()

    def stream(self, keepalive: float | None) -> AsyncGenerator[Any, None]:
        if not wants_server_tools(self.call.body):
            return super().stream(keepalive)  # the hot path: no generator of ours around it
        return self._stream_deciding(keepalive)

    async def _stream_deciding(self, keepalive: float | None) -> AsyncGenerator[Any, None]:
        ours = await self.runs_ours()
        events = MessagesToolLoop(self).stream(keepalive) if ours else super().stream(keepalive)
        async with aclosing(events):
            async for event in events:
                yield event
