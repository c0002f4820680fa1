"""Chat completions with the server's tools: the tool loop (tools.loop) over chat steps.

    "tools": true                       the server's tools this key may use: web search, page reading,
                                        and every MCP server the key's user may use
    "mcp_servers": ["name", ...]        ours: only these MCP servers (with `"tools": true`, beside web
                                        search and page reading; with a `tools` array, beside the client's tools)

Every step is a chat request of its own through the serving core (`StepServing`): reserved, routed and
ledgered. The client gets one chat.completion (or one stream of chunks: the text of every step, then the
finish) whose message carries only the client's own tool calls; the calls we ran are listed in our
extension field `server_tool_calls` (name, server, arguments, state, duration, sources) of the answer (of
the finish chunk, streamed), beside `usage`, summed over the steps. While tools run, a stream gets
keep-alives only: no chunk of ours that an OpenAI client would not expect. Other protocols (Anthropic's
Messages, the chat) drive the same steps through `model_call`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from catalogue.models import Deployment
from gateway import upstream
from gateway.chat_completions.protocol import ChatCompletionRequest, parse_chat_request, reasoning_text
from gateway.chat_completions.serving import ChatRelay, ChatServing
from gateway.errors import GatewayError
from gateway.serving.base import Opened
from gateway.serving.relay import with_keepalives
from gateway.serving.toolloop import open_toolbox
from gateway.translate_anthropic import MessagesToChatStream
from tools.loop import Delta, LoopDone, LoopEvent, ModelAnswer, ModelCall, ToolFinished, run_loop
from tools.registry import ToolChoice
from usage.tokens import Usage, reported_usage

# What the loop decides per step, never taken from the client's body as it is.
_PER_STEP = ("tools", "mcp_servers", "stream", "stream_options", "n")
_WITH_TOOLS = ("tool_choice", "parallel_tool_calls")


def wants_server_tools(body: dict[str, Any]) -> bool:
    """Whether a chat body asks for tools we run: two dict lookups, all a plain request pays."""
    return body.get("tools") is True or "mcp_servers" in body


def choice_of(request: ChatCompletionRequest) -> ToolChoice:
    builtin = request.tools is True
    servers = request.mcp_servers
    return ToolChoice(
        web_search=builtin,
        fetch=builtin,
        mcp_servers=tuple(servers) if servers is not None else (None if builtin else ()),
    )


@dataclass
class _StepRelay(ChatRelay):
    """A step's chunks, its usage chunk always; a failure after the first chunk is raised by the step."""

    def failed(self, exc: GatewayError) -> list[Any]:
        return [exc]


class StepServing(ChatServing):
    """One model call of the loop (a mixin's base: the chat's steps find their model as the chat does)."""

    CACHEABLE = False  # its tools are ours: what they answer may change from one run to the next

    def relay_for(self, deployment: Deployment, target: upstream.Target) -> Opened:
        path, body = self.chat_request(deployment, target, True)
        relay = _StepRelay(self.model.public_id, True, target)
        if target.anthropic:
            relay.translator = MessagesToChatStream()
        return relay, path, body, {}


@dataclass
class _Answer:
    """A step's streamed chunks put together: its message, why it ended, its usage."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str = "stop"
    usage: Usage | None = None

    def feed(self, chunk: dict[str, Any]) -> Delta | None:
        choices = chunk.get("choices")
        if not choices:
            self.usage = reported_usage(chunk.get("usage")) or self.usage
            return None
        choice = next((c for c in choices if c.get("index", 0) == 0), None)
        if choice is None:
            return None
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        for part in delta.get("tool_calls") or ():
            self._call_part(part)
        text, reasoning = delta.get("content") or "", reasoning_text(delta)
        self.text.append(text)
        self.reasoning.append(reasoning)
        return Delta(text, reasoning) if text or reasoning else None

    def _call_part(self, part: dict[str, Any]) -> None:
        call = self.calls.setdefault(
            int(part.get("index", len(self.calls))),
            {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
        )
        call["id"] = part.get("id") or call["id"]
        function = part.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""

    def answer(self, estimated: Usage) -> ModelAnswer:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
        if self.calls:
            message["tool_calls"] = [self.calls[n] for n in sorted(self.calls)]
        return ModelAnswer(message, self.finish_reason, self.usage or estimated)


def model_call(make_step: Callable[[dict[str, Any]], ChatServing], base: dict[str, Any], stream: bool) -> ModelCall:
    """The loop's model call: each a chat request `make_step(body)` of `base` with the conversation and tools
    so far; streamed (its text as it comes) or not."""

    async def call(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AsyncIterator[Delta | ModelAnswer]:
        body = {**base, "messages": messages}
        if tools:
            body["tools"] = tools
        else:
            for name in _WITH_TOOLS:
                body.pop(name, None)
        step = make_step(body)
        if not stream:
            answer = await step.answer()
            choice = answer["choices"][0]
            message = choice.get("message") or {}
            usage = reported_usage(answer.get("usage")) or Usage()
            text, reasoning = message.get("content"), reasoning_text(message)
            if (isinstance(text, str) and text) or reasoning:
                yield Delta(text if isinstance(text, str) else "", reasoning)  # the whole answer's, at once
            yield ModelAnswer(message, choice.get("finish_reason") or "stop", usage)
            return
        said = _Answer()
        chunks = step.stream(None)
        try:
            async for chunk in chunks:
                if isinstance(chunk, GatewayError):
                    raise chunk
                delta = said.feed(chunk)
                if delta is not None:
                    yield delta
        finally:
            await chunks.aclose()
        yield said.answer(step.call.estimated())

    return call


def step_body(body: dict[str, Any]) -> dict[str, Any]:
    """The client's body as every step starts from: without what the loop sets per step."""
    return {name: value for name, value in body.items() if name not in _PER_STEP}


def client_tools(request: ChatCompletionRequest, body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body["tools"]) if isinstance(request.tools, list) else []


def server_call(event: ToolFinished) -> dict[str, Any]:
    """Ours: a tool call we ran, as the answer lists it (`server_tool_calls`)."""
    return {
        "id": event.call_id,
        "name": event.tool,
        "server": event.server or None,
        "arguments": event.arguments,
        "state": event.state,
        "duration_ms": event.duration_ms,
        "sources": [{"title": s.title, "url": s.url} for s in event.result.sources],
    }


class ToolLoopChat:
    """A chat completion with the server's tools (see the module's docstring)."""

    def __init__(self, serving: ChatServing) -> None:
        self.caller = serving.call.caller
        self.body = serving.call.body
        self.headers = serving.headers
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def step(self, body: dict[str, Any]) -> ChatServing:
        return StepServing(self.caller, body, stream=bool(body.get("stream")), headers=self.headers)

    async def events(self, stream: bool) -> AsyncGenerator[LoopEvent, None]:
        request = parse_chat_request(self.body)
        if request.choices() > 1:
            raise GatewayError(400, "n must be 1 when the server runs tools.", param="n", code="invalid_value")
        toolbox = await open_toolbox(self.caller, choice_of(request))
        base = {**step_body(self.body), "stream": stream}
        model = model_call(self.step, base, stream)
        async for event in run_loop(
            model, self.body["messages"], toolbox, client_tools=client_tools(request, self.body)
        ):
            yield event

    async def answer(self) -> dict[str, Any]:
        ran: list[dict[str, Any]] = []
        async for event in self.events(False):
            if isinstance(event, ToolFinished):
                ran.append(server_call(event))
            elif isinstance(event, LoopDone):
                return self.completion(event, ran)
        raise AssertionError("the loop ended without its last event")

    def completion(self, done: LoopDone, ran: list[dict[str, Any]]) -> dict[str, Any]:
        message = {"role": "assistant", "content": done.message.get("content"), "refusal": None}
        if done.message.get("tool_calls"):
            message["tool_calls"] = done.message["tool_calls"]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": done.finish_reason}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.body["model"],
            "choices": [choice],
            "usage": done.usage.as_dict(),
            "server_tool_calls": ran,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.body["model"],
            "choices": [choice],
        }

    async def stream(self, keepalive: float | None) -> AsyncGenerator[Any, None]:
        """The client's chunks (None for a keep-alive); GatewayError before the first, an error chunk after."""
        wants_usage = bool((self.body.get("stream_options") or {}).get("include_usage"))
        started = said = False  # something went out; the answer's first chunk (with its role) went out
        ran: list[dict[str, Any]] = []
        async with aclosing(with_keepalives(self.events(True), keepalive)) as events:
            try:
                async for event in events:
                    if event is None:
                        started = True
                        yield None
                    elif isinstance(event, Delta) and event.text:
                        delta = {"content": event.text} if said else {"role": "assistant", "content": event.text}
                        started = said = True
                        yield self.chunk(delta)
                    elif isinstance(event, ToolFinished):
                        ran.append(server_call(event))
                    elif isinstance(event, LoopDone):
                        for chunk in self.closing(event, said, wants_usage, ran):
                            yield chunk
            except GatewayError as exc:
                if not started:
                    raise
                yield exc.to_dict()

    def closing(self, done: LoopDone, said: bool, wants_usage: bool, ran: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The finish chunk (the client's tool calls, and ours in `server_tool_calls`), then usage if asked."""
        delta: dict[str, Any] = {} if said else {"role": "assistant", "content": ""}
        calls = done.message.get("tool_calls") or []
        if calls:
            delta["tool_calls"] = [{"index": n, **call} for n, call in enumerate(calls)]
        chunks = [{**self.chunk(delta, done.finish_reason), "server_tool_calls": ran}]
        if wants_usage:
            chunks.append({**self.chunk({}), "choices": [], "usage": done.usage.as_dict()})
        return chunks


class ChatCompletionsServing(ChatServing):
    """POST /v1/chat/completions: a plain chat request, or the tool loop when the body asks for our tools."""

    async def answer(self) -> dict[str, Any]:
        if wants_server_tools(self.call.body):
            return await ToolLoopChat(self).answer()
        return await super().answer()

    def stream(self, keepalive: float | None) -> AsyncGenerator[Any, None]:
        if wants_server_tools(self.call.body):
            return ToolLoopChat(self).stream(keepalive)
        return super().stream(keepalive)
