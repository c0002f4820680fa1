"""POST /v1/chat/completions over the serving core, and the chat upstream call other protocols build on.

Also what OpenAI-shaped answers share with text completions (gateway.text_completions): an upstream's
answer made ours (`own_answer`, `answer_usage`) and its chunks read (`ChunkRelay`).

OpenAI-compatible upstreams get the client's body, untouched but for a few fields (gateway.serving.bodies)
and the output cap; Anthropic's and Gemini's get it translated (gateway.translate_anthropic,
gateway.translate_gemini) and answer translated back. The Responses API and Anthropic's and Gemini's
APIs reach a chat upstream through `ChatServing` too.

Hot path: streamed chunks are parsed with `json` and only `model` (and usage) rewritten; no pydantic.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, cast

from pydantic import BaseModel

from catalogue.models import Deployment, LanguageModel
from gateway import upstream
from gateway.chat_completions.protocol import ChatCompletionRequest, parse_chat_request
from gateway.errors import GatewayError
from gateway.routing import routes_of
from gateway.serving.base import Call, Opened, Serving
from gateway.serving.bodies import encode, sent_body, upstream_user
from gateway.translate_anthropic import (
    MessagesToChatStream,
    UnreadableAnswer,
    message_to_chat_completion,
    messages_body,
)
from gateway.translate_gemini import GeminiToChatStream, chat_to_gemini, gemini_to_chat_completion
from usage.tokens import Usage, estimate_prompt_tokens, message_bytes, reported_usage

CHAT_PATH = "/chat/completions"
CAPS = ("max_tokens", "max_completion_tokens")
T = TypeVar("T")


def readable(target: upstream.Target, read: Callable[..., T], *args: Any) -> T:
    """`read(*args)` on what an Anthropic or Gemini upstream sent; its UnreadableAnswer is the upstream's
    fault (retryable)."""
    try:
        return read(*args)
    except UnreadableAnswer as exc:
        raise upstream.bad_response(target, str(exc)) from None


def choices_of(payload: dict[str, Any], target: upstream.Target) -> list[Any]:
    """The answer's choices; GatewayError (retryable) when it has none."""
    choices = payload.get("choices")
    if not isinstance(choices, list):
        raise upstream.bad_response(target, "an answer without choices")
    return choices


def own_answer(payload: dict[str, Any], public_id: str, kind: str, id_prefix: str) -> list[dict[str, Any]]:
    """Fill what some upstreams omit and the spec requires; answer with our public model id.

    Returns the choices that are objects, for the endpoint to fill in what its own choices carry.
    """
    payload["model"] = public_id
    payload.setdefault("id", f"{id_prefix}{uuid.uuid4().hex}")
    payload["object"] = kind
    if not isinstance(payload.get("created"), int):
        payload["created"] = int(time.time())
    choices = []
    for position, choice in enumerate(payload["choices"]):
        if not isinstance(choice, dict):
            continue
        choice.setdefault("index", position)
        choice.setdefault("logprobs", None)
        if choice.get("finish_reason") is None:
            choice["finish_reason"] = "stop"
        choices.append(choice)
    return choices


def answer_usage(call: Call, payload: dict[str, Any], completion_bytes: int) -> Usage:
    """The upstream's reported usage, or an estimate written into the answer (flagged in the ledger)."""
    reported = reported_usage(payload.get("usage"))
    if reported is not None:
        payload["usage"] = usage_object(payload["usage"])
        return reported
    usage = call.estimated(completion_bytes)
    payload["usage"] = usage.as_dict()
    return usage


# OpenAI's usage object: what of an upstream's goes to the client (not a reseller's prices, say).
USAGE_FIELDS = frozenset(
    ("prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details")
)


def usage_object(reported: dict[str, Any]) -> dict[str, Any]:
    """An upstream's usage object with OpenAI's fields only, their details as it reported them."""
    return {k: v for k, v in reported.items() if k in USAGE_FIELDS}


@dataclass
class ChunkRelay:
    """What OpenAI-shaped chunk streams (chat and text completions) share: reading a chunk, the upstream's
    usage, and our usage chunk at the end. Subclasses name the object and add what their choices carry."""

    OBJECT: ClassVar[str]
    ID_PREFIX: ClassVar[str]

    public_id: str
    wants_usage: bool
    target: upstream.Target
    reported: Usage | None = None
    reported_as: dict[str, Any] | None = None  # the upstream's own usage object for `reported`, as it came
    completion_bytes: int = 0
    last: dict[str, Any] = field(default_factory=dict)

    def parse(self, data: str) -> Any:
        try:
            return json.loads(data)
        except ValueError:
            raise upstream.bad_response(self.target, "an unreadable stream event") from None

    def choices_of(self, chunk: Any, keep_usage: bool = False) -> list[dict[str, Any]] | None:
        """The chunk's choices, checked; its usage noted and taken out (left as null if `keep_usage`).

        None or [] for the upstream's usage chunk: ours goes out at the end, when the client asked.
        """
        if not isinstance(chunk, dict):
            raise upstream.bad_response(self.target, "an unreadable stream event")
        choices = chunk.get("choices")
        if "error" in chunk and not choices:
            raise upstream.event_error(chunk, self.target)
        if choices is not None and (not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices)):
            raise upstream.bad_response(self.target, "a stream event without a list of choices")
        if "usage" in chunk:
            if chunk["usage"]:
                reported = reported_usage(chunk["usage"])
                if reported is not None:
                    self.reported, self.reported_as = reported, chunk["usage"]
            if keep_usage:
                chunk["usage"] = None
            else:
                del chunk["usage"]
        if choices:
            chunk["model"] = self.public_id
            chunk.setdefault("object", self.OBJECT)
            self.last = chunk
        return choices

    def end(self) -> None:
        pass

    def usage(self, call: Call) -> Usage:
        return self.reported or call.estimated(self.completion_bytes)

    def tail(self, usage: Usage) -> list[dict[str, Any]]:
        return [self.usage_chunk(usage)] if self.wants_usage else []

    def failed(self, exc: GatewayError) -> list[dict[str, Any]]:
        return [exc.to_dict()]

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        """The final chunk with usage (choices []) the client asked for with stream_options.include_usage."""
        return {
            "id": self.last.get("id") or f"{self.ID_PREFIX}{uuid.uuid4().hex}",
            "object": self.OBJECT,
            "created": self.last.get("created") or int(time.time()),
            "model": self.public_id,
            "choices": [],
            "usage": self._usage_object(usage),
        }

    def _usage_object(self, usage: Usage) -> dict[str, Any]:
        """The upstream's usage object (its details of cached, reasoning, audio tokens…); ours when we counted."""
        if usage is not self.reported or not self.reported_as:
            return usage.as_reported()
        return usage_object(self.reported_as)


class Demands(Protocol):
    """What a request in any protocol asks of a model (its needs and its output cap)."""

    def needs(self) -> list[tuple[str, str, str]]: ...

    def output_cap(self, model_limit: int) -> int: ...


def check_model_takes(request: Demands, model: LanguageModel) -> None:
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

    # Set for an Anthropic or Gemini upstream: its events become chat chunks before anything else reads them.
    translator: MessagesToChatStream | GeminiToChatStream | None = None

    def chunks(self, data: str) -> list[dict[str, Any]]:
        """One event as the client's chunks (none for the usage chunk, a few for an Anthropic event)."""
        parsed = self.parse(data)
        if self.translator is None:
            chunk = self.chunk(parsed)
            return [chunk] if chunk is not None else []
        translated = readable(self.target, self.translator.feed, parsed)
        return [chunk for chunk in map(self.chunk, translated) if chunk is not None]

    def end(self) -> None:
        """At the end of the upstream's stream: an Anthropic or Gemini stream cut before its end is a fault."""
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

    PROTOCOL: ClassVar[type[BaseModel] | None] = ChatCompletionRequest

    kind = LanguageModel.Kind.CHAT
    chat: ChatCompletionRequest
    chat_body: dict[str, Any]

    def parse(self, body: dict[str, Any]) -> Any:
        self.chat, self.chat_body = parse_chat_request(body), body
        return self.chat

    def check(self) -> None:
        check_model_takes(self.chat, self.model)

    def translate_unless_all(self, kind: str, translate: Callable[[], dict[str, Any]]) -> None:
        """For a request in another protocol: its chat body (`translate()`), when the model has a
        deployment whose provider speaks other than `kind` (the protocol's own API gets it untranslated)."""
        if any(d.provider.kind != kind for d in routes_of(self.model)):
            self.chat_body = translate()
            self.chat = parse_chat_request(self.chat_body)

    def estimate(self) -> tuple[int, int]:
        cap = self.chat.output_cap(self.model.max_output_tokens)
        return estimate_prompt_tokens(self.chat_body), cap * self.chat.choices()

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
        if target.gemini:
            sent = chat_to_gemini(self.chat, max_tokens=cap, thoughts=self.model.reasoning)
            return target.gemini_path(deployment.upstream_model, stream), encode(sent)
        # Every upstream gets a cap, under the one name it knows: a server that ignores the other name
        # writes until its own limit (llama.cpp knows only max_tokens, OpenAI's reasoning models only
        # max_completion_tokens).
        drop = ("max_tokens", "max_completion_tokens", "tools") if self.chat_body.get("tools") is False else CAPS
        fields = {deployment.provider.output_cap_param: cap}
        return CHAT_PATH, sent_body(self.chat_body, deployment, self.call.caller, stream, drop=drop, **fields)

    async def completion_from(self, deployment: Deployment, target: upstream.Target) -> dict[str, Any]:
        """One deployment's chat.completion, made ours (`own_chat_completion`)."""
        path, sent = self.chat_request(deployment, target, False)
        payload = await upstream.post_json(target, path, sent)
        if target.anthropic:
            payload = readable(target, message_to_chat_completion, payload)
        elif target.gemini:
            payload = readable(target, gemini_to_chat_completion, payload)
        choices_of(payload, target)
        own_chat_completion(payload, self.model.public_id)
        return payload

    def completion_usage(self, payload: dict[str, Any]) -> Usage:
        size = sum(message_bytes(c.get("message")) for c in payload["choices"] if isinstance(c, dict))
        return answer_usage(self.call, payload, size)

    async def answer_from(self, deployment: Deployment, target: upstream.Target) -> tuple[dict[str, Any], Usage]:
        payload = await self.completion_from(deployment, target)
        return payload, self.completion_usage(payload)

    def chat_relay(self, target: upstream.Target, wants_usage: bool) -> ChatRelay:
        relay = ChatRelay(self.model.public_id, wants_usage, target)
        if target.anthropic:
            relay.translator = MessagesToChatStream()
        elif target.gemini:
            relay.translator = GeminiToChatStream()
        return relay

    def relay_for(self, deployment: Deployment, target: upstream.Target) -> Opened:
        path, body = self.chat_request(deployment, target, True)
        return self.chat_relay(target, self.chat.wants_usage_chunk()), path, body, {}
