"""Chat completions through the gateway, shared by the /v1 views and the browser chat's generations.

    caller = await auth.authenticate_bearer(request.headers.get("Authorization"))
    answer = await create_completion(caller, body)               # non-streaming
    async for chunk in stream_completion(caller, body): ...      # streaming

Who may call and with which model is gateway.auth; token counts are usage.tokens, the ledger
usage.ledger, rate limits and budgets usage.limits. Every request goes through the same steps:
`_prepare` (validate, find the model, reserve), the upstream call, then `Call.finish` (ledger row,
settlement), whatever happened in between.

Hot-path design (the benchmark asks for a few milliseconds of overhead at most):
- Streamed chunks are parsed with `json` and only `model` (and usage) rewritten; no pydantic.
- The upstream is read by a pump task feeding a small queue (`_paced`), so a silent upstream can
  be answered with keep-alive comments without cancelling the read, and closing the generator
  (client gone, aclose, task cancelled) cancels the pump and closes the upstream request at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from catalogue.models import Deployment, LanguageModel
from gateway import routing, upstream
from gateway.auth import Caller, get_model
from gateway.bodies import Native, upstream_request
from gateway.bodies import upstream_user as upstream_user  # where other rooms have found it
from gateway.errors import GatewayError
from gateway.protocol import ChatCompletionRequest, parse_chat_request
from gateway.translate_anthropic import (
    MessagesToChatStream,
    UnreadableAnswer,
    message_to_chat_completion,
)
from usage import limits
from usage.ledger import current_ledger
from usage.models import UsageRecord
from usage.tokens import Usage, estimate_prompt_tokens, message_bytes, reported_usage, tokens_for_bytes

log = logging.getLogger(__name__)

CLIENT_CLOSED = 499  # nginx's "client closed request", for streams the consumer abandoned


@dataclass
class Call:
    """One request's bookkeeping, from validation to its ledger row and settlement."""

    caller: Caller
    body: dict[str, Any]
    stream: bool
    public_id: str = ""
    started: float = field(default_factory=time.perf_counter)
    model: LanguageModel | None = None
    ttft_ms: int | None = None
    reservation: limits.Reservation | None = None
    attempts: routing.Attempts | None = None
    finished: bool = False

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.perf_counter() - self.started) * 1000)

    def cost(self, usage: Usage) -> Decimal:
        return self.model.cost(usage.prompt_tokens, usage.completion_tokens) if self.model else Decimal(0)

    def estimated(self, completion_bytes: int = 0) -> Usage:
        return Usage(estimate_prompt_tokens(self.body), tokens_for_bytes(completion_bytes), estimated=True)

    async def finish(self, usage: Usage, status: int = 200, error_code: str = "") -> None:
        """Queue the request's ledger row and settle its reservation, once."""
        if self.finished:
            return
        self.finished = True
        attempts = self.attempts
        if attempts is not None:
            attempts.release()
        current_ledger().add(
            UsageRecord(
                user=self.caller.user,
                api_key=self.caller.api_key,
                model=self.model,
                model_public_id=self.public_id[:200],
                deployment=attempts.current if attempts is not None else None,
                attempts=attempts.count if attempts is not None else 0,
                source=self.caller.source,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                usage_estimated=usage.estimated,
                cost=self.cost(usage),
                latency_ms=int((time.perf_counter() - self.started) * 1000),
                ttft_ms=self.ttft_ms,
                status=status,
                error_code=error_code[:64],
                stream=self.stream,
            )
        )
        if self.reservation is not None:
            await limits.settle(self.reservation, usage.prompt_tokens, usage.completion_tokens, self.cost(usage))


def error_code_of(exc: GatewayError) -> str:
    return exc.code or exc.type


async def rate_limit_headers(caller: Caller) -> dict[str, str]:
    """The x-ratelimit-* headers for an answer that reserved nothing (an error after auth, /v1/models)."""
    return await limits.peek_headers(caller)


# ---------------------------------------------------------------------------------------------
# Preparing a request


async def reserve(call: Call, model: LanguageModel, prompt_tokens: int, completion_tokens: int) -> None:
    """Reserve the request's tokens and cost against the caller's limits; a 429 when they refuse."""
    try:
        call.reservation = await limits.reserve(call.caller, model, prompt_tokens, completion_tokens)
    except limits.LimitExceeded as exc:
        raise GatewayError(429, exc.message, type=exc.type, code=exc.code, headers=exc.headers) from None


async def _reserve(call: Call, request: ChatCompletionRequest, model: LanguageModel) -> None:
    completion = request.output_cap(model.max_output_tokens) * request.choices()
    await reserve(call, model, estimate_prompt_tokens(call.body), completion)


ENDPOINT_OF_KIND = {"chat": "/v1/chat/completions", "text": "/v1/completions", "embedding": "/v1/embeddings"}


def check_kind(model: LanguageModel, kind: str) -> None:
    """A 400 naming the endpoint to use when the model is of another kind than this endpoint serves."""
    if model.kind != kind:
        raise GatewayError(
            400,
            f"The model '{model.public_id}' is a{'n' if model.kind[0] in 'aeiou' else ''} {model.kind} model, "
            f"not a{'n' if kind[0] in 'aeiou' else ''} {kind} model: "
            f"use {ENDPOINT_OF_KIND[model.kind]}.",
            param="model",
            code="model_not_supported",
        )


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


def _normalize_completion(payload: dict[str, Any], public_id: str) -> None:
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


def _answer_usage(call: Call, payload: dict[str, Any]) -> Usage:
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
    usage, status, error_code = call.estimated(), CLIENT_CLOSED, "client_disconnected"
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

    try:
        payload = await routing.first(attempts, attempt)
        _normalize_completion(payload, request.model)
        usage, status, error_code = _answer_usage(call, payload), 200, ""
        return payload
    except GatewayError as exc:
        status, error_code = exc.status, error_code_of(exc)
        raise
    except Exception:
        status, error_code = 500, "server_error"
        raise
    finally:
        await call.finish(usage, status, error_code)


# ---------------------------------------------------------------------------------------------
# Streaming

_END = object()


async def _pump(stream: upstream.EventStream, queue: asyncio.Queue[Any]) -> None:
    try:
        async for payloads in stream.blocks():
            if payloads:
                await queue.put(payloads)
        await queue.put(_END)
    except GatewayError as exc:
        await queue.put(exc)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # never let the consumer wait forever
        log.exception("reading the upstream stream failed")
        await queue.put(exc)


async def _stop(task: asyncio.Task[None]) -> None:
    if not task.done():
        task.cancel()
    # asyncio.wait never raises the task's own outcome, so a cancellation of *this* task (the
    # consumer going away) still propagates instead of being mistaken for the pump's.
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise


async def _paced(
    events: upstream.EventStream, target: upstream.Target, keepalive: float | None
) -> AsyncGenerator[list[str] | None, None]:
    """The upstream's event payloads, block by block, and None whenever it was silent for `keepalive` s.

    Read by a pump task, so waiting for a keep-alive never cancels a read; closing this generator
    stops the pump before the upstream response is closed.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=16)
    pump = asyncio.ensure_future(_pump(events, queue))
    try:
        while True:
            if keepalive is not None and queue.empty():
                try:
                    async with asyncio.timeout(keepalive):
                        item = await queue.get()
                except TimeoutError:
                    yield None
                    continue
            else:
                item = await queue.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item if isinstance(item, GatewayError) else upstream.bad_response(target)
            yield item
    finally:
        await _stop(pump)


@dataclass
class _Relay:
    """Turns an upstream's stream events into the chunks our client gets, and keeps what they said."""

    public_id: str
    wants_usage: bool
    target: upstream.Target
    reported: Usage | None = None
    completion_bytes: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    # Set for an Anthropic upstream: its events become chat chunks before anything else reads them.
    translator: MessagesToChatStream | None = None
    # An Anthropic client's request sent as it is: its events go out as they came, as {"native": event}.
    native: bool = False

    def chunks(self, data: str) -> list[dict[str, Any]]:
        """One event as the client's chunks (none for the usage chunk, a few for an Anthropic event)."""
        try:
            parsed = json.loads(data)
        except ValueError:
            raise upstream.bad_response(self.target, "an unreadable stream event") from None
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
        if not isinstance(chunk, dict):
            raise upstream.bad_response(self.target, "an unreadable stream event")
        choices = chunk.get("choices")
        if "error" in chunk and not choices:
            raise upstream.event_error(chunk, self.target)
        if choices is not None and (not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices)):
            raise upstream.bad_response(self.target, "a stream event without a list of choices")
        if "usage" in chunk:
            if chunk["usage"]:
                self.reported = reported_usage(chunk["usage"]) or self.reported
            if self.wants_usage:
                chunk["usage"] = None
            else:
                del chunk["usage"]
        if not choices:
            return None  # the usage chunk: ours goes out at the end, when asked for
        chunk["model"] = self.public_id
        chunk.setdefault("object", "chat.completion.chunk")
        for choice in choices:
            delta = choice.get("delta")
            if delta:
                self.completion_bytes += message_bytes(delta)
            if "finish_reason" not in choice:
                choice["finish_reason"] = None
        self.last = chunk
        return chunk

    def usage(self, call: Call) -> Usage:
        return self.reported or call.estimated(self.completion_bytes)

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        """The final chunk with usage (choices []) the client asked for with stream_options.include_usage."""
        return {
            "id": self.last.get("id") or f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": self.last.get("created") or int(time.time()),
            "model": self.public_id,
            "choices": [],
            "usage": usage.as_dict(),
        }


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


async def _head(
    blocks: AsyncIterator[list[str] | None], relay: _Relay
) -> tuple[list[dict[str, Any] | None], GatewayError | None]:
    """What a stream says first: the chunks of its first block that has any, or [None] for a keep-alive.

    Until this returns nothing has gone to the client, so its failures (an error event, an empty or
    unreadable stream, a read timeout) may be tried on another deployment. A failure later in the
    same block as good chunks comes back beside them, to be raised once they went out.
    """
    async for block in blocks:
        if block is None:
            return [None], None
        chunks: list[dict[str, Any] | None] = []
        for data in block:
            try:
                chunks.extend(relay.chunks(data))
            except GatewayError as exc:
                if not chunks:
                    raise
                return chunks, exc
        if chunks:
            return chunks, None
    raise upstream.bad_response(relay.target, "an empty stream")


async def _open(
    call: Call,
    request: ChatCompletionRequest,
    keepalive: float | None,
    native: Native | None = None,
) -> tuple[
    contextlib.AsyncExitStack,
    AsyncIterator[list[str] | None],
    tuple[list[dict[str, Any] | None], GatewayError | None],
    _Relay,
]:
    """Open the stream on the first deployment whose stream starts well (gateway.routing)."""
    attempts = call.attempts
    assert attempts is not None
    while True:
        deployment = await attempts.next()
        target = attempts.target
        relay = _Relay(request.model, request.wants_usage_chunk(), target)
        extra: dict[str, str] = {}
        if target.anthropic:
            relay.translator = MessagesToChatStream()
            relay.native = native is not None
        stack = contextlib.AsyncExitStack()
        try:
            assert call.model is not None
            path, body = upstream_request(call.body, request, call.model, deployment, target, True, call.caller)
            if native is not None and target.anthropic:
                body, extra = native.request(deployment, call.caller, stream=True), native.headers()
            events = await stack.enter_async_context(upstream.open_stream(target, path, body, extra))
            blocks = await stack.enter_async_context(contextlib.aclosing(_paced(events, target, keepalive)))
            head = await _head(blocks, relay)
        except GatewayError as exc:
            await stack.aclose()
            await attempts.failed(exc)
            continue
        except BaseException:
            await stack.aclose()
            raise
        if head[0] != [None]:
            await attempts.succeeded()
        return stack, blocks, head, relay


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
    relay: _Relay | None = None
    status, error_code = CLIENT_CLOSED, "client_disconnected"
    committed = False  # something went out (a keep-alive too): failures are yielded, no longer raised
    try:
        stack, blocks, head, relay = await _open(call, request, keepalive, native)
        async with stack:
            items, pending = head
            for item in items:
                committed = True
                if item is not None:
                    call.first_token()
                yield item
            if pending is not None:
                raise pending
            async for block in blocks:
                if block is None:
                    yield None
                    continue
                for data in block:
                    for chunk in relay.chunks(data):
                        call.first_token()
                        yield chunk
            relay.end()
        if call.ttft_ms is None:
            raise upstream.bad_response(relay.target, "an empty stream")
        status, error_code = 200, ""
        if relay.wants_usage:
            yield relay.usage_chunk(relay.usage(call))
    except GatewayError as exc:
        status, error_code = exc.status, error_code_of(exc)
        if not committed:
            raise
        await call.attempts.note_failure(exc)
        yield exc.to_dict()
    except Exception:
        status, error_code = 500, "server_error"
        raise
    finally:
        usage = relay.usage(call) if relay is not None else call.estimated()
        await call.finish(usage, status, error_code)
