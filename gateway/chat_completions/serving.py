"""POST /v1/chat/completions over the serving core, and the chat upstream call other protocols build on.

OpenAI-compatible upstreams get the client's body, untouched but for a few fields (gateway.serving.bodies)
and the output cap; Anthropic's get it translated (gateway.translate_anthropic) and answer translated
back. The Responses API and Anthropic's Messages API reach a chat upstream through `ChatServing` too.

Hot path: streamed chunks are parsed with `json` and only `model` (and usage) rewritten; no pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

from catalogue.models import Deployment, LanguageModel
from gateway import upstream
from gateway.chat_completions.protocol import ChatCompletionRequest, parse_chat_request
from gateway.errors import GatewayError
from gateway.serving.answers import answer_usage, choices_of, own_answer
from gateway.serving.base import Opened, Serving
from gateway.serving.bodies import encode, forwarded_body, set_stream, upstream_user
from gateway.serving.call import Call
from gateway.serving.relay import ChunkRelay
from gateway.translate_anthropic import (
    MessagesToChatStream,
    UnreadableAnswer,
    message_to_chat_completion,
    messages_body,
)
from usage.tokens import Usage, estimate_prompt_tokens, message_bytes

CHAT_PATH = "/chat/completions"
T = TypeVar("T")


def readable(target: upstream.Target, read: Callable[..., T], *args: Any) -> T:
    """`read(*args)` on what an Anthropic upstream sent; its UnreadableAnswer is the upstream's fault (retryable)."""
    try:
        return read(*args)
    except UnreadableAnswer as exc:
        raise upstream.bad_response(target, str(exc)) from None


def check_model_takes(request: ChatCompletionRequest, model: LanguageModel) -> None:
    """A 400 naming the param when the model lacks a capability the request needs, or its cap is too high.

    Refused here, a request never reaches an upstream that would answer it with an error (or a traceback).
    """
    for capability, param, what in request.needs():
        if not getattr(model, capability):
            raise GatewayError(
                400, f"The model '{model.public_id}' does not accept {what}.", param=param, code="unsupported_parameter"
            )
    request.output_cap(model.max_output_tokens)  # a cap above the model's is a 400 before anything is reserved


def own_chat_completion(payload: dict[str, Any], public_id: str) -> None:
    """A chat.completion as our answer: `own_answer`, and each message with its role and null fields."""
    for choice in own_answer(payload, public_id, "chat.completion", "chatcmpl-"):
        message = choice.get("message")
        if isinstance(message, dict):
            message.setdefault("role", "assistant")
            message.setdefault("content", None)
            message.setdefault("refusal", None)


@dataclass
class ChatRelay(ChunkRelay):
    """Turns an upstream's stream events into the chat chunks our client gets, and keeps what they said."""

    OBJECT: ClassVar[str] = "chat.completion.chunk"
    ID_PREFIX: ClassVar[str] = "chatcmpl-"

    # Set for an Anthropic upstream: its events become chat chunks before anything else reads them.
    translator: MessagesToChatStream | None = None

    def chunks(self, data: str) -> list[dict[str, Any]]:
        """One event as the client's chunks (none for the usage chunk, a few for an Anthropic event)."""
        parsed = self.parse(data)
        if self.translator is None:
            chunk = self.chunk(parsed)
            return [chunk] if chunk is not None else []
        translated = readable(self.target, self.translator.feed, parsed)
        return [chunk for chunk in map(self.chunk, translated) if chunk is not None]

    def end(self) -> None:
        """At the end of the upstream's stream: an Anthropic stream cut before message_stop is a fault."""
        if self.translator is not None:
            readable(self.target, self.translator.finish)

    def chunk(self, chunk: Any) -> dict[str, Any] | None:
        """One parsed chat chunk as the client's; None when there is nothing to forward (the usage chunk)."""
        # A client asking for usage gets `"usage": null` on every chunk but ours, as OpenAI sends them.
        choices = self.choices_of(chunk, keep_usage=self.wants_usage)
        if not choices:
            return None
        for choice in choices:
            delta = choice.get("delta")
            if delta:
                self.completion_bytes += message_bytes(delta)
            choice.setdefault("finish_reason", None)
        return cast(dict[str, Any], chunk)


@dataclass
class TranslatedRelay:
    """A chat upstream's stream as another protocol's events: `inner` reads it, `feed` translates each chunk."""

    inner: ChatRelay
    target: upstream.Target

    def chunks(self, data: str) -> list[Any]:
        return [event for chunk in self.inner.chunks(data) for event in self.feed(chunk)]

    def feed(self, chunk: dict[str, Any]) -> list[Any]:
        raise NotImplementedError

    def end(self) -> None:
        self.inner.end()

    def usage(self, call: Call) -> Usage:
        return self.inner.usage(call)


class ChatServing(Serving[Any]):
    """A chat request; `chat` and `chat_body` are what goes to a chat upstream (the translation, for
    subclasses serving another protocol)."""

    kind = LanguageModel.Kind.CHAT
    chat: ChatCompletionRequest
    chat_body: dict[str, Any]

    def parse(self, body: dict[str, Any]) -> Any:
        self.chat, self.chat_body = parse_chat_request(body), body
        return self.chat

    def check(self) -> None:
        check_model_takes(self.chat, self.model)

    def estimate(self) -> tuple[int, int]:
        return estimate_prompt_tokens(self.chat_body), self.chat.output_cap(
            self.model.max_output_tokens
        ) * self.chat.choices()

    def chat_request(self, deployment: Deployment, target: upstream.Target, stream: bool) -> tuple[str, bytes]:
        """The upstream path and body of one attempt, in the protocol the deployment's provider speaks."""
        cap = self.chat.output_cap(self.model.max_output_tokens)
        if target.anthropic:
            body = messages_body(self.chat, max_tokens=cap)
            body["model"] = deployment.upstream_model
            if "metadata" in body:
                body["metadata"] = {"user_id": upstream_user(self.call.caller.user.pk)}
            if stream:
                body["stream"] = True
            else:
                body.pop("stream", None)
            return target.messages_path, encode(body)
        forwarded = forwarded_body(self.chat_body, deployment, self.call.caller)
        # Every upstream gets a cap, under the one name it knows: a server that ignores the other name
        # writes until its own limit (llama.cpp knows only max_tokens, OpenAI's reasoning models only
        # max_completion_tokens).
        forwarded.pop("max_tokens", None)
        forwarded.pop("max_completion_tokens", None)
        forwarded[deployment.provider.output_cap_param] = cap
        if forwarded.get("tools") is False:
            del forwarded["tools"]
        set_stream(forwarded, stream)
        return CHAT_PATH, encode(forwarded)

    async def completion_from(self, deployment: Deployment, target: upstream.Target) -> dict[str, Any]:
        """One deployment's chat.completion, ours (gateway.serving.answers)."""
        path, sent = self.chat_request(deployment, target, False)
        payload = await upstream.post_json(target, path, sent)
        if target.anthropic:
            payload = readable(target, message_to_chat_completion, payload)
        choices_of(payload, target)
        own_chat_completion(payload, self.request.model)
        return payload

    def completion_usage(self, payload: dict[str, Any]) -> Usage:
        size = sum(message_bytes(c.get("message")) for c in payload["choices"] if isinstance(c, dict))
        return answer_usage(self.call, payload, size)

    async def answer_from(self, deployment: Deployment, target: upstream.Target) -> tuple[dict[str, Any], Usage]:
        payload = await self.completion_from(deployment, target)
        return payload, self.completion_usage(payload)

    def chat_relay(self, target: upstream.Target, wants_usage: bool) -> ChatRelay:
        relay = ChatRelay(self.request.model, wants_usage, target)
        if target.anthropic:
            relay.translator = MessagesToChatStream()
        return relay

    def relay_for(self, deployment: Deployment, target: upstream.Target) -> Opened:
        path, body = self.chat_request(deployment, target, True)
        return self.chat_relay(target, self.chat.wants_usage_chunk()), path, body, {}
