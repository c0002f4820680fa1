"""The tool loop: call the model, run the tools it called that we run, give it their results, call it again.

    events = run_loop(model, messages, toolbox, client_tools=client_tools)
    async for event in events:          # Delta, ToolStarted, ToolFinished, StepDone; LoopDone last
        ...

The model call is a function the caller passes down (the gateway's serving core: every call of it is a
request of its own, reserved against the caller's limits and ledgered): given the conversation and the
tools to offer (chat-completions `tools[]` entries), it yields `Delta`s as the model writes and one
`ModelAnswer` last. The loop ends when the model answers without calling our tools, when it calls a tool
the client defined (the client's calls go back to it untouched, ours in the same turn run first), or at
the step limit (TOOLS_MAX_STEPS model calls) or time limit (TOOLS_MAX_SECONDS): the last step offers only
the client's tools, so the model answers with what it has.

Our calls of one step run at once; each is announced (`ToolStarted`) and told when it ends
(`ToolFinished`, in the order they end). Closing the generator cancels the model call or the tool calls
in flight. Tool results reach the model as `tool` messages, capped (Toolbox.run); a tool's failure is a
result the model reads, never an exception here. The events carry no wire format: each protocol renders
them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from core.clock import clock
from tools import site
from tools.registry import Toolbox
from tools.results import ToolCall, ToolResult
from usage.tokens import Usage

# --- what the model call yields -----------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    """Text the model added to its answer and to its thinking (either may be empty)."""

    text: str
    reasoning: str = ""


@dataclass(frozen=True)
class ModelAnswer:
    """One model call's whole answer: its assistant message (chat-completions shape: `content`, `tool_calls`),
    why it ended ("stop", "length", "tool_calls", ...) and its usage."""

    message: dict[str, Any]
    finish_reason: str
    usage: Usage


ModelCall = Callable[[list[dict[str, Any]], list[dict[str, Any]]], AsyncIterator["Delta | ModelAnswer"]]

# --- what the loop yields -----------------------------------------------------------------------


@dataclass(frozen=True)
class ToolStarted:
    """A tool call of ours begins. `name` is the tool's name as offered to the model; `server` the MCP
    server's name ("" for web search and fetch); `kind` "web_search", "fetch" or "mcp"; `tool` the tool's
    own name (on its MCP server)."""

    call_id: str
    name: str
    kind: str
    server: str
    tool: str
    arguments: dict[str, Any]
    step: int


@dataclass(frozen=True)
class ToolFinished:
    """A tool call of ours ended: its result (text, images, structured data, web sources), as the model got it."""

    call_id: str
    name: str
    kind: str
    server: str
    tool: str
    arguments: dict[str, Any]
    result: ToolResult
    state: Literal["done", "failed"]
    duration_ms: int
    step: int


@dataclass(frozen=True)
class StepDone:
    """One model call ended (the serving core wrote its ledger row)."""

    step: int
    usage: Usage
    finish_reason: str


Stopped = Literal["answer", "client_tools", "max_steps", "time_limit"]


@dataclass(frozen=True)
class LoopDone:
    """The last event. `message` is the answer (chat-completions shape) with only the client's tool calls, if
    any; `finish_reason` the last model call's ("tool_calls" when the client's calls are returned);
    `added` the messages the loop appended to the conversation (each assistant turn calling our tools and
    the `tool` results), for a client that keeps the history; `usage` summed over every model call."""

    message: dict[str, Any]
    finish_reason: str
    stopped: Stopped
    usage: Usage
    steps: int
    added: list[dict[str, Any]] = field(default_factory=list)


LoopEvent = Delta | ToolStarted | ToolFinished | StepDone | LoopDone

# --- the loop -----------------------------------------------------------------------------------


def add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        a.prompt_tokens + b.prompt_tokens,
        a.completion_tokens + b.completion_tokens,
        a.estimated or b.estimated,
        a.cached_tokens + b.cached_tokens,
    )


def _arguments(raw: Any) -> dict[str, Any] | None:
    """A tool call's arguments (a JSON object as text, as chat completions carry them); None if unreadable."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return None
    try:
        parsed = json.loads(raw or "{}")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def tool_message(call_id: str, result: ToolResult) -> dict[str, Any]:
    """A result as the `tool` message the model reads next (images said, not sent: not every model sees them)."""
    text = result.text
    if result.images:
        kinds = ", ".join(image.mime_type for image in result.images)
        text = f"{text}\n[the tool returned {len(result.images)} image(s): {kinds}]".strip()
    if result.is_error:
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text or "(no output)"}


@dataclass
class _Call:
    call_id: str
    name: str
    arguments: dict[str, Any] | None
    raw: dict[str, Any]


def _split(message: dict[str, Any], toolbox: Toolbox) -> tuple[list[_Call], list[dict[str, Any]]]:
    """The message's tool calls: ours (by the names we offered) and the client's (left as they came)."""
    ours, theirs = [], []
    for n, raw in enumerate(message.get("tool_calls") or ()):
        function = raw.get("function") if isinstance(raw, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and toolbox.offers(name):
            call_id = str(raw.get("id") or f"call_{n}")
            ours.append(_Call(call_id, name, _arguments(function.get("arguments")), raw))  # type: ignore[union-attr]
        else:
            theirs.append(raw)
    return ours, theirs


def _started(toolbox: Toolbox, call: _Call, step: int) -> ToolStarted:
    spec = toolbox.spec(call.name)
    kind, server, tool = spec.kind, spec.server_name, spec.remote_name or spec.name
    return ToolStarted(call.call_id, call.name, kind, server, tool, call.arguments or {}, step)


async def _run_one(toolbox: Toolbox, call: _Call, started: ToolStarted, deadline: float) -> ToolFinished:
    began = clock().monotonic()
    if call.arguments is None:
        result = ToolResult.error(f"the arguments of {call.name} are not a JSON object")
    else:
        remaining = max(deadline - began, 0.001)
        try:
            async with clock().timeout(remaining):
                result = await toolbox.run(ToolCall(call.name, call.arguments, call.call_id), time_cap=remaining)
        except TimeoutError:
            result = ToolResult.error(f"the tool {call.name} did not answer before the time limit")
    return ToolFinished(
        **{name.name: getattr(started, name.name) for name in fields(ToolStarted)},
        result=result,
        state="failed" if result.is_error else "done",
        duration_ms=max(0, int((clock().monotonic() - began) * 1000)),
    )


async def _run_calls(
    toolbox: Toolbox, calls: Sequence[_Call], step: int, deadline: float
) -> AsyncGenerator[ToolStarted | ToolFinished, None]:
    """Run the calls at once: each announced, then told as it ends. Leaving early cancels those in flight."""
    announced = [_started(toolbox, call, step) for call in calls]
    for event in announced:
        yield event
    tasks = [asyncio.ensure_future(_run_one(toolbox, c, e, deadline)) for c, e in zip(calls, announced, strict=True)]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _model_step(
    model: ModelCall, history: list[dict[str, Any]], offered: list[dict[str, Any]]
) -> AsyncGenerator[Delta | ModelAnswer, None]:
    answer: ModelAnswer | None = None
    stream = model(history, offered)
    try:
        async for event in stream:
            if isinstance(event, ModelAnswer):
                answer = event
            else:
                yield event
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    if answer is None:
        raise RuntimeError("the model call ended without its answer")
    yield answer


async def run_loop(
    model: ModelCall,
    messages: Sequence[dict[str, Any]],
    toolbox: Toolbox,
    *,
    client_tools: Sequence[dict[str, Any]] = (),
    max_steps: int | None = None,
    max_seconds: float | None = None,
) -> AsyncGenerator[LoopEvent, None]:
    """The loop's events (see the module's docstring); the model's errors (GatewayError) propagate."""
    limits = await site.refresh()
    steps = max_steps or limits.max_steps
    deadline = clock().monotonic() + (max_seconds or limits.max_seconds)
    ours = [spec.as_function() for spec in toolbox.specs]
    history = list(messages)
    added: list[dict[str, Any]] = []
    total = Usage()
    for step in range(1, steps + 1):
        out_of_time = clock().monotonic() >= deadline
        last = step == steps or out_of_time
        offered = list(client_tools) + ([] if last else ours)
        answer: ModelAnswer | None = None
        async for event in _model_step(model, history, offered):
            if isinstance(event, ModelAnswer):
                answer = event
            else:
                yield event
        assert answer is not None
        total = add_usage(total, answer.usage)
        yield StepDone(step, answer.usage, answer.finish_reason)
        mine, theirs = _split(answer.message, toolbox)
        if mine and not last:
            turn = {**answer.message, "tool_calls": [call.raw for call in mine]}
            results: dict[str, ToolFinished] = {}
            async for tool_event in _run_calls(toolbox, mine, step, deadline):
                if isinstance(tool_event, ToolFinished):
                    results[tool_event.call_id] = tool_event
                yield tool_event
            answered = [tool_message(call.call_id, results[call.call_id].result) for call in mine]
            history += [turn, *answered]
            added += [turn, *answered]
            if not theirs:
                continue
        final = {key: value for key, value in answer.message.items() if key != "tool_calls"}
        stopped: Stopped = "answer"
        finish = answer.finish_reason
        if theirs:
            final["tool_calls"] = theirs
            stopped, finish = "client_tools", "tool_calls"
        elif mine:
            stopped = "time_limit" if out_of_time else "max_steps"
            finish = "stop" if finish == "tool_calls" else finish
        yield LoopDone(final, finish, stopped, total, step, added)
        return
