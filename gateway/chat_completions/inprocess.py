"""The browser chat's way into the gateway: a typed request built once, typed events back.

    turn = ChatTurn(user, "acme/chat", model, messages, prompt_tokens, options)   # conversations.services
    async for event in reply(turn):                # conversations.generation; GatewayError before the first
        match event:
            case Said(text, reasoning): ...
            case Finished(usage): ...
            case ToolStarted() | ToolFinished(): ...     # with `turn.tools`: tools.loop's events
            case Failed(message): ...                  # a failure after the first, the last event

The chat has found the model usable (the rights cache, with its routes) and estimated the prompt
while trimming the history to the context: the gateway reserves with that estimate and does not
look the model up again. The request is validated once, here, into the chat-completions request
every route is served from (gateway.chat_completions.serving), so an Anthropic upstream serves the
chat as it serves the API. Closing the iterator (a stop) closes the upstream request at once.

With `turn.tools` (a tools.registry.ToolChoice) the reply runs the tool loop (tools.loop): each model
call reserved and ledgered as a reply of its own, the tools' events between the text, and `Finished`
carrying, in `added`, the assistant tool-call turns and `tool` results to keep in the history.
Closing the iterator then cancels the model call or the tool calls in flight.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from accounts.models import User
from catalogue.models import Deployment, LanguageModel
from gateway import upstream
from gateway.auth import Caller, model_not_found
from gateway.chat_completions.protocol import reasoning_text
from gateway.chat_completions.serving import TranslatedRelay
from gateway.chat_completions.tool_loop import StepServing, model_call
from gateway.errors import GatewayError
from gateway.serving.base import Opened
from gateway.serving.toolloop import open_toolbox
from tools.loop import Delta, LoopDone, ToolFinished, ToolStarted, run_loop
from tools.registry import ToolChoice
from usage.models import UsageRecord
from usage.tokens import Usage


@dataclass(frozen=True)
class ChatTurn:
    """One reply the chat asks for."""

    user: User  # who pays
    public_id: str
    model: LanguageModel | None  # usable, with its routes; None when it no longer is
    messages: list[dict[str, Any]]  # OpenAI's chat messages, the history trimmed to the context
    prompt_tokens: int  # the chat's estimate of `messages`, reserved as it is
    options: dict[str, Any] = field(default_factory=dict)  # sampling: temperature, max_tokens
    tools: ToolChoice | None = None  # the server's tools to run for the model (None: none)


@dataclass(frozen=True)
class Said:
    """What the model added to the answer and to its thinking (either may be empty)."""

    text: str
    reasoning: str


@dataclass(frozen=True)
class Finished:
    usage: Usage  # with tools: summed over the model calls
    # With tools: the assistant turns calling them and the `tool` results (OpenAI's chat messages).
    added: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Failed:
    message: str


ReplyEvent = Said | ToolStarted | ToolFinished | Finished | Failed
FAILED = "The model's provider failed."


@dataclass
class _Relay(TranslatedRelay):
    """A chat upstream's chunks as the chat's events: the first choice's text and thinking."""

    def feed(self, chunk: dict[str, Any]) -> list[ReplyEvent]:
        for choice in chunk["choices"]:
            if choice.get("index", 0) == 0:
                delta = choice.get("delta") or {}
                return [Said(delta.get("content") or "", reasoning_text(delta))]
        return []

    def tail(self, usage: Usage) -> list[ReplyEvent]:
        return [Finished(usage)]

    def failed(self, exc: GatewayError) -> list[ReplyEvent]:
        return [Failed(exc.message or FAILED)]


class _TurnStep(StepServing):
    """One model call of a reply: the chat's model, already found usable (the rights cache)."""

    def __init__(self, turn: ChatTurn, body: dict[str, Any]) -> None:
        super().__init__(Caller(turn.user, None, UsageRecord.Source.CHAT), body, stream=True)
        self.turn = turn

    async def find_model(self, public_id: str) -> LanguageModel:
        if self.turn.model is None:
            raise model_not_found(public_id)
        return self.turn.model


class _TurnServing(_TurnStep):
    """A reply without tools: one model call, reserved with the chat's own estimate of the prompt."""

    def __init__(self, turn: ChatTurn) -> None:
        body = {"model": turn.public_id, "messages": turn.messages, "stream": True, **turn.options}
        super().__init__(turn, body)

    def estimate(self) -> tuple[int, int]:
        return self.turn.prompt_tokens, self.chat.output_cap(self.model.max_output_tokens)

    def relay_for(self, deployment: Deployment, target: upstream.Target) -> Opened:
        path, body = self.chat_request(deployment, target, True)
        return _Relay(self.chat_relay(target, False), target), path, body, {}


async def _with_tools(turn: ChatTurn, tools: ToolChoice) -> AsyncGenerator[ReplyEvent, None]:
    caller = Caller(turn.user, None, UsageRecord.Source.CHAT)
    toolbox = await open_toolbox(caller, tools, param="tools")
    base = {"model": turn.public_id, "stream": True, **turn.options}
    model = model_call(lambda body: _TurnStep(turn, body), base, True)
    started = False
    try:
        async for event in run_loop(model, turn.messages, toolbox):
            if isinstance(event, Delta):
                started = True
                yield Said(event.text, event.reasoning)
            elif isinstance(event, ToolStarted | ToolFinished):
                started = True
                yield event
            elif isinstance(event, LoopDone):
                yield Finished(event.usage, event.added)
    except GatewayError as exc:
        if not started:
            raise
        yield Failed(exc.message or FAILED)


def reply(turn: ChatTurn) -> AsyncGenerator[ReplyEvent, None]:
    """The reply's events; GatewayError before the first, Failed as the last after it."""
    if turn.tools is not None:
        return _with_tools(turn, turn.tools)
    return _TurnServing(turn).stream(None)
