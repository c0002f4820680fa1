"""Chat completions through the gateway, shared by the /v1 views and the browser chat's generations.

    caller = await auth.authenticate_bearer(request.headers.get("Authorization"))
    answer = await create_completion(caller, body)               # non-streaming
    async for chunk in stream_completion(caller, body): ...      # streaming

Who may call and with which model is gateway.auth; token counts are usage.tokens, the ledger
usage.ledger, rate limits and budgets usage.limits. Every request goes through the same steps:
`_prepare` (validate, find the model, reserve), the upstream call, then `Call.finish` (ledger row,
settlement, gateway.calls), whatever happened in between. Streams are relayed by gateway.streams.

Hot path: streamed chunks are parsed with `json` and only `model` (and usage) rewritten; no pydantic.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from catalogue.models import Deployment, LanguageModel
from gateway import routing, upstream
from gateway.auth import Caller, get_model
from gateway.bodies import Native, upstream_request
from gateway.bodies import upstream_user as upstream_user  # where other rooms have found it
from gateway.calls import CLIENT_CLOSED as CLIENT_CLOSED
from gateway.calls import ENDPOINT_OF_KIND as ENDPOINT_OF_KIND
from gateway.calls import Call as Call
from gateway.calls import check_kind as check_kind
from gateway.calls import error_code_of as error_code_of
from gateway.calls import finish_reasons_of, settled
from gateway.calls import rate_limit_headers as rate_limit_headers
from gateway.calls import reserve as reserve
from gateway.errors import GatewayError
from gateway.protocol import ChatCompletionRequest, parse_chat_request
from gateway.streams import ChunkRelay, relay_stream
from gateway.translate_anthropic import (
    MessagesToChatStream,
    UnreadableAnswer,
    message_to_chat_completion,
)
from usage import limits
from usage.tokens import Usage, estimate_prompt_tokens, message_bytes, reported_usage

# ---------------------------------------------------------------------------------------------
# Preparing a request


async def _reserve(call: Call, request: ChatCompletionRequest, model: LanguageModel) -> None:
    completion = request.output_cap(model.max_output_tokens) * request.choices()
    await reserve(call, model, estimate_prompt_tokens(call.body), completion)


def check_model_takes(request: ChatCompletionRequest, model: LanguageModel) -> None:
    """A 400 naming the param when the model is of another kind or lacks a capability the request needs.

    Refused here, a request never reaches an upstream that would answer it with an error (or a traceback).
    """
    check_kind(model, LanguageModel.Kind.CHAT)
    for capability, param, what in request.needs():
        if not getattr(model, capability):
            raise GatewayError(
                400, f"The model '{model.public_id}' does not accept {what}.", param=param, code="unsupported_parameter"
            )


async def _prepare(call: Call, response_headers: dict[str, str] | None) -> tuple[ChatCompletionRequest, LanguageModel]:
    """Validate, find the model, reserve limits. Failures are ledgered (after auth) and raised."""
    try:
        request = parse_chat_request(call.body)
        call.public_id = request.model
        model = await get_model(request.model, call.caller)
        call.model = model
        check_model_takes(request, model)
        request.output_cap(model.max_output_tokens)  # a cap above the model's is a 400 before anything is reserved
        await _reserve(call, request, model)
    except GatewayError as exc:
        await call.finish(Usage(), exc.status, error_code_of(exc))
        raise
    if response_headers is not None:
        response_headers.update(limits.headers(call.reservation))
    return request, model


# ---------------------------------------------------------------------------------------------
# Non-streaming


def normalize_completion(payload: dict[str, Any], public_id: str) -> None:
    """Fill what some upstreams omit and the spec requires; answer with our public model id."""
    payload["model"] = public_id
    payload.setdefault("id", f"chatcmpl-{uuid.uuid4().hex}")
    payload["object"] = "chat.completion"
    if not isinstance(payload.get("created"), int):
        payload["created"] = int(time.time())
    for position, choice in enumerate(payload["choices"]):
        if not isinstance(choice, dict):
            continue
        choice.setdefault("index", position)
        choice.setdefault("logprobs", None)
        if choice.get("finish_reason") is None:
            choice["finish_reason"] = "stop"
        message = choice.get("message")
        if isinstance(message, dict):
            message.setdefault("role", "assistant")
            message.setdefault("content", None)
            message.setdefault("refusal", None)


def answer_usage(call: Call, payload: dict[str, Any]) -> Usage:
    """The upstream's reported usage, or an estimate written into the answer (flagged in the ledger)."""
    reported = reported_usage(payload.get("usage"))
    if reported is not None:
        return reported
    size = sum(message_bytes(c.get("message")) for c in payload["choices"] if isinstance(c, dict))
    usage = call.estimated(size)
    payload["usage"] = usage.as_dict()
    return usage


async def create_completion(
    caller: Caller,
    body: dict[str, Any],
    *,
    response_headers: dict[str, str] | None = None,
    native: Native | None = None,
) -> dict[str, Any]:
    """A non-streaming chat completion, answered with our public model id.

    `response_headers`, when given, receives headers for the answer (x-ratelimit-*). `native`: see Native.
    """
    call = Call(caller, body, stream=False, public_id=str(body.get("model", "")))
    request, model = await _prepare(call, response_headers)
    attempts = call.attempts = routing.Attempts(model)

    async def attempt(deployment: Deployment) -> dict[str, Any]:
        target = attempts.target
        path, sent = upstream_request(call.body, request, model, deployment, target, False, caller)
        extra: dict[str, str] = {}
        if target.anthropic and native is not None:
            sent, extra = native.request(deployment, caller), native.headers()
        payload = await upstream.post_json(target, path, sent, extra)
        if target.anthropic:
            if native is not None:
                native.answer = payload
            try:
                payload = message_to_chat_completion(payload)
            except UnreadableAnswer as exc:
                raise upstream.bad_response(target, str(exc)) from None
        if not isinstance(payload.get("choices"), list):
            raise upstream.bad_response(target, "an answer without choices")
        return payload

    async with settled(call) as outcome:
        payload = await routing.first(attempts, attempt)
        normalize_completion(payload, request.model)
        call.finish_reasons = finish_reasons_of(payload)
        outcome.succeeded(answer_usage(call, payload))
        return payload


# ---------------------------------------------------------------------------------------------
# Streaming
@dataclass
class ChatRelay(ChunkRelay):
    """Turns an upstream's stream events into the chat chunks our client gets, and keeps what they said."""

    OBJECT: ClassVar[str] = "chat.completion.chunk"
    ID_PREFIX: ClassVar[str] = "chatcmpl-"

    # Set for an Anthropic upstream: its events become chat chunks before anything else reads them.
    translator: MessagesToChatStream | None = None
    # An Anthropic client's request sent as it is: its events go out as they came, as {"native": event}.
    native: bool = False

    def chunks(self, data: str) -> list[dict[str, Any]]:
        """One event as the client's chunks (none for the usage chunk, a few for an Anthropic event)."""
        parsed = self.parse(data)
        if self.translator is None:
            chunk = self.chunk(parsed)
            return [chunk] if chunk is not None else []
        try:
            translated = self.translator.feed(parsed)
        except UnreadableAnswer as exc:
            raise upstream.bad_response(self.target, str(exc)) from None
        chunks = [chunk for chunk in map(self.chunk, translated) if chunk is not None]
        if self.native:
            return [{"native": parsed}] if parsed.get("type") != "ping" else []
        return chunks

    def end(self) -> None:
        """At the end of the upstream's stream: an Anthropic stream cut before message_stop is a fault."""
        if self.translator is not None:
            try:
                self.translator.finish()
            except UnreadableAnswer as exc:
                raise upstream.bad_response(self.target, str(exc)) from None

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


def stream_completion(caller: Caller, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """Chunk dicts of a streamed chat completion, answered with our public model id.

    Raises GatewayError before the first chunk. After it, an upstream failure is yielded as one
    {"error": {...}} dict, then the stream ends. The usage chunk (choices []) is yielded only when
    the body asks with stream_options.include_usage. One UsageRecord is always written, also when
    the consumer stops early (aclose or cancellation closes the upstream request at once).
    """
    return _stream(caller, body, keepalive=None, response_headers=None)  # type: ignore[return-value]


def stream_events(
    caller: Caller,
    body: dict[str, Any],
    *,
    keepalive: float,
    response_headers: dict[str, str] | None = None,
    native: Native | None = None,
) -> AsyncIterator[dict[str, Any] | None]:
    """Like stream_completion, but yields None whenever the upstream was silent for `keepalive` s.

    A None commits the stream as a chunk does: later failures are yielded as an error dict.
    `native` (see Native): a deployment speaking Anthropic's API streams the client's own request,
    and its events are yielded as they came, each as {"native": event}.
    """
    return _stream(caller, body, keepalive=keepalive, response_headers=response_headers, native=native)


def _attempt(call: Call, request: ChatCompletionRequest, native: Native | None) -> Any:
    def attempt(deployment: Deployment, target: upstream.Target) -> tuple[ChatRelay, str, bytes, dict[str, str]]:
        relay = ChatRelay(request.model, request.wants_usage_chunk(), target)
        extra: dict[str, str] = {}
        if target.anthropic:
            relay.translator = MessagesToChatStream()
            relay.native = native is not None
        assert call.model is not None
        path, body = upstream_request(call.body, request, call.model, deployment, target, True, call.caller)
        if native is not None and target.anthropic:
            body, extra = native.request(deployment, call.caller, stream=True), native.headers()
        return relay, path, body, extra

    return attempt


async def _stream(
    caller: Caller,
    body: dict[str, Any],
    *,
    keepalive: float | None,
    response_headers: dict[str, str] | None,
    native: Native | None = None,
) -> AsyncIterator[dict[str, Any] | None]:
    call = Call(caller, body, stream=True, public_id=str(body.get("model", "")))
    request, model = await _prepare(call, response_headers)
    call.attempts = routing.Attempts(model)
    # Closed at once with this generator, so the upstream request is closed at once too.
    async with contextlib.aclosing(relay_stream(call, _attempt(call, request, native), keepalive)) as chunks:
        async for chunk in chunks:
            yield chunk
